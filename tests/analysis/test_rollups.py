"""Rollups equal the raw rows: after a rebuild, after incremental writes, re-scores, deletions,
new topic links and collected comments, on SQLite and MariaDB."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import sqlalchemy as sa

from analysis import queries as Q
from analysis import rollup_queries as RQ
from analysis.window import Window
from tests.analysis.seed import A, B, seed
from tests.analysis.seed import topic_ids as seed_topic_ids
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


#: IP locations for the seed's comments (NULL: none shown), so the location rollups move too.
PLACES = {"c1": "广东", "c2": "广东", "c3": "北京", "c4": None, "c5": "海外", "c6": "北京", "c7": "广东"}


def test_incremental_writes_rescoring_deletion_and_links_keep_rollups_exact(db_url):
    seed(db_url, PLACES)
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
    with pytest.raises(sa.exc.DBAPIError), eng.begin() as conn:  # the CHECK constraint
        rollups.write_scores(conn, [dict(comment_id="c1", dimension="suicide_risk", scorer=A, value=11,
                                         rubric_version="r", scored_at=db.now())])
    assert rollups.verify(eng) == []
    eng.dispose()


# --------------------------------------------------------------------------- report figures

WINDOWS = [
    Window(),
    Window(D(2026, 11, 2), None),                        # whole days
    Window(D(2026, 10, 31, 9, 30), D(2026, 11, 2, 10)),  # partial first and last day
    Window(D(2026, 11, 1, 9, 30), D(2026, 11, 2, 10)),   # less than two days: raw
    Window(None, D(2026, 11, 2, 0, 30)),
    Window(None, None, "高考"),                           # one topic matches
    Window(D(2026, 11, 1, 12), None, "夜"),              # one topic, partial day
    Window(None, None, "a"),                              # no topic word contains it
]


def _norm(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame()
    df = df.copy()
    for c in df.columns:
        if c in ("n", "total", "high", "count", "comments", "topic_id", "value"):
            df[c] = df[c].astype("int64")
    return df.sort_values(list(df.columns[:-1] if "mean" not in df else
                               [c for c in df.columns if c not in ("mean",)])).reset_index(drop=True)


def assert_same_figures(url: str) -> None:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        p = RQ.plan(conn, WINDOWS[2])
        assert p is not None and p.links_ok and len(p.edges) == 2  # the rollups do answer
        for win in WINDOWS:
            for scorer in (A, "human:alice"):
                for name, args in (("series_all", (scorer,)), ("series_topics", (scorer,)),
                                   ("histogram", (scorer,)), ("levels_by_topic", (scorer,))):
                    raw = getattr(Q, name)(conn, win, *args)
                    rolled = getattr(RQ, name)(conn, win, *args)
                    pd.testing.assert_frame_equal(_norm(rolled), _norm(raw), check_dtype=False,
                                                  obj=f"{name} {win} {scorer}")
                assert RQ.count_alerts(conn, win, scorer, 7) == Q.count_alerts(conn, win, scorer, 7)
                for threshold, limit in ((7, 50), (6, 2), (2, 3)):   # 2: below risk_scores' floor
                    got, n = RQ.alerts(conn, win, scorer, threshold, limit)
                    want, n_raw = Q.alerts(conn, win, scorer, threshold, limit)
                    assert n == n_raw
                    pd.testing.assert_frame_equal(got, want, check_dtype=False,   # order included
                                                  obj=f"alerts {win} {scorer} {threshold} {limit}")
                pd.testing.assert_frame_equal(_norm(RQ.by_location(conn, win, scorer, 7)),
                                              _norm(Q.by_location(conn, win, scorer, 7)),
                                              check_dtype=False, obj=f"by_location {win} {scorer}")
                for other in (B, "human:alice"):
                    if other != scorer:
                        pd.testing.assert_frame_equal(_norm(RQ.confusion(conn, win, scorer, other)),
                                                      _norm(Q.confusion(conn, win, scorer, other)),
                                                      check_dtype=False, obj=f"confusion {win} {scorer}")
                assert RQ.counts(conn, win, scorer, 2) == Q.counts(conn, win, scorer, 2), (win, scorer)
            pd.testing.assert_frame_equal(_norm(RQ.volume_all(conn, win)), _norm(Q.volume_all(conn, win)),
                                          check_dtype=False)
            ids = list(seed_topic_ids(url).values())
            pd.testing.assert_frame_equal(_norm(RQ.volume_topics(conn, win, ids)),
                                          _norm(Q.volume_topics(conn, win, ids)), check_dtype=False)
    eng.dispose()


def test_report_figures_from_rollups_equal_the_raw_rows(db_url):
    seed(db_url, PLACES)
    assert_same_figures(db_url)
    eng = db.make_engine(db_url)
    t = D(2026, 11, 2, 8)
    with eng.begin() as conn:   # re-score, new scores, a human label, a deletion, a new comment
        rollups.write_scores(conn, [
            dict(comment_id="c1", dimension="suicide_risk", scorer=A, value=2, rubric_version="r", scored_at=t),
            dict(comment_id="c6", dimension="suicide_risk", scorer=A, value=10, rubric_version="r", scored_at=t)])
        rollups.write_human_labels(conn, "alice", [("c4", "suicide_risk", 9), ("c2", "suicide_risk", 1)], "r")
        rollups.delete_comments(conn, ["c3"])
        conn.execute(db.comments.insert().values(id="c9", mid="P2", text="刚来的评论", created_at=t,
                                                 first_scraped_at=db.now() + timedelta(hours=1),
                                                 scraped_at=db.now()))
    assert_same_figures(db_url)   # c9 is past the watermark: counted from the raw tail
    eng.dispose()


def test_agreement_and_catalogue_from_either_side_equal_the_raw_rows(db_url):
    seed(db_url)
    eng = db.make_engine(db_url)
    with eng.connect() as conn:
        for a, b in ((A, B), (B, A)):
            pd.testing.assert_frame_equal(RQ.confusion(conn, Window(), a, b), Q.confusion(conn, Window(), a, b),
                                          check_dtype=False)
        built = Q.scorers(conn)
        assert Q.dimensions(conn, A) == ("positivity", "mood_disorder", "substance_use", "suicide_risk")
    with eng.begin() as conn:
        conn.execute(db.rollup_state.delete())   # rollups not built: the raw catalogue
    with eng.connect() as conn:
        assert Q.scorers(conn) == built == {A: 20, B: 20}
    eng.dispose()


def test_a_version_1_database_with_data_upgrades_and_gets_its_rollups(db_url):
    """Migration 2 on a database made by version 1: new tables and indexes, rollups of what it holds."""
    seed(db_url)
    eng = db.make_engine(db_url)
    with eng.connect() as conn:
        want = rollups.snapshot(conn)
    with eng.begin() as conn:  # back to version 1: drop what migration 2 adds
        for t in (db.score_rollups, db.pair_rollups, db.rollup_links, db.rollup_state):
            t.drop(conn)
        for table, ix in (("scores", "ix_scores_alerts"), ("post_topics", "ix_pt_first_seen"),
                          ("comments", "ix_comments_first_scraped")):
            conn.exec_driver_sql(f"DROP INDEX {ix}" + ("" if db.is_sqlite(conn) else f" ON {table}"))
        conn.execute(db.schema_version.delete().where(db.schema_version.c.version > 1))
    assert db.current_version(eng) == 1
    assert db.migrate(eng) == [v for v in sorted(db.MIGRATIONS) if v > 1]
    insp = sa.inspect(eng)
    assert {"score_rollups", "rollup_links", "rollup_state"} <= set(insp.get_table_names())
    assert "ix_scores_alerts" in {i["name"] for i in insp.get_indexes("scores")}
    with eng.connect() as conn:
        got = rollups.snapshot(conn)
    eng.dispose()
    assert got == want and got


def test_exclude_uncertain_leaves_flagged_scores_out_on_the_default_path(sqlite_url):
    """The rollups do not know which scores were flagged, so the flag sends the query to the raw rows."""
    from dataclasses import replace

    seed(sqlite_url)
    eng = db.make_engine(sqlite_url)
    with eng.begin() as conn:
        conn.execute(db.scores.update().where(db.scores.c.comment_id == "c1", db.scores.c.scorer == A)
                     .values(uncertain=True))
    win = replace(WINDOWS[2], exclude_uncertain=True)
    with eng.connect() as conn:
        assert RQ.plan(conn, win) is None
        kept = RQ.histogram(conn, win, A)
        pd.testing.assert_frame_equal(_norm(kept), _norm(Q.histogram(conn, win, A)), check_dtype=False)
        assert int(kept["count"].sum()) < int(RQ.histogram(conn, WINDOWS[2], A)["count"].sum())
    eng.dispose()


def test_the_dependent_lists_name_every_table_that_points_at_comments_alerts_or_posts():
    """A new table with a foreign key into comments, alerts or posts must be listed, or deleting
    through weibo_mh.rollups (retention, forget) would fail on its rows."""
    def pointing_at(target: sa.Table) -> set[tuple[str, str]]:
        return {(fk.parent.table.name, fk.parent.name) for t in db.metadata.tables.values()
                for fk in t.foreign_keys if fk.column.table is target}

    # scores go with their comments, and comments with their posts, by rollups' own code
    assert pointing_at(db.comments) - {("scores", "comment_id")} == \
        {(t.name, c) for t, c in rollups.COMMENT_DEPENDENTS}
    assert pointing_at(db.alerts) == {(t.name, c) for t, c in rollups.ALERT_DEPENDENTS}
    assert pointing_at(db.posts) - {("comments", "mid")} == {(t.name, c) for t, c in rollups.POST_DEPENDENTS}
