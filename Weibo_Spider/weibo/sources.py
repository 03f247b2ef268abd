"""Search and comment sources: which login each needs, and which failures move on to the next.

Shared by every spider (hot_topics, and any spider that reads comments): a failed request
is classified here once, so the fallback table in docs/spider.md holds for all of them.

- A request that fails after its retries (DNS, connection refused, timeout, TLS, a lost
  connection), an HTTP 5xx after retries, or a 403/404 on a source's URL moves the topic
  (or the post's comments) to the next source, with the reason recorded.
- Ban answers (418, 432, 429, captcha redirects) do not: they are per IP, so the crawl
  backs off and ends ``rate_limited`` (weibo.middlewares.BanMiddleware).
- Login walls move on to the next source whose login has not been refused.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from scrapy.exceptions import (
    CannotResolveHostError,
    DownloadConnectionRefusedError,
    DownloadFailedError,
    DownloadTimeoutError,
    ResponseDataLossError,
)
from scrapy.spidermiddlewares.httperror import HttpError
from twisted.internet import error as tx
from twisted.python.failure import Failure

#: Which login (cookie) each search or comment source needs. m.weibo.cn takes weibo.cn's.
SOURCE_COOKIE = {"s.weibo.com": "weibo.com", "weibo.cn": "weibo.cn", "weibo.com": "weibo.com",
                 "m.weibo.cn": "weibo.cn"}
#: Where each cookie comes from (named in the login-required message).
COOKIE_VARS = {"weibo.cn": "WEIBO_COOKIE / WEIBO_COOKIE_FILE / spider.cookie_file",
               "weibo.com": "WEIBO_COM_COOKIE / WEIBO_COM_COOKIE_FILE / spider.weibo_com_cookie_file"}
#: HTTP statuses on a source's own URL that hand over to the next source (not a ban).
MOVE_ON_STATUSES = (403, 404)

_TLS_WORDS = ("SSL", "TLS", "certificate", "handshake")


def next_source(sources: list[str], after: int, walled: Iterable[str]) -> int | None:
    """The index of the next source after ``after`` whose login has not been refused."""
    refused = set(walled)
    for i in range(after + 1, len(sources)):
        if SOURCE_COOKIE[sources[i]] not in refused:
            return i
    return None


def _host(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    return f"{host}:{parts.port}" if parts.port else host


def classify_failure(failure: Failure, url: str) -> tuple[str, str] | None:
    """(reason, cause) of a failed request that moves to the next source, e.g.
    ("dns", "DNS lookup failed for s.weibo.com"); None for anything else (a ban stop,
    a dropped request, a failure in our own code)."""
    host = _host(url)
    if failure.check(HttpError):
        status = failure.value.response.status
        if status >= 500:
            return f"http_{status}", f"HTTP {status} from {host} after retries"
        if status in MOVE_ON_STATUSES:
            return f"http_{status}", f"HTTP {status} from {host}"
        return None
    text = failure.getErrorMessage() or ""
    if failure.check(CannotResolveHostError, tx.DNSLookupError):
        return "dns", f"DNS lookup failed for {urlsplit(url).hostname or host}"
    if failure.check(DownloadConnectionRefusedError, tx.ConnectionRefusedError):
        return "refused", f"connection refused by {host}"
    if failure.check(DownloadTimeoutError, tx.TimeoutError, tx.TCPTimedOutError):
        return "timeout", f"timed out talking to {host}"
    if any(w in text for w in _TLS_WORDS):
        return "tls", f"TLS failed with {host}"
    if failure.check(DownloadFailedError, ResponseDataLossError, tx.ConnectError,
                     tx.ConnectionLost, tx.ConnectionDone, OSError):
        return "connection", f"connection to {host} failed"
    return None
