"""Fill the ``alerts`` table from scores at or above a threshold, idempotently.

The worker calls ``fill_alerts`` after each batch (for that batch's comments) and
``python -m analysis.console fill-alerts`` calls it for the whole database; both may
run at once and again and again: a comment gets one alert, ever (``uq_alerts_comment``),
and a triaged alert is never reset. It lives in the kernel because the worker may not
import ``analysis``.

Each alert also carries ``repeat_count``: how many alerts the same pseudonymous author
(``author_hash``) has in the ``repeat_days`` before it, itself included, so that the
console can sort by repeated risk through an index ("3 comments at level >= 7 in 7 days").

With a notification ``policy`` ([notify] channels), the outbox rows of the new alerts are
written here too, in the same transaction (``weibo_mh.notify.outbox.enqueue``): an alert is
never committed without its notifications, nor a notification without its alert.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection

from weibo_mh import db
from weibo_mh.notify import outbox
from weibo_mh.rubric import SUICIDE_RISK

log = logging.getLogger(__name__)

A = db.alerts
S = db.scores
C = db.comments
RISK = SUICIDE_RISK
CHUNK = 500


def _candidates(scorer: str, threshold: int, dimension: str,
                comment_ids: Sequence[str] | None) -> Any:
    conds = [S.c.scorer == scorer, S.c.dimension == dimension, S.c.value >= threshold,
             ~sa.exists(sa.select(sa.literal(1)).where(A.c.comment_id == S.c.comment_id))]
    if comment_ids is not None:
        conds.append(S.c.comment_id.in_(list(comment_ids)))
    return conds


def fill_alerts(conn: Connection, scorer: str, threshold: int, *, dimension: str = RISK,
                comment_ids: Iterable[str] | None = None, repeat_days: int = 7,
                notify: outbox.Policy | None = None) -> int:
    """Insert an alert for every comment ``scorer`` rated ``>= threshold`` that has none yet.

    ``comment_ids`` limits the work to those comments (the worker's batch). With ``notify``,
    the new alerts the policy selects get their pending notifications. Returns the number of
    alerts created. Runs inside the caller's transaction.
    """
    if not 0 <= threshold <= 10:
        raise ValueError(f"alert threshold must be 0-10, got {threshold}")
    ids = None if comment_ids is None else list(dict.fromkeys(comment_ids))
    if ids is not None and not ids:
        return 0
    t = db.now()
    created = 0
    authors: set[str] = set()
    chunks: list[list[str] | None] = [None] if ids is None else \
        [ids[i:i + CHUNK] for i in range(0, len(ids), CHUNK)]
    for chunk in chunks:
        conds = _candidates(scorer, threshold, dimension, chunk)
        join = S.join(C, C.c.id == S.c.comment_id)
        authors.update(h for (h,) in conn.execute(
            sa.select(C.c.author_hash).select_from(join).where(*conds, C.c.author_hash.is_not(None))
            .distinct()))
        select = sa.select(S.c.comment_id, S.c.scorer, S.c.dimension, S.c.value, C.c.author_hash,
                           sa.func.coalesce(C.c.created_at, C.c.first_scraped_at),
                           sa.literal(1), sa.literal("new"), sa.literal(t, sa.DateTime),
                           sa.literal(t, sa.DateTime)).select_from(join).where(*conds)
        cols = ["comment_id", "scorer", "dimension", "level", "author_hash", "comment_time",
                "repeat_count", "state", "created_at", "updated_at"]
        stmt: Any
        if conn.dialect.name == "sqlite":
            stmt = sqlite.insert(A).from_select(cols, select).on_conflict_do_nothing()
        else:
            stmt = mysql.insert(A).from_select(cols, select).prefix_with("IGNORE")
        new = max(conn.execute(stmt).rowcount or 0, 0)
        created += new
        if notify is not None and new:
            outbox.enqueue(conn, notify, t, chunk)
    if authors:
        update_repeats(conn, authors, repeat_days)
    if created:
        log.info("event=alerts_filled scorer=%s threshold=%d created=%d", scorer, threshold, created)
    return created


def missing_scorer_hint(conn: Connection, scorer: str, dimension: str = RISK) -> str:
    """A warning when ``scorer`` has no ``dimension`` scores at all ('' when it has some): no
    alert can come from it, which usually means console.alert_scorer names a scorer no
    worker runs. The hint lists the scorers that do have scores."""
    found = conn.execute(sa.select(sa.literal(1)).where(S.c.scorer == scorer, S.c.dimension == dimension)
                         .limit(1)).first()
    if found:
        return ""
    others = [r for (r,) in conn.execute(sa.select(S.c.scorer).where(S.c.dimension == dimension)
                                         .group_by(S.c.scorer).order_by(S.c.scorer).limit(10))]
    have = f"scorers with scores: {', '.join(others)}" if others else "no scorer has written scores yet"
    return (f"scorer {scorer} has no {dimension} scores, so it raises no alerts ({have}); set "
            "console.alert_scorer to the scorer your workers run, or leave it empty")


def repeat_counts(times: Sequence[tuple[int, datetime]], days: int) -> dict[int, int]:
    """alert id -> alerts among ``times`` (one author's) in the ``days`` up to it, itself included."""
    ordered = sorted(times, key=lambda x: (x[1], x[0]))
    span = timedelta(days=days)
    out: dict[int, int] = {}
    start = 0
    for i, (aid, when) in enumerate(ordered):
        while ordered[start][1] < when - span:
            start += 1
        out[aid] = i - start + 1
    return out


def update_repeats(conn: Connection, authors: Iterable[str], days: int = 7) -> int:
    """Recount ``repeat_count`` for every alert of these authors; returns the rows changed."""
    changed = 0
    authors = sorted(authors)
    for i in range(0, len(authors), CHUNK):
        rows = conn.execute(sa.select(A.c.id, A.c.author_hash, A.c.comment_time, A.c.repeat_count)
                            .where(A.c.author_hash.in_(authors[i:i + CHUNK]))).all()
        by_author: dict[str, list[tuple[int, datetime]]] = {}
        have: dict[int, int] = {}
        for aid, author, when, count in rows:
            by_author.setdefault(author, []).append((int(aid), when))
            have[int(aid)] = int(count)
        # one UPDATE per count and chunk of ids: the counts are a few small numbers, and a
        # statement per alert (executemany) cost 20,000 round trips on MariaDB for a full fill
        by_count: dict[int, list[int]] = {}
        for times in by_author.values():
            for aid, n in repeat_counts(times, days).items():
                if have[aid] != n:
                    by_count.setdefault(n, []).append(aid)
        for n, ids in sorted(by_count.items()):
            for j in range(0, len(ids), CHUNK):
                conn.execute(A.update().where(A.c.id.in_(ids[j:j + CHUNK])).values(repeat_count=n))
            changed += len(ids)
    return changed
