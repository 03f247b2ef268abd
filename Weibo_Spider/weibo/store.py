"""The spider's database side: its crawl_runs row and batched upserts (SQLAlchemy Core).

One flush is one transaction in a fixed order (topics, snapshots, posts,
post_topics, comments) so foreign keys hold, and it is wrapped in
``retry_on_disconnect``: when the database drops the connection or restarts
mid-crawl the whole batch is written again, and upserts make that harmless.
A re-crawl updates counts, texts and scraped_at but never the comment's
scoring columns (score_status, attempts, …), and never duplicates a row.

One bad row costs only itself: rows are checked against the schema before they
are buffered (weibo.hygiene.misfit), and a batch the database rejects anyway is
written again row by row, so that only the rows it rejects again are dropped,
each counted by reason in ``dropped``. That is only for errors about the rows
(a key, a value, a length): when the database cannot take any row, because it
is away or because of its own state (disk full, read-only, too many
connections, locks held too long, a missing table: ``db.server_state_error``),
every row is kept for the next flush and ``DatabaseUnavailable`` says why and
what to do. Rows still unwritten at the end are ``lost``, and their posts are
listed for the next crawl to fetch again (``recrawl_plan``).

Deletion requests hold across crawls: rows of an author in ``forgotten_authors``
(``weibo-mh forget``) are dropped inside the write transaction, counted as
``forgotten_author`` among the run's dropped rows.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from functools import partial
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from weibo import hygiene
from weibo_mh import db

log = logging.getLogger(__name__)

#: How many past runs recrawl_plan looks back over, and how many post ids a run records.
RECRAWL_LOOKBACK = 50
RECRAWL_MAX_MIDS = 5000
TABLE_OF = {"topic": "topics", "post": "posts", "comment": "comments"}


POST_FULL_UPDATE = ["text", "reposts", "comments_count", "likes", "source", "ip_location",
                    "is_retweet", "scraped_at"]
POST_EXCERPT_UPDATE = ["reposts", "comments_count", "likes", "source", "is_retweet", "scraped_at"]
#: What a recrawl may change on a comment. Never its time or its IP location: Weibo fixes both
#: when the comment is posted, and the rollups (weibo_mh.rollups) count scores by them.
COMMENT_UPDATE = ["text", "likes", "is_hot", "scraped_at"]


class DatabaseUnavailable(RuntimeError):
    """The database can take no row now (its state, not the rows'): every row was kept."""


class WatchList(NamedTuple):
    """What a watch round reads besides its config (Store.sync_watch_list)."""
    #: mid -> the newest stored comment id, for every active watched post that has one
    known_newest: dict[str, str]
    #: the active posts a configured keyword found in earlier rounds: {mid, bid, label}
    keyword_posts: list[dict[str, str | None]]
    #: keyword-found posts this call retired: found longer ago than ``keyword_post_days``
    retired: int = 0


class Store:
    """Buffers items and writes them in batches; owns this run's crawl_runs row."""

    def __init__(self, url: str, flush_items: int = 200, attempts: int = 8) -> None:
        self.url = url
        self.engine = db.open_checked(url)
        self.flush_items = max(1, flush_items)
        self.attempts = max(1, attempts)
        self.dropped: Counter[str] = Counter()   # rows refused before or by the database, by reason
        self.started_at = db.now()
        self.down_until = 0.0   # monotonic time before which the database is taken to be away
        self.run_id = 0
        self.kind = "hot"
        self.topics: list[dict[str, Any]] = []
        self.posts: list[dict[str, Any]] = []
        self.comments: list[dict[str, Any]] = []
        self.post_new: dict[str, bool] = {}     # mid -> inserted by this run
        self.comment_new: dict[str, bool] = {}
        # What each key was when this run first looked, kept even if that transaction failed:
        # a commit whose reply was lost is retried, and the retry must not count its own rows
        # (now present) as updated.
        self._checked: dict[str, dict[str, bool]] = {"posts": {}, "comments": {}}
        self.snapshot_words: set[str] = set()
        self.rows_written = 0
        self.db_errors = 0
        self.last_flush = time.monotonic()

    # ----------------------------------------------------------------- run row

    def _tx(self, fn: Callable[[Connection], Any], what: str, attempts: int | None = None) -> Any:
        """One transaction, repeated after a lost connection (8 attempts wait about a minute)."""
        attempts = attempts or self.attempts

        def run() -> Any:
            with self.engine.connect() as conn:
                if db.is_sqlite(conn):
                    conn = conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    return fn(conn)
        return db.retry_on_disconnect(run, attempts=attempts, what=what)

    def start_run(self, run_id: int = 0, kind: str = "hot") -> int:
        """Insert this run's crawl_runs row (status running, its kind: hot or watch), or adopt
        the scheduler's row."""
        host = socket.gethostname()[:255]
        self.kind = kind

        def go(conn: Connection) -> int:
            t = db.crawl_runs
            if run_id:
                found = conn.execute(sa.select(t.c.id).where(t.c.id == run_id)).first()
                if found:
                    conn.execute(t.update().where(t.c.id == run_id).values(status="running", host=host,
                                                                           kind=kind))
                    return run_id
                log.warning("crawl run %d not found; recording a new run", run_id)
            res = conn.execute(t.insert().values(started_at=db.now(), status="running", host=host,
                                                 kind=kind))
            return int(res.inserted_primary_key[0])  # type: ignore[index]

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
        """Buffer one row (unless it cannot fit the schema: then dropped and counted).

        True when the buffer is full and should be flushed.
        """
        why = hygiene.misfit(TABLE_OF[kind], row)
        if not why and kind == "topic":
            why = hygiene.misfit("topic_snapshots", {k: v for k, v in row.items() if k != "word"})
        if why:
            self.dropped[why] += 1
            log.warning("%s row dropped before the database: %s", kind, why)
            return False
        {"topic": self.topics, "post": self.posts, "comment": self.comments}[kind].append(row)
        return self.pending() >= self.flush_items

    def lost(self) -> int:
        """Rows this run could not write because the database was away (still buffered)."""
        return self.pending()

    def lost_post_ids(self) -> list[str]:
        """Posts whose pages must be fetched again: rows still buffered, or noted lost."""
        mids = {p["mid"] for p in self.posts} | {c["mid"] for c in self.comments}
        return sorted(mids)[:RECRAWL_MAX_MIDS]

    def recrawl_plan(self) -> tuple[set[str], str]:
        """What earlier runs failed to store: (post ids to fetch again, reason for a full crawl).

        Looks at the runs since the last ``ok`` one. Each records the posts it lost in
        ``stats.recrawl_mids``; a run that ended without recording anything (killed, or the
        database was away at its end) makes the reason non-empty: then no page is skipped
        as "already stored" in this crawl.
        """
        t = db.crawl_runs
        host = socket.gethostname()[:255]

        def go(conn: Connection) -> tuple[set[str], str]:
            rows = conn.execute(sa.select(t.c.id, t.c.status, t.c.stats, t.c.host)
                                .where(t.c.id != self.run_id, t.c.kind == self.kind)
                                .order_by(t.c.id.desc())
                                .limit(RECRAWL_LOOKBACK)).all()
            mids: set[str] = set()
            full = ""
            for run_id, status, stats, run_host in rows:
                if status == "running" and run_host != host:
                    continue  # another machine's crawl, still under way
                try:
                    data = json.loads(stats) if stats else None
                except ValueError:
                    data = None
                if isinstance(data, dict):
                    mids.update(str(m) for m in data.get("recrawl_mids") or [])
                elif status != "ok" and not full:
                    full = f"crawl run {run_id} ({status}) ended without recording what it stored"
                if status == "ok":
                    break
            return mids, full

        try:
            return db.retry_on_disconnect(lambda: self._read(go), what="read earlier runs",
                                          attempts=self.attempts)
        except Exception as e:  # noqa: BLE001 - never stop a crawl over this: crawl in full
            return set(), f"earlier runs could not be read ({db.short_error(e)})"

    def pending(self) -> int:
        return len(self.topics) + len(self.posts) + len(self.comments)

    def known_comment_ids(self, ids: list[str]) -> set[str]:
        """Which of these comment ids the database already holds (incremental crawling)."""
        if not ids or time.monotonic() < self.down_until:
            return set()  # (the database just failed a write: do not wait for it on every page)

        def go(conn: Connection) -> set[str]:
            c = db.comments.c.id
            return {r[0] for r in conn.execute(sa.select(c).where(c.in_(ids)))}

        try:
            return db.retry_on_disconnect(lambda: self._read(go), what="read comment ids",
                                          attempts=min(self.attempts, 3))
        except Exception as e:  # noqa: BLE001 - an unknown answer means "not stored": page on
            log.warning("cannot check stored comments (%s); paging on", db.short_error(e))
            return set()

    def _read(self, fn: Callable[[Connection], Any]) -> Any:
        with self.engine.connect() as conn:
            return fn(conn)

    def flush(self) -> int:
        """Write the buffer (one transaction, retried after a lost connection). Returns rows.

        Raises DatabaseUnavailable, with every row kept, when the database cannot take any
        row (db.server_state_error); rows it refuses for themselves are dropped and counted.
        """
        batch = (self.topics, self.posts, self.comments)
        n = sum(len(b) for b in batch)
        self.last_flush = time.monotonic()
        if not n:
            return 0
        self.topics, self.posts, self.comments = [], [], []
        try:
            result = self._tx(lambda conn: self._write(conn, *batch), f"write {n} rows")
        except Exception as e:
            if why := db.server_state_error(e):
                # the database cannot take any row: keep them all for the next flush, drop none
                self._keep(*batch)
                raise DatabaseUnavailable(f"{why}; the rows are kept for the next flush") from e
            log.error("batch of %d rows rejected (%s); writing them one by one", n, db.short_error(e))
            result, n = self._write_one_by_one(*batch)
        self._merge(result)
        self.rows_written += n
        return n

    def _keep(self, topics: list[dict[str, Any]], posts: list[dict[str, Any]],
              comments: list[dict[str, Any]]) -> None:
        self.topics, self.posts, self.comments = (topics + self.topics, posts + self.posts,
                                                  comments + self.comments)

    def _write_one_by_one(self, topics: list[dict[str, Any]], posts: list[dict[str, Any]],
                          comments: list[dict[str, Any]]) -> tuple[dict[str, Any], int]:
        """Each row in its own transaction: only the rows rejected again are dropped (counted)."""
        merged: dict[str, Any] = {"post_new": {}, "comment_new": {}, "snapshots": set(), "forgotten": 0}
        Rows = list[dict[str, Any]]
        singles: list[tuple[str, tuple[Rows, Rows, Rows]]] = [("topic", ([t], [], [])) for t in topics] + \
                  [("post", ([], [p], [])) for p in posts] + \
                  [("comment", ([], [], [c])) for c in comments]
        written = 0
        for i, (kind, part) in enumerate(singles):
            try:
                r = self._tx(partial(self._write_part, part), f"write one {kind} row")
            except Exception as e:
                if why := db.server_state_error(e):  # it cannot take rows now: keep this one and the rest
                    rest = singles[i:]
                    self._keep([t for _, p in rest for t in p[0]], [x for _, p in rest for x in p[1]],
                               [c for _, p in rest for c in p[2]])
                    self._merge(merged)
                    self.rows_written += written
                    raise DatabaseUnavailable(f"{why}; {len(rest)} rows are kept for the next flush") from e
                self.db_errors += 1
                self.dropped[f"{kind}_rejected_by_database"] += 1
                log.error("%s row rejected by the database, dropped: %s", kind, db.short_error(e))
                continue
            written += 1
            merged["post_new"].update(r["post_new"])
            merged["comment_new"].update(r["comment_new"])
            merged["snapshots"] |= r["snapshots"]
            merged["forgotten"] += r["forgotten"]
        return merged, written

    def _write_part(self, part: tuple[list[dict[str, Any]], ...], conn: Connection) -> dict[str, Any]:
        return self._write(conn, *part)

    def _merge(self, result: dict[str, Any]) -> None:
        for mid, new in result["post_new"].items():
            self.post_new.setdefault(mid, new)
        for cid, new in result["comment_new"].items():
            self.comment_new.setdefault(cid, new)
        self.snapshot_words |= result["snapshots"]
        if result.get("forgotten"):
            self.dropped["forgotten_author"] += result["forgotten"]

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

        posts, comments, forgotten = self._drop_forgotten(conn, posts, comments)
        post_new = self._classify(conn, db.posts.c.mid, [p["mid"] for p in posts], self._checked["posts"])
        cols = [c.name for c in db.posts.columns]
        excerpts = [{k: p[k] for k in cols if k in p} for p in posts if not p.get("full_text", True)]
        full = [{k: p[k] for k in cols if k in p} for p in posts if p.get("full_text", True)]
        db.upsert(conn, db.posts, excerpts, update=POST_EXCERPT_UPDATE)
        db.upsert(conn, db.posts, full, update=POST_FULL_UPDATE)
        links = [{"mid": p["mid"], "topic_id": topic_ids[w], "first_seen": now}
                 for p in posts for w in p.get("topics", ())]
        db.upsert(conn, db.post_topics, links, update=[])

        comment_new = self._classify(conn, db.comments.c.id, [c["id"] for c in comments],
                                     self._checked["comments"])
        watched = self._watched(conn, {c["mid"] for c in comments})
        comments = [dict(c, priority=db.WATCHED_PRIORITY if c["mid"] in watched else 0) for c in comments]
        db.upsert(conn, db.comments, comments, update=COMMENT_UPDATE)
        return {"post_new": post_new, "comment_new": comment_new,
                "snapshots": {t["word"] for t in topics}, "forgotten": forgotten}

    @staticmethod
    def _drop_forgotten(conn: Connection, posts: list[dict[str, Any]], comments: list[dict[str, Any]]
                        ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
        """Honour deletion requests (``weibo-mh forget``, table forgotten_authors): comments of a
        forgotten author are dropped (counted), their posts are stored without text or author
        (other comments hang on them), and replies lose a forgotten reply target."""
        hashes = {r[k] for r in (*posts, *comments) for k in ("author_hash", "reply_to_hash") if r.get(k)}
        if not hashes:
            return posts, comments, 0
        f = db.forgotten_authors.c.hash
        gone = set(conn.execute(sa.select(f).where(f.in_(sorted(hashes)))).scalars())
        if not gone:
            return posts, comments, 0
        kept = [c if c.get("reply_to_hash") not in gone else dict(c, reply_to_hash=None)
                for c in comments if c.get("author_hash") not in gone]
        posts = [p if p.get("author_hash") not in gone else
                 dict(p, text="", author_hash=None, author_raw=None, full_text=True) for p in posts]
        return posts, kept, len(comments) - len(kept)

    @staticmethod
    def _watched(conn: Connection, mids: set[str]) -> set[str]:
        """Which of these posts are watched: their new comments are scored first (priority 1),
        whichever crawl (hot or watch) stores them."""
        if not mids:
            return set()
        w = db.watched_posts.c
        return set(conn.execute(sa.select(w.mid).where(w.mid.in_(sorted(mids)), w.active)).scalars())

    # ----------------------------------------------------------------- watch lists

    def sync_watch_list(self, posts: list[dict[str, str | None]], keywords: list[str],
                        stub_posts: bool = False, keyword_post_days: int = 0) -> WatchList:
        """Record the configured watched posts (mid, bid, label; origin post) and retire the
        rows the config no longer names (kept, inactive, for the console's history).

        ``keyword_post_days``: also retire the posts a keyword found longer ago than this (0:
        never), so that the rounds do not grow without end and the searches keep their time.

        ``stub_posts``: the comments come from the weibo.com JSON, which does not carry its
        post, so a post not stored yet gets a row without text (the comments' foreign key
        needs one); a weibo.cn page or a hot-topic crawl fills the text in later.

        Returns the newest stored comment id of every watched post that has one, and the
        active posts the configured keywords found before (a round reads them even when the
        newest search page no longer lists them)."""
        def go(conn: Connection) -> WatchList:
            w = db.watched_posts.c
            self._watch(conn, posts, "post")
            if stub_posts and posts:
                now = db.now()
                db.upsert(conn, db.posts, [{"mid": p["mid"], "text": "", "first_scraped_at": now,
                                            "scraped_at": now} for p in posts], update=[])
            conn.execute(db.watched_posts.update().where(
                w.origin == db.WATCH_ORIGIN_POST, w.mid.notin_([p["mid"] for p in posts]) if posts
                else sa.true()).values(active=False))
            origins = [f"keyword:{k}" for k in keywords]
            conn.execute(db.watched_posts.update().where(
                w.origin != db.WATCH_ORIGIN_POST, w.origin.notin_(origins) if origins
                else sa.true()).values(active=False))
            retired = 0
            if keyword_post_days:
                cutoff = db.now() - timedelta(days=keyword_post_days)
                retired = conn.execute(db.watched_posts.update().where(
                    w.active, w.origin != db.WATCH_ORIGIN_POST, w.added_at < cutoff).values(active=False)).rowcount
            newest = dict(conn.execute(sa.select(w.mid, w.newest_comment_id)
                                       .where(w.active, w.newest_comment_id.is_not(None))).all())
            found = [dict(r._mapping) for r in conn.execute(
                sa.select(w.mid, w.bid, w.label).where(w.active, w.origin != db.WATCH_ORIGIN_POST)
                .order_by(w.added_at.desc(), w.mid))]
            return WatchList(newest, found, retired)

        result: WatchList = self._tx(go, "record the watch list")
        return result

    def watch_found(self, posts: list[dict[str, str | None]], keyword: str) -> None:
        """Posts a keyword watch found: watched from now on (a configured post keeps its entry)."""
        self._tx(lambda conn: self._watch(conn, posts, f"keyword:{keyword}"), "record watched posts")

    def _watch(self, conn: Connection, posts: list[dict[str, str | None]], origin: str) -> None:
        if not posts:
            return
        w = db.watched_posts.c
        mids = [p["mid"] for p in posts]
        known = dict(conn.execute(sa.select(w.mid, w.origin).where(w.mid.in_(mids))).all())
        now = db.now()
        rows = [{"mid": p["mid"], "bid": p.get("bid"), "label": str(p["label"])[:64], "added_at": now,
                 "active": True,
                 "origin": db.WATCH_ORIGIN_POST if known.get(p["mid"]) == db.WATCH_ORIGIN_POST
                 else origin} for p in posts]
        db.upsert(conn, db.watched_posts, rows, update=["bid", "label", "origin", "active"])
        # comments stored before the post was watched (by a hot-topic crawl) are scored first too
        fresh = [m for m in mids if m not in known]
        if fresh:
            conn.execute(db.comments.update().where(
                db.comments.c.mid.in_(fresh), db.comments.c.score_status == "pending",
                db.comments.c.priority == 0).values(priority=db.WATCHED_PRIORITY))

    def mark_watched(self, newest: dict[str, list[str]]) -> None:
        """After a round: per post read, its newest stored comment (the first of ``ids``, newest
        first, that the database holds), when the round read it, and which round did. Posts
        whose rows are still buffered (the database was away) are left as they were."""
        unwritten = set(self.lost_post_ids())
        todo = {mid: ids for mid, ids in newest.items() if mid not in unwritten}
        if not todo:
            return

        def go(conn: Connection) -> None:
            c = db.comments.c
            all_ids = sorted({i for ids in todo.values() for i in ids})
            times: dict[str, Any] = {}
            for i in range(0, len(all_ids), 500):
                times.update(conn.execute(sa.select(c.id, c.created_at)
                                          .where(c.id.in_(all_ids[i:i + 500]))).all())
            now = db.now()
            w = db.watched_posts.c
            rows = []
            for mid, ids in todo.items():
                first = next((i for i in ids if i in times), None)
                rows.append({"b_mid": mid, "b_newest_id": first,
                             "b_newest_at": times[first] if first is not None else None})
            # one executemany; a post with no stored comment among ``ids`` keeps its newest
            # (id and time together: a comment's created_at may be NULL)
            newest_id = sa.bindparam("b_newest_id", type_=w.newest_comment_id.type)
            kept = newest_id.is_(None)
            conn.execute(db.watched_posts.update().where(w.mid == sa.bindparam("b_mid")).values(
                last_crawled_at=now, last_run_id=self.run_id,
                newest_comment_id=sa.case((kept, w.newest_comment_id), else_=newest_id),
                newest_comment_at=sa.case((kept, w.newest_comment_at),
                                          else_=sa.bindparam("b_newest_at", type_=w.newest_comment_at.type))),
                rows)

        self._tx(go, "record the watched posts' newest comments")

    @staticmethod
    def _classify(conn: Connection, col: sa.Column, keys: list[str], known: dict[str, bool]) -> dict[str, bool]:
        """key -> True if the row was new to the database when this run first looked (checked
        once per run and key; ``known`` keeps the answers)."""
        todo = sorted({k for k in keys if k not in known})
        found: set[str] = set()
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            found.update(r[0] for r in conn.execute(sa.select(col).where(col.in_(chunk))))
        known.update({k: k not in found for k in todo})
        return {k: known[k] for k in set(keys)}

    def close(self) -> None:
        self.engine.dispose()
