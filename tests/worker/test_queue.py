"""The queue on the comments table: claims, leases, attempts, write-back, failures, requeue.

Every test runs on SQLite and on MariaDB (the db_url fixture).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from llm_worker.queue import MAX_OUTPUT_CHARS, Queue, requeue_done, requeue_failed
from llm_worker.scoring.backends.base import DimensionScore, ScoreResult
from weibo_mh import db
from weibo_mh.rubric import CORE_DIMENSIONS, RUBRIC_VERSION

from .seed import score_rows, seed, states

DIMS = CORE_DIMENSIONS


def ok(value: int = 4) -> ScoreResult:
    return ScoreResult(scores={d: DimensionScore(value, 0.9, None) for d in DIMS})


def expire_leases(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(db.comments).where(db.comments.c.score_status == "claimed")
                     .values(lease_until=db.now() - timedelta(seconds=5)))


def test_claim_takes_pending_comments_with_a_lease_and_their_topic(engine):
    ids = seed(engine, 5, topic="高考放榜")
    q = Queue(engine, "w1", lease_seconds=300)
    got = q.claim(3)
    assert [c.id for c in got] == ids[:3]
    assert all(c.topic == "高考放榜" and c.text and c.attempts == 1 for c in got)
    st = states(engine)
    for cid in ids[:3]:
        assert st[cid]["score_status"] == "claimed" and st[cid]["claimed_by"] == "w1"
        assert st[cid]["lease_until"] > db.now() + timedelta(seconds=250)
    assert all(st[cid]["score_status"] == "pending" for cid in ids[3:])


def test_topic_is_the_most_recently_seen_one_and_empty_without_any(engine):
    seed(engine, 1, topic="", mid="m0", prefix="x")
    t = db.now()
    seed(engine, 1, topic="旧话题", mid="m1", prefix="y")
    with engine.begin() as conn:
        conn.execute(sa.update(db.topics).where(db.topics.c.word == "旧话题")
                     .values(last_seen=t - timedelta(days=2)))
        conn.execute(db.topics.insert().values(word="新话题", first_seen=t, last_seen=t))
        tid = conn.execute(sa.select(db.topics.c.id).where(db.topics.c.word == "新话题")).scalar_one()
        conn.execute(db.post_topics.insert().values(mid="m1", topic_id=tid, first_seen=t))
    got = {c.id: c.topic for c in Queue(engine, "w1").claim(10)}
    assert got == {"x000000": "", "y000000": "新话题"}


def test_two_workers_never_get_the_same_comment(engine):
    seed(engine, 10)
    a, b = Queue(engine, "a"), Queue(engine, "b")
    first, second = a.claim(6), b.claim(6)
    assert len(first) == 6 and len(second) == 4
    assert not {c.id for c in first} & {c.id for c in second}
    assert a.claim(5) == [] and b.claim(5) == []  # all held, leases still running


def test_an_expired_lease_is_claimed_again_and_the_late_writer_loses(engine):
    ids = seed(engine, 2)
    slow, other = Queue(engine, "slow"), Queue(engine, "other")
    mine = slow.claim(2)
    expire_leases(engine)
    taken = other.claim(5)
    assert [c.id for c in taken] == ids and all(c.attempts == 2 for c in taken)

    late = slow.complete(mine, [ok(1), ok(1)], "s:v1", RUBRIC_VERSION, DIMS)
    assert (late.done, late.lost) == (0, 2)
    assert score_rows(engine) == []

    won = other.complete(taken, [ok(7), ok(7)], "s:v1", RUBRIC_VERSION, DIMS)
    assert won.done == 2
    rows = score_rows(engine)
    assert len(rows) == 2 * len(DIMS) and {r["value"] for r in rows} == {7}
    assert {s["claimed_by"] for s in states(engine).values()} == {"other"}


def test_complete_writes_every_dimension_and_marks_done(engine):
    ids = seed(engine, 2)
    q = Queue(engine, "w1")
    items = q.claim(2)
    out = q.complete(items, [ok(2), ok(9)], "s:v1", RUBRIC_VERSION, DIMS)
    assert out.done == 2
    rows = score_rows(engine)
    assert {(r["comment_id"], r["dimension"]) for r in rows} == {(i, d) for i in ids for d in DIMS}
    assert all(r["rubric_version"] == RUBRIC_VERSION and r["scorer"] == "s:v1" for r in rows)
    assert all(r["confidence"] == pytest.approx(0.9) and r["truncated"] is False for r in rows)
    st = states(engine)
    assert all(s["score_status"] == "done" and s["scored_at"] and s["lease_until"] is None
               for s in st.values())


def test_write_back_is_all_or_nothing(engine):
    """A value the database refuses (11) rolls back the whole batch: no scores, still claimed."""
    seed(engine, 2)
    q = Queue(engine, "w1")
    items = q.claim(2)
    bad = ScoreResult(scores={d: DimensionScore(11 if d == DIMS[-1] else 1) for d in DIMS})
    with pytest.raises(sa.exc.DBAPIError):  # IntegrityError; MariaDB: OperationalError 4025
        q.complete(items, [ok(), bad], "s:v1", RUBRIC_VERSION, DIMS)
    assert score_rows(engine) == []
    assert {s["score_status"] for s in states(engine).values()} == {"claimed"}
    assert q.complete(items, [ok(), ok()], "s:v1", RUBRIC_VERSION, DIMS).done == 2


def test_rescoring_by_the_same_scorer_replaces_and_another_scorer_adds(engine):
    seed(engine, 3)
    q = Queue(engine, "w1")
    q.complete(items := q.claim(3), [ok(1)] * 3, "a:v1", RUBRIC_VERSION, DIMS)
    assert requeue_done(engine) == 3
    q.complete(q.claim(3), [ok(5)] * 3, "a:v1", RUBRIC_VERSION, DIMS)
    assert requeue_done(engine, missing_scorer="a:v1") == 0
    assert requeue_done(engine, missing_scorer="b:v1") == 3
    q.complete(q.claim(3), [ok(8)] * 3, "b:v1", RUBRIC_VERSION, DIMS)
    rows = score_rows(engine)
    assert len(rows) == 2 * 3 * len(DIMS)
    by_scorer = {s: {r["value"] for r in rows if r["scorer"] == s} for s in ("a:v1", "b:v1")}
    assert by_scorer == {"a:v1": {5}, "b:v1": {8}}
    assert len(items) == 3


def test_an_error_is_retried_until_max_attempts_then_failed_with_output_kept(engine):
    (cid,) = seed(engine, 1)
    q = Queue(engine, "w1", max_attempts=2)
    err = ScoreResult(error="unparsable answer", raw_output="乱" * 5000)
    assert q.complete(q.claim(1), [err], "s:v1", RUBRIC_VERSION, DIMS).retry == 1
    s = states(engine)[cid]
    assert (s["score_status"], s["attempts"], s["claimed_by"]) == ("pending", 1, None)
    assert s["last_error"] == "unparsable answer"

    assert q.complete(q.claim(1), [err], "s:v1", RUBRIC_VERSION, DIMS).failed == 1
    s = states(engine)[cid]
    assert (s["score_status"], s["attempts"]) == ("failed", 2)
    assert s["last_error"] == "unparsable answer"
    assert 100 < len(s["last_output"]) <= MAX_OUTPUT_CHARS and s["last_output"].startswith("乱")
    assert q.claim(1) == [] and score_rows(engine) == []


def test_a_final_error_fails_at_once(engine):
    (cid,) = seed(engine, 1)
    q = Queue(engine, "w1", max_attempts=5)
    bad = ScoreResult(error="invalid after stricter retry", raw_output='{"a": 12}', final=True)
    assert q.complete(q.claim(1), [bad], "s:v1", RUBRIC_VERSION, DIMS).failed == 1
    s = states(engine)[cid]
    assert (s["score_status"], s["attempts"], s["last_output"]) == ("failed", 1, '{"a": 12}')


def test_release_on_shutdown_does_not_count_the_attempt(engine):
    (cid,) = seed(engine, 1)
    q = Queue(engine, "w1")
    assert q.release(q.claim(1)).retry == 1
    s = states(engine)[cid]
    assert (s["score_status"], s["attempts"], s["claimed_by"], s["lease_until"]) == ("pending", 0, None, None)


def test_release_after_a_backend_error_counts_and_fails_at_max_attempts(engine):
    (cid,) = seed(engine, 1)
    q = Queue(engine, "w1", max_attempts=2)
    assert q.release(q.claim(1), error="boom").retry == 1
    assert states(engine)[cid]["attempts"] == 1
    assert q.release(q.claim(1), error="boom").failed == 1
    s = states(engine)[cid]
    assert s["score_status"] == "failed" and "boom" in s["last_error"]


def test_requeue_failed_gives_a_fresh_attempt_count(engine):
    ids = seed(engine, 3)
    q = Queue(engine, "w1", max_attempts=1)
    items = q.claim(3)
    q.complete(items, [ok(), ScoreResult(error="x"), ScoreResult(error="y")], "s:v1", RUBRIC_VERSION, DIMS)
    assert requeue_failed(engine) == 2
    st = states(engine)
    assert [st[i]["score_status"] for i in ids] == ["done", "pending", "pending"]
    assert [st[i]["attempts"] for i in ids] == [1, 0, 0]
    assert requeue_failed(engine) == 0


def test_a_comment_whose_worker_died_on_every_attempt_fails_instead_of_looping(engine):
    """E.g. a text that makes the model process run out of memory: each worker dies on it."""
    ids = seed(engine, 2)
    q = Queue(engine, "w1", max_attempts=2)
    q.claim(1)
    expire_leases(engine)
    assert [i.id for i in q.claim(1)] == [ids[0]]      # second attempt
    expire_leases(engine)
    assert [i.id for i in q.claim(5)] == [ids[1]]      # the first is given up on
    s = states(engine)[ids[0]]
    assert s["score_status"] == "failed" and "lease expired" in s["last_error"]


def test_a_claim_whose_answer_was_lost_is_taken_back_on_retry(engine):
    """The claim committed, then the connection died before we read the rows: the retry
    takes those same rows back instead of leaving them claimed until the lease runs out."""
    ids = seed(engine, 6)
    q = Queue(engine, "w1", lease_seconds=300)
    real_tx = q._claim_tx
    calls = []

    def commit_then_lose_the_connection(limit, reclaim_own=False):
        calls.append(reclaim_own)
        got = real_tx(limit, reclaim_own)
        if len(calls) == 1:
            raise sa.exc.OperationalError("claim", {}, Exception("Lost connection to server during query"))
        return got

    q._claim_tx = commit_then_lose_the_connection
    got = q.claim(4)
    assert calls == [False, True]
    assert [c.id for c in got] == ids[:4]
    st = states(engine)
    assert [st[i]["score_status"] for i in ids] == ["claimed"] * 4 + ["pending"] * 2
    assert all(st[i]["attempts"] == 1 for i in ids[:4])
