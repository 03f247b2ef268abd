"""The spider's database side: its crawl_runs row and batched upserts (SQLAlchemy Core).

One flush is one transaction in a fixed order (topics, snapshots, posts,
post_topics, comments) so foreign keys hold, and it is wrapped in
``retry_on_disconnect``: when the database drops the connection or restarts
mid-crawl the whole batch is written again, and upserts make that harmless.
A re-crawl updates counts, texts and scraped_at but never the comment's
scoring columns (score_status, attempts, …), and never duplicates a row.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from weibo_mh import db

log = logging.getLogger(__name__)

POST_FULL_UPDATE = ["text", "reposts", "comments_count", "likes", "source", "ip_location",
                    "is_retweet", "scraped_at"]
POST_EXCERPT_UPDATE = ["reposts", "comments_count", "likes", "source", "is_retweet", "scraped_at"]
COMMENT_UPDATE = ["text", "likes", "ip_location", "is_hot", "scraped_at"]


class Store:
    """Buffers items and writes them in batches; owns this run's crawl_runs row."""

    def __init__(self, url: str, flush_items: int = 200) -> None:
        self.url = url
        self.engine = db.open_checked(url)
        self.flush_items = max(1, flush_items)
        self.run_id = 0
        self.topics: list[dict[str, Any]] = []
        self.posts: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.post_new: dict[str, bool] = {}     # mid -> inserted by this run
        self.comment_new: dict[str, bool] = {}
        self.snapshot_words: set[str] = set()
        self.rows_written = 0
        self.db_errors = 0
        self.last_flush = time.monotonic()

    # ----------------------------------------------------------------- run row

    def _tx(self, fn: Callable[[Connection], Any], what: str, attempts: int = 8) -> Any:
        """One transaction, repeated after a lost connection (8 attempts wait about a minute)."""
        def run() -> Any:
            with self.engine.connect() as conn:
                if db.is_sqlite(conn):
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    return fn(conn)
        return db.retry_on_disconnect(run, attempts=attempts, what=what)

    def start_run(self, run_id: int = 0) -> int:
        """Insert this run's crawl_runs row (status running), or adopt the scheduler's row."""
        host = socket.gethostname()[:255]

        def go(conn: Connection) -> int:
            t = db.crawl_runs
            if run_id:
                found = conn.execute(sa.select(t.c.id).where(t.c.id == run_id)).first()
                if found:
                    conn.execute(t.update().where(t.c.id == run_id).values(status="running", host=host))
                    return run_id
                log.warning("crawl run %d not found; recording a new run", run_id)
            res = conn.execute(t.insert().values(started_at=db.now(), status="running", host=host))
            return int(res.inserted_primary_key[0])

        self.run_id = self._tx(go, "start crawl run")
        return self.run_id

    def finish(self, status: str, counts: dict[str, int], stats: dict[str, Any],
               error: str | None) -> None:
        values = dict(counts, status=status, finished_at=db.now(), error=error,
                      stats=json.dumps(stats, ensure_ascii=False, default=str, sort_keys=True))

        def go(conn: Connection) -> None:
            conn.execute(db.crawl_runs.update().where(db.crawl_runs.c.id == self.run_id).values(**values))

        self._tx(go, "finish crawl run")

    def counts(self) -> dict[str, int]:
        return {
            "topics": len(self.snapshot_words),
            "posts_new": sum(1 for v in self.post_new.values() if v),
            "posts_updated": sum(1 for v in self.post_new.values() if not v),
            "comments_new": sum(1 for v in self.comment_new.values() if v),
            "comments_updated": sum(1 for v in self.comment_new.values() if not v),
        }

    # ----------------------------------------------------------------- buffering

    def add(self, kind: str, row: dict[str, Any]) -> bool:
        """Buffer one row; True when the buffer is full and should be flushed."""
        {"topic": self.topics, "post": self.posts, "comment": self.comments}[kind].append(row)
        return self.pending() >= self.flush_items

    def pending(self) -> int:
        return len(self.topics) + len(self.posts) + len(self.comments)

    def known_comment_ids(self, ids: list[str]) -> set[str]:
        """Which of these comment ids the database already holds (incremental crawling)."""
        if not ids:
            return set()

        def go(conn: Connection) -> set[str]:
            c = db.comments.c.id
            return {r[0] for r in conn.execute(sa.select(c).where(c.in_(ids)))}

        try:
            return db.retry_on_disconnect(lambda: self._read(go), what="read comment ids")
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as e:
            log.warning("cannot check stored comments (%s); paging on", db.short_error(e))
            return set()

    def _read(self, fn: Callable[[Connection], Any]) -> Any:
        with self.engine.connect() as conn:
            return fn(conn)

    def flush(self) -> int:
        """Write the buffer (one transaction, retried after a lost connection). Returns rows."""
        batch = (self.topics, self.posts, self.comments)
        n = sum(len(b) for b in batch)
        self.last_flush = time.monotonic()
        if not n:
            return 0
        self.topics, self.posts, self.comments = [], [], []
        try:
            result = self._tx(lambda conn: self._write(conn, *batch), f"write {n} rows")
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            # the database stayed away: keep the rows for the next flush instead of losing them
            self.topics, self.posts, self.comments = (batch[0] + self.topics, batch[1] + self.posts,
                                                      batch[2] + self.comments)
            raise
        except (sa.exc.IntegrityError, sa.exc.DataError, sa.exc.StatementError) as e:
            log.error("batch of %d rows rejected (%s); writing them one by one", n, db.short_error(e))
            result = self._write_one_by_one(*batch)
        self._merge(result)
        self.rows_written += n
        return n

    def _write_one_by_one(self, topics: list[dict[str, Any]], posts: list[dict[str, Any]],
                          comments: list[dict[str, Any]]) -> dict[str, Any]:
        merged: dict[str, Any] = {"post_new": {}, "comment_new": {}, "snapshots": set()}
        singles = [([t], [], []) for t in topics] + [([], [p], []) for p in posts] + \
                  [([], [], [c]) for c in comments]
        for part in singles:
            try:
                r = self._tx(lambda conn, part=part: self._write(conn, *part), "write one row")
            except sa.exc.SQLAlchemyError as e:
                self.db_errors += 1
                log.error("row rejected by the database, dropped: %s", db.short_error(e))
                continue
            merged["post_new"].update(r["post_new"])
            merged["comment_new"].update(r["comment_new"])
            merged["snapshots"] |= r["snapshots"]
        return merged

    def _merge(self, result: dict[str, Any]) -> None:
        for mid, new in result["post_new"].items():
            self.post_new.setdefault(mid, new)
        for cid, new in result["comment_new"].items():
            self.comment_new.setdefault(cid, new)
        self.snapshot_words |= result["snapshots"]

    # ----------------------------------------------------------------- the transaction

    def _write(self, conn: Connection, topics: list[dict[str, Any]], posts: list[dict[str, Any]],
               comments: list[dict[str, Any]]) -> dict[str, Any]:
        now = db.now()
        words = {t["word"] for t in topics} | {w for p in posts for w in p.get("topics", ())}
        topic_ids: dict[str, int] = {}
        if words:
            db.upsert(conn, db.topics, [{"word": w, "first_seen": now, "last_seen": now} for w in words],
                      update=["last_seen"], keys=["word"])
            q = sa.select(db.topics.c.word, db.topics.c.id).where(db.topics.c.word.in_(words))
            topic_ids = {w: i for w, i in conn.execute(q)}
        snaps = [{"crawl_run_id": self.run_id, "topic_id": topic_ids[t["word"]], "rank": t["rank"],
                  "heat": t["heat"], "category": t["category"], "label": t.get("label"),
                  "seen_at": t["seen_at"]} for t in topics]
        db.upsert(conn, db.topic_snapshots, snaps, update=["rank", "heat", "category", "label", "seen_at"],
                  keys=["crawl_run_id", "topic_id"])

        post_new = self._classify(conn, db.posts.c.mid, [p["mid"] for p in posts], self.post_new)
        cols = [c.name for c in db.posts.columns]
        excerpts = [{k: p[k] for k in cols if k in p} for p in posts if not p.get("full_text", True)]
        full = [{k: p[k] for k in cols if k in p} for p in posts if p.get("full_text", True)]
        db.upsert(conn, db.posts, excerpts, update=POST_EXCERPT_UPDATE)
        db.upsert(conn, db.posts, full, update=POST_FULL_UPDATE)
        links = [{"mid": p["mid"], "topic_id": topic_ids[w], "first_seen": now}
                 for p in posts for w in p.get("topics", ())]
        db.upsert(conn, db.post_topics, links, update=[])

        comment_new = self._classify(conn, db.comments.c.id, [c["id"] for c in comments], self.comment_new)
        db.upsert(conn, db.comments, comments, update=COMMENT_UPDATE)
        return {"post_new": post_new, "comment_new": comment_new,
                "snapshots": {t["word"] for t in topics}}

    @staticmethod
    def _classify(conn: Connection, col: sa.Column, keys: list[str], known: dict[str, bool]) -> dict[str, bool]:
        """key -> True if the row is new to the database (checked once per run and key)."""
        todo = sorted({k for k in keys if k not in known})
        found: set[str] = set()
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            found.update(r[0] for r in conn.execute(sa.select(col).where(col.in_(chunk))))
        return {k: k not in found for k in todo}

    def close(self) -> None:
        self.engine.dispose()
