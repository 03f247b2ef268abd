"""Downloader middlewares: per-host cookies, login walls, and back-off on blocks.

- CookieMiddleware sends each site its own Cookie header (weibo.cn: WEIBO_COOKIE /
  WEIBO_COOKIE_FILE / spider.cookie_file; weibo.com and s.weibo.com: WEIBO_COM_COOKIE /
  WEIBO_COM_COOKIE_FILE / spider.weibo_com_cookie_file) and removes it from the request
  again when the answer arrives, so retried or queued copies (Redis!) never carry it.
  It is never logged.
- LoginWallMiddleware turns a redirect to a login page, and weibo.com's JSON
  ``{"ok": -100}``, into a LoginWall failure that names the site; the spider decides
  (try the next search source, or stop as ``login_required``).
- BanMiddleware backs off exponentially on block answers (BAN_HTTP_CODES: 418, 403, 429,
  432) and on redirects to captcha or verification pages, pausing the whole crawl, and
  stops it as ``rate_limited`` after BAN_LIMIT such answers in a row. A request may name
  statuses that are not blocks for it (``meta["move_on_statuses"]``: 403/404 on a search
  URL, or on a comment URL with a next comment source): those reach the spider, which
  moves to the next source (weibo.sources).
"""

from __future__ import annotations

import logging
import time
from urllib.parse import urljoin

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import IgnoreRequest
from scrapy.http import Response
from scrapy.utils.defer import deferred_from_coro, maybe_deferred_to_future
from twisted.internet import task

from weibo.parsing import is_block_url, is_login_json, is_login_url
from weibo_mh.config import cookie_from, cookie_origin, load_config

log = logging.getLogger(__name__)

#: Where docs/spider.md says how to refresh a cookie (named in the login_required message).
COOKIE_DOC = "docs/spider.md, section \"The cookies: setting and refreshing them\""


class LoginWall(IgnoreRequest):
    """The site answered with a login wall: its cookie is missing or expired."""

    def __init__(self, site: str, url: str, target: str) -> None:
        super().__init__(f"login wall at {url} (sent to {target})")
        self.site = site
        self.url = url
        self.target = target


def request_close(crawler: Crawler, reason: str) -> None:
    """Close the spider once with ``reason``; data already yielded is still stored."""
    spider = crawler.spider
    if spider is None or getattr(spider, "close_reason", None):
        return
    spider.close_reason = reason  # type: ignore[attr-defined]  # HotTopicsSpider has it
    if crawler.engine is not None:
        deferred_from_coro(crawler.engine.close_spider_async(reason=reason))


def _under(url: str, base: str) -> bool:
    base = base.rstrip("/")
    return url == base or url.startswith(base + "/") or url.startswith(base + "?")


def cookie_site(settings: object, url: str) -> str | None:
    """Which login a URL needs: 'weibo.cn' (weibo.cn, m.weibo.cn) or 'weibo.com' (s.weibo.com,
    weibo.com, hot search).

    The longest configured base that the URL is under wins, so that sites sharing a host
    (the local test site) still get their own cookie.
    """
    get = settings.get  # type: ignore[attr-defined]
    bases = [(get("WEIBO_CN_BASE"), "weibo.cn"), (get("M_WEIBO_BASE"), "weibo.cn"),
             (get("S_WEIBO_BASE"), "weibo.com"),
             (get("WEIBO_COM_BASE"), "weibo.com"), (get("HOTSEARCH_URL"), "weibo.com")]
    hits = [(len(b), site) for b, site in bases if b and _under(url, b)]
    return max(hits)[1] if hits else None


class CookieMiddleware:
    def __init__(self, crawler: Crawler) -> None:
        self.settings = crawler.settings
        cfg = load_config(self.settings.get("WEIBO_MH_CONFIG") or None)
        self._cookies = {site: cookie_from(cfg, site=site) for site in ("weibo.cn", "weibo.com")}
        self.origins = {site: cookie_origin(cfg, site) for site in self._cookies}
        for site, cookie in self._cookies.items():
            if cookie:
                log.info("sending a Cookie header to %s (%d characters, from %s)", site, len(cookie),
                         self.origins[site])
                if "MLOGIN=0" in cookie.replace(" ", ""):
                    log.warning("the %s cookie from %s says MLOGIN=0: it is logged out", site,
                                self.origins[site])
            else:
                var = "WEIBO_COOKIE / WEIBO_COOKIE_FILE" if site == "weibo.cn" else \
                    "WEIBO_COM_COOKIE / WEIBO_COM_COOKIE_FILE"
                log.warning("no %s cookie configured (%s): the real %s will answer with a login "
                            "wall", site, var, site)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CookieMiddleware:
        mw = cls(crawler)
        crawler.weibo_cookie_origins = mw.origins  # type: ignore[attr-defined]  # for messages
        return mw

    def __repr__(self) -> str:  # never show the cookie
        return f"CookieMiddleware(sites={sorted(s for s, c in self._cookies.items() if c)})"

    def process_request(self, request: Request) -> None:
        site = cookie_site(self.settings, request.url)
        cookie = self._cookies.get(site or "")
        if cookie:
            request.headers["Cookie"] = cookie

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
            location = (response.headers[b"Location"] or b"").decode("latin-1")
            target = urljoin(request.url, location)
        wall = (target and is_login_url(target)) or is_login_url(response.url)
        if not wall and response.status == 200 and b"-100" in response.body[:200]:
            wall = is_login_json(response.body.decode("utf-8", "replace"))
            target = target or "a JSON answer {\"ok\": -100}"
        if wall:
            self.crawler.stats.inc_value("weibo/login_walls")
            site = cookie_site(self.crawler.settings, request.url) or "weibo.cn"
            raise LoginWall(site, request.url, target or response.url)
        return response


class BanMiddleware:
    """Exponential back-off on blocks for the whole crawl; stop after BAN_LIMIT in a row.

    "In a row" means: no request sent after the latest such answer has succeeded since.
    Answers to requests that were already under way do not reset the count.
    """

    def __init__(self, crawler: Crawler) -> None:
        s = crawler.settings
        self.crawler = crawler
        self.codes = {int(c) for c in s.getlist("BAN_HTTP_CODES")}
        self.limit = max(1, s.getint("BAN_LIMIT"))
        self.base = s.getfloat("BAN_BACKOFF_SECONDS")
        self.longest = s.getfloat("BAN_BACKOFF_MAX_SECONDS")
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

    def _blocked(self, request: Request, response: Response) -> str | None:
        if response.status in self.codes:
            return f"HTTP {response.status}"
        if 300 <= response.status < 400 and b"Location" in response.headers:
            target = urljoin(request.url, (response.headers[b"Location"] or b"").decode("latin-1"))
            if is_block_url(target):
                return "a captcha/verification redirect"
        return None

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if response.status in request.meta.get("move_on_statuses", ()):
            return response   # not a block for this request: its source hands over (weibo.sources)
        what = self._blocked(request, response)
        if what is None:
            if request.meta.get("ban_epoch", self.epoch) == self.epoch:
                self.in_a_row = 0
            return response
        if getattr(self.crawler.spider, "close_reason", None):
            raise IgnoreRequest(f"{what} while stopping: {request.url}")
        if request.meta.get("ban_epoch", self.epoch) == self.epoch or self.in_a_row == 0:
            self.in_a_row += 1
            self.epoch += 1
        stats = self.crawler.stats
        stats.inc_value("weibo/ban_answers")
        stats.inc_value(f"weibo/ban_answers/{response.status if response.status in self.codes else 'captcha'}")
        if self.in_a_row >= self.limit:
            log.error("%s for %s: %d rate-limit answers in a row (BAN_LIMIT %d); stopping as "
                      "rate_limited, stored data is kept", what, request.url, self.in_a_row, self.limit)
            request_close(self.crawler, "rate_limited")
            raise IgnoreRequest(f"rate limited at {request.url}")
        wait = min(self.base * 2 ** (self.in_a_row - 1), self.longest)
        self.resume_at = max(self.resume_at, time.monotonic() + wait)
        log.warning("%s for %s (%d in a row); pausing the crawl for %.2fs", what, request.url,
                    self.in_a_row, wait)
        retry = request.replace(dont_filter=True)
        retry.meta["ban_retries"] = request.meta.get("ban_retries", 0) + 1
        return retry


async def _sleep(seconds: float) -> None:
    from twisted.internet import reactor  # imported late: Scrapy installs the reactor first

    await maybe_deferred_to_future(task.deferLater(reactor, seconds, lambda: None))
