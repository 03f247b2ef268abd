"""A small threaded HTTP server that plays weibo.cn (and the hot-search endpoint) on 127.0.0.1.

Scenarios reproduce the failures the spider must survive:

- ``ok``: every page as it should be;
- ``login_redirect``: after ``after`` requests, pages redirect (302) to ``/login``;
- ``login_page``: after ``after`` requests, pages are a 200 "please log in" page;
- ``ban418``: after ``after`` requests, every answer is HTTP 418;
- ``flaky``: the first ``fails`` requests of every URL answer 503, then the page;
- ``malformed``: the second topic's first search page (on either search site) is broken HTML, the first topic's
  first search page carries a post without text, post 1's second comment page a comment
  without text;
- ``ban432``: after ``after`` requests, every answer is HTTP 432 (m.weibo.cn's block);
- ``captcha``: after ``after`` requests, pages redirect (302) to a verification page;
- ``ok100``: after ``after`` requests, the weibo.com JSON answers ``{"ok": -100}`` (logged out);
- ``sweibo_login``: s.weibo.com redirects to its login page (a dead weibo.com cookie);
  weibo.cn works;
- ``sweibo_empty``: s.weibo.com finds nothing for any topic; weibo.cn works.

Three sites share the port: weibo.cn at ``/``, s.weibo.com under ``/sweibo`` and
weibo.com's JSON under ``/wcom`` (plus the hot-search list at ``/ajax/side/hotSearch``).
Posts are found by mid or bid, as on Weibo.

``delay`` (seconds) slows every answer down (or, with ``delay_prefix``, the answers to the
paths that start with it), for time-budget tests and two-process crawls.
``hits`` counts requests per path-and-query, so tests can prove nothing was fetched twice.

Watched posts (the corpus's ``watch`` list, served by mid or bid like any post) gain
comments while a test runs: ``site.add_comment(mid, text)`` in the test's process, or
``POST /_localsite/comment`` with ``{"mid": …, "text": …}`` from another one (a benchmark
driving a scheduler). The new comment comes first on the post's comment pages, newest
first as on weibo.cn, with an id above every id served so far and the time it was posted.
``POST /_localsite/post`` adds a post (``{"text": …}``) that the keyword searches find.
Keyword searches sorted by time (weibo.cn ``sort=time``, s.weibo.com ``/realtime``) list
every post whose text holds the keyword, newest (highest mid) first.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from weibo.localsite import pages
from weibo.localsite.corpus import Corpus
from weibo.parsing.ids import mid_to_bid
from weibo_mh.db import SHANGHAI

SCENARIOS = ("ok", "login_redirect", "login_page", "ban418", "flaky", "malformed", "ban432", "captcha",
             "ok100", "sweibo_login", "sweibo_empty")
SWEIBO = "/sweibo"
WCOM = "/wcom"


def bid_of(mid: str) -> str:
    """The bid weibo.cn shows for a post (mids that are not digits are shown as they are)."""
    return mid_to_bid(mid) if mid.isdigit() else mid


class LocalSite:
    """``with LocalSite(corpus, scenario="ok") as site: site.url`` serves on a free port in a thread."""

    def __init__(self, corpus: Corpus, scenario: str = "ok", host: str = "127.0.0.1", port: int = 0,
                 after: int = 0, fails: int = 1, delay: float = 0.0, per_page: int = 10,
                 delay_prefix: str = "") -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
        self.corpus = corpus
        self.scenario = scenario
        self.after = after
        self.fails = fails
        self.delay = delay
        self.delay_prefix = delay_prefix
        self.per_page = per_page
        self.hits: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.cookies: Counter[str] = Counter()  # Cookie headers received ("" for none)
        #: (site, Cookie header) -> requests; site is weibo.cn, s.weibo.com, weibo.com or hotsearch
        self.site_cookies: Counter[tuple[str, str]] = Counter()
        #: site -> (Referer, User-Agent) of its latest request
        self.site_headers: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()
        self._served = 0
        self._index()
        self.httpd = ThreadingHTTPServer((host, port), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.site = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    def _index(self) -> None:
        self.topics = {t["word"]: t for t in self.corpus["topics"]}
        self.posts: dict[str, dict[str, Any]] = {}
        for t in self.corpus["topics"] + ([self.corpus["hotgov"]] if self.corpus.get("hotgov") else []):
            for p in t["posts"]:
                self._serve(p)
        for p in self.corpus.get("watch", []):
            self._serve(p)
        ids = [int(c["id"]) for p in self.posts.values() for c in p["comments_list"] if c["id"].isdigit()]
        self._last_comment_id = max(ids, default=4_900_000_000_000_000)
        mids = [int(m) for m in self.posts if m.isdigit()]
        self._last_mid = max(mids, default=5_100_000_000_000_000)
        crawl = [t for t in sorted(self.corpus["topics"], key=lambda t: t["rank"]) if not t.get("is_ad")]
        self.first_topic = crawl[0]["word"] if crawl else ""
        self.second_topic = crawl[1]["word"] if len(crawl) > 1 else ""
        first_posts = crawl[0]["posts"] if crawl else []
        multi = [p for p in first_posts if len(p["comments_list"]) > self.per_page]
        self.first_multi_page_mid = multi[0]["mid"] if multi else ""

    def _serve(self, post: dict[str, Any]) -> None:
        self.posts.setdefault(post["mid"], post)
        self.posts.setdefault(bid_of(post["mid"]), post)

    # ----------------------------------------------------------------- watched posts

    def add_comment(self, mid: str, text: str, uid: str = "7100001", ip: str | None = None,
                    created: datetime | None = None) -> dict[str, Any]:
        """Add a comment at the top of a post's comments (newest first) and return it, with
        ``posted_at`` (ISO time, Asia/Shanghai). KeyError when the site has no such post."""
        when = (created or datetime.now(SHANGHAI)).astimezone(SHANGHAI)
        with self._lock:
            post = self.posts[mid]
            self._last_comment_id += 1
            comment = {"id": str(self._last_comment_id), "uid": uid, "text": text, "reply_to": None,
                       "likes": 0, "created": f"{when:%Y-%m-%d %H:%M:%S}", "source": "iPhone客户端",
                       "ip": ip}
            # a new list, not an insert: a page being rendered in another thread keeps its list
            post["comments_list"] = [comment, *post["comments_list"]]
            post["comments"] = int(post.get("comments") or 0) + 1
        return dict(comment, mid=post["mid"], bid=bid_of(post["mid"]), posted_at=when.isoformat())

    def add_post(self, text: str, uid: str = "5100001") -> dict[str, Any]:
        """Add a post (no comments yet) that keyword searches find, newest of all; returns it."""
        with self._lock:
            self._last_mid += 1
            post: dict[str, Any] = {"mid": str(self._last_mid), "uid": uid, "text": text,
                    "created": f"{datetime.now(SHANGHAI):%Y-%m-%d %H:%M:%S}", "reposts": 0,
                    "comments": 0, "likes": 0, "source": "iPhone客户端", "comments_list": []}
            self.corpus.setdefault("watch", []).append(post)
            self._serve(post)
        return {"mid": post["mid"], "bid": bid_of(post["mid"]), "text": text}

    def keyword_posts(self, word: str) -> list[dict[str, Any]]:
        """A search sorted by time: every post whose text holds ``word``, newest (highest mid) first."""
        with self._lock:
            found = {p["mid"]: p for p in self.posts.values() if word and word in p["text"]}
        return sorted(found.values(), key=lambda p: (len(p["mid"]), p["mid"]), reverse=True)

    def post_answer(self, target: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a POST: the test hooks that add comments and posts."""
        path = urlsplit(target).path
        try:
            data = json.loads(body.decode("utf-8"))
            if not isinstance(data, dict) or not isinstance(data.get("text"), str):
                raise ValueError("give a JSON object with a text")
            if path == "/_localsite/comment":
                created = data.get("created")
                result = self.add_comment(str(data.get("mid", "")), data["text"],
                                          uid=str(data.get("uid") or "7100001"), ip=data.get("ip"),
                                          created=datetime.fromisoformat(created) if created else None)
            elif path == "/_localsite/post":
                result = self.add_post(data["text"], uid=str(data.get("uid") or "5100001"))
            else:
                return 404, {"Content-Type": "text/plain"}, b"not found"
        except KeyError:
            return 404, _json(), json.dumps({"error": "no such post"}).encode()
        except (ValueError, UnicodeDecodeError) as e:
            return 400, _json(), json.dumps({"error": str(e)}).encode()
        return 200, _json(), json.dumps(result, ensure_ascii=False).encode("utf-8")

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def s_weibo_base(self) -> str:
        return f"{self.url}{SWEIBO}"

    @property
    def weibo_com_base(self) -> str:
        return f"{self.url}{WCOM}"

    @property
    def hotsearch_url(self) -> str:
        return f"{self.url}/ajax/side/hotSearch"

    def start(self) -> LocalSite:
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="localsite", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> LocalSite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def page_hits(self) -> int:
        return sum(self.hits.values())

    # ----------------------------------------------------------------- routing

    def answer(self, target: str) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for a GET of ``target`` (path and query)."""
        with self._lock:
            self.hits[target] += 1
            self._served += 1
            served, seen = self._served, self.hits[target]
        if self.delay and target.startswith(self.delay_prefix):
            time.sleep(self.delay)
        parts = urlsplit(target)
        path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
        late = served > self.after
        if path == "/login":
            return 200, _html(), pages.login_page().encode("utf-8", "surrogatepass")
        if self.scenario == "ban418" and late:
            return 418, {"Content-Type": "text/plain"}, b"I'm a teapot"
        if self.scenario == "ban432" and late:
            return 432, {"Content-Type": "text/plain"}, b""
        if self.scenario == "captcha" and late and path != "/verify":
            return 302, {"Location": f"/verify/captcha?r={quote(target, safe='')}"}, b""
        if path.startswith("/verify"):
            return 200, _html(), b"<html><body>verify</body></html>"
        if self.scenario == "flaky" and seen <= self.fails:
            return 503, {"Content-Type": "text/plain"}, b"busy, try again"
        if path == "/ajax/side/hotSearch":
            return 200, _json(), pages.hotsearch_json(self.corpus).encode("utf-8", "surrogatepass")
        if self.scenario == "login_redirect" and late:
            return 302, {"Location": f"/login?r={quote(target, safe='')}"}, b""
        if self.scenario == "login_page" and late:
            return 200, _html(), pages.login_page().encode("utf-8", "surrogatepass")
        page = _int(query.get("page", ["1"])[0])
        if path.startswith(SWEIBO + "/"):
            return self._sweibo(path, query, page)
        if path.startswith(WCOM + "/"):
            return self._weibo_com(path, query, late)
        if path == "/search/mblog":
            word = query.get("keyword", [""])[0].strip("#")
            by_time = query.get("sort", [""])[0] == "time"
            posts = self.keyword_posts(word) if by_time else self.topic_posts(word)
            extra = ""
            if self.scenario == "malformed":
                if word == self.second_topic and page == 1:
                    return 200, _html(), pages.malformed_page().encode("utf-8", "surrogatepass")
                if word == self.first_topic and page == 1:
                    extra = pages.BROKEN_POST
            return 200, _html(), pages.search_page(word, posts, page, self.per_page, extra,
                                                   bid_of=bid_of).encode("utf-8", "surrogatepass")
        if path.startswith("/comment/"):
            post = self.posts.get(path.split("/")[2])
            if post is None:
                return 200, _html(), pages.gone_page().encode("utf-8", "surrogatepass")
            extra = ""
            if self.scenario == "malformed" and post["mid"] == self.first_multi_page_mid and page == 2:
                extra = pages.BROKEN_COMMENT
            return 200, _html(), pages.comment_page(post, page, self.per_page, extra,
                                                    bid=bid_of(post["mid"])).encode("utf-8", "surrogatepass")
        return 404, {"Content-Type": "text/plain"}, b"not found"


    def topic_posts(self, word: str) -> list[dict[str, Any]]:
        """The search results for a word: a topic's posts, or the pinned entry's (hotgov)."""
        topic = self.topics.get(word)
        if topic:
            return list(topic["posts"])
        gov = self.corpus.get("hotgov") or {}
        return list(gov.get("posts", [])) if gov.get("word") == word else []

    def _sweibo(self, path: str, query: dict[str, list[str]], page: int) -> tuple[int, dict[str, str], bytes]:
        if self.scenario == "sweibo_login":
            return 302, {"Location": "/login.php?entry=sso"}, b""
        if path not in (SWEIBO + "/weibo", SWEIBO + "/realtime"):
            return 404, {"Content-Type": "text/plain"}, b"not found"
        word = query.get("q", [""])[0].strip("#")
        find = self.keyword_posts if path == SWEIBO + "/realtime" else self.topic_posts
        posts = find(word) if self.scenario != "sweibo_empty" else []
        extra = ""
        if self.scenario == "malformed" and page == 1:
            if word == self.second_topic:
                return 200, _html(), pages.malformed_page().encode("utf-8", "surrogatepass")
            if word == self.first_topic:
                extra = pages.BROKEN_CARD
        body = pages.sweibo_page(word, posts, page, self.per_page, SWEIBO, bid_of, extra)
        return 200, _html(), body.encode("utf-8", "surrogatepass")

    def _weibo_com(self, path: str, query: dict[str, list[str]], late: bool) -> tuple[int, dict[str, str], bytes]:
        if self.scenario == "ok100" and late:
            return 200, _json(), pages.login_json().encode()
        if path != WCOM + "/ajax/statuses/buildComments":
            return 404, {"Content-Type": "text/plain"}, b"not found"
        the_id = query.get("id", [""])[0]
        max_id = _int(query.get("max_id", ["0"])[0] or "0", low=0)
        count = _int(query.get("count", ["20"])[0], low=1)
        if query.get("fetch_level", ["0"])[0] == "1":
            for candidate in self.posts.values():
                body = pages.build_replies_json(candidate, the_id, max_id, count)
                if body is not None:
                    return 200, _json(), body.encode("utf-8", "surrogatepass")
            return 200, _json(), b'{"ok": 1, "data": [], "max_id": 0, "total_number": 0}'
        post = self.posts.get(the_id)
        if post is None:
            return 200, _json(), b'{"ok": 1, "data": [], "max_id": 0, "total_number": 0}'
        return 200, _json(), pages.build_comments_json(post, max_id, count).encode("utf-8", "surrogatepass")


def _json() -> dict[str, str]:
    return {"Content-Type": "application/json; charset=utf-8"}


def _html() -> dict[str, str]:
    return {"Content-Type": "text/html; charset=utf-8"}


def _int(value: str, low: int = 1) -> int:
    try:
        return max(low, int(value))
    except ValueError:
        return low


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        site: LocalSite = self.server.site  # type: ignore[attr-defined]
        status, headers, body = site.answer(self.path)
        self._count(site, status)
        self._send(status, headers, body)

    def _count(self, site: LocalSite, status: int) -> None:
        with site._lock:
            site.statuses[status] += 1
            site.cookies[self.headers.get("Cookie", "")] += 1
            path = urlsplit(self.path).path
            which = ("s.weibo.com" if path.startswith(SWEIBO) else "weibo.com" if path.startswith(WCOM)
                     else "hotsearch" if path == "/ajax/side/hotSearch" else "weibo.cn")
            site.site_cookies[(which, self.headers.get("Cookie", ""))] += 1
            site.site_headers[which] = (self.headers.get("Referer", ""), self.headers.get("User-Agent", ""))

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        site: LocalSite = self.server.site  # type: ignore[attr-defined]
        length = min(int(self.headers.get("Content-Length") or 0), 1 << 16)
        self._send(*site.post_answer(self.path, self.rfile.read(length)))

    def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet by default
        pass
