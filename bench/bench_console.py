"""Benchmark: the review console's pages on a database of N comments (default 1,000,000).

Generates a migrated SQLite database with ``INSERT … SELECT`` over a recursive CTE
(1,000,000 comments, 20,000 posts, 50 topics, four lexicon:v1 scores per comment with
rare high suicide-risk levels, 2,000 comments labelled by two annotators, 400 of them
by both), then times, in one run:

- the whole-database alert fill (``fill_alerts``) and a stratified queue fill of 200;
- each console page through Flask's test client with an admin session: median and
  maximum of 7 requests after one warm-up request.

    .venv/bin/python bench/bench_console.py --comments 20000          # a quick try
    .venv/bin/python bench/bench_console.py --comments 1000000 --keep data/bench_console.db

Texts are generated for this benchmark; no research data is used.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "Weibo_Spider")]

import sqlalchemy as sa  # noqa: E402

from weibo_mh import db  # noqa: E402

MACHINE = "lexicon:v1"
# suicide-risk level of comment i from (i * 2654435761) % 1000: mostly 0-2, about 2% at 7 and up
LEVEL = ("CASE WHEN h < 550 THEN 0 WHEN h < 750 THEN 1 WHEN h < 850 THEN 2 WHEN h < 900 THEN 3 "
         "WHEN h < 930 THEN 4 WHEN h < 955 THEN 5 WHEN h < 975 THEN 6 WHEN h < 985 THEN 7 "
         "WHEN h < 992 THEN 8 WHEN h < 997 THEN 9 ELSE 10 END")


def generate(url: str, n: int) -> dict[str, float]:
    eng = db.make_engine(url)
    db.migrate(eng)
    t0 = time.perf_counter()
    posts = max(1, n // 50)
    with eng.begin() as conn:
        x = conn.exec_driver_sql
        x("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < 50) "
          "INSERT INTO topics (id, word, first_seen, last_seen) "
          "SELECT i, '基准话题' || i, '2026-11-01 00:00:00', '2026-11-30 00:00:00' FROM k")
        x(f"WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < {posts - 1}) "
          "INSERT INTO posts (mid, text, created_at, reposts, comments_count, likes, first_scraped_at, "
          "scraped_at) SELECT printf('p%06d', i), '基准微博 ' || i, '2026-11-01 00:00:00', 0, 0, 0, "
          "'2026-11-01 00:00:00', '2026-11-01 00:00:00' FROM k")
        x(f"WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < {posts - 1}) "
          "INSERT INTO post_topics (mid, topic_id, first_seen) "
          "SELECT printf('p%06d', i), 1 + i % 50, '2026-11-01 00:00:00' FROM k")
        x(f"WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < {n - 1}) "
          "INSERT INTO comments (id, mid, author_hash, text, likes, created_at, first_scraped_at, "
          "scraped_at, score_status, attempts, scored_at) "
          f"SELECT printf('c%08d', i), printf('p%06d', i % {posts}), printf('%064x', (i * 7919) % "
          f"{max(1, n // 5)}), '基准评论，第 ' || i || ' 条：今天又是很累的一天', 0, "
          f"datetime('2026-11-01', '+' || (i * 2) || ' seconds'), '2026-11-30 00:00:00', "
          "'2026-11-30 00:00:00', 'done', 1, '2026-11-30 00:00:00' FROM k")
        gen = "(SELECT id, (CAST(substr(id, 2) AS INTEGER) * 2654435761) % 1000 AS h FROM comments)"
        for dim, value in (("suicide_risk", LEVEL), ("positivity", f"10 - ({LEVEL})"),
                           ("mood_disorder", f"min(10, ({LEVEL}) + h % 2)"), ("substance_use", "h % 3")):
            x("INSERT INTO scores (comment_id, dimension, scorer, value, confidence, rubric_version, "
              f"truncated, scored_at) SELECT id, '{dim}', '{MACHINE}', {value}, 0.3 + (h % 70) / 100.0, "
              f"'2026-11-a', 0, '2026-11-30 00:00:00' FROM {gen}")
        # two annotators over every step-th comment (500th of a million): h1 labels the first
        # 1,200 of them, h2 800, 400 of them the same: 2,000 labelled comments at any size
        step = max(1, n // 2000)
        for who, lo, hi in (("human:h1", 0, 1200), ("human:h2", 800, 1600)):
            x("INSERT INTO scores (comment_id, dimension, scorer, value, confidence, rubric_version, "
              f"truncated, scored_at) SELECT comment_id, dimension, '{who}', "
              f"CASE WHEN value < 10 AND (CAST(substr(comment_id, 2) AS INTEGER) / {step}) % 4 = 0 "
              "THEN value + 1 ELSE value END, NULL, '2026-11-a', 0, '2026-11-30 00:00:00' FROM scores "
              f"WHERE scorer = '{MACHINE}' AND CAST(substr(comment_id, 2) AS INTEGER) % {step} = 0 "
              f"AND CAST(substr(comment_id, 2) AS INTEGER) / {step} >= {lo} "
              f"AND CAST(substr(comment_id, 2) AS INTEGER) / {step} < {hi}")
    with eng.connect() as conn:
        conn.exec_driver_sql("ANALYZE")
    eng.dispose()
    return {"generate_s": time.perf_counter() - t0}


def measure(url: str, repeats: int = 7) -> tuple[dict[str, float], list[tuple[str, float, float, int]]]:
    from argon2 import PasswordHasher

    from analysis.console import annotate, auth
    from analysis.console.app import create_app
    from weibo_mh.alert_queue import fill_alerts
    from weibo_mh.config import load_config

    eng = db.make_engine(url)
    setup: dict[str, float] = {}
    t = time.perf_counter()
    with eng.begin() as conn:
        setup["alerts_created"] = fill_alerts(conn, MACHINE, 7)
    setup["fill_alerts_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with eng.begin() as conn:
        setup["fill_alerts_again_created"] = fill_alerts(conn, MACHINE, 7)
    setup["fill_alerts_again_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with eng.begin() as conn:
        annotate.fill(conn, "stratified", 200, actor="bench", scorer=MACHINE, share=0.2, seed=1)
    setup["fill_queue_200_s"] = time.perf_counter() - t
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # not what we time
    auth.add_user(eng, "bench", "admin", "bench-password-1", actor="bench")
    cfg = load_config(None, env={})
    app = create_app(cfg, eng, "b" * 40)
    client = app.test_client()
    page = client.get("/login").get_data(as_text=True)
    token = page.split('name="csrf_token" value="')[1].split('"')[0]
    r = client.post("/login", data={"username": "bench", "password": "bench-password-1", "csrf_token": token})
    assert r.status_code == 302, r.status_code
    with eng.connect() as conn:
        aid = conn.execute(sa.select(db.alerts.c.id).order_by(db.alerts.c.repeat_count.desc()).limit(1)).scalar()
    pages = ["/annotate", "/alerts", "/alerts?sort=recent", "/alerts?sort=repeat", "/alerts?page=20",
             f"/alerts/{aid}", "/agreement", "/admin"]
    rows = []
    # the agreement figures from scratch (what the page costs right after a label changes)
    from analysis import agreement

    cold = []
    with eng.connect() as conn:
        for _ in range(repeats):
            t = time.perf_counter()
            agreement.compute(conn)
            cold.append((time.perf_counter() - t) * 1000)
    rows.append(("agreement.compute (uncached)", statistics.median(cold), max(cold), 0))
    for p in pages:
        client.get(p)  # warm-up: imports, template compilation, page cache
        times = []
        size = 0
        for _ in range(repeats):
            t = time.perf_counter()
            resp = client.get(p)
            times.append((time.perf_counter() - t) * 1000)
            assert resp.status_code == 200, (p, resp.status_code)
            size = len(resp.data)
        rows.append((p, statistics.median(times), max(times), size))
    eng.dispose()
    return setup, rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comments", type=int, default=1_000_000)
    ap.add_argument("--keep", metavar="FILE", help="write the database here and keep it (default: a temp file)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(a.keep) if a.keep else Path(tmp) / "bench_console.db"
        if path.exists():
            path.unlink()
        url = f"sqlite:///{path}"
        print(f"generating {a.comments:,} comments in {path} …", file=sys.stderr)
        gen = generate(url, a.comments)
        setup, rows = measure(url)
    print(f"\nmachine: {platform.machine()}, Python {platform.python_version()}, SQLite {sa.__version__ and __import__('sqlite3').sqlite_version}")
    print(f"comments: {a.comments:,}; generated in {gen['generate_s']:.0f} s")
    print(f"fill_alerts (whole database): {setup['alerts_created']:,} alerts in {setup['fill_alerts_s']:.2f} s; "
          f"again: {setup['fill_alerts_again_created']} in {setup['fill_alerts_again_s']:.2f} s")
    print(f"fill-queue stratified 200: {setup['fill_queue_200_s']:.2f} s\n")
    print("| page | median ms | max ms | bytes |\n|---|---:|---:|---:|")
    for p, med, mx, size in rows:
        print(f"| `{p}` | {med:.1f} | {mx:.1f} | {size:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
