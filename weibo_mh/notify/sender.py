"""The sender loop: when a channel sends, what goes in one message, what happens on failure.

Per channel and round (every ``notify.poll_seconds``):

1. take the channel's lease (another notifier holding it: skip the channel);
2. wait while the channel backs off after a failure (``backoff_seconds``, doubling, at most
   ``backoff_max_seconds``);
3. wait while the last message is younger than ``digest_minutes``: the first alert after a
   quiet spell goes at once, later ones are gathered into one digest when the window ends;
4. wait while ``max_per_hour`` messages went out in the last hour: what the cap holds back
   stays pending and goes out in the next digest;
5. send every pending notification of the channel in one digest, then mark them sent at
   once, in their own transaction.

If the process dies between a delivery and its marking (a SIGKILL, a power cut, the database
gone at that instant), the rows are still pending and are sent again when the lease expires:
delivery is at least once, and a duplicate carries the same alert ids, so a receiver can drop
it. A SIGTERM lets the message in hand finish and be marked first.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from weibo_mh import db
from weibo_mh.notify import outbox
from weibo_mh.notify.channels import Channel, SendError
from weibo_mh.notify.message import Renderer

log = logging.getLogger("weibo_mh.notify")

#: Alerts in one digest at most; more wait for the next message (the cap counts messages).
MAX_DIGEST = 200


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


class Notifier:
    def __init__(self, engine: Engine, channels: Mapping[str, Channel], renderer: Renderer, *,
                 digest_minutes: float = 5.0, max_per_hour: int = 12, backoff_seconds: float = 30.0,
                 backoff_max_seconds: float = 1800.0, max_attempts: int = 48, poll_seconds: float = 10.0,
                 lease_seconds: float = 300.0, owner: str = "",
                 clock: Callable[[], datetime] = db.now) -> None:
        self.engine = engine
        self.channels = dict(channels)
        self.renderer = renderer
        self.window = timedelta(minutes=digest_minutes)
        self.max_per_hour = max_per_hour
        self.backoff, self.backoff_max = backoff_seconds, backoff_max_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.owner = owner or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.clock = clock
        self._held: set[str] = set()
        self._stop = threading.Event()

    @classmethod
    def from_config(cls, cfg: Any, engine: Engine, channels: Mapping[str, Channel], **kw: Any) -> Notifier:
        no = cfg.notify
        # the lease outlives the slowest send, so that a live sender never loses it mid-message
        slowest = max(no.webhook_timeout_seconds, no.smtp_timeout_seconds * 4, no.command_timeout_seconds)
        return cls(engine, channels, Renderer.from_config(cfg), digest_minutes=no.digest_minutes,
                   max_per_hour=no.max_per_hour, backoff_seconds=no.backoff_seconds,
                   backoff_max_seconds=no.backoff_max_seconds, max_attempts=no.max_attempts,
                   poll_seconds=no.poll_seconds, lease_seconds=slowest + 60, **kw)

    # ------------------------------------------------------------------ loop

    def stop(self) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def reclaim(self) -> None:
        """Free the leases of dead notifiers on this host (a SIGKILL leaves its lease behind)."""
        with self._tx() as conn, conn.begin():
            freed = outbox.reclaim_dead(conn, socket.gethostname(), _pid_alive)
        if freed:
            log.info("event=notify_reclaimed channels=%s note='a notifier of this host died holding them'",
                     ",".join(freed))

    def run(self) -> None:
        """Rounds every poll_seconds until ``stop``; a database outage is logged and waited out."""
        log.info("event=notify_start channels=%s owner=%s", ",".join(self.channels), self.owner)
        try:
            self.reclaim()
        except sa.exc.SQLAlchemyError as e:
            log.warning("event=notify_db_error error=%r", db.short_error(e))
        while not self._stop.is_set():
            try:
                self.tick()
            except sa.exc.SQLAlchemyError as e:
                log.warning("event=notify_db_error error=%r", db.short_error(e))
            except Exception:  # noqa: BLE001 - the sender thread must outlive a bug in one round
                log.exception("event=notify_error")
            self._stop.wait(self.poll_seconds)
        log.info("event=notify_stop owner=%s", self.owner)

    def tick(self) -> int:
        """One round over every channel; returns the messages sent."""
        return sum(self.send_channel(name) for name in self.channels if not self._stop.is_set())

    def _tx(self) -> Any:
        return self.engine.connect().execution_options(sqlite_begin="IMMEDIATE")

    def send_channel(self, name: str) -> int:
        now = self.clock()
        with self.engine.connect() as conn:   # a read first: an idle poll takes no write lock
            if not outbox.due(conn, name, 1):
                self._held.discard(name)
                return 0
        with self._tx() as conn, conn.begin():
            if not outbox.lease(conn, name, self.owner, now, self.lease_seconds):
                return 0
        try:
            return self._send_leased(name, now)
        finally:
            with self._tx() as conn, conn.begin():
                outbox.release(conn, name, self.owner)

    def _send_leased(self, name: str, now: datetime) -> int:
        with self.engine.connect() as conn:
            st = outbox.channel_state(conn, name, now)
            if st.retry_at is not None and now < st.retry_at:
                return 0
            ids = outbox.due(conn, name, MAX_DIGEST)
            if not ids:
                self._held.discard(name)
                return 0
            if st.last_sent_at is not None and now < st.last_sent_at + self.window:
                return 0  # gathering a digest
            if st.sent_last_hour >= self.max_per_hour:
                if name not in self._held:
                    log.warning("event=notify_capped channel=%s waiting=%d max_per_hour=%d note='held "
                                "back, sent in the next digest'", name, len(ids), self.max_per_hour)
                    self._held.add(name)
                return 0
            digest = self.renderer.digest(conn, ids)
        self._held.discard(name)
        try:
            self.channels[name].send(digest)
        except Exception as e:  # noqa: BLE001 - SendError, or a bug: either way the rows wait and back off
            error = str(e) if isinstance(e, SendError) else f"{type(e).__name__}: {e}"
            with self._tx() as conn, conn.begin():
                retry_at = outbox.mark_failed(conn, name, ids, error, self.clock(), self.backoff,
                                              self.backoff_max, self.max_attempts)
            log.warning("event=notify_failed channel=%s alerts=%d retry_at=%s error=%r", name, len(ids),
                        retry_at.isoformat(sep=" "), error)
            return 0
        # marked at once: the only window for a duplicate is between these two statements
        db.retry_on_disconnect(lambda: self._mark_sent(name, ids, digest.id), attempts=5,
                               what="mark notifications sent")
        log.info("event=notify_sent channel=%s digest=%s alerts=%d", name, digest.id, len(ids))
        return 1

    def _mark_sent(self, name: str, ids: list[int], digest: str) -> None:
        with self._tx() as conn, conn.begin():
            outbox.mark_sent(conn, name, ids, digest, self.clock())

    # ------------------------------------------------------------------ thread

    def start_thread(self) -> threading.Thread:
        """Run in a daemon thread (the scoring worker's way); ``stop`` then ``join`` it."""
        t = threading.Thread(target=self.run, name="notifier", daemon=True)
        t.start()
        return t
