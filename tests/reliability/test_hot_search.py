"""A hostile hot-search endpoint: one bad entry costs only itself, a failed fetch fails the run.

Every test crawls the demo corpus once cleanly, then crawls the hostile site with the real
spider (``scrapy crawl hot_topics`` in a subprocess) and counts rows before and after:
the good data of the run is all there, the run's status and exit code tell what happened,
and the error names the cause.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from weibo.localsite import LocalSite
from weibo.localsite.demo_corpus import build_corpus
from weibo.localsite.hostile import DROPPED, STORED_WORDS, HostileSite

from tests.reliability.faults import table_counts
from tests.spider.helpers import run_crawl, runs, write_config
from weibo_mh import db

CORPUS = build_corpus(comments_per_post=6)
CRAWLED = [t for t in CORPUS["topics"] if not t["is_ad"]]
N_POSTS = len({p["mid"] for t in CRAWLED for p in t["posts"]})
N_COMMENTS = len({c["id"] for t in CRAWLED for p in t["posts"] for c in p["comments_list"]})
SPIDER = "topic_limit = 50\nconcurrent_per_domain = 4"


def crawl(tmp_path: Path, url: str, site: LocalSite, extra: str = "", name: str = "c.toml"):
    return run_crawl(write_config(tmp_path / name, site, SPIDER + "\n" + extra), url)


def words(url: str) -> list[str]:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        out = [r[0] for r in conn.execute(sa.select(db.topics.c.word))]
    eng.dispose()
    return out


def test_bad_hot_search_entries_cost_only_themselves(db_url, tmp_path):
    before = table_counts(db_url)
    with HostileSite(CORPUS, "bad_entries") as site:
        result = crawl(tmp_path, db_url, site)
    after = table_counts(db_url)
    last = runs(db_url)[-1]
    assert result.returncode == 0, result.output
    assert last["status"] == "ok", last
    # all the good data of the run, and the bad entries that could be mended
    assert after["topics"] == before["topics"] + len(CRAWLED) + len(STORED_WORDS)
    assert after["posts"] == N_POSTS and after["comments"] == N_COMMENTS
    stored = set(words(db_url))
    assert set(STORED_WORDS) <= stored
    assert not any("\x00" in w or "\x1b" in w or "12345" in w or "['" in w for w in stored)
    assert all(len(w) <= 191 for w in stored)
    for reason, n in DROPPED.items():
        assert last["stats"]["dropped"].get(reason) == n, last["stats"]["dropped"]
    assert last["dropped"] >= sum(DROPPED.values())
    assert last["stats"]["clamped"].get("topic_heat") == 2  # 10^30 and -5 (1e400 reads as 0)
    eng = db.make_engine(db_url)
    with eng.connect() as conn:
        heat = dict(conn.execute(sa.select(db.topics.c.word, db.topic_snapshots.c.heat)
                                 .join(db.topic_snapshots)).all())
    eng.dispose()
    assert heat["热度爆表"] == 2**63 - 1 and heat["热度无穷"] == 0 and heat["热度为负"] == 0


def test_a_list_of_only_unstorable_topics_fails_the_run(sqlite_url, tmp_path):
    with LocalSite(CORPUS) as site:
        assert crawl(tmp_path, sqlite_url, site, "topic_limit = 3").ok
    before = table_counts(sqlite_url)
    with HostileSite(CORPUS, "only_bad") as site:
        result = crawl(tmp_path, sqlite_url, site, name="bad.toml")
    last = runs(sqlite_url)[-1]
    assert result.returncode == 1, result.output
    assert last["status"] == "failed"
    assert "listed 4 topics but none could be stored" in last["error"], last["error"]
    after = table_counts(sqlite_url)
    assert after["crawl_runs"] == before["crawl_runs"] + 1
    for table in ("topics", "posts", "comments", "topic_snapshots"):
        assert after[table] == before[table], table


@pytest.mark.parametrize("mode, cause", [
    ("redirect_loop", "redirect loop"),
    ("gzip_bomb", "exceeded DOWNLOAD_MAXSIZE"),
    ("oversize", "larger than download max size"),
    ("nested_json", "nested too deeply"),
])
def test_a_failed_hot_search_fails_the_run_and_names_the_cause(db_url, tmp_path, mode, cause):
    with LocalSite(CORPUS) as site:  # earlier data (three topics keep it quick)
        assert crawl(tmp_path, db_url, site, "topic_limit = 3").ok
    before = table_counts(db_url)
    # the bomb stays small in CI: 4 MiB of zeros (about 4 KiB gzipped) against a 1 MiB limit
    with HostileSite(CORPUS, mode, bomb_bytes=4 * 1024 * 1024) as site:
        result = crawl(tmp_path, db_url, site, "download_maxsize = 1048576\ndownload_warnsize = 524288",
                       name="bad.toml")
    last = runs(db_url)[-1]
    assert result.returncode == 1, result.output
    assert last["status"] == "failed", last
    assert cause in (last["error"] or ""), last["error"]
    assert "Traceback" not in result.output, result.output[-3000:]
    after = table_counts(db_url)
    assert after["crawl_runs"] == before["crawl_runs"] + 1
    for table in ("topics", "posts", "post_topics", "comments", "topic_snapshots"):
        assert after[table] == before[table], table
