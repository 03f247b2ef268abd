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
            return {t.name: int(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar() or 0)
                    for t in db.metadata.sorted_tables if t.name != "schema_version"}
    finally:
        eng.dispose()


def scoring_summary(url: str) -> dict[str, Any]:
    """Per-status comment counts, and how many comments hold other than one score per dimension."""
    eng = db.make_engine(url)
    c, s = db.comments.c, db.scores.c
    try:
        with eng.connect() as conn:
            status: dict[str, int] = dict(conn.execute(sa.select(c.score_status, sa.func.count())
                                                       .group_by(c.score_status)).all())
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


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ThrowawayMariaDB:
    """A private MariaDB server in a temporary folder, killed and restarted by its own PID.

    Never the shared server: the outage tests SIGKILL this one mid-crawl. Its data folder
    survives a kill (InnoDB recovers on restart), as a production server's does.
    """

    INSTALL = "mariadb-install-db"
    SERVER = "/usr/sbin/mariadbd"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.datadir = root / "data"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "mariadbd.log"
        self.tmpdir = root / "tmp"

    @classmethod
    def available(cls) -> bool:
        import shutil

        return bool(shutil.which(cls.INSTALL)) and Path(cls.SERVER).exists()

    def install(self) -> None:
        self.datadir.mkdir(parents=True)
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        subprocess.run([self.INSTALL, "--no-defaults", f"--datadir={self.datadir}", f"--tmpdir={self.tmpdir}",
                        "--auth-root-authentication-method=normal", "--skip-test-db", "--user=root"],
                       check=True, capture_output=True, timeout=120)

    def start(self, timeout: float = 60) -> None:
        import time

        self.proc = subprocess.Popen(
            [self.SERVER, "--no-defaults", f"--datadir={self.datadir}", f"--port={self.port}",
             "--bind-address=127.0.0.1", "--user=root", "--character-set-server=utf8mb4",
             "--collation-server=utf8mb4_unicode_ci", f"--socket={self.root / 'mariadbd.sock'}",
             f"--pid-file={self.root / 'mariadbd.pid'}", "--innodb-buffer-pool-size=32M",
             # its own tmpdir: a server starting up deletes the '#sql*' files in its tmpdir,
             # and in /tmp those are the live temporary tables of the machine's main server
             f"--tmpdir={self.tmpdir}",
             "--skip-name-resolve", f"--log-error={self.log}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        eng = sa.create_engine(self.server_url())
        try:
            while True:
                try:
                    with eng.connect() as conn:
                        conn.execute(sa.text("SELECT 1"))
                    return
                except sa.exc.OperationalError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"throwaway MariaDB did not start; see {self.log}") from None
                    time.sleep(0.2)
        finally:
            eng.dispose()

    def kill(self) -> None:
        """SIGKILL this server (by its PID), as a crash or an OOM kill would."""
        import signal

        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def server_url(self) -> str:
        return f"mysql+pymysql://root@127.0.0.1:{self.port}/?charset=utf8mb4"

    def new_database(self, name: str) -> str:
        """A migrated database on this server; its URL."""
        admin = sa.create_engine(self.server_url())
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        admin.dispose()
        url = f"mysql+pymysql://root@127.0.0.1:{self.port}/{name}?charset=utf8mb4"
        eng = db.make_engine(url)
        db.migrate(eng)
        eng.dispose()
        return url


@contextmanager
def throwaway_server(root: Path) -> Iterator[ThrowawayMariaDB]:
    """A private MariaDB installed under ``root`` on a free port, stopped on exit."""
    m = ThrowawayMariaDB(root)
    m.install()
    m.start()
    try:
        yield m
    finally:
        m.stop()
