"""The spider's failure branches, reached in-process the way Scrapy's own tests do it.

Each component is built from a crawler (``scrapy.utils.test.get_crawler``) and called
directly: the database pipeline with a store that raises on flush, on the run record
and on the stored-comments check; a real database that rejects one row of a batch;
the ban middleware's back-off. No subprocess crawl is needed to reach these branches,
but the last test hands a recorded failure to a real crawl, which fetches again
what was lost.
"""

from __future__ import annotations

import json
from collections.abc import Coroutine
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from scrapy import Request
from scrapy.exceptions import DropItem, IgnoreRequest
from scrapy.http import HtmlResponse
from scrapy.utils.test import get_crawler
from weibo.items import CommentItem, PostItem, TopicItem
from weibo.localsite import LocalSite
from weibo.localsite.demo_corpus import build_corpus
from weibo.middlewares import BanMiddleware
from weibo.pipelines import DatabasePipeline, ValidatePipeline
from weibo.spiders.hot_topics import HotTopicsSpider
from weibo.status import exit_code
from weibo.store import Store

from tests.reliability.faults import table_counts
from tests.spider.helpers import run_crawl, runs, write_config
from weibo_mh import db

NOW = datetime(2026, 11, 5, 12, 0)
LOST = sa.exc.OperationalError("INSERT …", {}, Exception("(2013, 'Lost connection to server during query')"))


def project_crawler(settings: dict[str, Any]):
    """A crawler with the project's settings (weibo/settings.py: every default from the SPEC)."""
    import weibo.settings as project

    base = {k: getattr(project, k) for k in dir(project) if k.isupper()}
    return get_crawler(HotTopicsSpider, {**base, **settings})


def crawler_for(url: str, **settings: Any):
    return project_crawler({"DATABASE_URL": url, "FLUSH_SECONDS": 0, "FLUSH_ITEMS": 1000,
                            "STORE_RETRY_ATTEMPTS": 1, **settings})


def spider_stub() -> SimpleNamespace:
    return SimpleNamespace(failure=None, malformed_urls=[], refetch_mids=set(), close_reason=None)


def post(mid: str) -> PostItem:
    return PostItem(mid=mid, author_key=None, author_hash=None, author_raw=None, text=f"帖子 {mid}",
                    full_text=True, created_at=NOW, reposts=1, comments_count=2, likes=3, source="iPhone",
                    topics=["测试话题"], scraped_at=NOW, url="http://x/")


def comment(cid: str, mid: str, text: str = "一条评论") -> CommentItem:
    return CommentItem(id=cid, mid=mid, author_hash=None, author_raw=None, reply_to_hash=None, text=text,
                       likes=0, created_at=NOW, source=None, scraped_at=NOW, url="http://x/")


def topic(word: Any, heat: Any = 10) -> TopicItem:
    return TopicItem(word=word, rank=1, heat=heat, category=None, seen_at=NOW)


def feed(crawler, pipes: list[Any], items: list[Any]) -> int:
    """Items through the pipelines as Scrapy would: a DropItem ends one item only."""
    dropped = 0
    for item in items:
        try:
            for p in pipes:
                item = p.process_item(item)
        except DropItem:
            dropped += 1
    return dropped


def finish(crawler, pipe: DatabasePipeline, spider: SimpleNamespace, reason: str = "finished") -> dict:
    pipe.close_spider()
    pipe.spider_closed(spider, reason)
    return {"status": crawler.stats.get_value("weibo/status")}


class FailingStore(Store):
    """A real store whose chosen operations fail as if the database had gone away."""

    fail_flush = False
    fail_finish = False
    fail_lookup = False

    def flush(self) -> int:
        if self.fail_flush and self.pending():
            self._keep([], [], [])  # the rows stay buffered, as after a real outage
            raise LOST
        return super().flush()

    def finish(self, *a: Any, **kw: Any) -> None:
        if self.fail_finish:
            raise LOST
        super().finish(*a, **kw)

    def _read(self, fn):  # noqa: ANN001 - the stored-comments check and the recrawl plan
        if self.fail_lookup:
            raise LOST
        return super()._read(fn)


def open_pipeline(url: str, monkeypatch, **fail: bool) -> tuple[Any, DatabasePipeline, FailingStore]:
    crawler = crawler_for(url)
    crawler.stats.set_value("weibo/hotsearch_topics", 1)
    monkeypatch.setattr("weibo.store.Store", type("S", (FailingStore,), fail))
    pipe = DatabasePipeline.from_crawler(crawler)
    pipe.open_spider()
    return crawler, pipe, pipe.store


def test_one_rejected_row_costs_only_itself(db_url, monkeypatch):
    """A comment whose post does not exist (foreign key) rides in a batch of good rows."""
    crawler, pipe, store = open_pipeline(db_url, monkeypatch)
    validate = ValidatePipeline.from_crawler(crawler)
    items = [topic("测试话题"), post("P1"), *[comment(f"C{i}", "P1") for i in range(5)],
             comment("ORPHAN", "NO_SUCH_POST"), comment("C9", "P1")]
    assert feed(crawler, [validate, pipe], items) == 0
    spider = spider_stub()
    assert finish(crawler, pipe, spider)["status"] == "ok"
    counts = table_counts(db_url)
    assert counts["comments"] == 6 and counts["posts"] == 1 and counts["topics"] == 1
    run = runs(db_url)[-1]
    assert run["status"] == "ok" and run["stats"]["dropped"] == {"comment_rejected_by_database": 1}
    assert run["comments_new"] == 6 and run["dropped"] == 1


def test_unstorable_values_are_cleaned_clamped_or_dropped_before_the_database(db_url, monkeypatch):
    crawler, pipe, store = open_pipeline(db_url, monkeypatch)
    validate = ValidatePipeline.from_crawler(crawler)
    huge = post("P2")
    huge["likes"] = 10**30
    huge["text"] = "长" * 25_000
    huge["topics"] = ["好\ud800话题", 42]
    items = [topic("好\ud800话题", heat=10**30), topic(["不是文字"]), topic("长" * 200), topic("\x00\x1b[1m"),
             huge, comment("C1", "P2", "半个\ud83d表情\x00和\x1b[31m颜色"), comment("C2", "P2", " \x00 ")]
    assert feed(crawler, [validate, pipe], items) == 4
    finish(crawler, pipe, spider_stub())
    run = runs(db_url)[-1]
    assert run["status"] == "ok", run
    assert run["stats"]["dropped"] == {"topic_word_not_text": 1, "topic_word_too_long": 1,
                                       "topic_word_empty": 1, "comment_missing_text": 1}
    assert run["stats"]["clamped"] == {"topic_heat": 1, "post_likes": 1}
    assert run["stats"]["truncated"] == {"post_text": 1}
    eng = db.make_engine(db_url)
    with eng.connect() as conn:
        assert conn.execute(sa.select(db.topics.c.word)).scalars().all() == ["好\ufffd话题"]
        assert conn.execute(sa.select(db.topic_snapshots.c.heat)).scalar() == 2**63 - 1
        assert conn.execute(sa.select(db.posts.c.likes)).scalar() == 2**31 - 1
        assert len(conn.execute(sa.select(db.posts.c.text)).scalar()) == 20_000
        assert conn.execute(sa.select(db.comments.c.text)).scalar() == "半个\ufffd表情 和颜色"
    eng.dispose()


def test_a_store_that_cannot_flush_at_the_end_fails_the_run_with_the_count(sqlite_url, monkeypatch):
    crawler, pipe, store = open_pipeline(sqlite_url, monkeypatch, fail_flush=True)
    items = [topic("测试话题"), post("P1"), comment("C1", "P1"), comment("C2", "P1"), post("P2")]
    feed(crawler, [ValidatePipeline.from_crawler(crawler), pipe], items)
    result = finish(crawler, pipe, spider_stub())
    assert result["status"] == "failed" and exit_code(result["status"]) == 1
    run = runs(sqlite_url)[-1]
    assert run["status"] == "failed"
    assert "5 rows of 2 posts could not be written (lost to database errors)" in run["error"]
    assert "database unavailable at the end of the crawl (" in run["error"]   # and why
    assert run["stats"]["rows_lost"] == 5 and run["stats"]["recrawl_mids"] == ["P1", "P2"]
    assert table_counts(sqlite_url)["comments"] == 0


def test_a_run_record_that_cannot_be_written_still_ends_failed(sqlite_url, monkeypatch):
    crawler, pipe, store = open_pipeline(sqlite_url, monkeypatch, fail_finish=True)
    feed(crawler, [ValidatePipeline.from_crawler(crawler), pipe], [topic("测试话题"), post("P1")])
    assert finish(crawler, pipe, spider_stub())["status"] == "failed"
    assert table_counts(sqlite_url)["posts"] == 1  # the data went in; only the record failed
    assert runs(sqlite_url)[-1]["status"] == "running"  # …which the scheduler settles later


def test_a_failed_stored_comments_check_pages_on(sqlite_url, monkeypatch):
    crawler, pipe, store = open_pipeline(sqlite_url, monkeypatch, fail_lookup=True)
    assert store.known_comment_ids(["C1", "C2"]) == set()
    mids, full = store.recrawl_plan()
    assert mids == set() and "could not be read" in full


def test_a_timed_flush_survives_any_exception(sqlite_url, monkeypatch):
    crawler, pipe, store = open_pipeline(sqlite_url, monkeypatch)
    def boom() -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(store, "flush", boom)
    monkeypatch.setattr(store, "pending", lambda: 1)
    pipe._timed_flush()  # the flush fails: logged, rows kept
    monkeypatch.setattr(store, "pending", boom)
    pipe._timed_flush()  # anything else fails: must not raise, or the LoopingCall stops for good


def run_coro(coro: Coroutine[Any, Any, Any]) -> Any:
    try:
        coro.send(None)
    except StopIteration as e:
        return e.value
    raise AssertionError("the coroutine waited for something")


def test_the_ban_middleware_backs_off_exponentially_then_stops(monkeypatch):
    crawler = project_crawler({"BAN_LIMIT": 4, "BAN_BACKOFF_SECONDS": 2.0,
                               "BAN_BACKOFF_MAX_SECONDS": 5.0})
    crawler.spider = spider_stub()
    closed: list[str] = []
    crawler.engine = SimpleNamespace(close_spider_async=lambda reason: closed.append(reason))
    mw = BanMiddleware.from_crawler(crawler)
    clock = [1000.0]
    monkeypatch.setattr("weibo.middlewares.time.monotonic", lambda: clock[0])
    req = Request("http://127.0.0.1/comment/1?page=1")
    waits = []
    for _ in range(3):
        req.meta["ban_epoch"] = mw.epoch  # as process_request stamps it
        retry = run_coro(mw.process_response(req, HtmlResponse(req.url, status=418)))
        assert isinstance(retry, Request) and retry.dont_filter
        waits.append(mw.resume_at - clock[0])
        req = retry
    assert waits == [2.0, 4.0, 5.0]  # doubling, capped at BAN_BACKOFF_MAX_SECONDS
    ok = HtmlResponse(req.url, status=200)
    req.meta["ban_epoch"] = mw.epoch
    assert run_coro(mw.process_response(req, ok)) is ok and mw.in_a_row == 0  # a success resets
    for _ in range(3):
        req.meta["ban_epoch"] = mw.epoch
        run_coro(mw.process_response(req, HtmlResponse(req.url, status=429)))
    req.meta["ban_epoch"] = mw.epoch
    with pytest.raises(IgnoreRequest):
        run_coro(mw.process_response(req, HtmlResponse(req.url, status=403)))
    assert crawler.spider.close_reason == "rate_limited" and closed == ["rate_limited"]
    assert crawler.stats.get_value("weibo/ban_answers") == 7


def test_a_recrawl_fetches_again_what_an_earlier_run_failed_to_store(db_url, tmp_path, monkeypatch):
    corpus = build_corpus(comments_per_post=25)
    with LocalSite(corpus) as site:
        config = write_config(tmp_path / "c.toml", site, "topic_limit = 2")
        assert run_crawl(config, db_url).ok
        full = table_counts(db_url)
        # A later run loses the rows of two posts' comment pages 2 and 3 to the database.
        first = sorted((t for t in corpus["topics"] if not t["is_ad"]), key=lambda t: t["rank"])[:2]
        posts = [p for t in first for p in t["posts"] if len(p["comments_list"]) > 20][:2]
        lost = [c["id"] for p in posts for c in p["comments_list"][10:]]
        eng = db.make_engine(db_url)
        with eng.begin() as conn:
            conn.execute(db.comments.delete().where(db.comments.c.id.in_(lost)))
        eng.dispose()
        crawler, pipe, store = open_pipeline(db_url, monkeypatch, fail_flush=True)
        feed(crawler, [pipe], [comment(cid, p["mid"]) for p in posts for cid in
                               [c["id"] for c in p["comments_list"][10:]]])
        assert finish(crawler, pipe, spider_stub())["status"] == "failed"
        assert runs(db_url)[-1]["stats"]["recrawl_mids"] == sorted(p["mid"] for p in posts)
        # An incremental crawl would stop at page 1 (all stored); the recorded posts are paged in full.
        result = run_crawl(config, db_url)
        assert result.ok, result.output
    assert table_counts(db_url)["comments"] == full["comments"]
    last = runs(db_url)[-1]
    assert last["status"] == "ok" and last["stats"]["recrawled"] == 2
    assert last["stats"]["recrawl_mids"] == []


def test_a_run_that_ended_without_a_record_makes_the_next_crawl_page_in_full(sqlite_url, tmp_path):
    corpus = build_corpus(comments_per_post=25)
    with LocalSite(corpus) as site:
        config = write_config(tmp_path / "c.toml", site, "topic_limit = 2")
        assert run_crawl(config, sqlite_url).ok
        full = table_counts(sqlite_url)["comments"]
        eng = db.make_engine(sqlite_url)
        with eng.begin() as conn:
            ids = conn.execute(sa.select(db.comments.c.id).order_by(db.comments.c.id)).scalars().all()
            conn.execute(db.comments.delete().where(db.comments.c.id.in_(ids[::7])))
            # a crawl killed before it could record anything, as the scheduler settles it
            conn.execute(db.crawl_runs.insert().values(started_at=db.now(), status="failed",
                                                       error="crawler exited with status -9"))
        eng.dispose()
        result = run_crawl(config, sqlite_url)
    assert result.ok, result.output
    assert "paging every post's comments in full" in result.output
    assert table_counts(sqlite_url)["comments"] == full
    assert json.dumps(runs(sqlite_url)[-1]["stats"])  # recorded
