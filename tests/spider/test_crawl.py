"""The real spider (`scrapy crawl hot_topics`) crawls the local site over HTTP into SQLite and MariaDB."""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from weibo.localsite import LocalSite, expected_counts, small_corpus

from tests.conftest import TEST_SALT
from tests.spider.helpers import counts, run_crawl, runs, write_config
from weibo_mh import db

pytestmark = pytest.mark.slow

EXPECTED = expected_counts(small_corpus())


def h(key: str) -> str:
    return hmac.new(TEST_SALT.encode(), key.encode(), hashlib.sha256).hexdigest()


def fetch(url: str, query: str) -> list[tuple]:
    eng = db.make_engine(url)
    try:
        with eng.begin() as conn:
            result = conn.execute(sa.text(query))
            return [tuple(r) for r in result] if result.returns_rows else []
    finally:
        eng.dispose()


def test_the_small_corpus_expectations_are_what_the_tests_below_assume() -> None:
    assert EXPECTED == {"topics": 4, "posts": 15, "post_topics": 16, "comments": 43, "pages": 15}


def test_crawl_stores_everything_once_and_a_recrawl_adds_nothing(
        db_url: str, site: LocalSite, config: Path) -> None:
    first = run_crawl(config, db_url)
    assert first.ok, first.output
    assert counts(db_url) == {"topics": 4, "topic_snapshots": 4, "posts": 15, "post_topics": 16,
                              "comments": 43, "crawl_runs": 1}
    (run,) = runs(db_url)
    assert run["status"] == "ok" and run["finished_at"] is not None and run["error"] is None
    assert (run["topics"], run["posts_new"], run["posts_updated"]) == (4, 15, 0)
    assert (run["comments_new"], run["comments_updated"]) == (43, 0)
    assert (run["pages"], run["dropped"], run["errors"]) == (15, 0, 0)
    # every page was asked for exactly once: the post under two topics too; the topic
    # without posts on s.weibo.com was tried on weibo.cn
    assert site.page_hits() == 15 and max(site.hits.values()) == 1
    assert run["stats"]["source_fallbacks"] == [{"topic": "周末一个人去看海", "source": "s.weibo.com",
                                                 "reason": "no_posts", "next": "weibo.cn"},
                                                {"topic": "周末一个人去看海", "source": "weibo.cn",
                                                 "reason": "no_posts", "next": None}]
    assert run["stats"]["pages_by_source"] == {"hotsearch": 1, "s.weibo.com": 5, "weibo.cn-search": 1,
                                               "weibo.cn-comments": 8}

    # the scoring worker has been at some comments; the crawl must leave that alone
    fetch(db_url, "UPDATE comments SET score_status='done', attempts=2, claimed_by='w1' "
                  "WHERE id IN ('490010000', '490130000')")
    site.posts["5100000000000001"]["comments_list"][0]["likes"] = 999   # a like arrived since

    second = run_crawl(config, db_url)
    assert second.ok, second.output
    assert counts(db_url) == {"topics": 4, "topic_snapshots": 8, "posts": 15, "post_topics": 16,
                              "comments": 43, "crawl_runs": 2}
    run2 = runs(db_url)[1]
    assert run2["status"] == "ok"
    assert (run2["posts_new"], run2["posts_updated"], run2["comments_new"]) == (15 - 15, 15, 0)
    # incremental: post 1's first comment page was already stored, so pages 2 and 3 were skipped
    assert run2["pages"] == 15 - 3 and run2["stats"]["incremental_stops"] >= 1
    assert fetch(db_url, "SELECT likes, score_status, attempts, claimed_by FROM comments "
                         "WHERE id = '490010000'") == [(999, "done", 2, "w1")]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE score_status = 'pending'") == [(41,)]


def test_what_is_stored_ids_hashed_nicknames_gone_text_normalised(
        db_url: str, site: LocalSite, config: Path) -> None:
    assert run_crawl(config, db_url).ok
    posts = dict(fetch(db_url, "SELECT mid, author_hash FROM posts"))
    assert posts["5100000000000001"] == h("u:5000001")
    assert posts["5100000000000005"] == h("c:sleepless_5")          # a custom /name link
    assert fetch(db_url, "SELECT COUNT(*) FROM posts WHERE author_raw IS NOT NULL") == [(0,)]

    texts = dict(fetch(db_url, "SELECT mid, text FROM posts"))
    assert texts["5100000000000001"] == "试了睡前不看手机，第三天终于十二点前睡着了，分享给大家🙏 #1"
    assert texts["5100000000000004"] == "褪黑素到底有没有用？ & 吃多了会不会有依赖 <疑问> #4"
    assert texts["5100000000000010"] == "多余的空格 和 换行 也要能处理 #10"
    assert texts["5100000000000007"] == "跟 @用户 聊了一晚上，心里轻松多了，谢谢你 #7"   # mention masked
    # the page's span.ctt closes at the emoji image; the text is whole all the same
    assert texts["5100000000000005"] == "睡不着的时候我就听雨声，[心] 推荐给同样失眠的朋友 #5"
    stored = dict(fetch(db_url, "SELECT id, text FROM comments"))
    corpus = {c["id"]: c["text"] for t in small_corpus()["topics"] for p in t["posts"]
              for c in p["comments_list"]}
    assert stored["490010003"] == corpus["490010003"]
    assert all(stored[i] == " ".join(corpus[i].split()) for i in stored), \
        [(stored[i], corpus[i]) for i in stored if stored[i] != corpus[i]][:3]
    eng = db.make_engine(db_url)
    with eng.connect() as conn:   # a typed read: DATETIME comes back as datetime on both engines
        created = conn.execute(sa.select(db.posts.c.created_at).where(db.posts.c.mid == "5100000000000005")).scalar()
    eng.dispose()
    assert created == datetime(2026, 11, 20, 12, 0, 0)    # "2026-11-20 12:00:00" on the page

    # comment 3 of post 1 replies to 读者6: stored as a hash, the prefix stripped
    (reply,) = fetch(db_url, "SELECT text, reply_to_hash, author_hash FROM comments WHERE id = '490010003'")
    assert reply == ("真的很需要有人陪着说说话", h("n:读者6"), h("u:7000040"))
    everything = " ".join(str(v) for q in ("SELECT text FROM posts", "SELECT text FROM comments")
                          for row in fetch(db_url, q) for v in row)
    for nickname in ("读者", "用户0001", "小林同学", "sleepless"):
        assert nickname not in everything


def test_keep_raw_ids_stores_the_raw_id_next_to_the_hash(sqlite_url: str, tmp_path: Path,
                                                         site: LocalSite) -> None:
    config = write_config(tmp_path / "raw.toml", site, extra="[privacy]\nkeep_raw_ids = true")
    assert run_crawl(config, sqlite_url).ok
    assert fetch(sqlite_url, "SELECT author_raw FROM posts WHERE mid = '5100000000000005'") == [("sleepless_5",)]


def test_each_site_gets_its_own_cookie_and_none_is_logged(sqlite_url: str, site: LocalSite, config: Path,
                                                          tmp_path: Path) -> None:
    secret = "SUB=_2A25-not-a-real-cookie-7f3e; SUBP=0033WrSX"
    com_secret = "SUB=_2A25-not-a-real-com-cookie-91ab; XSRF-TOKEN=x"
    cookie_file = tmp_path / "cookie.txt"
    cookie_file.write_text(secret + "\n")
    crawl = run_crawl(config, sqlite_url, "LOG_LEVEL=DEBUG", WEIBO_COOKIE_FILE=str(cookie_file),
                      WEIBO_COM_COOKIE=com_secret)
    assert crawl.ok, crawl.output
    by_site = {k: v for k, v in site.site_cookies.items()}
    # weibo.cn: one search page (the topic s.weibo.com had nothing for) and 8 comment pages
    assert by_site == {("weibo.cn", secret): 9, ("s.weibo.com", com_secret): 5, ("hotsearch", com_secret): 1}
    assert "not-a-real-cookie" not in crawl.output and "not-a-real-com-cookie" not in crawl.output
    assert "sending a Cookie header to weibo.cn" in crawl.output
    assert "sending a Cookie header to weibo.com" in crawl.output
    # weibo.com's endpoints get what a browser sends; weibo.cn the mobile User-Agent
    referer, agent = site.site_headers["hotsearch"]
    assert referer == f"{site.weibo_com_base}/" and "Windows NT" in agent
    assert site.site_headers["s.weibo.com"][0] == f"{site.weibo_com_base}/"
    assert "Android" in site.site_headers["weibo.cn"][1]


def test_no_salt_refuses_to_start(sqlite_url: str, site: LocalSite, config: Path) -> None:
    crawl = run_crawl(config, sqlite_url, salt=None)
    assert crawl.returncode == 2
    assert "no salt" in crawl.output and "Traceback" not in crawl.output
    assert site.page_hits() == 0


def test_an_old_or_missing_schema_refuses_to_start(tmp_path: Path, site: LocalSite, config: Path) -> None:
    crawl = run_crawl(config, f"sqlite:///{tmp_path / 'empty.db'}")
    assert crawl.returncode == 2
    assert "migrate" in crawl.output and "Traceback" not in crawl.output
    assert site.page_hits() == 0


@pytest.mark.parametrize("scenario", ["login_redirect", "login_page"])
def test_a_login_wall_stops_the_crawl_keeps_the_data_and_exits_non_zero(
        scenario: str, sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario=scenario, after=4) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 3, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "login_required"
    assert "login wall" in crawl.output
    stored = counts(sqlite_url)
    assert stored["topics"] == 4 and 0 < stored["posts"] < 15   # what came before the wall is kept
    assert site.page_hits() < 15                                 # and the crawl stopped


def test_a_418_storm_backs_off_then_stops_as_rate_limited(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="ban418", after=3) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1\nban_limit = 3")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 4, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "rate_limited"
    assert "3 rate-limit answers in a row (BAN_LIMIT 3)" in crawl.output
    assert run["stats"]["ban_answers"] >= 3 and site.statuses[418] >= 3
    assert counts(sqlite_url)["posts"] > 0      # the two pages before the storm are kept
    assert "pausing the crawl" in crawl.output


def test_5xx_answers_are_retried(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="flaky", fails=1) as site:
        config = write_config(tmp_path / "c.toml", site)
        crawl = run_crawl(config, sqlite_url)
    assert crawl.ok, crawl.output
    assert site.statuses[503] == 15
    assert counts(sqlite_url)["comments"] == 43
    assert runs(sqlite_url)[0]["stats"]["retries"] == 15


def test_malformed_pages_and_items_are_counted_never_fatal(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="malformed") as site:
        config = write_config(tmp_path / "c.toml", site)
        crawl = run_crawl(config, sqlite_url)
        broken_url = f"{site.s_weibo_base}/weibo?q=%23%E8%80%83%E7%A0%94%E4%BA%BA%E7%9A%84%E6%B7%B1%E5%A4%9C%23&page=1"
    assert crawl.ok, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "ok"
    assert run["errors"] == 1 and run["stats"]["malformed_urls"] == [broken_url]
    assert run["dropped"] == 2
    assert run["stats"]["dropped"] == {"post_missing_text": 1, "comment_missing_text": 1}
    assert f"malformed page (search page without posts or a no-results notice), skipped: {broken_url}" \
        in crawl.output
    # topic 2's page was lost: its own posts 13 and 14 (and 13's 12 comments) are missing
    stored = counts(sqlite_url)
    assert (stored["posts"], stored["comments"], stored["post_topics"]) == (13, 31, 13)


def test_the_crawl_command_documents_its_exit_codes() -> None:
    import subprocess

    from tests.spider.helpers import PY, SPIDER_DIR
    out = subprocess.run([PY, "-m", "scrapy", "crawl", "--help"], cwd=SPIDER_DIR, capture_output=True,
                         text=True, timeout=60).stdout
    assert "3  login_required" in out and "4  rate_limited" in out


@pytest.mark.mysql
def test_a_killed_database_connection_mid_crawl_loses_nothing(mysql_url: str, tmp_path: Path) -> None:
    """Kill the spider's MariaDB sessions while it crawls: it reconnects and stores every row."""
    from tests.reliability.faults import SessionKiller

    with LocalSite(small_corpus(), delay=0.05) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1\nflush_items = 5")
        with SessionKiller(mysql_url, every=0.4, limit=3) as killer:
            crawl = run_crawl(config, mysql_url)
    killed = killer.killed
    assert killed, "the test should have killed at least one session"
    assert crawl.ok, crawl.output
    assert counts(mysql_url) == {"topics": 4, "topic_snapshots": 4, "posts": 15, "post_topics": 16,
                                 "comments": 43, "crawl_runs": 1}
    assert runs(mysql_url)[0]["status"] == "ok"


def test_an_unreachable_hot_search_fails_the_run(sqlite_url: str, site: LocalSite, tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", site, f'hotsearch_url = "{site.url}/no-such-endpoint"')
    crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 1, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "failed" and "hot search" in run["error"]
    assert run["errors"] == 1
