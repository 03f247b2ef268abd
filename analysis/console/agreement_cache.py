"""The agreement page's figures, computed once per change of the human labels.

Computing them reads every human score and its partners (0.2-0.5 s for 2,000 labelled
comments on a busy 2-core machine), which is too slow for every view. The figures are
kept until a label, skip or undo happens (the newest audit_log id of each of those
actions is the key, read through ``ix_audit_action``) and for ``ttl`` seconds at most,
since machine scores may be redone. After a label changes, ``warm`` recomputes them in
a background thread, so that the next view is quick too.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analysis import agreement
from weibo_mh import db

log = logging.getLogger(__name__)
#: Audit actions after which the human labels may differ (retention and forget delete labels).
LABEL_ACTIONS = ("label", "skip", "undo", "retention", "forget")


class AgreementCache:
    def __init__(self, engine: Engine, ttl: float = 300.0) -> None:
        self.engine = engine
        self.ttl = ttl
        self._lock = threading.Lock()
        self._key: tuple[Any, ...] | None = None
        self._at = 0.0
        self._value: agreement.Agreement | None = None
        self._warming = False

    @staticmethod
    def labels_key(conn: Connection) -> tuple[Any, ...]:
        L = db.audit_log
        return tuple(conn.execute(sa.select(sa.func.max(L.c.id)).where(L.c.action == a)).scalar()
                     for a in LABEL_ACTIONS)

    def _fresh(self, key: tuple[Any, ...]) -> agreement.Agreement | None:
        with self._lock:
            if self._value is not None and self._key == key and time.monotonic() - self._at < self.ttl:
                return self._value
        return None

    def _store(self, key: tuple[Any, ...], value: agreement.Agreement) -> None:
        with self._lock:
            self._key, self._at, self._value = key, time.monotonic(), value

    def get(self, conn: Connection) -> agreement.Agreement:
        key = self.labels_key(conn)
        value = self._fresh(key)
        if value is None:
            value = agreement.compute(conn)
            self._store(key, value)
        return value

    def warm(self) -> None:
        """Recompute in the background (one thread at a time; only once someone has looked)."""
        with self._lock:
            if self._warming or self._value is None:
                return
            self._warming = True
        threading.Thread(target=self._run, name="agreement-warm", daemon=True).start()

    def _run(self) -> None:
        try:
            for _ in range(3):  # labels saved while computing: go again, a few times at most
                with self.engine.connect() as conn:
                    key = self.labels_key(conn)
                    if self._fresh(key) is not None:
                        return
                    self._store(key, agreement.compute(conn))
        except Exception as e:  # noqa: BLE001 - the next view computes them itself
            log.warning("event=agreement_warm_failed error=%r", db.short_error(e))
        finally:
            with self._lock:
                self._warming = False
