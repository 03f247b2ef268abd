"""The outbox: ``notifications`` rows (one per alert and channel) and the channel leases.

Rows are written by ``enqueue`` inside the transaction that creates their alerts
(``weibo_mh.alert_queue.fill_alerts``), so an alert never exists without its notifications
and a crash cannot leave one behind. A row goes ``pending`` -> ``sent`` (or ``failed`` after
``notify.max_attempts`` tries; ``retry`` makes it pending again); nothing deletes rows.

Only the holder of a channel's lease (``notify_channels``) sends on that channel, so two
notifiers (the worker's thread and ``python -m weibo_mh.notify run``, or a restarted one)
never send the same rows. Every function here runs in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, sqlite
from sqlalchemy.engine import Connection

from weibo_mh import db
from weibo_mh.rubric import SUICIDE_RISK

N = db.notifications
CH = db.notify_channels
A = db.alerts
C = db.comments
ERROR_CHARS = 500


@dataclass(frozen=True)
class Policy:
    """Which new alerts get notifications, and on which channels ([notify] in the config)."""

    channels: tuple[str, ...]
    min_level: int = 7
    only_watched: bool = False
    max_age_hours: float = 72.0


def policy_from(cfg: Any) -> Policy | None:
    """The policy of a loaded config; None when no channel is configured."""
    no = cfg.notify
    if not no.channels:
        return None
    return Policy(tuple(no.channels), int(no.min_level), bool(no.only_watched), float(no.max_age_hours))


def _insert_ignore(conn: Connection, cols: list[str], select: Any) -> int:
    stmt: Any
    if conn.dialect.name == "sqlite":
        stmt = sqlite.insert(N).from_select(cols, select).on_conflict_do_nothing()
    else:
        stmt = mysql.insert(N).from_select(cols, select).prefix_with("IGNORE")
    return max(conn.execute(stmt).rowcount or 0, 0)


def enqueue(conn: Connection, policy: Policy, created_at: datetime,
            comment_ids: Sequence[str] | None = None) -> int:
    """Pending notifications for the alerts created at ``created_at`` (one fill's timestamp),
    limited to ``comment_ids`` when given; idempotent. Returns the rows written."""
    conds = [A.c.created_at == created_at, A.c.dimension == SUICIDE_RISK, A.c.level >= policy.min_level]
    if comment_ids is not None:
        conds.append(A.c.comment_id.in_(list(comment_ids)))
    if policy.max_age_hours:
        conds.append(A.c.comment_time >= created_at - timedelta(hours=policy.max_age_hours))
    if policy.only_watched:
        wp = db.watched_posts
        conds.append(sa.exists(sa.select(sa.literal(1)).select_from(C.join(wp, wp.c.mid == C.c.mid))
                               .where(C.c.id == A.c.comment_id)))
    cols = ["alert_id", "channel", "state", "attempts", "created_at", "next_attempt_at"]
    written = 0
    for channel in policy.channels:
        select = sa.select(A.c.id, sa.literal(channel), sa.literal("pending"), sa.literal(0),
                           sa.literal(created_at, sa.DateTime), sa.literal(created_at, sa.DateTime)
                           ).where(*conds)
        written += _insert_ignore(conn, cols, select)
    return written


# --------------------------------------------------------------------------- leases


def lease(conn: Connection, channel: str, owner: str, now: datetime, seconds: float) -> bool:
    """Take (or renew) the channel's lease; False when another live notifier holds it."""
    until = now + timedelta(seconds=seconds)
    free = sa.or_(CH.c.lease_owner.is_(None), CH.c.lease_until.is_(None), CH.c.lease_until < now,
                  CH.c.lease_owner == owner)
    got = conn.execute(CH.update().where(CH.c.channel == channel, free)
                       .values(lease_owner=owner, lease_until=until)).rowcount
    if got:
        return True
    if conn.execute(sa.select(CH.c.channel).where(CH.c.channel == channel)).first() is not None:
        return False
    db.upsert(conn, CH, [{"channel": channel, "lease_owner": None, "lease_until": None, "failures": 0}], [])
    return bool(conn.execute(CH.update().where(CH.c.channel == channel, free)
                             .values(lease_owner=owner, lease_until=until)).rowcount)


def reclaim_dead(conn: Connection, host: str, alive: Callable[[int], bool]) -> list[str]:
    """Free the leases held by notifiers of this host whose process is gone (a SIGKILL), so
    that a restarted notifier need not wait for them to expire. Owners are ``host:pid:…``."""
    freed = []
    for channel, owner in conn.execute(sa.select(CH.c.channel, CH.c.lease_owner)
                                       .where(CH.c.lease_owner.like(f"{host}:%"))):
        pid = owner.split(":")[1] if owner.count(":") >= 2 else ""
        if pid.isdigit() and not alive(int(pid)):
            release(conn, channel, owner)
            freed.append(channel)
    return freed


def release(conn: Connection, channel: str, owner: str) -> None:
    conn.execute(CH.update().where(CH.c.channel == channel, CH.c.lease_owner == owner)
                 .values(lease_owner=None, lease_until=None))


@dataclass(frozen=True)
class ChannelState:
    failures: int
    retry_at: datetime | None
    last_sent_at: datetime | None
    sent_last_hour: int


def channel_state(conn: Connection, channel: str, now: datetime) -> ChannelState:
    """Back-off, the last message and how many messages went out in the hour before ``now``."""
    row = conn.execute(sa.select(CH.c.failures, CH.c.retry_at).where(CH.c.channel == channel)).first()
    last = conn.execute(sa.select(sa.func.max(N.c.sent_at)).where(N.c.channel == channel)).scalar()
    hour = conn.execute(sa.select(sa.func.count(sa.distinct(N.c.digest)))
                        .where(N.c.channel == channel, N.c.sent_at > now - timedelta(hours=1))).scalar()
    return ChannelState(int(row.failures) if row else 0, row.retry_at if row else None, last, int(hour or 0))


def due(conn: Connection, channel: str, limit: int) -> list[int]:
    """Ids of the channel's pending notifications, oldest first."""
    return [int(i) for (i,) in conn.execute(
        sa.select(N.c.id).where(N.c.channel == channel, N.c.state == "pending").order_by(N.c.id).limit(limit))]


# --------------------------------------------------------------------------- outcomes


def mark_sent(conn: Connection, channel: str, ids: Sequence[int], digest: str, at: datetime) -> None:
    """The rows went out in message ``digest``; the channel's back-off is over."""
    conn.execute(N.update().where(N.c.id.in_(list(ids)), N.c.state == "pending")
                 .values(state="sent", sent_at=at, digest=digest, attempts=N.c.attempts + 1, last_error=None))
    conn.execute(CH.update().where(CH.c.channel == channel)
                 .values(failures=0, retry_at=None, last_error=None))


def mark_failed(conn: Connection, channel: str, ids: Sequence[int], error: str, now: datetime,
                backoff: float, backoff_max: float, max_attempts: int) -> datetime:
    """A failed send: every row counts an attempt and keeps the error; the channel waits
    ``backoff * 2**(failures-1)`` (at most ``backoff_max``). Returns when it may try again."""
    error = error[:ERROR_CHARS]
    failures = int(conn.execute(sa.select(CH.c.failures).where(CH.c.channel == channel)).scalar() or 0) + 1
    retry_at = now + timedelta(seconds=min(backoff * 2 ** min(failures - 1, 30), backoff_max))
    conn.execute(CH.update().where(CH.c.channel == channel)
                 .values(failures=failures, retry_at=retry_at, last_error=error))
    conn.execute(N.update().where(N.c.id.in_(list(ids)), N.c.state == "pending")
                 .values(attempts=N.c.attempts + 1, last_error=error, next_attempt_at=retry_at,
                         state=sa.case((N.c.attempts + 1 >= max_attempts, "failed"), else_="pending")))
    return retry_at


def retry(conn: Connection, channel: str | None = None) -> int:
    """Make failed notifications pending again (after the cause was fixed); returns how many."""
    conds = [N.c.state == "failed"]
    if channel:
        conds.append(N.c.channel == channel)
    n = conn.execute(N.update().where(*conds).values(state="pending", attempts=0)).rowcount or 0
    chan = CH.update() if not channel else CH.update().where(CH.c.channel == channel)
    conn.execute(chan.values(failures=0, retry_at=None))
    return n


def counts(conn: Connection) -> dict[tuple[str, str], int]:
    """(channel, state) -> rows."""
    return {(c, s): int(n) for c, s, n in conn.execute(
        sa.select(N.c.channel, N.c.state, sa.func.count()).group_by(N.c.channel, N.c.state))}
