"""s.weibo.com topic search: ``GET https://s.weibo.com/weibo?q=<keyword>&page=N`` (HTML).

Shapes as dataabc/weibo-search ``weibo/spiders/search.py`` reads them (2025): a post is
``div.card-wrap[@mid]`` (the numeric mid); ``div.from/a[1]`` links
``//weibo.com/<uid>/<bid>`` and carries the time, ``a[2]`` the client; the author is the
``div.info`` link; the text is ``p[node-type=feed_list_content]``, the whole text in
``p[node-type=feed_list_content_full]`` when the excerpt was cut (展开); a retweet's
original sits in ``div.card-comment``; the counts are the ``feed_list_forward`` /
``feed_list_comment`` / ``feed_list_like`` links, whose text is a word (转发) when the
count is 0. No results: ``div.card-no-result``. Paging: ``ul.s-scroll > li``, ``a.next``.

The card as served in 2018 (still found in archives and mirrors) keeps the post link,
time and client in ``p.from`` instead of ``div.from``; dataabc/weibo-search switched its
selectors around 2022. Both are read. Its texts can begin with an icon-font glyph (a
private-use character such as U+E627), which ``Post`` removes and counts.
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urljoin, urlsplit

from parsel import Selector

from weibo.parsing.common import (
    Post,
    SearchPage,
    author_key_from_href,
    normalise_text,
    selector,
    text_of,
)
from weibo.parsing.ids import canonical_mid
from weibo.timeparse import parse_weibo_time

_DIGITS = re.compile(r"(\d+(?:\.\d+)?)\s*(万)?")
_OUTSIDE_ORIGINAL = '[not(ancestor::div[contains(concat(" ", @class, " "), " card-comment ")])]'
#: ``div.from`` (2020s) or ``p.from`` (2018).
_FROM = '*[self::div or self::p][contains(concat(" ", normalize-space(@class), " "), " from ")]'


def _count(card: Selector, action: str) -> int:
    texts = card.xpath(f'.//a[@action-type="{action}"]{_OUTSIDE_ORIGINAL}//text()').getall()
    m = _DIGITS.search(normalise_text(" ".join(texts)).replace(",", ""))
    if not m:
        return 0
    return int(float(m.group(1)) * (10000 if m.group(2) else 1))


def parse_card(card: Selector, crawl_time: datetime) -> Post:
    mid = canonical_mid(card.attrib.get("mid"))
    content = card.xpath('.//div[@class="content"]')
    scope = content[0] if content else card
    full = scope.xpath(f'.//p[@node-type="feed_list_content_full"]{_OUTSIDE_ORIGINAL}')
    short = scope.xpath(f'.//p[@node-type="feed_list_content"]{_OUTSIDE_ORIGINAL}')
    p = full or short
    text = None
    if p:
        text = text_of(p[0].root)
        text = re.sub(r"\s*(收起全文d?|收起d?|展开c?|展开全文c?)\s*$", "", text).strip()
    cut = bool(short) and not full and bool(short.xpath('.//a[@action-type="fl_unfold"]'))
    frm = scope.xpath(f'./{_FROM}{_OUTSIDE_ORIGINAL}') or \
        scope.xpath(f'.//{_FROM}{_OUTSIDE_ORIGINAL}')
    created = None
    raw = ""
    client = None
    bid = None
    if frm:
        links = frm[0].xpath("./a")
        if links:
            raw = normalise_text(links[0].xpath("string()").get())
            created = parse_weibo_time(raw, crawl_time)
            segs = [s for s in urlsplit(links[0].attrib.get("href", "")).path.split("/") if s]
            bid = segs[1] if len(segs) >= 2 else None
        if len(links) > 1:
            client = normalise_text(links[1].xpath("string()").get()) or None
    mid = mid or canonical_mid(bid)
    author = scope.xpath('.//div[@class="info"]//a[contains(@class, "name")]/@href').get() or \
        scope.xpath('.//div[@class="info"]/div[2]/a/@href').get()
    return Post(mid=mid, author_key=author_key_from_href(author), text=text or None, full_text=not cut,
                created_at=created, created_raw=raw, reposts=_count(card, "feed_list_forward"),
                comments_count=_count(card, "feed_list_comment"), likes=_count(card, "feed_list_like"),
                source=client, is_retweet=bool(card.xpath('.//div[contains(@class, "card-comment")]')),
                bid=bid)


def parse_sweibo_page(html: str, url: str, crawl_time: datetime) -> SearchPage:
    """Cards with a ``mid``, the page count and the next page's URL of an s.weibo.com result page."""
    sel = selector(html)
    cards = sel.xpath('//div[contains(@class, "card-wrap")][@mid]')
    if not cards:
        if sel.xpath('//div[contains(@class, "card-no-result")]'):
            return SearchPage(kind="empty")
        text = normalise_text(" ".join(sel.xpath("//body//text()").getall()))
        login = "登录" in text or bool(sel.xpath('//input[@type="password"]')) or \
            bool(sel.xpath('//a[contains(@href, "passport.weibo.com")]'))
        return SearchPage(kind="login_wall" if login else "malformed")
    posts = [parse_card(c, crawl_time) for c in cards]
    pages = len(sel.xpath('//ul[contains(@class, "s-scroll")]/li')) or 1
    nxt = sel.xpath('//a[contains(@class, "next")]/@href').get()
    return SearchPage(kind="ok", posts=posts, page_count=pages,
                      next_url=urljoin(url, nxt) if nxt else None)
