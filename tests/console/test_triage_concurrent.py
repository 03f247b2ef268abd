"""Two reviewers on one alert through the real app (SQLite and MariaDB): a decision sent from a
page opened before the other reviewer's note is refused, and the other reviewer's note stays."""

from __future__ import annotations

import html
import re
from typing import Any

import sqlalchemy as sa

from tests.console.conftest import csrf
from tests.console.seed import MACHINE
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts

REFUSED = "someone else changed this alert after you opened it"


def _form(page: str) -> dict[str, str]:
    m = re.search(r'name="seen" value="([0-9a-f]+)"', page)
    assert m, "no seen token on the alert page"
    return {"csrf_token": csrf(page), "seen": m.group(1)}


def _alert(engine: sa.Engine, aid: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(db.alerts).where(db.alerts.c.id == aid)).one()


def _audit(engine: sa.Engine, aid: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        q = (sa.select(db.audit_log.c.actor, db.audit_log.c.action)
             .where(db.audit_log.c.target == f"alert:{aid}").order_by(db.audit_log.c.id))
        return [tuple(r) for r in conn.execute(q)]


def test_a_stale_form_cannot_overwrite_another_reviewers_note(client_for: Any, seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        assert fill_alerts(conn, MACHINE, 9) > 0
        aid = conn.execute(sa.select(sa.func.min(db.alerts.c.id))).scalar_one()
    rui, ada = client_for("rui"), client_for("ada")
    rui_form = _form(rui.get(f"/alerts/{aid}").get_data(as_text=True))
    ada_form = _form(ada.get(f"/alerts/{aid}").get_data(as_text=True))  # both see the new alert

    r = rui.post(f"/alerts/{aid}/act", follow_redirects=True,
                 data={**rui_form, "action": "acknowledge", "note": "rui: 已电话联系", "assignee": ""})
    assert "acknowledge done; it is now acknowledged" in html.unescape(r.get_data(as_text=True))
    first = _alert(seeded, aid)
    assert first.assignee == "rui" and "rui: 已电话联系" in first.notes

    # ada's page still shows the alert as new, unassigned, without rui's note
    for action, extra in (("assign", {"assignee": "ada"}), ("note", {})):
        r = ada.post(f"/alerts/{aid}/act", follow_redirects=True,
                     data={**ada_form, "action": action, "note": "ada: 我来跟进", **extra})
        page = html.unescape(r.get_data(as_text=True))
        assert f"Alert {aid}: {REFUSED}" in page and "nothing was saved" in page
        assert "rui: 已电话联系" in page  # the reloaded page shows what she missed
        after = _alert(seeded, aid)
        assert (after.notes, after.assignee, after.state) == (first.notes, "rui", "acknowledged")
    assert _audit(seeded, aid) == [("rui", "alert_acknowledge")]

    # with the page read again her note is added after rui's, which stays
    ada_form = _form(ada.get(f"/alerts/{aid}").get_data(as_text=True))
    r = ada.post(f"/alerts/{aid}/act", follow_redirects=True,
                 data={**ada_form, "action": "note", "note": "ada: 我来跟进"})
    assert "note done" in r.get_data(as_text=True)
    notes = _alert(seeded, aid).notes
    assert notes.startswith(first.notes + "\n") and notes.endswith("ada, note] ada: 我来跟进")
    assert _audit(seeded, aid) == [("rui", "alert_acknowledge"), ("ada", "alert_note")]
