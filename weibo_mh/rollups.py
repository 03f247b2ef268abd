"""Daily rollups of the scores: what the analysis report reads instead of every score row.

``score_rollups`` holds, per scorer x dimension x day x topic, the number of scores
(``n``), their sum (``total``) and the number at each level (``l0`` … ``l10``). Topic 0
counts every comment once; topic T counts the comments on posts linked to T. Two
pseudo rows carry the counts the report needs besides the scores: dimension ``''``
counts the comments a scorer scored at all, and scorer ``''`` counts the comments
collected (scored or not). The day is that of ``COALESCE(created_at, first_scraped_at)``
(Asia/Shanghai, as stored), which never changes after a comment is stored.

How they stay exact:

- **Scores** change only through ``write_scores`` (the worker's write-back, human
  labels, the demo) and ``delete_scores`` / ``delete_comments`` / ``purge_comments``
  (``weibo-mh forget``). Each applies the difference to the rollups in the caller's
  transaction: a re-score subtracts the old level and adds the new one. The one
  exception is ``retire_comments`` (retention), which by design leaves the counts.
- **Collected comments** come from the spider, which knows nothing of rollups.
  ``refresh`` folds in the comments stored up to ``now - lag`` past its watermark
  (``first_scraped_at``, indexed), idempotently; the report adds the newer ones from
  the raw rows, so it is exact between refreshes too.
- **IP locations**: ``region_rollups`` counts the same scores per scorer x dimension x
  day x ``comments.ip_location`` ('' when none is shown), for ``analysis.regions``. A
  comment's location never changes after it is stored (Weibo fixes it when the comment
  is posted; the spider's upsert leaves it alone), so the scores' deltas stay exact.
- **High risk**: ``risk_scores`` lists every suicide-risk score at level >= ``RISK_FLOOR``
  with its comment's time, keyed in alert order, for the alert lists. The comment's time
  never changes either, so the same deltas keep it exact.
- **Topic links** (a post seen under a new topic) are attributed once, in
  ``rollup_links``: ``write_scores`` and ``refresh`` first add every existing score
  (and collected comment) of the post to the new topic, under the rollup lock.

**Deleted days** (``weibo-mh retention --rows-older-than``): the rollups keep the counts of
the days whose comments retention deleted, as anonymous aggregates the charts still draw.
``retire_comments`` deletes those rows without moving a rollup and records the first day
still held in ``rollup_state`` (``retired_before``). The rule for a rebuild is the same:
the days before it are kept as they are and only later days are recomputed from the raw
rows, so ``verify`` compares those days and says which ones it took as given. (A deletion
request, ``forget``, is different: ``purge_comments`` takes its rows out of every rollup.)

All writers take one lock row (``rollup_state`` ``lock``, ``SELECT … FOR UPDATE``; on
SQLite the write transaction itself), so concurrent workers never lose an increment
nor deadlock on rollup rows. ``rebuild`` recomputes everything from the raw rows
(migration 2 runs it, and so can an operator: ``python -m weibo_mh.rollups rebuild``);
``verify`` compares the two.

This module is kernel: the worker imports it, and it imports no service.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection, Engine

from weibo_mh import db
from weibo_mh.rubric import SUICIDE_RISK

log = logging.getLogger(__name__)

R = db.score_rollups
G = db.region_rollups
K = db.risk_scores
RISK = SUICIDE_RISK
REGION_KEY = ("scorer", "dimension", "day", "location")
NO_LOCATION = ""   # location of the comments Weibo showed none for
P = db.pair_rollups
PAIR_KEY = ("scorer_a", "scorer_b", "dimension", "day", "a", "b")
L = db.rollup_links
ST = db.rollup_state
C = db.comments
S = db.scores
PT = db.post_topics
LEVELS = db.LEVEL_COLUMNS
KEY = ("scorer", "dimension", "day", "topic_id")
SUMS = ("n", "total", *LEVELS)
ALL = 0            # topic_id of "all comments"
COLLECTED = ""     # scorer of the collected-comments rows
ANY = ""           # dimension of the "scored at all" rows

#: Comments stored less than this long ago are left to the report's raw tail, so that a
#: spider transaction still open when ``refresh`` runs is never skipped.
LAG = timedelta(minutes=5)
#: Rows per IN (…) list.
CHUNK = 500

WATERMARK = "collected_until"
RETIRED = "retired_before"   # midnight of the first day whose rows retention has not deleted
LINKS_CHECKED = "links_checked"
LOCK = "lock"

Delta = dict[tuple[str, str, date, Any], list[int]]   # the last key part: topic id, or location
PairDelta = dict[tuple[str, str, str, date, int, int], int]


# --------------------------------------------------------------------------- helpers


def as_day(value: Any) -> date:
    """A DATE from either engine (SQLite gives 'YYYY-MM-DD' strings) or a datetime."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def comment_day(created: datetime | None, first_scraped: datetime | None) -> date:
    t = created if created is not None else first_scraped
    if t is None:
        raise ValueError("comment without created_at and first_scraped_at")
    return as_day(t)


def day_sql(dialect: str) -> Any:
    """SQL for a comment's day; both engines return something ``as_day`` reads."""
    t = sa.func.coalesce(C.c.created_at, C.c.first_scraped_at)
    return sa.func.date(t) if dialect == "sqlite" else sa.func.DATE(t)


def _chunks(values: Sequence[Any], n: int = CHUNK) -> Iterable[Sequence[Any]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]


def _add(delta: Delta, key: tuple[str, str, date, Any], value: int | None, sign: int,
         count: int = 1) -> None:
    row = delta.get(key)
    if row is None:
        row = delta[key] = [0] * len(SUMS)
    row[0] += sign * count
    if value is not None:
        row[1] += sign * count * value
        row[2 + value] += sign * count


def state(conn: Connection, name: str) -> datetime | None:
    return conn.execute(sa.select(ST.c.value).where(ST.c.name == name)).scalar()


def _set_state(conn: Connection, name: str, value: datetime | None) -> None:
    if conn.execute(sa.update(ST).where(ST.c.name == name).values(value=value)).rowcount == 0:
        conn.execute(ST.insert().values(name=name, value=value))


def lock(conn: Connection) -> None:
    """Serialise rollup writers (the caller's transaction holds the lock until it ends)."""
    if db.is_sqlite(conn):
        return  # one writer at a time already; writers use BEGIN IMMEDIATE
    got = conn.execute(sa.select(ST.c.name).where(ST.c.name == LOCK).with_for_update()).first()
    if got is None:
        try:
            with conn.begin_nested():
                conn.execute(ST.insert().values(name=LOCK, value=None))
        except sa.exc.IntegrityError:
            pass
        conn.execute(sa.select(ST.c.name).where(ST.c.name == LOCK).with_for_update())


_UPSERTS: dict[tuple[str, str], Any] = {}


def _increment_stmt(dialect: str, table: sa.Table = R) -> Any:
    """INSERT … ON CONFLICT/DUPLICATE KEY that adds to the sums of a rollup table's row."""
    if (dialect, table.name) not in _UPSERTS:
        key = [c.name for c in table.primary_key.columns]
        stmt: Any
        if dialect == "sqlite":
            stmt = sqlite.insert(table)
            stmt = stmt.on_conflict_do_update(index_elements=key,
                                              set_={c: table.c[c] + stmt.excluded[c] for c in SUMS})
        else:
            stmt = mysql.insert(table)
            stmt = stmt.on_duplicate_key_update({c: table.c[c] + stmt.inserted[c] for c in SUMS})
        _UPSERTS[(dialect, table.name)] = stmt
    return _UPSERTS[(dialect, table.name)]


def _scores_upsert(dialect: str, columns: tuple[str, ...]) -> Any:
    """INSERT … ON CONFLICT / ON DUPLICATE KEY UPDATE of the given non-key columns."""
    key = (dialect, "scores:" + ",".join(columns))
    if key not in _UPSERTS:
        stmt: Any
        if dialect == "sqlite":
            stmt = sqlite.insert(S)
            stmt = stmt.on_conflict_do_update(
                index_elements=[col.name for col in S.primary_key.columns],
                set_={col: stmt.excluded[col] for col in columns})
        else:
            stmt = mysql.insert(S)
            stmt = stmt.on_duplicate_key_update({col: stmt.inserted[col] for col in columns})
        _UPSERTS[key] = stmt
    return _UPSERTS[key]


def apply(conn: Connection, delta: Delta, table: sa.Table = R) -> None:
    """Add ``delta`` to the rollup rows of ``table`` (creating them), in key order (no
    lock-order surprises). ``table``: ``score_rollups`` (keys end with the topic) or
    ``region_rollups`` (keys end with the location)."""
    key = KEY if table is R else REGION_KEY
    rows = [dict(zip(key, k, strict=True)) | dict(zip(SUMS, v, strict=True))
            for k, v in sorted(delta.items()) if any(v)]
    if rows:
        conn.execute(_increment_stmt(conn.dialect.name, table), rows)


def _pair(pd_: PairDelta, dim: str, day: date, x: str, xv: int, y: str, yv: int, sign: int) -> None:
    """Count (or uncount) one comment that scorers x and y both scored on ``dim``."""
    key = (x, y, dim, day, xv, yv) if x < y else (y, x, dim, day, yv, xv)
    pd_[key] = pd_.get(key, 0) + sign


def _pair_increment_stmt(dialect: str) -> Any:
    if (dialect, "pair") not in _UPSERTS:
        stmt: Any
        if dialect == "sqlite":
            stmt = sqlite.insert(P)
            stmt = stmt.on_conflict_do_update(index_elements=list(PAIR_KEY), set_={"n": P.c.n + stmt.excluded.n})
        else:
            stmt = mysql.insert(P)
            stmt = stmt.on_duplicate_key_update({"n": P.c.n + stmt.inserted.n})
        _UPSERTS[(dialect, "pair")] = stmt
    return _UPSERTS[(dialect, "pair")]


def apply_pairs(conn: Connection, delta: PairDelta) -> None:
    rows = [dict(zip(PAIR_KEY, k, strict=True)) | {"n": v} for k, v in sorted(delta.items()) if v]
    if rows:
        conn.execute(_pair_increment_stmt(conn.dialect.name), rows)


def _all_scores(conn: Connection, ids: Sequence[str]) -> dict[tuple[str, str], dict[str, int]]:
    """(comment, dimension) -> {scorer: level} for every score of these comments."""
    out: dict[tuple[str, str], dict[str, int]] = defaultdict(dict)
    for part in _chunks(sorted(set(ids))):
        for cid, dim, scorer, value in conn.execute(
                sa.select(S.c.comment_id, S.c.dimension, S.c.scorer, S.c.value).where(S.c.comment_id.in_(part))):
            out[(cid, dim)][scorer] = int(value)
    return out


# --------------------------------------------------------------------------- links


def _links(conn: Connection, mids: Sequence[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for part in _chunks(sorted(set(mids))):
        for mid, topic in conn.execute(sa.select(L.c.mid, L.c.topic_id).where(L.c.mid.in_(part))):
            out[mid].append(int(topic))
    return out


def _attribute_links(conn: Connection, links: Sequence[tuple[str, int]]) -> int:
    """Add everything the rollups already count for these posts to their new topics.

    ``links`` are (mid, topic_id) pairs of post_topics that rollup_links lacks. Every
    score of the posts' comments goes to the new topic, and so does every collected
    comment up to the watermark. Then the links are recorded. Caller holds the lock.
    """
    links = sorted(set(links))
    if not links:
        return 0
    by_mid: dict[str, list[int]] = defaultdict(list)
    for mid, topic in links:
        by_mid[mid].append(int(topic))
    mids = sorted(by_mid)
    day = day_sql(conn.dialect.name).label("day")
    until = state(conn, WATERMARK)
    delta: Delta = {}
    for part in _chunks(mids):
        q = (sa.select(C.c.mid, day, S.c.scorer, S.c.dimension, S.c.value, sa.func.count())
             .select_from(S.join(C, C.c.id == S.c.comment_id)).where(C.c.mid.in_(part))
             .group_by(C.c.mid, day, S.c.scorer, S.c.dimension, S.c.value))
        for mid, d, scorer, dim, value, n in conn.execute(q):
            for topic in by_mid[mid]:
                _add(delta, (scorer, dim, as_day(d), topic), int(value), 1, int(n))
        q = (sa.select(C.c.mid, day, S.c.scorer, sa.func.count(sa.distinct(S.c.comment_id)))
             .select_from(S.join(C, C.c.id == S.c.comment_id)).where(C.c.mid.in_(part))
             .group_by(C.c.mid, day, S.c.scorer))
        for mid, d, scorer, n in conn.execute(q):
            for topic in by_mid[mid]:
                _add(delta, (scorer, ANY, as_day(d), topic), None, 1, int(n))
        if until is not None:
            q = (sa.select(C.c.mid, day, sa.func.count()).where(C.c.mid.in_(part),
                                                               C.c.first_scraped_at <= until)
                 .group_by(C.c.mid, day))
            for mid, d, n in conn.execute(q):
                for topic in by_mid[mid]:
                    _add(delta, (COLLECTED, ANY, as_day(d), topic), None, 1, int(n))
    apply(conn, delta)
    conn.execute(L.insert(), [{"mid": m, "topic_id": t} for m, t in links])
    return len(links)


def _new_links_for(conn: Connection, mids: Sequence[str]) -> list[tuple[str, int]]:
    have = _links(conn, mids)
    out = []
    for part in _chunks(sorted(set(mids))):
        for mid, topic in conn.execute(sa.select(PT.c.mid, PT.c.topic_id).where(PT.c.mid.in_(part))):
            if int(topic) not in have.get(mid, ()):
                out.append((mid, int(topic)))
    return out


def unattributed_links(conn: Connection, lag: timedelta = LAG) -> Any:
    """SELECT of post_topics rows (mid, topic_id) that the rollups have not attributed yet.

    Only links first seen since the last check (minus ``lag``) are looked at, through
    the first_seen index, so the cost follows the new links, not all of them. (The bound
    is read first and passed as a value: ``since IS NULL OR first_seen >= f(since)`` in one
    statement made SQLite scan every link, 0.1 s per report query at 10M comments.)
    """
    since = state(conn, LINKS_CHECKED)
    cond = [~sa.exists().where(L.c.mid == PT.c.mid, L.c.topic_id == PT.c.topic_id)]
    if since is not None:
        cond.append(PT.c.first_seen >= since - lag)
    return sa.select(PT.c.mid, PT.c.topic_id).where(*cond)


# --------------------------------------------------------------------------- writing scores


def write_scores(conn: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert or replace score rows and update the rollups, in the caller's transaction.

    ``rows`` are dicts with the columns of ``scores``; the same (comment, dimension,
    scorer) again replaces the earlier row (a re-score), and the rollups move the
    comment from its old level to its new one. This is the one way to write scores:
    the worker's write-back, human labels and the demo all come through here.
    """
    if not rows:
        return
    uniq: dict[tuple[str, str, str], dict[str, Any]] = {}
    for r in rows:
        uniq[(r["comment_id"], r["dimension"], r["scorer"])] = r
    lock(conn)
    ids = sorted({k[0] for k in uniq})
    info: dict[str, tuple[str, date]] = {}
    where: dict[str, str] = {}
    when: dict[str, datetime] = {}
    for part in _chunks(ids):
        for cid, mid, created, first, loc in conn.execute(
                sa.select(C.c.id, C.c.mid, C.c.created_at, C.c.first_scraped_at, C.c.ip_location)
                .where(C.c.id.in_(part))):
            info[cid] = (mid, comment_day(created, first))
            where[cid] = loc or NO_LOCATION
            when[cid] = created if created is not None else first
    current = _all_scores(conn, ids)   # every scorer's levels, kept up to date below
    had = {(cid, scorer) for (cid, _), by in current.items() for scorer in by}
    missing = [cid for cid in ids if cid not in info]
    if missing:
        raise ValueError(f"scores for comments that are not stored: {', '.join(missing[:5])}")
    _attribute_links(conn, _new_links_for(conn, [m for m, _ in info.values()]))
    links = _links(conn, [m for m, _ in info.values()])
    # The scores first: the database's CHECK refuses a level outside 0-10 before any rollup moves.
    values = list(uniq.values())
    keys = {col.name for col in S.primary_key.columns}
    update = tuple(sorted(col for col in values[0] if col not in keys))  # every column the rows carry
    conn.execute(_scores_upsert(conn.dialect.name, update), values)
    delta: Delta = {}
    regions: Delta = {}
    pairs: PairDelta = {}
    fresh: set[tuple[str, str]] = set()
    risk_out: list[dict[str, Any]] = []
    risk_in: list[dict[str, Any]] = []
    for (cid, dim, scorer), r in uniq.items():
        mid, day = info[cid]
        topics = [ALL, *links.get(mid, ())]
        by = current[(cid, dim)]
        prev = by.get(scorer)
        value = int(r["value"])
        for other, ov in by.items():
            if other != scorer:
                if prev is not None:
                    _pair(pairs, dim, day, scorer, prev, other, ov, -1)
                _pair(pairs, dim, day, scorer, value, other, ov, 1)
        by[scorer] = value
        for t in topics:
            if prev is not None:
                _add(delta, (scorer, dim, day, t), prev, -1)
            _add(delta, (scorer, dim, day, t), int(r["value"]), 1)
        if prev is not None:
            _add(regions, (scorer, dim, day, where[cid]), prev, -1)
        _add(regions, (scorer, dim, day, where[cid]), value, 1)
        if dim == RISK and prev != value:
            row = {"scorer": scorer, "comment_time": when[cid], "comment_id": cid}
            if prev is not None and prev >= db.RISK_FLOOR:
                risk_out.append({**row, "value": prev})
            if value >= db.RISK_FLOOR:
                risk_in.append({**row, "value": value})
        if (cid, scorer) not in had and (cid, scorer) not in fresh:
            fresh.add((cid, scorer))
            for t in topics:
                _add(delta, (scorer, ANY, day, t), None, 1)
    apply(conn, delta)
    apply(conn, regions, G)
    apply_pairs(conn, pairs)
    _move_risk(conn, risk_out, risk_in)


def _move_risk(conn: Connection, out: list[dict[str, Any]], into: list[dict[str, Any]]) -> None:
    """Take rows out of ``risk_scores`` and put rows in (a re-score does both)."""
    if out:
        # by comment, not by the stored time: rows loaded behind the code's back may spell it otherwise
        conn.execute(sa.delete(K).where(K.c.comment_id == sa.bindparam("b_id"), K.c.scorer == sa.bindparam("b_scorer"),
                                        K.c.value == sa.bindparam("b_value")),
                     [{"b_scorer": r["scorer"], "b_value": r["value"], "b_id": r["comment_id"]} for r in out])
    if into:
        conn.execute(K.insert(), into)


def write_human_labels(conn: Connection, annotator: str, labels: Sequence[tuple[str, str, int]],
                       rubric_version: str, at: datetime | None = None) -> int:
    """Human labels as score rows of scorer ``human:<annotator>``: (comment_id, dimension, level).

    The path every human label takes (the review console, imports, the demo's own
    levels), so that every analysis script and the rollups treat them like any scorer.
    """
    name = annotator.strip()
    if not name or len(name) > 120 or ":" in name:
        raise ValueError(f"annotator name must be 1-120 characters without ':', not {annotator!r}")
    t = at or db.now()
    write_scores(conn, [{"comment_id": cid, "dimension": dim, "scorer": f"human:{name}",
                         "value": int(level), "confidence": None, "rationale": None,
                         "rubric_version": rubric_version, "truncated": False, "scored_at": t}
                        for cid, dim, level in labels])
    return len(labels)


def delete_scores(conn: Connection, comment_ids: Sequence[str], scorer: str | None = None) -> int:
    """Delete the scores of these comments (of one scorer, or all) and take them out of the rollups."""
    ids = sorted(set(comment_ids))
    if not ids:
        return 0
    lock(conn)
    cond_scorer = [S.c.scorer == scorer] if scorer else []
    rows: list[Any] = []
    for part in _chunks(ids):
        rows += conn.execute(sa.select(S.c.comment_id, S.c.dimension, S.c.scorer, S.c.value, C.c.mid,
                                       C.c.created_at, C.c.first_scraped_at, C.c.ip_location)
                             .select_from(S.join(C, C.c.id == S.c.comment_id))
                             .where(S.c.comment_id.in_(part), *cond_scorer)).all()
    links = _links(conn, [r.mid for r in rows])
    current = _all_scores(conn, ids)
    delta: Delta = {}
    regions: Delta = {}
    pair_delta: PairDelta = {}
    pairs: set[tuple[str, str]] = set()
    risk_out: list[dict[str, Any]] = []
    for r in rows:
        day = comment_day(r.created_at, r.first_scraped_at)
        topics = [ALL, *links.get(r.mid, ())]
        for t in topics:
            _add(delta, (r.scorer, r.dimension, day, t), int(r.value), -1)
        _add(regions, (r.scorer, r.dimension, day, r.ip_location or NO_LOCATION), int(r.value), -1)
        if r.dimension == RISK and int(r.value) >= db.RISK_FLOOR:
            risk_out.append({"scorer": r.scorer, "value": int(r.value), "comment_id": r.comment_id,
                             "comment_time": r.created_at if r.created_at is not None else r.first_scraped_at})
        by = current[(r.comment_id, r.dimension)]
        by.pop(r.scorer, None)
        for other, ov in by.items():  # the pairs this score was part of (each once)
            _pair(pair_delta, r.dimension, day, r.scorer, int(r.value), other, ov, -1)
        if (r.comment_id, r.scorer) not in pairs:
            pairs.add((r.comment_id, r.scorer))
            for t in topics:
                _add(delta, (r.scorer, ANY, day, t), None, -1)
    apply(conn, delta)
    apply(conn, regions, G)
    apply_pairs(conn, pair_delta)
    _move_risk(conn, risk_out, [])
    n = 0
    for part in _chunks(ids):
        n += conn.execute(sa.delete(S).where(S.c.comment_id.in_(part), *cond_scorer)).rowcount
    return n


#: Tables whose rows point at comments: (table, column holding comments.id). They are deleted
#: before the comments they name. Human labels are score rows and go with the scores.
COMMENT_DEPENDENTS: tuple[tuple[sa.Table, str], ...] = (
    (db.annotation_tasks, "comment_id"),
    (db.alerts, "comment_id"),
)
#: Tables whose rows point at alerts: (table, column holding alerts.id), deleted before the
#: alerts. The one place to list a new one.
ALERT_DEPENDENTS: tuple[tuple[sa.Table, str], ...] = ((db.notifications, "alert_id"),)
#: Tables whose rows point at posts (besides comments): (table, column holding posts.mid).
POST_DEPENDENTS: tuple[tuple[sa.Table, str], ...] = ((db.post_topics, "mid"),)


def delete_dependents(conn: Connection, comment_ids: Sequence[str]) -> dict[str, int]:
    """Delete every row that points at these comments (``COMMENT_DEPENDENTS`` and, through
    their alerts, ``ALERT_DEPENDENTS``), children first. Returns rows deleted per table."""
    out = {t.name: 0 for t, _ in (*ALERT_DEPENDENTS, *COMMENT_DEPENDENTS)}
    for part in _chunks(sorted(set(comment_ids))):
        alert_ids = sa.select(db.alerts.c.id).where(db.alerts.c.comment_id.in_(part))
        for table, col in ALERT_DEPENDENTS:
            out[table.name] += conn.execute(sa.delete(table).where(table.c[col].in_(alert_ids))).rowcount
        for table, col in COMMENT_DEPENDENTS:
            out[table.name] += conn.execute(sa.delete(table).where(table.c[col].in_(part))).rowcount
    return out


def purge_comments(conn: Connection, comment_ids: Sequence[str]) -> dict[str, int]:
    """Delete comments with their scores and every row pointing at them, taking them out of
    every rollup (a deletion request). Returns rows deleted per table."""
    ids = sorted(set(comment_ids))
    out = {t.name: 0 for t, _ in (*ALERT_DEPENDENTS, *COMMENT_DEPENDENTS)} | {"scores": 0, "comments": 0}
    if not ids:
        return out
    lock(conn)
    out.update(delete_dependents(conn, ids))
    out["scores"] = delete_scores(conn, ids)
    until = state(conn, WATERMARK)
    rows: list[Any] = []
    for part in _chunks(ids):
        rows += conn.execute(sa.select(C.c.id, C.c.mid, C.c.created_at, C.c.first_scraped_at)
                             .where(C.c.id.in_(part))).all()
    links = _links(conn, [r.mid for r in rows])
    delta: Delta = {}
    for r in rows:
        if until is not None and r.first_scraped_at <= until:
            day = comment_day(r.created_at, r.first_scraped_at)
            for t in [ALL, *links.get(r.mid, ())]:
                _add(delta, (COLLECTED, ANY, day, t), None, -1)
    apply(conn, delta)
    for part in _chunks(ids):
        out["comments"] += conn.execute(sa.delete(C).where(C.c.id.in_(part))).rowcount
    return out


def delete_comments(conn: Connection, comment_ids: Sequence[str]) -> int:
    """Delete comments with their scores, keeping the rollups right. Returns comments deleted."""
    return purge_comments(conn, comment_ids)["comments"]


def retired_before(conn: Connection) -> datetime | None:
    """Midnight of the first day whose rows retention kept (None: no day was retired)."""
    return state(conn, RETIRED)


def retire_comments(conn: Connection, comment_ids: Sequence[str], before: datetime) -> dict[str, int]:
    """Delete comments of the days before ``before`` (a midnight), keeping their counts in the
    rollups (retention's rule, see the module docstring). Their scores, human labels, alerts,
    annotation tasks and ``risk_scores`` rows go. Each comment must be older than ``before``
    and already folded into the collected counts (``first_scraped_at`` at or before the
    watermark): anything else raises ValueError and nothing is deleted.
    """
    if before != datetime.combine(before.date(), datetime.min.time()):
        raise ValueError(f"retire_comments: {before} is not a midnight")
    ids = sorted(set(comment_ids))
    out = {t.name: 0 for t, _ in (*ALERT_DEPENDENTS, *COMMENT_DEPENDENTS)} | \
        {"scores": 0, K.name: 0, "comments": 0}
    if not ids:
        return out
    lock(conn)
    until = state(conn, WATERMARK)
    for part in _chunks(ids):
        for cid, created, first in conn.execute(
                sa.select(C.c.id, C.c.created_at, C.c.first_scraped_at).where(C.c.id.in_(part))):
            when = created if created is not None else first
            if when >= before or until is None or first > until:
                raise ValueError(f"comment {cid} ({when}, stored {first}) is not of a day before "
                                 f"{before:%Y-%m-%d} already counted by the rollups")
    have = retired_before(conn)
    if have is None or before > have:
        _set_state(conn, RETIRED, before)
    out.update(delete_dependents(conn, ids))
    for part in _chunks(ids):
        out[K.name] += conn.execute(sa.delete(K).where(K.c.comment_id.in_(part))).rowcount
        out["scores"] += conn.execute(sa.delete(S).where(S.c.comment_id.in_(part))).rowcount
        out["comments"] += conn.execute(sa.delete(C).where(C.c.id.in_(part))).rowcount
    return out


def retire_posts(conn: Connection, mids: Sequence[str]) -> dict[str, int]:
    """Delete posts that no comment points at any more, with their topic links (and the
    rollups' record of those links: nothing is counted under them). Returns rows per table."""
    out = {t.name: 0 for t, _ in POST_DEPENDENTS} | {L.name: 0, "posts": 0}
    lock(conn)
    for part in _chunks(sorted(set(mids))):
        gone = [m for (m,) in conn.execute(
            sa.select(db.posts.c.mid).where(db.posts.c.mid.in_(part),
                                            ~sa.exists().where(C.c.mid == db.posts.c.mid)))]
        if not gone:
            continue
        for table, col in POST_DEPENDENTS:
            out[table.name] += conn.execute(sa.delete(table).where(table.c[col].in_(gone))).rowcount
        out[L.name] += conn.execute(sa.delete(L).where(L.c.mid.in_(gone))).rowcount
        out["posts"] += conn.execute(sa.delete(db.posts).where(db.posts.c.mid.in_(gone))).rowcount
    return out


def clear_rationales(conn: Connection, comment_ids: Sequence[str]) -> int:
    """Empty the rationales (model text that may quote the comment) of these comments' scores.
    Levels, and so the rollups, stay as they are."""
    n = 0
    for part in _chunks(sorted(set(comment_ids))):
        n += conn.execute(sa.update(S).where(S.c.comment_id.in_(part), S.c.rationale.is_not(None))
                          .values(rationale=None)).rowcount
    return n


# --------------------------------------------------------------------------- catch-up


def refresh(conn: Connection, lag: timedelta = LAG, now: datetime | None = None) -> dict[str, int]:
    """The idempotent catch-up: new topic links, and collected comments up to ``now - lag``.

    Reads only rows newer than the watermarks (two index ranges), so it costs nothing
    when nothing is new. Returns what it folded in.
    """
    lock(conn)
    t = (now or db.now()) - lag
    new_links = [(m, int(tp)) for m, tp in conn.execute(unattributed_links(conn, lag))]
    links_done = _attribute_links(conn, new_links)
    _set_state(conn, LINKS_CHECKED, now or db.now())
    until = state(conn, WATERMARK)
    folded = 0
    if until is None or t > until:
        day = day_sql(conn.dialect.name).label("day")
        window = [C.c.first_scraped_at <= t] + ([C.c.first_scraped_at > until] if until else [])
        delta: Delta = {}
        for d, n in conn.execute(sa.select(day, sa.func.count()).where(*window).group_by(day)):
            _add(delta, (COLLECTED, ANY, as_day(d), ALL), None, 1, int(n))
            folded += int(n)
        q = (sa.select(day, L.c.topic_id, sa.func.count())
             .select_from(C.join(L, L.c.mid == C.c.mid)).where(*window).group_by(day, L.c.topic_id))
        for d, topic, n in conn.execute(q):
            _add(delta, (COLLECTED, ANY, as_day(d), int(topic)), None, 1, int(n))
        apply(conn, delta)
        _set_state(conn, WATERMARK, t)
    return {"links": links_done, "comments": folded}


def rebuild(conn: Connection, lag: timedelta = LAG, now: datetime | None = None) -> dict[str, int]:
    """Recompute every rollup from the raw rows (after a bulk load, or to repair).

    The aggregation runs in SQL (GROUP BY day, topic, scorer, dimension, level); only
    aggregated rows reach Python. Days that retention retired (``retired_before``) keep
    their rollup rows as they are; only later days are recomputed.
    """
    lock(conn)
    live = _live(conn)
    conn.execute(sa.delete(R).where(*_live_days(conn, R)))
    conn.execute(sa.delete(P).where(*_live_days(conn, P)))
    conn.execute(sa.delete(L))
    conn.execute(L.insert().from_select(["mid", "topic_id"], sa.select(PT.c.mid, PT.c.topic_id)))
    t = (now or db.now()) - lag
    day = day_sql(conn.dialect.name).label("day")
    delta: Delta = {}
    joined = S.join(C, C.c.id == S.c.comment_id)
    for d, scorer, dim, value, n in conn.execute(
            sa.select(day, S.c.scorer, S.c.dimension, S.c.value, sa.func.count()).select_from(joined)
            .where(*live).group_by(day, S.c.scorer, S.c.dimension, S.c.value)):
        _add(delta, (scorer, dim, as_day(d), ALL), int(value), 1, int(n))
    for d, topic, scorer, dim, value, n in conn.execute(
            sa.select(day, L.c.topic_id, S.c.scorer, S.c.dimension, S.c.value, sa.func.count())
            .select_from(joined.join(L, L.c.mid == C.c.mid)).where(*live)
            .group_by(day, L.c.topic_id, S.c.scorer, S.c.dimension, S.c.value)):
        _add(delta, (scorer, dim, as_day(d), int(topic)), int(value), 1, int(n))
    for d, scorer, n in conn.execute(
            sa.select(day, S.c.scorer, sa.func.count(sa.distinct(S.c.comment_id))).select_from(joined)
            .where(*live).group_by(day, S.c.scorer)):
        _add(delta, (scorer, ANY, as_day(d), ALL), None, 1, int(n))
    for d, topic, scorer, n in conn.execute(
            sa.select(day, L.c.topic_id, S.c.scorer, sa.func.count(sa.distinct(S.c.comment_id)))
            .select_from(joined.join(L, L.c.mid == C.c.mid)).where(*live)
            .group_by(day, L.c.topic_id, S.c.scorer)):
        _add(delta, (scorer, ANY, as_day(d), int(topic)), None, 1, int(n))
    for d, n in conn.execute(sa.select(day, sa.func.count()).where(C.c.first_scraped_at <= t, *live)
                             .group_by(day)):
        _add(delta, (COLLECTED, ANY, as_day(d), ALL), None, 1, int(n))
    for d, topic, n in conn.execute(
            sa.select(day, L.c.topic_id, sa.func.count()).select_from(C.join(L, L.c.mid == C.c.mid))
            .where(C.c.first_scraped_at <= t, *live).group_by(day, L.c.topic_id)):
        _add(delta, (COLLECTED, ANY, as_day(d), int(topic)), None, 1, int(n))
    apply(conn, delta)
    # agreement pairs, driven from each scorer in turn (smallest first is the planner's job)
    sa_, sb_ = S.alias("sa_"), S.alias("sb_")
    pair_q = (sa.select(sa_.c.scorer, sb_.c.scorer, sa_.c.dimension, day, sa_.c.value, sb_.c.value,
                        sa.func.count())
              .select_from(sa_.join(sb_, sa.and_(sb_.c.comment_id == sa_.c.comment_id,
                                                 sb_.c.dimension == sa_.c.dimension,
                                                 sb_.c.scorer > sa_.c.scorer))
                           .join(C, C.c.id == sa_.c.comment_id))
              .where(*live)
              .group_by(sa_.c.scorer, sb_.c.scorer, sa_.c.dimension, day, sa_.c.value, sb_.c.value))
    pairs: PairDelta = {}
    for a, b, dim, d, av, bv, n in conn.execute(pair_q):
        pairs[(a, b, dim, as_day(d), int(av), int(bv))] = int(n)
    apply_pairs(conn, pairs)
    have = set(sa.inspect(conn).get_table_names())
    region_rows = _rebuild_regions(conn) if G.name in have else 0  # from migration 6 on
    if K.name in have:  # from migration 7 on
        _rebuild_risk(conn)
    _set_state(conn, WATERMARK, t)
    _set_state(conn, LINKS_CHECKED, now or db.now())
    return {"rows": len(delta), "pair_rows": len(pairs), "region_rows": region_rows}


def _live(conn: Connection) -> list[Any]:
    """WHERE conditions on comments for the days a rebuild recomputes (not retired ones)."""
    before = retired_before(conn)
    return [] if before is None else [sa.func.coalesce(C.c.created_at, C.c.first_scraped_at) >= before]


def _live_days(conn: Connection, table: sa.Table) -> list[Any]:
    """WHERE conditions on a rollup table's rows for the days a rebuild recomputes."""
    before = retired_before(conn)
    return [] if before is None else [table.c.day >= before.date()]


def _rebuild_regions(conn: Connection) -> int:
    conn.execute(sa.delete(G).where(*_live_days(conn, G)))
    day = day_sql(conn.dialect.name).label("day")
    loc = sa.func.coalesce(C.c.ip_location, NO_LOCATION).label("location")
    delta: Delta = {}
    for d, location, scorer, dim, value, n in conn.execute(
            sa.select(day, loc, S.c.scorer, S.c.dimension, S.c.value, sa.func.count())
            .select_from(S.join(C, C.c.id == S.c.comment_id)).where(*_live(conn))
            .group_by(day, loc, S.c.scorer, S.c.dimension, S.c.value)):
        _add(delta, (scorer, dim, as_day(d), location), int(value), 1, int(n))
    apply(conn, delta, G)
    return len(delta)


def _rebuild_risk(conn: Connection) -> None:
    conn.execute(sa.delete(K))
    t = sa.func.coalesce(C.c.created_at, C.c.first_scraped_at)
    conn.execute(K.insert().from_select(
        ["scorer", "value", "comment_time", "comment_id"],
        sa.select(S.c.scorer, S.c.value, t, S.c.comment_id).select_from(S.join(C, C.c.id == S.c.comment_id))
        .where(S.c.dimension == RISK, S.c.value >= db.RISK_FLOOR)))


def rebuild_risk(conn: Connection) -> None:
    """Recompute ``risk_scores`` alone (migration 7 fills the new table with it)."""
    lock(conn)
    _rebuild_risk(conn)


def rebuild_regions(conn: Connection) -> dict[str, int]:
    """Recompute ``region_rollups`` alone (migration 6 fills the new table with it)."""
    lock(conn)
    return {"region_rows": _rebuild_regions(conn)}


def snapshot(conn: Connection) -> dict[tuple[Any, ...], tuple[int, ...]]:
    """Every non-empty rollup and pair row, keyed like the tables (for ``verify`` and tests)."""
    out: dict[tuple[Any, ...], tuple[int, ...]] = {}
    for r in conn.execute(sa.select(*(R.c[k] for k in KEY), *(R.c[s] for s in SUMS))):
        vals = tuple(int(v) for v in r[len(KEY):])
        if any(vals):
            out[(r[0], r[1], as_day(r[2]), int(r[3]))] = vals
    for r in conn.execute(sa.select(*(P.c[k] for k in PAIR_KEY), P.c.n)):
        if int(r[6]):
            out[("pair", r[0], r[1], r[2], as_day(r[3]), int(r[4]), int(r[5]))] = (int(r[6]),)
    have = set(sa.inspect(conn).get_table_names())
    if G.name in have:
        for r in conn.execute(sa.select(*(G.c[k] for k in REGION_KEY), *(G.c[s] for s in SUMS))):
            vals = tuple(int(v) for v in r[len(REGION_KEY):])
            if any(vals):
                out[("region", r[0], r[1], as_day(r[2]), r[3])] = vals
    if K.name in have:
        for r in conn.execute(sa.select(K.c.scorer, K.c.value, K.c.comment_time, K.c.comment_id)):
            out[("risk", r[0], int(r[1]), r[2], r[3])] = (1,)
    return out


def verify(engine: Engine) -> list[str]:
    """Differences between the rollups and a rebuild from the raw rows (rolled back); [] when equal."""
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        tx = conn.begin()
        try:
            have = snapshot(conn)
            until = state(conn, WATERMARK)
            rebuild(conn, lag=timedelta(0), now=until) if until else rebuild(conn)
            want = snapshot(conn)
        finally:
            tx.rollback()
    diffs = []
    for k in sorted(set(have) | set(want)):
        if have.get(k) != want.get(k):
            diffs.append(f"{k}: rollup {have.get(k)} != raw {want.get(k)}")
    return diffs


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m weibo_mh.rollups",
        description="Maintain the daily score rollups the analysis report reads. The worker keeps "
                    "them up to date as it writes scores; 'refresh' folds in newly collected comments "
                    "and topic links (cheap, idempotent), 'rebuild' recomputes everything from the raw "
                    "rows, 'verify' compares the rollups with the raw rows.")
    ap.add_argument("command", choices=("refresh", "rebuild", "verify"))
    ap.add_argument("--db", help="database URL (default: DATABASE_URL or the config's database.url)")
    ap.add_argument("--config", help="TOML config file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--lag-seconds", type=int, default=int(LAG.total_seconds()),
                    help="leave comments stored this recently to the report's raw tail (default 300)")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from weibo_mh.config import load_or_exit

    url = a.db or load_or_exit(a.config).database.url
    try:
        engine = db.open_checked(url)
        if a.command == "verify":
            diffs = verify(engine)
            for d in diffs[:50]:
                print(d)
            print(f"{len(diffs)} rollup rows differ from the raw rows" if diffs else
                  "rollups equal the raw rows")
            with engine.connect() as conn:
                before = retired_before(conn)
            if before is not None:
                print(f"days before {before:%Y-%m-%d} were retired by retention (their rows "
                      "deleted): their counts are kept as they are, not compared, and a rebuild "
                      "keeps them too")
            return 1 if diffs else 0
        lag = timedelta(seconds=max(0, a.lag_seconds))
        with engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                out = refresh(conn, lag) if a.command == "refresh" else rebuild(conn, lag)
        print(f"{a.command}: {out}")
        return 0
    except db.SchemaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except sa.exc.SQLAlchemyError as e:
        print(f"error: {db.short_error(e)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
