"""The security probe's findings, each against a real waitress server, on SQLite and MariaDB.

Revocable sessions, the per-(name, address) login delay, the counted audit rows and the
audit pages, input bounds, decisions without their seen token, HEAD and OPTIONS, the
/static redirect and waitress's connection limits. (Writes under concurrency:
test_concurrency_live.py.)
"""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest
import sqlalchemy as sa

from analysis.console import annotate, auth
from analysis.console.__main__ import serve_options
from analysis.console.app import forwarded_for, proxy_networks
from tests.console.live import Live
from tests.console.seed import MACHINE, PASSWORD
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.config import ConfigError, load_config

BIG = str(2**63)  # one past the largest 64-bit id


def _alert(live: Live) -> int:
    with live.engine.begin() as conn:
        fill_alerts(conn, MACHINE, 9)
        return int(conn.execute(sa.select(sa.func.min(db.alerts.c.id))).scalar_one())


# ------------------------------------------------------------------ 2. revocable sessions


def test_a_saved_cookie_dies_with_logout_password_role_and_disable(serve: Any) -> None:
    live = serve()
    anna = live.client("anna")
    saved = anna.stolen()
    form = anna.form("/annotate")
    assert saved.stolen().get("/annotate").status_code == 200
    assert anna.post("/logout", form).status_code == 302
    r = saved.stolen().get("/annotate")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = saved.stolen().post("/annotate/undo", form)  # its CSRF token matched the ended session only
    assert r.status_code == 403
    assert not live.audit(actor="anna", action="undo")

    for change in ("password", "role", "disable"):
        anna = live.client("anna")
        thief = anna.stolen()
        assert thief.get("/annotate").status_code == 200
        if change == "disable":
            auth.set_disabled(live.engine, "anna", True, actor="test")
            auth.set_disabled(live.engine, "anna", False, actor="test")
        else:
            auth.add_user(live.engine, "anna", "annotator" if change == "password" else "admin",
                          "a brand new password", actor="test", replace=True)
            auth.add_user(live.engine, "anna", "annotator", PASSWORD, actor="test", replace=True)
        for c in (anna, thief):
            assert c.get("/annotate").status_code == 302, change
    ended = [r.detail for r in live.audit(action="update_user")]
    assert '"sessions_ended": 1' in ended[0] and '"sessions_ended": 0' in ended[1]


def test_the_admin_lists_and_ends_sessions(serve: Any) -> None:
    live = serve()
    ada = live.client("ada")
    bo1, bo2 = live.client("bo"), live.client("bo", **{"User-Agent": "second-browser/1"})
    with live.engine.connect() as conn:
        ids = list(conn.execute(sa.select(db.console_sessions.c.id).where(
            db.console_sessions.c.user_id == sa.select(db.console_users.c.id)
            .where(db.console_users.c.username == "bo").scalar_subquery())
            .order_by(db.console_sessions.c.id)).scalars())
    page = ada.get("/admin").text
    assert all(f'id="end-session-{i}"' in page for i in ids) and "second-browser/1" in page
    r = ada.post(f"/admin/sessions/{ids[0]}/end", ada.form("/admin"))
    assert r.status_code == 302
    assert bo1.get("/annotate").status_code == 302 and bo2.get("/annotate").status_code == 200
    assert f'id="end-session-{ids[0]}"' not in ada.get("/admin").text
    r = ada.post("/admin/users/bo/logout", ada.form("/admin"))
    assert r.status_code == 302 and bo2.get("/annotate").status_code == 302
    assert [r.target for r in live.audit(action="end_sessions")] == ["user:bo", "user:bo"]
    assert ada.post(f"/admin/sessions/{BIG}/end", ada.form("/admin")).status_code == 404


# ------------------------------------------------------------------ 3. the login limit


def test_login_delay_per_name_and_address_and_trusted_proxies(serve: Any) -> None:
    live = serve(trusted_proxies=["127.0.0.1"])
    # five wrong passwords for anna from five addresses: a sixth address logs in at once
    for i in range(5):
        c = live.client(**{"X-Forwarded-For": f"198.51.100.{i}"})
        assert c.login("anna", "wrong password!").status_code == 401
    assert live.client(**{"X-Forwarded-For": "198.51.100.9"}).login("anna").status_code == 302
    # twenty made-up names from one address: real users from there are not slowed
    c = live.client(**{"X-Forwarded-For": "203.0.113.7"})
    for i in range(20):
        assert c.login(f"ghost{i}", "wrong password!").status_code == 401
    assert c.login("bo").status_code == 302
    fails = live.audit(action="login_failed")
    assert {r.ip for r in fails} == {f"198.51.100.{i}" for i in range(5)} | {"203.0.113.7"}
    # the X-Forwarded-For a client writes itself, left of what our proxy appended, is not believed
    c = live.client(**{"X-Forwarded-For": "192.0.2.66, 203.0.113.8"})
    assert c.login("rui", "wrong password!").status_code == 401
    assert live.audit(action="login_failed")[-1].ip == "203.0.113.8"
    # without trusted proxies (the default) the header is not believed at all
    plain = serve()
    assert plain.client(**{"X-Forwarded-For": "198.51.100.1"}).login("anna", "nope nope nope").status_code == 401
    assert plain.audit(action="login_failed")[-1].ip == "127.0.0.1"


@pytest.mark.slow
def test_the_delay_doubles_and_the_right_password_then_works(serve: Any) -> None:
    live = serve(login_max_failures=3, login_delay_seconds=1.0)
    c = live.client()
    for _ in range(3):
        assert c.login("bo", "wrong password!").status_code == 401
    r = c.login("bo")
    assert r.status_code == 429 and r.headers["Retry-After"] == "1" and "try again in 1 second" in r.text and "1 seconds" not in r.text
    time.sleep(1.05)
    assert c.login("bo", "wrong password!").status_code == 401  # the fourth failure: now 2 s
    r = c.login("bo")
    assert r.status_code == 429 and r.headers["Retry-After"] == "2"
    assert live.client().login("anna").status_code == 302  # another name from the same address
    time.sleep(2.05)
    assert c.login("bo").status_code == 302
    with live.engine.connect() as conn:  # a success clears the pair
        assert conn.execute(sa.select(sa.func.count()).select_from(db.login_attempts)
                            .where(db.login_attempts.c.username == "bo")).scalar() == 0
    assert live.hits("login_refused") == 2 and len(live.audit(action="login_failed")) == 4


def test_forwarded_for_and_bad_proxy_config() -> None:
    nets = proxy_networks(["127.0.0.1", "10.0.0.0/8"])
    assert forwarded_for("127.0.0.1", "198.51.100.4, 10.1.2.3", nets) == "198.51.100.4"
    assert forwarded_for("127.0.0.1", "", nets) == "127.0.0.1"
    assert forwarded_for("127.0.0.1", "garbage, 10.1.2.3", nets) == "10.1.2.3"
    assert forwarded_for("192.0.2.1", "198.51.100.4", nets) == "192.0.2.1"  # not a proxy of ours
    assert forwarded_for("127.0.0.1", "198.51.100.4", ()) == "127.0.0.1"
    with pytest.raises(ConfigError, match="trusted_proxies"):
        proxy_networks(["not-an-address"])


# ------------------------------------------------------------------ 4. a bounded audit log


def test_anonymous_refusals_are_counted_and_the_audit_pages_filter(serve: Any) -> None:
    live = serve()
    anon = live.client()
    for i in range(150):
        assert anon.post(f"/alerts/1/act?x={i}", {"action": "note"}).status_code == 403
    rows = live.audit(action="csrf_refused")
    assert len(rows) <= 2 and sum(r.hits for r in rows) == 150  # one row a minute (two across a boundary)
    ada, anna = live.client("ada"), live.client("anna")
    for _ in range(105):
        assert anna.get("/alerts").status_code == 403
    page = ada.get("/admin/audit?action=csrf_refused").text
    assert "csrf_refused" in page and ">150<" in page or len(rows) == 2
    first = ada.get("/admin/audit?actor=anna&action=refused")
    assert first.text.count("<td>refused</td>") == 100 and 'id="audit-older"' in first.text
    older = first.text.split('id="audit-older"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = ada.get(older)
    assert second.text.count("<td>refused</td>") == 5 and 'id="audit-older"' not in second.text
    assert "<td>ada</td><td>login</td>" in ada.get("/admin/audit?action=login").text
    assert ada.get("/admin/audit?before=" + BIG).status_code == 400


# ------------------------------------------------------------------ 5. input bounds


def test_out_of_range_and_malformed_input_is_400_or_404(serve: Any) -> None:
    live = serve()
    aid = _alert(live)
    rui, anna = live.client("rui"), live.client("anna")
    assert rui.get(f"/alerts/{BIG}").status_code == 404
    assert rui.get("/alerts/99999999999999999999999").status_code == 404
    assert rui.get("/alerts/0").status_code == 404
    for page in (BIG, "99999999999999999999", "-1", "１", "1_0", "+3", "0"):
        assert rui.get(f"/alerts?page={page}").status_code == 400, page
    assert rui.get("/alerts?page=2").status_code == 200
    with live.engine.begin() as conn:
        annotate.fill(conn, "ids", 2, actor="test", ids=["c01", "c02"], share=0)
    form = anna.form("/annotate")
    task = anna.get("/annotate").text.split('name="task" value="')[1].split('"')[0]
    dims = ("positivity", "mood_disorder", "substance_use", "suicide_risk")
    for bad in ("１", "٣", "1_0", "+3", "11", " 3", "T", "-0"):
        r = anna.post("/annotate/label", {**form, "task": task, **dict.fromkeys(dims, "3"), "suicide_risk": bad})
        assert r.status_code == 400, bad
    r = anna.post("/annotate/label", {**form, "task": BIG, **dict.fromkeys(dims, "3")})
    assert r.status_code == 400
    assert anna.post("/annotate/skip", {**form, "task": BIG}).status_code == 400
    assert not live.audit(action="label")
    r = anna.post("/annotate/label", {**form, "task": task, **dict.fromkeys(dims, "3"), "suicide_risk": "t"})
    assert r.status_code == 302
    assert '"suicide_risk": 10' in live.audit(action="label")[0].detail
    # next: a path on this console, without control characters
    for nxt, where in (("/alerts%0d%0aSet-Cookie:%20x=1", "/"), ("//evil.example/", "/"),
                       ("/alerts?sort=recent", "/alerts?sort=recent"), ("/alerts%00", "/")):
        c = live.client()
        r = c.post(f"/login?next={nxt}", {"username": "rui", "password": PASSWORD, "csrf_token": c.csrf()})
        assert r.status_code == 302 and r.headers["Location"] == where, nxt
    # the assignee is one of the active responders and admins
    form = rui.form(f"/alerts/{aid}")
    assert '<option>ada</option>' in rui.get(f"/alerts/{aid}").text
    for who in ("anna", "nobody-here", "\x00rui"):
        r = rui.post(f"/alerts/{aid}/act", {**form, "action": "acknowledge", "assignee": who})
        assert r.status_code == 302
        assert "not an active responder or admin" in rui.get(f"/alerts/{aid}").text
    r = rui.post(f"/alerts/{aid}/act", {**form, "action": "acknowledge", "assignee": "ada"})
    with live.engine.connect() as conn:
        assert conn.execute(sa.select(db.alerts.c.assignee).where(db.alerts.c.id == aid)).scalar() == "ada"


# ------------------------------------------------------------------ 7. stale-form protection


def test_a_decision_without_seen_is_refused(serve: Any) -> None:
    live = serve()
    aid = _alert(live)
    rui = live.client("rui")
    form = rui.form(f"/alerts/{aid}")
    for seen in (None, "", "zz", form["seen"] + "0"):
        data = {"csrf_token": form["csrf_token"], "action": "acknowledge", "note": "from a script"}
        if seen is not None:
            data["seen"] = seen
        assert rui.post(f"/alerts/{aid}/act", data).status_code == 400, seen
    with live.engine.connect() as conn:
        assert conn.execute(sa.select(db.alerts.c.state, db.alerts.c.notes)
                            .where(db.alerts.c.id == aid)).one() == ("new", None)
    assert not live.audit(target=f"alert:{aid}")


# ------------------------------------------------------------------ 8. HEAD, OPTIONS, /static


def test_head_and_options_follow_get_and_static_stays_relative(serve: Any) -> None:
    live = serve()
    anna, rui = live.client("anna"), live.client("rui")
    r = anna.request("OPTIONS", "/alerts")
    assert r.status_code == 403
    r = anna.request("HEAD", "/alerts/export.csv")
    assert r.status_code == 403
    assert [(r.target, r.detail) for r in live.audit(actor="anna", action="refused")] == [
        ("/alerts", '{"method": "OPTIONS", "role": "annotator"}'),
        ("/alerts/export.csv", '{"method": "HEAD", "role": "annotator"}')]
    r = live.client().request("OPTIONS", "/admin")
    assert r.status_code == 302 and r.headers["Location"].startswith("/login")
    r = rui.request("HEAD", "/alerts/export.csv")
    assert r.status_code == 200 and "attachment" in r.headers["Content-Disposition"]
    assert not live.audit(action="export_alerts")
    assert rui.get("/alerts/export.csv").status_code == 200
    assert len(live.audit(action="export_alerts")) == 1
    assert rui.request("OPTIONS", "/alerts").status_code == 200
    # /static: never a redirect built from the Host header
    c = live.client(Host="evil.example")
    for path in ("/static//console.css", "/static//evil.example/x", "//static/console.css"):
        r = c.get(path)
        assert "evil.example" not in r.headers.get("Location", ""), path
        assert not r.headers.get("Location", "/").startswith("//"), path
    assert c.get("/static/console.css").status_code == 200


# ------------------------------------------------------------------ 6. server limits


def test_serve_options_come_from_the_config(tmp_path: Any) -> None:
    opts = serve_options(load_config(None, env={}))
    assert (opts["connection_limit"], opts["channel_timeout"], opts["cleanup_interval"]) == (200, 30, 10)
    f = tmp_path / "c.toml"
    f.write_text("[console]\nconnection_limit = 50\nchannel_timeout = 5\ntrusted_proxies = [\"10.0.0.0/8\"]\n")
    opts = serve_options(load_config(f, env={}), 4)
    assert (opts["threads"], opts["connection_limit"], opts["channel_timeout"]) == (4, 50, 5)
    f.write_text("[console]\nchannel_timeout = 0\n")
    with pytest.raises(ConfigError, match="channel_timeout"):
        load_config(f, env={})


@pytest.mark.slow
def test_idle_connections_cannot_starve_the_console(serve: Any) -> None:
    live = serve(connection_limit=10, channel_timeout=2, cleanup_interval=1)
    idle = []
    try:
        for _ in range(15):  # more than the limit, each sending half a request, then nothing
            s = socket.create_connection(("127.0.0.1", int(live.base.rsplit(":", 1)[1])), timeout=5)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            idle.append(s)
        r = live.client().get("/healthz")  # waits for the idle ones to time out, then is served
        assert r.status_code == 200 and r.json() == {"status": "ok"}
    finally:
        for s in idle:
            s.close()


# ------------------------------------------------------------------ 1. the write helper


def test_a_deadlock_is_retried_and_other_errors_are_not(sqlite_url: str) -> None:
    """InnoDB's deadlock victim (1213) runs again; "no such table" does not."""
    import pymysql

    from analysis.console.writes import write

    engine = db.make_engine(sqlite_url)
    calls: list[int] = []

    def deadlocked_once(conn: sa.Connection) -> str:
        calls.append(1)
        if len(calls) == 1:
            raise sa.exc.OperationalError("UPDATE …", {}, pymysql.err.OperationalError(1213, "Deadlock found"))
        return str(conn.execute(sa.text("PRAGMA busy_timeout")).scalar())

    assert write(engine, deadlocked_once) == "30000" and len(calls) == 2  # the busy timeout holds
    with pytest.raises(sa.exc.OperationalError, match="no such table"):
        write(engine, lambda conn: conn.execute(sa.text("SELECT * FROM nowhere")))
    engine.dispose()
