"""Console writes at the same time, with real threads against a real waitress server, on SQLite and
MariaDB: parallel logins, parallel labels on different tasks, parallel decisions on one alert,
and a flood of refused requests during a responder's saves. No 500, nothing lost, every attempt
in audit_log. (The probe found 500 "database is locked" in each of these on SQLite.)
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import sqlalchemy as sa

from analysis.console import annotate, auth
from tests.console.live import Client, Live
from tests.console.seed import MACHINE, PASSWORD
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts

pytestmark = pytest.mark.slow

ANNOTATORS = ("anna", "bo", "cai", "dan")
DIMS = ("positivity", "mood_disorder", "substance_use", "suicide_risk")


def _together(n: int, fn: Callable[[int], Any]) -> list[Any]:
    """Run fn(0..n-1) in n threads released at the same moment."""
    start = threading.Barrier(n)

    def go(i: int) -> Any:
        start.wait(10)
        return fn(i)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, range(n)))


@pytest.fixture
def live(serve: Any, seeded: sa.Engine) -> Live:
    for name in ANNOTATORS[2:]:
        auth.add_user(seeded, name, "annotator", PASSWORD, actor="test")
    auth.add_user(seeded, "eve", "responder", PASSWORD, actor="test")
    with seeded.begin() as conn:
        fill_alerts(conn, MACHINE, 7)
        annotate.fill(conn, "random", 16, actor="test", share=0, seed=1)
    # a long login delay, so that every try past the fifth for one pair is refused, whatever the timing
    return serve(threads=8, login_delay_seconds=60.0)


def test_parallel_logins_labels_and_wrong_passwords(live: Live) -> None:
    names = (*ANNOTATORS, "rui", "ada")
    clients = [live.client() for _ in names]
    tokens = [c.csrf() for c in clients]
    codes = _together(len(names), lambda i: clients[i].post(
        "/login", {"username": names[i], "password": PASSWORD, "csrf_token": tokens[i]}).status_code)
    assert codes == [302] * len(names)
    assert Counter(r.actor for r in live.audit(action="login")) == Counter(names)

    # four annotators, each saving three labels, all at once
    def label_three(i: int) -> list[int]:
        c, out = clients[i], []
        for k in range(3):
            page = c.get("/annotate")
            task = page.text.split('name="task" value="')[1].split('"')[0]
            form = c.form("/annotate")
            out.append(c.post("/annotate/label", {**form, "task": task, **dict.fromkeys(DIMS, str(k))}).status_code)
        return out

    assert _together(4, label_three) == [[302] * 3] * 4
    with live.engine.connect() as conn:
        humans = Counter(conn.execute(sa.select(db.scores.c.scorer).where(db.scores.c.scorer.like("human:%")))
                         .scalars())
        done = conn.execute(sa.select(sa.func.count()).select_from(db.annotation_tasks)
                            .where(db.annotation_tasks.c.state == "done")).scalar()
    assert humans == {f"human:{n}": 12 for n in ANNOTATORS} and done == 12
    assert Counter(r.actor for r in live.audit(action="label")) == dict.fromkeys(ANNOTATORS, 3)

    # forty wrong passwords for one name from one address at once: five are checked, the rest wait
    c = live.client()
    token = c.csrf()
    codes = _together(40, lambda i: c.post("/login", {"username": "rui", "password": f"wrong {i}!!",
                                                      "csrf_token": token}).status_code)
    assert Counter(codes) == {401: 5, 429: 35}
    assert len(live.audit(action="login_failed")) == 5 and live.hits("login_refused") == 35
    with live.engine.connect() as conn:
        assert conn.execute(sa.select(db.login_attempts.c.failures)
                            .where(db.login_attempts.c.username == "rui")).scalar() == 5
    assert clients[names.index("rui")].get("/alerts").status_code == 200  # her session is untouched


def test_parallel_decisions_and_a_flood_during_saves(live: Live) -> None:
    with live.engine.connect() as conn:
        ids = list(conn.execute(sa.select(db.alerts.c.id).order_by(db.alerts.c.id).limit(2)).scalars())
    one, two = ids
    reviewers = [live.client(n) for n in ("rui", "ada", "eve", "rui", "ada", "eve")]
    forms = [r.form(f"/alerts/{one}") for r in reviewers]  # everyone sees the alert as new
    codes = _together(len(reviewers), lambda i: reviewers[i].post(
        f"/alerts/{one}/act", {**forms[i], "action": "acknowledge", "note": f"reviewer {i}"}).status_code)
    assert codes == [302] * len(reviewers)
    said = [r.get(f"/alerts/{one}").text for r in reviewers]
    won = [i for i, page in enumerate(said) if "acknowledge done" in page]
    lost = [i for i, page in enumerate(said) if "changed" in page and "nothing was saved" in page
            or "the alert changed meanwhile" in page]
    assert len(won) == 1 and sorted(won + lost) == list(range(len(reviewers)))
    with live.engine.connect() as conn:
        a = conn.execute(sa.select(db.alerts).where(db.alerts.c.id == one)).one()
    assert a.state == "acknowledged" and a.notes.endswith(f"reviewer {won[0]}")
    assert len(live.audit(target=f"alert:{one}")) == 1

    # three threads send anonymous POSTs without a token while a responder saves twenty notes
    rui = live.client("rui")
    stop = threading.Event()

    def flood(_: int) -> Counter[int]:
        anon, got = Client(live.base, {}), Counter[int]()
        while not stop.is_set() and sum(got.values()) < 150:
            got[anon.post(f"/alerts/{two}/act", {"action": "note", "note": "spam"}).status_code] += 1
        return got

    def save_notes() -> list[int]:
        out = []
        for k in range(20):
            form = rui.form(f"/alerts/{two}")
            out.append(rui.post(f"/alerts/{two}/act", {**form, "action": "note", "note": f"note {k}"}).status_code)
            assert "note done" in rui.get(f"/alerts/{two}").text, k
        stop.set()
        return out

    with ThreadPoolExecutor(4) as pool:
        floods = [pool.submit(flood, i) for i in range(3)]
        saved = pool.submit(save_notes)
        assert saved.result() == [302] * 20
        sent = sum((f.result() for f in floods), Counter[int]())
    assert set(sent) == {403}
    with live.engine.connect() as conn:
        notes = conn.execute(sa.select(db.alerts.c.notes).where(db.alerts.c.id == two)).scalar()
    assert [line.rsplit("] ", 1)[1] for line in notes.splitlines()] == [f"note {k}" for k in range(20)]
    assert len(live.audit(target=f"alert:{two}", action="alert_note")) == 20
    assert live.hits("csrf_refused") == sent[403]
