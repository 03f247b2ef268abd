"""The scoring queue, kept on the comments table itself: claim, complete, fail, release, requeue.

Watched posts' comments (``priority`` = db.WATCHED_PRIORITY, set by the spider) are claimed
before the backlog: each claim first takes pending watched comments through their own index
(ix_comments_priority_queue: ``priority = 1 AND score_status = 'pending'`` is one short range),
then fills the batch as before (docs/worker.md, Watched comments first).

A comment is ``pending`` until a worker claims it (``claimed``, with ``claimed_by`` and
a lease), then ``done`` (its scores written) or ``failed`` (``last_error`` and the
model's raw ``last_output`` kept). A claim whose lease has run out (the worker died)
is claimable again. Every claim counts an attempt.

Claims are atomic and never block each other: MySQL/MariaDB select the rows with
``FOR UPDATE SKIP LOCKED`` inside a short transaction; SQLite takes the write lock
up front with ``BEGIN IMMEDIATE``. Write-back stores all dimensions of a comment and
marks it done in one transaction, and only while this worker still holds the claim,
so that a comment is never scored twice even when a slow worker's lease ran out and
another worker took the comment over.

Every public call is one transaction wrapped in ``db.retry_on_disconnect``: a killed
session or a database restart is retried from the start of the transaction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from llm_worker.scoring.backends.base import ScoreResult
from weibo_mh import db, rollups
from weibo_mh.sanitize import clean_text, for_db

log = logging.getLogger(__name__)

c = db.comments.c

#: Raw model output kept for a failed comment, in characters.
MAX_OUTPUT_CHARS = 2000
MAX_ERROR_CHARS = 1000
MAX_RATIONALE_CHARS = 2000
#: Retries of one transaction after a lost connection (waits 0.5, 1, 2 … 30 s: about a minute).
DB_RETRIES = 8

#: How long a worker that found no watched comment waiting goes before it looks again.
WATCHED_RECHECK_SECONDS = 1.0

DIED = ("lease expired on the last allowed attempt: the worker scoring it stopped without "
        "writing back (crash, kill or hang)")



@dataclass(frozen=True)
class Claimed:
    """One claimed comment: what the backend needs, plus the attempt number."""

    id: str
    mid: str
    text: str
    topic: str
    attempts: int


@dataclass
class Outcome:
    """What a write-back did: done (scored), failed (for good), retry (back to pending),
    lost (the claim had passed to another worker; nothing written)."""

    done: int = 0
    failed: int = 0
    retry: int = 0
    lost: int = 0

    def __iadd__(self, other: Outcome) -> Outcome:
        self.done += other.done
        self.failed += other.failed
        self.retry += other.retry
        self.lost += other.lost
        return self


class Queue:
    """The queue as seen by one worker (``worker_id`` is written to claimed_by; it must be
    unique among running workers, which the default host-pid id is)."""

    def __init__(self, engine: Engine, worker_id: str, lease_seconds: int = 600,
                 max_attempts: int = 3) -> None:
        if not worker_id or len(worker_id) > 128:
            raise ValueError("worker_id must be 1-128 characters")
        self.engine = engine
        self.worker_id = worker_id
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self._conn: Connection | None = None
        self._watched_next_check = 0.0   # monotonic time of the next look for watched comments

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """A write transaction (BEGIN IMMEDIATE on SQLite) on this worker's own connection.

        The connection is kept between transactions, which saves the pool's ping and
        reset round trips on every call; after any error it is dropped, so that a killed
        session is replaced by a fresh one on the retry.
        """
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._discard()
            self._conn = self.engine.connect()
            self._conn.execution_options(sqlite_begin="IMMEDIATE")
        try:
            with self._conn.begin():
                yield self._conn
        except BaseException:
            self._discard()
            raise

    def _discard(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001 - the connection may be dead already
                pass
            self._conn = None

    def close(self) -> None:
        """Return the connection to the pool (the worker calls this when it stops)."""
        self._discard()

    def _retry(self, fn: Any, what: str) -> Any:
        return db.retry_on_disconnect(fn, attempts=DB_RETRIES, what=what)

    # ------------------------------------------------------------------ claim

    def claim(self, limit: int) -> list[Claimed]:
        """Claim up to ``limit`` comments (expired leases first, then pending ones)."""
        if limit < 1:
            return []
        tries = 0

        def tx() -> list[Claimed]:
            nonlocal tries
            tries += 1
            return self._claim_tx(limit, reclaim_own=tries > 1)

        return self._retry(tx, "claim")

    def _claim_tx(self, limit: int, reclaim_own: bool = False) -> list[Claimed]:
        t = db.now()
        with self._begin() as conn:
            # Both branches are ranges of ix_comments_queue (MySQL: one range scan with two
            # intervals; SQLite: MULTI-INDEX OR), so done rows are never walked. Expired
            # claims sort first ('claimed' < 'pending').
            claimable = sa.or_(sa.and_(c.score_status == "claimed", c.lease_until < t),
                               c.score_status == "pending")
            if reclaim_own:
                # The connection died while the last claim committed: its rows are ours but
                # we never saw them. Take them back now, or a --once run would leave them
                # claimed until their lease ran out. Their attempt was already counted.
                own = conn.execute(sa.select(c.id).where(
                    c.score_status == "claimed", c.claimed_by == self.worker_id)
                    .limit(limit).with_for_update(skip_locked=True)).scalars().all()
                if own:
                    conn.execute(sa.update(db.comments).where(c.id.in_(own)).values(
                        lease_until=t + timedelta(seconds=self.lease_seconds)))
                    log.warning("event=reclaimed_own_claims comments=%d", len(own))
                    return self._fetch(conn, own)
            rows = self._claimable(conn, limit, claimable)
            # A comment whose worker died on its last allowed attempt (an input that kills
            # the model process, say) fails here instead of killing worker after worker.
            dead = [r.id for r in rows if r.score_status == "claimed" and r.attempts >= self.max_attempts]
            if dead:
                conn.execute(sa.update(db.comments).where(c.id.in_(dead)).values(
                    score_status="failed", lease_until=None, last_error=DIED))
                log.warning("event=failed_after_expired_leases comments=%d", len(dead))
            ids = [r.id for r in rows if r.id not in dead]
            if ids:
                conn.execute(sa.update(db.comments).where(c.id.in_(ids)).values(
                    score_status="claimed", claimed_by=self.worker_id,
                    lease_until=t + timedelta(seconds=self.lease_seconds),
                    attempts=c.attempts + 1))
                # Read the texts in the same transaction: one round of connection
                # checkout and commit fewer per batch.
                return self._fetch(conn, ids)
        return []

    def _claimable(self, conn: Connection, limit: int, claimable: Any) -> list[Any]:
        """Up to ``limit`` rows to claim, locked: pending watched comments first, then the rest.

        A worker that found no watched comment waiting looks again at most every
        WATCHED_RECHECK_SECONDS: with a fast scorer (the lexicon: thousands of comments a
        second) that saves a statement per batch, and a watched comment waits that long at most.
        """
        cols = (c.id, c.score_status, c.attempts)
        rows: list[Any] = []
        if time.monotonic() >= self._watched_next_check:
            rows = list(conn.execute(sa.select(*cols).where(c.priority == db.WATCHED_PRIORITY,
                                                            c.score_status == "pending")
                                     .limit(limit).with_for_update(skip_locked=True)).all())
            if len(rows) < limit:   # none left waiting (or locked by another worker)
                self._watched_next_check = time.monotonic() + WATCHED_RECHECK_SECONDS
        if len(rows) < limit:
            q = sa.select(*cols).where(claimable)
            if rows:  # our own locks are not skipped: leave out the rows already taken
                q = q.where(c.id.notin_([r.id for r in rows]))
            rows += conn.execute(q.limit(limit - len(rows)).with_for_update(skip_locked=True)).all()
        return rows

    def _fetch(self, conn: Connection, ids: Sequence[str]) -> list[Claimed]:
        # On SQLite read the text as bytes: a row holding invalid UTF-8 (written by
        # another tool) would otherwise raise inside the driver. MySQL validates on insert.
        text_col = (sa.cast(c.text, sa.LargeBinary) if db.is_sqlite(conn) else c.text)
        rows = conn.execute(sa.select(c.id, c.mid, text_col.label("text"), c.attempts,
                                      _TOPIC.label("topic"))
                            .where(c.id.in_(ids), c.claimed_by == self.worker_id)).all()
        by_id = {r.id: r for r in rows}
        return [Claimed(id=r.id, mid=r.mid, text=clean_text(r.text), topic=clean_text(r.topic),
                        attempts=int(r.attempts))
                for i in ids if (r := by_id.get(i)) is not None]

    # ------------------------------------------------------------------ lease renewal

    def renew(self, ids: Sequence[str]) -> int:
        """Push the lease of those of ``ids`` this worker still holds a full lease ahead.

        Called by the worker's heartbeat thread while the backend is busy, so it uses a
        connection of its own (the worker's is not shared between threads) and makes one
        attempt only: a heartbeat that fails is simply tried again at the next beat.
        Returns how many claims are still held.
        """
        if not ids:
            return 0
        t = db.now()
        with self.engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                return int(conn.execute(
                    sa.update(db.comments)
                    .where(c.id.in_(list(ids)), c.claimed_by == self.worker_id,
                           c.score_status == "claimed")
                    .values(lease_until=t + timedelta(seconds=self.lease_seconds))).rowcount)

    # ------------------------------------------------------------------ write-back

    def complete(self, items: Sequence[Claimed], results: Sequence[ScoreResult], scorer: str,
                 rubric_version: str, dimensions: Sequence[str]) -> Outcome:
        """Write the scores of successful items and mark them done; failed items go back to
        pending or become failed. One transaction; items no longer held are skipped (lost)."""
        if len(items) != len(results):
            raise ValueError(f"{len(results)} results for {len(items)} items")
        if not items:
            return Outcome()
        return self._retry(lambda: self._complete_tx(items, results, scorer, rubric_version,
                                                     tuple(dimensions)), "write back scores")

    def _held(self, conn: Connection, ids: Sequence[str]) -> set[str]:
        q = (sa.select(c.id).where(c.id.in_(ids), c.claimed_by == self.worker_id,
                                   c.score_status == "claimed").with_for_update())
        return set(conn.execute(q).scalars())

    def _complete_tx(self, items: Sequence[Claimed], results: Sequence[ScoreResult], scorer: str,
                     rubric_version: str, dimensions: tuple[str, ...]) -> Outcome:
        out = Outcome()
        t = db.now()
        with self._begin() as conn:
            held = self._held(conn, [i.id for i in items])
            rows: list[dict[str, Any]] = []
            done: list[str] = []
            for item, res in zip(items, results, strict=True):
                if item.id not in held:
                    out.lost += 1
                    continue
                if res.error is None:
                    for dim in dimensions:
                        s = res.scores[dim]
                        rows.append({"comment_id": item.id, "dimension": dim, "scorer": scorer,
                                     "value": int(s.value), "confidence": _confidence(s.confidence),
                                     "rationale": for_db(s.rationale, MAX_RATIONALE_CHARS),
                                     "rubric_version": rubric_version,
                                     "truncated": bool(res.truncated), "scored_at": t,
                                     "answer_mass": _confidence(s.answer_mass),
                                     "answer_mass_gap": _confidence(s.mass_gap),
                                     "uncertain": None if s.uncertain is None else bool(s.uncertain)})
                    done.append(item.id)
                elif res.final or item.attempts >= self.max_attempts:
                    self._set_failed(conn, item.id, res.error, res.raw_output)
                    out.failed += 1
                else:
                    self._set_pending(conn, item.id, res.error, res.raw_output)
                    out.retry += 1
            if rows:
                # Scores and their daily rollups in one transaction (weibo_mh.rollups).
                rollups.write_scores(conn, rows)
            rollups.refresh(conn)
            if done:
                conn.execute(sa.update(db.comments).where(c.id.in_(done)).values(
                    score_status="done", lease_until=None, scored_at=t,
                    last_error=None, last_output=None))
                out.done = len(done)
        if out.lost:
            log.warning("event=lost worker=%s lost=%d reason=claim_taken_over hint='lease expired "
                        "before write-back; raise worker.lease_seconds'", self.worker_id, out.lost)
        return out

    def _set_failed(self, conn: Connection, cid: str, error: str, raw: str | None) -> None:
        conn.execute(sa.update(db.comments).where(c.id == cid).values(
            score_status="failed", lease_until=None,
            last_error=for_db(error, MAX_ERROR_CHARS) or "error",
            last_output=for_db(raw, MAX_OUTPUT_CHARS)))

    def _set_pending(self, conn: Connection, cid: str, error: str | None, raw: str | None,
                     uncount: bool = False) -> None:
        values: dict[str, Any] = {"score_status": "pending", "claimed_by": None, "lease_until": None}
        if error is not None:
            values["last_error"] = for_db(error, MAX_ERROR_CHARS)
            values["last_output"] = for_db(raw, MAX_OUTPUT_CHARS)
        if uncount:
            values["attempts"] = sa.case((c.attempts > 0, c.attempts - 1), else_=0)
        conn.execute(sa.update(db.comments).where(c.id == cid).values(**values))

    # ------------------------------------------------------------------ release

    def release(self, items: Sequence[Claimed], error: str | None = None) -> Outcome:
        """Give a batch back without scores.

        With ``error`` (the backend failed for the whole batch) the attempt counts: the
        items go back to pending, or become failed once they have used max_attempts, so a
        comment that crashes the backend every time cannot loop forever. Without an error
        (shutdown) the attempt is not counted.
        """
        if not items:
            return Outcome()
        return self._retry(lambda: self._release_tx(items, error), "release batch")

    def _release_tx(self, items: Sequence[Claimed], error: str | None) -> Outcome:
        out = Outcome()
        with self._begin() as conn:
            held = self._held(conn, [i.id for i in items])
            for item in items:
                if item.id not in held:
                    out.lost += 1
                elif error is not None and item.attempts >= self.max_attempts:
                    self._set_failed(conn, item.id, f"backend error: {error}", None)
                    out.failed += 1
                else:
                    self._set_pending(conn, item.id, None if error is None else f"backend error: {error}",
                                      None, uncount=error is None)
                    out.retry += 1
        return out

    # ------------------------------------------------------------------ inspection

    def counts(self) -> dict[str, int]:
        return queue_counts(self.engine)

    def backlog(self) -> dict[str, int]:
        """Pending and failed comments (index range counts, cheap while the backlog is small)."""
        with self.engine.connect() as conn:
            return {s: int(conn.execute(sa.select(sa.func.count()).select_from(db.comments)
                                        .where(c.score_status == s)).scalar() or 0)
                    for s in ("pending", "failed")}


#: The word of the comment's post's most recently seen hot topic (NULL when it has none).
_TOPIC = (sa.select(db.topics.c.word)
          .join(db.post_topics, db.post_topics.c.topic_id == db.topics.c.id)
          .where(db.post_topics.c.mid == c.mid)
          .order_by(db.topics.c.last_seen.desc(), db.topics.c.word.desc())
          .limit(1).scalar_subquery())

def _confidence(value: float | None) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


# ---------------------------------------------------------------------- admin


def queue_counts(engine: Engine) -> dict[str, int]:
    """Comments per score_status (all four keys present)."""
    with engine.connect() as conn:
        got: dict[str, int] = dict(conn.execute(sa.select(c.score_status, sa.func.count())
                                .group_by(c.score_status)).all())
    return {s: int(got.get(s, 0)) for s in db.SCORE_STATUSES}


def requeue_failed(engine: Engine) -> int:
    """Failed comments back to pending with a fresh attempt count (last_error is kept until
    the next attempt overwrites it). Returns how many."""
    def tx() -> int:
        with engine.begin() as conn:
            return conn.execute(sa.update(db.comments).where(c.score_status == "failed").values(
                score_status="pending", claimed_by=None, lease_until=None, attempts=0)).rowcount
    return int(db.retry_on_disconnect(tx, attempts=DB_RETRIES, what="requeue failed"))


def requeue_done(engine: Engine, missing_scorer: str | None = None) -> int:
    """Done comments back to pending so that another scorer scores them too (scores are kept;
    a re-score by the same scorer replaces its rows). With ``missing_scorer``, only comments
    that scorer has not scored yet."""
    def tx() -> int:
        cond = [c.score_status == "done"]
        if missing_scorer:
            s = db.scores.c
            cond.append(~sa.exists().where(s.comment_id == c.id, s.scorer == missing_scorer))
        with engine.begin() as conn:
            return conn.execute(sa.update(db.comments).where(*cond).values(
                score_status="pending", claimed_by=None, lease_until=None, attempts=0)).rowcount
    return int(db.retry_on_disconnect(tx, attempts=DB_RETRIES, what="requeue done"))
