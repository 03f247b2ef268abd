"""The pure parsers read saved pages (tests/spider/pages/, written for this project)."""

from datetime import datetime
from pathlib import Path

import pytest
from weibo import parsing

from weibo_mh.db import SHANGHAI

PAGES = Path(__file__).parent / "pages"
CRAWL = datetime(2026, 11, 24, 22, 0, tzinfo=SHANGHAI)
SEARCH_URL = "https://weibo.cn/search/mblog?hideSearchFrame=&keyword=%23%E5%A4%B1%E7%9C%A0%23&page=1"
COMMENT_URL = "https://weibo.cn/comment/Pa1b2C3d4?page=1"
MID = parsing.bid_to_mid("Pa1b2C3d4")


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def test_hot_search_skips_ads_and_blank_words_and_sorts_by_rank() -> None:
    topics = parsing.parse_hotsearch(page("hotsearch.json"), limit=3)
    assert [t.word for t in topics] == ["第一个话题", "第二个话题", "第三个话题"]
    first, second, third = topics
    assert (first.rank, first.heat, first.category) == (1, 1000001, "社会新闻")
    assert (second.heat, second.category, second.label) == (812345, None, "热")   # a badge is no category
    assert (third.heat, third.category) == (0, None)


@pytest.mark.parametrize("text", ["<html>登录</html>", "{}", '{"data": {"realtime": 5}}', ""])
def test_hot_search_that_is_not_the_json_we_asked_for_is_malformed(text: str) -> None:
    with pytest.raises(parsing.MalformedPage):
        parsing.parse_hotsearch(text, limit=20)


def test_search_page_posts_counts_times_and_page_count() -> None:
    result = parsing.parse_search_page(page("search_two_posts.html"), SEARCH_URL, CRAWL)
    assert result.kind == "ok"
    assert result.page_count == 7
    first, second = result.posts
    assert first.mid == parsing.bid_to_mid("Pa1b2C3d4") and first.bid == "Pa1b2C3d4"
    assert first.author_key == "u:3300112233"
    # whitespace collapsed, entities decoded, emoji and [表情] kept, topic link text kept
    assert first.text == "今晚又 失眠了 😭😭 [泪] 有人陪我聊聊吗 <真心> & 谢谢 #失眠#"
    assert (first.likes, first.reposts, first.comments_count) == (128, 7, 31)
    assert first.created_at == datetime(2026, 11, 24, 1, 17, tzinfo=SHANGHAI)
    assert first.source == "iPhone 15"
    assert first.full_text is True
    assert second.author_key == "c:moonlight_walker"
    assert second.full_text is False            # an excerpt with a 全文 link
    assert second.text.endswith("医生说的每一句")
    assert second.created_at == datetime(2026, 11, 3, 9, 5, tzinfo=SHANGHAI)


def test_no_results_is_not_a_login_wall() -> None:
    result = parsing.parse_search_page(page("search_no_results.html"), SEARCH_URL, CRAWL)
    assert (result.kind, result.posts) == ("empty", [])


@pytest.mark.parametrize("parse", [parsing.parse_search_page, parsing.parse_comment_page])
def test_a_page_asking_to_log_in_is_a_login_wall(parse) -> None:
    assert parse(page("login_wall.html"), SEARCH_URL, CRAWL).kind == "login_wall"


@pytest.mark.parametrize("parse", [parsing.parse_search_page, parsing.parse_comment_page])
def test_broken_html_is_malformed(parse) -> None:
    assert parse(page("malformed.html"), SEARCH_URL, CRAWL).kind == "malformed"
    assert parse("", SEARCH_URL, CRAWL).kind == "malformed"


def test_comment_page_repeats_the_post_and_separates_replies() -> None:
    result = parsing.parse_comment_page(page("comments_page1.html"), COMMENT_URL, CRAWL)
    assert (result.kind, result.mid, result.page_count) == ("ok", MID, 4)
    post = result.post
    assert post.mid == MID and post.author_key == "u:3300112233"
    assert post.text == "今晚又失眠了😭 有人陪我聊聊吗，这次是完整的一段话，没有被截断"
    assert (post.reposts, post.comments_count, post.likes) == (8, 32, 130)

    plain, reply, symbols = result.comments
    assert plain.id == "4988776655443322" and plain.mid == MID
    assert plain.author_key == "u:1200000001"
    assert plain.text == "抱抱你，明天会更好的🙏"
    assert plain.reply_to_nick is None
    assert plain.likes == 5
    assert plain.created_at == datetime(2026, 11, 24, 21, 57, tzinfo=SHANGHAI)
    assert plain.source == "HUAWEI P70"

    # the reply prefix is stored apart (hashed later) and stripped; other @mentions are masked
    assert reply.author_key == "c:hug_bear"
    assert reply.reply_to_nick == "晚睡的猫"
    assert reply.text == "我也睡不着，一起数羊吧 [哈哈] 跟 @用户 也说一声"
    assert reply.created_at == CRAWL

    assert symbols.text == "多说一句：&、<、>都要保留"
    assert symbols.likes == 12
    assert symbols.created_at == datetime(2025, 12, 31, 23, 59, 59, tzinfo=SHANGHAI)


def test_comment_page_without_comments_and_a_deleted_post() -> None:
    empty = parsing.parse_comment_page(page("comments_empty.html"), COMMENT_URL, CRAWL)
    assert (empty.kind, empty.comments, empty.page_count) == ("ok", [], 1)
    assert empty.post.text == "一条没人评论的微博"
    assert parsing.parse_comment_page(page("post_gone.html"), COMMENT_URL, CRAWL).kind == "gone"


def test_a_reply_written_as_plain_text_is_recognised() -> None:
    html = ('<div class="c" id="C_11"><a href="/u/5">x</a>:<span class="ctt">回复@小明: 好的 </span>'
            '<span class="cc"><a>赞[2]</a></span><span class="ct">刚刚</span></div>')
    (c,) = parsing.parse_comment_page(html, COMMENT_URL, CRAWL).comments
    assert (c.reply_to_nick, c.text, c.likes) == ("小明", "好的", 2)


def test_a_comment_without_text_comes_back_empty_for_validation_to_drop() -> None:
    html = '<div class="c" id="C_12"><a href="/u/5">x</a><span class="ct">刚刚</span></div>'
    (c,) = parsing.parse_comment_page(html, COMMENT_URL, CRAWL).comments
    assert c.id == "12" and c.text is None


@pytest.mark.parametrize("href, key", [
    ("/u/1234567", "u:1234567"),
    ("https://weibo.cn/u/1234567?f=search_0", "u:1234567"),
    ("https://weibo.cn/night_owl", "c:night_owl"),
    ("/1234567", "u:1234567"),
    ("/comment/Pa1b2C3d4", None),
    ("/n/somebody", None),
    ("", None),
    (None, None),
])
def test_author_keys(href: str | None, key: str | None) -> None:
    assert parsing.author_key_from_href(href) == key


@pytest.mark.parametrize("url, wall", [
    ("https://passport.weibo.cn/signin/login?entry=mweibo&r=https%3A%2F%2Fweibo.cn%2F", True),
    ("https://login.sina.com.cn/sso/login.php?url=x", True),
    ("http://127.0.0.1:8765/login?r=%2Fsearch", True),
    ("https://weibo.cn/search/mblog?keyword=%23login%23", False),
    ("https://weibo.cn/comment/Pa1b2C3d4?page=2", False),
])
def test_login_urls(url: str, wall: bool) -> None:
    assert parsing.is_login_url(url) is wall


def test_text_normalisation_keeps_emoji_and_collapses_every_kind_of_space() -> None:
    assert parsing.normalise_text("  a\u3000\u00a0b\n\tc\u200b 😭 ") == "a b c 😭"
