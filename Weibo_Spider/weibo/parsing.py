"""Pure parsing of weibo.cn pages and the hot-search JSON.

Every function takes the page text, its URL and the crawl time and returns
plain dataclasses, so tests feed saved pages without a network or Scrapy.
The parser is permissive: a post without text still comes back (with
``text=None``) and the validation pipeline drops it with a counted reason.
A page is classified before it is read, so that a login wall is never taken
for "no results".

Privacy: nicknames are read only to build reply keys (``n:<nick>``) that are
hashed later; ``@mentions`` inside texts become ``@用户``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import unquote, urlsplit

from lxml import etree
from parsel import Selector

from weibo.timeparse import parse_weibo_time, split_time_source

MENTION = "@用户"
LOGIN_HOSTS = ("passport.weibo.cn", "passport.weibo.com", "login.sina.com.cn", "login.weibo.cn")
LOGIN_PATHS = ("/login", "/signin", "/sso/login", "/passport")
#: First path segments of weibo.cn that are pages, not custom user names.
RESERVED_PATHS = {"comment", "search", "attitude", "repost", "n", "u", "sinaurl", "spam", "fav",
                  "mblog", "pages", "k", "login", "signin", "msg", "at", "account", "", "home"}

_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
_COUNT = {name: re.compile(rf"{name}\s*\[\s*(\d+)\s*\]") for name in ("转发", "评论", "赞")}
_REPLY = re.compile(r"^回复\s*@([^:：\s]*)\s*[:：]\s*")
_PAGES = re.compile(r"(\d+)\s*/\s*(\d+)\s*页")
# weibo.cn pages open with an XML declaration; libxml2's HTML parser then drops
# entities such as &amp; and &lt;, so the declaration is removed before parsing.
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_NO_RESULTS = ("未找到", "没有找到", "暂无相关")
_NO_COMMENTS = ("还没有人针对这条微博发表评论",)
_GONE = ("微博不存在", "已被作者删除", "已被删除", "暂时无法查看")


class MalformedPage(ValueError):
    """The response is not the page or JSON we asked for (and not a login wall)."""


@dataclass
class Topic:
    word: str
    rank: int
    heat: int
    category: str | None = None


@dataclass
class Post:
    mid: str | None
    author_key: str | None
    text: str | None
    full_text: bool = True
    created_at: datetime | None = None
    created_raw: str = ""
    reposts: int = 0
    comments_count: int = 0
    likes: int = 0
    source: str | None = None


@dataclass
class Comment:
    id: str | None
    mid: str
    author_key: str | None
    text: str | None
    reply_to_nick: str | None = None
    likes: int = 0
    created_at: datetime | None = None
    created_raw: str = ""
    source: str | None = None


@dataclass
class SearchPage:
    """kind: ok, empty (no results), login_wall or malformed."""

    kind: str
    posts: list[Post] = field(default_factory=list)
    page_count: int = 1


@dataclass
class CommentPage:
    """kind: ok, gone (post deleted), login_wall or malformed. ``post`` is set on page 1."""

    kind: str
    mid: str = ""
    post: Post | None = None
    comments: list[Comment] = field(default_factory=list)
    page_count: int = 1


# --------------------------------------------------------------------------- small helpers


def _selector(html: str) -> Selector:
    return Selector(text=_XML_DECL.sub("", html or "", count=1) or "<html></html>")


def normalise_text(text: str | None) -> str:
    """Collapse all whitespace (nbsp, ideographic space, zero-width) to one space; keep emoji."""
    return _WS.sub(" ", text or "").strip()


def is_login_url(url: str | None) -> bool:
    """Does this URL (a redirect target or a final URL) point at a login page?"""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if any(host == h or host.endswith("." + h) for h in LOGIN_HOSTS):
        return True
    path = parts.path.lower()
    return any(path == p or path.startswith(p + "/") or path.startswith(p + ".") or
               path.startswith(p + "?") for p in LOGIN_PATHS)


def author_key_from_href(href: str | None) -> str | None:
    """'/u/1234' -> 'u:1234'; '/someone' -> 'c:someone'; anything else -> None."""
    if not href:
        return None
    path = urlsplit(href).path
    segs = [unquote(s) for s in path.split("/") if s]
    if len(segs) >= 2 and segs[0] == "u" and segs[1].isdigit():
        return f"u:{segs[1]}"
    if len(segs) == 1 and segs[0].lower() not in RESERVED_PATHS:
        name = segs[0]
        return f"u:{name}" if name.isdigit() else f"c:{name}"
    return None


def _count(text: str, name: str) -> int:
    m = _COUNT[name].search(text)
    return int(m.group(1)) if m else 0


def _text_of(el: etree._Element) -> str:
    """Visible text of an element: emoticon images by their alt, @mentions masked."""
    parts: list[str] = []

    def walk(e: etree._Element) -> None:
        tag = e.tag if isinstance(e.tag, str) else ""
        if tag == "img":
            parts.append(e.get("alt") or "")
        elif tag == "a" and normalise_text("".join(e.itertext())).startswith("@"):
            parts.append(MENTION)
        elif tag == "br":
            parts.append(" ")
        elif tag in ("script", "style"):
            pass
        else:
            if tag and e.text:
                parts.append(e.text)
            for child in e:
                walk(child)
                if child.tail:
                    parts.append(child.tail)

    walk(el)
    return normalise_text("".join(parts))


def _page_count(sel: Selector, text: str) -> int:
    value = sel.xpath('//input[@name="mp"]/@value').get()
    if value and value.strip().isdigit():
        return max(1, int(value.strip()))
    m = _PAGES.search(text)
    return max(1, int(m.group(2))) if m else 1


def _looks_like_login(sel: Selector, url: str, text: str) -> bool:
    if is_login_url(url):
        return True
    has_password = bool(sel.xpath('//input[@type="password"]'))
    return has_password or "登录" in text


def _time_and_source(el: Selector, crawl_time: datetime) -> tuple[datetime | None, str, str | None]:
    raw = normalise_text(" ".join(el.xpath('.//span[@class="ct"]//text()').getall()))
    when, source = split_time_source(raw)
    return parse_weibo_time(when, crawl_time), when, source


# --------------------------------------------------------------------------- hot search


def parse_hotsearch(text: str, limit: int) -> list[Topic]:
    """Top ``limit`` non-ad topics of the hot-search JSON (``data.realtime[]``), by rank."""
    try:
        data = json.loads(text)
        entries = data["data"]["realtime"]
    except (ValueError, KeyError, TypeError):
        raise MalformedPage("hot-search answer is not JSON with data.realtime") from None
    if not isinstance(entries, list):
        raise MalformedPage("hot-search data.realtime is not a list")
    topics: list[Topic] = []
    for pos, e in enumerate(entries):
        if not isinstance(e, dict) or e.get("is_ad") or e.get("ad_type") or e.get("promotion"):
            continue
        raw = e.get("word") or e.get("note") or ""
        # a word that is not text (a number, a list) is passed on as it is, for the pipeline
        # to drop with a counted reason, never stored as its Python repr
        word = normalise_text(raw) if isinstance(raw, str) else raw
        if not word:
            continue
        try:
            rank = int(e.get("rank", pos))
        except (TypeError, ValueError, OverflowError):
            rank = pos
        try:
            heat = int(e.get("num") or e.get("raw_hot") or 0)
        except (TypeError, ValueError, OverflowError):
            heat = 0
        category = e.get("category") or e.get("label_name") or None
        topics.append(Topic(word=word, rank=rank, heat=heat,
                            category=normalise_text(str(category))[:64] if category else None))
    topics.sort(key=lambda t: t.rank)
    return topics[:limit]


# --------------------------------------------------------------------------- search pages


def parse_search_page(html: str, url: str, crawl_time: datetime) -> SearchPage:
    """Posts (``div.c`` with an id starting ``M_``) and the page count of a search page."""
    sel = _selector(html)
    blocks = sel.xpath('//div[@class="c"][starts-with(@id, "M_")]')
    text = normalise_text(" ".join(sel.xpath("//body//text()").getall()))
    if not blocks:
        if any(s in text for s in _NO_RESULTS):
            return SearchPage(kind="empty")
        return SearchPage(kind="login_wall" if _looks_like_login(sel, url, text) else "malformed")
    posts = [_parse_post_block(b, crawl_time) for b in blocks]
    return SearchPage(kind="ok", posts=posts, page_count=_page_count(sel, text))


def _parse_post_block(block: Selector, crawl_time: datetime, mid: str | None = None) -> Post:
    mid = mid or (block.attrib.get("id", "")[2:] or None)
    author = block.xpath('.//a[@class="nk"]/@href').get() or block.xpath(".//div[1]/a[1]/@href").get()
    ctt = block.xpath('.//span[@class="ctt"]')
    text = None
    full = True
    if ctt:
        text = _text_of(ctt[0].root).lstrip(":：").strip()
        links = [normalise_text(t) for t in block.xpath(".//a/text()").getall()]
        if "全文" in links:
            full = False
            text = re.sub(r"\s*全文$", "", text)
    body = normalise_text(" ".join(block.xpath(".//text()").getall()))
    created, raw, source = _time_and_source(block, crawl_time)
    return Post(mid=mid, author_key=author_key_from_href(author), text=text or None, full_text=full,
                created_at=created, created_raw=raw, reposts=_count(body, "转发"),
                comments_count=_count(body, "评论"), likes=_count(body, "赞"), source=source)


# --------------------------------------------------------------------------- comment pages


def mid_from_comment_url(url: str) -> str:
    segs = [s for s in urlsplit(url).path.split("/") if s]
    return segs[1] if len(segs) >= 2 and segs[0] == "comment" else ""


def parse_comment_page(html: str, url: str, crawl_time: datetime) -> CommentPage:
    """Comments (``div.c`` with an id starting ``C_``), the repeated post on page 1, the page count."""
    sel = _selector(html)
    mid = mid_from_comment_url(url)
    post_block = sel.xpath('//div[starts-with(@id, "M_")]')
    blocks = sel.xpath('//div[@class="c"][starts-with(@id, "C_")]')
    text = normalise_text(" ".join(sel.xpath("//body//text()").getall()))
    if not post_block and not blocks:
        if any(s in text for s in _NO_COMMENTS):
            return CommentPage(kind="ok", mid=mid)
        if any(s in text for s in _GONE):
            return CommentPage(kind="gone", mid=mid)
        return CommentPage(kind="login_wall" if _looks_like_login(sel, url, text) else "malformed",
                           mid=mid)
    post = None
    if post_block:
        post = _parse_post_block(post_block[0], crawl_time, mid=mid or None)
        # on the comment page the counts sit in the blocks around the post, not in it
        around = normalise_text(" ".join(sel.xpath(
            '//div[not(starts-with(@id, "C_"))][not(ancestor::div[starts-with(@id, "C_")])]'
            '[not(descendant::div[starts-with(@id, "C_")])]//text()').getall()))
        post.reposts = post.reposts or _count(around, "转发")
        post.comments_count = post.comments_count or _count(around, "评论")
        post.likes = post.likes or _count(around, "赞")
    comments = [_parse_comment_block(b, mid, crawl_time) for b in blocks]
    return CommentPage(kind="ok", mid=mid, post=post, comments=comments,
                       page_count=_page_count(sel, text))


def _parse_comment_block(block: Selector, mid: str, crawl_time: datetime) -> Comment:
    cid = block.attrib.get("id", "")[2:] or None
    author = block.xpath("./a[1]/@href").get()
    ctt = block.xpath('.//span[@class="ctt"]')
    text = nick = None
    if ctt:
        el = ctt[0]
        lead = normalise_text(el.root.text)
        first_link = el.xpath("./a[1]")
        if lead == "回复" and first_link:
            label = normalise_text(first_link[0].xpath("string()").get())
            nick = label[1:] if label.startswith("@") else None
        text = _text_of(el.root)
        m = _REPLY.match(text)
        if m:
            if nick is None and m.group(1) and m.group(1) != MENTION[1:]:
                nick = m.group(1)
            text = text[m.end():]
        text = text.strip()
    likes_text = normalise_text(" ".join(block.xpath('.//span[@class="cc"]//text()').getall()))
    created, raw, source = _time_and_source(block, crawl_time)
    return Comment(id=cid, mid=mid, author_key=author_key_from_href(author), text=text or None,
                   reply_to_nick=nick or None, likes=_count(likes_text, "赞"), created_at=created,
                   created_raw=raw, source=source)
