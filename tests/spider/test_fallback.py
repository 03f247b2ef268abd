"""Failures, not only answers, move a topic (or a post's comments) to the next source, and a run
says honestly what it got: the real spider over HTTP against the local site, with an
unresolvable host (RFC 2606 ``.invalid``), a refused port, TLS to a plain-HTTP port, 503
storms and 403/404 answers. Also the m.weibo.cn comment source, into SQLite and MariaDB."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadTimeoutError,
)
from twisted.python.failure import Failure
from weibo.localsite import LocalSite, small_corpus
from weibo.sources import classify_failure, next_source

from tests.spider.helpers import counts, fetch, run_crawl, runs, write_config

FAST = "retry_times = 1"


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("exc, url, expected", [
    (CannotResolveHostError("no such host"), "https://s.weibo.com/weibo?q=x",
     ("dns", "DNS lookup failed for s.weibo.com")),
    (DownloadConnectionRefusedError("refused"), "http://127.0.0.1:9/x",
     ("refused", "connection refused by 127.0.0.1:9")),
    (DownloadTimeoutError("took longer than 30 seconds"), "https://weibo.cn/search/mblog?keyword=x",
     ("timeout", "timed out talking to weibo.cn")),
    (OSError("[('SSL routines', '', 'wrong version number')]"), "https://s.weibo.com/weibo",
     ("tls", "TLS failed with s.weibo.com")),
    (ValueError("a bug of ours"), "https://s.weibo.com/weibo", None),
])
def test_which_failures_move_to_the_next_source(exc: Exception, url: str, expected: tuple | None) -> None:
    assert classify_failure(Failure(exc), url) == expected


def test_the_next_source_skips_refused_logins() -> None:
    sources = ["m.weibo.cn", "weibo.com", "weibo.cn"]
    assert next_source(sources, -1, set()) == 0
    assert next_source(sources, 0, {"weibo.cn"}) == 1          # m.weibo.cn uses the weibo.cn login
    assert next_source(sources, 1, {"weibo.cn"}) is None


@pytest.mark.slow
@pytest.mark.parametrize("case, reason", [("dns", "dns"), ("refused", "refused"), ("tls", "tls"),
                                          ("sweibo_503", "http_503"), ("sweibo_403", "http_403"),
                                          ("404", "http_404")])
def test_a_failing_search_source_hands_every_topic_to_the_next(case: str, reason: str, sqlite_url: str,
                                                                tmp_path: Path) -> None:
    scenario = case if case.startswith("sweibo_") else "ok"
    with LocalSite(small_corpus(), scenario=scenario) as site:
        base = {"dns": "http://s-weibo.invalid/sweibo", "refused": f"http://127.0.0.1:{closed_port()}/sweibo",
                "tls": site.s_weibo_base.replace("http://", "https://"), "404": f"{site.url}/gone"}.get(case)
        extra = f'{FAST}\ns_weibo_base = "{base}"' if base else FAST
        crawl = run_crawl(write_config(tmp_path / "c.toml", site, extra), sqlite_url, "DNS_TIMEOUT=5")
    assert crawl.ok, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "ok" and counts(sqlite_url)["posts"] == 15
    moved = [f for f in run["stats"]["source_fallbacks"] if f["source"] == "s.weibo.com"]
    assert len(moved) == 4 and {(f["reason"], f["next"]) for f in moved} == {(reason, "weibo.cn")}
    assert all(f["cause"] for f in moved)
    assert run["stats"]["search_failures"]["failed"] == 0
    assert run["stats"]["ban_answers"] == 0          # a 403 on a search URL is no block


@pytest.mark.slow
@pytest.mark.parametrize("case", ["dns", "refused", "search_503"])
def test_a_run_where_no_topic_could_be_searched_fails_and_names_the_cause(
        case: str, sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="search_503" if case == "search_503" else "ok") as site:
        dead = closed_port()
        bases = {"dns": ("http://s-weibo.invalid/sweibo", "http://weibo-cn.invalid"),
                 "refused": (f"http://127.0.0.1:{dead}/sweibo", f"http://127.0.0.1:{dead}")}.get(case)
        extra = FAST + (f'\ns_weibo_base = "{bases[0]}"\nweibo_cn_base = "{bases[1]}"' if bases else "")
        crawl = run_crawl(write_config(tmp_path / "c.toml", site, extra), sqlite_url, "DNS_TIMEOUT=5")
        where = f"127.0.0.1:{site.httpd.server_address[1]}"
    assert crawl.returncode == 1, crawl.output
    (run,) = runs(sqlite_url)
    expected = {"dns": "DNS lookup failed for s-weibo.invalid (4), DNS lookup failed for weibo-cn.invalid (4)",
                "refused": f"connection refused by 127.0.0.1:{dead} (8)",
                "search_503": f"HTTP 503 from {where} after retries (8)"}[case]
    assert run["status"] == "failed"
    assert run["error"] == f"0 of 4 topics could be searched: {expected}"
    assert run["stats"]["search_failures"]["failed"] == 4 and counts(sqlite_url)["topics"] == 4
    assert f"0 of 4 topics could be searched: {expected}" in crawl.output


@pytest.mark.slow
def test_some_topics_failing_is_ok_and_counted_in_stats_and_the_closing_line(sqlite_url: str,
                                                                             tmp_path: Path) -> None:
    """s.weibo.com cannot be resolved, and weibo.cn answers one topic with a 503 storm: three
    topics are rescued by weibo.cn, one is lost; the closing line names only that one's causes."""
    with LocalSite(small_corpus(), scenario="topic_503") as site:
        config = write_config(tmp_path / "c.toml", site, f'{FAST}\ns_weibo_base = "http://s-weibo.invalid/s"')
        crawl = run_crawl(config, sqlite_url, "DNS_TIMEOUT=5")
        where = f"127.0.0.1:{site.httpd.server_address[1]}"
    assert crawl.ok, crawl.output
    (run,) = runs(sqlite_url)
    failures = run["stats"]["search_failures"]
    assert run["status"] == "ok"
    assert (failures["topics"], failures["failed"], failures["failed_topics"]) == (4, 1, ["考研人的深夜"])
    assert failures["causes"] == {"DNS lookup failed for s-weibo.invalid": 4,
                                  f"HTTP 503 from {where} after retries": 1}
    assert (f"1 of 4 topics could not be searched (DNS lookup failed for s-weibo.invalid (1), "
            f"HTTP 503 from {where} after retries (1))" in crawl.output)
    assert counts(sqlite_url)["posts"] == 13       # topic 2's own posts 13 and 14 are missing


@pytest.mark.slow
def test_m_weibo_cn_comments_into_both_engines(db_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus()) as site:
        config = write_config(tmp_path / "c.toml", site, 'comments_source = "m.weibo.cn"')
        crawl = run_crawl(config, db_url, WEIBO_COOKIE="SUB=cn-login")
        hits = [h for h in site.hits if h.startswith("/mweibo/")]
        cookies = {c for (where, c) in site.site_cookies if where == "m.weibo.cn"}
    assert crawl.ok, crawl.output
    assert counts(db_url)["comments"] == 43
    (run,) = runs(db_url)
    assert run["status"] == "ok" and run["stats"]["pages_by_source"]["m.weibo.cn-comments"] == len(hits)
    assert cookies == {"SUB=cn-login"}                 # m.weibo.cn takes the weibo.cn login
    # post 1 has 23 comments in 18 threads, 10 a page: a second page, asked for with the
    # max_id and max_id_type of the first answer, and none after it (max_id 0)
    assert any("max_id=138000000000010&max_id_type=1" in h for h in hits)
    assert not any("max_id=138000000000020" in h for h in hits)
    # replies come inline, linked to their first-level comment; the reply prefix is stripped
    assert fetch(db_url, "SELECT root_id, reply_to_id, text FROM comments WHERE id = '490010003'") == \
        [("490010002", "490010002", "真的很需要有人陪着说说话")]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE root_id IS NOT NULL") == [(9,)]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE ip_location IS NOT NULL")[0][0] > 20


@pytest.mark.slow
@pytest.mark.parametrize("scenario", ["mweibo_login", "mweibo_passport"])
def test_the_m_weibo_cn_login_wall_ends_login_required_with_the_data_kept(
        scenario: str, sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario=scenario, after=8) as site:
        config = write_config(tmp_path / "c.toml", site, 'comments_source = "m.weibo.cn"\n'
                                                          "concurrent_per_domain = 1")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 3, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "login_required" and run["stats"]["logins_refused"] == ["weibo.cn"]
    assert counts(sqlite_url)["posts"] > 0 and counts(sqlite_url)["comments"] > 0
    assert "LOGIN REQUIRED" in crawl.output and "WEIBO_COOKIE" in crawl.output


@pytest.mark.slow
def test_a_failing_comment_source_hands_its_posts_to_the_next(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="mweibo_503") as site:
        config = write_config(tmp_path / "c.toml", site,
                              f'{FAST}\ncomments_source = ["m.weibo.cn", "weibo.cn"]')
        crawl = run_crawl(config, sqlite_url)
    assert crawl.ok, crawl.output
    assert counts(sqlite_url)["comments"] == 43
    (run,) = runs(sqlite_url)
    moved = run["stats"]["comment_fallbacks"]     # the 5 posts with comments, each once
    assert len(moved) == 5 and {(f["source"], f["reason"], f["next"]) for f in moved} == \
        {("m.weibo.cn", "http_503", "weibo.cn")}
    assert run["stats"]["recrawl_mids"] == []
