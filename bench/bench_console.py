"""Benchmark: the review console's pages on a database of N comments (default 1,000,000).

Generates a migrated database with ``INSERT … SELECT``: on SQLite over a recursive CTE, on
MySQL/MariaDB (``--mysql-url``) over MariaDB's SEQUENCE engine (``seq_0_to_999999``), the same
rows either way (1,000,000 comments, 20,000 posts, 50 topics, four lexicon:v2 scores per comment with
rare high suicide-risk levels, 2,000 comments labelled by two annotators, 400 of them
by both), then times, in one run:

- the whole-database alert fill (``fill_alerts``) and a stratified queue fill of 200;
- each console page through Flask's test client with an admin session: median and
  maximum of 7 requests after one warm-up request.

    .venv/bin/python bench/bench_console.py --comments 20000          # a quick try
    .venv/bin/python bench/bench_console.py --comments 1000000 --keep data/bench_console.db
    .venv/bin/python bench/bench_console.py --mysql-url mysql+pymysql://root@127.0.0.1:3306/ [--mysql-keep]
    .venv/bin/python bench/bench_console.py --mysql-url mysql+pymysql://root@127.0.0.1:3306/ --mysql-reuse wmh_bench_…

Texts are generated for this benchmark; no research data is used.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "Weibo_Spider")]

import sqlalchemy as sa  # noqa: E402

from weibo_mh import db  # noqa: E402

MACHINE = "lexicon:v2"
# suicide-risk level of comment i from (i * 2654435761) % 1000: mostly 0-2, about 2% at 7 and up
LEVEL = ("CASE WHEN h < 550 THEN 0 WHEN h < 750 THEN 1 WHEN h < 850 THEN 2 WHEN h < 900 THEN 3 "
         "WHEN h < 930 THEN 4 WHEN h < 955 THEN 5 WHEN h < 975 THEN 6 WHEN h < 985 THEN 7 "
         "WHEN h < 992 THEN 8 WHEN h < 997 THEN 9 ELSE 10 END")


class Dialect:
    """The SQL of the generator for one database: SQLite, or MySQL/MariaDB (same rows either way)."""

    def __init__(self, name: str) -> None:
        self.mysql = name in ("mysql", "mariadb")

    def seq(self, lo: int, hi: int) -> tuple[str, str]:
        """(prefix, source): the integers lo..hi as rows ``k(i)``."""
        if self.mysql:  # MariaDB's SEQUENCE engine: seq_0_to_999999 needs no table
            return "", f"(SELECT seq AS i FROM seq_{lo}_to_{hi}) AS k"
        return f"WITH RECURSIVE k(i) AS (SELECT {lo} UNION ALL SELECT i + 1 FROM k WHERE i < {hi}) ", "k"

    def cat(self, *parts: str) -> str:
        return f"CONCAT({', '.join(parts)})" if self.mysql else " || ".join(parts)

    def pad(self, prefix: str, expr: str, width: int) -> str:
        """printf('<prefix>%0<width>d', expr): zero-padded, never cut."""
        if self.mysql:
            return f"CONCAT('{prefix}', LPAD({expr}, GREATEST({width}, LENGTH({expr})), '0'))"
        return f"printf('{prefix}%0{width}d', {expr})"

    def hex64(self, expr: str) -> str:
        return f"LPAD(LOWER(HEX({expr})), 64, '0')" if self.mysql else f"printf('%064x', {expr})"

    def seconds_after(self, day: str, expr: str) -> str:
        if self.mysql:
            return f"TIMESTAMP '{day} 00:00:00' + INTERVAL ({expr}) SECOND"
        return f"datetime('{day}', '+' || ({expr}) || ' seconds')"

    def num(self, col: str) -> str:
        """The number in an id like c00001234."""
        return f"CAST(SUBSTR({col}, 2) AS UNSIGNED)" if self.mysql else f"CAST(substr({col}, 2) AS INTEGER)"

    def div(self, a: str, b: int) -> str:
        return f"{a} DIV {b}" if self.mysql else f"{a} / {b}"

    def least(self, a: str, b: str) -> str:
        return f"LEAST({a}, {b})" if self.mysql else f"min({a}, {b})"


def statements(dialect: str, n: int) -> list[str]:
    """The generator's INSERT … SELECT statements for ``n`` comments, in order."""
    d = Dialect(dialect)
    posts = max(1, n // 50)
    out = []
    topic = d.cat("'基准话题'", "i")
    post = d.cat("'基准微博 '", "i")
    comment = d.cat("'基准评论，第 '", "i", "' 条：今天又是很累的一天'")
    w, k = d.seq(1, 50)
    out.append(f"{w}INSERT INTO topics (id, word, first_seen, last_seen) "
               f"SELECT i, {topic}, '2026-11-01 00:00:00', '2026-11-30 00:00:00' FROM {k}")
    w, k = d.seq(0, posts - 1)
    out.append(f"{w}INSERT INTO posts (mid, text, created_at, reposts, comments_count, likes, first_scraped_at, "
               f"scraped_at) SELECT {d.pad('p', 'i', 6)}, {post}, '2026-11-01 00:00:00', "
               f"0, 0, 0, '2026-11-01 00:00:00', '2026-11-01 00:00:00' FROM {k}")
    out.append(f"{w}INSERT INTO post_topics (mid, topic_id, first_seen) "
               f"SELECT {d.pad('p', 'i', 6)}, 1 + i % 50, '2026-11-01 00:00:00' FROM {k}")
    w, k = d.seq(0, n - 1)
    out.append(f"{w}INSERT INTO comments (id, mid, author_hash, text, likes, created_at, first_scraped_at, "
               "scraped_at, score_status, attempts, scored_at) "
               f"SELECT {d.pad('c', 'i', 8)}, {d.pad('p', f'i % {posts}', 6)}, "
               f"{d.hex64(f'(i * 7919) % {max(1, n // 5)}')}, "
               f"{comment}, 0, "
               f"{d.seconds_after('2026-11-01', 'i * 2')}, '2026-11-30 00:00:00', "
               f"'2026-11-30 00:00:00', 'done', 1, '2026-11-30 00:00:00' FROM {k}")
    gen = f"(SELECT id, ({d.num('id')} * 2654435761) % 1000 AS h FROM comments){' AS g' if d.mysql else ''}"
    for dim, value in (("suicide_risk", LEVEL), ("positivity", f"10 - ({LEVEL})"),
                       ("mood_disorder", d.least("10", f"({LEVEL}) + h % 2")), ("substance_use", "h % 3")):
        out.append("INSERT INTO scores (comment_id, dimension, scorer, value, confidence, rubric_version, "
                   f"truncated, scored_at) SELECT id, '{dim}', '{MACHINE}', {value}, 0.3 + (h % 70) / 100.0, "
                   f"'2026-11-a', 0, '2026-11-30 00:00:00' FROM {gen}")
    # two annotators over every step-th comment (500th of a million): h1 labels the first
    # 1,200 of them, h2 800, 400 of them the same: 2,000 labelled comments at any size
    step = max(1, n // 2000)
    num = d.num("comment_id")
    for who, lo, hi in (("human:h1", 0, 1200), ("human:h2", 800, 1600)):
        out.append("INSERT INTO scores (comment_id, dimension, scorer, value, confidence, rubric_version, "
                   f"truncated, scored_at) SELECT comment_id, dimension, '{who}', "
                   f"CASE WHEN value < 10 AND ({d.div(num, step)}) % 4 = 0 "
                   "THEN value + 1 ELSE value END, NULL, '2026-11-a', 0, '2026-11-30 00:00:00' FROM scores "
                   f"WHERE scorer = '{MACHINE}' AND {num} % {step} = 0 "
                   f"AND {d.div(num, step)} >= {lo} "
                   f"AND {d.div(num, step)} < {hi}")
    return out


def generate(url: str, n: int, progress: bool = False) -> dict[str, float]:
    """Migrate the database at ``url`` and fill it with ``n`` comments; returns the seconds taken."""
    eng = db.make_engine(url)
    db.migrate(eng)
    t0 = time.perf_counter()
    sql = statements(eng.dialect.name, n)
    if eng.dialect.name == "sqlite":
        with eng.begin() as conn:
            for s in sql:
                conn.exec_driver_sql(s)
        with eng.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
    else:
        # one transaction per table, checks off for this session: InnoDB then loads an empty
        # table in bulk (MariaDB 10.6+), building its indexes by sorting
        with eng.connect() as conn:
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 0, unique_checks = 0")
            for s in sql:
                t = time.perf_counter()
                conn.exec_driver_sql(s.replace("%", "%%"))  # the driver's paramstyle is format
                conn.commit()
                if progress:
                    print(f"  {s.split('INSERT INTO ')[1].split()[0]}: {time.perf_counter() - t:.1f} s",
                          file=sys.stderr, flush=True)
            conn.exec_driver_sql("SET SESSION foreign_key_checks = 1, unique_checks = 1")
            conn.exec_driver_sql("ANALYZE TABLE topics, posts, post_topics, comments, scores").all()
            conn.commit()
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


def mysql_database(server_url: str, name: str | None = None) -> tuple[str, bool]:
    """(URL, created): a fresh ``wmh_bench_<random>`` database on the server, or the one named."""
    server = sa.make_url(db.normalise_url(server_url))
    created = name is None
    name = name or f"wmh_bench_{uuid.uuid4().hex[:10]}"
    if not name.replace("_", "").isalnum():
        raise SystemExit(f"not a database name: {name!r}")
    admin = sa.create_engine(server.set(database=""))
    with admin.connect() as conn:
        if created:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
        elif conn.exec_driver_sql("SHOW DATABASES LIKE %s", (name,)).first() is None:
            raise SystemExit(f"no database {name!r} on the server (--mysql-reuse names one --mysql-keep kept)")
    admin.dispose()
    return server.set(database=name).render_as_string(hide_password=False), created


def drop_database(url: str) -> None:
    u = sa.make_url(url)
    admin = sa.create_engine(u.set(database=""))
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{u.database}`")
    admin.dispose()


def count_comments(url: str) -> int:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        n = int(conn.execute(sa.select(sa.func.count()).select_from(db.comments)).scalar() or 0)
    eng.dispose()
    return n


def reset_console(url: str) -> None:
    """Empty the console's tables, so that a reused database starts every run alike."""
    eng = db.make_engine(url)
    with eng.begin() as conn:
        for t in (db.alerts, db.annotation_tasks, db.audit_log, db.console_users):
            conn.execute(t.delete())
    eng.dispose()


def server_version(url: str) -> str:
    if url.startswith("sqlite"):
        return f"SQLite {__import__('sqlite3').sqlite_version}"
    eng = db.make_engine(url)
    with eng.connect() as conn:
        v = str(conn.exec_driver_sql("SELECT VERSION()").scalar())
    eng.dispose()
    return f"MySQL/MariaDB {v}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comments", type=int, default=1_000_000)
    ap.add_argument("--keep", metavar="FILE", help="write the database here and keep it (default: a temp file)")
    ap.add_argument("--mysql-url", metavar="URL",
                    help="run on this MySQL/MariaDB server instead of SQLite, e.g. "
                         "mysql+pymysql://root@127.0.0.1:3306/ : the data go into a new database "
                         "wmh_bench_<random>, dropped at the end")
    ap.add_argument("--mysql-keep", action="store_true",
                    help="with --mysql-url: keep that database and print its name (for --mysql-reuse)")
    ap.add_argument("--mysql-reuse", metavar="NAME",
                    help="with --mysql-url: measure on the database NAME that a --mysql-keep run "
                         "generated, without generating again (the console tables are emptied first)")
    a = ap.parse_args()
    if (a.mysql_keep or a.mysql_reuse) and not a.mysql_url:
        ap.error("--mysql-keep and --mysql-reuse need --mysql-url")
    with tempfile.TemporaryDirectory() as tmp:
        if a.mysql_url:
            url, created = mysql_database(a.mysql_url, a.mysql_reuse)
            where = sa.make_url(url).render_as_string(hide_password=True)
        else:
            path = Path(a.keep) if a.keep else Path(tmp) / "bench_console.db"
            if path.exists():
                path.unlink()
            url, created, where = f"sqlite:///{path}", True, str(path)
        try:
            if created:
                print(f"generating {a.comments:,} comments in {where} …", file=sys.stderr)
                gen = generate(url, a.comments, progress=True)
            else:
                a.comments = count_comments(url)
                print(f"reusing {a.comments:,} comments in {where}", file=sys.stderr)
                gen = {}
                reset_console(url)
            setup, rows = measure(url)
            version = server_version(url)
        finally:
            if a.mysql_url and not a.mysql_keep:
                drop_database(url)
                print(f"dropped {sa.make_url(url).database}", file=sys.stderr)
            elif a.mysql_url:
                print(f"kept {sa.make_url(url).database} (drop it when done)", file=sys.stderr)
    print(f"\nmachine: {platform.machine()}, Python {platform.python_version()}, {version}")
    made = f"generated in {gen['generate_s']:.0f} s" if created else "reused (generated by an earlier run)"
    print(f"comments: {a.comments:,}; {made}")
    print(f"fill_alerts (whole database): {setup['alerts_created']:,} alerts in {setup['fill_alerts_s']:.2f} s; "
          f"again: {setup['fill_alerts_again_created']} in {setup['fill_alerts_again_s']:.2f} s")
    print(f"fill-queue stratified 200: {setup['fill_queue_200_s']:.2f} s\n")
    print("| page | median ms | max ms | bytes |\n|---|---:|---:|---:|")
    for p, med, mx, size in rows:
        print(f"| `{p}` | {med:.1f} | {mx:.1f} | {size:,} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
