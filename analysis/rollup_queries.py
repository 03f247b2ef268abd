"""The report's aggregates from the daily rollups: cost follows days x topics, not comments.

Each function answers exactly what its namesake in ``analysis.queries`` answers from
the raw rows, with the same columns, and the two agree to the last count (tests
compare them on both engines). The rollups (``weibo_mh.rollups``) hold whole days,
so a window is cut in three: whole days from the rollups, and the partial first
and last day (``--since 7d`` starts mid-day) from the raw rows through the time
index. Comments collected after the rollups' watermark (the last few minutes) are
counted from the raw rows too, through the ``first_scraped_at`` index.

Scores by IP location come from ``region_rollups`` the same way (``by_location``).

Where rollups cannot answer, the raw query runs instead: hourly buckets, a
``--topic`` word that matches several topics (a comment in two of them must count
once), and topic links the rollups have not attributed yet (until the next
``refresh``, which the worker runs after every batch).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analysis import queries as Q
from analysis.window import Window
from weibo_mh import rollups as RU
from weibo_mh.db import RISK_FLOOR
from weibo_mh.db import comments as C
from weibo_mh.db import pair_rollups as P
from weibo_mh.db import post_topics as PT
from weibo_mh.db import region_rollups as G
from weibo_mh.db import risk_scores as K
from weibo_mh.db import score_rollups as R
from weibo_mh.db import scores as S
from weibo_mh.db import topics as T
from weibo_mh.rubric import CORE_DIMENSIONS

RISK = Q.RISK
NON_FINAL = ("pending", "claimed", "failed")


@dataclass
class Plan:
    """How a window splits into rollup days and raw edges."""

    first_day: date | None            # rollup days from (None: the beginning)
    end_day: date | None              # … up to, excluded (None: no end)
    edges: list[Window] = field(default_factory=list)
    topic_id: int | None = 0          # rollup topic for "all comments" figures; None: several match
    watermark: datetime | None = None
    links_ok: bool = True

    def day_conds(self) -> list[Any]:
        out = []
        if self.first_day is not None:
            out.append(R.c.day >= self.first_day)
        if self.end_day is not None:
            out.append(R.c.day < self.end_day)
        return out

    def days_window(self, topic: str | None) -> Window:
        """The whole-days part as a raw window (for the collected-comments tail)."""
        start = datetime.combine(self.first_day, time()) if self.first_day else None
        end = datetime.combine(self.end_day, time()) if self.end_day else None
        return Window(start, end, topic)


def plan(conn: Connection, win: Window, freq: str = "day") -> Plan | None:
    """The split of ``win``, or None when the raw rows must answer everything."""
    if freq != "day" or win.exclude_uncertain:
        return None  # the rollups count by hour never, and uncertain scores along with the rest
    watermark = RU.state(conn, RU.WATERMARK)
    if watermark is None:  # never built
        return None
    first = end = None
    edges: list[Window] = []
    if win.since is not None:
        first = win.since.date() if win.since.time() == time() else win.since.date() + timedelta(days=1)
        if win.since.time() != time():
            edges.append(replace(win, until=datetime.combine(first, time())))
    if win.until is not None:
        end = win.until.date()
        if win.until.time() != time():
            edges.append(replace(win, since=datetime.combine(end, time())))
    if first is not None and end is not None and first >= end:
        return None  # less than a day: the raw rows are few
    topic_id: int | None = 0
    if win.topic:
        ids = [int(i) for i in conn.execute(sa.select(T.c.id).where(Q.topic_match(win.topic)).limit(2)).scalars()]
        topic_id = ids[0] if len(ids) == 1 else None
    links_ok = conn.execute(RU.unattributed_links(conn).limit(1)).first() is None
    if win.topic and not links_ok:
        topic_id = None
    return Plan(first, end, edges, topic_id, watermark, links_ok)


def _level_sum(lo: int, hi: int = 10, table: sa.Table = R) -> Any:
    cols = [table.c[f"l{v}"] for v in range(lo, hi + 1)]
    expr: Any = cols[0]
    for c in cols[1:]:
        expr = expr + c
    return sa.func.sum(expr)


def _frame(conn: Connection, stmt: Any, columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([tuple(r) for r in conn.execute(stmt)], columns=columns)


def _combine(frames: list[pd.DataFrame], keys: list[str], sums: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=keys + sums)
    df = pd.concat(frames, ignore_index=True)
    for c in sums:
        df[c] = pd.to_numeric(df[c]).fillna(0).astype("int64")
    return df.groupby(keys, as_index=False, sort=False)[sums].sum()


def _finish(df: pd.DataFrame, order: list[str]) -> pd.DataFrame:
    if df.empty:
        for c in ("n", "total", "high"):
            if c not in df:
                df[c] = pd.Series(dtype="int64")
        df["mean"] = pd.Series(dtype="float64")
        return df
    df["mean"] = df["total"] / df["n"]
    return df.sort_values(order, ignore_index=True)


def _days(df: pd.DataFrame) -> pd.DataFrame:
    if not df.empty:
        df["bucket"] = Q.to_times(df["bucket"])
    return df


# --------------------------------------------------------------------------- series


def series_all(conn: Connection, win: Window, scorer: str, freq: str = "day",
               threshold: int = 7) -> pd.DataFrame:
    p = plan(conn, win, freq)
    if p is None or p.topic_id is None:
        return Q.series_all(conn, win, scorer, freq, threshold)
    stmt = (sa.select(R.c.day, R.c.dimension, sa.func.sum(R.c.n), sa.func.sum(R.c.total),
                      _level_sum(threshold))
            .where(R.c.scorer == scorer, R.c.topic_id == p.topic_id, R.c.dimension != RU.ANY,
                   *p.day_conds())
            .group_by(R.c.day, R.c.dimension).having(sa.func.sum(R.c.n) > 0))
    frames = [_days(_frame(conn, stmt, ["bucket", "dimension", "n", "total", "high"]))]
    frames += [Q.series_all(conn, e, scorer, freq, threshold) for e in p.edges]
    df = _combine(frames, ["bucket", "dimension"], ["n", "total", "high"])
    return _finish(df, ["bucket", "dimension"])


def series_topics(conn: Connection, win: Window, scorer: str, freq: str = "day",
                  threshold: int = 7) -> pd.DataFrame:
    p = plan(conn, win, freq)
    if p is None or not p.links_ok:
        return Q.series_topics(conn, win, scorer, freq, threshold)
    stmt = (sa.select(T.c.id, T.c.word, R.c.day, R.c.dimension, sa.func.sum(R.c.n),
                      sa.func.sum(R.c.total), _level_sum(threshold))
            .select_from(R.join(T, T.c.id == R.c.topic_id))
            .where(R.c.scorer == scorer, R.c.topic_id != RU.ALL, R.c.dimension != RU.ANY,
                   *p.day_conds(), *([Q.topic_match(win.topic)] if win.topic else []))
            .group_by(T.c.id, T.c.word, R.c.day, R.c.dimension).having(sa.func.sum(R.c.n) > 0))
    cols = ["topic_id", "topic", "bucket", "dimension", "n", "total", "high"]
    frames = [_days(_frame(conn, stmt, cols))]
    frames += [Q.series_topics(conn, e, scorer, freq, threshold) for e in p.edges]
    df = _combine([f[cols] if not f.empty else f for f in frames],
                  ["topic_id", "topic", "bucket", "dimension"], ["n", "total", "high"])
    if not df.empty:
        df["topic_id"] = df["topic_id"].astype("int64")
    return _finish(df, ["topic_id", "bucket", "dimension"])


# --------------------------------------------------------------------------- collected comments


def _tail(p: Plan, win: Window) -> list[Any]:
    """Raw conditions for the whole days' comments that the rollups do not count yet."""
    return [*Q.window_conditions(p.days_window(win.topic)), C.c.first_scraped_at > p.watermark]


def volume_all(conn: Connection, win: Window, freq: str = "day") -> pd.DataFrame:
    p = plan(conn, win, freq)
    if p is None or p.topic_id is None:
        return Q.volume_all(conn, win, freq)
    stmt = (sa.select(R.c.day, sa.func.sum(R.c.n))
            .where(R.c.scorer == RU.COLLECTED, R.c.dimension == RU.ANY, R.c.topic_id == p.topic_id,
                   *p.day_conds()).group_by(R.c.day).having(sa.func.sum(R.c.n) > 0))
    b = Q.bucket(Q.comment_time(), "day").label("bucket")
    tail = sa.select(b, sa.func.count()).where(*_tail(p, win)).group_by(b)
    frames = [_days(_frame(conn, stmt, ["bucket", "comments"])),
              _days(_frame(conn, tail, ["bucket", "comments"]))]
    frames += [Q.volume_all(conn, e, freq) for e in p.edges]
    df = _combine(frames, ["bucket"], ["comments"])
    return df.sort_values("bucket", ignore_index=True) if not df.empty else df


def volume_topics(conn: Connection, win: Window, topic_ids: list[int], freq: str = "day") -> pd.DataFrame:
    p = plan(conn, win, freq)
    if p is None or not p.links_ok or not topic_ids:
        return Q.volume_topics(conn, win, topic_ids, freq)
    stmt = (sa.select(R.c.topic_id, R.c.day, sa.func.sum(R.c.n))
            .where(R.c.scorer == RU.COLLECTED, R.c.dimension == RU.ANY, R.c.topic_id.in_(topic_ids),
                   *p.day_conds()).group_by(R.c.topic_id, R.c.day).having(sa.func.sum(R.c.n) > 0))
    b = Q.bucket(Q.comment_time(), "day").label("bucket")
    no_topic = Window(None, None, None)
    recent = sa.select(C.c.mid).where(*_tail(p, no_topic))  # few: the comments past the watermark
    tail = (sa.select(PT.c.topic_id, b, sa.func.count())
            .select_from(C.join(PT, PT.c.mid == C.c.mid))
            .where(PT.c.topic_id.in_(topic_ids), PT.c.mid.in_(recent), *_tail(p, no_topic))
            .group_by(PT.c.topic_id, b))
    cols = ["topic_id", "bucket", "comments"]
    frames = [_days(_frame(conn, stmt, cols)), _days(_frame(conn, tail, cols))]
    frames += [Q.volume_topics(conn, Window(e.since, e.until), topic_ids, freq) for e in p.edges]
    df = _combine(frames, ["topic_id", "bucket"], ["comments"])
    if df.empty:
        return df
    df["topic_id"] = df["topic_id"].astype("int64")
    return df.sort_values(["topic_id", "bucket"], ignore_index=True)


# --------------------------------------------------------------------------- levels


def _melt_levels(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=[*keys, "value", "count"])
    long = df.melt(id_vars=keys, value_vars=[f"l{v}" for v in range(11)], var_name="value",
                   value_name="count")
    long["value"] = long["value"].str[1:].astype("int64")
    long["count"] = pd.to_numeric(long["count"]).fillna(0).astype("int64")
    return long[long["count"] > 0]


def histogram(conn: Connection, win: Window, scorer: str) -> pd.DataFrame:
    p = plan(conn, win)
    if p is None or p.topic_id is None:
        return Q.histogram(conn, win, scorer)
    levels = [sa.func.sum(R.c[f"l{v}"]) for v in range(11)]
    stmt = (sa.select(R.c.dimension, *levels)
            .where(R.c.scorer == scorer, R.c.topic_id == p.topic_id, R.c.dimension != RU.ANY,
                   *p.day_conds()).group_by(R.c.dimension))
    wide = _frame(conn, stmt, ["dimension", *(f"l{v}" for v in range(11))])
    frames = [_melt_levels(wide, ["dimension"])] + [Q.histogram(conn, e, scorer) for e in p.edges]
    df = _combine(frames, ["dimension", "value"], ["count"])
    if df.empty:
        return df
    df["value"] = df["value"].astype("int64")
    return df[df["count"] > 0].sort_values(["dimension", "value"], ignore_index=True)


def levels_by_topic(conn: Connection, win: Window, scorer: str, dimension: str = RISK) -> pd.DataFrame:
    p = plan(conn, win)
    if p is None or not p.links_ok:
        return Q.levels_by_topic(conn, win, scorer, dimension)
    levels = [sa.func.sum(R.c[f"l{v}"]) for v in range(11)]
    stmt = (sa.select(T.c.id, T.c.word, *levels).select_from(R.join(T, T.c.id == R.c.topic_id))
            .where(R.c.scorer == scorer, R.c.topic_id != RU.ALL, R.c.dimension == dimension,
                   *p.day_conds(), *([Q.topic_match(win.topic)] if win.topic else []))
            .group_by(T.c.id, T.c.word))
    wide = _frame(conn, stmt, ["topic_id", "topic", *(f"l{v}" for v in range(11))])
    frames = [_melt_levels(wide, ["topic_id", "topic"])]
    frames += [Q.levels_by_topic(conn, e, scorer, dimension) for e in p.edges]
    df = _combine(frames, ["topic_id", "topic", "value"], ["count"])
    if df.empty:
        return df
    df = df[df["count"] > 0].copy()
    df["topic_id"] = df["topic_id"].astype("int64")
    df["value"] = df["value"].astype("int64")
    return df.sort_values(["topic_id", "value"], ignore_index=True)


# --------------------------------------------------------------------------- counts and alerts


def count_alerts(conn: Connection, win: Window, scorer: str, threshold: int) -> int:
    p = plan(conn, win)
    if p is None or p.topic_id is None:
        return Q.count_alerts(conn, win, scorer, threshold)
    stmt = sa.select(_level_sum(threshold)).where(R.c.scorer == scorer, R.c.topic_id == p.topic_id,
                                                   R.c.dimension == RISK, *p.day_conds())
    n = int(conn.execute(stmt).scalar() or 0)
    return n + sum(Q.count_alerts(conn, e, scorer, threshold) for e in p.edges)


def alerts(conn: Connection, win: Window, scorer: str, threshold: int,
           limit: int) -> tuple[pd.DataFrame, int]:
    """The alert rows from ``risk_scores``, which holds the high suicide-risk scores keyed in
    alert order (level, then comment time), so that the first ``limit`` rows are read instead
    of every high score joined to its comment; their total from the rollups. A topic filter,
    uncertain scores left out or a threshold below ``RISK_FLOOR`` read the raw rows."""
    total = count_alerts(conn, win, scorer, threshold)
    if win.topic or win.exclude_uncertain or threshold < RISK_FLOOR or RU.state(conn, RU.WATERMARK) is None:
        return Q.alerts(conn, win, scorer, threshold, limit, total=total)
    conds = [K.c.scorer == scorer, K.c.value >= threshold]
    if win.since is not None:
        conds.append(K.c.comment_time >= win.since)
    if win.until is not None:
        conds.append(K.c.comment_time < win.until)
    stmt = (sa.select(K.c.comment_time, K.c.value, K.c.comment_id).where(*conds)
            .order_by(K.c.value.desc(), K.c.comment_time.desc(), K.c.comment_id).limit(limit))
    top = [(r[0], int(r[1]), r[2]) for r in conn.execute(stmt)]
    return Q.alert_frame(conn, top, scorer), total


def _topic_ids_raw(conn: Connection, conds: list[Any], topic: str | None) -> set[int]:
    """Topics of the posts that the comments matching ``conds`` belong to.

    The comments are picked first (``IN`` over their own indexes), then their posts'
    topics: joining the other way walks every link and probes comments by post.
    """
    mids = sa.select(C.c.mid).where(*conds)
    q = (sa.select(PT.c.topic_id).distinct().select_from(PT.join(T, T.c.id == PT.c.topic_id))
         .where(PT.c.mid.in_(mids), *([Q.topic_match(topic)] if topic else [])))
    return {int(r[0]) for r in conn.execute(q)}


def _time_bound(conn: Connection, win: Window, first: bool) -> Any:
    """The first or last comment time in ``win``, as two index walks (created_at, and
    first_scraped_at for comments without one) instead of one OR that scans."""
    extra = Q.window_conditions(Window(None, None, win.topic))
    out = []
    for col, which in ((C.c.created_at, []),   # comments with a time, then those without one
                       (C.c.first_scraped_at, [Q.no_index(C.c.created_at).is_(None)])):
        conds = [*which, *([col >= win.since] if win.since else []), *([col < win.until] if win.until else [])]
        # the first row of a walk down the time's own index, not MIN/MAX: SQLite otherwise took
        # the created_at index for "IS NULL" and sorted its 2% of all comments (1 s at 10M)
        q = (sa.select(col).where(col.is_not(None), *conds, *extra)
             .order_by(col.asc() if first else col.desc()).limit(1))
        out.append(conn.execute(q).scalar())
    got = [pd.Timestamp(v).to_pydatetime() for v in out if v is not None]
    if not got:
        return None
    return min(got) if first else max(got)


def _scored_raw(conn: Connection, win: Window, scorer: str) -> int:
    has_score = sa.exists(sa.select(sa.literal(1)).where(S.c.comment_id == C.c.id, S.c.scorer == scorer))
    stmt = sa.select(sa.func.count()).select_from(C).where(has_score, *Q.window_conditions(win))
    return int(conn.execute(stmt).scalar() or 0)


def counts(conn: Connection, win: Window, scorer: str | None, threshold: int) -> dict[str, Any]:
    """Q.counts from the rollups: collected and scored comments, topics, alerts; the few
    comments not yet done (pending, claimed, failed) from the queue index."""
    p = plan(conn, win)
    if p is None or p.topic_id is None or not p.links_ok:
        return Q.counts(conn, win, scorer, threshold)
    vol = volume_all(conn, win)
    total = int(vol["comments"].sum()) if not vol.empty else 0
    conds = Q.window_conditions(win)
    status: dict[str, int] = dict(conn.execute(sa.select(C.c.score_status, sa.func.count())
                               .where(C.c.score_status.in_(NON_FINAL), *conds)
                               .group_by(C.c.score_status)).all())
    first = last = None
    if total:
        d0, d1 = vol["bucket"].min().to_pydatetime(), vol["bucket"].max().to_pydatetime()
        lo = Window(max(d0, win.since) if win.since else d0, min(d0 + timedelta(days=1), win.until)
                    if win.until else d0 + timedelta(days=1), win.topic)
        hi = Window(max(d1, win.since) if win.since else d1, min(d1 + timedelta(days=1), win.until)
                    if win.until else d1 + timedelta(days=1), win.topic)
        first = _time_bound(conn, lo, True)
        last = _time_bound(conn, hi, False)
    topic_q = (sa.select(R.c.topic_id).distinct().select_from(R.join(T, T.c.id == R.c.topic_id))
               .where(R.c.scorer == RU.COLLECTED, R.c.dimension == RU.ANY, R.c.topic_id != RU.ALL,
                      R.c.n > 0, *p.day_conds(), *([Q.topic_match(win.topic)] if win.topic else [])))
    topic_set = {int(r[0]) for r in conn.execute(topic_q)}
    topic_set |= _topic_ids_raw(conn, _tail(p, Window(None, None, None)), win.topic)
    for e in p.edges:
        topic_set |= _topic_ids_raw(conn, Q.window_conditions(Window(e.since, e.until)), win.topic)
    others = {s: int(status.get(s, 0)) for s in NON_FINAL}
    out: dict[str, Any] = {
        "comments": total, **others, "done": total - sum(others.values()),
        "topics": len(topic_set), "scorer": scorer or "", "scored": 0, "alerts": 0,
        "first": pd.Timestamp(first).to_pydatetime() if first is not None else None,
        "last": pd.Timestamp(last).to_pydatetime() if last is not None else None,
    }
    if scorer:
        stmt = sa.select(sa.func.sum(R.c.n)).where(R.c.scorer == scorer, R.c.dimension == RU.ANY,
                                                    R.c.topic_id == p.topic_id, *p.day_conds())
        scored = int(conn.execute(stmt).scalar() or 0)
        out["scored"] = scored + sum(_scored_raw(conn, e, scorer) for e in p.edges)
        out["alerts"] = count_alerts(conn, win, scorer, threshold)
    return out


# --------------------------------------------------------------------------- IP locations


def by_location(conn: Connection, win: Window, scorer: str, threshold: int) -> pd.DataFrame:
    """Q.by_location from ``region_rollups``; partial edge days from the raw rows; raw for a
    topic filter (the location rollups do not know topics)."""
    p = plan(conn, win)
    if p is None or win.topic:
        return Q.by_location(conn, win, scorer, threshold)
    day_conds = [G.c.day >= p.first_day] if p.first_day else []
    day_conds += [G.c.day < p.end_day] if p.end_day else []
    stmt = (sa.select(G.c.location, G.c.dimension, sa.func.sum(G.c.n), sa.func.sum(G.c.total),
                      _level_sum(threshold, table=G))
            .where(G.c.scorer == scorer, G.c.dimension.in_(CORE_DIMENSIONS), *day_conds)
            .group_by(G.c.location, G.c.dimension).having(sa.func.sum(G.c.n) > 0))
    cols = ["location", "dimension", "n", "total", "high"]
    rolled = _frame(conn, stmt, cols)
    rolled["location"] = rolled["location"].replace(RU.NO_LOCATION, Q.UNKNOWN_LOCATION)
    frames = [rolled] + [Q.by_location(conn, e, scorer, threshold)[cols] for e in p.edges]
    df = _combine(frames, ["location", "dimension"], ["n", "total", "high"])
    if df.empty:
        return Q._finish_sums(pd.DataFrame(columns=cols))
    return Q._finish_sums(df)


def source(ctx: Any) -> Any:
    """The module that answers a script's queries: these rollups (default) or the raw rows
    (``--source raw``, today's path, kept for checks and the benchmark)."""
    return Q if getattr(ctx, "source", "rollups") == "raw" else sys.modules[__name__]


def confusion(conn: Connection, win: Window, scorer_a: str, scorer_b: str) -> pd.DataFrame:
    """Q.confusion from ``pair_rollups`` (per day, both levels of every comment two scorers
    scored); partial edge days from the raw rows; raw for a topic filter."""
    p = plan(conn, win)
    if p is None or win.topic or scorer_a == scorer_b:
        return Q.confusion(conn, win, scorer_a, scorer_b)
    flip = scorer_a > scorer_b
    lo, hi = (scorer_b, scorer_a) if flip else (scorer_a, scorer_b)
    day_conds = [P.c.day >= p.first_day] if p.first_day else []
    day_conds += [P.c.day < p.end_day] if p.end_day else []
    a_col, b_col = (P.c.b, P.c.a) if flip else (P.c.a, P.c.b)
    stmt = (sa.select(P.c.dimension, a_col, b_col, sa.func.sum(P.c.n))
            .where(P.c.scorer_a == lo, P.c.scorer_b == hi, *day_conds)
            .group_by(P.c.dimension, a_col, b_col).having(sa.func.sum(P.c.n) > 0))
    cols = ["dimension", "a", "b", "count"]
    frames = [_frame(conn, stmt, cols)] + [Q.confusion(conn, e, scorer_a, scorer_b) for e in p.edges]
    df = _combine(frames, ["dimension", "a", "b"], ["count"])
    if df.empty:
        return pd.DataFrame(columns=cols)
    for c in ("a", "b"):
        df[c] = df[c].astype("int64")
    return df[df["count"] > 0].sort_values(["dimension", "a", "b"], ignore_index=True)


# Not rolled up: snapshots are few (they grow with crawls, not comments).
topic_heat = Q.topic_heat
