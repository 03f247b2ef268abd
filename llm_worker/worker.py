"""The worker loop: claim a batch, score it, write it back; wait with back-off when idle.

Shutdown is graceful: the first SIGTERM or Ctrl-C lets the batch in hand finish and be
written back; a second one while the backend is still busy releases the batch (its
attempt is not counted) and stops. A worker killed outright leaves only a lease
behind, which expires and lets another worker claim the comments again. While the
backend scores, a heartbeat thread keeps the batch's leases alive (``heartbeat``), so a
slow batch is not taken over; a backend that hangs loses them after max_batch_seconds.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from llm_worker.heartbeat import Heartbeat
from llm_worker.metrics import Metrics
from llm_worker.queue import Claimed, Queue
from llm_worker.scoring.backends.base import (
    Backend,
    BackendUnavailable,
    PermanentBackendError,
    ScoreInput,
    ScoreResult,
    validate_result,
)
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.notify.outbox import Policy
from weibo_mh.progress import Progress, Stats
from weibo_mh.rubric import RUBRIC_VERSION
from weibo_mh.sanitize import truncate

log = logging.getLogger("llm_worker")

IDLE_FIRST_WAIT = 0.5
#: How often the backlog (pending / failed counts) is refreshed for progress and metrics.
BACKLOG_EVERY = 10.0
#: With --once, stop (exit 1) after this many database outages in a row, each already
#: retried for about a minute.
ONCE_DB_FAILURES = 3
#: Longest wait between tries while the model server is away, and how often that is logged.
OUTAGE_WAIT_MAX = 30.0
OUTAGE_LOG_EVERY = 60.0
#: With --once, stop (exit 1) after the model server has been away this long (at once when it
#: has not answered once in this run).
ONCE_OUTAGE_SECONDS = 120.0


@dataclass
class Outage:
    """The model server has been away since ``since`` (monotonic seconds)."""

    since: float
    why: str
    wait: float = 0.0
    logged: float = 0.0


class Interrupted(BaseException):
    """Raised by the second stop signal while the backend is busy (a BaseException, like
    KeyboardInterrupt, so that a backend's own ``except Exception`` cannot swallow it)."""


def default_worker_id() -> str:
    """host-pid: unique among the workers running at one time."""
    return f"{socket.gethostname()}-{os.getpid()}"


class Worker:
    def __init__(self, queue: Queue, backend: Backend, *, batch_size: int = 16, max_chars: int = 512,
                 max_items: int = 0, once: bool = False, idle_max: float = 60.0,
                 max_batch_seconds: float = 3600.0,
                 metrics: Metrics | None = None, progress: Progress | None = None,
                 rubric_version: str = RUBRIC_VERSION, alert_threshold: int | None = None,
                 alert_repeat_days: int = 7, notify_policy: Policy | None = None) -> None:
        self.queue = queue
        self.backend = backend
        self.batch_size = batch_size
        self.max_chars = max_chars
        self.max_items = max_items
        self.once = once
        self.idle_max = max(idle_max, IDLE_FIRST_WAIT)
        self.max_batch_seconds = max_batch_seconds
        self.metrics = metrics or Metrics(backend.name)
        self.progress = progress or Progress()
        self.rubric_version = rubric_version
        #: Fill the alerts table from each batch at this suicide-risk level (None: don't).
        self.alert_threshold = alert_threshold
        self.alert_repeat_days = alert_repeat_days
        #: Which new alerts get push notifications, written with them ([notify]; None: none).
        self.notify_policy = notify_policy
        self.stats = Stats()
        self._stop = threading.Event()
        self._scoring = False
        self._backoff = 0.0
        self._backlog_at = -BACKLOG_EVERY
        #: Why a --once run stopped early (None: it did not).
        self.gave_up: str | None = None
        #: Set when the backend reported a configuration mistake (exit status 2).
        self.fatal: str | None = None
        #: The model server answered at least once in this run (prepare or a scored comment).
        self.server_answered = False
        self._outage: Outage | None = None

    # ------------------------------------------------------------------ control

    def request_stop(self, reason: str = "stop requested") -> None:
        """First call: finish the batch in hand, then stop. Second call while the backend is
        scoring: interrupt it (the batch is released)."""
        if self._stop.is_set() and self._scoring:
            raise Interrupted(reason)
        if not self._stop.is_set():
            self.progress.clear()
            log.info("event=stopping reason=%s note='finishing the batch in hand; "
                     "signal again to release it'", reason.replace(" ", "_"))
        self._stop.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self.request_stop(signal.Signals(signum).name)
        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ------------------------------------------------------------------ loop

    def run(self) -> Stats:
        """Work until stopped, until --once finds the queue empty, or until max_items."""
        idle = IDLE_FIRST_WAIT
        db_failures = 0
        try:
            while not self._stop.is_set():
                # While the model server is away, each retry claims one comment: a hung server
                # then fails one request per try, not a whole batch with a warning per comment.
                want = 1 if self._outage is not None else self.batch_size
                if self.max_items:
                    want = min(want, self.max_items - self.stats.claimed)
                    if want <= 0:
                        break
                self._refresh_backlog()
                try:
                    n = self.step(want)
                except sa.exc.DBAPIError as e:
                    # The database stayed away through every retry: wait and try again;
                    # claimed rows not written back are recovered by lease expiry.
                    # A --once run (cron, CI) gives up instead of waiting forever.
                    db_failures += 1
                    if self.once and db_failures >= ONCE_DB_FAILURES:
                        self.gave_up = f"database unavailable: {db.short_error(e)}"
                        log.error("event=give_up reason=%r", self.gave_up)
                        break
                    self._error_pause(f"database unavailable: {db.short_error(e)}")
                    continue
                db_failures = 0
                if self._outage is not None and self._outage_wait():
                    break
                if n:
                    idle = IDLE_FIRST_WAIT
                    continue
                if self.once:
                    break
                self._stop.wait(idle)
                idle = min(idle * 2, self.idle_max)
        except Interrupted:
            pass
        finally:
            self.queue.close()
            if not self.gave_up:
                self._refresh_backlog(force=True)
            self.progress.finish(self.stats)
        return self.stats

    def step(self, limit: int | None = None) -> int:
        """Claim, score and write back one batch; returns how many comments were claimed."""
        items = self.queue.claim(limit or self.batch_size)
        if not items:
            return 0
        self.stats.claimed += len(items)
        self.metrics.claimed.inc(len(items))
        inputs, cut = self._inputs(items)
        t0 = time.monotonic()
        heartbeat = Heartbeat(self.queue, [i.id for i in items], self.max_batch_seconds)
        try:
            self._scoring = True  # inside the try: a second signal from here on releases
            with heartbeat:
                results = self.backend.score_batch(inputs)
            if len(results) != len(items):
                raise RuntimeError(f"backend returned {len(results)} results for {len(items)} items")
        except PermanentBackendError as e:
            # A configuration mistake, not the comments' fault: give them back without
            # counting the attempt, and stop (exit status 2).
            self._scoring = False
            self.queue.release(items)
            self.fatal = str(e)
            self.progress.clear()
            log.error("event=fatal_backend_error comments_released=%d error=%r", len(items), self.fatal)
            self._stop.set()
            return len(items)
        except Interrupted:
            self._scoring = False
            out = self.queue.release(items)
            self.stats.released += out.retry
            log.info("event=released comments=%d reason=interrupted", out.retry)
            raise
        except Exception as e:  # noqa: BLE001 - any backend failure must not kill the loop
            self._scoring = False
            self.stats.batch_errors += 1
            self.metrics.batch_errors.inc()
            out = self.queue.release(items, error=f"{type(e).__name__}: {e}")
            self._count(out)
            log.exception("event=batch_error backend=%s comments=%d retried=%d failed=%d",
                          self.backend.name, len(items), out.retry, out.failed)
            self._error_pause("backend error")
            return len(items)
        finally:
            self._scoring = False
            self.metrics.lease_renewal_failures.inc(heartbeat.failures)
        elapsed = time.monotonic() - t0
        self.metrics.observe_batch(elapsed, len(items))
        away = [r.error or "" for r in results if isinstance(r, ScoreResult) and r.unavailable]
        if away:
            # The model server is away: not these comments' fault. Those it did not score go
            # back without counting the attempt; the rest are written back; run() then waits.
            back = [i for i, r in zip(items, results, strict=True) if isinstance(r, ScoreResult) and r.unavailable]
            out = self.queue.release(back)
            self.stats.released += out.retry
            self.stats.claimed -= len(back)  # not ours any more: --max-items counts them again
            self._server_away(away[0], len(back))
            kept = [(i, r, c) for i, r, c in zip(items, results, cut, strict=True)
                    if not (isinstance(r, ScoreResult) and r.unavailable)]
            if not kept:
                self.progress.update(self.stats)
                return len(items)
            items, results, cut = [k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept]
        else:
            self._server_back()
        results = [self._check(r, was_cut) for r, was_cut in zip(results, cut, strict=True)]
        try:
            out = self.queue.complete(items, results, self.backend.name, self.rubric_version,
                                      self.backend.dimensions)
        except sa.exc.DBAPIError as e:
            if db.is_disconnect(e):
                raise  # the database stayed away: run() waits; the leases expire meanwhile
            if why := db.server_state_error(e):
                # The database can take no scores now (a full disk, read-only): not the comments'
                # fault, so the batch goes back uncounted where it still allows that (a full
                # disk does: the UPDATE is in place), else its leases expire; run() waits.
                with contextlib.suppress(sa.exc.SQLAlchemyError):
                    out = self.queue.release(items)
                    self.stats.released += out.retry
                    log.warning("event=released comments=%d reason=%r", out.retry, why)
                raise
            # The database refused the write (a value it rejects, say): count the attempt,
            # so that such comments end up failed instead of being claimed forever.
            out = self.queue.release(items, error=f"write-back refused: {db.short_error(e)}")
            log.exception("event=write_back_error comments=%d retried=%d failed=%d",
                          len(items), out.retry, out.failed)
        self._count(out)
        self.metrics.refused.inc(sum(1 for r in results if r.refused))
        if self.alert_threshold is not None and out.done:
            self._fill_alerts([i.id for i in items])
        self.stats.batches += 1
        self._backoff = 0.0
        for item, res in zip(items, results, strict=True):
            if res.error is not None:
                self.progress.clear()
                log.warning("event=score_error comment=%s attempt=%d final=%s error=%r",
                            item.id, item.attempts, res.final or item.attempts >= self.queue.max_attempts,
                            res.error[:200])
        log.debug("event=batch comments=%d done=%d failed=%d retried=%d lost=%d seconds=%.3f",
                  len(items), out.done, out.failed, out.retry, out.lost, elapsed)
        if self.stats.pending >= 0:  # counted after this write-back, not before the claim
            self.stats.pending = max(0, self.stats.pending - out.done - out.failed)
        self.progress.update(self.stats)
        return len(items)

    # ------------------------------------------------------------------ model-server outages

    def prepare_backend(self) -> bool:
        """Run the backend's start-up checks (``prepare``), waiting while its server is away.

        False when the run should end: stopped, or a --once run whose server never answered.
        PermanentBackendError (a configuration the server cannot serve) is left to the caller.
        """
        prepare = getattr(self.backend, "prepare", None)
        if prepare is None:
            self.server_answered = True
            return True
        while not self._stop.is_set():
            try:
                prepare()
            except BackendUnavailable as e:
                self._server_away(str(e), 0)
                if self._outage_wait():
                    return False
                continue
            self._server_back()
            return True
        return False

    def _server_away(self, why: str, released: int) -> None:
        now = time.monotonic()
        if self._outage is None:
            self._outage = Outage(since=now, why=why)
            self.progress.clear()
            log.warning("event=model_server_unavailable backend=%s comments_released=%d error=%r "
                        "note='attempts are not counted; waiting for the server'",
                        self.backend.name, released, truncate(why, 200)[0])
            self._outage.logged = now
        self._outage.why = why

    def _server_back(self) -> None:
        self.server_answered = True
        if self._outage is not None:
            log.info("event=model_server_back after_seconds=%.0f", time.monotonic() - self._outage.since)
            self._outage = None

    def _outage_wait(self) -> bool:
        """Wait before the next try (doubling, capped at OUTAGE_WAIT_MAX; logged once a minute).
        True when a --once run gives up instead."""
        o = self._outage
        assert o is not None
        now = time.monotonic()
        if self.once and (not self.server_answered or now - o.since >= ONCE_OUTAGE_SECONDS):
            self.gave_up = (f"model server unavailable{'' if self.server_answered else ' (it never answered)'}: "
                            f"{truncate(o.why, 200)[0]}")
            log.error("event=give_up reason=%r", self.gave_up)
            return True
        if now - o.logged >= OUTAGE_LOG_EVERY:
            o.logged = now
            log.warning("event=model_server_unavailable still_waiting_seconds=%.0f error=%r",
                        now - o.since, truncate(o.why, 200)[0])
        o.wait = min(max(IDLE_FIRST_WAIT, o.wait * 2), OUTAGE_WAIT_MAX)
        self._stop.wait(o.wait)
        return False

    # ------------------------------------------------------------------ helpers

    def _fill_alerts(self, ids: list[str]) -> None:
        """Alerts for this batch's comments at or above the threshold; a failure only logs
        (``python -m analysis.console fill-alerts`` catches up later)."""
        threshold = self.alert_threshold
        assert threshold is not None

        def tx() -> int:
            with self.queue.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    return fill_alerts(conn, self.backend.name, threshold, comment_ids=ids,
                                       repeat_days=self.alert_repeat_days, notify=self.notify_policy)
        try:
            n = db.retry_on_disconnect(tx, attempts=3, what="fill alerts")
        except sa.exc.SQLAlchemyError as e:
            log.warning("event=alerts_error error=%r", db.short_error(e))
            return
        if n:
            log.info("event=alerts new=%d", n)

    def _refresh_backlog(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._backlog_at < BACKLOG_EVERY:
            return
        self._backlog_at = time.monotonic()
        try:
            counts = self.queue.backlog()
        except sa.exc.DBAPIError as e:  # only informative: the claim that follows will retry
            log.debug("event=backlog_unavailable error=%r", db.short_error(e))
            return
        self.stats.pending = counts["pending"]
        for state, n in counts.items():
            self.metrics.queue.labels(state).set(n)

    def _inputs(self, items: list[Claimed]) -> tuple[list[ScoreInput], list[bool]]:
        inputs, cut = [], []
        for item in items:
            text, was_cut = truncate(item.text, self.max_chars)
            inputs.append(ScoreInput(topic=item.topic, text=text))
            cut.append(was_cut)
        return inputs, cut

    def _check(self, res: Any, was_cut: bool) -> ScoreResult:
        if not isinstance(res, ScoreResult):
            return ScoreResult(error=f"backend returned {type(res).__name__}, not ScoreResult")
        res = validate_result(res, self.backend.dimensions)
        res.truncated = bool(res.truncated or was_cut)
        return res

    def _count(self, out: Any) -> None:
        self.stats.scored += out.done
        self.stats.failed += out.failed
        self.stats.retried += out.retry
        self.stats.lost += out.lost
        self.metrics.scored.inc(out.done)
        self.metrics.failed.inc(out.failed)
        self.metrics.retried.inc(out.retry)
        self.metrics.lost.inc(out.lost)

    def _error_pause(self, why: str) -> None:
        self._backoff = min(max(1.0, self._backoff * 2), self.idle_max)
        self.progress.clear()
        log.warning("event=backoff reason=%r seconds=%.1f", why, self._backoff)
        self._stop.wait(self._backoff)
