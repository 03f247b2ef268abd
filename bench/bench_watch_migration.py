"""How long migration 8 (watch lists) takes on a database that already holds many comments.

Migration 8 adds ``comments.priority`` and the index ``ix_comments_priority_queue`` over
every comment (plus ``crawl_runs.kind`` and the empty ``watched_posts``). The script builds a
schema-7 database (today's tables without what migration 8 adds), fills it with synthetic
comments, and times ``python -m weibo_mh.db migrate``'s work (``db.migrate``), on SQLite and
on MariaDB, one after the other.

    .venv/bin/python bench/bench_watch_migration.py [--comments 1000000] [--mysql-url URL]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from weibo_mh import db

DEFAULT_MYSQL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def schema7(url: str) -> None:
    """Today's tables, less what migration 8 adds, recorded as schema version 7."""
    eng = db.make_engine(url)
    with eng.begin() as conn:
        db.metadata.create_all(conn)
        on = "" if db.is_sqlite(conn) else " ON comments"
        conn.exec_driver_sql("DROP INDEX ix_comments_priority_queue" + on)
        conn.exec_driver_sql("ALTER TABLE comments DROP COLUMN priority")
        conn.exec_driver_sql("DROP INDEX ix_crawl_runs_kind" + on.replace("comments", "crawl_runs"))
        conn.exec_driver_sql("ALTER TABLE crawl_runs DROP COLUMN kind")
        conn.exec_driver_sql("DROP TABLE watched_posts")
        conn.execute(db.schema_version.insert(), [
            {"version": v, "applied_at": db.now(), "description": d}
            for v, (d, _) in sorted(db.MIGRATIONS.items()) if v < 8])
    eng.dispose()


def fill(url: str, comments: int) -> None:
    eng = db.make_engine(url)
    t = db.now()
    c = sa.table("comments", *(sa.column(n) for n in ("id", "mid", "text", "first_scraped_at",
                                                      "scraped_at", "score_status")))
    with eng.begin() as conn:
        conn.execute(db.posts.insert().values(mid="m1", text="基准测试微博", first_scraped_at=t, scraped_at=t))
        for start in range(0, comments, 5000):
            conn.execute(c.insert(), [{"id": f"c{i:09d}", "mid": "m1", "text": f"第{i}条评论，今天心情一般。",
                                       "first_scraped_at": t, "scraped_at": t,
                                       "score_status": "done" if i % 10 else "pending"}
                                      for i in range(start, min(start + 5000, comments))])
    eng.dispose()


def timed_migration(url: str) -> float:
    eng = db.make_engine(url)
    started = time.perf_counter()
    applied = db.migrate(eng)
    took = time.perf_counter() - started
    assert applied == [8], applied
    with eng.connect() as conn:
        pending = conn.execute(sa.select(sa.func.count()).select_from(db.comments)
                               .where(db.comments.c.score_status == "pending",
                                      db.comments.c.priority == 0)).scalar()
    eng.dispose()
    assert pending, "the comments are not there"
    return took


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--comments", type=int, default=1_000_000)
    ap.add_argument("--mysql-url", default=DEFAULT_MYSQL, help="server for the MariaDB run ('' to skip)")
    a = ap.parse_args()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        urls = [("SQLite", f"sqlite:///{Path(tmp) / 'm8.db'}")]
        admin = None
        name = ""
        if a.mysql_url:
            name = f"bench_m8_{uuid.uuid4().hex[:8]}"
            admin = sa.create_engine(a.mysql_url)
            with admin.connect() as conn:
                conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
            urls.append(("MariaDB", sa.make_url(a.mysql_url).set(database=name)
                         .render_as_string(hide_password=False)))
        try:
            for label, url in urls:
                schema7(url)
                started = time.perf_counter()
                fill(url, a.comments)
                print(f"{label}: {a.comments:,} comments written in {time.perf_counter() - started:.0f}s",
                      flush=True)
                took = timed_migration(url)
                print(f"{label}: migration 8 took {took:.1f}s", flush=True)
                results.append((label, took))
        finally:
            if admin is not None:
                with admin.connect() as conn:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
                admin.dispose()
    load = os.getloadavg()[0]
    print(f"\nRun {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} ({os.cpu_count()} cores, "
          f"load average {load:.1f}), {a.comments:,} comments.\n")
    print("| database | comments | migration 8 |\n|---|---|---|")
    for label, took in results:
        print(f"| {label} | {a.comments:,} | {took:.1f} s |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
