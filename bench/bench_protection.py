"""Data protection at scale: retention, forget and export on a seeded database, both engines.

Seeds the same synthetic database on SQLite and MariaDB: ``--rows`` comments, half of them
old (spread over 100 days a year ago, each with 4 scores and alerts at level >= 7) and half
new and waiting to be scored. Then, timed:

1. ``retention --texts-older-than`` on the old half, while a worker's claim (16 comments,
   then released) is timed again and again: claim latency during the run against idle;
2. ``retention --rows-older-than`` on the old half, with the same claim probe;
3. ``forget`` of one author with ``--author-rows`` comments (one pass over comments: there
   is no author index);
4. ``export`` of the new half to Parquet;
5. ``rollups verify`` after all that (must report no difference).

    .venv/bin/python bench/bench_protection.py [--rows 40000] [--mysql-url URL] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from weibo_mh import alert_queue, db, rollups

DEFAULT_MYSQL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
AUTHOR = "f" * 64
SCORER = "bench:1"
DIMS = ("positivity", "mood_disorder", "substance_use", "suicide_risk")


def seed(url: str, rows: int, author_rows: int) -> None:
    eng = db.make_engine(url)
    db.migrate(eng)
    now = db.now()
    old0 = now - timedelta(days=465)
    with eng.begin() as conn:
        conn.execute(db.topics.insert().values(word="基准话题", first_seen=old0, last_seen=now))
        for mid, t in (("old", old0), ("new", now)):
            conn.execute(db.posts.insert().values(mid=mid, text="基准测试微博", created_at=t,
                                                  first_scraped_at=t, scraped_at=t))
            conn.execute(db.post_topics.insert().values(mid=mid, topic_id=1, first_seen=t))
        batch: list[dict[str, Any]] = []
        scores: list[dict[str, Any]] = []
        half = rows // 2
        for i in range(rows):
            old = i < half
            t = old0 + timedelta(days=i * 100 // half, minutes=i % 1440) if old else now - timedelta(minutes=10)
            author = AUTHOR if i % (rows // author_rows) == 0 else f"{i % 5000:064x}"
            batch.append({"id": f"c{i:08d}", "mid": "old" if old else "new", "author_hash": author,
                          "text": f"第{i}条评论，今天心情一般。", "created_at": t, "first_scraped_at": t,
                          "scraped_at": t, "score_status": "done" if old else "pending",
                          "ip_location": ("广东", "北京", None)[i % 3]})
            if old:
                scores += [{"comment_id": f"c{i:08d}", "dimension": d, "scorer": SCORER,
                            "value": (i * 7 + k) % 11, "rubric_version": "r", "scored_at": t}
                           for k, d in enumerate(DIMS)]
            if len(batch) == 2000:
                conn.execute(db.comments.insert(), batch)
                batch = []
        if batch:
            conn.execute(db.comments.insert(), batch)
        for j in range(0, len(scores), 8000):
            conn.execute(db.scores.insert(), scores[j:j + 8000])
        rollups.rebuild(conn, lag=timedelta(0))
        alert_queue.fill_alerts(conn, SCORER, 7)
    eng.dispose()


def probe(engine: sa.Engine, stop: threading.Event, out: list[float]) -> None:
    """Time a worker's claim of 16 comments (released again at once) until ``stop``."""
    from llm_worker.queue import Queue

    q = Queue(engine, f"probe-{uuid.uuid4().hex[:6]}")
    while not stop.is_set():
        t0 = time.perf_counter()
        got = q.claim(16)
        out.append(time.perf_counter() - t0)
        q.release(got)
        time.sleep(0.02)
    q.close()


def with_probe(engine: sa.Engine, fn: Callable[[], Any]) -> tuple[float, Any, list[float]]:
    lat: list[float] = []
    stop = threading.Event()
    th = threading.Thread(target=probe, args=(engine, stop, lat))
    th.start()
    t0 = time.perf_counter()
    result = fn()
    took = time.perf_counter() - t0
    stop.set()
    th.join()
    return took, result, lat


def idle_latency(engine: sa.Engine, seconds: float = 2.0) -> list[float]:
    lat: list[float] = []
    stop = threading.Event()
    th = threading.Thread(target=probe, args=(engine, stop, lat))
    th.start()
    time.sleep(seconds)
    stop.set()
    th.join()
    return lat


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1000:.1f} / {max(values) * 1000:.0f}"


def bench(name: str, url: str, rows: int, author_rows: int, tmp: Path) -> list[str]:
    from analysis.export import Spec, export
    from analysis.window import Window
    from weibo_mh.protection import forget, retention

    t0 = time.perf_counter()
    seed(url, rows, author_rows)
    print(f"{name}: seeded {rows} comments in {time.perf_counter() - t0:.0f}s", file=sys.stderr)
    eng = db.make_engine(url)
    idle = idle_latency(eng)
    cut = retention.cutoff(300)
    plan_t = retention.Plan(texts_before=cut, batch_size=500, pause_seconds=0.05)
    took_t, (_, emptied), lat_t = with_probe(eng, lambda: retention.run(eng, plan_t))
    plan_r = retention.Plan(rows_before=cut, batch_size=500, pause_seconds=0.05)
    took_r, (deleted, _), lat_r = with_probe(eng, lambda: retention.run(eng, plan_r))
    t0 = time.perf_counter()
    gone = forget.forget(eng, [AUTHOR])
    took_f = time.perf_counter() - t0
    t0 = time.perf_counter()
    m = export(eng, tmp / f"export-{name}", Spec(Window(), [SCORER]))
    took_e = time.perf_counter() - t0
    n_export = next(iter(m["row_counts"].values()))
    diffs = rollups.verify(eng)
    eng.dispose()
    n_t, n_r = emptied["comments.text"], deleted["comments"]
    return [
        f"| {name} | texts retention | {n_t:,} texts emptied | {took_t:.1f} | {n_t / took_t:,.0f} | "
        f"{ms(idle)} | {ms(lat_t)} |",
        f"| {name} | rows retention | {n_r:,} comments, {deleted['scores']:,} scores, {deleted['alerts']:,} "
        f"alerts deleted | {took_r:.1f} | {n_r / took_r:,.0f} | {ms(idle)} | {ms(lat_r)} |",
        f"| {name} | forget | {gone['comments']:,} comments of one author (of {rows // 2:,} left) | "
        f"{took_f:.2f} | - | - | - |",
        f"| {name} | export (Parquet) | {n_export:,} rows | {took_e:.1f} | {n_export / took_e:,.0f} | - | - |",
        f"| {name} | rollups verify afterwards | {len(diffs)} rows differ | - | - | - | - |",
    ]


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=40_000)
    ap.add_argument("--author-rows", type=int, default=200)
    ap.add_argument("--mysql-url", default=DEFAULT_MYSQL)
    ap.add_argument("--out", help="also write the Markdown table here")
    a = ap.parse_args()
    lines = [f"Command: `.venv/bin/python bench/bench_protection.py --rows {a.rows}` "
             f"({datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, {os.cpu_count()} cores, "
             f"load {os.getloadavg()[0]:.1f})", "",
             "| database | step | work | seconds | rows/s | claim ms idle (median / max) | "
             "claim ms during (median / max) |", "|---|---|---|---|---|---|---|"]
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        lines += bench("SQLite", f"sqlite:///{tmp / 'bench.db'}", a.rows, a.author_rows, tmp)
        server = sa.make_url(db.normalise_url(a.mysql_url))
        name = f"wmh_bench_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(server)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        try:
            lines += bench("MariaDB", server.set(database=name).render_as_string(hide_password=False),
                           a.rows, a.author_rows, tmp)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
            admin.dispose()
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
