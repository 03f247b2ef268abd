"""Fault injectors and row counting shared by the reliability suite."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from tests.conftest import ROOT
from weibo_mh import db

PY = sys.executable


class SessionKiller:
    """Kills every MariaDB session on one database from another connection, every ``every`` seconds."""

    def __init__(self, url: str, every: float = 0.4, limit: int = 6) -> None:
        self.name = sa.make_url(url).database
        self.admin = db.make_engine(url)
        self.every, self.limit = every, limit
        self.killed: list[int] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.killed) < self.limit:
            try:
                with self.admin.connect() as conn:
                    ids = [r[0] for r in conn.execute(sa.text(
                        "SELECT id FROM information_schema.processlist "
                        "WHERE db = :db AND id != CONNECTION_ID()"), {"db": self.name})]
                    for i in ids:
                        try:
                            conn.execute(sa.text(f"KILL {int(i)}"))
                            self.killed.append(i)
                        except sa.exc.DBAPIError:
                            pass  # the session ended by itself
            except sa.exc.DBAPIError:
                pass
            self._stop.wait(self.every)

    def __enter__(self) -> SessionKiller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.admin.dispose()


def table_counts(url: str) -> dict[str, int]:
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            return {t.name: conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                    for t in db.metadata.sorted_tables if t.name != "schema_version"}
    finally:
        eng.dispose()


def scoring_summary(url: str) -> dict[str, Any]:
    """Per-status comment counts, and how many comments hold other than one score per dimension."""
    eng = db.make_engine(url)
    c, s = db.comments.c, db.scores.c
    try:
        with eng.connect() as conn:
            status = dict(conn.execute(sa.select(c.score_status, sa.func.count()).group_by(c.score_status)).all())
            per_comment = (sa.select(s.comment_id, s.scorer, sa.func.count().label("n"))
                           .group_by(s.comment_id, s.scorer).subquery())
            bad = conn.execute(sa.select(sa.func.count()).select_from(per_comment)
                               .where(per_comment.c.n != 4)).scalar()
            failed_without_reason = conn.execute(sa.select(sa.func.count()).where(
                c.score_status == "failed", sa.or_(c.last_error.is_(None), c.last_error == ""))).scalar()
            unscored_done = conn.execute(sa.select(sa.func.count()).where(
                c.score_status == "done", ~sa.exists().where(s.comment_id == c.id))).scalar()
    finally:
        eng.dispose()
    return {"status": status, "comments_without_4_scores": bad,
            "failed_without_reason": failed_without_reason, "done_without_scores": unscored_done}


def worker_cmd(url: str, *args: str) -> list[str]:
    return [PY, "-m", "llm_worker", "--db", url, *args]


def run(cmd: list[str], env: dict[str, str] | None = None, timeout: float = 180,
        cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    full = dict(os.environ)
    full.update(env or {})
    return subprocess.run(cmd, cwd=cwd, env=full, capture_output=True, text=True, timeout=timeout)


@contextmanager
def popen(cmd: list[str], env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[str]]:
    full = dict(os.environ)
    full.update(env or {})
    p = subprocess.Popen(cmd, cwd=ROOT, env=full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    try:
        yield p
    finally:
        if p.poll() is None:
            p.kill()
        p.wait(timeout=30)
