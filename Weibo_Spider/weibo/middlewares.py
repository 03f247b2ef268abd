"""Downloader middlewares: the cookie, login walls, and rate-limit back-off.

- CookieMiddleware sends the Cookie header from WEIBO_COOKIE / WEIBO_COOKIE_FILE /
  spider.cookie_file to the configured Weibo hosts only, and removes it from the
  request again when the answer arrives, so retried or queued copies (Redis!)
  never carry it. It is never logged.
- LoginWallMiddleware stops the crawl as ``login_required`` on a redirect to a
  login page; the spider does the same for 200 pages that ask to log in.
- BanMiddleware backs off exponentially on 418/403/429, pausing the whole crawl,
  and stops it as ``rate_limited`` after BAN_LIMIT such answers in a row.
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import task

from weibo.parsing import is_login_url
from weibo_mh.config import cookie_from, load_config

log = logging.getLogger(__name__)


def request_close(crawler: Crawler, reason: str) -> None:
    """Close the spider once with ``reason``; data already yielded is still stored."""
    spider = crawler.spider
    if spider is None or getattr(spider, "close_reason", None):
        return
    spider.close_reason = reason
    if crawler.engine is not None:
        deferred_from_coro(crawler.engine.close_spider_async(reason=reason))


def cookie_origin(cfg: Any, env: dict[str, str] | None = None) -> str:
    env = os.environ if env is None else env
    if env.get("WEIBO_COOKIE"):
        return "WEIBO_COOKIE"
    if env.get("WEIBO_COOKIE_FILE"):
        return "WEIBO_COOKIE_FILE"
    return "spider.cookie_file" if cfg.spider.cookie_file else ""


class CookieMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        cfg = load_config(s.get("WEIBO_MH_CONFIG") or None)
        self._cookie = cookie_from(cfg)
        self.hosts = {urlsplit(u).hostname for u in (s.get("WEIBO_CN_BASE"), s.get("HOTSEARCH_URL")) if u}
        if self._cookie:
            log.info("sending a Cookie header (%d characters, from %s) to %s", len(self._cookie),
                     cookie_origin(cfg), ", ".join(sorted(h for h in self.hosts if h)))
        else:
            log.warning("no cookie configured (WEIBO_COOKIE / WEIBO_COOKIE_FILE): the real weibo.cn "
                        "will answer with a login wall")

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CookieMiddleware:
        return cls(crawler)

    def __repr__(self) -> str:  # never show the cookie
        return f"CookieMiddleware(hosts={sorted(h for h in self.hosts if h)})"

    def process_request(self, request: Request) -> None:
        if self._cookie and urlsplit(request.url).hostname in self.hosts:
            request.headers["Cookie"] = self._cookie

    def process_response(self, request: Request, response: Response) -> Response:
        request.headers.pop("Cookie", None)
        return response

    def process_exception(self, request: Request, exception: BaseException) -> None:
        request.headers.pop("Cookie", None)


class LoginWallMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> LoginWallMiddleware:
        return cls(crawler)

    def process_response(self, request: Request, response: Response) -> Response:
        target = None
        if 300 <= response.status < 400 and b"Location" in response.headers:
            location = response.headers[b"Location"].decode("latin-1")
            target = urljoin(request.url, location)
        if (target and is_login_url(target)) or is_login_url(response.url):
            self.crawler.stats.inc_value("weibo/login_walls")
            log.error("login wall at %s (sent to %s): the cookie is missing or expired; refresh "
                      "WEIBO_COOKIE / WEIBO_COOKIE_FILE. Stopping; stored data is kept.",
                      request.url, target or response.url)
            request_close(self.crawler, "login_required")
            raise IgnoreRequest(f"login wall at {request.url}")
        return response


class BanMiddleware:
    """Exponential back-off on 418/403/429 for the whole crawl; stop after BAN_LIMIT in a row.

    "In a row" means: no request sent after the latest such answer has succeeded since.
    Answers to requests that were already under way do not reset the count.
    """

    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.codes = {int(c) for c in s.getlist("BAN_HTTP_CODES", [418, 403, 429])}
        self.limit = max(1, s.getint("BAN_LIMIT", 5))
        self.base = s.getfloat("BAN_BACKOFF_SECONDS", 30.0)
        self.longest = s.getfloat("BAN_BACKOFF_MAX_SECONDS", 600.0)
        self.in_a_row = 0
        self.epoch = 0           # how many ban answers so far
        self.resume_at = 0.0     # monotonic time before which no request leaves

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> BanMiddleware:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        wait = self.resume_at - time.monotonic()
        if wait > 0:
            await _sleep(wait)
        request.meta["ban_epoch"] = self.epoch

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status not in self.codes:
            if request.meta.get("ban_epoch", self.epoch) == self.epoch:
                self.in_a_row = 0
            return response
        if getattr(self.crawler.spider, "close_reason", None):
            raise IgnoreRequest(f"HTTP {response.status} while stopping: {request.url}")
        if request.meta.get("ban_epoch", self.epoch) == self.epoch or self.in_a_row == 0:
            self.in_a_row += 1
            self.epoch += 1
        stats = self.crawler.stats
        stats.inc_value("weibo/ban_answers")
        stats.inc_value(f"weibo/ban_answers/{response.status}")
        if self.in_a_row >= self.limit:
            log.error("HTTP %d for %s: %d rate-limit answers in a row (BAN_LIMIT %d); stopping as "
                      "rate_limited, stored data is kept", response.status, request.url,
                      self.in_a_row, self.limit)
            request_close(self.crawler, "rate_limited")
            raise IgnoreRequest(f"rate limited at {request.url}")
        wait = min(self.base * 2 ** (self.in_a_row - 1), self.longest)
        self.resume_at = max(self.resume_at, time.monotonic() + wait)
        log.warning("HTTP %d for %s (%d in a row); pausing the crawl for %.2fs", response.status,
                    request.url, self.in_a_row, wait)
        retry = request.replace(dont_filter=True)
        retry.meta["ban_retries"] = request.meta.get("ban_retries", 0) + 1
        return retry


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor  # imported late: Scrapy installs the reactor first

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))
