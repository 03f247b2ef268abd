"""hot_topics: hot-search list -> posts per topic (weibo.cn search) -> comments per post.

Run with ``cd Weibo_Spider && scrapy crawl hot_topics`` (settings from the
project config, see weibo/settings.py). Pages are read by the pure functions
in weibo.parsing; this module only decides what to fetch next and what to do
with login walls, malformed pages and failed requests.
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
from weibo.middlewares import request_close
from weibo_mh.db import SHANGHAI

log = logging.getLogger(__name__)


class HotTopicsSpider(scrapy.Spider):
    name = "hot_topics"
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
        spider.topic_limit = s.getint("TOPIC_LIMIT", 20)
        spider.max_post_pages = max(1, s.getint("MAX_POST_PAGES", 3))
        spider.max_comment_pages = max(1, s.getint("MAX_COMMENT_PAGES", 50))
        spider.incremental = s.getbool("INCREMENTAL", True)
        spider.failure = None          # a reason the run could not do its work
        spider.close_reason = None     # set by request_close (login_required, rate_limited)
        spider.malformed_urls = []
        spider.refetch_mids = set()    # posts whose comment pages failed: the next crawl asks again
        return spider

    # ----------------------------------------------------------------- helpers

    @staticmethod
    def now() -> datetime:
        return datetime.now(SHANGHAI)

    def search_url(self, word: str, page: int) -> str:
        return (f"{self.base}/search/mblog?hideSearchFrame=&keyword={quote('#' + word + '#', safe='')}"
                f"&page={page}")

    def comment_url(self, mid: str, page: int) -> str:
        return f"{self.base}/comment/{quote(mid, safe='')}?page={page}"

    def _page_seen(self) -> None:
        self.crawler.stats.inc_value("weibo/pages")

    def _malformed(self, response: Response, why: str) -> None:
        self.crawler.stats.inc_value("weibo/malformed")
        if len(self.malformed_urls) < 100:
            self.malformed_urls.append(response.url)
        log.warning("malformed page (%s), skipped: %s", why, response.url)

    def _login_wall(self, response: Response) -> None:
        self.crawler.stats.inc_value("weibo/login_walls")
        log.error("login wall at %s: the page asks to log in instead of showing content; the cookie "
                  "is missing or expired (refresh WEIBO_COOKIE / WEIBO_COOKIE_FILE). Stopping; stored "
                  "data is kept.", response.url)
        request_close(self.crawler, "login_required")

    def _stopping(self) -> bool:
        """After a login wall or a rate-limit stop: store what was fetched, ask for nothing more."""
        return bool(self.close_reason)

    # ----------------------------------------------------------------- crawl

    async def start(self) -> AsyncIterator[scrapy.Request]:
        log.info("hot search %s; up to %d topics, %d search pages each, %d comment pages per post%s",
                 self.hotsearch_url, self.topic_limit, self.max_post_pages, self.max_comment_pages,
                 " (incremental)" if self.incremental else "")
        # dont_filter: a redirect loop back to this URL must end in "max redirections", not
        # in a silent drop by the dupe filter (but crawlers sharing a Redis dupe filter fetch
        # the hot search once between them)
        shared = self.settings.get("SCHEDULER_BACKEND") == "redis"
        yield scrapy.Request(self.hotsearch_url, callback=self.parse_hotsearch, errback=self.on_error,
                             priority=100, meta={"kind": "hotsearch"}, dont_filter=not shared)
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
        return [scrapy.Request(self.comment_url(mid, 1), callback=self.parse_comments,
                               errback=self.on_error, priority=30,
                               meta={"mid": mid, "page": 1, "recrawl": True}) for mid in sorted(mids)]

    def parse_hotsearch(self, response: Response) -> Iterator[Any]:
        self._page_seen()
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
            if parsing.is_login_url(response.url) or "登录" in body[:5000]:
                self._login_wall(response)
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
                            seen_at=seen_at)
            if word:
                yield scrapy.Request(self.search_url(word, 1), callback=self.parse_search,
                                     errback=self.on_error, priority=10, meta={"topic": word, "page": 1})

    def parse_search(self, response: Response) -> Iterator[Any]:
        self._page_seen()
        word, page = response.meta["topic"], response.meta["page"]
        result = parsing.parse_search_page(response.text, response.url, self.now())
        if result.kind == "login_wall":
            self._login_wall(response)
            return
        if result.kind == "malformed":
            self._malformed(response, "search page without posts or a no-results notice")
            return
        scraped = self.now()
        for p in result.posts:
            yield PostItem(mid=p.mid, author_key=p.author_key, text=p.text, full_text=p.full_text,
                           created_at=p.created_at, reposts=p.reposts, comments_count=p.comments_count,
                           likes=p.likes, source=p.source, topics=[word], scraped_at=scraped,
                           url=response.url)
            if p.mid and p.text and p.comments_count > 0 and not self._stopping():
                # a post under two topics is asked for once: the dupe filter drops the second
                yield scrapy.Request(self.comment_url(p.mid, 1), callback=self.parse_comments,
                                     errback=self.on_error, priority=20, meta={"mid": p.mid, "page": 1})
        if page == 1 and not self._stopping():
            for n in range(2, min(result.page_count, self.max_post_pages) + 1):
                yield scrapy.Request(self.search_url(word, n), callback=self.parse_search,
                                     errback=self.on_error, priority=10, meta={"topic": word, "page": n})

    def parse_comments(self, response: Response) -> Iterator[Any]:
        self._page_seen()
        mid, page = response.meta["mid"], response.meta["page"]
        result = parsing.parse_comment_page(response.text, response.url, self.now())
        if result.kind == "login_wall":
            self._login_wall(response)
            return
        if result.kind == "malformed":
            self._malformed(response, "comment page without the post, comments or a notice")
            return
        if result.kind == "gone":
            self.crawler.stats.inc_value("weibo/posts_gone")
            log.info("post %s is gone (deleted or hidden): %s", mid, response.url)
            return
        post: dict[str, Any] | None = response.meta.get("post")
        if result.post and result.post.text:
            p = result.post
            post = {"mid": mid, "author_key": p.author_key, "text": p.text, "full_text": p.full_text,
                    "created_at": p.created_at, "reposts": p.reposts, "comments_count": p.comments_count,
                    "likes": p.likes, "source": p.source, "topics": [], "url": response.url}
        if post:
            # every comment page carries its post, so its comments never wait for another
            # process's (or batch's) post row: the foreign key always holds
            yield PostItem(scraped_at=self.now(), **post)
        ids = [c.id for c in result.comments if c.id]
        stop = False
        recrawl = bool(response.meta.get("recrawl"))
        if self.incremental and ids and not recrawl:
            store = getattr(self.crawler, "weibo_store", None)
            if store is not None and len(store.known_comment_ids(ids)) == len(set(ids)):
                stop = True
                self.crawler.stats.inc_value("weibo/incremental_stops")
                log.debug("comment page %d of %s already stored; not paging further", page, mid)
        scraped = self.now()
        for c in result.comments:
            yield CommentItem(id=c.id, mid=mid, author_key=c.author_key, reply_to_nick=c.reply_to_nick,
                              text=c.text, likes=c.likes, created_at=c.created_at, source=c.source,
                              scraped_at=scraped, url=response.url)
        last = min(result.page_count, self.max_comment_pages)
        if not stop and page < last and result.comments and not self._stopping():
            yield scrapy.Request(self.comment_url(mid, page + 1), callback=self.parse_comments,
                                 errback=self.on_error, priority=20 + page,
                                 meta={"mid": mid, "page": page + 1, "post": post, "recrawl": recrawl})

    def on_error(self, failure: Failure) -> None:
        request = failure.request  # type: ignore[attr-defined]
        hotsearch = request.meta.get("kind") == "hotsearch"
        if failure.check(IgnoreRequest) and not failure.check(HttpError) and (
                self._stopping() or not hotsearch):
            return  # a login wall or a rate-limit stop, already counted and logged
        self.crawler.stats.inc_value("weibo/errors")
        reason = failure.getErrorMessage() or failure.type.__name__
        if failure.check(IgnoreRequest) and "redirect" in reason.lower():
            reason = f"redirect loop ({reason})"
        log.error("request failed after retries: %s (%s)", request.url, reason)
        if hotsearch:
            self.failure = f"hot search {request.url} failed: {reason}"
        elif request.meta.get("mid"):
            self.refetch_mids.add(request.meta["mid"])
