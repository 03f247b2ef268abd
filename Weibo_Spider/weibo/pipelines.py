"""Item pipelines: validate (drops counted by reason), pseudonymise, store in batches.

DatabasePipeline also records the run: a crawl_runs row is inserted when the
spider opens (or the scheduler's row is adopted, CRAWL_RUN_ID) and finalised
when it closes, with its status (ok / failed / login_required / rate_limited),
its counts and a stats JSON (drops by reason, malformed URLs, errors).
"""

from __future__ import annotations

import logging
import re
import time
from typing import Any

from itemadapter import ItemAdapter
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from twisted.internet import task

from weibo import hygiene
from weibo.items import CommentItem, PostItem, TopicItem
from weibo.status import status_for_close
from weibo_mh import db
from weibo_mh.config import load_config
from weibo_mh.privacy import pseudonymiser_from

log = logging.getLogger(__name__)

_ID = re.compile(r"^[0-9A-Za-z_\-]{1,32}$")
MAX_TEXT = hygiene.MAX_TEXT


def drop(crawler: Crawler, reason: str, what: str) -> DropItem:
    crawler.stats.inc_value(f"weibo/dropped/{reason}")
    return DropItem(f"{what}: {reason}")


class ValidatePipeline:
    """Clean every field with the worker's text hygiene; drop what cannot be stored, by reason.

    Numbers are clamped to their columns (counted under weibo/clamped/…), texts longer
    than MAX_TEXT are cut (counted under weibo/truncated/…), strings are checked against
    the schema's column lengths (weibo.hygiene) before the database sees them.
    """

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        return cls(crawler)

    def _count(self, a: ItemAdapter, field: str, limit: int, kind: str) -> None:
        value, changed = hygiene.count(a.get(field), limit)
        if changed:
            self.crawler.stats.inc_value(f"weibo/clamped/{kind}_{field}")
        a[field] = value

    def _text(self, a: ItemAdapter, kind: str) -> bool:
        text, cut = hygiene.text(a.get("text"))
        if cut:
            self.crawler.stats.inc_value(f"weibo/truncated/{kind}_text")
        a["text"] = text
        return bool(text)

    def process_item(self, item: Any) -> Any:
        try:
            return self._validate(item)
        except DropItem:
            raise
        except Exception as e:  # noqa: BLE001 - a value no check foresaw: this item only
            log.error("item not valid (%s: %s), dropped", type(e).__name__, e)
            raise drop(self.crawler, f"invalid_{type(item).__name__.lower()}", "item") from None

    def _validate(self, item: Any) -> Any:
        a = ItemAdapter(item)
        if isinstance(item, TopicItem):
            word, why = hygiene.topic_word(a.get("word"))
            if not word:
                raise drop(self.crawler, why, "topic")
            a["word"] = word
            self._count(a, "heat", hygiene.BIGINT_MAX, "topic")
            rank, _ = hygiene.count(a.get("rank"))
            a["rank"] = rank
            a["category"] = hygiene.optional(a.get("category"), "topic_snapshots", "category")
            a["label"] = hygiene.optional(a.get("label"), "topic_snapshots", "label")
            return item
        if isinstance(item, PostItem):
            what = f"post {a.get('mid')!r} from {a.get('url')}"
            if not isinstance(a.get("mid"), str) or not _ID.match(a["mid"]):
                raise drop(self.crawler, "post_bad_mid", what)
            if not self._text(a, "post"):
                raise drop(self.crawler, "post_missing_text", what)
            for f in ("reposts", "comments_count", "likes"):
                self._count(a, f, hygiene.INT_MAX, "post")
            a["source"] = hygiene.optional(a.get("source"), "posts", "source")
            a["ip_location"] = hygiene.optional(a.get("ip_location"), "posts", "ip_location")
            words = [hygiene.topic_word(w)[0] for w in (a.get("topics") or [])]
            a["topics"] = [w for w in words if w]
            return item
        if isinstance(item, CommentItem):
            what = f"comment {a.get('id')!r} from {a.get('url')}"
            if not isinstance(a.get("id"), str) or not _ID.match(a["id"]):
                raise drop(self.crawler, "comment_bad_id", what)
            if not isinstance(a.get("mid"), str) or not _ID.match(a["mid"]):
                raise drop(self.crawler, "comment_bad_mid", what)
            if not self._text(a, "comment"):
                reason = "comment_image_only" if a.get("image_only") else "comment_missing_text"
                raise drop(self.crawler, reason, what)
            self._count(a, "likes", hygiene.INT_MAX, "comment")
            a["source"] = hygiene.optional(a.get("source"), "comments", "source")
            a["ip_location"] = hygiene.optional(a.get("ip_location"), "comments", "ip_location")
            for link in ("root_id", "reply_to_id"):  # thread links: a Weibo id or nothing
                if a.get(link) is not None and not (isinstance(a[link], str) and _ID.match(a[link])):
                    a[link] = None
            return item
        raise drop(self.crawler, "unknown_item", type(item).__name__)


class PseudonymisePipeline:
    """User ids become HMAC hashes; raw ids only with privacy.keep_raw_ids; nicknames go."""

    def __init__(self, crawler: Crawler) -> None:
        cfg = load_config(crawler.settings.get("WEIBO_MH_CONFIG") or None)
        self.p = pseudonymiser_from(cfg)  # ConfigError without a salt: the crawl command checks first

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> PseudonymisePipeline:
        return cls(crawler)

    def process_item(self, item: Any) -> Any:
        if isinstance(item, (PostItem, CommentItem)):
            a = ItemAdapter(item)
            key = a.pop("author_key", None) if "author_key" in a else None
            a["author_hash"] = self.p.hash(key)
            raw = self.p.raw(key)
            a["author_raw"] = raw.split(":", 1)[1][:32] if raw else None
            if isinstance(item, CommentItem):
                nick = a.pop("reply_to_nick", None) if "reply_to_nick" in a else None
                a["reply_to_hash"] = self.p.hash(f"n:{nick}") if nick else None
        return item


class DatabasePipeline:
    """Batched upserts through weibo.store.Store, and the crawl_runs row of this run."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        s = crawler.settings
        self.url = s.get("DATABASE_URL")
        self.flush_items = s.getint("FLUSH_ITEMS")
        self.flush_seconds = s.getfloat("FLUSH_SECONDS")
        self.run_id = s.getint("CRAWL_RUN_ID")
        #: Attempts of one database transaction after a lost connection (8: about a minute).
        self.attempts = s.getint("STORE_RETRY_ATTEMPTS")
        self.store: Any = None
        self.loop: task.LoopingCall | None = None
        self.flush_error: str | None = None
        self.write_error = ""   # why the last write failed, for the message at the end
        # after a failed write, wait before the next attempt (doubling, at most a minute):
        # a full buffer must not make every further item wait out the retries again
        self.backoff = 0.0
        self.retry_at = 0.0
        from scrapy import signals

        crawler.signals.connect(self.spider_closed, signal=signals.spider_closed)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> DatabasePipeline:
        return cls(crawler)

    def open_spider(self) -> None:
        from weibo.store import Store

        self.store = Store(self.url, flush_items=self.flush_items, attempts=self.attempts)
        run = self.store.start_run(self.run_id, kind=getattr(self.crawler.spider, "kind", "hot"))
        self.crawler.weibo_store = self.store  # type: ignore[attr-defined]  # read by the spider
        self.crawler.stats.set_value("weibo/crawl_run_id", run)
        log.info("crawl run %d started, writing to %s", run, db.mask(self.url))
        if self.flush_seconds > 0:
            self.loop = task.LoopingCall(self._timed_flush)
            self.loop.start(self.flush_seconds, now=False)

    def _timed_flush(self) -> None:
        try:
            if self.store and self.store.pending():
                self._flush()
        except Exception:  # noqa: BLE001 - an exception would stop the LoopingCall for good
            log.exception("timed flush failed; trying again in %.0fs", self.flush_seconds)

    def _flush(self, force: bool = False) -> None:
        if not force and time.monotonic() < self.retry_at:
            return
        try:
            n = self.store.flush()
            self.crawler.stats.inc_value("weibo/rows_written", n)
            self.backoff = 0.0
        except Exception as e:  # noqa: BLE001 - the database is away: keep the rows, keep crawling
            self.crawler.stats.inc_value("weibo/db_errors")
            self.backoff = min(max(2 * self.backoff, 1.0), 60.0)
            self.retry_at = self.store.down_until = time.monotonic() + self.backoff
            self.write_error = db.short_error(e)
            log.error("database write failed (%s); %d rows kept, next attempt in %.0fs",
                      self.write_error, self.store.pending(), self.backoff)

    def process_item(self, item: Any) -> Any:
        try:
            full = self._add(item)
        except Exception as e:  # noqa: BLE001 - one item that cannot be stored costs only itself
            log.error("item not storable (%s: %s), dropped", type(e).__name__, e)
            raise drop(self.crawler, f"unstorable_{type(item).__name__.lower()}", "item") from None
        if full:
            self._flush()
        return item

    def _add(self, item: Any) -> bool:
        scraped = db.now()
        a = ItemAdapter(item)
        if isinstance(item, TopicItem):
            row = {"word": a["word"], "rank": a["rank"], "heat": a.get("heat") or 0,
                   "category": a.get("category"), "label": a.get("label"),
                   "seen_at": db.to_db_time(a["seen_at"])}
            full = self.store.add("topic", row)
        elif isinstance(item, PostItem):
            row = {"mid": a["mid"], "author_hash": a.get("author_hash"), "author_raw": a.get("author_raw"),
                   "text": a["text"], "created_at": db.to_db_time(a.get("created_at")),
                   "reposts": a.get("reposts") or 0, "comments_count": a.get("comments_count") or 0,
                   "likes": a.get("likes") or 0, "source": a.get("source"),
                   "first_scraped_at": scraped, "scraped_at": scraped,
                   "full_text": a.get("full_text", True), "topics": list(a.get("topics") or []),
                   "ip_location": a.get("ip_location"), "is_retweet": bool(a.get("is_retweet"))}
            full = self.store.add("post", row)
        else:
            row = {"id": a["id"], "mid": a["mid"], "author_hash": a.get("author_hash"),
                   "author_raw": a.get("author_raw"), "reply_to_hash": a.get("reply_to_hash"),
                   "text": a["text"], "likes": a.get("likes") or 0,
                   "created_at": db.to_db_time(a.get("created_at")),
                   "source": a.get("source"), "ip_location": a.get("ip_location"),
                   "is_hot": bool(a.get("is_hot")), "root_id": a.get("root_id"),
                   "reply_to_id": a.get("reply_to_id"),
                   "first_scraped_at": scraped, "scraped_at": scraped}
            full = self.store.add("comment", row)
        return bool(full)

    def close_spider(self) -> None:
        if self.loop is not None and self.loop.running:
            self.loop.stop()
        if self.store is not None:
            self._flush(force=True)
            if self.store.pending():
                why = f" ({self.write_error})" if self.write_error else ""
                self.flush_error = (f"database unavailable at the end of the crawl{why}: "
                                    f"{self.store.lost()} rows of {len(self.store.lost_post_ids())} "
                                    f"posts could not be written (lost to database errors); the "
                                    f"next crawl fetches those posts' pages again")
                log.error("%s", self.flush_error)

    def spider_closed(self, spider: Any, reason: str) -> None:
        if self.store is None:
            return
        stats = self.crawler.stats
        all_stats = stats.get_stats()
        listed = all_stats.get("weibo/hotsearch_topics", 0)
        failure = getattr(spider, "failure", None) or self.flush_error
        shared = self.crawler.settings.get("SCHEDULER_BACKEND") == "redis"  # another crawler may have it
        hot = self.store.kind == "hot"   # a watch round reads no hot search
        if not hot:
            self._mark_watched(spider)
        if hot and not failure and reason == "finished" and "weibo/hotsearch_topics" not in all_stats \
                and not shared:
            failure = "the hot search was never answered (its request was dropped)"
        if not failure and listed and not self.store.counts()["topics"] and reason == "finished":
            failure = (f"the hot search listed {listed} topics but none could be stored "
                       f"(see dropped in the run's stats)")
        status = status_for_close(reason, failure)
        dropped = {k.split("/", 2)[2]: v for k, v in all_stats.items() if k.startswith("weibo/dropped/")}
        for why, n in self.store.dropped.items():
            dropped[why] = dropped.get(why, 0) + n
        errors = {
            "request_failures": all_stats.get("weibo/errors", 0),
            "malformed_pages": all_stats.get("weibo/malformed", 0),
            "spider_exceptions": all_stats.get("spider_exceptions/count", 0),
            "db_errors": all_stats.get("weibo/db_errors", 0) + self.store.db_errors,
        }
        counts = dict(self.store.counts(), pages=all_stats.get("weibo/pages", 0),
                      dropped=sum(dropped.values()), errors=sum(errors.values()))
        detail = {
            "finish_reason": reason,
            "dropped": dropped,
            "errors": errors,
            "malformed_urls": list(getattr(spider, "malformed_urls", []))[:100],
            "requests": all_stats.get("downloader/request_count", 0),
            "responses_by_status": {k.rsplit("/", 1)[1]: v for k, v in all_stats.items()
                                    if k.startswith("downloader/response_status_count/")},
            "retries": all_stats.get("retry/count", 0),
            "ban_answers": all_stats.get("weibo/ban_answers", 0),
            "login_walls": all_stats.get("weibo/login_walls", 0),
            "incremental_stops": all_stats.get("weibo/incremental_stops", 0),
            "hotsearch_topics": listed,
            "clamped": _by_reason(all_stats, "weibo/clamped/"),
            "truncated": _by_reason(all_stats, "weibo/truncated/"),
            "rows_lost": self.store.lost(),
            # posts whose pages the next crawl fetches again (weibo.store.Store.recrawl_plan)
            "recrawl_mids": sorted(set(self.store.lost_post_ids())
                                   | set(getattr(spider, "refetch_mids", ()))),
            "recrawled": all_stats.get("weibo/recrawled", 0),
            "pages_by_source": {k.split("/", 2)[2]: v for k, v in all_stats.items()
                                if k.startswith("weibo/pages/")},
            "source_fallbacks": list(getattr(spider, "source_fallbacks", []))[:200],
            "comment_stops": {k.split("/", 2)[2]: v for k, v in all_stats.items()
                              if k.startswith("weibo/comment_stops/")},
            "logins_refused": sorted(getattr(spider, "walled", ())),
        }
        if not hot:
            detail["watch"] = dict(getattr(spider, "watch_stats", {}))
        error = failure
        if status == "failed" and not error:
            error = f"crawl stopped early ({reason})"
        try:
            self.store.finish(status, counts, detail, error)
        except Exception as e:  # noqa: BLE001
            log.error("could not record the end of crawl run %d: %s", self.store.run_id, db.short_error(e))
            status = "failed"
        stats.set_value("weibo/status", status)
        log.info("crawl run %d %s: %d topics, posts %d new / %d updated, comments %d new / %d updated, "
                 "%d pages, %d dropped, %d errors", self.store.run_id, status, counts["topics"],
                 counts["posts_new"], counts["posts_updated"], counts["comments_new"],
                 counts["comments_updated"], counts["pages"], counts["dropped"], counts["errors"])
        self.store.close()


    def _mark_watched(self, spider: Any) -> None:
        """A watch round's progress per post (weibo.store.Store.mark_watched); never fatal."""
        try:
            self.store.mark_watched(dict(getattr(spider, "newest_seen", {})))
        except Exception as e:  # noqa: BLE001 - the comments are stored; the next round reads again
            log.error("could not record the watched posts' progress: %s", db.short_error(e))


def _by_reason(stats: dict[str, Any], prefix: str) -> dict[str, int]:
    return {k[len(prefix):]: v for k, v in stats.items() if k.startswith(prefix)}
