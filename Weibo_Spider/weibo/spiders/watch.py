"""watch: one round over the watch lists ([watch] in the config): newest comments first, bounded.

Run with ``cd Weibo_Spider && scrapy crawl watch`` (the scheduler runs it every
``watch.every_minutes``). It shares the hot-topic spider's requests, parsers, login-wall
and error handling (it is a HotTopicsSpider that starts elsewhere) and its pipelines,
so a round is a ``crawl_runs`` row of kind ``watch`` with the same statuses.

- Posts (``watch.posts``): the comment pages of each post, newest first (weibo.cn lists
  comments by time after the hot ones; weibo.com's buildComments with ``flow=1``). A round
  stops paging a post at the first comment already stored, or after ``watch.page_budget``
  pages: never the post's whole history again.
- Comment sources: ``spider.comments_source`` in its order, without m.weibo.cn (its hotflow
  is ordered by heat; see ``NEWEST_FIRST``). A post whose comments fail on one source, or
  whose source refuses its cookie, goes to the next, as in the hot-topic crawl (the same
  ``_comments_fall_back``, recorded in ``comment_fallbacks``).
- Keywords (``watch.keywords``): each round searches newest first (s.weibo.com
  ``/realtime``, weibo.cn ``sort=time``), ``watch.search_pages`` pages. A search that meets
  a login wall, or whose first page fails (DNS, refused, timeout, 5xx after retries, 403/404
  while a next source exists: ``weibo.sources.classify_failure``), goes to the next search
  source (recorded in ``source_fallbacks``); a keyword no source could search is named in
  ``watch.keywords_failed``. Every post found is watched from then on (origin
  ``keyword:<kw>``), for ``watch.keyword_post_days`` after it was found, and its comments are
  read the same way; a round reads the posts found in earlier rounds after its searches, so a
  long list of them never delays the search for new ones.
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
from weibo.sources import classify_failure
from weibo.spiders.hot_topics import SOURCE_COOKIE, HotTopicsSpider, _cb_kwargs

log = logging.getLogger(__name__)

#: The comment sources that can list a post's comments newest first, which a round needs to
#: stop at the first stored one. m.weibo.cn's hotflow cannot: it is ordered by heat, and
#: its time-ordered cursor (``max_id_type=1``) is handed out by the server, not asked for
#: (Weibo's own API doc for comments/hotflow; dataabc/weibo-crawler 2026-06 and
#: MediaCrawler 2026-08 both start at ``max_id_type=0`` and pass back what they get).
NEWEST_FIRST = ("weibo.cn", "weibo.com")

#: Scheduler priority of the first comment page of a post a keyword found in an earlier round:
#: below a keyword search's 10 (comment pages are 20 + page), so the searches go first.
FOUND_BEFORE_PRIORITY = 5


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
    #: days a keyword-found post is read after it was found (0: for ever)
    keyword_post_days: int
    #: mid -> the ids of its newest regular comments (page 1, newest first): the round's progress
    newest_seen: dict[str, list[str]]
    #: mid -> its newest stored comment id before this round (watched_posts.newest_comment_id)
    known_newest: dict[str, str]
    #: posts whose first comment page this round has asked for
    asked: set[str]
    #: posts whose comment pages failed in this round (after retries)
    unreadable: set[str]
    watch_stats: dict[str, Any]
    #: configured comment sources a round leaves out (not in NEWEST_FIRST)
    skipped_sources: list[str]

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
        spider.keyword_post_days = max(0, s.getint("WATCH_KEYWORD_POST_DAYS"))
        given = spider.comment_sources
        spider.comment_sources = [name for name in given if name in NEWEST_FIRST]
        spider.skipped_sources = [name for name in given if name not in NEWEST_FIRST]
        spider.newest_seen = {}
        spider.known_newest = {}
        spider.unreadable = set()
        spider.asked = set()
        spider.watch_stats = {"posts": 0, "keywords": len(spider.watch_keywords), "posts_found": 0,
                              "keyword_posts_retired": 0,
                              "stops": {}, "budget_reached": [], "keywords_failed": {}}
        return spider

    def _stop(self, why: str, mid: str) -> None:
        stops = self.watch_stats["stops"]
        stops[why] = stops.get(why, 0) + 1
        self.crawler.stats.inc_value(f"weibo/watch_stops/{why}")
        if why == "budget" and len(self.watch_stats["budget_reached"]) < 100:
            self.watch_stats["budget_reached"].append(mid)

    # ----------------------------------------------------------------- start

    async def start(self) -> AsyncIterator[scrapy.Request]:
        if self.skipped_sources:
            log.info("watch round: comments are not read from %s: a round needs them newest first, "
                     "and m.weibo.cn's hotflow lists them by heat", ", ".join(self.skipped_sources))
        if not self.comment_sources:
            self.failure = (f"no comment source can list comments newest first: spider.comments_source "
                            f"is {' then '.join(self.skipped_sources)}; watch rounds need "
                            f"{' or '.join(NEWEST_FIRST)} in it")
            log.error("%s", self.failure)
            return
        posts: list[dict[str, str | None]] = []
        for entry in self.watch_posts:
            mid, bid = post_ids(entry["post"])
            posts.append({"mid": mid, "bid": bid, "label": entry["label"]})
        keywords = [k["keyword"] for k in self.watch_keywords]
        if not posts and not keywords:
            self.failure = "nothing to watch: [watch] lists no posts and no keywords"
            log.error("%s", self.failure)
            return
        store = getattr(self.crawler, "weibo_store", None)
        found: list[dict[str, str | None]] = []
        retired = 0
        if store is not None:
            # a post's comments may come from the weibo.com JSON (first or after a fallback)
            watch_list = store.sync_watch_list(posts, keywords,
                                               stub_posts="weibo.com" in self.comment_sources,
                                               keyword_post_days=self.keyword_post_days)
            self.known_newest = watch_list.known_newest
            found, retired = watch_list.keyword_posts, watch_list.retired
        self.watch_stats["keyword_posts_retired"] = retired
        log.info("watch round: %d posts, %d keywords (%d posts found by them before%s); up to %d "
                 "comment pages per post (newest first from %s, stopping at the first stored "
                 "comment), %d search pages per keyword", len(posts), len(keywords), len(found),
                 f"; {retired} found over {self.keyword_post_days} days ago no longer read" if retired else "",
                 self.page_budget, " then ".join(self.comment_sources), self.search_pages)
        # The configured posts, then the searches (they find what is new), then the posts
        # found before, whose first pages also rank below the searches in the scheduler (a
        # comment page otherwise ranks above them): a long list of those never delays a search.
        for p in posts:
            request = self.watch_request(str(p["mid"]), p["bid"], str(p["label"]))
            if request is not None:
                yield request
        first = self._next_source(-1)
        for k in self.watch_keywords:
            if first is not None:
                yield self.keyword_request(k["keyword"], k["label"], first, 1)
        for p in found:
            request = self.watch_request(str(p["mid"]), p["bid"], str(p["label"]), priority=FOUND_BEFORE_PRIORITY)
            if request is not None:
                yield request

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
                              meta=self.search_meta("watch_search", source),
                              cb_kwargs={"keyword": keyword, "label": label, "source": source,
                                         "page": page})

    def on_error(self, failure: Failure) -> Iterator[Any]:
        """A keyword search behind a login wall, or whose first page failed in a way another
        source may not (``classify_failure``), goes to the next search source, as the
        hot-topic search does; everything else as in the hot-topic spider."""
        request = failure.request  # type: ignore[attr-defined]
        if request.meta.get("kind") == "watch_search":
            if failure.check(LoginWall):
                self._walled(failure.value.site, failure.value.url)
                yield from self._keyword_fall_back(**request.cb_kwargs, reason="login_wall")
                return
            yield from super().on_error(failure)   # counted and logged; nothing asked for this kind
            failed = classify_failure(failure, request.url)
            if failed and not self._stopping():
                self.crawler.stats.inc_value(f"weibo/search_errors/{failed[0]}")
                if request.cb_kwargs.get("page") == 1:
                    yield from self._keyword_fall_back(**request.cb_kwargs, reason=failed[0],
                                                       cause=failed[1])
            return
        # a post whose comments moved on to the next source is not unreadable (yet)
        moved = list(super().on_error(failure))
        yield from moved
        mid = request.cb_kwargs.get("mid") if request.meta.get("kind") == "comments" else None
        if mid and not moved and not self._stopping():
            self.unreadable.add(mid)
            if self.watch_posts and not self.newest_seen and \
                    len(self.unreadable) >= len(self.watch_posts):
                self.failure = (f"no watched post could be read: the first comment page of "
                                f"{len(self.unreadable)} posts failed (see the errors in the log)")

    def _keyword_fall_back(self, keyword: str, label: str, source: int, page: int, reason: str,
                           cause: str | None = None) -> Iterator[Any]:
        """``source`` gave nothing usable for ``keyword`` (``reason``: login_wall, dns, http_503,
        ...; ``cause``: what failed): ask the next search source, or record the keyword as not
        searched this round (login_required once every source refused its cookie)."""
        name = self.sources[source]
        nxt = self._next_source(source)
        cause = f"login wall at {name}" if reason == "login_wall" else cause or reason
        self.crawler.stats.inc_value(f"weibo/source_fallbacks/{name}/{reason}")
        if len(self.source_fallbacks) < 200:
            self.source_fallbacks.append({"keyword": keyword, "source": name, "reason": reason,
                                          "next": self.sources[nxt] if nxt is not None else None,
                                          "cause": cause})
        if nxt is not None:
            if not self._stopping():
                log.info("%s failed for watch keyword %s (%s); trying %s", name, keyword, cause,
                         self.sources[nxt])
                yield self.keyword_request(keyword, label, nxt, page)
            return
        if reason == "login_wall" and self._next_source(-1) is None:
            self._login_required()   # every search source refused its cookie
            return
        self._keyword_failed(keyword, cause)

    def _keyword_failed(self, keyword: str, cause: str) -> None:
        """No search source could answer for ``keyword`` this round. A round that watches only
        keywords, none of which could be searched, has failed, with the causes named."""
        failed = self.watch_stats["keywords_failed"]
        failed[keyword] = cause
        log.error("watch keyword %s could not be searched on any source (last: %s)", keyword, cause)
        if not self.watch_posts and len(failed) >= len(self.watch_keywords):
            self.failure = (f"no watch keyword could be searched: "
                            f"{', '.join(f'{k} ({c})' for k, c in failed.items())}")
            log.error("%s", self.failure)

    def parse_keyword(self, response: Response, keyword: str, label: str, source: int,
                      page: int) -> Iterator[Any]:
        name = self.sources[source]
        self._page_seen(name if name == "s.weibo.com" else "weibo.cn-search")
        parse = parsing.parse_sweibo_page if name == "s.weibo.com" else parsing.parse_search_page
        result = parse(response.text, response.url, self.now())
        if result.kind == "login_wall":
            self._walled(SOURCE_COOKIE[name], response.url)
            yield from self._keyword_fall_back(keyword, label, source, page, "login_wall")
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
            request = self.watch_request(p.mid, p.bid, label) if p.comments_count > 0 else None
            if request is not None and not self._stopping():
                yield request
        if page < min(result.page_count, self.search_pages) and not self._stopping():
            yield self.keyword_request(keyword, label, source, page + 1)

    # ----------------------------------------------------------------- comments, newest first

    def watch_request(self, mid: str, bid: str | None, label: str, page: int = 1,
                      max_id: int = 0, source: int | None = None,
                      priority: int | None = None) -> scrapy.Request | None:
        """A page of a watched post's comments, newest first, on comment source ``source``
        (default: the first whose login has not been refused; None when every one has been, or
        when this round has already asked for the post's first page). ``priority``: the
        scheduler's (default ``20 + page``, before the searches)."""
        at = self._next_comment_source(-1) if source is None else source
        if at is None:
            return None
        if page == 1 and source is None:
            if mid in self.asked:
                return None   # configured, found before and found again: read once a round
            self.asked.add(mid)
            self.watch_stats["posts"] += 1
        kw = {"mid": mid, "page": page, "bid": bid, "label": label, "source": at}
        again = source is not None and page == 1   # a fallback: past the dupe filter
        rank = 20 + page if priority is None else priority
        if self.comment_sources[at] == "weibo.com":
            url = self.build_comments_url(mid, max_id) + "&flow=1"   # flow=1: by time, newest first
            return self.comment_page_request(url, self.parse_watch_json, kw, rank,
                                             self.browser_headers(), again)
        return self.comment_page_request(self.comment_url(mid, page, bid), self.parse_watch_page, kw,
                                         rank, None, again)

    def comments_retry(self, cb: dict[str, Any], source: int) -> scrapy.Request | None:
        """The hot-topic fallback's next source, asked newest first from page 1."""
        return self.watch_request(cb["mid"], cb.get("bid"), cb.get("label", ""), source=source)

    def parse_watch_page(self, response: Response, mid: str, page: int, bid: str | None,
                         label: str, source: int = 0) -> Iterator[Any]:
        """A weibo.cn comment page of a watched post."""
        self._page_seen("weibo.cn-comments")
        result = parsing.parse_comment_page(response.text, response.url, self.now(), mid=mid)
        last = min(result.page_count, parsing.COMMENT_PAGE_CAP)
        yield from self._watch_page(response, result, mid, page, bid, label, source, more=page < last)

    def parse_watch_json(self, response: Response, mid: str, page: int, bid: str | None,
                         label: str, source: int = 0) -> Iterator[Any]:
        """A page of the weibo.com comment JSON (flow=1) of a watched post."""
        self._page_seen("weibo.com-comments")
        result = parsing.parse_build_comments(response.text, mid)
        yield from self._watch_page(response, result, mid, page, bid, label, source,
                                    more=bool(result.max_id))

    def _watch_page(self, response: Response, result: parsing.CommentPage, mid: str, page: int,
                    bid: str | None, label: str, source: int, more: bool) -> Iterator[Any]:
        """Store the comments newer than the first stored one; page on within the budget."""
        if result.kind == "login_wall":
            site = SOURCE_COOKIE[self.comment_sources[source]]
            self._walled(site, response.url)
            yield from self._comments_fall_back(_cb_kwargs(response), "login_wall", f"login wall at {site}")
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
            request = self.watch_request(mid, bid, label, page + 1, max_id=result.max_id, source=source)
            if request is not None:
                yield request
