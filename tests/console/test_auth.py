"""Accounts and security: argon2, add-user without a password argument, sessions, CSRF, roles."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from analysis.console import auth
from analysis.console.__main__ import parser
from analysis.console.app import create_app
from tests.conftest import ROOT
from tests.console.conftest import KEY, csrf, login, make_cfg
from tests.console.seed import PASSWORD
from weibo_mh import db
from weibo_mh.config import ConfigError, console_key_from, load_config


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    """The HTTP-level checks run on SQLite; tests/console/test_store.py covers MariaDB too."""
    return sqlite_url


def _audit(engine: sa.Engine) -> list[tuple[str, str, str]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.select(db.audit_log.c.actor, db.audit_log.c.action,
                                                         db.audit_log.c.target)
                                               .order_by(db.audit_log.c.id))]


def test_passwords_are_argon2_hashes(seeded: sa.Engine) -> None:
    with seeded.connect() as conn:
        h = conn.execute(sa.select(db.console_users.c.password_hash)
                         .where(db.console_users.c.username == "anna")).scalar()
    assert isinstance(h, str) and h.startswith("$argon2id$") and PASSWORD not in h
    with pytest.raises(auth.AuthError, match="exists already"):
        auth.add_user(seeded, "anna", "admin", PASSWORD)
    with pytest.raises(auth.AuthError, match="at least 10"):
        auth.add_user(seeded, "zed", "admin", "short")
    with pytest.raises(auth.AuthError, match="role"):
        auth.add_user(seeded, "zed", "root", PASSWORD)
    with pytest.raises(auth.AuthError, match="user name"):
        auth.add_user(seeded, "bad name", "admin", PASSWORD)


def test_add_user_command_asks_for_the_password(sqlite_url: str, tmp_path: Any) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'Weibo_Spider'}",
           "DATABASE_URL": sqlite_url}
    cmd = [sys.executable, "-m", "analysis.console", "add-user", "mei", "--role", "responder"]
    out = subprocess.run(cmd, input=f"{PASSWORD}\n{PASSWORD}\n", capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "created user mei (responder)" in out.stdout
    assert PASSWORD not in out.stdout + out.stderr
    with pytest.raises(SystemExit) as stop:  # there is no --password option
        parser().parse_args(["add-user", "mei", "--role", "admin", "--password", PASSWORD])
    assert stop.value.code == 2
    differ = subprocess.run([*cmd[:4], "mei2", "--role", "admin"], input=f"{PASSWORD}\nsomething else\n",
                            capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert differ.returncode == 2 and "differ" in differ.stderr
    eng = db.make_engine(sqlite_url)
    with eng.connect() as conn:
        names = set(conn.execute(sa.select(db.console_users.c.username)).scalars())
    eng.dispose()
    assert names == {"mei"}


def test_console_key_from_env_or_file(tmp_path: Any) -> None:
    cfg = load_config(None, env={})
    with pytest.raises(ConfigError, match="signing key"):
        console_key_from(cfg, env={})
    with pytest.raises(ConfigError, match="at least 32"):
        console_key_from(cfg, env={"WEIBO_MH_CONSOLE_KEY": "short"})
    f = tmp_path / "key"
    f.write_text("x" * 40 + "\n")
    assert console_key_from(cfg, env={"WEIBO_MH_CONSOLE_KEY_FILE": str(f)}) == "x" * 40
    assert cfg.console.host == "127.0.0.1"


def test_login_session_cookie_and_logout(app: Any, seeded: sa.Engine) -> None:
    c = app.test_client()
    r = c.get("/annotate")
    assert r.status_code == 302 and "/login" in r.headers["Location"]
    assert c.get("/healthz").get_json() == {"status": "ok"}
    r = login(c, "anna")
    assert r.status_code == 302
    cookie = [h for h in r.headers.getlist("Set-Cookie") if h.startswith("wmh_console=")][0]
    low = cookie.lower()
    assert "httponly" in low and "samesite=strict" in low and "expires=" in low
    page = c.get("/annotate")
    assert page.status_code == 200 and "research signals about text" in page.get_data(as_text=True)
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    r = c.post("/logout", data={"csrf_token": csrf(page.get_data(as_text=True))})
    assert r.status_code == 302
    assert c.get("/annotate").status_code == 302
    actions = [a for _, a, _ in _audit(seeded)]
    assert "login" in actions and "logout" in actions


def test_wrong_password_and_rate_limit(app: Any, seeded: sa.Engine) -> None:
    c = app.test_client()
    for _ in range(5):
        assert login(c, "anna", "wrong password!").status_code == 401
    r = login(c, "anna")  # the right password, but too soon after too many failures
    assert r.status_code == 429 and "too many failed logins" in r.get_data(as_text=True)
    assert int(r.headers["Retry-After"]) >= 1
    actions = [a for _, a, _ in _audit(seeded)]
    assert actions.count("login_failed") == 5 and "login_refused" in actions
    assert login(c, "bo").status_code == 302  # another user from the same address still may


def test_post_without_csrf_is_refused(client_for: Any, seeded: sa.Engine) -> None:
    c = client_for("anna")
    r = c.post("/annotate/undo", data={})
    assert r.status_code == 403 and "security token" in r.get_data(as_text=True)
    r = c.post("/annotate/undo", data={"csrf_token": "forged"})
    assert r.status_code == 403
    assert ("-", "csrf_refused") not in {(a, b) for a, b, _ in _audit(seeded)}
    assert ("anna", "csrf_refused", "/annotate/undo") in _audit(seeded)


def test_roles_see_only_their_pages(client_for: Any, seeded: sa.Engine) -> None:
    anna, rui, ada = client_for("anna"), client_for("rui"), client_for("ada")
    for path in ("/alerts", "/alerts/export.csv", "/agreement", "/admin", "/admin/audit"):
        assert anna.get(path).status_code == 403, path
    for path in ("/annotate", "/agreement", "/admin"):
        assert rui.get(path).status_code == 403, path
    assert rui.get("/alerts").status_code == 200
    for path in ("/annotate", "/alerts", "/agreement", "/admin", "/admin/audit"):
        assert ada.get(path).status_code == 200, path
    assert ("anna", "refused", "/alerts") in _audit(seeded)


def test_session_expires_and_disabled_user_is_out(seeded: sa.Engine) -> None:
    cfg = make_cfg(seeded.url.render_as_string(hide_password=False), session_minutes=1)
    app = create_app(cfg, seeded, KEY)
    c = app.test_client()
    assert login(c, "anna").status_code == 302
    assert c.get("/annotate").status_code == 200
    with seeded.begin() as conn:  # the session was opened two minutes ago
        conn.execute(db.console_sessions.update().values(
            created_at=db.console_sessions.c.created_at - timedelta(minutes=2)))
    assert c.get("/annotate").status_code == 302
    assert login(c, "anna").status_code == 302
    auth.set_disabled(seeded, "anna", True, actor="test")
    assert c.get("/annotate").status_code == 302
    assert login(c, "anna").status_code == 401


def test_cookie_signed_with_another_key_is_ignored(app: Any, seeded: sa.Engine) -> None:
    c = app.test_client()
    assert login(c, "ada").status_code == 302
    other = create_app(make_cfg(seeded.url.render_as_string(hide_password=False)), seeded, "z" * 40)
    c2 = other.test_client()
    for cookie in c._cookies.values():  # noqa: SLF001 - carry the cookie over to the other app
        c2.set_cookie(cookie.key, cookie.value)
    assert c2.get("/admin").status_code == 302
