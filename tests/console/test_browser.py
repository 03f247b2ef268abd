"""The console in a real browser: Playwright driving Debian's /usr/bin/chromium (never a download).

One server and one browser for the whole module, on SQLite and on MariaDB; each user has
their own browser context (cookie jar). The tests run in file order and build on each
other: anna labels, ada sees agreement change, rui triages.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher

from analysis.console import annotate, auth
from tests.console.live import Live
from tests.console.seed import MACHINE, PASSWORD, SCRIPT, seed
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _need_browser() -> Any:
    why = ""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        why = "the playwright package is not installed (pip install -r requirements-dev.txt)"
    if not why and not CHROMIUM.exists():
        why = f"{CHROMIUM} is missing: apt-get install chromium (what .ci/run does)"
    if why:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"browser tests cannot run: {why}")
        pytest.skip(f"browser tests skipped: {why}")
    return sync_playwright


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (both databases)."""
    sync_playwright = _need_browser()
    pw = sync_playwright().start()
    b = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS)
    try:
        yield b
    finally:
        b.close()
        pw.stop()


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
         browser: Any) -> Iterator[dict]:
    """A seeded database and the console on a free port."""
    cleanup = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('console') / 'browser.db'}"
    else:
        from tests.conftest import create_mysql_database, drop_mysql_database

        server = request.getfixturevalue("mysql_server")
        name, admin = create_mysql_database(server, "wmh_b")
        url = server.set(database=name).render_as_string(hide_password=False)
        cleanup = (admin, name)
    eng = db.make_engine(url)
    db.migrate(eng)
    real = auth._hasher  # cheap hashes for the test users (the real cost is ~100 ms a login)
    auth._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    try:
        seed(url).dispose()
    finally:
        auth._hasher = real
    with eng.begin() as conn:
        fill_alerts(conn, MACHINE, 7)
        annotate.fill(conn, "stratified", 8, actor="test", scorer=MACHINE, share=0.0, seed=3)
    server_ = Live(eng)  # waitress, as `python -m analysis.console` serves it
    pages: dict[str, Any] = {}
    try:
        yield {"base": server_.base, "engine": eng, "browser": browser, "pages": pages}
    finally:
        for p in pages.values():
            p.context.close()
        server_.stop()
        eng.dispose()
        if cleanup:
            drop_mysql_database(*cleanup)


def page_for(live: dict, name: str) -> Any:
    """A logged-in page for ``name`` (logs in through the form the first time)."""
    if name in live["pages"]:
        return live["pages"][name]
    page = live["browser"].new_context().new_page()
    page.set_default_timeout(15_000)
    page.goto(live["base"] + "/login")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    with page.expect_navigation():
        page.click("#login-button")
    assert "/login" not in page.url, page.content()
    live["pages"][name] = page
    return page


def test_logged_out_goes_to_the_login_page(live: dict) -> None:
    page = live["browser"].new_context().new_page()
    page.goto(live["base"] + "/alerts/1")
    assert "/login" in page.url and page.is_visible("#login-form")
    assert "research signals about text" in page.inner_text("#caution")
    page.context.close()


def test_wrong_password_stays_on_login(live: dict) -> None:
    page = live["browser"].new_context().new_page()
    page.goto(live["base"] + "/login")
    page.fill("#username", "bo")
    page.fill("#password", "not the password")
    with page.expect_navigation():
        page.click("#login-button")
    assert "wrong user name or password" in page.inner_text("#login-error")
    page.context.close()


def test_label_five_by_keyboard_and_agreement_changes(live: dict) -> None:
    ada = page_for(live, "ada")
    ada.goto(live["base"] + "/agreement")
    assert ada.is_visible("#no-agreement")
    anna = page_for(live, "anna")
    anna.goto(live["base"] + "/annotate")
    keys = [("3", "5", "0", "t"), ("1", "2", "0", "9"), ("4", "4", "1", "6"), ("6", "u", "7", "3", "0", "2"),
            ("0", "0", "0", "0")]
    seen = []
    for seq in keys:
        seen.append(anna.inner_text("#comment-text"))
        for k in seq[:-1]:
            anna.keyboard.press(k)
        with anna.expect_navigation():
            anna.keyboard.press(seq[-1])
    # the last one again: u on a fresh page undoes the saved label, then relabel it
    with anna.expect_navigation():
        anna.keyboard.press("u")
    assert anna.inner_text("#comment-text") == seen[-1]
    for k in ("1", "1", "1"):
        anna.keyboard.press(k)
    with anna.expect_navigation():
        anna.keyboard.press("1")
    skipped = anna.inner_text("#comment-text")
    with anna.expect_navigation():
        anna.keyboard.press("s")  # skip: the next comment comes, nothing is stored
    assert anna.inner_text("#comment-text") != skipped
    with live["engine"].connect() as conn:
        rows = conn.execute(sa.select(db.scores.c.comment_id, db.scores.c.dimension, db.scores.c.value)
                            .where(db.scores.c.scorer == "human:anna")).all()
    got: dict[str, dict[str, int]] = {}
    for cid, dim, v in rows:
        got.setdefault(cid, {})[dim] = v
    assert len(got) == 5
    values = sorted(tuple(d[k] for k in ("positivity", "mood_disorder", "substance_use", "suicide_risk"))
                    for d in got.values())
    assert values == sorted([(3, 5, 0, 10), (1, 2, 0, 9), (4, 4, 1, 6), (7, 3, 0, 2), (1, 1, 1, 1)])
    ada.reload()
    assert not ada.is_visible("#no-agreement")
    pairs = ada.inner_text("#pairs")
    assert "human:anna" in pairs and MACHINE in pairs


def test_annotator_is_refused_the_alert_pages(live: dict) -> None:
    anna = page_for(live, "anna")
    for path in ("/alerts", "/alerts/1", "/alerts/export.csv"):
        resp = anna.goto(live["base"] + path)
        assert resp is not None and resp.status == 403, path
        assert "may not open this page" in anna.content()


def test_script_comment_renders_as_text(live: dict) -> None:
    rui = page_for(live, "rui")
    with live["engine"].connect() as conn:
        aid = conn.execute(sa.select(db.alerts.c.id).where(db.alerts.c.comment_id == "c22")).scalar()
    rui.goto(f"{live['base']}/alerts/{aid}")
    assert rui.inner_text("#comment-text") == SCRIPT
    assert rui.evaluate("document.querySelectorAll('#comment-text script').length") == 0
    assert "pwned" not in rui.title()
    rui.goto(live["base"] + "/alerts?sort=recent")
    assert "<script>" in rui.inner_text("#alert-table")


def test_acknowledge_then_escalate_an_alert(live: dict) -> None:
    rui = page_for(live, "rui")
    rui.goto(live["base"] + "/alerts?sort=repeat")
    first = rui.locator("#alert-table tbody tr").first
    assert "3 alerts in 7 days" in first.inner_text()
    with rui.expect_navigation():
        first.locator("a", has_text="open").click()
    assert "weibo.cn/comment/P1#C_c10" in (rui.get_attribute("#weibo-link", "href") or "")
    assert "测试热线" in rui.inner_text("#caution")
    with rui.expect_navigation():
        rui.click("#btn-acknowledge")
    assert rui.inner_text("#alert-state") == "acknowledged"
    assert rui.inner_text("#assignee") == "rui"
    rui.fill("#note", "handed to the on-call volunteer")
    with rui.expect_navigation():
        rui.click("#btn-escalate")
    assert rui.inner_text("#alert-state") == "escalated"
    assert "handed to the on-call volunteer" in rui.inner_text("#notes")
    with live["engine"].connect() as conn:
        state = conn.execute(sa.select(db.alerts.c.state, db.alerts.c.closed_by)
                             .where(db.alerts.c.comment_id == "c10")).one()
    assert tuple(state) == ("escalated", "rui")


def test_post_without_csrf_is_refused(live: dict) -> None:
    rui = page_for(live, "rui")
    with live["engine"].connect() as conn:
        aid = conn.execute(sa.select(db.alerts.c.id).where(db.alerts.c.comment_id == "c22")).scalar()
    resp = rui.request.post(f"{live['base']}/alerts/{aid}/act", form={"action": "acknowledge"})
    assert resp.status == 403 and "security token" in resp.text()
    with live["engine"].connect() as conn:
        assert conn.execute(sa.select(db.alerts.c.state).where(db.alerts.c.id == aid)).scalar() == "new"


def test_logout_then_login_page(live: dict) -> None:
    rui = page_for(live, "rui")
    rui.goto(live["base"] + "/alerts")
    with rui.expect_navigation():
        rui.click("#logout")
    assert "/login" in rui.url
    rui.goto(live["base"] + "/alerts")
    assert "/login" in rui.url
    del live["pages"]["rui"]


def test_an_admin_ends_a_session_and_that_browser_is_out(live: dict) -> None:
    bo = page_for(live, "bo")
    bo.goto(live["base"] + "/annotate")
    assert "/annotate" in bo.url
    ada = page_for(live, "ada")
    ada.goto(live["base"] + "/admin")
    assert "bo" in ada.inner_text("#sessions")
    with ada.expect_navigation():
        ada.click("#logout-bo")
    assert "bo: 1 session ended." in ada.content()
    assert "bo" not in [c.strip() for c in ada.locator("#sessions td:nth-child(2)").all_inner_texts()]
    bo.goto(live["base"] + "/annotate")
    assert "/login" in bo.url and "Your session has ended" in bo.content()
    del live["pages"]["bo"]


def test_every_action_is_in_the_audit_log(live: dict) -> None:
    L = db.audit_log
    with live["engine"].connect() as conn:
        rows = {(r.actor, r.action) for r in conn.execute(sa.select(L.c.actor, L.c.action))}
        labels = conn.execute(sa.select(sa.func.count()).select_from(L)
                              .where(L.c.actor == "anna", L.c.action == "label")).scalar()
    want = {("anna", "login"), ("ada", "login"), ("rui", "login"), ("-", "login_failed"), ("anna", "undo"),
            ("anna", "skip"),
            ("anna", "refused"), ("rui", "alert_acknowledge"), ("rui", "alert_escalate"),
            ("rui", "csrf_refused"), ("rui", "logout"), ("ada", "end_sessions")}
    assert want <= rows, want - rows
    assert labels == 6  # five comments, one of them labelled again after the undo
