"""The real spider over HTTP through each search and comment source, and the faults of the
real site (432, captcha, ok:-100, a dead cookie), into SQLite and MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from weibo.localsite import LocalSite, small_corpus
from weibo.localsite.corpus import post_mid
from weibo.localsite.server import bid_of

from tests.spider.helpers import counts, fetch, run_crawl, runs, write_config

pytestmark = pytest.mark.slow


def shapes_corpus() -> dict:
    """The small corpus with weibo.cn's limits: post 1 claims 100000 comment pages (pages past
    the real three repeat), post 3 counts comments its page does not show, and one comment of
    post 15 is only a picture."""
    c = small_corpus()
    posts = {p["mid"]: p for t in c["topics"] for p in t["posts"]}
    posts[post_mid(1)]["pages_shown"] = 100000
    posts[post_mid(15)]["comments_list"][0]["image_only"] = True
    posts[post_mid(3)]["comments"] = 4          # says it has comments; its page says there are none
    posts[post_mid(2)]["pages_shown"] = 100000  # one real page, its first comment a hot one
    posts[post_mid(2)]["comments_list"][0]["hot"] = True
    c["topics"][0]["label"] = "爆"
    c["hotgov"] = {"word": "一条置顶的政务话题", "posts": [posts[post_mid(3)]]}
    return c


def test_weibo_cn_comment_pages_in_the_real_shape(db_url: str, tmp_path: Path) -> None:
    with LocalSite(shapes_corpus()) as site:
        crawl = run_crawl(write_config(tmp_path / "c.toml", site), db_url)
        hits = dict(site.hits)
    assert crawl.ok, crawl.output
    (run,) = runs(db_url)
    # page 4 of post 1 repeated page 3, page 2 of post 2 its page 1 (hot comment and all);
    # post 3's only page said there are no comments
    assert run["stats"]["comment_stops"] == {"repeated": 2, "empty": 1}
    assert any("page=4" in h for h in hits) and not any("page=5" in h for h in hits)
    assert not any(f"/comment/{bid_of(post_mid(2))}?page=3" in h for h in hits)
    assert run["stats"]["dropped"] == {"comment_image_only": 1}
    assert counts(db_url)["comments"] == 42
    # hot comments stored once, flagged; the two most-liked of each post with 5+ comments
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE is_hot = 1") == [(7,)]
    # IP locations read from every time-span variant
    places = dict(fetch(db_url, "SELECT ip_location, COUNT(*) FROM comments GROUP BY ip_location"))
    assert set(places) == {None, "河南", "广东", "上海", "四川", "海外"} and places[None] < 20
    # the retweet (post 13) keeps its own words and counts
    (rt,) = fetch(db_url, f"SELECT is_retweet, text, reposts, comments_count FROM posts WHERE mid = '{post_mid(13)}'")
    assert rt[0] == 1 and rt[1].startswith("试了睡前不看手机") and rt[2:] == (26, 12)
    # the hot-search list: the pinned entry (rank 0) is kept, a badge is a label, not a category
    snaps = dict((w, (r, c, lb)) for w, r, c, lb in fetch(
        db_url, "SELECT t.word, s.rank, s.category, s.label FROM topic_snapshots s "
                "JOIN topics t ON t.id = s.topic_id"))
    assert snaps["一条置顶的政务话题"] == (0, None, None)
    assert snaps["春天总是睡不好"] == (1, "健康", "爆") and snaps["周末一个人去看海"] == (3, None, None)
    assert fetch(db_url, f"SELECT COUNT(*) FROM post_topics WHERE mid = '{post_mid(3)}'") == [(2,)]


def test_weibo_com_comment_source_stores_threads(db_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus()) as site:
        config = write_config(tmp_path / "c.toml", site, 'comments_source = "weibo.com"')
        crawl = run_crawl(config, db_url)
    assert crawl.ok, crawl.output
    assert counts(db_url)["comments"] == 43
    (run,) = runs(db_url)
    assert run["stats"]["pages_by_source"]["weibo.com-replies"] > 0
    # comment 3 of post 1 answers comment 2 (a first-level comment): a thread link
    assert fetch(db_url, "SELECT root_id, reply_to_id FROM comments WHERE id = '490010003'") == \
        [("490010002", "490010002")]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE root_id IS NOT NULL") == [(9,)]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE ip_location IS NOT NULL")[0][0] > 20


def test_weibo_cn_search_alone_and_the_comment_page_cap(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus()) as site:
        config = write_config(tmp_path / "c.toml", site, 'search_sources = ["weibo.cn"]\n'
                                                          "max_comment_pages = 2")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.ok, crawl.output
    # post 1 has three comment pages: the cap of two leaves its last 3 comments
    assert counts(sqlite_url)["posts"] == 15 and counts(sqlite_url)["comments"] == 43 - 3
    (run,) = runs(sqlite_url)
    assert run["stats"]["pages_by_source"].get("s.weibo.com") is None
    assert run["stats"]["comment_stops"] == {"cap": 1}


def test_a_refused_weibo_com_cookie_falls_back_to_weibo_cn_and_says_so(sqlite_url: str,
                                                                       tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="sweibo_login") as site:
        crawl = run_crawl(write_config(tmp_path / "c.toml", site), sqlite_url)
    assert crawl.ok, crawl.output
    assert counts(sqlite_url)["posts"] == 15
    (run,) = runs(sqlite_url)
    assert run["stats"]["logins_refused"] == ["weibo.com"]
    assert {f["reason"] for f in run["stats"]["source_fallbacks"]} >= {"login_wall"}
    assert crawl.output.count("LOGIN REQUIRED") == 1
    assert "WEIBO_COM_COOKIE" in crawl.output and "docs/spider.md" in crawl.output


def test_a_cookie_dying_mid_run_ends_as_login_required_with_one_loud_message(
        sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="login_redirect", after=8) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1")
        crawl = run_crawl(config, sqlite_url, WEIBO_COOKIE="SUB=x", WEIBO_COM_COOKIE="SUB=y")
    assert crawl.returncode == 3, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "login_required"
    assert counts(sqlite_url)["posts"] > 0                      # what came before is kept
    assert crawl.output.count("LOGIN REQUIRED") in (1, 2)       # once per refused cookie
    assert "(WEIBO_COOKIE)" in crawl.output or "(WEIBO_COM_COOKIE)" in crawl.output
    assert "The cookies: setting and refreshing them" in crawl.output


@pytest.mark.parametrize("scenario, code", [("ban432", 4), ("captcha", 4)])
def test_432_and_captcha_redirects_back_off_then_stop_as_rate_limited(
        scenario: str, code: int, sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario=scenario, after=3) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1\nban_limit = 3")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == code, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "rate_limited" and run["stats"]["ban_answers"] >= 3
    assert "pausing the crawl" in crawl.output
    assert counts(sqlite_url)["posts"] > 0


def test_a_403_storm_on_the_only_search_source_backs_off_then_stops_as_rate_limited(
        sqlite_url: str, tmp_path: Path) -> None:
    """403 hands a search to the next source only when there is one: on the last (here the
    only) source it is a block answer like any other."""
    with LocalSite(small_corpus(), scenario="sweibo_403") as site:
        config = write_config(tmp_path / "c.toml", site, 'search_sources = ["s.weibo.com"]\n'
                                                          "concurrent_per_domain = 1\nban_limit = 3")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 4, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "rate_limited" and run["stats"]["ban_answers"] >= 3
    assert "pausing the crawl" in crawl.output
    assert not run["stats"].get("source_fallbacks")


def test_ok_minus_100_from_the_comment_json_ends_as_login_required(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), scenario="ok100", after=4) as site:
        config = write_config(tmp_path / "c.toml", site, 'comments_source = "weibo.com"\n'
                                                          "concurrent_per_domain = 1")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 3, crawl.output
    (run,) = runs(sqlite_url)
    assert run["status"] == "login_required" and run["stats"]["logins_refused"] == ["weibo.com"]
    assert counts(sqlite_url)["posts"] > 0


def test_old_layouts_icon_glyphs_and_picture_links_over_http(sqlite_url: str, tmp_path: Path) -> None:
    """s.weibo.com cards in the 2018 layout (p.from) with an icon glyph, and weibo.cn post
    blocks with "[组图共N张]" links: stored whole, with nothing left behind."""
    c = small_corpus()
    posts = {p["mid"]: p for t in c["topics"] for p in t["posts"]}
    for no in (1, 4, 6, 13):
        posts[post_mid(no)].update(layout="2018", icon=True)
    for no in (2, 4, 15):
        posts[post_mid(no)]["pictures"] = 3
    with LocalSite(c) as site:
        crawl = run_crawl(write_config(tmp_path / "c.toml", site), sqlite_url)
    assert crawl.ok, crawl.output
    (run,) = runs(sqlite_url)
    # post 1 is listed under two topics: its card, glyph and all, is read twice
    assert run["stats"]["private_use_removed"] == 5
    stored = dict(fetch(sqlite_url, "SELECT mid, text FROM posts"))
    assert all("[]" not in t and not any("\ue000" <= ch <= "\uf8ff" for ch in t) for t in stored.values())
    for no in (1, 2, 4, 6, 13, 15):
        assert stored[post_mid(no)] == " ".join(posts[post_mid(no)]["text"].split()).replace(
            "@小林同学", "@用户")
    # the 2018 cards lost nothing: time and client are there
    rows = fetch(sqlite_url, "SELECT mid, created_at, source FROM posts WHERE mid IN "
                             f"('{post_mid(4)}', '{post_mid(6)}')")
    assert len(rows) == 2 and all(r[1] is not None and r[2] for r in rows)
