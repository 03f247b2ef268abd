"""hot_topics: hot-search list -> posts per topic (search sources in order) -> comments per post.

Run with ``cd Weibo_Spider && scrapy crawl hot_topics`` (settings from the
project config, see weibo/settings.py). Pages are read by the pure functions
in weibo.parsing; this module only decides what to fetch next and what to do
with login walls, empty answers, malformed pages and failed requests.

- Search: ``SEARCH_SOURCES`` in order (default s.weibo.com, then weibo.cn). A source
  that answers a topic with a login wall or with no posts hands the topic to the next
  one; every hand-over is recorded (crawl_runs.stats ``source_fallbacks``). A source
  whose cookie was refused is not asked again in this run.
- Comments: ``COMMENTS_SOURCE`` weibo.cn (pages; hot comments flagged, paging stops at
  the cap, the empty notice or a page of repeated ids) or weibo.com (buildComments JSON
  with second-level replies).
- The spider's own data travels between callbacks in ``cb_kwargs``; ``meta`` holds only
  what components read (``kind``).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any
from urllib.parse import quote

import scrapy
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.python.failure import Failure

from weibo import hygiene, parsing
from weibo.items import CommentItem, PostItem, TopicItem
from weibo.middlewares import COOKIE_DOC, LoginWall, request_close
from weibo_mh.db import SHANGHAI

log = logging.getLogger(__name__)

#: Which login each search source needs.
SOURCE_COOKIE = {"s.weibo.com": "weibo.com", "weibo.cn": "weibo.cn"}
COOKIE_VARS = {"weibo.cn": "WEIBO_COOKIE / WEIBO_COOKIE_FILE / spider.cookie_file",
               "weibo.com": "WEIBO_COM_COOKIE / WEIBO_COM_COOKIE_FILE / spider.weibo_com_cookie_file"}


class HotTopicsSpider(scrapy.Spider):
    name = "hot_topics"
    # set in from_crawler, from the settings (their defaults live in weibo_mh.config.SPEC)
    hotsearch_url: str
    base: str
    s_base: str
    com_base: str
    sources: list[str]
    comments_source: str
    browser_ua: str
    topic_limit: int
    max_post_pages: int
    max_comment_pages: int
    max_reply_pages: int
    incremental: bool
    failure: str | None
    close_reason: str | None
    malformed_urls: list[str]
    walled: set[str]
    source_fallbacks: list[dict[str, Any]]
    refetch_mids: set[str]  # posts whose comment pages failed: recorded for the next crawl

    @classmethod
    def update_settings(cls, settings: BaseSettings) -> None:
        super().update_settings(settings)
        if settings.get("SCHEDULER_BACKEND") == "redis":
            for key, value in (("SCHEDULER", "weibo.redis_backend.SharedScheduler"),
                               ("DUPEFILTER_CLASS", "scrapy_redis.dupefilter.RFPDupeFilter"),
                               ("SCHEDULER_PERSIST", True),
                               ("SCHEDULER_QUEUE_CLASS", "scrapy_redis.queue.PriorityQueue")):
                settings.set(key, value, priority="spider")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> HotTopicsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        s = crawler.settings
        spider.hotsearch_url = s.get("HOTSEARCH_URL")
        spider.base = s.get("WEIBO_CN_BASE").rstrip("/")
        spider.s_base = s.get("S_WEIBO_BASE").rstrip("/")
        spider.com_base = s.get("WEIBO_COM_BASE").rstrip("/")
        spider.sources = list(s.getlist("SEARCH_SOURCES"))
        spider.comments_source = s.get("COMMENTS_SOURCE")
        spider.browser_ua = s.get("BROWSER_USER_AGENT")
        spider.topic_limit = s.getint("TOPIC_LIMIT")
        spider.max_post_pages = max(1, s.getint("MAX_POST_PAGES"))
        spider.max_comment_pages = max(1, s.getint("MAX_COMMENT_PAGES"))
        spider.max_reply_pages = s.getint("MAX_REPLY_PAGES")
        spider.incremental = s.getbool("INCREMENTAL")
        spider.failure = None          # a reason the run could not do its work
        spider.close_reason = None     # set by request_close (login_required, rate_limited)
        spider.malformed_urls = []
        spider.walled = set()          # logins refused in this run: "weibo.cn", "weibo.com"
        spider.source_fallbacks = []   # {topic, source, reason, next}
        spider.refetch_mids = set()    # posts whose comment pages failed: the next crawl asks again
        return spider

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def now() -> datetime:
        return datetime.now(SHANGHAI)

    def browser_headers(self) -> dict[str, str]:
        """What a browser sends to weibo.com (DailyHotApi's fix for HTTP 403, 2025-11)."""
        return {"Referer": f"{self.com_base}/", "User-Agent": self.browser_ua}

    def search_url(self, source: str, search_word: str, page: int) -> str:
        if source == "s.weibo.com":
            return f"{self.s_base}/weibo?q={quote(search_word, safe='')}&page={page}"
        return (f"{self.base}/search/mblog?hideSearchFrame=&keyword={quote(search_word, safe='')}"
                f"&page={page}")

    def comment_url(self, mid: str, page: int, bid: str | None = None) -> str:
        bid = bid or (parsing.mid_to_bid(mid) if mid.isdigit() else mid)
        return f"{self.base}/comment/{quote(bid, safe='')}?page={page}"

    def build_comments_url(self, the_id: str, max_id: int, replies: bool = False) -> str:
        url = f"{self.com_base}/ajax/statuses/buildComments?is_reload=1&id={the_id}&is_show_bulletin=2"
        url += "&is_mix=1&fetch_level=1&count=100" if replies else "&is_mix=0&count=20"
        return f"{url}&max_id={max_id}" if max_id or replies else url

    def _page_seen(self, source: str) -> None:
        self.crawler.stats.inc_value("weibo/pages")
        self.crawler.stats.inc_value(f"weibo/pages/{source}")

    def _malformed(self, response: Response, why: str) -> None:
        self.crawler.stats.inc_value("weibo/malformed")
        if len(self.malformed_urls) < 100:
            self.malformed_urls.append(response.url)
        log.warning("malformed page (%s), skipped: %s", why, response.url)

    def _walled(self, site: str, url: str) -> None:
        """A site refused its cookie: say so once, loudly, naming the cookie and the doc."""
        if site in self.walled:
            return
        self.walled.add(site)
        origins = getattr(self.crawler, "weibo_cookie_origins", {})
        origin = origins.get(site) or f"none is set: {COOKIE_VARS[site]}"
        bar = "!" * 78
        log.error("\n%s\nLOGIN REQUIRED: %s answered %s with a login wall. The %s cookie (%s) is "
                  "missing or has expired.\nRefresh it as %s describes; the next run reads the new "
                  "one. Data stored so far is kept.\n%s", bar, site, url, site, origin, COOKIE_DOC, bar)

    def _login_required(self) -> None:
        request_close(self.crawler, "login_required")

    def _stopping(self) -> bool:
        """After a login wall or a rate-limit stop: store what was fetched, ask for nothing more."""
        return bool(self.close_reason)

    def _post_dict(self, mid: str, p: parsing.Post, url: str) -> dict[str, Any]:
        return {"mid": mid, "author_key": p.author_key, "text": p.text, "full_text": p.full_text,
                "created_at": p.created_at, "reposts": p.reposts, "comments_count": p.comments_count,
                "likes": p.likes, "source": p.source, "ip_location": p.ip_location,
                "is_retweet": p.is_retweet, "topics": [], "url": url}

    def _comment_item(self, c: parsing.Comment, mid: str, url: str, scraped: datetime,
                      hot: bool | None = None) -> CommentItem:
        return CommentItem(id=c.id, mid=mid, author_key=c.author_key, reply_to_nick=c.reply_to_nick,
                           text=c.text, likes=c.likes, created_at=c.created_at, source=c.source,
                           ip_location=c.ip_location, is_hot=c.is_hot if hot is None else hot,
                           root_id=c.root_id, reply_to_id=c.reply_to_id, image_only=c.image_only,
                           scraped_at=scraped, url=url)

    def _all_stored(self, ids: list[str]) -> bool:
        store = getattr(self.crawler, "weibo_store", None)
        return bool(ids) and store is not None and len(store.known_comment_ids(ids)) == len(set(ids))

    # ----------------------------------------------------------------- crawl

    async def start(self) -> AsyncIterator[scrapy.Request]:
        log.info("hot search %s; up to %d topics, %d search pages each (sources %s), comments from "
                 "%s, up to %d comment pages per post%s", self.hotsearch_url, self.topic_limit,
                 self.max_post_pages, " then ".join(self.sources), self.comments_source,
                 self.max_comment_pages, " (incremental)" if self.incremental else "")
        # dont_filter: a redirect loop back to this URL must end in "max redirections", not
        # in a silent drop by the dupe filter (but crawlers sharing a Redis dupe filter fetch
        # the hot search once between them)
        shared = self.settings.get("SCHEDULER_BACKEND") == "redis"
        yield scrapy.Request(self.hotsearch_url, callback=self.parse_hotsearch, errback=self.on_error,
                             priority=100, headers=self.browser_headers(), meta={"kind": "hotsearch"},
                             dont_filter=not shared)
        for request in self._recrawl_requests():
            yield request

    def _recrawl_requests(self) -> list[scrapy.Request]:
        """Comment pages earlier runs failed to store are fetched again, never skipped as stored."""
        store = getattr(self.crawler, "weibo_store", None)
        if store is None:
            return []
        mids, full = store.recrawl_plan()
        if full and self.incremental:
            log.warning("%s: paging every post's comments in full this time", full)
            self.incremental = False
        if mids:
            log.info("fetching the comments of %d posts again that earlier runs failed to store",
                     len(mids))
            self.crawler.stats.set_value("weibo/recrawled", len(mids))
        return [self.comments_request(mid, {}, recrawl=True) for mid in sorted(mids)]

    def parse_hotsearch(self, response: Response) -> Iterator[Any]:
        self._page_seen("hotsearch")
        seen_at = self.now()
        try:
            topics = parsing.parse_hotsearch(response.text if hasattr(response, "text") else "",
                                             self.topic_limit)
        except RecursionError:
            self._malformed(response, "JSON nested too deeply")
            self.failure = f"hot search at {response.url} is unusable: its JSON is nested too deeply"
            return
        except Exception as e:  # noqa: BLE001 - MalformedPage, a body that is not text, anything
            if not isinstance(e, (parsing.MalformedPage, AttributeError)):
                e = parsing.MalformedPage(f"unreadable answer ({type(e).__name__}: {e})")
            body = getattr(response, "text", "")
            # {"ok": -100} is read here, on the decompressed body (the login-wall middleware
            # sees responses before HttpCompressionMiddleware has inflated them)
            if parsing.is_login_url(response.url) or "登录" in body[:5000] or parsing.is_login_json(body):
                self._walled("weibo.com", response.url)
                self._login_required()
                return
            self._malformed(response, str(e))
            self.failure = f"hot search at {response.url} is unusable: {e}"
            return
        if not topics:
            self.failure = f"hot search at {response.url} listed no topics"
            log.error("%s", self.failure)
            return
        self.crawler.stats.set_value("weibo/hotsearch_topics", len(topics))
        log.info("hot search: %d topics: %s", len(topics), ", ".join(hygiene.topic_word(t.word)[0]
                                                                      or "(unusable)" for t in topics))
        for t in topics:
            # one bad entry costs only itself: the pipeline drops it (counted), nothing is asked for it
            word, _ = hygiene.topic_word(t.word)
            yield TopicItem(word=word or t.word, rank=t.rank, heat=t.heat, category=t.category,
                            label=t.label, seen_at=seen_at)
            first = self._next_source(-1)
            if word and first is not None:
                search_word, _ = hygiene.topic_word(t.search_word or word)
                yield self.search_request(word, search_word or word, first, 1)

    def _next_source(self, after: int) -> int | None:
        """The next search source after index ``after`` whose login has not been refused."""
        for i in range(after + 1, len(self.sources)):
            if SOURCE_COOKIE[self.sources[i]] not in self.walled:
                return i
        return None

    def search_request(self, word: str, search_word: str, source: int, page: int) -> scrapy.Request:
        name = self.sources[source]
        headers = self.browser_headers() if name == "s.weibo.com" else {}
        return scrapy.Request(self.search_url(name, search_word, page), callback=self.parse_search,
                              errback=self.on_error, priority=10, headers=headers,
                              meta={"kind": "search"},
                              cb_kwargs={"word": word, "search_word": search_word, "source": source,
                                         "page": page})

    def _fall_back(self, word: str, search_word: str, source: int, reason: str) -> Iterator[Any]:
        """Record that ``source`` gave nothing usable for ``word`` and try the next one."""
        name = self.sources[source]
        nxt = self._next_source(source)
        self.crawler.stats.inc_value(f"weibo/source_fallbacks/{name}/{reason}")
        if len(self.source_fallbacks) < 200:
            self.source_fallbacks.append({"topic": word, "source": name, "reason": reason,
                                          "next": self.sources[nxt] if nxt is not None else None})
        if nxt is not None and not self._stopping():
            log.info("%s gave %s for topic %s; trying %s", name, reason.replace("_", " "), word,
                     self.sources[nxt])
            yield self.search_request(word, search_word, nxt, 1)
        elif reason == "login_wall" and self._next_source(-1) is None:
            self._login_required()   # every search source refused its cookie

    def parse_search(self, response: Response, word: str, search_word: str, source: int,
                     page: int) -> Iterator[Any]:
        name = self.sources[source]
        self._page_seen(name if name == "s.weibo.com" else "weibo.cn-search")
        if name == "s.weibo.com":
            result = parsing.parse_sweibo_page(response.text, response.url, self.now())
        else:
            result = parsing.parse_search_page(response.text, response.url, self.now())
        if result.kind == "login_wall":
            self._walled(SOURCE_COOKIE[name], response.url)
            yield from self._fall_back(word, search_word, source, "login_wall")
            return
        if result.kind == "malformed":
            self._malformed(response, "search page without posts or a no-results notice")
            return
        if result.kind == "empty":
            if page == 1:
                yield from self._fall_back(word, search_word, source, "no_posts")
            return
        scraped = self.now()
        for p in result.posts:
            yield PostItem(scraped_at=scraped, **dict(self._post_dict(p.mid or "", p, response.url),
                                                      topics=[word], mid=p.mid))
            if p.mid and p.text and p.comments_count > 0 and not self._stopping():
                # a post under two topics is asked for once: the dupe filter drops the second
                yield self.comments_request(p.mid, self._post_dict(p.mid, p, response.url), p.bid)
        if page == 1 and not self._stopping():
            for n in range(2, min(result.page_count, self.max_post_pages) + 1):
                yield self.search_request(word, search_word, source, n)

    # ----------------------------------------------------------------- comments

    def comments_request(self, mid: str, post: dict[str, Any], bid: str | None = None,
                         recrawl: bool = False) -> scrapy.Request:
        """The first comment page of a post. ``recrawl``: an earlier run failed to store this
        post's comments, so its pages are fetched even when they look stored (and again, past
        the dupe filter)."""
        if self.comments_source == "weibo.com":
            return scrapy.Request(self.build_comments_url(mid, 0), callback=self.parse_build_comments,
                                  errback=self.on_error, priority=30 if recrawl else 20,
                                  headers=self.browser_headers(), meta={"kind": "comments"},
                                  cb_kwargs={"mid": mid, "page": 1, "post": post, "recrawl": recrawl})
        return scrapy.Request(self.comment_url(mid, 1, bid), callback=self.parse_comments,
                              errback=self.on_error, priority=30 if recrawl else 20,
                              meta={"kind": "comments"},
                              cb_kwargs={"mid": mid, "page": 1, "bid": bid, "recrawl": recrawl})

    def parse_comments(self, response: Response, mid: str, page: int, bid: str | None = None,
                       post: dict[str, Any] | None = None, seen: list[str] | None = None,
                       hot: list[str] | None = None, recrawl: bool = False) -> Iterator[Any]:
        """A weibo.cn comment page. ``seen``: ids stored from earlier pages of this post in this
        run; ``hot``: the hot comments' ids (they come again further down)."""
        self._page_seen("weibo.cn-comments")
        result = parsing.parse_comment_page(response.text, response.url, self.now(), mid=mid)
        if result.kind == "login_wall":
            self._walled("weibo.cn", response.url)
            self._login_required()
            return
        if result.kind == "malformed":
            self._malformed(response, "comment page without the post, comments or a notice")
            return
        if result.kind == "gone":
            self.crawler.stats.inc_value("weibo/posts_gone")
            log.info("post %s is gone (deleted or hidden): %s", mid, response.url)
            return
        if result.post and result.post.text:
            post = self._post_dict(mid, result.post, response.url)
        if post:
            # every comment page carries its post, so its comments never wait for another
            # process's (or batch's) post row: the foreign key always holds
            yield PostItem(scraped_at=self.now(), **post)
        seen_ids = set(seen or ())
        hot_ids = set(hot or ()) | {c.id for c in result.comments if c.is_hot and c.id}
        regular = [c.id for c in result.comments if c.id and not c.is_hot]
        # a page that only repeats earlier pages (hot comments come again in their place too)
        if regular and all(i in seen_ids or i in hot_ids for i in regular) and \
                any(i in seen_ids for i in regular):
            self.crawler.stats.inc_value("weibo/comment_stops/repeated")
            log.info("comment page %d of %s only repeats comments seen before; not paging further",
                     page, mid)
            return
        stop = None
        if self.incremental and not recrawl and self._all_stored([c.id for c in result.comments if c.id]):
            stop = "incremental"
            self.crawler.stats.inc_value("weibo/incremental_stops")
            log.debug("comment page %d of %s already stored; not paging further", page, mid)
        scraped = self.now()
        for c in result.comments:
            yield self._comment_item(c, mid, response.url, scraped, hot=c.is_hot or c.id in hot_ids)
        last = min(result.page_count, self.max_comment_pages, parsing.COMMENT_PAGE_CAP)
        if not result.comments:
            stop = stop or "empty"
        elif page >= last:
            stop = stop or ("cap" if result.page_count > last else "last_page")
        if stop and stop != "last_page":
            self.crawler.stats.inc_value(f"weibo/comment_stops/{stop}")
        if not stop and not self._stopping():
            yield scrapy.Request(self.comment_url(mid, page + 1, bid), callback=self.parse_comments,
                                 errback=self.on_error, priority=20 + page, meta={"kind": "comments"},
                                 cb_kwargs={"mid": mid, "page": page + 1, "bid": bid, "post": post,
                                            "seen": sorted(seen_ids | set(regular)),
                                            "hot": sorted(hot_ids), "recrawl": recrawl})

    def parse_build_comments(self, response: Response, mid: str, page: int, post: dict[str, Any],
                             max_id: int = 0, root: str | None = None,
                             recrawl: bool = False) -> Iterator[Any]:
        """A page of the weibo.com comment JSON: first-level comments, or (``root``) the
        replies of one comment."""
        self._page_seen("weibo.com-replies" if root else "weibo.com-comments")
        result = parsing.parse_build_comments(response.text, mid)
        if result.kind == "login_wall":
            self._walled("weibo.com", response.url)
            self._login_required()
            return
        if result.kind == "malformed":
            self._malformed(response, "comment JSON without data")
            return
        if post:
            yield PostItem(scraped_at=self.now(), **post)
        ids = [c.id for c in result.comments if c.id]
        stop = self.incremental and not root and not recrawl and self._all_stored(ids)
        if stop:
            self.crawler.stats.inc_value("weibo/incremental_stops")
        scraped = self.now()
        for c in result.comments:
            yield self._comment_item(c, mid, response.url, scraped)
            if (not root and c.id and c.replies and c.root_id is None and self.max_reply_pages > 0
                    and not self._stopping()):
                yield scrapy.Request(self.build_comments_url(c.id, 0, replies=True),
                                     callback=self.parse_build_comments, errback=self.on_error,
                                     priority=30, headers=self.browser_headers(),
                                     meta={"kind": "comments"},
                                     cb_kwargs={"mid": mid, "page": 1, "post": post, "root": c.id})
        cap = self.max_reply_pages if root else self.max_comment_pages
        if result.max_id and result.comments and page < cap and not stop and not self._stopping():
            yield scrapy.Request(self.build_comments_url(root or mid, result.max_id, replies=bool(root)),
                                 callback=self.parse_build_comments, errback=self.on_error,
                                 priority=20 + page, headers=self.browser_headers(),
                                 meta={"kind": "comments"},
                                 cb_kwargs={"mid": mid, "page": page + 1, "post": post,
                                            "max_id": result.max_id, "root": root, "recrawl": recrawl})

    # ----------------------------------------------------------------- failures

    def on_error(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        kind = request.meta.get("kind")
        if failure.check(LoginWall):
            wall = failure.value
            self._walled(wall.site, wall.url)
            if kind == "search" and not self._stopping():
                cb = request.cb_kwargs
                yield from self._fall_back(cb["word"], cb["search_word"], cb["source"], "login_wall")
            else:
                self._login_required()
            return
        hotsearch = kind == "hotsearch"
        if failure.check(IgnoreRequest) and not failure.check(HttpError) and (
                self._stopping() or not hotsearch):
            return  # a rate-limit stop, already counted and logged
        self.crawler.stats.inc_value("weibo/errors")
        reason = failure.getErrorMessage() or (failure.type.__name__ if failure.type else "error")
        if failure.check(IgnoreRequest) and "redirect" in reason.lower():
            reason = f"redirect loop ({reason})"
        log.error("request failed after retries: %s (%s)", request.url, reason)
        if hotsearch:
            self.failure = f"hot search {request.url} failed: {reason}"
        elif kind == "comments" and request.cb_kwargs.get("mid"):
            self.refetch_mids.add(request.cb_kwargs["mid"])
