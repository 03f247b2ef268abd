"""watch: one round over the watch lists ([watch] in the config): newest comments first, bounded.

Run with ``cd Weibo_Spider && scrapy crawl watch`` (the scheduler runs it every
``watch.every_minutes``). It shares the hot-topic spider's requests, parsers, login-wall
and error handling (it is a HotTopicsSpider that starts elsewhere) and its pipelines,
so a round is a ``crawl_runs`` row of kind ``watch`` with the same statuses.

- Posts (``watch.posts``): the comment pages of each post, newest first (weibo.cn lists
  comments by time after the hot ones; weibo.com's buildComments with ``flow=1``). A round
  stops paging a post at the first comment already stored, or after ``watch.page_budget``
  pages: never the post's whole history again.
- Keywords (``watch.keywords``): each round searches newest first (s.weibo.com
  ``/realtime``, weibo.cn ``sort=time``), ``watch.search_pages`` pages, falling back to the
  next search source on a login wall; every post found is watched from then on (origin
  ``keyword:<kw>``) and its comments are read the same way.
- Progress per post (the newest stored comment, when and by which round) is written to
  ``watched_posts`` when the round closes, after its last rows are stored.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import quote

import scrapy
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.settings import BaseSettings
from twisted.python.failure import Failure

from weibo import parsing
from weibo.items import PostItem
from weibo.middlewares import LoginWall
from weibo.spiders.hot_topics import SOURCE_COOKIE, HotTopicsSpider

log = logging.getLogger(__name__)


def post_ids(given: str) -> tuple[str, str | None]:
    """(mid, bid) of a watch entry's post id (a bid or a mid, as weibo_mh.config read it)."""
    mid = parsing.canonical_mid(given) or given
    return mid, parsing.mid_to_bid(mid) if mid.isdigit() else None


class WatchSpider(HotTopicsSpider):
    name = "watch"
    kind = "watch"   # crawl_runs.kind of its runs (read by the DatabasePipeline)
    watch_posts: list[dict[str, str]]
    watch_keywords: list[dict[str, str]]
    page_budget: int
    search_pages: int
    #: mid -> the ids of its newest regular comments (page 1, newest first): the round's progress
    newest_seen: dict[str, list[str]]
    #: mid -> its newest stored comment id before this round (watched_posts.newest_comment_id)
    known_newest: dict[str, str]
    #: posts whose comment pages failed in this round (after retries)
    unreadable: set[str]
    watch_stats: dict[str, Any]

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        """A round is small and must start at once: it keeps Scrapy's own in-memory scheduler
        even with spider.scheduler_backend = redis (no shared queue, no idle wait)."""
        super(HotTopicsSpider, cls).update_settings(settings)

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> WatchSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        assert isinstance(spider, WatchSpider)
        s = crawler.settings
        spider.watch_posts = list(s.getlist("WATCH_POSTS"))
        spider.watch_keywords = list(s.getlist("WATCH_KEYWORDS"))
        spider.page_budget = max(1, s.getint("WATCH_PAGE_BUDGET"))
        spider.search_pages = max(1, s.getint("WATCH_SEARCH_PAGES"))
        spider.newest_seen = {}
        spider.known_newest = {}
        spider.unreadable = set()
        spider.watch_stats = {"posts": 0, "keywords": len(spider.watch_keywords), "posts_found": 0,
                              "stops": {}, "budget_reached": []}
        return spider

    def _stop(self, why: str, mid: str) -> None:
        stops = self.watch_stats["stops"]
        stops[why] = stops.get(why, 0) + 1
        self.crawler.stats.inc_value(f"weibo/watch_stops/{why}")
        if why == "budget" and len(self.watch_stats["budget_reached"]) < 100:
            self.watch_stats["budget_reached"].append(mid)

    # ----------------------------------------------------------------- start

    async def start(self) -> AsyncIterator[scrapy.Request]:
        posts: list[dict[str, str | None]] = []
        requests = []
        for entry in self.watch_posts:
            mid, bid = post_ids(entry["post"])
            posts.append({"mid": mid, "bid": bid, "label": entry["label"]})
            requests.append(self.watch_request(mid, bid, entry["label"]))
        keywords = [k["keyword"] for k in self.watch_keywords]
        if not posts and not keywords:
            self.failure = "nothing to watch: [watch] lists no posts and no keywords"
            log.error("%s", self.failure)
            return
        store = getattr(self.crawler, "weibo_store", None)
        if store is not None:
            self.known_newest = store.sync_watch_list(posts, keywords,
                                                      stub_posts=self.comments_source == "weibo.com")
        log.info("watch round: %d posts, %d keywords; up to %d comment pages per post (newest "
                 "first, stopping at the first stored comment), %d search pages per keyword",
                 len(posts), len(keywords), self.page_budget, self.search_pages)
        for request in requests:
            yield request
        first = self._next_source(-1)
        for k in self.watch_keywords:
            if first is not None:
                yield self.keyword_request(k["keyword"], k["label"], first, 1)

    # ----------------------------------------------------------------- keyword watches

    def keyword_url(self, source: str, keyword: str, page: int) -> str:
        """A search sorted newest first: s.weibo.com's real-time search, weibo.cn's sort=time."""
        q = quote(keyword, safe="")
        if source == "s.weibo.com":
            return f"{self.s_base}/realtime?q={q}&rd=realtime&tw=realtime&Refer=weibo_realtime&page={page}"
        return f"{self.base}/search/mblog?hideSearchFrame=&keyword={q}&sort=time&page={page}"

    def keyword_request(self, keyword: str, label: str, source: int, page: int) -> scrapy.Request:
        name = self.sources[source]
        return scrapy.Request(self.keyword_url(name, keyword, page), callback=self.parse_keyword,
                              errback=self.on_error, priority=10, dont_filter=True,
                              headers=self.browser_headers() if name == "s.weibo.com" else {},
                              meta={"kind": "watch_search"},
                              cb_kwargs={"keyword": keyword, "label": label, "source": source,
                                         "page": page})

    def on_error(self, failure: Failure) -> Iterator[Any]:
        """A keyword search behind a login wall goes to the next search source (as the hot-topic
        search does); everything else as in the hot-topic spider."""
        request = failure.request  # type: ignore[attr-defined]
        if failure.check(LoginWall) and request.meta.get("kind") == "watch_search":
            self._walled(failure.value.site, failure.value.url)
            yield from self._keyword_fall_back(**request.cb_kwargs)
            return
        yield from super().on_error(failure)
        mid = request.cb_kwargs.get("mid") if request.meta.get("kind") == "comments" else None
        if mid and not self._stopping():
            self.unreadable.add(mid)
            if self.watch_posts and not self.newest_seen and \
                    len(self.unreadable) >= len(self.watch_posts):
                self.failure = (f"no watched post could be read: the first comment page of "
                                f"{len(self.unreadable)} posts failed (see the errors in the log)")

    def _keyword_fall_back(self, keyword: str, label: str, source: int, page: int) -> Iterator[Any]:
        nxt = self._next_source(source)
        if nxt is None:
            self._login_required()   # every search source refused its cookie
        elif not self._stopping():
            log.info("%s refused the search for watch keyword %s; trying %s", self.sources[source],
                     keyword, self.sources[nxt])
            yield self.keyword_request(keyword, label, nxt, page)

    def parse_keyword(self, response: Response, keyword: str, label: str, source: int,
                      page: int) -> Iterator[Any]:
        name = self.sources[source]
        self._page_seen(name if name == "s.weibo.com" else "weibo.cn-search")
        parse = parsing.parse_sweibo_page if name == "s.weibo.com" else parsing.parse_search_page
        result = parse(response.text, response.url, self.now())
        if result.kind == "login_wall":
            self._walled(SOURCE_COOKIE[name], response.url)
            yield from self._keyword_fall_back(keyword, label, source, page)
            return
        if result.kind == "malformed":
            self._malformed(response, "search page without posts or a no-results notice")
            return
        if result.kind == "empty":
            log.info("watch keyword %s: no posts on %s page %d", keyword, name, page)
            return
        found = [p for p in result.posts if p.mid and p.text]
        store = getattr(self.crawler, "weibo_store", None)
        watched = [{"mid": p.mid, "bid": p.bid or post_ids(p.mid)[1], "label": label}
                   for p in found if p.mid]
        if store is not None and watched:
            store.watch_found(watched, keyword)
        self.watch_stats["posts_found"] += len(found)
        scraped = self.now()
        for p in found:
            assert p.mid is not None
            yield PostItem(scraped_at=scraped, **self._post_dict(p.mid, p, response.url))
            if p.comments_count > 0 and not self._stopping():
                yield self.watch_request(p.mid, p.bid, label)
        if page < min(result.page_count, self.search_pages) and not self._stopping():
            yield self.keyword_request(keyword, label, source, page + 1)

    # ----------------------------------------------------------------- comments, newest first

    def watch_request(self, mid: str, bid: str | None, label: str, page: int = 1,
                      max_id: int = 0) -> scrapy.Request:
        """A page of a watched post's comments, newest first."""
        if page == 1:
            self.watch_stats["posts"] += 1
        kw = {"mid": mid, "page": page, "bid": bid, "label": label}
        if self.comments_source == "weibo.com":
            url = self.build_comments_url(mid, max_id) + "&flow=1"   # flow=1: by time, newest first
            return scrapy.Request(url, callback=self.parse_watch_json, errback=self.on_error,
                                  priority=20 + page, headers=self.browser_headers(),
                                  meta={"kind": "comments"}, cb_kwargs=kw)
        return scrapy.Request(self.comment_url(mid, page, bid), callback=self.parse_watch_page,
                              errback=self.on_error, priority=20 + page, meta={"kind": "comments"},
                              cb_kwargs=kw)

    def parse_watch_page(self, response: Response, mid: str, page: int, bid: str | None,
                         label: str) -> Iterator[Any]:
        """A weibo.cn comment page of a watched post."""
        self._page_seen("weibo.cn-comments")
        result = parsing.parse_comment_page(response.text, response.url, self.now(), mid=mid)
        last = min(result.page_count, parsing.COMMENT_PAGE_CAP)
        yield from self._watch_page(response, result, mid, page, bid, label, more=page < last)

    def parse_watch_json(self, response: Response, mid: str, page: int, bid: str | None,
                         label: str) -> Iterator[Any]:
        """A page of the weibo.com comment JSON (flow=1) of a watched post."""
        self._page_seen("weibo.com-comments")
        result = parsing.parse_build_comments(response.text, mid)
        yield from self._watch_page(response, result, mid, page, bid, label, more=bool(result.max_id))

    def _watch_page(self, response: Response, result: parsing.CommentPage, mid: str, page: int,
                    bid: str | None, label: str, more: bool) -> Iterator[Any]:
        """Store the comments newer than the first stored one; page on within the budget."""
        if result.kind == "login_wall":
            site = "weibo.com" if self.comments_source == "weibo.com" else "weibo.cn"
            self._walled(site, response.url)
            self._login_required()
            return
        if result.kind == "malformed":
            self._malformed(response, "comment page without the post, comments or a notice")
            return
        if result.kind == "gone":
            self._stop("gone", mid)
            log.warning("watched post %s (%s) is gone (deleted or hidden): %s", mid, label, response.url)
            return
        if result.post and result.post.text:
            yield PostItem(scraped_at=self.now(), **self._post_dict(mid, result.post, response.url))
        regular = [c.id for c in result.comments if c.id and not c.is_hot]
        if page == 1:
            self.newest_seen[mid] = regular[:20]
        store = getattr(self.crawler, "weibo_store", None)
        stored = store.known_comment_ids([c.id for c in result.comments if c.id]) if store else set()
        first_stored = next((i for i, cid in enumerate(regular) if cid in stored), None)
        scraped = self.now()
        for c in result.comments:
            if c.id not in stored:
                yield self._comment_item(c, mid, response.url, scraped)
        if first_stored is not None:
            self._stop("stored", mid)
            log.debug("watched post %s: comment %s on page %d is stored; round done", mid,
                      regular[first_stored], page)
        elif not regular:
            self._stop("empty", mid)
        elif not more:
            self._stop("last_page", mid)
        elif page >= self.page_budget and mid not in self.known_newest:
            self._stop("first_round", mid)
            log.info("watched post %s (%s) read for the first time: its newest %d pages are stored, "
                     "its older history is not read", mid, label, page)
        elif page >= self.page_budget:
            self._stop("budget", mid)
            log.warning("watched post %s (%s): %d pages of new comments, watch.page_budget reached; "
                        "the older of them are not read (a shorter watch.every_minutes or a larger "
                        "budget closes the gap)", mid, label, page)
        elif not self._stopping():
            yield self.watch_request(mid, bid, label, page + 1, max_id=result.max_id)
