"""Parsers against pages in the real 2025 shapes (see ../shared/WEIBO_SHAPES.md); every page
in tests/spider/pages was written for this project."""

from datetime import datetime
from pathlib import Path

import pytest
from weibo import parsing

from weibo_mh.db import SHANGHAI

PAGES = Path(__file__).parent / "pages"
CRAWL = datetime(2026, 11, 24, 22, 0, tzinfo=SHANGHAI)
COMMENT_URL = "https://weibo.cn/comment/Pa1b2C3d4?page=1"
MID = "5123878089068806"


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def test_bid_and_mid_convert_both_ways() -> None:
    assert parsing.bid_to_mid("z0JH2lOMb") == "3501756485200075"
    assert parsing.mid_to_bid("3501756485200075") == "z0JH2lOMb"
    assert parsing.bid_to_mid("Pa1b2C3d4") == MID and parsing.mid_to_bid(MID) == "Pa1b2C3d4"
    for mid in ("5100000000000001", "4900000000000000", "1000000000000007"):   # zero-padded groups
        assert parsing.bid_to_mid(parsing.mid_to_bid(mid)) == mid
    assert parsing.canonical_mid("Pa1b2C3d4") == MID and parsing.canonical_mid(MID) == MID
    assert parsing.canonical_mid("not a bid!") is None
    with pytest.raises(ValueError):
        parsing.mid_to_bid("abc")


@pytest.mark.parametrize("raw, expected", [
    ("2020-06-05 11:12:14\u00a0网页", ("2020-06-05 11:12:14", "网页", None)),
    ("2026-11-21 08:00:00\u00a0网页来自上海", ("2026-11-21 08:00:00", "网页", "上海")),
    ("01月10日 12:43\u00a0来自来自河南", ("01月10日 12:43", None, "河南")),
    ("01月10日 12:43\u00a0来自来自河南  ", ("01月10日 12:43", None, "河南")),
    ("今天 08:30\u00a0来自iPhone客户端", ("今天 08:30", "iPhone客户端", None)),
    ("今天 21:05\u00a0来自HUAWEI Mate来自广东  ", ("今天 21:05", "HUAWEI Mate", "广东")),
    ("5分钟前 来自iPhone客户端来自广东", ("5分钟前", "iPhone客户端", "广东")),
    ("刚刚 来自Android IP属地：四川", ("刚刚", "Android", "四川")),
    ("刚刚", ("刚刚", None, None)),
    ("", ("", None, None)),
])
def test_every_time_client_and_ip_location_variant(raw: str, expected: tuple) -> None:
    assert parsing.split_ct(raw) == expected


def test_comment_page_in_the_real_shape() -> None:
    result = parsing.parse_comment_page(page("comments_real_shape.html"), COMMENT_URL, CRAWL)
    assert (result.kind, result.mid, result.page_count, result.notice) == ("ok", MID, 100000, False)
    post = result.post
    # a retweet: the retweeter's own words and counts, never the original's
    assert post.is_retweet and post.text == "我也是这样熬过来的，[心]一起加油"
    assert (post.reposts, post.comments_count, post.likes) == (3, 25, 17)
    assert (post.source, post.ip_location) == ("iPhone客户端", "北京")
    assert post.created_at == datetime(2026, 11, 20, 12, 0, tzinfo=SHANGHAI)

    by_id = {c.id: c for c in result.comments}
    assert list(by_id) == [f"500000000000000{i}" for i in range(1, 8)]   # the repeated hot one once
    hot1, hot2, ip_only, both, early, picture, reply = by_id.values()
    assert hot1.is_hot and hot2.is_hot and not ip_only.is_hot
    assert hot1.created_at == datetime(2026, 11, 20, 12, 30, 5, tzinfo=SHANGHAI)
    assert (hot1.source, hot1.ip_location, hot1.likes) == ("网页", None, 88)
    assert (hot2.source, hot2.ip_location) == ("网页", "上海")
    assert (ip_only.source, ip_only.ip_location) == (None, "河南")
    assert ip_only.created_at == datetime(2026, 11, 24, 12, 43, tzinfo=SHANGHAI)
    assert (both.source, both.ip_location) == ("HUAWEI Mate", "广东")
    # the ctt closed at the emoji: the text is still whole, the mention masked
    assert early.text == "前半句[泪]后半句也要在@用户才完整"
    assert early.created_at == datetime(2026, 11, 24, 21, 55, tzinfo=SHANGHAI)
    assert picture.image_only and picture.text is None
    assert (reply.reply_to_nick, reply.text, reply.ip_location) == ("读者甲", "同意你说的", "海外")
    assert reply.created_at == datetime(2026, 1, 10, 12, 43, tzinfo=SHANGHAI)


def test_page_51_says_there_are_no_comments() -> None:
    result = parsing.parse_comment_page(page("comments_page51.html"), COMMENT_URL, CRAWL)
    assert (result.kind, result.comments, result.notice) == ("ok", [], True)


def test_a_retweet_on_a_weibo_cn_search_page_keeps_its_own_words_and_counts() -> None:
    (post,) = parsing.parse_search_page(page("search_retweet.html"), "https://weibo.cn/search/mblog", CRAWL).posts
    assert post.is_retweet and post.bid == "Rt1x2y3z4" and post.mid == parsing.bid_to_mid("Rt1x2y3z4")
    assert post.text == "说得对，我也要早点睡"
    assert (post.likes, post.reposts, post.comments_count) == (5, 1, 2)
    assert post.author_key == "u:3300112233"


def test_s_weibo_com_cards() -> None:
    url = "https://s.weibo.com/weibo?q=%23%E5%A4%B1%E7%9C%A0%23&page=1"
    result = parsing.parse_sweibo_page(page("sweibo_two_cards.html"), url, CRAWL)
    assert (result.kind, result.page_count) == ("ok", 3)
    assert result.next_url == "https://s.weibo.com/weibo?q=%23%E5%A4%B1%E7%9C%A0%23&page=2"
    long, retweet = result.posts
    assert (long.mid, long.bid, long.author_key) == (MID, "Pa1b2C3d4", "u:3300112233")
    assert long.text == "第一次去看心理医生，原来说出来#失眠#并没有那么难[心] 后面的话也都在 @用户"
    assert long.full_text and not long.is_retweet
    assert (long.reposts, long.comments_count, long.likes) == (12, 0, 12000)   # 评论 with no number: 0
    assert long.created_at == datetime(2026, 11, 20, 12, 0, tzinfo=SHANGHAI) and long.source == "iPhone 15"
    assert retweet.is_retweet and retweet.text == "转发者自己的话"
    assert (retweet.reposts, retweet.comments_count, retweet.likes) == (0, 3, 7)   # not 4321 / 876
    assert retweet.author_key == "c:moonlight_walker"
    assert retweet.created_at == datetime(2026, 11, 24, 21, 55, tzinfo=SHANGHAI)


def test_s_weibo_com_no_results_and_login() -> None:
    assert parsing.parse_sweibo_page(page("sweibo_no_result.html"), "https://s.weibo.com/weibo", CRAWL).kind == "empty"
    assert parsing.parse_sweibo_page(page("login_wall.html"), "https://s.weibo.com/weibo", CRAWL).kind == "login_wall"


def test_weibo_com_comment_json_with_replies_and_ip_location() -> None:
    result = parsing.parse_build_comments(page("build_comments.json"), MID)
    assert (result.kind, result.max_id, result.total) == ("ok", 139000123, 57)
    first, inline, picture = result.comments
    assert (first.id, first.root_id, first.reply_to_id, first.replies) == ("5001000000000001", None, None, 2)
    assert first.text == "今晚也睡不着，和@用户 聊了很久" and first.ip_location == "河南"
    assert first.author_key == "u:1200000001" and first.likes == 12
    assert first.created_at == datetime(2026, 11, 24, 21, 40, tzinfo=SHANGHAI)
    assert (inline.root_id, inline.reply_to_id, inline.ip_location) == ("5001000000000001",) * 2 + ("上海",)
    assert picture.image_only and picture.text is None and picture.ip_location is None

    replies = parsing.parse_build_comments(page("build_replies.json"), MID)
    assert replies.max_id == 0
    a, b = replies.comments
    assert (a.root_id, a.reply_to_id) == ("5001000000000001", "5001000000000001")
    assert (b.root_id, b.reply_to_id, b.reply_to_nick, b.text) == \
        ("5001000000000001", "5001000000000002", "读者乙", "谢谢你们")


def test_ok_minus_100_is_a_login_wall() -> None:
    assert parsing.is_login_json(page("login_ok_-100.json"))
    assert not parsing.is_login_json(page("build_comments.json"))
    assert parsing.parse_build_comments(page("login_ok_-100.json"), MID).kind == "login_wall"


def test_hot_search_fields_word_scheme_badges_and_the_pinned_entry() -> None:
    topics = parsing.parse_hotsearch(page("hotsearch_real.json"), limit=10)
    gov, topic, plain, unbadged = topics
    assert (gov.word, gov.pinned, gov.rank, gov.search_word) == ("一条置顶的政务话题", True, 0, "#一条置顶的政务话题#")
    assert (topic.rank, topic.label, topic.category, topic.search_word) == (1, "爆", "社会", "#带话题的热搜#")
    assert (plain.rank, plain.label, plain.category, plain.search_word) == (2, "新", None, "不是话题的热搜")
    assert (unbadged.rank, unbadged.heat, unbadged.label) == (4, 650000, None)


@pytest.mark.parametrize("url, block", [
    ("https://security.weibo.com/captcha/geetest?c=1", True),
    ("http://127.0.0.1:8765/verify/captcha?r=x", True),
    ("https://passport.weibo.com/visitor/visitor", False),
    ("https://weibo.cn/comment/Pa1b2C3d4?page=2", False),
])
def test_captcha_and_verification_redirects_are_blocks(url: str, block: bool) -> None:
    assert parsing.is_block_url(url) is block
