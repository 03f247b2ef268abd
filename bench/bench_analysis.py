"""Benchmark: `analysis.report` (SQL aggregates) against a naive pandas full load, in one run.

Generates a SQLite database with N scored comments (default 1,000,000) over 90 days
and 50 topics, then runs, each in a fresh subprocess that reports its own peak RSS:

1. ``python -m analysis.report`` on the database (all charts, alerts, index.html);
2. a naive notebook-style pass: read every comment and score into pandas, join the
   topics and compute the same daily/topic means.

Prints and optionally appends the figures as Markdown. Try it small first:

    .venv/bin/python bench/bench_analysis.py --comments 20000
    .venv/bin/python bench/bench_analysis.py --comments 1000000 --markdown /work/notes/analysis-benchmarks.md
    .venv/bin/python bench/bench_analysis.py --comments 100000 --mysql-url mysql+pymysql://root@127.0.0.1:3306/

Texts are generated from phrases written for this benchmark; no research data is used.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DIMS = ("positivity", "mood_disorder", "substance_use", "suicide_risk")
START = datetime(2026, 8, 1)
FMT = "%Y-%m-%d %H:%M:%S.000000"  # SQLAlchemy's SQLite DATETIME storage format

TOPIC_WORDS = ("考试季", "加班", "失眠", "毕业", "租房", "春运", "相亲", "裁员", "体检", "减肥",
               "养猫", "高考", "早高峰", "外卖", "演唱会")
PHRASES = ("今天又是很累的一天", "终于下班了想好好睡一觉", "谢谢大家的鼓励", "看完这个心情好多了",
           "有点撑不下去了", "明天还要早起", "这件事让我很难过", "一起加油吧", "晚上喝了点酒",
           "好久没有这么开心了", "不知道该跟谁说", "周末出去走走")


def generate(path: Path, n_comments: int, days: int = 90, n_topics: int = 50, seed: int = 7) -> dict:
    """Write a migrated SQLite database with synthetic topics, posts, comments and scores."""
    import sqlalchemy as sa

    from weibo_mh import db

    path.unlink(missing_ok=True)
    eng = db.make_engine(f"sqlite:///{path}")
    db.migrate(eng)
    eng.dispose()
    rng = np.random.default_rng(seed)
    pyrng = random.Random(seed)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA journal_mode=OFF")
    con.execute("PRAGMA synchronous=OFF")
    con.execute("PRAGMA foreign_keys=OFF")
    con.execute("BEGIN")
    ts = lambda d: d.strftime(FMT)  # noqa: E731
    end = START + timedelta(days=days)
    topics = [(i + 1, f"{TOPIC_WORDS[i % len(TOPIC_WORDS)]}话题{i + 1}", ts(START), ts(end))
              for i in range(n_topics)]
    con.executemany("INSERT INTO topics (id, word, first_seen, last_seen) VALUES (?,?,?,?)", topics)
    runs, snaps = [], []
    sid = 0
    for r in range(days * 2):
        at = START + timedelta(hours=12 * r + 10)
        runs.append((r + 1, ts(at), ts(at + timedelta(minutes=20)), "ok"))
        for rank, t in enumerate(rng.permutation(n_topics)[:n_topics], start=1):
            sid += 1
            snaps.append((sid, r + 1, int(t) + 1, rank, int(rng.integers(10_000, 5_000_000)), ts(at)))
    con.executemany("INSERT INTO crawl_runs (id, started_at, finished_at, status) VALUES (?,?,?,?)", runs)
    con.executemany("INSERT INTO topic_snapshots (id, crawl_run_id, topic_id, rank, heat, seen_at) "
                    "VALUES (?,?,?,?,?,?)", snaps)
    n_posts = max(1, n_comments // 50)
    post_day = rng.integers(0, days, n_posts)
    posts, pts = [], []
    for p in range(n_posts):
        at = ts(START + timedelta(days=int(post_day[p]), hours=int(rng.integers(0, 24))))
        mid = f"P{p:09d}"
        posts.append((mid, pyrng.choice(PHRASES), at, at, at))
        first = int(rng.integers(0, n_topics))
        pts.append((mid, first + 1, at))
        if rng.random() < 0.3:  # some posts sit in two topics
            second = (first + 1 + int(rng.integers(0, n_topics - 1))) % n_topics
            pts.append((mid, second + 1, at))
    con.executemany("INSERT INTO posts (mid, text, created_at, first_scraped_at, scraped_at) "
                    "VALUES (?,?,?,?,?)", posts)
    con.executemany("INSERT INTO post_topics (mid, topic_id, first_seen) VALUES (?,?,?)", pts)

    chunk = 100_000
    done = failed = 0
    scorer_b_rows = 0
    for lo in range(0, n_comments, chunk):
        n = min(chunk, n_comments - lo)
        pidx = rng.integers(0, n_posts, n)
        offs = rng.integers(0, 3 * 24 * 3600, n)
        status = rng.choice(np.array(["done", "failed", "pending"]), n, p=[0.96, 0.02, 0.02])
        risk = np.minimum(10, rng.poisson(1.2, n) + (rng.random(n) < 0.03) * rng.integers(4, 9, n))
        vals = {"positivity": rng.integers(0, 11, n), "mood_disorder": rng.binomial(10, 0.25, n),
                "substance_use": rng.binomial(10, 0.08, n), "suicide_risk": risk}
        conf = rng.random(n)
        crows, srows = [], []
        for i in range(n):
            cid = f"C{lo + i:010d}"
            # comments follow their post for up to three days, wrapping round the window
            sec = (int(post_day[pidx[i]]) * 86400 + int(offs[i])) % (days * 86400)
            at = START + timedelta(seconds=sec)
            created = None if i % 50 == 0 else ts(at)
            st = str(status[i])
            crows.append((cid, f"P{pidx[i]:09d}", "h" * 64, PHRASES[(lo + i) % len(PHRASES)],
                          created, ts(at), ts(at), st))
            if st == "done":
                done += 1
                for d in DIMS:
                    srows.append((cid, d, "lexicon:v1", int(vals[d][i]), float(conf[i]),
                                  "2026-11-a", ts(at)))
                if i % 10 == 0:
                    scorer_b_rows += 1
                    for d in DIMS:
                        v = int(min(10, max(0, vals[d][i] + rng.integers(-1, 2))))
                        srows.append((cid, d, "classifier:v1", v, None, "2026-11-a", ts(at)))
            elif st == "failed":
                failed += 1
        con.executemany("INSERT INTO comments (id, mid, author_hash, text, created_at, first_scraped_at, "
                        "scraped_at, score_status) VALUES (?,?,?,?,?,?,?,?)", crows)
        con.executemany("INSERT INTO scores (comment_id, dimension, scorer, value, confidence, "
                        "rubric_version, scored_at) VALUES (?,?,?,?,?,?,?)", srows)
        print(f"  generated {lo + n:,} / {n_comments:,} comments", file=sys.stderr, flush=True)
    con.execute("COMMIT")
    con.execute("ANALYZE")
    con.close()
    del sa
    return {"comments": n_comments, "posts": n_posts, "topics": n_topics, "days": days,
            "done": done, "failed": failed, "second_scorer_comments": scorer_b_rows}


NAIVE = r"""
import resource, sys, time, json
import pandas as pd, sqlite3
t0 = time.perf_counter()
con = sqlite3.connect(sys.argv[1])
comments = pd.read_sql("SELECT * FROM comments", con)
scores = pd.read_sql("SELECT * FROM scores WHERE scorer = 'lexicon:v1'", con)
pt = pd.read_sql("SELECT pt.mid, t.id AS topic_id, t.word FROM post_topics pt JOIN topics t ON t.id = pt.topic_id", con)
df = scores.merge(comments, left_on="comment_id", right_on="id")
df["time"] = pd.to_datetime(df["created_at"].fillna(df["scraped_at"]), format="mixed")
df["day"] = df["time"].dt.floor("D")
daily = df.groupby(["day", "dimension"])["value"].agg(["count", "mean"])
risk = df[df.dimension == "suicide_risk"]
share = (risk["value"] >= 7).groupby(risk["day"]).mean()
hist = df.groupby(["dimension", "value"]).size()
bytopic = df.merge(pt, on="mid")
topic_means = bytopic.groupby(["word", "dimension"])["value"].mean()
topic_daily = bytopic.groupby(["word", "day", "dimension"])["value"].mean()
alerts = risk[risk.value >= 7].sort_values(["value", "time"], ascending=False).head(500)
elapsed = time.perf_counter() - t0
print(json.dumps({"seconds": elapsed, "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "rows": len(df)}))
"""

REPORT = r"""
import resource, sys, time, json, io, contextlib
from analysis import report
t0 = time.perf_counter()
buf = io.StringIO()
with contextlib.redirect_stdout(buf):
    rc = report.main(["--db", sys.argv[1], "--out", sys.argv[2], *sys.argv[3:]])
elapsed = time.perf_counter() - t0
sys.stderr.write(buf.getvalue())
print(json.dumps({"seconds": elapsed, "rc": rc,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure(code: str, *args: str) -> dict:
    """Run ``code`` in a fresh interpreter; it prints its own time and peak RSS as JSON."""
    t0 = time.perf_counter()
    p = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        sys.exit(f"benchmark step failed ({p.returncode}):\n{p.stderr[-3000:]}")
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = wall
    out["log"] = p.stderr
    return out


def copy_to_mysql(sqlite_path: Path, server_url: str) -> str:
    """Copy the generated database into a fresh MySQL/MariaDB database; returns its URL."""
    import sqlalchemy as sa

    from weibo_mh import db

    name = f"bench_analysis_{int(time.time())}"
    server = sa.make_url(db.normalise_url(server_url))
    admin = sa.create_engine(server)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    admin.dispose()
    url = server.set(database=name).render_as_string(hide_password=False)
    eng = db.make_engine(url)
    db.migrate(eng)
    src = sqlite3.connect(sqlite_path)
    for table in ("topics", "crawl_runs", "topic_snapshots", "posts", "post_topics", "comments", "scores"):
        t = db.metadata.tables[table]
        cur = src.execute(f"SELECT * FROM {table}")
        cols = [d[0] for d in cur.description]
        n = 0
        while batch := cur.fetchmany(20_000):
            rows = [dict(zip(cols, r, strict=True)) for r in batch]
            for r in rows:  # SQLite hands back DATETIME as text
                for k, v in r.items():
                    if isinstance(v, str) and isinstance(t.c[k].type, sa.DateTime):
                        r[k] = datetime.strptime(v[:19], "%Y-%m-%d %H:%M:%S")
            with eng.begin() as conn:
                conn.execute(t.insert(), rows)
            n += len(rows)
        print(f"  copied {n:,} rows of {table} to MySQL", file=sys.stderr, flush=True)
    with eng.begin() as conn:
        for table in ("comments", "scores", "posts", "post_topics"):
            conn.exec_driver_sql(f"ANALYZE TABLE {table}")
    eng.dispose()
    return url


def drop_mysql(url: str) -> None:
    import sqlalchemy as sa

    u = sa.make_url(url)
    eng = sa.create_engine(u.set(database=""))
    with eng.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{u.database}`")
    eng.dispose()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--comments", type=int, default=1_000_000, help="scored comments to generate")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--workdir", help="where the database and report go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the generated database")
    ap.add_argument("--skip-naive", action="store_true", help="only time the report")
    ap.add_argument("--markdown", help="append the results as Markdown to this file")
    ap.add_argument("--reuse", action="store_true",
                    help="reuse the database already in --workdir instead of generating it")
    ap.add_argument("--report-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for analysis.report, e.g. --report-arg=--since=2026-10-23")
    ap.add_argument("--mysql-url", metavar="URL",
                    help="also copy the data into a fresh database on this MySQL/MariaDB server "
                         "(e.g. mysql+pymysql://root@127.0.0.1:3306/) and time the report there")
    a = ap.parse_args(argv)
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench_analysis_"))
    work.mkdir(parents=True, exist_ok=True)
    dbfile = work / "bench.db"
    t0 = time.perf_counter()
    info_file = work / "bench.json"
    if a.reuse and dbfile.is_file() and info_file.is_file():
        info = json.loads(info_file.read_text())
    else:
        info = generate(dbfile, a.comments, a.days, a.topics)
        info_file.write_text(json.dumps(info))
    gen_s = time.perf_counter() - t0
    size_mb = dbfile.stat().st_size / 2**20
    print(f"generated {info} in {gen_s:.1f}s ({size_mb:.0f} MiB)")
    rep = measure(REPORT, f"sqlite:///{dbfile}", str(work / "report"), *a.report_arg)
    print(rep["log"].strip())
    print(f"analysis.report: {rep['seconds']:.1f}s in-process ({rep['wall_seconds']:.1f}s wall), "
          f"peak RSS {rep['maxrss_kib'] / 1024:.0f} MiB")
    naive = None
    if not a.skip_naive:
        naive = measure(NAIVE, str(dbfile))
        print(f"naive pandas full load: {naive['seconds']:.1f}s ({naive['wall_seconds']:.1f}s wall), "
              f"peak RSS {naive['maxrss_kib'] / 1024:.0f} MiB, {naive['rows']:,} joined rows")
        print(f"ratio naive/report: time {naive['wall_seconds'] / rep['wall_seconds']:.2f}x, "
              f"memory {naive['maxrss_kib'] / rep['maxrss_kib']:.1f}x")
    my = None
    if a.mysql_url:
        t1 = time.perf_counter()
        url = copy_to_mysql(dbfile, a.mysql_url)
        print(f"copied to MySQL in {time.perf_counter() - t1:.0f}s")
        try:
            my = measure(REPORT, url, str(work / "report-mysql"), *a.report_arg)
        finally:
            drop_mysql(url)
        print(my["log"].strip())
        print(f"analysis.report on MySQL/MariaDB: {my['wall_seconds']:.1f}s wall, "
              f"peak RSS {my['maxrss_kib'] / 1024:.0f} MiB")
    if a.markdown:
        lines = [f"\n### analysis.report, {a.comments:,} comments ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
                 "", f"Machine: {platform.machine()}, 2 cores, 24 GiB RAM, no GPU; Python "
                 f"{platform.python_version()}; SQLite {sqlite3.sqlite_version}.",
                 f"Command: `.venv/bin/python bench/bench_analysis.py {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
                 f"Data: {info['comments']:,} comments ({info['done']:,} scored by lexicon:v1 on 4 "
                 f"dimensions, {info['second_scorer_comments']:,} also by classifier:v1), "
                 f"{info['posts']:,} posts, {info['topics']} topics, {info['days']} days; "
                 f"database {size_mb:.0f} MiB, " + ("reused from an earlier run." if gen_s < 1 else
                                                    f"generated in {gen_s:.0f}s."), "",
                 "| run | wall time (s) | peak RSS (MiB) |", "|---|---:|---:|",
                 f"| `analysis.report` (SQL aggregates, all charts + alerts + index.html) | "
                 f"{rep['wall_seconds']:.1f} | {rep['maxrss_kib'] / 1024:.0f} |"]
        if naive:
            lines.append(f"| naive pandas full load (read all comments + scores, aggregate) | "
                         f"{naive['wall_seconds']:.1f} | {naive['maxrss_kib'] / 1024:.0f} |")
            lines += ["", f"Ratio naive / report: time {naive['wall_seconds'] / rep['wall_seconds']:.2f}x, "
                      f"peak memory {naive['maxrss_kib'] / rep['maxrss_kib']:.1f}x."]
        met = rep["wall_seconds"] < 60 and rep["maxrss_kib"] < 2**20
        lines.append(f"\nTarget for the report (under 60 s, under 1 GiB): {'met' if met else 'NOT met'}.")
        if a.report_arg:
            lines.append(f"Report arguments: `{' '.join(a.report_arg)}`.")
        if my:
            lines.append(f"\nOn MariaDB (same data, copied; `--mysql-url`): `analysis.report` "
                         f"{my['wall_seconds']:.1f} s wall, peak RSS {my['maxrss_kib'] / 1024:.0f} MiB.")
        with open(a.markdown, "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
    if not a.keep and not a.workdir:
        dbfile.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
