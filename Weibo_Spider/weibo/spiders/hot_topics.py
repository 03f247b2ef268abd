"""hot_topics: hot-search list -> posts per topic (search sources in order) -> comments per post.

Run with ``cd Weibo_Spider && scrapy crawl hot_topics`` (settings from the
project config, see weibo/settings.py). Pages are read by the pure functions
in weibo.parsing; this module only decides what to fetch next and what to do
with login walls, empty answers, malformed pages and failed requests.

- Search: ``SEARCH_SOURCES`` in order (default s.weibo.com, then weibo.cn). A source
  that answers a topic with a login wall or with no posts, or fails (weibo.sources:
  network errors and 5xx after retries, 403/404), hands the topic to the next one; every
  hand-over is recorded (crawl_runs.stats ``source_fallbacks``). A source whose cookie
  was refused is not asked again in this run. A run in which no topic could be searched
  is ``failed``, naming the causes; topics that could not be searched are counted
  (``search_failures``) and named in the closing line.
- Comments: ``COMMENTS_SOURCE``, one source or several in order: weibo.cn (pages; hot
  comments flagged, paging stops at the cap, the empty notice or a page of repeated ids),
  weibo.com (buildComments JSON with second-level replies) or m.weibo.cn (hotflow JSON,
  replies inline). A post whose comments fail on one source, or whose source refuses its
  cookie, goes to the next (``comment_fallbacks``). ``comments_request`` and the parse
  callbacks take everything from ``cb_kwargs``, so another spider can call them.
- The spider's own data travels between callbacks in ``cb_kwargs``; ``meta`` holds only
  what components read (``kind``).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import AsyncIterator, Generator, Iterator
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
from weibo.sources import (
    COOKIE_VARS,
    MOVE_ON_STATUSES,
    SOURCE_COOKIE,
    classify_failure,
    next_source,
)
from weibo_mh.db import SHANGHAI

log = logging.getLogger(__name__)


class HotTopicsSpider(scrapy.Spider):
    name = "hot_topics"
    # set in from_crawler, from the settings (their defaults live in weibo_mh.config.SPEC)
    hotsearch_url: str
    base: str
    s_base: str
    com_base: str
    m_base: str
    sources: list[str]
    comment_sources: list[str]
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
    comment_fallbacks: list[dict[str, Any]]
    refetch_mids: set[str]  # posts whose comment pages failed: recorded for the next crawl
    topics_started: set[str]    # topics whose search was asked for
    topics_answered: set[str]   # topics some search source answered (posts, none, or a bad page)
    topics_failed: set[str]     # topics every search source failed for
    search_causes: list[tuple[str, str]]  # (topic, why its search failed on one source)
    private_use: int            # icon-font characters removed from texts

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
        spider.m_base = s.get("M_WEIBO_BASE").rstrip("/")
        spider.sources = list(s.getlist("SEARCH_SOURCES"))
        spider.comment_sources = list(s.getlist("COMMENTS_SOURCE"))
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
        spider.source_fallbacks = []   # {topic, source, reason, next[, cause]}
        spider.comment_fallbacks = []  # {mid, source, reason, next[, cause]}
        spider.refetch_mids = set()    # posts whose comment pages failed: the next crawl asks again
        spider.topics_started, spider.topics_answered, spider.topics_failed = set(), set(), set()
        spider.search_causes = []
        spider.private_use = 0
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

    def hotflow_url(self, mid: str, max_id: int = 0, max_id_type: int = 0) -> str:
        """m.weibo.cn's comment JSON (as MediaCrawler asks for it: id and mid, then the cursor)."""
        url = f"{self.m_base}/comments/hotflow?id={mid}&mid={mid}"
        return f"{url}&max_id={max_id}&max_id_type={max_id_type}" if max_id else f"{url}&max_id_type=0"

    def hotflow_headers(self, mid: str) -> dict[str, str]:
        """What m.weibo.cn's own page sends with its comment requests."""
        return {"Referer": f"{self.m_base}/detail/{mid}", "MWeibo-Pwa": "1",
                "X-Requested-With": "XMLHttpRequest", "Accept": "application/json, text/plain, */*"}

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

    def _count_private_use(self, n: int) -> None:
        if n:
            self.private_use += n
            self.crawler.stats.inc_value("weibo/private_use_removed", n)

    def _post_dict(self, mid: str, p: parsing.Post, url: str) -> dict[str, Any]:
        return {"mid": mid, "author_key": p.author_key, "text": p.text, "full_text": p.full_text,
                "created_at": p.created_at, "reposts": p.reposts, "comments_count": p.comments_count,
                "likes": p.likes, "source": p.source, "ip_location": p.ip_location,
                "is_retweet": p.is_retweet, "topics": [], "url": url}

    def _comment_item(self, c: parsing.Comment, mid: str, url: str, scraped: datetime,
                      hot: bool | None = None) -> CommentItem:
        self._count_private_use(c.private_use)
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
                 self.max_post_pages, " then ".join(self.sources), " then ".join(self.comment_sources),
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
        return [r for r in (self.comments_request(mid, {}, recrawl=True) for mid in sorted(mids)) if r]

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
                self.topics_started.add(word)
                yield self.search_request(word, search_word or word, first, 1)

    def _next_source(self, after: int) -> int | None:
        """The next search source after index ``after`` whose login has not been refused."""
        return next_source(self.sources, after, self.walled)

    def search_request(self, word: str, search_word: str, source: int, page: int) -> scrapy.Request:
        name = self.sources[source]
        headers = self.browser_headers() if name == "s.weibo.com" else {}
        return scrapy.Request(self.search_url(name, search_word, page), callback=self.parse_search,
                              errback=self.on_error, priority=10, headers=headers,
                              meta=self.search_meta("search", source),
                              cb_kwargs={"word": word, "search_word": search_word, "source": source,
                                         "page": page})

    def search_meta(self, kind: str, source: int) -> dict[str, Any]:
        """A search request's meta: a 403/404 hands the search to the next source, not a block,
        but only when a next source exists; on the last one it is a block (back-off, then the
        rate_limited stop), as for comment requests."""
        meta: dict[str, Any] = {"kind": kind}
        if self._next_source(source) is not None:
            meta["move_on_statuses"] = MOVE_ON_STATUSES
        return meta

    def _fall_back(self, word: str, search_word: str, source: int, reason: str,
                   cause: str | None = None) -> Iterator[Any]:
        """Record that ``source`` gave nothing usable for ``word`` and try the next one.

        ``cause``: what failed, for a failed request ("DNS lookup failed for s.weibo.com").
        """
        name = self.sources[source]
        nxt = self._next_source(source)
        self.crawler.stats.inc_value(f"weibo/source_fallbacks/{name}/{reason}")
        if reason == "login_wall":
            cause = f"login wall at {name}"
        if cause:
            self.search_causes.append((word, cause))
        if len(self.source_fallbacks) < 200:
            entry = {"topic": word, "source": name, "reason": reason,
                     "next": self.sources[nxt] if nxt is not None else None}
            self.source_fallbacks.append(dict(entry, cause=cause) if cause else entry)
        if nxt is not None and not self._stopping():
            if cause:
                log.info("%s failed for topic %s (%s); trying %s", name, word, cause, self.sources[nxt])
            else:
                log.info("%s gave %s for topic %s; trying %s", name, reason.replace("_", " "), word,
                         self.sources[nxt])
            yield self.search_request(word, search_word, nxt, 1)
            return
        if reason == "login_wall" and self._next_source(-1) is None:
            self._login_required()   # every search source refused its cookie
        if cause:
            self._topic_failed(word, cause)

    def _topic_answered(self, word: str) -> None:
        self.topics_answered.add(word)
        self.topics_failed.discard(word)

    def _topic_failed(self, word: str, cause: str) -> None:
        """No search source could answer for ``word``. Once every topic has failed so, the run
        has failed, with the causes named."""
        if word in self.topics_answered:
            return
        self.topics_failed.add(word)
        log.error("topic %s could not be searched on any source (last: %s)", word, cause)
        # (with a shared Redis queue, topics another crawler listed can fail here: not ours to judge)
        if self.topics_started and not self.topics_answered and self.topics_started <= self.topics_failed:
            self.failure = (f"0 of {len(self.topics_started)} topics could be searched: "
                            f"{self._causes(self.topics_failed)}")
            log.error("%s", self.failure)

    def _causes(self, topics: set[str] | None = None) -> str:
        """"DNS lookup failed for s.weibo.com (3), …": the failures of ``topics`` (default all)."""
        return ", ".join(f"{cause} ({n})" for cause, n in self._cause_counts(topics).most_common())

    def _cause_counts(self, topics: set[str] | None = None) -> Counter[str]:
        return Counter(c for w, c in self.search_causes if topics is None or w in topics)

    def run_summary(self) -> tuple[dict[str, Any], str]:
        """What the run's stats and closing line add: search failures, comment fallbacks and
        removed icon-font characters. Read by the database pipeline at the end."""
        failed = len(self.topics_failed)
        stats: dict[str, Any] = {
            "search_failures": {"topics": len(self.topics_started), "failed": failed,
                                "failed_topics": sorted(self.topics_failed)[:100],
                                "causes": dict(self._cause_counts().most_common())},
            "comment_fallbacks": self.comment_fallbacks[:200],
            "private_use_removed": self.private_use,
            "posts_gone": self.crawler.stats.get_value("weibo/posts_gone", 0),
        }
        note = ""
        if failed:
            note = (f"; {failed} of {len(self.topics_started)} topics could not be searched "
                    f"({self._causes(self.topics_failed)})")
        return stats, note

    def parse_search(self, response: Response, word: str, search_word: str, source: int,
                     page: int) -> Iterator[Any]:
        name = self.sources[source]
        self._page_seen(name if name == "s.weibo.com" else "weibo.cn-search")
        if name == "s.weibo.com":
            result = parsing.parse_sweibo_page(response.text, response.url, self.now())
        else:
            result = parsing.parse_search_page(response.text, response.url, self.now())
        if page == 1 and result.kind != "login_wall":
            self._topic_answered(word)   # posts, none, or a page we could not read: not a failure
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
            self._count_private_use(p.private_use)
            yield PostItem(scraped_at=scraped, **dict(self._post_dict(p.mid or "", p, response.url),
                                                      topics=[word], mid=p.mid))
            if p.mid and p.text and p.comments_count > 0 and not self._stopping():
                # a post under two topics is asked for once: the dupe filter drops the second
                request = self.comments_request(p.mid, self._post_dict(p.mid, p, response.url), p.bid)
                if request is not None:
                    yield request
        if page == 1 and not self._stopping():
            for n in range(2, min(result.page_count, self.max_post_pages) + 1):
                yield self.search_request(word, search_word, source, n)

    # ----------------------------------------------------------------- comments

    def _next_comment_source(self, after: int) -> int | None:
        return next_source(self.comment_sources, after, self.walled)

    def comments_request(self, mid: str, post: dict[str, Any], bid: str | None = None,
                         recrawl: bool = False, source: int | None = None) -> scrapy.Request | None:
        """The first comment page of a post on comment source ``source`` (default: the first
        whose login has not been refused; None when every one has been). ``recrawl``: an
        earlier run failed to store this post's comments, so its pages are fetched even when
        they look stored (and again, past the dupe filter)."""
        at = self._next_comment_source(-1) if source is None else source
        if at is None:
            return None
        name = self.comment_sources[at]
        kw = {"mid": mid, "page": 1, "post": post, "bid": bid, "recrawl": recrawl, "source": at}
        priority = 30 if recrawl else 20
        again = source is not None   # a fallback asks for a URL the dupe filter may have seen
        if name == "weibo.com":
            return self.comment_page_request(self.build_comments_url(mid, 0), self.parse_build_comments,
                                             kw, priority, self.browser_headers(), again)
        if name == "m.weibo.cn":
            return self.comment_page_request(self.hotflow_url(mid), self.parse_hotflow, kw, priority,
                                             self.hotflow_headers(mid), again)
        return self.comment_page_request(self.comment_url(mid, 1, bid), self.parse_comments, kw,
                                         priority, None, again)

    def comment_page_request(self, url: str, callback: Any, cb: dict[str, Any], priority: int,
                             headers: dict[str, str] | None = None,
                             dont_filter: bool = False) -> scrapy.Request:
        """A comment page (or reply page) request; ``cb`` carries everything a fallback needs."""
        meta: dict[str, Any] = {"kind": "comments"}
        if self._next_comment_source(cb.get("source", 0)) is not None:
            meta["move_on_statuses"] = MOVE_ON_STATUSES   # a 403/404 here hands over, not a block
        return scrapy.Request(url, callback=callback, errback=self.on_error, priority=priority,
                              headers=headers or {}, meta=meta, cb_kwargs=cb, dont_filter=dont_filter)

    def _comments_fall_back(self, cb: dict[str, Any], reason: str, cause: str) -> Iterator[Any]:
        """A post's comments failed on one source (``cb``: the failed request's cb_kwargs): ask the
        next comment source from its first page, or stop as login_required, or leave the post
        for the next crawl."""
        mid, at = cb.get("mid"), cb.get("source", 0)
        if not mid:
            return
        name = self.comment_sources[at]
        nxt = self._next_comment_source(at)
        self.crawler.stats.inc_value(f"weibo/comment_fallbacks/{name}/{reason}")
        if len(self.comment_fallbacks) < 200:
            self.comment_fallbacks.append({"mid": mid, "source": name, "reason": reason, "cause": cause,
                                           "next": self.comment_sources[nxt] if nxt is not None else None})
        if nxt is not None and not self._stopping():
            log.info("%s: %s for the comments of %s; trying %s", name, cause, mid, self.comment_sources[nxt])
            request = self.comments_retry(cb, nxt)
            if request is not None:
                yield request
            return
        if reason == "login_wall":
            self._login_required()
        else:
            self.refetch_mids.add(mid)

    def comments_retry(self, cb: dict[str, Any], source: int) -> scrapy.Request | None:
        """The first comment page, on comment source ``source``, of the post a failed request
        (``cb``: its cb_kwargs) was for. Another spider that reads comments its own way (watch)
        overrides this and keeps the rest of the fallback."""
        return self.comments_request(cb["mid"], cb.get("post") or {}, cb.get("bid"),
                                     bool(cb.get("recrawl")), source=source)

    def parse_comments(self, response: Response, mid: str, page: int, bid: str | None = None,
                       post: dict[str, Any] | None = None, seen: list[str] | None = None,
                       hot: list[str] | None = None, recrawl: bool = False,
                       source: int = 0) -> Iterator[Any]:
        """A weibo.cn comment page. ``seen``: ids stored from earlier pages of this post in this
        run; ``hot``: the hot comments' ids (they come again further down)."""
        self._page_seen("weibo.cn-comments")
        result = parsing.parse_comment_page(response.text, response.url, self.now(), mid=mid)
        if result.kind == "login_wall":
            self._walled("weibo.cn", response.url)
            yield from self._comments_fall_back(_cb_kwargs(response), "login_wall",
                                                "login wall at weibo.cn")
            return
        if result.kind == "malformed":
            self._malformed(response, "comment page without the post, comments or a notice")
            return
        if result.kind == "gone":
            self.crawler.stats.inc_value("weibo/posts_gone")
            log.info("post %s is gone (deleted or hidden): %s", mid, response.url)
            return
        if result.post and result.post.text:
            if page == 1:
                self._count_private_use(result.post.private_use)
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
            yield self.comment_page_request(
                self.comment_url(mid, page + 1, bid), self.parse_comments,
                {"mid": mid, "page": page + 1, "bid": bid, "post": post, "seen": sorted(seen_ids | set(regular)),
                 "hot": sorted(hot_ids), "recrawl": recrawl, "source": source}, 20 + page)

    def _json_comment_page(self, response: Response, result: parsing.CommentPage,
                           cb: dict[str, Any]) -> Generator[Any, None, bool]:
        """What the weibo.com and m.weibo.cn comment JSON pages share: the login wall, a bad
        answer, the post, the comments and the incremental stop. Its return value (``yield
        from``) says whether to ask for the next page."""
        if result.kind == "login_wall":
            site = SOURCE_COOKIE[self.comment_sources[cb.get("source", 0)]]
            self._walled(site, response.url)
            yield from self._comments_fall_back(cb, "login_wall", f"login wall at {site}")
            return False
        if result.kind == "malformed":
            self._malformed(response, "comment JSON without data")
            return False
        if result.kind == "gone":
            self.crawler.stats.inc_value("weibo/posts_gone")
            log.info("post %s is gone (deleted or hidden): %s", cb["mid"], response.url)
            return False
        if cb.get("post"):
            yield PostItem(scraped_at=self.now(), **cb["post"])
        ids = [c.id for c in result.comments if c.id]
        stop = self.incremental and not cb.get("root") and not cb.get("recrawl") and self._all_stored(ids)
        if stop:
            self.crawler.stats.inc_value("weibo/incremental_stops")
        elif result.notice and cb.get("page") == 1 and not cb.get("root"):
            self.crawler.stats.inc_value("weibo/comment_stops/empty")
        scraped = self.now()
        for c in result.comments:
            yield self._comment_item(c, cb["mid"], response.url, scraped)
        cap = self.max_reply_pages if cb.get("root") else self.max_comment_pages
        more = bool(result.max_id and result.comments) and not stop and not self._stopping()
        if more and cb["page"] >= cap:
            self.crawler.stats.inc_value("weibo/comment_stops/cap")
        return more and cb["page"] < cap

    def parse_build_comments(self, response: Response, mid: str, page: int, post: dict[str, Any],
                             max_id: int = 0, root: str | None = None, recrawl: bool = False,
                             bid: str | None = None, source: int = 0) -> Iterator[Any]:
        """A page of the weibo.com comment JSON: first-level comments, or (``root``) the
        replies of one comment."""
        self._page_seen("weibo.com-replies" if root else "weibo.com-comments")
        result = parsing.parse_build_comments(response.text, mid)
        cb = _cb_kwargs(response)
        more = yield from self._json_comment_page(response, result, cb)
        if result.kind != "ok":
            return
        for c in result.comments:
            if (not root and c.id and c.replies and c.root_id is None and self.max_reply_pages > 0
                    and not self._stopping()):
                yield self.comment_page_request(self.build_comments_url(c.id, 0, replies=True),
                                                self.parse_build_comments,
                                                dict(cb, page=1, root=c.id, max_id=0, recrawl=False), 30,
                                                self.browser_headers())
        if more:
            yield self.comment_page_request(
                self.build_comments_url(root or mid, result.max_id, replies=bool(root)),
                self.parse_build_comments, dict(cb, page=page + 1, max_id=result.max_id), 20 + page,
                self.browser_headers())

    def parse_hotflow(self, response: Response, mid: str, page: int, post: dict[str, Any],
                      max_id: int = 0, recrawl: bool = False, bid: str | None = None,
                      source: int = 0) -> Iterator[Any]:
        """A page of m.weibo.cn's hotflow JSON: first-level comments with their replies inline;
        the next page is asked for with the answer's max_id and max_id_type until max_id is 0."""
        self._page_seen("m.weibo.cn-comments")
        result = parsing.parse_hotflow(response.text, mid)
        cb = _cb_kwargs(response)
        more = yield from self._json_comment_page(response, result, cb)
        if more:
            yield self.comment_page_request(
                self.hotflow_url(mid, result.max_id, result.max_id_type), self.parse_hotflow,
                dict(cb, page=page + 1, max_id=result.max_id), 20 + page, self.hotflow_headers(mid))

    # ----------------------------------------------------------------- failures

    def on_error(self, failure: Failure) -> Iterator[Any]:
        request = failure.request  # type: ignore[attr-defined]
        kind = request.meta.get("kind")
        cb = request.cb_kwargs
        if failure.check(LoginWall):
            wall = failure.value
            self._walled(wall.site, wall.url)
            if kind == "search" and not self._stopping():
                yield from self._fall_back(cb["word"], cb["search_word"], cb["source"], "login_wall")
            elif kind == "comments" and not self._stopping():
                yield from self._comments_fall_back(cb, "login_wall", f"login wall at {wall.site}")
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
        moved = classify_failure(failure, request.url)
        log.error("request failed: %s (%s)", request.url, moved[1] if moved else reason)
        if hotsearch:
            self.failure = f"hot search {request.url} failed: {reason}"
        elif kind == "search" and moved:
            code, cause = moved
            self.crawler.stats.inc_value(f"weibo/search_errors/{code}")
            if cb.get("page") == 1:
                yield from self._fall_back(cb["word"], cb["search_word"], cb["source"], code, cause)
        elif kind == "comments" and cb.get("mid"):
            if moved:
                yield from self._comments_fall_back(cb, *moved)
            else:
                self.refetch_mids.add(cb["mid"])


def _cb_kwargs(response: Response) -> dict[str, Any]:
    """The keyword arguments a response's callback was called with (for its fallback)."""
    return dict(response.request.cb_kwargs) if response.request is not None else {}
