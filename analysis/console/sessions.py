"""Server-side console sessions: the cookie carries a random token, the database its record.

A session is live while its row is not revoked, its user is active and it is younger
than ``console.session_minutes``; every request checks that (one indexed read). Logout
ends the session; a new password, a new role or disabling a user ends all of theirs; an
admin may end any. The table stores only the token's SHA-256, so whoever reads the
database cannot take over a session.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from weibo_mh import db

S = db.console_sessions
U = db.console_users
#: last_seen_at is written at most this often per session (a write per page would queue
#: every page view behind the database's one writer on SQLite).
TOUCH_SECONDS = 60


@dataclass(frozen=True)
class Live:
    id: int
    user_id: int
    username: str
    role: str
    last_seen_at: datetime


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start(conn: Connection, user_id: int, ip: str, user_agent: str, lifetime_minutes: int) -> str:
    """A new session for the user; returns the token for the cookie. Dead sessions are pruned."""
    t = db.now()
    conn.execute(S.delete().where(S.c.created_at < t - timedelta(minutes=lifetime_minutes)))
    token = secrets.token_urlsafe(32)
    conn.execute(S.insert().values(token_hash=digest(token), user_id=user_id, created_at=t,
                                   last_seen_at=t, ip=ip[:64], user_agent=user_agent[:191]))
    return token


def lookup(conn: Connection, token: str, lifetime_minutes: int) -> Live | None:
    """The live session behind a cookie's token, with its active user; None otherwise."""
    if not token or len(token) > 128:
        return None
    since = db.now() - timedelta(minutes=lifetime_minutes)
    r = conn.execute(sa.select(S.c.id, S.c.user_id, S.c.last_seen_at, U.c.username, U.c.role)
                     .select_from(S.join(U, U.c.id == S.c.user_id))
                     .where(S.c.token_hash == digest(token), S.c.revoked_at.is_(None),
                            S.c.created_at >= since, U.c.disabled.is_(sa.false()))).first()
    if r is None:
        return None
    return Live(int(r.id), int(r.user_id), r.username, r.role, r.last_seen_at)


def needs_touch(live: Live) -> bool:
    return (db.now() - live.last_seen_at).total_seconds() >= TOUCH_SECONDS


def touch(conn: Connection, session_id: int) -> None:
    conn.execute(S.update().where(S.c.id == session_id, S.c.revoked_at.is_(None))
                 .values(last_seen_at=db.now()))


def end(conn: Connection, session_id: int, why: str) -> bool:
    """End one session; False when it was not live."""
    return bool(conn.execute(S.update().where(S.c.id == session_id, S.c.revoked_at.is_(None))
                             .values(revoked_at=db.now(), revoked_why=why[:32])).rowcount)


def end_user(conn: Connection, user_id: int, why: str) -> int:
    """End every live session of a user; returns how many."""
    return int(conn.execute(S.update().where(S.c.user_id == user_id, S.c.revoked_at.is_(None))
                            .values(revoked_at=db.now(), revoked_why=why[:32])).rowcount)


def live(conn: Connection, lifetime_minutes: int) -> list[dict[str, Any]]:
    """Every live session, newest first (for the admin page)."""
    since = db.now() - timedelta(minutes=lifetime_minutes)
    q = (sa.select(S.c.id, U.c.username, U.c.role, S.c.created_at, S.c.last_seen_at, S.c.ip,
                   S.c.user_agent)
         .select_from(S.join(U, U.c.id == S.c.user_id))
         .where(S.c.revoked_at.is_(None), S.c.created_at >= since, U.c.disabled.is_(sa.false()))
         .order_by(S.c.created_at.desc(), S.c.id.desc()).limit(1000))
    return [dict(r._mapping) for r in conn.execute(q)]
