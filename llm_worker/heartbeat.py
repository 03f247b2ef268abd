"""Keep a batch's claims alive while the backend scores it.

Without it a batch slower than ``worker.lease_seconds`` (a big model, a long queue on a
shared GPU server) would be taken over by another worker and scored twice, and the slow
worker's work thrown away. With it the lease only has to outlast a *dead* worker's
silence, so it can stay short and a crashed worker's comments come back quickly.

A worker whose backend hangs must not hold its comments for ever, so renewal stops after
``worker.max_batch_seconds``; the lease then runs out and other workers take over.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from types import TracebackType

import sqlalchemy as sa

from llm_worker.queue import Queue
from weibo_mh import db

log = logging.getLogger("llm_worker")

#: Renewals per lease: the lease is pushed ahead every lease_seconds / BEATS_PER_LEASE.
BEATS_PER_LEASE = 3


class Heartbeat:
    """``with Heartbeat(queue, ids, max_seconds):`` renews the leases of ``ids`` in a thread."""

    def __init__(self, queue: Queue, ids: Sequence[str], max_seconds: float = 0.0) -> None:
        self.queue = queue
        self.ids = list(ids)
        self.max_seconds = max_seconds
        self.every = max(queue.lease_seconds / BEATS_PER_LEASE, 0.2)
        self.renewals = 0
        self.held = len(self.ids)
        self.failures = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lease-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._done.wait(self.every):
            elapsed = time.monotonic() - self._started
            if self.max_seconds and elapsed > self.max_seconds:
                log.warning("event=lease_renewal_stopped seconds=%.0f max_batch_seconds=%g comments=%d "
                            "hint='the backend has been busy longer than worker.max_batch_seconds; its "
                            "leases now run out and other workers may take these comments over'",
                            elapsed, self.max_seconds, len(self.ids))
                return
            try:
                held = self.queue.renew(self.ids)
            except sa.exc.DBAPIError as e:  # the database is away: try again at the next beat
                self.failures += 1
                log.warning("event=lease_renewal_failed comments=%d error=%r", len(self.ids),
                            db.short_error(e))
                continue
            self.renewals += 1
            if held < self.held:  # said once per loss, not at every beat
                log.warning("event=lease_renewal_partial held=%d of=%d hint='some claims had already "
                            "run out and were taken over; their scores will be discarded'",
                            held, len(self.ids))
            self.held = held
            if held == 0:
                return
            log.debug("event=lease_renewed comments=%d", held)
