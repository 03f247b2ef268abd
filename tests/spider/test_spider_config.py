"""The spider's configuration keys: search sources, block codes, and one cookie per site."""

from __future__ import annotations

from pathlib import Path

import pytest

from weibo_mh.config import ConfigError, cookie_from, cookie_origin, load_config


def cfg(tmp_path: Path, spider: str = ""):
    p = tmp_path / "c.toml"
    p.write_text(f"[spider]\n{spider}\n", encoding="utf-8")
    return load_config(p, env={})


def test_defaults_search_s_weibo_com_first_and_read_comments_from_weibo_cn(tmp_path: Path) -> None:
    c = cfg(tmp_path)
    assert c.spider.search_sources == ["s.weibo.com", "weibo.cn"]
    assert c.spider.comments_source == "weibo.cn" and 432 in c.spider.ban_http_codes


@pytest.mark.parametrize("line, word", [
    ('search_sources = ["m.weibo.cn"]', "search_sources"),
    ("search_sources = []", "search_sources"),
    ('comments_source = "m.weibo.com"', "comments_source"),
    ('comments_source = ["m.weibo.cn", "m.weibo.cn"]', "comments_source"),
    ("comments_source = []", "comments_source"),
    ("comments_source = 3", "comments_source"),
    ('ban_http_codes = [418, "x"]', "ban_http_codes"),
])
def test_bad_spider_keys_are_refused_by_name(tmp_path: Path, line: str, word: str) -> None:
    with pytest.raises(ConfigError, match=word):
        cfg(tmp_path, line)


@pytest.mark.parametrize("line, sources", [
    ('comments_source = "m.weibo.cn"', ["m.weibo.cn"]),
    ('comments_source = ["m.weibo.cn", "weibo.cn", "weibo.com"]', ["m.weibo.cn", "weibo.cn", "weibo.com"]),
])
def test_comments_source_is_one_source_or_an_ordered_list(tmp_path: Path, line: str,
                                                          sources: list[str]) -> None:
    from weibo_mh.config import comment_sources

    assert comment_sources(cfg(tmp_path, line).spider.comments_source) == sources


def test_each_site_has_its_own_cookie(tmp_path: Path) -> None:
    com_file = tmp_path / "com.txt"
    com_file.write_text("SUB=com\n")
    c = cfg(tmp_path, f'weibo_com_cookie_file = "{com_file}"')
    env = {"WEIBO_COOKIE": "SUB=cn"}
    assert cookie_from(c, env, site="weibo.cn") == "SUB=cn"
    assert cookie_from(c, env, site="weibo.com") == "SUB=com"
    assert cookie_origin(c, "weibo.com", env) == "spider.weibo_com_cookie_file"
    assert cookie_from(c, {"WEIBO_COM_COOKIE": " SUB=env "}, site="weibo.com") == "SUB=env"
    assert cookie_from(cfg(tmp_path), {}, site="weibo.com") == ""


def test_a_cookie_with_a_line_break_is_refused_without_showing_it(tmp_path: Path) -> None:
    broken = tmp_path / "cookie.txt"
    broken.write_text("SUB=first-half\nSUBP=second-half\n")
    with pytest.raises(ConfigError, match="line break") as e:
        cookie_from(cfg(tmp_path), {"WEIBO_COOKIE_FILE": str(broken)})
    assert "first-half" not in str(e.value)
