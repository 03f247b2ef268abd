"""What every parser shares: the result dataclasses, text extraction, URL classification.

Every parser is a pure function of the page text (and its URL and the crawl time),
so tests feed saved pages without a network or Scrapy. Parsers are permissive: a
post without text still comes back (``text=None``) and the validation pipeline
drops it with a counted reason.

Privacy: nicknames are read only to build reply keys (``n:<nick>``) that are
hashed later; ``@mentions`` inside texts become ``@用户``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from lxml import etree
from parsel import Selector

MENTION = "@用户"
LOGIN_HOSTS = ("passport.weibo.cn", "passport.weibo.com", "login.sina.com.cn", "login.weibo.cn")
LOGIN_PATHS = ("/login", "/signin", "/sso/login", "/sso/signin", "/passport", "/login.php")
#: Redirect targets that mean "prove you are human": a block, not a login wall.
BLOCK_HOSTS = ("security.weibo.com", "verify.weibo.com", "captcha.weibo.com")
BLOCK_PATH_WORDS = ("captcha", "verify", "verification", "security", "/sorry")
#: First path segments of weibo.cn that are pages, not custom user names.
RESERVED_PATHS = {"comment", "search", "attitude", "repost", "n", "u", "sinaurl", "spam", "fav",
                  "mblog", "pages", "k", "login", "signin", "msg", "at", "account", "", "home"}

_WS = re.compile(r"[\s\u00a0\u3000\u200b\ufeff]+")
#: Private-use characters (U+E000–U+F8FF): icon-font glyphs (a location pin, a video mark)
#: that s.weibo.com puts before texts. They carry no words and are removed (counted).
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
#: Where a picture link was dropped from a text: "[组图共3张]" leaves "[" and "]" around it.
_PICTURE = "\ufdd0"
_PICTURE_LEFTOVER = re.compile(r"\[\s*\ufdd0+\s*\]|\ufdd0")
#: Labels of links that stand for pictures, not words.
_PICTURE_LABEL = re.compile(r"^(组图共\s*\d+\s*张|图片|原图|评论配图|图片评论|查看图片|查看组图)$")
# weibo.cn pages open with an XML declaration; libxml2's HTML parser then drops
# entities such as &amp; and &lt;, so the declaration is removed before parsing.
_XML_DECL = re.compile(r"^\s*<\?xml[^>]*\?>")
_MENTION_TEXT = re.compile(r"@[\w\u4e00-\u9fff\-]{1,30}")


class MalformedPage(ValueError):
    """The response is not the page or JSON we asked for (and not a login wall)."""


@dataclass
class Topic:
    word: str
    rank: int
    heat: int
    category: str | None = None
    #: The list's badge (label_name: 热, 新, 沸, 爆 …); not a category.
    label: str | None = None
    #: What to search for: word_scheme (``#word#`` for a real topic), else the word.
    search_word: str = ""
    #: The pinned government entry (data.hotgov).
    pinned: bool = False


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
    ip_location: str | None = None
    #: A retweet: text and counts are the retweeter's own, not the original's.
    is_retweet: bool = False
    bid: str | None = None
    #: Private-use characters removed from the text (counted in the run's stats).
    private_use: int = 0

    def __post_init__(self) -> None:
        self.text, self.private_use = strip_private_use(self.text)


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
    ip_location: str | None = None
    is_hot: bool = False
    #: weibo.com source: the first-level comment of the thread and the comment answered.
    root_id: str | None = None
    reply_to_id: str | None = None
    #: Only a picture (评论配图) and no words.
    image_only: bool = False
    #: weibo.com source: how many replies the comment has (0: none).
    replies: int = 0
    #: Private-use characters removed from the text (counted in the run's stats).
    private_use: int = 0

    def __post_init__(self) -> None:
        self.text, self.private_use = strip_private_use(self.text)


@dataclass
class SearchPage:
    """kind: ok, empty (no results), login_wall or malformed."""

    kind: str
    posts: list[Post] = field(default_factory=list)
    page_count: int = 1
    next_url: str | None = None


@dataclass
class CommentPage:
    """kind: ok, gone (post deleted), login_wall or malformed. ``post`` is set on page 1.

    ``notice``: the page says there are no comments (also what weibo.cn shows past page 50).
    ``max_id``: the weibo.com and m.weibo.cn JSON's paging cursor (0: the last page).
    """

    kind: str
    mid: str = ""
    post: Post | None = None
    comments: list[Comment] = field(default_factory=list)
    page_count: int = 1
    notice: bool = False
    max_id: int = 0
    #: m.weibo.cn hotflow: sent back with the next page's ``max_id``.
    max_id_type: int = 0
    total: int = 0


# --------------------------------------------------------------------------- helpers


def selector(html: str) -> Selector:
    return Selector(text=_XML_DECL.sub("", html or "", count=1) or "<html></html>")


def normalise_text(text: str | None) -> str:
    """Collapse all whitespace (nbsp, ideographic space, zero-width) to one space; keep emoji.

    A dropped picture link leaves nothing behind, not even the "[]" around "[组图共N张]".
    """
    text = text or ""
    if _PICTURE in text:
        text = _PICTURE_LEFTOVER.sub("", text)
    return _WS.sub(" ", text).strip()


def strip_private_use(text: str | None) -> tuple[str | None, int]:
    """(text without U+E000–U+F8FF, how many were removed); None stays None."""
    if not text:
        return text, 0
    cleaned, n = PRIVATE_USE.subn("", text)
    return (normalise_text(cleaned) or None, n) if n else (text, 0)


def comment_threads(rows: list[Any],
                    read: Callable[[dict[str, Any], str | None], Comment]) -> list[Comment]:
    """The comments of a JSON page: each first-level comment, then the replies inline under it
    (``comments``), each id once. ``read(comment, parent id or None)`` parses one."""
    out: dict[str, Comment] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        first = read(row, None)
        nested = row.get("comments")
        inline = [read(r, first.id) for r in (nested if isinstance(nested, list) else [])
                  if isinstance(r, dict)]
        for c in [first, *inline]:
            if c.id and c.id not in out:
                out[c.id] = c
    return list(out.values())


def mask_mentions(text: str) -> str:
    """@name in plain text (the JSON sources) -> @用户."""
    return _MENTION_TEXT.sub(MENTION, text)


def _host_in(host: str, hosts: tuple[str, ...]) -> bool:
    return any(host == h or host.endswith("." + h) for h in hosts)


def is_login_url(url: str | None) -> bool:
    """Does this URL (a redirect target or a final URL) point at a login page?"""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if _host_in(host, LOGIN_HOSTS):
        return True
    path = parts.path.lower()
    return any(path == p or path.startswith(p + "/") or path.startswith(p + ".") or
               path.startswith(p + "?") for p in LOGIN_PATHS)


def is_block_url(url: str | None) -> bool:
    """Does this redirect target point at a captcha or verification page (a block)?"""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if _host_in(host, BLOCK_HOSTS):
        return True
    path = parts.path.lower()
    return any(w in path for w in BLOCK_PATH_WORDS)


def author_key_from_href(href: str | None) -> str | None:
    """'/u/1234' -> 'u:1234'; '/someone' -> 'c:someone'; '//weibo.com/1234?x' -> 'u:1234'."""
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


def is_picture_link(e: etree._Element) -> bool:
    href = (e.get("href") or "").lower()
    label = normalise_text("".join(e.itertext())).strip("[]")
    return ("/mblog/pic" in href or "/mblog/oripic" in href or "sinaimg" in href
            or bool(_PICTURE_LABEL.match(label)))


def text_of(el: etree._Element, pictures: list[bool] | None = None) -> str:
    """Visible text of an element: emoticon images by their alt, @mentions masked.

    Links to pictures add nothing (nor the brackets around them); ``pictures`` (if given)
    gets True appended for each.
    """
    return normalise_text("".join(_parts(el, pictures)))


def raw_text(el: etree._Element, pictures: list[bool] | None = None) -> str:
    """Like ``text_of`` but not normalised, so that pieces can be joined without new spaces."""
    return "".join(_parts(el, pictures))


def _parts(el: etree._Element, pictures: list[bool] | None) -> list[str]:
    parts: list[str] = []

    def walk(e: etree._Element) -> None:
        tag = e.tag if isinstance(e.tag, str) else ""
        if tag == "img":
            parts.append(e.get("alt") or "")
        elif tag == "a" and is_picture_link(e):
            parts.append(_PICTURE)   # normalise_text removes it and the "[]" around it
            if pictures is not None:
                pictures.append(True)
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
    return parts
