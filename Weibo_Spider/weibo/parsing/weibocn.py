"""weibo.cn pages: keyword search (``/search/mblog``) and comment pages (``/comment/<bid>``).

Shapes from a real 2025 capture (dataabc/weiboSpider ``tests/testdata``, its
``comment_parser.py``) and nghuyong/WeiboSpider commit 80ebe77:

- a post is ``div.c#M_<bid>``; on a comment page it is ``div#M_`` and its own counts
  sit after an empty ``div.c`` in a bare div (转发[N], ``span.pms`` 评论[N], 赞[N]);
- a retweet says ``转发了 @x 的微博:`` in ``span.cmt``, shows the original's text and the
  ORIGINAL's counts (原文转发[N], 原文评论[N]) first, then ``转发理由:`` and the retweeter's
  own words; only those and the own counts are kept;
- ``span.ctt`` can close at the first emoji image: the text goes on in its siblings, so
  the text is read up to the first count, link to 举报 or ``span.ct``;
- a comment is ``div.c#C_<id>``, hot ones first with ``span.kt`` [热门]; the same id can
  come again further down;
- the page count is ``input[name=mp]`` (it can read 100000) or ``1/N页``; past page 50
  the page says 还没有人针对这条微博发表评论!
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlsplit

from lxml import etree
from parsel import Selector

from weibo.parsing.common import (
    MENTION,
    Comment,
    CommentPage,
    Post,
    SearchPage,
    author_key_from_href,
    is_login_url,
    normalise_text,
    raw_text,
    selector,
)
from weibo.parsing.ids import canonical_mid
from weibo.parsing.timesource import split_ct
from weibo.timeparse import parse_weibo_time

#: weibo.cn shows at most this many comment pages; later pages are empty or repeat.
COMMENT_PAGE_CAP = 50

# own counts only: 原文转发[N] / 原文评论[N] are the original's
_COUNT = {name: re.compile(rf"(?<!原文){name}\s*\[\s*(\d+)\s*\]") for name in ("转发", "评论", "赞")}
_ANY_COUNT = re.compile(r"^(原文)?(转发|评论|赞)\s*\[\s*\d+\s*\]$")
_STOP_LINKS = ("举报", "收藏", "全文", "操作", "删除")
_REPLY = re.compile(r"^回复\s*@([^:：\s]*)\s*[:：]\s*")
_PAGES = re.compile(r"(\d+)\s*/\s*(\d+)\s*页")
_NO_RESULTS = ("未找到", "没有找到", "暂无相关")
_NO_COMMENTS = ("还没有人针对这条微博发表评论",)
_GONE = ("微博不存在", "已被作者删除", "已被删除", "暂时无法查看")


def count(text: str, name: str) -> int:
    m = _COUNT[name].search(text)
    return int(m.group(1)) if m else 0


def _cls(e: etree._Element) -> str:
    return e.get("class") or "" if isinstance(e.tag, str) else ""


def _is_stop(e: etree._Element) -> bool:
    """Where a text ends: counts, the time, a 转发理由/原文 marker, a 举报/收藏/全文 link, a div."""
    if not isinstance(e.tag, str):
        return False
    if e.tag == "div" or _cls(e) in ("cc", "ct", "cmt", "kt", "pms"):
        return True
    label = normalise_text("".join(e.itertext()))
    if e.tag == "a" and (label in _STOP_LINKS or _ANY_COUNT.match(label)):
        return True
    return "/spam/" in (e.get("href") or "")


def text_from(start: etree._Element, include_start: bool = True,
              pictures: list[bool] | None = None) -> str:
    """The text of ``start`` (``span.ctt``, or after a ``转发理由:`` marker) and of the siblings
    that continue it when the span closed early, up to the first stop."""
    parts = [raw_text(start, pictures)] if include_start else []
    if start.tail:
        parts.append(start.tail)
    for sib in start.itersiblings():
        if _is_stop(sib):
            break
        if isinstance(sib.tag, str):
            parts.append(raw_text(sib, pictures))
        if sib.tail:
            parts.append(sib.tail)
    return normalise_text("".join(parts))


def page_count(sel: Selector, text: str) -> int:
    value = sel.xpath('//input[@name="mp"]/@value').get()
    if value and value.strip().isdigit():
        return max(1, int(value.strip()))
    m = _PAGES.search(text)
    return max(1, int(m.group(2))) if m else 1


def looks_like_login(sel: Selector, url: str, text: str) -> bool:
    if is_login_url(url):
        return True
    has_password = bool(sel.xpath('//input[@type="password"]'))
    return has_password or "登录" in text


def _time(block: Selector, crawl_time: datetime) -> tuple[datetime | None, str, str | None, str | None]:
    raw = " ".join(block.xpath('.//span[@class="ct"]//text()').getall())
    when, client, ip = split_ct(raw)
    return parse_weibo_time(when, crawl_time), when, client, ip


def _has_stop_link(block: Selector, label: str) -> bool:
    return label in [normalise_text(t) for t in block.xpath(".//a/text()").getall()]


# --------------------------------------------------------------------------- search pages


def parse_search_page(html: str, url: str, crawl_time: datetime) -> SearchPage:
    """Posts (``div.c`` with an id starting ``M_``) and the page count of a weibo.cn search page."""
    sel = selector(html)
    blocks = sel.xpath('//div[@class="c"][starts-with(@id, "M_")]')
    text = normalise_text(" ".join(sel.xpath("//body//text()").getall()))
    if not blocks:
        if any(s in text for s in _NO_RESULTS):
            return SearchPage(kind="empty")
        return SearchPage(kind="login_wall" if looks_like_login(sel, url, text) else "malformed")
    posts = [parse_post_block(b, crawl_time) for b in blocks]
    return SearchPage(kind="ok", posts=posts, page_count=page_count(sel, text))


def parse_post_block(block: Selector, crawl_time: datetime, mid: str | None = None) -> Post:
    """One ``div.c#M_…``: a post, or a retweet (own words and own counts)."""
    bid = block.attrib.get("id", "")[2:] or None
    mid = mid or canonical_mid(bid)
    author = block.xpath('.//a[@class="nk"]/@href').get() or block.xpath(".//div[1]/a[1]/@href").get()
    reason = [e for e in block.xpath('.//span[@class="cmt"]')
              if normalise_text(e.xpath("string()").get()).startswith("转发理由")]
    retweet = bool(reason) or any("转发了" in normalise_text(e.xpath("string()").get())
                                  for e in block.xpath('.//span[@class="cmt"]'))
    text = None
    full = True
    if reason:
        text = text_from(reason[0].root, include_start=False).lstrip(":：").strip()
        own = reason[0].xpath("..")
        body = normalise_text(" ".join(own.xpath(".//text()").getall()))
    else:
        ctt = block.xpath('.//span[@class="ctt"]')
        if ctt:
            text = text_from(ctt[0].root).lstrip(":：").strip()
            if _has_stop_link(block, "全文"):
                full = False
                text = re.sub(r"\s*(?:\.\.\.|…)?\s*(?:全文)?$", "", text)
        body = normalise_text(" ".join(block.xpath(".//text()").getall()))
    created, raw, client, ip = _time(block, crawl_time)
    return Post(mid=mid, author_key=author_key_from_href(author), text=text or None, full_text=full,
                created_at=created, created_raw=raw, reposts=count(body, "转发"),
                comments_count=count(body, "评论"), likes=count(body, "赞"), source=client,
                ip_location=ip, is_retweet=retweet, bid=bid)


# --------------------------------------------------------------------------- comment pages


def post_id_from_comment_url(url: str) -> str:
    segs = [s for s in urlsplit(url).path.split("/") if s]
    return segs[1] if len(segs) >= 2 and segs[0] == "comment" else ""


def parse_comment_page(html: str, url: str, crawl_time: datetime, mid: str | None = None) -> CommentPage:
    """Comments (hot ones once, flagged), the post on page 1, the page count, the empty notice.

    ``mid``: the post's numeric id when the caller knows it (else taken from the URL's bid).
    """
    sel = selector(html)
    mid = mid or canonical_mid(post_id_from_comment_url(url)) or ""
    post_block = sel.xpath('//div[starts-with(@id, "M_")]')
    blocks = sel.xpath('//div[@class="c"][starts-with(@id, "C_")]')
    text = normalise_text(" ".join(sel.xpath("//body//text()").getall()))
    notice = any(s in text for s in _NO_COMMENTS)
    if not post_block and not blocks:
        if notice:
            return CommentPage(kind="ok", mid=mid, notice=True)
        if any(s in text for s in _GONE):
            return CommentPage(kind="gone", mid=mid)
        return CommentPage(kind="login_wall" if looks_like_login(sel, url, text) else "malformed",
                           mid=mid)
    post = None
    if post_block:
        post = parse_post_block(post_block[0], crawl_time, mid=mid or None)
        # on the comment page the post's own counts sit in the blocks after it
        around = normalise_text(" ".join(sel.xpath(
            '//body/div[not(starts-with(@id, "C_"))][not(starts-with(@id, "M_"))]'
            '[not(@id="pagelist")]//text()').getall()))
        post.reposts = count(around, "转发") or post.reposts
        post.comments_count = count(around, "评论") or post.comments_count
        post.likes = count(around, "赞") or post.likes
    comments: dict[str, Comment] = {}
    anonymous: list[Comment] = []
    for b in blocks:
        c = parse_comment_block(b, mid, crawl_time)
        if c.id is None:
            anonymous.append(c)
        elif c.id in comments:  # a hot comment listed again further down: store it once
            comments[c.id].is_hot = comments[c.id].is_hot or c.is_hot
        else:
            comments[c.id] = c
    return CommentPage(kind="ok", mid=mid, post=post, comments=list(comments.values()) + anonymous,
                       page_count=page_count(sel, text), notice=notice and not blocks)


def parse_comment_block(block: Selector, mid: str, crawl_time: datetime) -> Comment:
    cid = block.attrib.get("id", "")[2:] or None
    hot = any("热门" in normalise_text(t) for t in block.xpath('./span[@class="kt"]//text()').getall())
    author = block.xpath("./a[1]/@href").get()
    ctt = block.xpath('.//span[@class="ctt"]')
    text = nick = None
    pictures: list[bool] = []
    if ctt:
        el = ctt[0]
        lead = normalise_text(el.root.text)
        first_link = el.xpath("./a[1]")
        if lead == "回复" and first_link:
            label = normalise_text(first_link[0].xpath("string()").get())
            nick = label[1:] if label.startswith("@") else None
        text = text_from(el.root, pictures=pictures)
        m = _REPLY.match(text)
        if m:
            if nick is None and m.group(1) and m.group(1) != MENTION[1:]:
                nick = m.group(1)
            text = text[m.end():]
        text = text.strip()
    likes_text = normalise_text(" ".join(block.xpath('.//span[@class="cc"]//text()').getall()))
    created, raw, client, ip = _time(block, crawl_time)
    return Comment(id=cid, mid=mid, author_key=author_key_from_href(author), text=text or None,
                   reply_to_nick=nick or None, likes=count(likes_text, "赞"), created_at=created,
                   created_raw=raw, source=client, ip_location=ip, is_hot=hot,
                   image_only=bool(pictures) and not text)
