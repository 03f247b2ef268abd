"""Benchmark: `analysis.report` from the rollups, against the raw-row report and a naive pandas load.

For each size (``--comments``, repeatable) and engine (SQLite; MariaDB with
``--mysql-url``) it generates a database **in SQL** (``INSERT … SELECT`` over a
number sequence: SQLite's recursive CTE, MariaDB's Sequence engine; secondary
indexes built after the load), builds the rollups from scratch
(``weibo_mh.rollups.rebuild``, timed), then runs, side by side in one run and each
in a fresh subprocess that reports its own peak RSS:

1. ``python -m analysis.report`` (rollups, the default): every chart, alerts, index.html;
2. ``python -m analysis.report --source raw``: the same report from the raw score rows
   (the report as it was before the rollups);
3. a naive notebook-style pass: read every comment and score into pandas, join the
   topics and compute the same daily/topic means.

Data: N comments over 90 days and 50 topics, 50 comments a post, 30% of posts in
two topics; 96% scored by ``lexicon:v2`` on the four core dimensions, 10% of those
also by ``classifier:v1``; 2% failed, 2% pending; 2% without ``created_at``; an IP
location (34 places) on 90% of comments; topic snapshots twice a day. Levels and times
come from integer hashing of the row number (deterministic). Texts are phrases written for this benchmark.

    .venv/bin/python bench/bench_analysis.py --comments 20000
    .venv/bin/python bench/bench_analysis.py --comments 1000000 --comments 10000000 \\
        --mysql-url mysql+pymysql://root@127.0.0.1:3306/ --markdown BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
DIMS = ("positivity", "mood_disorder", "substance_use", "suicide_risk")
START = datetime(2026, 8, 1)
PER_POST = 50
CHUNK = 1_000_000

TOPIC_WORDS = ("考试季", "加班", "失眠", "毕业", "租房", "春运", "相亲", "裁员", "体检", "减肥",
               "养猫", "高考", "早高峰", "外卖", "演唱会")
PHRASES = ("今天又是很累的一天", "终于下班了想好好睡一觉", "谢谢大家的鼓励", "看完这个心情好多了",
           "有点撑不下去了", "明天还要早起", "这件事让我很难过", "一起加油吧", "晚上喝了点酒",
           "好久没有这么开心了", "不知道该跟谁说", "周末出去走走")
#: IP locations as Weibo words them (a province, region or 海外); 10% of comments show none.
PLACES = ("广东", "北京", "上海", "浙江", "江苏", "四川", "山东", "河南", "湖北", "湖南", "福建", "河北",
          "陕西", "辽宁", "重庆", "安徽", "江西", "广西", "云南", "山西", "天津", "黑龙江", "吉林", "贵州",
          "内蒙古", "新疆", "甘肃", "海南", "宁夏", "青海", "西藏", "香港", "台湾", "海外")
#: Secondary indexes dropped for the load and built afterwards (a sorted build is far faster).
SECONDARY = ("ix_comments_mid", "ix_comments_queue", "ix_comments_created", "ix_comments_first_scraped",
             "ix_scores_alerts", "ix_pt_topic", "ix_pt_first_seen")


class Dialect:
    """The few SQL spellings that differ between SQLite and MariaDB."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sqlite = name == "sqlite"

    def seq(self, lo: int, hi: int) -> tuple[str, str]:
        """(WITH prefix, FROM clause) giving column n = lo..hi."""
        if self.sqlite:
            return (f"WITH RECURSIVE s(n) AS (SELECT {lo} UNION ALL SELECT n + 1 FROM s WHERE n < {hi}) ",
                    "s")
        return "", f"(SELECT seq AS n FROM seq_{lo}_to_{hi}) s"

    def div(self, a: str, b: int) -> str:
        return f"({a} / {b})" if self.sqlite else f"({a} DIV {b})"

    def at(self, seconds: str) -> str:
        if self.sqlite:
            return f"datetime('{START:%Y-%m-%d}', '+' || ({seconds}) || ' seconds')"
        return f"TIMESTAMPADD(SECOND, {seconds}, '{START:%Y-%m-%d}')"

    def ident(self, prefix: str, n: str, width: int) -> str:
        if self.sqlite:
            return f"printf('{prefix}%0{width}d', {n})"
        return f"CONCAT('{prefix}', LPAD({n}, {width}, '0'))"

    def clamp(self, x: str) -> str:
        return f"max(0, min(10, {x}))" if self.sqlite else f"GREATEST(0, LEAST(10, {x}))"


def _level(h: str, dim: str) -> str:
    """A level 0-10 from a hash 0-999, with a plausible shape per dimension."""
    return (f"CASE {dim} WHEN 'suicide_risk' THEN (CASE WHEN {h} < 600 THEN 0 WHEN {h} < 800 THEN 1 "
            f"WHEN {h} < 900 THEN 2 WHEN {h} < 940 THEN 3 WHEN {h} < 960 THEN 4 WHEN {h} < 975 THEN 5 "
            f"WHEN {h} < 985 THEN 6 ELSE 7 + {h} % 4 END) "
            f"WHEN 'positivity' THEN {h} % 11 "
            f"WHEN 'mood_disorder' THEN (CASE WHEN {h} < 500 THEN {h} % 3 ELSE {h} % 8 END) "
            f"ELSE (CASE WHEN {h} < 900 THEN 0 ELSE {h} % 6 END) END")


def generate(url: str, n_comments: int, days: int = 90, n_topics: int = 50) -> dict[str, Any]:
    """Create and fill the database at ``url`` (migrated, empty) with INSERT … SELECT."""
    import sqlalchemy as sa

    from weibo_mh import db, rollups

    eng = db.make_engine(url)
    db.migrate(eng)
    d = Dialect(eng.dialect.name)
    n_posts = -(-n_comments // PER_POST)
    t0 = time.perf_counter()
    with eng.connect() as conn:
        if not d.sqlite:
            conn.exec_driver_sql("SET SESSION unique_checks = 0, foreign_key_checks = 0")
        else:
            conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
        for ix in SECONDARY:
            table = {"comments": "comments", "scores": "scores", "pt": "post_topics"}[ix.split("_")[1]]
            conn.exec_driver_sql(f"DROP INDEX {ix}" + ("" if d.sqlite else f" ON {table}"))
        conn.commit()
        with conn.begin():
            conn.exec_driver_sql("CREATE TABLE bench_dims (k INTEGER PRIMARY KEY, dim VARCHAR(32))")
            conn.execute(sa.text("INSERT INTO bench_dims VALUES (:k, :d)"),
                         [{"k": i, "d": x} for i, x in enumerate(DIMS)])
            for table, column, values in (("bench_phrases", "text", PHRASES), ("bench_places", "place", PLACES)):
                conn.exec_driver_sql(f"CREATE TABLE {table} (k INTEGER PRIMARY KEY, {column} VARCHAR(64))")
                conn.execute(sa.text(f"INSERT INTO {table} VALUES (:k, :t)"),
                             [{"k": i, "t": x} for i, x in enumerate(values)])
            end = START + timedelta(days=days)
            conn.execute(db.topics.insert(), [
                {"id": i + 1, "word": f"{TOPIC_WORDS[i % len(TOPIC_WORDS)]}话题{i + 1}",
                 "first_seen": START, "last_seen": end} for i in range(n_topics)])
            runs, snaps = [], []
            for r in range(days * 2):
                at = START + timedelta(hours=12 * r + 10)
                runs.append({"id": r + 1, "started_at": at, "finished_at": at + timedelta(minutes=20),
                             "status": "ok"})
                for k in range(n_topics):
                    rank = (k * 7 + r * 3) % n_topics + 1
                    snaps.append({"crawl_run_id": r + 1, "topic_id": k + 1, "rank": rank,
                                  "heat": 10_000 + ((k * 7919 + r * 104729) % 5_000_000), "seen_at": at})
            conn.execute(db.crawl_runs.insert(), runs)
            conn.execute(db.topic_snapshots.insert(), snaps)
        post_day = f"((n * 7919) % {days})"
        for lo in range(0, n_posts, CHUNK):
            hi = min(n_posts, lo + CHUNK) - 1
            w, src = d.seq(lo, hi)
            p_at = d.at(f"{post_day} * 86400 + (n * 37) % 86400")
            with conn.begin():
                conn.exec_driver_sql(_insert(
                    d, w, "posts (mid, author_hash, text, created_at, first_scraped_at, scraped_at)",
                    f"SELECT {d.ident('P', 'n', 9)}, '{'h' * 64}', 'post', {p_at}, {p_at}, {p_at} FROM {src}"))
                for sql in (
                    f"SELECT {d.ident('P', 'n', 9)}, n % {n_topics} + 1, {p_at} FROM {src}",
                    f"SELECT {d.ident('P', 'n', 9)}, (n * 7 + 1) % {n_topics} + 1, {p_at} FROM {src} "
                    f"WHERE n % 10 < 3 AND (n * 7 + 1) % {n_topics} <> n % {n_topics}",
                ):
                    conn.exec_driver_sql(_insert(d, w, "post_topics (mid, topic_id, first_seen)", sql))
        for lo in range(0, n_comments, CHUNK):
            hi = min(n_comments, lo + CHUNK) - 1
            w, src = d.seq(lo, hi)
            p = d.div("n", PER_POST)
            t = d.at(f"((({p} * 7919) % {days}) * 86400 + (n * 104729) % 259200) % {days * 86400}")
            status = "CASE n % 50 WHEN 1 THEN 'failed' WHEN 2 THEN 'pending' ELSE 'done' END"
            cols = ("comments (id, mid, author_hash, text, created_at, first_scraped_at, scraped_at, "
                    "score_status, attempts, scored_at, ip_location)")
            sql = (f"SELECT {d.ident('C', 'n', 10)}, {d.ident('P', p, 9)}, '{'h' * 64}', "
                   f"(SELECT text FROM bench_phrases WHERE k = n % 12), "
                   f"CASE WHEN n % 50 = 0 THEN NULL ELSE {t} END, {t}, {t}, {status}, 1, "
                   f"CASE WHEN n % 50 IN (1, 2) THEN NULL ELSE {t} END, "
                   f"CASE WHEN n % 10 = 7 THEN NULL ELSE (SELECT place FROM bench_places WHERE "
                   f"k = (n * 2654435761) % {len(PLACES)}) END FROM {src}")
            h = "((n * 2654435761 + bd.k * 40503) % 1000)"
            lex = (f"SELECT {d.ident('C', 'n', 10)}, bd.dim, 'lexicon:v2', {_level(h, 'bd.dim')}, "
                   f"({h} % 100) / 100.0, '2026-11-a', 0, {t} FROM {src} CROSS JOIN bench_dims bd "
                   f"WHERE n % 50 NOT IN (1, 2)")
            h2 = "((n * 40503 + bd.k * 2654435761) % 3)"
            near = d.clamp(f"({_level(h, 'bd.dim')}) + {h2} - 1")  # the lexicon's level, give or take one
            cls = (f"SELECT {d.ident('C', 'n', 10)}, bd.dim, 'classifier:v1', {near}, "
                   f"NULL, '2026-11-a', 0, {t} FROM {src} CROSS JOIN bench_dims bd "
                   f"WHERE n % 50 NOT IN (1, 2) AND n % 10 = 3")
            score_cols = "scores (comment_id, dimension, scorer, value, confidence, rubric_version, truncated, scored_at)"
            with conn.begin():
                conn.exec_driver_sql(_insert(d, w, cols, sql))
                conn.exec_driver_sql(_insert(d, w, score_cols, lex))
                conn.exec_driver_sql(_insert(d, w, score_cols, cls))
            print(f"  {d.name}: generated {hi + 1:,} / {n_comments:,} comments "
                  f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr, flush=True)
        with conn.begin():
            conn.exec_driver_sql("DROP TABLE bench_dims")
            conn.exec_driver_sql("DROP TABLE bench_phrases")
            conn.exec_driver_sql("DROP TABLE bench_places")
        t1 = time.perf_counter()
        for ix in SECONDARY:
            tab = {"comments": db.comments, "scores": db.scores, "pt": db.post_topics}[ix.split("_")[1]]
            index = next(i for i in tab.indexes if i.name == ix)
            with conn.begin():
                index.create(conn)
        print(f"  {d.name}: indexes built in {time.perf_counter() - t1:.0f}s", file=sys.stderr, flush=True)
        with conn.begin():
            if d.sqlite:
                conn.exec_driver_sql("ANALYZE")
            else:
                for table in ("comments", "scores", "posts", "post_topics", "topics"):
                    conn.exec_driver_sql(f"ANALYZE TABLE {table}")
        gen_s = time.perf_counter() - t0
        t2 = time.perf_counter()
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            out = rollups.rebuild(conn)
        rollup_s = time.perf_counter() - t2
        counts = {r[0]: int(r[1]) for r in conn.execute(
            sa.select(db.comments.c.score_status, sa.func.count()).group_by(db.comments.c.score_status))}
        n_rollups = conn.execute(sa.select(sa.func.count()).select_from(db.score_rollups)).scalar()
        second = conn.execute(sa.select(sa.func.count()).select_from(db.scores).where(
            db.scores.c.scorer == "classifier:v1", db.scores.c.dimension == "suicide_risk")).scalar()
    eng.dispose()
    return {"comments": n_comments, "posts": n_posts, "topics": n_topics, "days": days,
            "done": counts.get("done", 0), "failed": counts.get("failed", 0),
            "second_scorer_comments": int(second or 0), "generate_s": gen_s, "rollup_rebuild_s": rollup_s,
            "rollup_rows": int(n_rollups or 0), "rebuild": out}


def _insert(d: Dialect, with_: str, target: str, select: str) -> str:
    # SQLite puts WITH before INSERT; MariaDB's sequence needs no WITH. The MySQL drivers
    # format the statement with %, so a literal % (modulo) is doubled there.
    if d.sqlite:
        return f"{with_}INSERT INTO {target} {select}"
    return f"INSERT INTO {target} {select}".replace("%", "%%")


NAIVE = r"""
import resource, sys, time, json
import pandas as pd, sqlalchemy as sa
t0 = time.perf_counter()
eng = sa.create_engine(sys.argv[1])
with eng.connect() as con:
    comments = pd.read_sql("SELECT * FROM comments", con)
    scores = pd.read_sql("SELECT * FROM scores WHERE scorer = 'lexicon:v2'", con)
    pt = pd.read_sql("SELECT pt.mid, t.id AS topic_id, t.word FROM post_topics pt JOIN topics t ON t.id = pt.topic_id", con)
df = scores.merge(comments, left_on="comment_id", right_on="id")
df["time"] = pd.to_datetime(df["created_at"].fillna(df["first_scraped_at"]), format="mixed")
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


QUERIES = r"""
import resource, sys, time, json, io, contextlib
t0 = time.perf_counter()
from analysis import alerts, compare_scorers, distributions, regions, report, topics, trends
from analysis.common import build_context, make_parser
ap = make_parser("report", "")
args = ap.parse_args(["--db", sys.argv[1], "--out", sys.argv[2], *sys.argv[3:]])
t1 = time.perf_counter()
ctx = build_context(args)
trends.load(ctx); distributions.load(ctx); topics.load(ctx); regions.load(ctx)
a, b = compare_scorers.pick_pair(ctx, None, None)
if a and b:
    compare_scorers.load(ctx, a, b)
alerts.load(ctx, alerts.LIMIT_DEFAULT); report.counts(ctx)
print(json.dumps({"seconds": time.perf_counter() - t1, "import_seconds": t1 - t0,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def measure(code: str, *args: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints its own time and peak RSS as JSON."""
    t0 = time.perf_counter()
    p = subprocess.run([PY, "-c", code, *args], capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        return {"error": p.stderr[-1500:], "wall_seconds": wall}
    out = json.loads(p.stdout.strip().splitlines()[-1])
    out["wall_seconds"] = wall
    out["log"] = p.stderr
    return out


def mysql_database(server_url: str, tag: str, stable: bool = False) -> tuple[str, bool]:
    """A database for one run: (URL, whether it already existed). ``stable`` names it by size
    alone (``--keep``/``--reuse``), so a later run can find it; otherwise the name is unique."""
    import sqlalchemy as sa

    from weibo_mh import db

    name = f"bench_analysis_{tag}" if stable else f"bench_analysis_{tag}_{int(time.time())}"
    server = sa.make_url(db.normalise_url(server_url))
    admin = sa.create_engine(server)
    with admin.connect() as conn:
        existed = conn.exec_driver_sql("SELECT 1 FROM information_schema.schemata WHERE schema_name = %s",
                                       (name,)).first() is not None
        if not existed:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False), existed


def drop_mysql(url: str) -> None:
    import sqlalchemy as sa

    u = sa.make_url(url)
    eng = sa.create_engine(u.set(database=""))
    with eng.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{u.database}`")
    eng.dispose()


def _fmt(r: dict[str, Any] | None) -> str:
    if r is None:
        return "–"
    if "error" in r:
        return f"failed after {r['wall_seconds']:.0f} s"
    return f"{r['wall_seconds']:.1f} s / {r['maxrss_kib'] / 1024:.0f} MiB"


def run_one(engine: str, url: str, n: int, work: Path, a: argparse.Namespace,
            reuse: bool = False) -> dict[str, Any]:
    """Generate (or, with ``reuse``, take the database kept by an earlier run), then measure."""
    saved = work / f"generated-{engine}-{n}.json"
    if reuse and saved.is_file():
        info = json.loads(saved.read_text())
        info["reused"] = True
        from weibo_mh import db

        eng = db.make_engine(url)
        db.migrate(eng)  # a kept database from older code gets the newer migrations
        eng.dispose()
        print(f"{engine} {n:,}: reusing the database generated at {info.get('generated_at', '?')}", flush=True)
    else:
        info = generate(url, n, a.days, a.topics)
        info["generated_at"] = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        saved.write_text(json.dumps(info, default=str))
        print(f"{engine} {n:,}: generated in {info['generate_s']:.0f}s, rollups rebuilt in "
              f"{info['rollup_rebuild_s']:.1f}s ({info['rollup_rows']:,} rows)", flush=True)
    res: dict[str, Any] = {"engine": engine, "n": n, "info": info}
    if engine == "MariaDB":
        import sqlalchemy as sa

        eng = sa.create_engine(url)
        with eng.connect() as conn:
            res["buffer_pool_mib"] = int(conn.exec_driver_sql("SELECT @@innodb_buffer_pool_size").scalar() or 0) // 2**20
        eng.dispose()
    if a.generate_only:
        return res
    res["queries"] = measure(QUERIES, url, str(work / "q"), *a.report_arg)
    res["queries_raw"] = None if a.skip_raw or n > a.raw_max else measure(
        QUERIES, url, str(work / "q"), "--source", "raw", *a.report_arg)
    print(f"  the report's queries only: rollups {res['queries'].get('seconds', -1):.1f} s, raw rows "
          f"{(res['queries_raw'] or {}).get('seconds', -1):.1f} s", flush=True)
    res["report"] = measure(REPORT, url, str(work / f"report-{engine}-{n}"), *a.report_arg)
    print(f"  report (rollups): {_fmt(res['report'])}", flush=True)
    print("  " + res["report"].get("log", res["report"].get("error", "")).strip().replace("\n", "\n  "))
    res["raw"] = None if a.skip_raw or n > a.raw_max else measure(
        REPORT, url, str(work / f"report-raw-{engine}-{n}"), "--source", "raw", *a.report_arg)
    print(f"  report (raw rows): {_fmt(res['raw'])}", flush=True)
    res["naive"] = None if a.skip_naive or n > a.naive_max else measure(NAIVE, url)
    print(f"  naive pandas: {_fmt(res['naive'])}", flush=True)
    return res


def markdown(results: list[dict[str, Any]], argv: list[str], a: argparse.Namespace) -> str:
    lines = [f"\n### analysis.report from rollups ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})", "",
             f"Machine: {platform.machine()}, 2 cores, 24 GiB RAM, no GPU, shared with other sessions; "
             f"Python {platform.python_version()}; SQLite {sqlite3.sqlite_version}; MariaDB on the same "
             "machine (InnoDB buffer pool: "
             + (", ".join(sorted({f"{r['buffer_pool_mib']:,} MiB" for r in results if "buffer_pool_mib" in r}))
                or "–") + ").",
             f"Command: `.venv/bin/python bench/bench_analysis.py {' '.join(argv)}`", "",
             "Data generated in SQL (`INSERT … SELECT` over a number sequence; secondary indexes "
             f"built after the load), {a.days} days, {a.topics} topics, {PER_POST} comments a post.", "",
             "| engine | comments | generate (s) | rollup rebuild (s) | rollup rows | report's queries, "
             "rollups / raw rows (s) | `analysis.report` (rollups) wall / peak RSS | report from raw rows "
             "(`--source raw`) | naive pandas full load |",
             "|---|---:|---:|---:|---:|---|---|---|---|"]
    for r in results:
        i = r["info"]
        q, qr = r["queries"], r["queries_raw"]
        qs = (f"{q['seconds']:.2f}" if "seconds" in q else "failed") + " / " + (
            f"{qr['seconds']:.1f}" if qr and "seconds" in qr else "–")
        earlier = f" (generated {i.get('generated_at')})" if i.get("reused") else ""
        lines.append(f"| {r['engine']} | {r['n']:,}{earlier} | {i['generate_s']:.0f} | {i['rollup_rebuild_s']:.1f} | "
                     f"{i['rollup_rows']:,} | {qs} | **{_fmt(r['report'])}** | {_fmt(r['raw'])} | "
                     f"{_fmt(r['naive'])} |")
    lines.append("")
    for r in results:
        rep = r["report"]
        if "error" in rep:
            continue
        target = 10 if r["n"] <= 1_000_000 else 15
        ok = rep["wall_seconds"] < target and rep["maxrss_kib"] < 300 * 1024
        extra = []
        for k, name in (("raw", "raw-row report"), ("naive", "naive load")):
            o = r[k]
            if o and "error" not in o:
                extra.append(f"{name} / report: time {o['wall_seconds'] / rep['wall_seconds']:.1f}x, "
                             f"memory {o['maxrss_kib'] / rep['maxrss_kib']:.1f}x")
        lines.append(f"- {r['engine']}, {r['n']:,}: target (< {target} s, < 300 MiB) "
                     f"{'met' if ok else 'NOT met'}" + (f"; {'; '.join(extra)}" if extra else "") + ".")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--comments", type=int, action="append", help="comments to generate (repeatable; "
                    "default 1,000,000)")
    ap.add_argument("--days", type=int, default=90)
    ap.add_argument("--topics", type=int, default=50)
    ap.add_argument("--workdir", help="where the databases and reports go (default: a temp dir)")
    ap.add_argument("--no-sqlite", action="store_true", help="only MariaDB")
    ap.add_argument("--mysql-url", metavar="URL",
                    help="also generate on this MySQL/MariaDB server (e.g. mysql+pymysql://root@127.0.0.1:3306/)")
    ap.add_argument("--skip-naive", action="store_true")
    ap.add_argument("--skip-raw", action="store_true")
    ap.add_argument("--naive-max", type=int, default=2_000_000,
                    help="skip the naive load above this many comments (it needs ~5 GiB a million)")
    ap.add_argument("--raw-max", type=int, default=100_000_000, help="skip the raw-row report above this size")
    ap.add_argument("--keep", action="store_true", help="keep the generated databases (with --workdir, "
                    "a later --reuse run measures them again without generating)")
    ap.add_argument("--reuse", action="store_true", help="measure the databases an earlier --keep run left "
                    "in --workdir (and on --mysql-url) instead of generating; generate those missing")
    ap.add_argument("--generate-only", action="store_true", help="generate (and keep) the databases, "
                    "measure nothing: large sizes can be built while the machine is busy, then "
                    "measured with --reuse when it is quiet")
    ap.add_argument("--markdown", help="append the results as Markdown to this file")
    ap.add_argument("--json", help="write the results as JSON to this file")
    ap.add_argument("--report-arg", action="append", default=[], metavar="ARG",
                    help="extra argument for analysis.report, e.g. --report-arg=--since=2026-10-23")
    a = ap.parse_args(argv)
    if (a.reuse or a.generate_only) and not a.workdir:
        ap.error("--reuse and --generate-only need --workdir (where the kept databases are)")
    a.keep = a.keep or a.reuse or a.generate_only
    sizes = a.comments or [1_000_000]
    work = Path(a.workdir or tempfile.mkdtemp(prefix="bench_analysis_"))
    work.mkdir(parents=True, exist_ok=True)
    results = []
    for n in sizes:
        sqlite_file = work / f"bench-{n}.db"
        targets = [] if a.no_sqlite else [("SQLite", f"sqlite:///{sqlite_file}", sqlite_file.is_file())]
        if a.mysql_url:
            targets.append(("MariaDB", *mysql_database(a.mysql_url, str(n), stable=a.keep)))
        for engine, url, existed in targets:
            reuse = a.reuse and existed
            if engine == "SQLite" and not reuse:
                sqlite_file.unlink(missing_ok=True)
            elif engine == "MariaDB" and existed and not reuse:
                drop_mysql(url)
                url, _ = mysql_database(a.mysql_url, str(n), stable=True)
            try:
                results.append(run_one(engine, url, n, work, a, reuse=reuse))
            finally:
                if not a.keep:
                    if engine == "SQLite":
                        Path(url.removeprefix("sqlite:///")).unlink(missing_ok=True)
                    else:
                        drop_mysql(url)
            if a.json:
                Path(a.json).write_text(json.dumps(
                    [{k: v for k, v in r.items()} for r in results], default=str, indent=1))
    if a.generate_only:
        return 0
    args_shown = argv if argv is not None else sys.argv[1:]
    md = markdown(results, args_shown, a)
    print(md)
    if a.markdown:
        with open(a.markdown, "a", encoding="utf-8") as f:
            f.write(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
