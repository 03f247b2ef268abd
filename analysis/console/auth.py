"""Console accounts: argon2 password hashes, roles, the failed-login limit and the audit trail.

Passwords never pass through the command line or a log: ``add-user`` reads them with
getpass, only their argon2id hash is stored. The failed-login limit counts the
``login_failed`` rows of ``audit_log``, so it holds across restarts and across several
console processes.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.engine import Connection, Engine

from weibo_mh import db

U = db.console_users
L = db.audit_log
ROLES = db.CONSOLE_ROLES
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PASSWORD = 10
#: Failed logins from one address may be this many times the per-user limit.
IP_FACTOR = 4

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
    """
    check_username(username)
    check_role(role)
    check_password(password)
    digest = _hasher.hash(password)
    with engine.begin() as conn:
        row = conn.execute(sa.select(U.c.id).where(U.c.username == username)).first()
        if row is not None and not replace:
            raise AuthError(f"user {username!r} exists already (use --replace to set a new password "
                            "or role)")
        if row is None:
            conn.execute(U.insert().values(username=username, role=role, password_hash=digest,
                                           created_at=db.now()))
            what = "created"
        else:
            conn.execute(U.update().where(U.c.id == row.id)
                         .values(role=role, password_hash=digest, disabled=False))
            what = "updated"
        audit(conn, actor, "add_user" if what == "created" else "update_user",
              f"user:{username}", {"role": role})
    return what


def set_disabled(engine: Engine, username: str, disabled: bool, *, actor: str, ip: str = "") -> bool:
    with engine.begin() as conn:
        n = conn.execute(U.update().where(U.c.username == username).values(disabled=disabled)).rowcount
        if n:
            audit(conn, actor, "disable_user" if disabled else "enable_user", f"user:{username}", ip=ip)
    return bool(n)


def get_user(conn: Connection, user_id: int) -> User | None:
    """The active user with this id (None if it is gone or disabled)."""
    r = conn.execute(sa.select(U.c.id, U.c.username, U.c.role)
                     .where(U.c.id == user_id, U.c.disabled.is_(sa.false()))).first()
    return None if r is None else User(int(r.id), r.username, r.role)


def recent_failures(conn: Connection, username: str, ip: str, minutes: int) -> tuple[int, int]:
    """Failed logins in the last ``minutes``: (for this user name, from this address)."""
    since = db.now() - timedelta(minutes=minutes)
    by_user = conn.execute(sa.select(sa.func.count()).select_from(L).where(
        L.c.target == f"user:{username}", L.c.at >= since, L.c.action == "login_failed")).scalar()
    by_ip = conn.execute(sa.select(sa.func.count()).select_from(L).where(
        L.c.ip == ip, L.c.at >= since, L.c.action == "login_failed")).scalar() if ip else 0
    return int(by_user or 0), int(by_ip or 0)


def login(engine: Engine, username: str, password: str, ip: str, *, max_failures: int,
          window_minutes: int) -> tuple[User | None, str]:
    """Check a login. Returns (user, "") or (None, why) and records the attempt in audit_log."""
    name = (username or "").strip()[:64]
    with engine.begin() as conn:
        by_user, by_ip = recent_failures(conn, name, ip, window_minutes)
        if by_user >= max_failures or by_ip >= max_failures * IP_FACTOR:
            audit(conn, "-", "login_refused", f"user:{name}", {"reason": "rate limit"}, ip=ip)
            return None, (f"too many failed logins; wait {window_minutes} minutes and try again")
        row = conn.execute(sa.select(U).where(U.c.username == name)).first()
        ok = False
        try:
            ok = _hasher.verify(row.password_hash if row is not None else _DUMMY, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            ok = False
        if row is None or not ok or row.disabled:
            audit(conn, "-", "login_failed", f"user:{name}", ip=ip)
            return None, "wrong user name or password"
        if _hasher.check_needs_rehash(row.password_hash):
            conn.execute(U.update().where(U.c.id == row.id).values(password_hash=_hasher.hash(password)))
        conn.execute(U.update().where(U.c.id == row.id).values(last_login_at=db.now()))
        audit(conn, name, "login", f"user:{name}", ip=ip)
        return User(int(row.id), row.username, row.role), ""


def audit(conn: Connection, actor: str, action: str, target: str = "",
          detail: dict[str, Any] | str | None = None, ip: str = "") -> None:
    """One audit_log row: who did what, to what, when (and from where)."""
    text = detail if isinstance(detail, str) or detail is None else json.dumps(detail, ensure_ascii=False,
                                                                               sort_keys=True)
    conn.execute(L.insert().values(at=db.now(), actor=actor[:64], action=action[:32],
                                   target=target[:191], detail=text, ip=ip[:64]))


def users(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(U.c.username, U.c.role, U.c.disabled, U.c.created_at,
                                  U.c.last_login_at).order_by(U.c.username))
    return [dict(r._mapping) for r in rows]
