"""Rollups equal the raw rows: after a rebuild, after incremental writes, re-scores, deletions,
new topic links and collected comments, on SQLite and MariaDB."""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from tests.analysis.seed import A, B, seed
from weibo_mh import db, rollups

D = datetime


def _rebuilt(conn: sa.Connection) -> dict:
    tx = conn.begin_nested()
    until = rollups.state(conn, rollups.WATERMARK)
    rollups.rebuild(conn, lag=timedelta(0), now=until)
    want = rollups.snapshot(conn)
    tx.rollback()
    return want


def assert_exact(engine: sa.Engine) -> None:
    with engine.connect() as conn, conn.begin():
        assert rollups.snapshot(conn) == _rebuilt(conn)


def test_incremental_writes_rescoring_deletion_and_links_keep_rollups_exact(db_url):
    seed(db_url)
    eng = db.make_engine(db_url)
    assert rollups.verify(eng) == []
    t = D(2026, 11, 3, 12)
    with eng.begin() as conn:
        snap = rollups.snapshot(conn)
        # c4 (P2: topics T1 and T2) was at suicide risk 7 under A
        key = (A, "suicide_risk", D(2026, 11, 2).date(), 0)
        assert snap[key][0] == 2 and snap[key][2 + 7] == 1
        # a re-score moves c4 from 7 to 3; a first score of c7 by A; a human label
        rollups.write_scores(conn, [
            dict(comment_id="c4", dimension="suicide_risk", scorer=A, value=3, confidence=0.4,
                 rubric_version="r", scored_at=t),
            dict(comment_id="c7", dimension="suicide_risk", scorer=A, value=9, confidence=None,
                 rubric_version="r", scored_at=t)])
        rollups.write_human_labels(conn, "alice", [("c1", "suicide_risk", 8), ("c4", "positivity", 2)], "r")
    assert_exact(eng)
    with eng.begin() as conn:
        snap = rollups.snapshot(conn)
        assert snap[key][2 + 7] == 0 and snap[key][2 + 3] == 1 and snap[key][1] == 3 + 1
    # deleting scores of one scorer, then whole comments
    with eng.begin() as conn:
        rollups.delete_scores(conn, ["c2"], scorer=B)
    assert_exact(eng)
    with eng.begin() as conn:
        assert rollups.delete_comments(conn, ["c1", "c6"]) == 2
    assert_exact(eng)
    # a post joins another topic after its comments were scored; a new comment arrives
    with eng.begin() as conn:
        t2 = conn.execute(sa.select(db.topics.c.id).where(db.topics.c.word == "周末出游")).scalar()
        conn.execute(db.post_topics.insert().values(mid="P1", topic_id=t2, first_seen=db.now()))
        conn.execute(db.comments.insert().values(id="c8", mid="P3", text="新评论", created_at=t,
                                                 first_scraped_at=db.now() + timedelta(seconds=1),
                                                 scraped_at=db.now()))
        # not attributed yet: the report reads such links from the raw rows
        assert len(conn.execute(rollups.unattributed_links(conn)).all()) == 1
        out = rollups.refresh(conn, lag=timedelta(0), now=db.now() + timedelta(seconds=2))
        assert out == {"links": 1, "comments": 1}
        again = rollups.refresh(conn, lag=timedelta(0), now=db.now() + timedelta(seconds=2))
        assert again == {"links": 0, "comments": 0}  # idempotent
    assert_exact(eng)
    assert rollups.verify(eng) == []
    eng.dispose()


def test_new_links_are_attributed_before_a_score_is_added(db_url):
    seed(db_url)
    eng = db.make_engine(db_url)
    with eng.begin() as conn:
        t3 = conn.execute(sa.select(db.topics.c.id).where(db.topics.c.word == "周末出游")).scalar()
        conn.execute(db.post_topics.insert().values(mid="P2", topic_id=t3, first_seen=db.now()))
        rollups.write_scores(conn, [dict(comment_id="c2", dimension="suicide_risk", scorer=B, value=5,
                                         confidence=None, rubric_version="r", scored_at=db.now())])
    assert_exact(eng)
    eng.dispose()


def test_scores_for_unknown_comments_or_bad_levels_are_refused(sqlite_url):
    import pytest

    seed(sqlite_url)
    eng = db.make_engine(sqlite_url)
    with pytest.raises(ValueError, match="not stored"), eng.begin() as conn:
        rollups.write_scores(conn, [dict(comment_id="nope", dimension="suicide_risk", scorer=A, value=1,
                                         rubric_version="r", scored_at=db.now())])
    with pytest.raises(ValueError, match="outside 0-10"), eng.begin() as conn:
        rollups.write_scores(conn, [dict(comment_id="c1", dimension="suicide_risk", scorer=A, value=11,
                                         rubric_version="r", scored_at=db.now())])
    assert rollups.verify(eng) == []
    eng.dispose()
