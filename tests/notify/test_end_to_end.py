"""Watch, score, notify: a watched tree-hole post on the local site gains a high-risk comment
while the scheduler and the worker run as child processes; the comment reaches the SMTP inbox
(STARTTLS, login) and the signed webhook, once each, with no text and no author hash."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from weibo.localsite import TREE_HOLE_MID, LocalSite, watch_corpus

from tests.notify.pipeline import HIGH_RISK, LABEL, Pipeline
from tests.notify.receivers import SmtpInbox, WebhookReceiver
from weibo_mh import db

pytestmark = pytest.mark.slow


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite(watch_corpus()) as s:
        yield s


def wait_for(what: str, check, timeout: float, pipe: Pipeline) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        assert pipe.alive(), f"a child died:\n{pipe.log('scheduler')[-3000:]}\n{pipe.log('worker')[-3000:]}"
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}:\n{pipe.log('scheduler')[-3000:]}\n"
                         f"{pipe.log('worker')[-3000:]}")


def test_a_new_high_risk_comment_on_a_watched_post_reaches_inbox_and_webhook(
        sqlite_url: str, tmp_path: Path, site: LocalSite, inbox: SmtpInbox, hook: WebhookReceiver,
        cert: tuple[Path, Path]) -> None:
    pipe = Pipeline(tmp_path, sqlite_url, site, inbox, hook, cert[0], fast=True)
    engine = db.make_engine(sqlite_url)

    def watch_rounds() -> int:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(db.crawl_runs)
                                .where(db.crawl_runs.c.kind == "watch", db.crawl_runs.c.status == "ok")
                                ).scalar() or 0

    pipe.start()
    try:
        wait_for("the first watch round", lambda: watch_rounds() >= 1, 90, pipe)
        assert hook.accepted == [] and inbox.messages == []  # the post's old comments are calm
        posted = site.add_comment(TREE_HOLE_MID, HIGH_RISK, uid="7100999")
        wait_for("the notification", lambda: hook.accepted and inbox.messages, 150, pipe)
        time.sleep(3)  # anything sent twice would arrive now
    finally:
        pipe.stop()
    [payload] = hook.accepted
    [alert] = payload["alerts"]
    assert (alert["level"], alert["source"], alert["label"]) == (10, "watch", LABEL)
    assert alert["link"] == f"http://127.0.0.1:8080/alerts/{alert['alert_id']}"
    assert alert["comment_time"].startswith(posted["created"][:16])
    assert alert["text"] is None
    [body] = inbox.bodies()
    assert LABEL in body and "level 10/10" in body and "今晚就从楼顶" not in body
    assert inbox.tls_seen == [True]
    with engine.connect() as conn:
        author = conn.execute(sa.select(db.comments.c.author_hash)
                              .where(db.comments.c.id == posted["id"])).scalar()
        sent = conn.execute(sa.select(db.notifications.c.channel, db.notifications.c.state)).all()
    assert author and author not in body and author not in str(payload)
    assert sorted(sent) == [("email", "sent"), ("webhook", "sent")]
    # the console's watch view reads what the watch rounds stored
    from analysis.console.watch import recent_alerts, watched

    with engine.connect() as conn:
        [post] = watched(conn)
        [recent] = recent_alerts(conn, [post["mid"]])
    assert (post["label"], post["alerts"], post["open"]) == (LABEL, 1, 1)
    assert post["last_crawled_at"] is not None and post["newest_comment_id"] == posted["id"]
    assert {n["channel"]: n["state"] for n in recent["notifications"]} == {"email": "sent", "webhook": "sent"}
    engine.dispose()
