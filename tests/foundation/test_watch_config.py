"""[watch] is validated at start-up like every section: post URLs, bids and mids, labels."""

from __future__ import annotations

from pathlib import Path

import pytest

from weibo_mh.config import ConfigError, load_config, watch_post_id


@pytest.mark.parametrize("given, post", [
    ("https://weibo.com/1648007681/z0JH2lOMb", "z0JH2lOMb"),
    ("https://www.weibo.com/1648007681/z0JH2lOMb?refer_flag=1001030103_", "z0JH2lOMb"),
    ("weibo.com/someone.custom/z0JH2lOMb", "z0JH2lOMb"),
    ("https://m.weibo.cn/detail/3501756485200075", "3501756485200075"),
    ("https://m.weibo.cn/status/z0JH2lOMb", "z0JH2lOMb"),
    ("https://weibo.cn/comment/z0JH2lOMb?uid=1&rl=0#cmtfrm", "z0JH2lOMb"),
    ("3501756485200075", "3501756485200075"),
    (" z0JH2lOMb ", "z0JH2lOMb"),
])
def test_a_post_may_be_a_url_a_bid_or_a_mid(given: str, post: str) -> None:
    assert watch_post_id(given) == post


@pytest.mark.parametrize("given", ["https://weibo.com/u/1648007681", "https://weibo.com/1648007681",
                                   "https://example.com/1/z0JH2lOMb", "not a post!", "",
                                   "https://weibo.com/1/2/3"])
def test_what_names_no_post_is_none(given: str) -> None:
    assert watch_post_id(given) is None


def write(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(f"[watch]\n{body}\n", encoding="utf-8")
    return p


def test_entries_are_read_with_their_labels_and_defaults(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, 'posts = [{post = "https://weibo.cn/comment/z0JH2lOMb", label = "树洞"}]\n'
                                      '[[watch.keywords]]\nkeyword = "不想活了"\nlabel = "关键词"'))
    assert cfg.watch.posts == [{"post": "z0JH2lOMb", "label": "树洞",
                                "given": "https://weibo.cn/comment/z0JH2lOMb"}]
    assert cfg.watch.keywords == [{"keyword": "不想活了", "label": "关键词"}]
    assert (cfg.watch.every_minutes, cfg.watch.page_budget, cfg.watch.search_pages) == (10, 5, 1)
    assert load_config(write(tmp_path, "")).watch.posts == []


@pytest.mark.parametrize("body, message", [
    ('posts = [{post = "https://weibo.com/u/1", label = "a"}]', "watch.posts[0]: 'https://weibo.com/u/1' is not a Weibo post"),
    ('posts = [{post = "z0JH2lOMb"}]', "watch.posts[0]: label must be a non-empty string"),
    ('posts = [{post = "z0JH2lOMb", label = "  "}]', "label must be a non-empty string"),
    ('posts = ["z0JH2lOMb"]', "watch.posts[0] must be an inline table"),
    ('posts = [{post = "z0JH2lOMb", label = "a", level = 7}]', "unknown key 'level'"),
    ('posts = [{post = "z0JH2lOMb", label = "a"}, {post = "https://weibo.cn/comment/z0JH2lOMb", label = "b"}]',
     "post z0JH2lOMb is listed twice"),
    (f'posts = [{{post = "z0JH2lOMb", label = "{"长" * 65}"}}]', "label is longer than 64 characters"),
    ('keywords = [{keyword = "", label = "a"}]', "watch.keywords[0]: keyword must be a non-empty string"),
    ('keywords = [{keyword = "x", label = "a"}, {keyword = "x", label = "b"}]', "listed twice"),
    ("every_minutes = 0", "watch.every_minutes = 0 must be at least 1"),
    ("page_budget = 51", "watch.page_budget = 51 must be at most 50"),
])
def test_a_bad_entry_stops_start_up_naming_it(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(ConfigError) as e:
        load_config(write(tmp_path, body))
    assert message in str(e.value)
