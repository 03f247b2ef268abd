"""Spider throughput: pages/s and rows/s parsed and stored, local site, delay 0, SQLite vs MariaDB.

Runs the real `scrapy crawl hot_topics` (a subprocess, as users run it) against a
LocalSite on 127.0.0.1 serving a generated corpus, once into a fresh SQLite file and
once into a fresh MariaDB database, side by side in one run; then a re-crawl of the
same site (incremental off, so every row goes through the update path).

    .venv/bin/python bench/bench_spider.py [--topics 5 --posts 30 --comments 25] [--out FILE]
    .venv/bin/python bench/bench_spider.py --per-source [--out FILE]

``--per-source`` measures each search source and each comment source instead: one crawl
(SQLite) per combination, side by side, with the pages each source served, and the pure
parsers' pages/s on pages the local site renders in each source's shape.

Crawl time is Scrapy's own elapsed_time_seconds (start of the spider to its close,
final flush included); process start-up is reported apart.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from weibo.localsite import LocalSite, expected_counts, scale_corpus  # noqa: E402

from weibo_mh import db  # noqa: E402

SPIDER_DIR = ROOT / "Weibo_Spider"
MYSQL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
SALT = "bench-salt-0123456789abcdef"


def config(path: Path, site: LocalSite, concurrency: int, extra: str = "") -> Path:
    path.write_text(f"""
[spider]
hotsearch_url = "{site.hotsearch_url}"
weibo_cn_base = "{site.url}"
s_weibo_base = "{site.s_weibo_base}"
weibo_com_base = "{site.weibo_com_base}"
m_weibo_base = "{site.m_weibo_base}"
{extra}
download_delay = 0.0
autothrottle = false
concurrent_per_domain = {concurrency}
max_comment_pages = 50
flush_items = 500
""", encoding="utf-8")
    return path


def crawl(cfg: Path, url: str, *settings: str) -> dict[str, Any]:
    env = dict(os.environ, WEIBO_MH_CONFIG=str(cfg), DATABASE_URL=url, WEIBO_MH_SALT=SALT)
    cmd = [sys.executable, "-m", "scrapy", "crawl", "hot_topics", "-s", "LOG_LEVEL=INFO"]
    for s in settings:
        cmd += ["-s", s]
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=SPIDER_DIR, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - t0
    out = p.stdout + p.stderr
    if p.returncode != 0:
        raise SystemExit(f"crawl failed (exit {p.returncode}):\n{out[-3000:]}")
    def stat(name: str) -> str:
        m = re.search(rf"'{name}': ([\d.]+)", out)
        if m is None:
            raise SystemExit(f"crawl printed no {name} stat:\n{out[-3000:]}")
        return m.group(1)

    elapsed = float(stat("elapsed_time_seconds"))
    pages = int(stat("weibo/pages"))
    rows = int(stat("weibo/rows_written"))
    by_source = {m.group(1): int(m.group(2)) for m in re.finditer(r"'weibo/pages/([^']+)': (\d+)", out)}
    return {"wall": wall, "elapsed": elapsed, "pages": pages, "rows": rows, "by_source": by_source}


#: (label, [spider] lines) of the per-source crawls.
COMBOS = [
    ("s.weibo.com search + weibo.cn comments", 'search_sources = ["s.weibo.com"]\ncomments_source = "weibo.cn"'),
    ("weibo.cn search + weibo.cn comments", 'search_sources = ["weibo.cn"]\ncomments_source = "weibo.cn"'),
    ("s.weibo.com search + weibo.com comment JSON", 'search_sources = ["s.weibo.com"]\n'
     'comments_source = "weibo.com"'),
    ("s.weibo.com search + m.weibo.cn hotflow JSON", 'search_sources = ["s.weibo.com"]\n'
     'comments_source = "m.weibo.cn"'),
]


def parser_rates(corpus: dict, site: LocalSite, seconds: float = 2.0) -> list[tuple[str, int, float]]:
    """Pages/s of each pure parser on pages the local site renders in that source's shape."""
    from urllib.parse import quote
    from urllib.request import urlopen

    from weibo import parsing
    from weibo.localsite.server import bid_of

    from weibo_mh.db import SHANGHAI

    now = datetime.now(SHANGHAI)
    topic = corpus["topics"][0]
    post = topic["posts"][0]
    mid = post["mid"]
    get = lambda path: urlopen(f"{site.url}{path}", timeout=10).read().decode()  # noqa: E731
    samples = [
        ("s.weibo.com search page", get(f"/sweibo/weibo?q={quote('#' + topic['word'] + '#')}&page=1"),
         lambda t: parsing.parse_sweibo_page(t, site.s_weibo_base, now)),
        ("weibo.cn search page", get(f"/search/mblog?keyword={quote('#' + topic['word'] + '#')}&page=1"),
         lambda t: parsing.parse_search_page(t, site.url, now)),
        ("weibo.cn comment page", get(f"/comment/{bid_of(mid)}?page=1"),
         lambda t: parsing.parse_comment_page(t, f"{site.url}/comment/{bid_of(mid)}?page=1", now, mid=mid)),
        ("weibo.com buildComments JSON", get(f"/wcom/ajax/statuses/buildComments?id={mid}&count=20"),
         lambda t: parsing.parse_build_comments(t, mid)),
        ("m.weibo.cn hotflow JSON", get(f"/mweibo/comments/hotflow?id={mid}&mid={mid}&max_id_type=0"),
         lambda t: parsing.parse_hotflow(t, mid)),
    ]
    out = []
    for name, text, parse in samples:
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            parse(text)
            n += 1
        out.append((name, len(text), n / (time.perf_counter() - t0)))
    return out


def per_source(a: argparse.Namespace) -> int:
    corpus = scale_corpus(a.topics, a.posts, a.comments)
    results = []
    with tempfile.TemporaryDirectory() as tmp, LocalSite(corpus) as site:
        for i, (label, extra) in enumerate(COMBOS):
            cfg = config(Path(tmp) / f"c{i}.toml", site, a.concurrency, extra)
            url = f"sqlite:///{tmp}/bench{i}.db"
            eng = db.make_engine(url)
            db.migrate(eng)
            eng.dispose()
            print(f"{label}: crawl…", file=sys.stderr)
            results.append((label, crawl(cfg, url)))
        rates = parser_rates(corpus, site)
    lines = [
        f"### Spider throughput per source ({datetime.now():%Y-%m-%d})",
        "",
        f"Machine: 2 cores, 24 GiB RAM, no GPU, shared ({platform.python_implementation()} "
        f"{platform.python_version()}). Local site on 127.0.0.1 serving each source's shape, "
        f"DOWNLOAD_DELAY 0, AutoThrottle off, {a.concurrency} concurrent requests, SQLite. Corpus: "
        f"{a.topics} topics × {a.posts} posts × {a.comments} comments.",
        f"Command: `.venv/bin/python bench/bench_spider.py --per-source --topics {a.topics} --posts "
        f"{a.posts} --comments {a.comments} --concurrency {a.concurrency}`",
        "",
        "| sources | pages (by source) | rows written | crawl s | pages/s | rows/s |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for label, r in results:
        by = ", ".join(f"{k} {v}" for k, v in sorted(r["by_source"].items()))
        lines.append(f"| {label} | {r['pages']:.0f} ({by}) | {r['rows']:.0f} | {r['elapsed']:.2f} | "
                     f"{r['pages'] / r['elapsed']:.1f} | {r['rows'] / r['elapsed']:.0f} |")
    lines += ["", "Parsers alone (one page of each shape, parsed repeatedly for 2 s):", "",
              "| page | bytes | pages/s |", "|---|---:|---:|"]
    lines += [f"| {name} | {size} | {rate:.0f} |" for name, size, rate in rates]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


def mysql_database() -> tuple[str, sa.Engine, str] | None:
    server = sa.make_url(db.normalise_url(MYSQL))
    try:
        admin = sa.create_engine(server)
        name = f"wmh_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    except sa.exc.OperationalError as e:
        print(f"MariaDB not reachable at {server.render_as_string(hide_password=True)}: {e}; skipping it",
              file=sys.stderr)
        return None
    return server.set(database=name).render_as_string(hide_password=False), admin, name


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--topics", type=int, default=5)
    ap.add_argument("--posts", type=int, default=30, help="posts per topic")
    ap.add_argument("--comments", type=int, default=25, help="comments per post")
    ap.add_argument("--concurrency", type=int, default=4, help="concurrent requests to the site")
    ap.add_argument("--out", help="also write the Markdown table to this file")
    ap.add_argument("--per-source", action="store_true",
                    help="measure each search and comment source (SQLite) instead of SQLite vs MariaDB")
    a = ap.parse_args()
    if a.per_source:
        return per_source(a)

    corpus = scale_corpus(a.topics, a.posts, a.comments)
    exp = expected_counts(corpus)
    results: list[tuple[str, str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory() as tmp, LocalSite(corpus) as site:
        cfg = config(Path(tmp) / "bench.toml", site, a.concurrency)
        targets: list[tuple[str, str, Any]] = [("SQLite", f"sqlite:///{tmp}/bench.db", None)]
        made = mysql_database()
        if made:
            targets.append(("MariaDB", made[0], made))
        for name, url, _ in targets:
            eng = db.make_engine(url)
            db.migrate(eng)
            eng.dispose()
            print(f"{name}: first crawl…", file=sys.stderr)
            results.append((name, "first crawl (inserts)", crawl(cfg, url)))
            print(f"{name}: re-crawl…", file=sys.stderr)
            results.append((name, "re-crawl (updates)", crawl(cfg, url, "INCREMENTAL=False")))
        if made:
            _, admin, dbname = made
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{dbname}`")
            admin.dispose()

    lines = [
        f"### Spider throughput ({datetime.now():%Y-%m-%d})",
        "",
        f"Machine: 2 cores, 24 GiB RAM, no GPU ({platform.python_implementation()} "
        f"{platform.python_version()}). Local site on 127.0.0.1, DOWNLOAD_DELAY 0, AutoThrottle off, "
        f"{a.concurrency} concurrent requests. Corpus: {a.topics} topics × {a.posts} posts × "
        f"{a.comments} comments = {exp['pages']} pages, {exp['posts']} posts, {exp['comments']} comments.",
        f"Command: `.venv/bin/python bench/bench_spider.py --topics {a.topics} --posts {a.posts} "
        f"--comments {a.comments} --concurrency {a.concurrency}`",
        "",
        "| database | run | pages | rows written | crawl s | pages/s | rows/s | process wall s |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, run, r in results:
        lines.append(f"| {name} | {run} | {r['pages']:.0f} | {r['rows']:.0f} | {r['elapsed']:.2f} | "
                     f"{r['pages'] / r['elapsed']:.1f} | {r['rows'] / r['elapsed']:.0f} | {r['wall']:.2f} |")
    if len(results) >= 4:
        lines += ["", f"MariaDB / SQLite crawl time, first crawl: "
                      f"{results[2][2]['elapsed'] / results[0][2]['elapsed']:.2f}×; re-crawl: "
                      f"{results[3][2]['elapsed'] / results[1][2]['elapsed']:.2f}×."]
    text = "\n".join(lines) + "\n"
    print(text)
    if a.out:
        with open(a.out, "a", encoding="utf-8") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
