"""Queue overhead: comments/s through claim -> score -> write-back with a scorer that does nothing.

Runs, side by side in one invocation, SQLite and MariaDB with 1 and 3 worker processes
(and two batch sizes), each on a fresh database seeded with the same synthetic comments.
Worker processes are started first and released together, so process start-up is not
timed. The null scorer costs nothing, so the figure is the ceiling the database and the
queue logic put on any backend.

    .venv/bin/python bench/bench_queue.py [--rows 10000] [--repeat 3] [--mysql-url URL] [--out FILE]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from weibo_mh import db

DEFAULT_MYSQL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def seed(url: str, rows: int) -> None:
    eng = db.make_engine(url)
    db.migrate(eng)
    t = db.now()
    with eng.begin() as conn:
        conn.execute(db.posts.insert().values(mid="m1", text="基准测试微博", first_scraped_at=t, scraped_at=t))
        conn.execute(db.topics.insert().values(word="基准话题", first_seen=t, last_seen=t))
        conn.execute(db.post_topics.insert().values(mid="m1", topic_id=1, first_seen=t))
        batch = []
        for i in range(rows):
            batch.append({"id": f"b{i:08d}", "mid": "m1", "text": f"第{i}条评论，今天心情一般。",
                          "first_scraped_at": t, "scraped_at": t})
            if len(batch) == 2000:
                conn.execute(db.comments.insert(), batch)
                batch = []
        if batch:
            conn.execute(db.comments.insert(), batch)
    eng.dispose()


def _worker(url: str, wid: str, batch: int, go: Any, out: Any) -> None:
    import io

    from llm_worker.queue import Queue
    from llm_worker.scoring.backends.null import NullBackend
    from llm_worker.worker import Worker
    from weibo_mh.progress import Progress
    from weibo_mh.rubric import CORE_DIMENSIONS

    eng = db.make_engine(url)
    w = Worker(Queue(eng, wid), NullBackend(CORE_DIMENSIONS), batch_size=batch, once=True,
               progress=Progress(stream=io.StringIO(), tty=False))
    with eng.connect() as conn:  # open the pool before the clock starts
        conn.execute(sa.text("SELECT 1"))
    go.wait()
    stats = w.run()
    out.put((wid, stats.scored, stats.lost))
    eng.dispose()


def timed_run(url: str, workers: int, batch: int) -> tuple[float, int]:
    ctx = mp.get_context("spawn")
    go, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(url, f"bench-{i}", batch, go, out)) for i in range(workers)]
    for p in procs:
        p.start()
    time.sleep(3.0)  # let every process import and connect
    t0 = time.perf_counter()
    go.set()
    results = [out.get(timeout=1800) for _ in procs]
    elapsed = time.perf_counter() - t0
    for p in procs:
        p.join()
    return elapsed, sum(r[1] for r in results)


def check(url: str, rows: int) -> None:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        done = conn.execute(sa.select(sa.func.count()).where(db.comments.c.score_status == "done")).scalar()
        twice = conn.execute(sa.select(sa.func.count()).where(db.comments.c.attempts != 1)).scalar()
        n_scores = conn.execute(sa.select(sa.func.count()).select_from(db.scores)).scalar()
    eng.dispose()
    assert done == rows and twice == 0 and n_scores == rows * 4, (done, twice, n_scores)


def mysql_database(server_url: str) -> tuple[str, sa.Engine, str]:
    server = sa.make_url(db.normalise_url(server_url))
    name = f"wmh_bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(server)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return name, admin, server.set(database=name).render_as_string(hide_password=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=10000, help="comments per run")
    ap.add_argument("--batch-sizes", default="16,64")
    ap.add_argument("--workers", default="1,3")
    ap.add_argument("--mysql-url", default=DEFAULT_MYSQL, help="server for the MariaDB runs ('' to skip)")
    ap.add_argument("--repeat", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--out", help="also append the Markdown table to this file")
    a = ap.parse_args()
    batches = [int(x) for x in a.batch_sizes.split(",")]
    worker_counts = [int(x) for x in a.workers.split(",")]

    configs = [(e, b, n) for e in (["sqlite"] + (["mariadb"] if a.mysql_url else []))
               for b in batches for n in worker_counts]
    rates: dict[tuple[str, int, int], list[float]] = {cfg: [] for cfg in configs}
    # Rounds interleave the configurations, so that a burst of load from other work on
    # the machine hits all of them alike; the median of the rounds is reported.
    for rnd in range(a.repeat):
        for engine_name, batch, n in configs:
            if engine_name == "sqlite":
                url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='bench_queue_')) / 'bench.db'}"
                cleanup = None
            else:
                name, admin, url = mysql_database(a.mysql_url)
                cleanup = (admin, name)
            try:
                seed(url, a.rows)
                elapsed, scored = timed_run(url, n, batch)
                check(url, a.rows)
            finally:
                if cleanup:
                    with cleanup[0].connect() as conn:
                        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{cleanup[1]}`")
                    cleanup[0].dispose()
            rates[(engine_name, batch, n)].append(scored / elapsed)
            print(f"round={rnd + 1} {engine_name:8} batch={batch:<3} workers={n} comments={scored} "
                  f"seconds={elapsed:.2f} comments/s={scored / elapsed:.0f}", file=sys.stderr)
    rows_out = [(e, b, n, statistics.median(r), min(r), max(r)) for (e, b, n), r in rates.items()]

    base = {(e, b): r for e, b, n, r, _, _ in rows_out if n == worker_counts[0]}
    lines = [f"Run {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.node()} "
             f"({os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end), "
             f"{a.rows} comments per run, null scorer, 4 dimensions (4 score rows per comment), "
             f"median of {a.repeat} interleaved rounds (min-max in brackets). Command: "
             f"`.venv/bin/python bench/bench_queue.py --rows {a.rows} --repeat {a.repeat}`", "",
             "| database | batch | workers | comments/s | score rows/s | vs 1 worker |",
             "|---|---|---|---|---|---|"]
    for e, b, n, r, lo, hi in rows_out:
        lines.append(f"| {e} | {b} | {n} | {r:,.0f} ({lo:,.0f}-{hi:,.0f}) | {4 * r:,.0f} | "
                     f"{r / base[(e, b)]:.2f}x |")
    table = "\n".join(lines)
    print(table)
    if a.out:
        with open(a.out, "a", encoding="utf-8") as f:
            f.write(table + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
