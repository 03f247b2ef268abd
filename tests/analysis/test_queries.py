"""The SQL aggregates give exactly the numbers worked out by hand from the seed (both engines).

See tests/analysis/seed.py for the table of comments and scores these numbers come from.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa
from sklearn.metrics import cohen_kappa_score

from analysis import queries as q
from analysis.compare_scorers import matrices, summary, weighted_kappa
from analysis.window import Window
from tests.analysis.seed import T1, T2, T3, A, B, seed
from weibo_mh import db

ALL = Window()


@pytest.fixture
def conn(db_url):
    seed(db_url)
    eng = db.make_engine(db_url)
    with eng.connect() as c:
        yield c
    eng.dispose()


def rows(df: pd.DataFrame, cols: list[str]) -> list[tuple]:
    out = []
    for r in df[cols].itertuples(index=False):
        out.append(tuple(x.strftime("%Y-%m-%d %H:%M") if isinstance(x, pd.Timestamp) else x for x in r))
    return out


def test_scorers_are_listed_most_used_first(conn):
    assert list(q.scorers(conn).items()) == [(B, 20), (A, 20)]  # a tie: by name
    assert q.dimensions(conn, A) == ("positivity", "mood_disorder", "substance_use", "suicide_risk")


def test_daily_series_over_all_comments(conn):
    s = q.series_all(conn, ALL, A, "day", threshold=7)
    # c5 has no created_at: it counts on the day it was scraped (11-02)
    assert rows(s, ["bucket", "dimension", "n", "total", "high"]) == [
        ("2026-11-01 00:00", "mood_disorder", 3, 9, 0),
        ("2026-11-01 00:00", "positivity", 3, 15, 1),
        ("2026-11-01 00:00", "substance_use", 3, 1, 0),
        ("2026-11-01 00:00", "suicide_risk", 3, 10, 1),
        ("2026-11-02 00:00", "mood_disorder", 2, 8, 1),
        ("2026-11-02 00:00", "positivity", 2, 7, 0),
        ("2026-11-02 00:00", "substance_use", 2, 3, 0),
        ("2026-11-02 00:00", "suicide_risk", 2, 8, 1),
    ]
    risk = s[s.dimension == "suicide_risk"]
    assert list(risk["mean"]) == pytest.approx([10 / 3, 4.0])
    assert list(risk["high"] / risk["n"]) == pytest.approx([1 / 3, 1 / 2])


def test_hourly_buckets_and_day_edges(conn):
    s = q.series_all(conn, ALL, A, "hour")
    risk = s[s.dimension == "suicide_risk"]
    # 23:59:59 stays on the 1st, 00:00:00 starts the 2nd
    assert rows(risk, ["bucket", "n", "total"]) == [
        ("2026-11-01 09:00", 2, 10), ("2026-11-01 23:00", 1, 0),
        ("2026-11-02 00:00", 1, 7), ("2026-11-02 10:00", 1, 1)]


def test_volume_counts_every_comment_scored_or_not(conn):
    v = q.volume_all(conn, ALL, "day")
    assert rows(v, ["bucket", "comments"]) == [("2026-11-01 00:00", 3), ("2026-11-02 00:00", 3),
                                               ("2026-11-03 00:00", 1)]


def test_per_topic_series_counts_a_comment_in_each_of_its_topics(conn):
    s = q.series_topics(conn, ALL, A, "day")
    risk = s[s.dimension == "suicide_risk"]
    assert rows(risk, ["topic", "bucket", "n", "total", "high"]) == [
        (T1, "2026-11-01 00:00", 2, 10, 1), (T1, "2026-11-02 00:00", 2, 8, 1),
        (T2, "2026-11-01 00:00", 1, 2, 0), (T2, "2026-11-02 00:00", 1, 7, 1),
        (T3, "2026-11-01 00:00", 1, 0, 0)]
    means = q.topic_means(s)
    m = means[means.dimension == "suicide_risk"]
    assert rows(m, ["topic", "n", "total"]) == [(T1, 4, 18), (T2, 2, 9), (T3, 1, 0)]
    assert list(m["mean"]) == pytest.approx([4.5, 4.5, 0.0])
    assert rows(q.top_topics(s, 2), ["topic", "comments"]) == [(T1, 4), (T2, 2)]
    ids = [int(i) for i in q.top_topics(s, 3)["topic_id"]]
    vol = q.volume_topics(conn, ALL, ids, "day")
    by_word = dict(zip(s["topic_id"], s["topic"], strict=False))
    assert [(by_word[t], b, n) for t, b, n in rows(vol, ["topic_id", "bucket", "comments"])] == [
        (T1, "2026-11-01 00:00", 2), (T1, "2026-11-02 00:00", 3),  # c6 (failed) is collected too
        (T2, "2026-11-01 00:00", 1), (T2, "2026-11-02 00:00", 1),
        (T3, "2026-11-01 00:00", 1), (T3, "2026-11-03 00:00", 1)]


def test_histogram_and_levels_by_topic(conn):
    h = q.histogram(conn, ALL, A)
    assert rows(h[h.dimension == "suicide_risk"], ["value", "count"]) == [(0, 1), (1, 1), (2, 1), (7, 1), (8, 1)]
    assert int(h["count"].sum()) == 20
    lv = q.levels_by_topic(conn, ALL, A)
    assert rows(lv, ["topic", "value", "count"]) == [
        (T1, 1, 1), (T1, 2, 1), (T1, 7, 1), (T1, 8, 1), (T2, 2, 1), (T2, 7, 1), (T3, 0, 1)]


def test_window_bounds_are_inclusive_days(conn):
    since = Window(since=datetime(2026, 11, 2))
    s = q.series_all(conn, since, A)
    assert set(s["bucket"].dt.strftime("%m-%d")) == {"11-02"}
    assert rows(s[s.dimension == "suicide_risk"], ["n", "total"]) == [(2, 8)]  # c4, and c5 by scraped_at
    late = Window(since=datetime(2026, 11, 2, 10, 10))  # c5 (scraped 10:30) in, c4 out
    assert rows(q.series_all(conn, late, A).query("dimension == 'suicide_risk'"), ["n", "total"]) == [(1, 1)]
    assert q.counts(conn, late, A, 7)["comments"] == 2  # c5 and c7
    until = Window(until=datetime(2026, 11, 2))  # what --until 2026-11-01 means
    s = q.series_all(conn, until, A)
    assert set(s["bucket"].dt.strftime("%m-%d")) == {"11-01"}
    assert q.series_all(conn, Window(since=datetime(2027, 1, 1)), A).empty


def test_topic_filter(conn):
    w = Window(topic="失眠")
    s = q.series_all(conn, w, A)  # comments on P2 only: c2 and c4
    assert rows(s[s.dimension == "suicide_risk"], ["n", "total"]) == [(1, 2), (1, 7)]
    t = q.series_topics(conn, w, A)
    assert set(t["topic"]) == {T2}
    assert q.topic_exists(conn, "失眠") and not q.topic_exists(conn, "不存在的话题")
    assert q.topic_exists(conn, "高考")
    assert not q.topic_exists(conn, "%")  # LIKE wildcards are escaped


def test_topic_heat_takes_the_peak_per_day(conn):
    h = q.topic_heat(conn, ALL, "day")
    assert rows(h, ["topic", "bucket", "heat", "rank"]) == [
        (T1, "2026-11-01 00:00", 600_000, 1), (T1, "2026-11-02 00:00", 800_000, 2),
        (T2, "2026-11-01 00:00", 300_000, 3), (T3, "2026-11-02 00:00", 100_000, 5)]


def test_alerts_are_bounded_and_carry_no_user_hashes(conn):
    rows_, total = q.alerts(conn, ALL, A, 7, limit=10)
    assert total == 2
    assert list(rows_["comment_id"]) == ["c1", "c4"]
    assert list(rows_["level"]) == [8, 7]
    assert rows_.loc[1, "topics"] == f"{T2} / {T1}"
    assert list(rows_.columns) == q.ALERT_COLUMNS
    assert not any("hash" in c for c in rows_.columns)
    one, total = q.alerts(conn, ALL, A, 7, limit=1)
    assert (len(one), total) == (1, 2)


def test_counts(conn):
    c = q.counts(conn, ALL, A, 7)
    assert {k: c[k] for k in ("comments", "pending", "failed", "done", "topics", "scored", "alerts")} == {
        "comments": 7, "pending": 1, "failed": 1, "done": 5, "topics": 3, "scored": 5, "alerts": 2}
    assert c["first"] == datetime(2026, 11, 1, 9, 15) and c["last"] == datetime(2026, 11, 3, 8)


def test_confusion_and_kappa(conn):
    conf = q.confusion(conn, ALL, A, B)
    risk = conf[conf.dimension == "suicide_risk"]
    assert rows(risk, ["a", "b", "count"]) == [(0, 0, 1), (1, 2, 1), (2, 2, 1), (7, 7, 1), (8, 7, 1)]
    m = matrices(conf)["suicide_risk"]
    a = [0, 1, 2, 7, 8]
    b = [0, 2, 2, 7, 7]
    expected = cohen_kappa_score(a, b, labels=list(range(11)), weights="quadratic")
    assert weighted_kappa(m) == pytest.approx(expected)
    s = summary(conf).set_index("dimension")
    assert s.loc["suicide_risk", "exact"] == pytest.approx(3 / 5)
    assert s.loc["suicide_risk", "within_1"] == pytest.approx(1.0)
    assert list(s.index) == ["positivity", "mood_disorder", "substance_use", "suicide_risk"]


def test_weighted_kappa_matches_scikit_learn_on_random_pairs():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 11, 500)
    y = np.clip(x + rng.integers(-2, 3, 500), 0, 10)
    m = np.zeros((11, 11), dtype=int)
    np.add.at(m, (x, y), 1)
    for w in ("quadratic", "linear"):
        assert weighted_kappa(m, w) == pytest.approx(cohen_kappa_score(x, y, labels=list(range(11)),
                                                                       weights=w))
    assert weighted_kappa(np.eye(11) * 3) == pytest.approx(1.0)
    assert np.isnan(weighted_kappa(np.zeros((11, 11))))


def test_bucket_sql_has_no_bound_parameters():
    """GROUP BY must repeat the SELECT expression exactly (MySQL ONLY_FULL_GROUP_BY)."""
    from sqlalchemy.dialects import mysql, sqlite

    for freq in ("day", "hour"):
        for dialect in (mysql.dialect(), sqlite.dialect()):
            compiled = sa.select(q.bucket(q.comment_time(), freq)).compile(dialect=dialect)
            assert not compiled.params
    assert "TIMESTAMPADD(HOUR" in str(sa.select(q.bucket(db.comments.c.created_at, "hour"))
                                      .compile(dialect=mysql.dialect()))
