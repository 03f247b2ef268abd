"""Every layout Weibo has served, read by the pure parsers: the 2018 s.weibo.com card (``p.from``),
icon-font glyphs (private-use characters), "[组图共N张]" picture links and the m.weibo.cn
hotflow JSON. Every page in tests/spider/pages was written for this project."""

from datetime import datetime
from pathlib import Path

import pytest
from weibo import parsing

from weibo_mh.db import SHANGHAI

PAGES = Path(__file__).parent / "pages"
CRAWL = datetime(2026, 11, 24, 22, 0, tzinfo=SHANGHAI)
MID = "5123878089068806"


def page(name: str) -> str:
    return (PAGES / name).read_text(encoding="utf-8")


def test_the_2018_s_weibo_com_card_keeps_link_time_and_client_in_p_from() -> None:
    result = parsing.parse_sweibo_page(page("sweibo_2018_cards.html"), "https://s.weibo.com/weibo?q=x",
                                       CRAWL)
    assert result.kind == "ok" and result.page_count == 2
    first, second = result.posts
    assert (first.mid, first.bid, first.author_key) == ("4290012345678901", "GkPq1aBcD", "u:2233445566")
    assert first.created_at == datetime(2026, 11, 20, 23, 41, tzinfo=SHANGHAI)
    assert first.source == "iPhone客户端"
    assert (first.reposts, first.comments_count, first.likes) == (12, 3, 25)
    assert (second.bid, second.author_key, second.source) == ("GkPq1aBcE", "c:night_owl_2018", "Android")
    assert second.created_at == datetime(2026, 11, 24, 1, 58, tzinfo=SHANGHAI)
    assert (second.reposts, second.comments_count, second.likes) == (0, 0, 0)


def test_icon_glyphs_are_removed_from_texts_and_counted() -> None:
    first, second = parsing.parse_sweibo_page(page("sweibo_2018_cards.html"), "https://s.weibo.com/x",
                                              CRAWL).posts
    assert first.text == "在操场走了十圈还是睡不着，#失眠# 明天再试试早起" and first.private_use == 1
    assert second.text == "北京·朝阳 又是凌晨两点，只想有人说说话" and second.private_use == 1
    assert parsing.strip_private_use("\ue627 \uf8ff路上\ue000") == ("路上", 3)
    assert parsing.strip_private_use("没有图标") == ("没有图标", 0)
    assert parsing.strip_private_use(None) == (None, 0)
    # the edges of the range, and what lies just outside it, which is kept
    assert parsing.strip_private_use("\u9fff\uf900\udfff"[:2]) == ("\u9fff\uf900", 0)


def test_picture_links_leave_no_brackets_behind() -> None:
    result = parsing.parse_search_page(page("search_picture_links.html"),
                                       "https://weibo.cn/search/mblog?keyword=x", CRAWL)
    first, second = result.posts
    assert first.text == "今天拍了好多晚霞，心情终于好一点了"
    assert second.text == "一个人的周末也可以很好[微笑]"
    assert (first.likes, first.reposts, first.comments_count, first.source) == (8, 1, 2, "iPhone客户端")
    for p in result.posts:
        assert "[]" not in (p.text or "") and "\ufdd0" not in (p.text or "")


def test_brackets_the_user_typed_are_kept() -> None:
    assert parsing.normalise_text("我的心情 [] 空空的") == "我的心情 [] 空空的"


def test_hotflow_first_page_comments_replies_places_and_cursor() -> None:
    result = parsing.parse_hotflow(page("hotflow_page1.json"), MID)
    assert result.kind == "ok" and not result.notice
    assert (result.max_id, result.max_id_type, result.total) == (139250354826359, 1, 5)
    by_id = {c.id: c for c in result.comments}
    assert list(by_id) == ["5123900000000101", "5123900000000102", "5123900000000103",
                           "5123900000000104"]
    first = by_id["5123900000000101"]
    assert first.text == "凌晨四点还醒着[泪] 谁来陪我聊聊"
    assert (first.author_key, first.likes, first.ip_location) == ("u:7001001", 12, "河南")
    assert first.created_at == datetime(2026, 11, 21, 20, 15, tzinfo=SHANGHAI)
    assert first.root_id is None and first.replies == 1
    reply = by_id["5123900000000102"]      # nested under the first, "回复@nick:" stripped
    assert reply.text == "你也是吗，一起早点睡" and reply.reply_to_nick == "第一位读者"
    assert (reply.root_id, reply.reply_to_id, reply.ip_location) == ("5123900000000101",) * 2 + ("广东",)
    assert by_id["5123900000000103"].text == "跟@用户 说过以后好多了"     # mention masked
    assert by_id["5123900000000103"].replies == 0                       # "comments": false
    assert by_id["5123900000000104"].image_only and by_id["5123900000000104"].text is None


def test_hotflow_last_page_ends_paging_and_drops_icon_glyphs() -> None:
    result = parsing.parse_hotflow(page("hotflow_last.json"), MID)
    assert result.kind == "ok" and result.max_id == 0
    (c,) = result.comments
    assert c.text == "今天终于睡了六个小时" and c.private_use == 1 and c.ip_location == "海外"


@pytest.mark.parametrize("name", ["hotflow_empty.json", "hotflow_no_comments.json"])
def test_hotflow_no_comments_is_not_a_login_wall(name: str) -> None:
    result = parsing.parse_hotflow(page(name), MID)
    assert (result.kind, result.comments, result.notice, result.max_id) == ("ok", [], True, 0)


def test_hotflow_for_a_post_that_is_gone_is_not_a_login_wall() -> None:
    assert parsing.parse_hotflow('{"ok": 0, "msg": "该微博不存在"}', MID).kind == "gone"


@pytest.mark.parametrize("body", [page("hotflow_login.json"), '{"ok": 0}', '{"ok": 0, "msg": "请先登录"}',
                                  '{"ok": -100, "url": "https://passport.weibo.cn/signin/login"}'])
def test_hotflow_login_wall(body: str) -> None:
    assert parsing.parse_hotflow(body, MID).kind == "login_wall"


@pytest.mark.parametrize("body", ["<html>busy</html>", '{"ok": 1, "data": {"data": 5}}', "[1, 2]"])
def test_hotflow_that_is_not_the_json_we_asked_for_is_malformed(body: str) -> None:
    assert parsing.parse_hotflow(body, MID).kind == "malformed"
