"""The annotation queue: which comments humans label, who labels them, and the labels.

A fill adds comments to ``annotation_tasks``: stratified by one scorer's suicide-risk
level (so that the rare high levels are represented), at random, or from a list of
ids. A share of them (``console.double_coding_share``) gets a second task, which only
another annotator may take: that is the double coding that inter-annotator agreement
needs. Labels are ordinary ``scores`` rows with scorer ``human:<username>`` and the
rubric version, so every analysis script reads them like any scorer's.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analysis.console.auth import User, audit
from weibo_mh import db, rollups
from weibo_mh.rubric import CORE_DIMENSIONS, RUBRIC_VERSION, SUICIDE_RISK

T = db.annotation_tasks
S = db.scores
C = db.comments
P = db.posts
PT = db.post_topics
TP = db.topics
RISK = SUICIDE_RISK
STRATEGIES = ("stratified", "random", "ids")


class QueueError(ValueError):
    """A fill request that cannot be met (unknown scorer, no comments); the message says why."""


def _random(conn: Connection) -> Any:
    return sa.func.rand() if conn.dialect.name in ("mysql", "mariadb") else sa.func.random()


def _not_queued(col: Any) -> Any:
    return ~sa.exists(sa.select(sa.literal(1)).where(T.c.comment_id == col))


def level_counts(conn: Connection, scorer: str, dimension: str = RISK) -> dict[int, int]:
    """Comments per level of ``dimension`` under ``scorer`` (through ix_scores_level)."""
    q = (sa.select(S.c.value, sa.func.count()).where(S.c.scorer == scorer, S.c.dimension == dimension)
         .group_by(S.c.value))
    return {int(v): int(n) for v, n in conn.execute(q)}


def allocate(available: dict[int, int], n: int) -> dict[int, int]:
    """Spread ``n`` over the levels as evenly as their sizes allow (rare levels: all they have)."""
    take = dict.fromkeys(available, 0)
    left = n
    while left > 0:
        open_ = [lv for lv in sorted(available) if take[lv] < available[lv]]
        if not open_:
            break
        share = max(1, left // len(open_))
        for lv in open_:
            extra = min(share, available[lv] - take[lv], left)
            take[lv] += extra
            left -= extra
            if left == 0:
                break
    return {lv: k for lv, k in take.items() if k}


def sample(conn: Connection, strategy: str, n: int, *, scorer: str | None = None,
           ids: Sequence[str] = (), dimension: str = RISK) -> list[tuple[str, int | None]]:
    """(comment id, stratum) for up to ``n`` comments not yet queued."""
    if strategy == "stratified":
        if not scorer:
            raise QueueError("a stratified sample needs a scorer (--scorer)")
        counts = level_counts(conn, scorer, dimension)
        if not counts:
            raise QueueError(f"no {dimension} scores from scorer {scorer!r}")
        out: list[tuple[str, int | None]] = []
        # ask each level for its share; levels that run short are refilled from the rest
        for level, k in allocate(counts, n).items():
            q = (sa.select(S.c.comment_id)
                 .where(S.c.scorer == scorer, S.c.dimension == dimension, S.c.value == level,
                        _not_queued(S.c.comment_id))
                 .order_by(_random(conn)).limit(k))
            out += [(cid, level) for cid in conn.execute(q).scalars()]
        return out
    if strategy == "random":
        q = sa.select(C.c.id).where(_not_queued(C.c.id)).order_by(_random(conn)).limit(n)
        return [(cid, None) for cid in conn.execute(q).scalars()]
    if strategy == "ids":
        wanted = list(dict.fromkeys(i.strip() for i in ids if i.strip()))
        found: set[str] = set()
        for i in range(0, len(wanted), 500):
            chunk = wanted[i:i + 500]
            found.update(conn.execute(sa.select(C.c.id).where(C.c.id.in_(chunk), _not_queued(C.c.id)))
                         .scalars())
        return [(cid, None) for cid in wanted if cid in found]
    raise QueueError(f"strategy must be one of {', '.join(STRATEGIES)}, not {strategy!r}")


@dataclass
class Filled:
    comments: int
    double_coded: int
    asked: int


def fill(conn: Connection, strategy: str, n: int, *, actor: str, scorer: str | None = None,
         ids: Sequence[str] = (), share: float = 0.2, seed: int | None = None, ip: str = "") -> Filled:
    """Queue up to ``n`` new comments; ``share`` of them get a second (double-coding) task."""
    picked = sample(conn, strategy, n, scorer=scorer, ids=ids)
    rng = random.Random(seed)
    rng.shuffle(picked)
    doubles = set(rng.sample(range(len(picked)), math.floor(share * len(picked) + 0.5)))
    t = db.now()
    label = f"stratified:{scorer}" if strategy == "stratified" else strategy
    rows = []
    for i, (cid, stratum) in enumerate(picked):
        for copy in ((1, 2) if i in doubles else (1,)):
            rows.append({"comment_id": cid, "copy": copy, "state": "open", "sample": label[:64],
                         "stratum": stratum, "created_at": t})
    if rows:
        conn.execute(T.insert(), rows)
    result = Filled(len(picked), len(doubles), n if strategy != "ids" else len(ids))
    audit(conn, actor, "fill_queue", f"queue:{label}"[:191],
          {"asked": result.asked, "comments": result.comments, "double_coded": result.double_coded},
          ip=ip)
    return result


# --------------------------------------------------------------------------- one annotator


def current_task(conn: Connection, user: User) -> dict[str, Any] | None:
    """The annotator's open task, taking the next free one if they hold none."""
    mine = held_task(conn, user)
    if mine is None:
        mine = take_task(conn, user)
    return None if mine is None else task(conn, mine)


def held_task(conn: Connection, user: User) -> int | None:
    """The id of the open task the annotator holds (a read: no write lock needed)."""
    mine = conn.execute(sa.select(T.c.id).where(T.c.annotator == user.username, T.c.state == "open")
                        .order_by(T.c.taken_at.desc(), T.c.id.desc()).limit(1)).scalar()
    return None if mine is None else int(mine)


def take_task(conn: Connection, user: User) -> int | None:
    """Give the annotator the next free task (a write: run it in a write transaction)."""
    other = T.alias("other")
    for _ in range(5):  # another annotator may take the same task between our SELECT and UPDATE
        free = conn.execute(
            sa.select(T.c.id).where(
                T.c.state == "open", T.c.annotator.is_(None),
                ~sa.exists(sa.select(sa.literal(1)).where(other.c.comment_id == T.c.comment_id,
                                                          other.c.annotator == user.username)))
            .order_by(T.c.id).limit(1)).scalar()
        if free is None:
            return None
        n = conn.execute(T.update().where(T.c.id == free, T.c.annotator.is_(None))
                         .values(annotator=user.username, taken_at=db.now())).rowcount
        if n:
            return int(free)
    return None


def task(conn: Connection, task_id: int) -> dict[str, Any] | None:
    """A task with its comment, post and topics."""
    r = conn.execute(sa.select(T.c.id, T.c.comment_id, T.c.copy, T.c.annotator, T.c.state,
                               C.c.text, C.c.created_at, C.c.mid, P.c.text.label("post_text"))
                     .select_from(T.join(C, C.c.id == T.c.comment_id).join(P, P.c.mid == C.c.mid))
                     .where(T.c.id == task_id)).first()
    if r is None:
        return None
    out = dict(r._mapping)
    out["topics"] = list(conn.execute(sa.select(TP.c.word).select_from(PT.join(TP, TP.c.id == PT.c.topic_id))
                                      .where(PT.c.mid == r.mid).order_by(TP.c.word)).scalars())
    return out


def progress(conn: Connection, user: User) -> dict[str, int]:
    rows = conn.execute(sa.select(T.c.state, sa.func.count()).where(T.c.annotator == user.username)
                        .group_by(T.c.state))
    mine = {state: int(n) for state, n in rows}
    free = conn.execute(sa.select(sa.func.count()).select_from(T)
                        .where(T.c.state == "open", T.c.annotator.is_(None))).scalar()
    return {"done": mine.get("done", 0), "skipped": mine.get("skipped", 0), "free": int(free or 0)}


def _held(conn: Connection, user: User, task_id: int) -> Any:
    return conn.execute(sa.select(T.c.id, T.c.comment_id).where(
        T.c.id == task_id, T.c.annotator == user.username, T.c.state == "open")).first()


def label(conn: Connection, user: User, task_id: int, values: dict[str, int], ip: str = "") -> bool:
    """Store the four labels of a held task as ``scores`` rows; False if the task is not held."""
    row = _held(conn, user, task_id)
    if row is None:
        return False
    if set(values) != set(CORE_DIMENSIONS) or not all(0 <= v <= 10 for v in values.values()):
        raise ValueError("a label needs a level 0-10 for each of the four dimensions")
    t = db.now()
    # through the rollups' writer, like every score, so the report's daily figures count it
    rollups.write_scores(conn, [{"comment_id": row.comment_id, "dimension": d, "scorer": user.scorer,
                                 "value": int(v), "confidence": None, "rationale": None,
                                 "rubric_version": RUBRIC_VERSION, "truncated": False, "scored_at": t}
                                for d, v in values.items()])
    conn.execute(T.update().where(T.c.id == task_id).values(state="done", done_at=t))
    audit(conn, user.username, "label", f"comment:{row.comment_id}",
          {"task": task_id, **{d: int(v) for d, v in values.items()}}, ip=ip)
    return True


def skip(conn: Connection, user: User, task_id: int, ip: str = "") -> bool:
    row = _held(conn, user, task_id)
    if row is None:
        return False
    conn.execute(T.update().where(T.c.id == task_id).values(state="skipped", done_at=db.now()))
    audit(conn, user.username, "skip", f"comment:{row.comment_id}", {"task": task_id}, ip=ip)
    return True


def undo(conn: Connection, user: User, ip: str = "") -> str | None:
    """Reopen the annotator's last labelled or skipped task (its labels are deleted).

    "Last" is read from audit_log, whose ids grow with every action: task times have
    whole seconds, and a fast annotator saves several comments a second.
    Returns the comment id, or None when there is nothing to undo.
    """
    L = db.audit_log
    recent = conn.execute(sa.select(L.c.detail).where(L.c.actor == user.username,
                                                      L.c.action.in_(("label", "skip")))
                          .order_by(L.c.at.desc(), L.c.id.desc()).limit(200)).scalars()
    seen: set[int] = set()
    for detail in recent:
        try:
            task_id = int(json.loads(detail or "{}").get("task"))
        except (TypeError, ValueError):
            continue
        if task_id in seen:
            continue
        seen.add(task_id)
        last = conn.execute(sa.select(T.c.id, T.c.comment_id, T.c.state).where(
            T.c.id == task_id, T.c.annotator == user.username,
            T.c.state.in_(("done", "skipped")))).first()
        if last is None:
            continue
        # the comment on screen goes back to the queue, so that the reopened one is shown next
        conn.execute(T.update().where(T.c.annotator == user.username, T.c.state == "open")
                     .values(annotator=None, taken_at=None))
        if last.state == "done":
            rollups.delete_scores(conn, [str(last.comment_id)], scorer=user.scorer)
        conn.execute(T.update().where(T.c.id == last.id)
                     .values(state="open", done_at=None, taken_at=db.now()))
        audit(conn, user.username, "undo", f"comment:{last.comment_id}",
              {"task": int(last.id), "was": last.state}, ip=ip)
        return str(last.comment_id)
    return None


def scorer_names(conn: Connection, limit: int = 100) -> list[str]:
    """The distinct scorers, one index seek each (a GROUP BY would read every score row)."""
    names: list[str] = []
    last: str | None = None
    while len(names) < limit:
        q = sa.select(sa.func.min(S.c.scorer))
        if last is not None:
            q = q.where(S.c.scorer > last)
        last = conn.execute(q).scalar()
        if last is None:
            break
        names.append(last)
    return names


def queue_counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(T.c.state, sa.func.count()).group_by(T.c.state))
    return {state: int(n) for state, n in rows}
