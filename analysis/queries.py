"""The SQL aggregates behind every chart: GROUP BY time bucket, topic, dimension, level.

The database does the counting; Python only ever sees aggregated rows (their
number grows with topics x time buckets x dimensions, never with comments) plus
the alert rows, which a threshold and a limit bound. So memory stays flat whether
the database holds a thousand comments or ten million.
The same SQLAlchemy Core expressions run on MySQL/MariaDB and SQLite; the only
dialect-specific bit is truncating a DATETIME to its day or hour (``bucket``).

Joins: comments -> posts (mid) -> post_topics -> topics. A comment on a post in
several topics counts once per topic in per-topic aggregates, and once in
"all comments" aggregates. A comment's time is ``created_at``, or ``first_scraped_at``
when Weibo did not give one.

These functions read the raw rows; ``analysis.rollup_queries`` answers the same
questions from the daily rollups (what the report uses by default) and falls back
to these where rollups cannot answer (hourly buckets, several matched topics).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from analysis.window import Window
from weibo_mh.db import comments as C
from weibo_mh.db import post_topics as PT
from weibo_mh.db import scores as S
from weibo_mh.db import topic_snapshots as TS
from weibo_mh.db import topics as T
from weibo_mh.rubric import CORE_DIMENSIONS, SUICIDE_RISK

RISK = SUICIDE_RISK
UNKNOWN_LOCATION = "unknown"   # the IP location of comments Weibo showed none for


# --------------------------------------------------------------------------- time buckets


class day_bucket(FunctionElement):  # noqa: N801 - reads like a SQL function
    """The calendar day of a DATETIME (stored as Asia/Shanghai time, so a Chinese day)."""

    name = "day_bucket"
    inherit_cache = True


class hour_bucket(FunctionElement):  # noqa: N801
    """A DATETIME truncated to the start of its hour."""

    name = "hour_bucket"
    inherit_cache = True


@compiles(day_bucket)
def _day_default(element: Any, compiler: Any, **kw: Any) -> str:
    return f"DATE({compiler.process(element.clauses, **kw)})"


@compiles(day_bucket, "sqlite")
def _day_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"date({compiler.process(element.clauses, **kw)})"


@compiles(hour_bucket)
def _hour_mysql(element: Any, compiler: Any, **kw: Any) -> str:
    x = compiler.process(element.clauses, **kw)
    return f"TIMESTAMPADD(HOUR, HOUR({x}), DATE({x}))"


@compiles(hour_bucket, "sqlite")
def _hour_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return f"strftime('%Y-%m-%d %H:00:00', {compiler.process(element.clauses, **kw)})"


class no_index(FunctionElement):  # noqa: N801
    """A column SQLite must not use an index for (``+col``); other databases see the column.

    SQLite's planner likes to walk all comments and probe scores per comment, which is
    several times slower than scanning one scorer's scores and probing comments by id.
    ``comments.id = +scores.comment_id`` leaves it only the fast order.
    """

    name = "no_index"
    inherit_cache = True


@compiles(no_index)
def _no_index_default(element: Any, compiler: Any, **kw: Any) -> str:
    return compiler.process(element.clauses, **kw)


@compiles(no_index, "sqlite")
def _no_index_sqlite(element: Any, compiler: Any, **kw: Any) -> str:
    return "+" + compiler.process(element.clauses, **kw)


def scored_comments(win: Window | None = None) -> Any:
    """scores JOIN comments.

    Without a start bound every score of the scorer is read anyway, and scores first
    is the fast order (see ``no_index``). With ``--since`` the planner may instead
    walk the comments' time index, which is far faster for a recent window.
    """
    return S.join(C, C.c.id == (S.c.comment_id if _recent(win) else no_index(S.c.comment_id)))


def bucket(expr: Any, freq: str) -> Any:
    """``expr`` truncated to its day or hour. No bound parameters, so GROUP BY matches SELECT."""
    if freq == "day":
        return day_bucket(expr)
    if freq == "hour":
        return hour_bucket(expr)
    raise ValueError(f"freq must be day or hour, not {freq!r}")


def _recent(win: Window | None) -> bool:
    return win is not None and win.since is not None


def scorer_is(scorer: str, win: Window | None = None, table: Any = None) -> Any:
    """``scores.scorer = NAME``; with a start bound SQLite must not drive the join from the
    scorer index, so that it walks the comments' time index instead (see ``scored_comments``).
    With ``win.exclude_uncertain`` scores flagged uncertain are left out too."""
    tbl = S if table is None else table
    cond = (no_index(tbl.c.scorer) if _recent(win) else tbl.c.scorer) == scorer
    if win is not None and win.exclude_uncertain:  # NULL: a scorer that never judges
        cond = sa.and_(cond, sa.or_(tbl.c.uncertain.is_(None), tbl.c.uncertain == sa.false()))
    return cond


def comment_time() -> Any:
    """When a comment was written; first_scraped_at (when we first saw it, which never
    changes) stands in when Weibo gave no time. The rollups use the same day."""
    return sa.func.coalesce(C.c.created_at, C.c.first_scraped_at)


def to_times(values: pd.Series) -> pd.Series:
    """Buckets come back as strings (SQLite) or date/datetime (MySQL); make them timestamps."""
    return pd.to_datetime(values.astype(str))


# --------------------------------------------------------------------------- filters


def topic_match(word: str) -> Any:
    return T.c.word.contains(word, autoescape=True)


def window_conditions(win: Window) -> list[Any]:
    """WHERE conditions on ``comments`` for the window (time span and topic filter)."""
    # Spelled out instead of COALESCE(created_at, scraped_at) >= x, so that an index on
    # created_at can serve the common case of a recent window.
    created, scraped = C.c.created_at, C.c.first_scraped_at
    conds: list[Any] = []
    if win.since is not None:
        conds.append(sa.or_(created >= win.since, sa.and_(created.is_(None), scraped >= win.since)))
    if win.until is not None:
        conds.append(sa.or_(created < win.until, sa.and_(created.is_(None), scraped < win.until)))
    if win.topic:
        in_topic = (sa.select(sa.literal(1)).select_from(PT.join(T, T.c.id == PT.c.topic_id))
                    .where(PT.c.mid == C.c.mid, topic_match(win.topic)))
        conds.append(sa.exists(in_topic))
    return conds


def _frame(conn: Connection, stmt: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in conn.execute(stmt)], columns=columns)


def _ints(df: pd.DataFrame, cols: list[str]) -> pd.DataFrame:
    for c in cols:
        df[c] = pd.to_numeric(df[c]).fillna(0).astype("int64")
    return df


def order_dimensions(dims: list[str] | set[str]) -> tuple[str, ...]:
    core = [d for d in CORE_DIMENSIONS if d in dims]
    return tuple(core + sorted(d for d in dims if d not in CORE_DIMENSIONS))


# --------------------------------------------------------------------------- catalogue


def _rollups_built(conn: Connection) -> bool:
    from weibo_mh import rollups

    try:
        return rollups.state(conn, rollups.WATERMARK) is not None
    except sa.exc.DBAPIError:  # an older schema without the rollup tables
        return False


def scorers(conn: Connection) -> dict[str, int]:
    """Scorer name -> number of score rows, most used first (from the rollups when built:
    the same numbers without walking every score)."""
    n = sa.func.count().label("n")
    if _rollups_built(conn):
        from weibo_mh.db import score_rollups as R

        total = sa.func.sum(R.c.n).label("n")
        q = (sa.select(R.c.scorer, total)
             .where(R.c.topic_id == 0, R.c.scorer != "", R.c.dimension != "")
             .group_by(R.c.scorer).having(total > 0).order_by(total.desc(), R.c.scorer))
        return {r[0]: int(r[1]) for r in conn.execute(q)}
    rows = conn.execute(sa.select(S.c.scorer, n).group_by(S.c.scorer).order_by(n.desc(), S.c.scorer))
    return {r[0]: int(r[1]) for r in rows}


def dimensions(conn: Connection, scorer: str) -> tuple[str, ...]:
    if _rollups_built(conn):
        from weibo_mh.db import score_rollups as R

        q = (sa.select(R.c.dimension).where(R.c.scorer == scorer, R.c.topic_id == 0, R.c.dimension != "")
             .group_by(R.c.dimension).having(sa.func.sum(R.c.n) > 0))
        return order_dimensions({r[0] for r in conn.execute(q)})
    rows = conn.execute(sa.select(S.c.dimension).where(S.c.scorer == scorer).distinct())
    return order_dimensions({r[0] for r in rows})


def topic_exists(conn: Connection, word: str) -> bool:
    return conn.execute(sa.select(T.c.id).where(topic_match(word)).limit(1)).first() is not None


# --------------------------------------------------------------------------- aggregates


def _score_sums(threshold: int) -> list[Any]:
    return [sa.func.count().label("n"), sa.func.sum(S.c.value).label("total"),
            sa.func.sum(sa.case((S.c.value >= threshold, 1), else_=0)).label("high")]


def _finish_sums(df: pd.DataFrame) -> pd.DataFrame:
    df = _ints(df, ["n", "total", "high"])
    df["mean"] = df["total"] / df["n"]
    return df


def series_all(conn: Connection, win: Window, scorer: str, freq: str = "day",
               threshold: int = 7) -> pd.DataFrame:
    """Per bucket and dimension, over all comments: n, total, high (value >= threshold), mean.

    ``high``/``n`` on the suicide_risk rows is the share of high-risk comments.
    """
    b = bucket(comment_time(), freq).label("bucket")
    stmt = (sa.select(b, S.c.dimension, *_score_sums(threshold))
            .select_from(scored_comments(win))
            .where(scorer_is(scorer, win), *window_conditions(win))
            .group_by(b, S.c.dimension))
    df = _frame(conn, stmt, ["bucket", "dimension", "n", "total", "high"])
    df["bucket"] = to_times(df["bucket"])
    return _finish_sums(df).sort_values(["bucket", "dimension"], ignore_index=True)


def by_location(conn: Connection, win: Window, scorer: str, threshold: int) -> pd.DataFrame:
    """Per IP location and core dimension: n, total, high (value >= threshold), mean.

    One GROUP BY in the database; NULL locations form one group, named ``unknown``.
    """
    loc = C.c.ip_location
    stmt = (sa.select(loc, S.c.dimension, *_score_sums(threshold))
            .select_from(scored_comments(win))
            .where(scorer_is(scorer, win), S.c.dimension.in_(CORE_DIMENSIONS), *window_conditions(win))
            .group_by(loc, S.c.dimension))
    df = _frame(conn, stmt, ["location", "dimension", "n", "total", "high"])
    df["location"] = df["location"].fillna(UNKNOWN_LOCATION).astype(str)
    return _finish_sums(df)


def _time_only(win: Window) -> list[Any]:
    return window_conditions(Window(win.since, win.until, None))


def _topic_only(win: Window) -> list[Any]:
    return [topic_match(win.topic)] if win.topic else []


def _no_mid_walk(stmt: Any) -> Any:
    """MySQL/MariaDB: per-post sums must not walk comments by the mid index.

    That order saves a sort but turns every score lookup into random I/O: 83 s instead
    of 10 s for a million comments with a default-sized buffer pool.
    """
    for name in ("mysql", "mariadb"):
        stmt = stmt.with_hint(C, "IGNORE INDEX (ix_comments_mid)", dialect_name=name)
    return stmt


def series_topics(conn: Connection, win: Window, scorer: str, freq: str = "day",
                  threshold: int = 7) -> pd.DataFrame:
    """Like ``series_all`` per topic: topic_id, topic, bucket, dimension, n, total, high, mean.

    Sums are first taken per post (mid), then joined to the post's topics: the same
    numbers as joining every score to its topics, with far fewer rows to join.
    """
    b = bucket(comment_time(), freq).label("bucket")
    per_post = (sa.select(C.c.mid, b, S.c.dimension, *_score_sums(threshold))
                .select_from(scored_comments(win))
                .where(scorer_is(scorer, win), *_time_only(win))
                .group_by(C.c.mid, b, S.c.dimension))
    per_post = _no_mid_walk(per_post).subquery("per_post")
    p = per_post.c
    stmt = (sa.select(T.c.id, T.c.word, p.bucket, p.dimension, sa.func.sum(p.n), sa.func.sum(p.total),
                      sa.func.sum(p.high))
            .select_from(per_post.join(PT, PT.c.mid == p.mid).join(T, T.c.id == PT.c.topic_id))
            .where(*_topic_only(win))
            .group_by(T.c.id, T.c.word, p.bucket, p.dimension))
    df = _frame(conn, stmt, ["topic_id", "topic", "bucket", "dimension", "n", "total", "high"])
    df["bucket"] = to_times(df["bucket"])
    df = _ints(df, ["topic_id"])
    return _finish_sums(df).sort_values(["topic_id", "bucket", "dimension"], ignore_index=True)


def volume_all(conn: Connection, win: Window, freq: str = "day") -> pd.DataFrame:
    """Comments collected per bucket (scored or not): bucket, comments."""
    b = bucket(comment_time(), freq).label("bucket")
    stmt = sa.select(b, sa.func.count()).where(*window_conditions(win)).group_by(b)
    df = _frame(conn, stmt, ["bucket", "comments"])
    df["bucket"] = to_times(df["bucket"])
    return _ints(df, ["comments"]).sort_values("bucket", ignore_index=True)


def volume_topics(conn: Connection, win: Window, topic_ids: list[int], freq: str = "day") -> pd.DataFrame:
    """Comments collected per topic and bucket, for the given topics: topic_id, bucket, comments."""
    if not topic_ids:
        return pd.DataFrame(columns=["topic_id", "bucket", "comments"])
    b = bucket(comment_time(), freq).label("bucket")
    stmt = (sa.select(PT.c.topic_id, b, sa.func.count())
            .select_from(C.join(PT, PT.c.mid == C.c.mid))
            .where(PT.c.topic_id.in_(topic_ids), *window_conditions(Window(win.since, win.until)))
            .group_by(PT.c.topic_id, b))
    df = _frame(conn, stmt, ["topic_id", "bucket", "comments"])
    df["bucket"] = to_times(df["bucket"])
    return _ints(df, ["topic_id", "comments"]).sort_values(["topic_id", "bucket"], ignore_index=True)


def topic_means(series: pd.DataFrame) -> pd.DataFrame:
    """Per topic and dimension over the whole window, from ``series_topics`` rows (exact sums)."""
    cols = ["topic_id", "topic", "dimension", "n", "total", "high", "mean"]
    if series.empty:
        return pd.DataFrame(columns=cols)
    g = series.groupby(["topic_id", "topic", "dimension"], as_index=False)[["n", "total", "high"]].sum()
    g["mean"] = g["total"] / g["n"]
    return g[cols].sort_values(["topic_id", "dimension"], ignore_index=True)


def top_topics(series: pd.DataFrame, n: int) -> pd.DataFrame:
    """The ``n`` topics with the most scored comments: topic_id, topic, comments (ties by word)."""
    if series.empty:
        return pd.DataFrame(columns=["topic_id", "topic", "comments"])
    per_dim = series.groupby(["topic_id", "topic", "dimension"], as_index=False)["n"].sum()
    per_topic = per_dim.groupby(["topic_id", "topic"], as_index=False)["n"].max()
    per_topic = per_topic.rename(columns={"n": "comments"})
    return per_topic.sort_values(["comments", "topic"], ascending=[False, True]).head(n).reset_index(drop=True)


def histogram(conn: Connection, win: Window, scorer: str) -> pd.DataFrame:
    """Comments per dimension and level (0-10), all comments: dimension, value, count."""
    conds = window_conditions(win)
    stmt = (sa.select(S.c.dimension, S.c.value, sa.func.count())
            .select_from(scored_comments(win) if conds else S)
            .where(scorer_is(scorer, win), *conds)
            .group_by(S.c.dimension, S.c.value))
    df = _ints(_frame(conn, stmt, ["dimension", "value", "count"]), ["value", "count"])
    return df.sort_values(["dimension", "value"], ignore_index=True)


def levels_by_topic(conn: Connection, win: Window, scorer: str, dimension: str = RISK) -> pd.DataFrame:
    """Comments per topic and level of one dimension: topic_id, topic, value, count."""
    per_post = (sa.select(C.c.mid, S.c.value, sa.func.count().label("n"))
                .select_from(scored_comments(win))
                .where(scorer_is(scorer, win), S.c.dimension == dimension, *_time_only(win))
                .group_by(C.c.mid, S.c.value))
    per_post = _no_mid_walk(per_post).subquery("per_post")
    p = per_post.c
    stmt = (sa.select(T.c.id, T.c.word, p.value, sa.func.sum(p.n))
            .select_from(per_post.join(PT, PT.c.mid == p.mid).join(T, T.c.id == PT.c.topic_id))
            .where(*_topic_only(win))
            .group_by(T.c.id, T.c.word, p.value))
    df = _ints(_frame(conn, stmt, ["topic_id", "topic", "value", "count"]), ["topic_id", "value", "count"])
    return df.sort_values(["topic_id", "value"], ignore_index=True)


def topic_heat(conn: Connection, win: Window, freq: str = "day") -> pd.DataFrame:
    """Hot-search heat per topic and bucket from topic_snapshots: topic_id, topic, bucket, heat, rank.

    heat is the highest seen in the bucket, rank the best (lowest). The window applies to seen_at.
    """
    b = bucket(TS.c.seen_at, freq).label("bucket")
    conds: list[Any] = []
    if win.since is not None:
        conds.append(TS.c.seen_at >= win.since)
    if win.until is not None:
        conds.append(TS.c.seen_at < win.until)
    if win.topic:
        conds.append(topic_match(win.topic))
    stmt = (sa.select(T.c.id, T.c.word, b, sa.func.max(TS.c.heat), sa.func.min(TS.c.rank))
            .select_from(TS.join(T, T.c.id == TS.c.topic_id)).where(*conds)
            .group_by(T.c.id, T.c.word, b))
    df = _frame(conn, stmt, ["topic_id", "topic", "bucket", "heat", "rank"])
    df["bucket"] = to_times(df["bucket"])
    return _ints(df, ["topic_id", "heat", "rank"]).sort_values(["topic_id", "bucket"], ignore_index=True)


def confusion(conn: Connection, win: Window, scorer_a: str, scorer_b: str) -> pd.DataFrame:
    """On comments both scorers scored: dimension, a, b (levels), count."""
    A = S.alias("a")
    B = S.alias("b")
    conds = window_conditions(win)
    pairs = A.join(B, sa.and_(B.c.comment_id == A.c.comment_id, B.c.dimension == A.c.dimension))
    if conds:
        pairs = pairs.join(C, C.c.id == (A.c.comment_id if _recent(win) else no_index(A.c.comment_id)))
    stmt = (sa.select(A.c.dimension, A.c.value, B.c.value, sa.func.count())
            .select_from(pairs)
            .where(scorer_is(scorer_a, win, A), scorer_is(scorer_b, win, B), *conds)
            .group_by(A.c.dimension, A.c.value, B.c.value))
    df = _ints(_frame(conn, stmt, ["dimension", "a", "b", "count"]), ["a", "b", "count"])
    return df.sort_values(["dimension", "a", "b"], ignore_index=True)


ALERT_COLUMNS = ["time", "level", "confidence", "topics", "text", "comment_id", "post_mid", "scorer"]


def alerts(conn: Connection, win: Window, scorer: str, threshold: int,
           limit: int, total: int | None = None) -> tuple[pd.DataFrame, int]:
    """Comments at suicide_risk >= threshold, highest level and newest first, at most ``limit``.

    Returns (rows, total in the window). No author or reply hashes are selected.
    """
    t = comment_time().label("time")
    base = [scorer_is(scorer, win), S.c.dimension == RISK, S.c.value >= threshold, *window_conditions(win)]
    joined = scored_comments(win)
    if total is None:
        total = count_alerts(conn, win, scorer, threshold)
    # The texts are fetched after the sort: sorting rows that carry a MEDIUMTEXT makes
    # MariaDB spill its temporary table to disk (2 s for 4,500 alerts instead of 0.1 s).
    stmt = (sa.select(t, S.c.value, C.c.id)
            .select_from(joined).where(*base)
            .order_by(S.c.value.desc(), t.desc(), C.c.id).limit(limit))
    if not _recent(win):  # few high scores: start from them, not from a million comments
        stmt = stmt.prefix_with("STRAIGHT_JOIN", dialect="mysql").prefix_with("STRAIGHT_JOIN",
                                                                              dialect="mariadb")
    top = [(r[0], int(r[1]), r[2]) for r in conn.execute(stmt)]
    return alert_frame(conn, top, scorer), int(total)


def alert_frame(conn: Connection, top: list[tuple[Any, int, str]], scorer: str) -> pd.DataFrame:
    """The alert table for (time, level, comment id) rows already in order: the scores'
    confidence, the comments' text and post, and the posts' topics, fetched for these rows only."""
    ids = [r[2] for r in top]
    extra: dict[str, tuple[Any, str, str]] = {}
    for i in range(0, len(ids), 500):
        part = ids[i:i + 500]
        q = (sa.select(C.c.id, S.c.confidence, C.c.text, C.c.mid).select_from(S.join(C, C.c.id == S.c.comment_id))
             .where(S.c.comment_id.in_(part), S.c.dimension == RISK, S.c.scorer == scorer))
        extra.update({cid: (conf, text, mid) for cid, conf, text, mid in conn.execute(q)})
    rows = [(r[0], r[1], extra[r[2]][0], extra[r[2]][1] or "", r[2], extra[r[2]][2], scorer)
            for r in top if r[2] in extra]
    df = pd.DataFrame(rows, columns=["time", "level", "confidence", "text", "comment_id", "post_mid",
                                     "scorer"])
    words: dict[str, list[str]] = {}
    mids = sorted(set(df["post_mid"]))
    for i in range(0, len(mids), 500):
        q = (sa.select(PT.c.mid, T.c.word).select_from(PT.join(T, T.c.id == PT.c.topic_id))
             .where(PT.c.mid.in_(mids[i:i + 500])).order_by(PT.c.mid, T.c.word))
        for row in conn.execute(q):
            words.setdefault(row[0], []).append(row[1])
    df["topics"] = [" / ".join(words.get(m, [])) for m in df["post_mid"]]
    if not df.empty:
        df["time"] = pd.to_datetime(df["time"])
        df["level"] = df["level"].astype("int64")
    return df[ALERT_COLUMNS]


def counts(conn: Connection, win: Window, scorer: str | None, threshold: int) -> dict[str, Any]:
    """Headline numbers for the report: comments by scoring status, scored, topics, alerts, span."""
    conds = window_conditions(win)
    t = comment_time()
    status: dict[str, int] = dict(conn.execute(sa.select(C.c.score_status, sa.func.count()).where(*conds)
                               .group_by(C.c.score_status)).all())
    first, last = conn.execute(sa.select(sa.func.min(t), sa.func.max(t)).where(*conds)).one()
    mids = sa.select(C.c.mid).where(*_time_only(win))
    topic_q = (sa.select(sa.func.count(sa.distinct(PT.c.topic_id)))
               .select_from(PT.join(T, T.c.id == PT.c.topic_id))
               .where(PT.c.mid.in_(mids), *_topic_only(win)))
    out: dict[str, Any] = {
        "comments": int(sum(status.values())),
        "pending": int(status.get("pending", 0)),
        "claimed": int(status.get("claimed", 0)),
        "done": int(status.get("done", 0)),
        "failed": int(status.get("failed", 0)),
        "topics": int(conn.execute(topic_q).scalar() or 0),
        "scorer": scorer or "",
        "scored": 0,
        "alerts": 0,
        "first": pd.Timestamp(first).to_pydatetime() if first is not None else None,
        "last": pd.Timestamp(last).to_pydatetime() if last is not None else None,
    }
    if scorer:
        if conds:
            has_score = sa.exists(sa.select(sa.literal(1)).where(S.c.comment_id == C.c.id,
                                                                 S.c.scorer == scorer))
            scored = sa.select(sa.func.count()).select_from(C).where(has_score, *conds)
        else:  # the whole database: no need to touch the comments at all
            scored = sa.select(sa.func.count(sa.distinct(S.c.comment_id))).where(S.c.scorer == scorer)
        out["scored"] = int(conn.execute(scored).scalar() or 0)
        out["alerts"] = count_alerts(conn, win, scorer, threshold)
    return out


def count_alerts(conn: Connection, win: Window, scorer: str, threshold: int) -> int:
    """Comments at suicide_risk >= threshold in the window (scores alone when there is no window)."""
    conds = window_conditions(win)
    stmt = (sa.select(sa.func.count()).select_from(scored_comments(win) if conds else S)
            .where(scorer_is(scorer, win), S.c.dimension == RISK, S.c.value >= threshold, *conds))
    return int(conn.execute(stmt).scalar() or 0)
