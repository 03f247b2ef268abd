"""Console accounts: argon2 password hashes, roles, the failed-login limit and the audit trail.

Passwords never pass through the command line or a log: ``add-user`` reads them with
getpass, only their argon2id hash is stored. The failed-login limit counts failures per
(user name, address) pair in ``login_attempts``: after ``console.login_max_failures`` each
further try must wait, the wait doubling with each failure; the account is never locked,
so neither an attacker elsewhere nor made-up names can keep a real user out. The count
lives in the database, so it holds across restarts and several console processes, and it
is taken and raised in one write transaction (row-locked on MariaDB), so parallel tries
cannot slip past it. Every attempt leaves a row in ``audit_log``.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from analysis.console import sessions
from analysis.console.writes import write
from weibo_mh import db

U = db.console_users
L = db.audit_log
A = db.login_attempts
ROLES = db.CONSOLE_ROLES
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PASSWORD = 10
#: Every action audit_log records (the audit page filters by these).
ACTIONS = ("login", "login_failed", "login_refused", "logout", "end_sessions", "refused", "csrf_refused",
           "label", "skip", "undo", "fill_queue", "fill_alerts", "alert_acknowledge", "alert_escalate",
           "alert_dismiss", "alert_resolve", "alert_assign", "alert_note", "export_alerts", "add_user",
           "update_user", "disable_user", "enable_user", "retention", "forget")

_hasher = PasswordHasher()
#: Verified against when the user does not exist, so that both cases take as long.
_DUMMY = _hasher.hash("not a password of anyone")


class AuthError(ValueError):
    """A user name, role or password the console refuses; the message says why."""


@dataclass(frozen=True)
class User:
    id: int
    username: str
    role: str

    @property
    def scorer(self) -> str:
        """The scorer name of this user's labels in ``scores``."""
        return f"human:{self.username}"


def check_username(name: str) -> str:
    if not USERNAME.fullmatch(name or ""):
        raise AuthError(f"user name {name!r} must be 1-64 letters, digits, '_', '.' or '-', "
                        "starting with a letter or digit")
    return name


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AuthError(f"role {role!r} is not one of {', '.join(ROLES)}")
    return role


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AuthError(f"the password must have at least {MIN_PASSWORD} characters")
    return password


def add_user(engine: Engine, username: str, role: str, password: str, *, actor: str = "-",
             replace: bool = False) -> str:
    """Create a user (or, with ``replace``, set an existing one's role and password).

    Returns "created" or "updated". Recorded in audit_log as ``add_user`` / ``update_user``.
    Replacing ends every session of the user (a new password or role means a new login).
    """
    check_username(username)
    check_role(role)
    check_password(password)
    digest = _hasher.hash(password)

    def run(conn: Connection) -> str:
        row = conn.execute(sa.select(U.c.id, U.c.role).where(U.c.username == username)).first()
        if row is not None and not replace:
            raise AuthError(f"user {username!r} exists already (use --replace to set a new password "
                            "or role)")
        detail: dict[str, Any] = {"role": role}
        if row is None:
            conn.execute(U.insert().values(username=username, role=role, password_hash=digest,
                                           created_at=db.now()))
        else:
            conn.execute(U.update().where(U.c.id == row.id)
                         .values(role=role, password_hash=digest, disabled=False))
            detail["sessions_ended"] = sessions.end_user(
                conn, int(row.id), "password" if row.role == role else "role")
        audit(conn, actor, "add_user" if row is None else "update_user", f"user:{username}", detail)
        return "created" if row is None else "updated"

    return write(engine, run)


def set_disabled(engine: Engine, username: str, disabled: bool, *, actor: str, ip: str = "") -> bool:
    """Disable (ending every session) or re-enable a user; False if there is no such user."""
    def run(conn: Connection) -> bool:
        uid = conn.execute(sa.select(U.c.id).where(U.c.username == username)).scalar()
        if uid is None:
            return False
        conn.execute(U.update().where(U.c.id == uid).values(disabled=disabled))
        ended = sessions.end_user(conn, int(uid), "disabled") if disabled else 0
        audit(conn, actor, "disable_user" if disabled else "enable_user", f"user:{username}",
              {"sessions_ended": ended} if disabled else None, ip=ip)
        return True

    return write(engine, run)


def end_sessions(engine: Engine, *, actor: str, ip: str = "", username: str | None = None,
                 session_id: int | None = None) -> int:
    """An admin's "log out": every session of ``username``, or the one ``session_id``; how many ended."""
    S = sessions.S

    def run(conn: Connection) -> int:
        if session_id is not None:
            name = conn.execute(sa.select(U.c.username).select_from(S.join(U, U.c.id == S.c.user_id))
                                .where(S.c.id == session_id)).scalar()
            n = int(name is not None and sessions.end(conn, session_id, f"admin:{actor}"))
        else:
            uid = conn.execute(sa.select(U.c.id).where(U.c.username == (username or ""))).scalar()
            name = username
            n = 0 if uid is None else sessions.end_user(conn, int(uid), f"admin:{actor}")
        if n:
            audit(conn, actor, "end_sessions", f"user:{name}",
                  {"sessions_ended": n, **({"session": session_id} if session_id else {})}, ip=ip)
        return n

    return write(engine, run)


def active_users(conn: Connection, roles: tuple[str, ...] = ROLES) -> list[str]:
    """Names of the active users with these roles (an alert's possible assignees)."""
    return list(conn.execute(sa.select(U.c.username).where(U.c.disabled.is_(sa.false()), U.c.role.in_(roles))
                             .order_by(U.c.username)).scalars())


@dataclass(frozen=True)
class Limit:
    """The failed-login limit: free tries per (name, address), then a doubling wait."""

    max_failures: int
    delay_seconds: float
    window_minutes: int

    def wait(self, failures: int) -> float:
        """Seconds a try must wait after the last failure, with ``failures`` in the window."""
        if failures < self.max_failures:
            return 0.0
        return min(self.delay_seconds * 2.0 ** min(failures - self.max_failures, 60),
                   self.window_minutes * 60.0)


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    why: str = ""
    token: str = ""
    #: seconds to wait before the next try (only when refused by the limit)
    retry_after: int = 0


def _reserve(conn: Connection, name: str, ip: str, limit: Limit) -> int:
    """Count this try against its (name, address) pair, or refuse it: 0, or seconds to wait.

    The row is created if missing, then read under a row lock (on SQLite the write
    transaction is the lock), so parallel tries are counted one after the other. The try is
    counted before the password is checked (outside the lock); a success clears the count.
    """
    t = datetime.now(db.SHANGHAI).replace(tzinfo=None)  # to the microsecond, unlike db.now()
    row = {"username": name, "ip": ip, "failures": 0, "last_at": t}
    if conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(A).values(**row).on_conflict_do_nothing())
    else:
        conn.execute(mysql_insert(A).values(**row).on_duplicate_key_update(username=A.c.username))
    r = conn.execute(sa.select(A.c.failures, A.c.last_at).where(A.c.username == name, A.c.ip == ip)
                     .with_for_update()).one()
    failures = int(r.failures) if r.last_at >= t - timedelta(minutes=limit.window_minutes) else 0
    left = (r.last_at - t).total_seconds() + limit.wait(failures)
    if left > 0:
        count(conn, "login_refused", ip, f"user:{name}", {"reason": "login delay"})
        return max(1, math.ceil(left))
    conn.execute(A.update().where(A.c.username == name, A.c.ip == ip).values(failures=failures + 1, last_at=t))
    return 0


def login(engine: Engine, username: str, password: str, ip: str, *, limit: Limit, lifetime_minutes: int,
          user_agent: str = "") -> LoginResult:
    """Check a login; on success start a server-side session. Every try is recorded in audit_log.

    Three short transactions, none of them holding the write lock while argon2 works: count
    the try (or refuse it), check the password, record the outcome.
    """
    name = (username or "").strip()[:64]
    wait = write(engine, lambda conn: _reserve(conn, name, ip, limit))
    if wait:
        return LoginResult(None, f"too many failed logins for this name from your address; try again in "
                                 f"{wait} second{'' if wait == 1 else 's'}", retry_after=wait)
    with engine.connect() as conn:
        row = conn.execute(sa.select(U).where(U.c.username == name)).first()
    ok = False
    try:
        ok = _hasher.verify(row.password_hash if row is not None else _DUMMY, password or "")
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        ok = False
    if row is None or not ok or row.disabled:
        def failed(conn: Connection) -> None:
            audit(conn, "-", "login_failed", f"user:{name}", ip=ip)
            _forget_old(conn, limit)

        write(engine, failed)
        return LoginResult(None, "wrong user name or password")
    rehash = _hasher.hash(password) if _hasher.check_needs_rehash(row.password_hash) else None

    def success(conn: Connection) -> str:
        conn.execute(A.delete().where(A.c.username == name, A.c.ip == ip))
        _forget_old(conn, limit)
        values: dict[str, Any] = {"last_login_at": db.now()}
        if rehash:
            values["password_hash"] = rehash
        conn.execute(U.update().where(U.c.id == row.id).values(**values))
        audit(conn, name, "login", f"user:{name}", ip=ip)
        return sessions.start(conn, int(row.id), ip, user_agent, lifetime_minutes)

    token = write(engine, success)
    return LoginResult(User(int(row.id), row.username, row.role), token=token)


def _forget_old(conn: Connection, limit: Limit) -> None:
    """Drop the pairs whose failures are past the window (made-up names would pile up)."""
    conn.execute(A.delete().where(A.c.last_at < db.now() - timedelta(minutes=limit.window_minutes)))


def audit(conn: Connection, actor: str, action: str, target: str = "",
          detail: dict[str, Any] | str | None = None, ip: str = "") -> None:
    """One audit_log row: who did what, to what, when (and from where)."""
    conn.execute(L.insert().values(at=db.now(), actor=actor[:64], action=action[:32],
                                   target=target[:191], detail=_text(detail), ip=ip[:64]))


def count(conn: Connection, action: str, ip: str, target: str = "",
          detail: dict[str, Any] | str | None = None) -> None:
    """A refused anonymous request: one audit_log row per action, address and minute, with a count.

    The row's ``bucket`` is unique, so the first request of the minute inserts it and the
    others raise its ``hits`` in the same statement (an upsert: atomic on both databases).
    Its target and detail are those of the minute's first request.
    """
    t = db.now().replace(second=0)
    row = {"at": t, "actor": "-", "action": action[:32], "target": target[:191], "detail": _text(detail),
           "ip": ip[:64], "hits": 1, "bucket": f"{action}|{ip}|{t:%Y%m%d%H%M}"[:191]}
    if conn.dialect.name == "sqlite":
        conn.execute(sqlite_insert(L).values(**row)
                     .on_conflict_do_update(index_elements=[L.c.bucket], set_={"hits": L.c.hits + 1}))
    else:
        conn.execute(mysql_insert(L).values(**row).on_duplicate_key_update(hits=L.c.hits + 1))


def _text(detail: dict[str, Any] | str | None) -> str | None:
    if isinstance(detail, str) or detail is None:
        return detail
    return json.dumps(detail, ensure_ascii=False, sort_keys=True)


def users(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(U.c.username, U.c.role, U.c.disabled, U.c.created_at,
                                  U.c.last_login_at).order_by(U.c.username))
    return [dict(r._mapping) for r in rows]
