"""The watch view: per watched post its last crawl, newest comment and alert counts; per alert
whether and when each channel notified it (on /watch and on the alert's own page)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from tests.console.seed import MACHINE
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.notify import outbox
from weibo_mh.notify.outbox import Policy

CRAWLED = datetime(2026, 11, 6, 9, 30)


def watch_and_notify(engine: sa.Engine) -> list[int]:
    """P1 becomes a watched post; its alerts are queued for webhook and email; the first alert's
    webhook notification is sent, its email one failed once."""
    with engine.begin() as conn:
        conn.execute(db.watched_posts.insert().values(
            mid="P1", bid="Ptest1", label="测试树洞", origin="post", added_at=CRAWLED,
            newest_comment_id="c21", newest_comment_at=datetime(2026, 11, 6, 6, 0),
            last_crawled_at=CRAWLED, last_run_id=None))
        fill_alerts(conn, MACHINE, 7, notify=Policy(("webhook", "email"), max_age_hours=0))
        ids = sorted(conn.execute(sa.select(db.alerts.c.id)).scalars())
        by_channel = dict(conn.execute(sa.select(db.notifications.c.channel, db.notifications.c.id)
                                       .where(db.notifications.c.alert_id == ids[0])).all())
        outbox.lease(conn, "email", "t", CRAWLED, 60)
        outbox.mark_sent(conn, "webhook", [by_channel["webhook"]], "d" * 32, datetime(2026, 11, 6, 9, 31, 5))
        outbox.mark_failed(conn, "email", [by_channel["email"]], "SMTP 127.0.0.1:25: ConnectionRefusedError",
                           CRAWLED, 30, 60, 48)
    return ids


def test_watch_page_shows_posts_counts_and_notifications(seeded, client_for) -> None:
    ids = watch_and_notify(seeded)
    page = client_for("rui").get("/watch").get_data(as_text=True)
    assert "测试树洞" in page and "2026-11-06 09:30" in page and "2026-11-06 06:00" in page
    # levels 7-10 twice over c00-c21 and the level-9 script comment: 9 alerts, all new
    assert '<td class="alert-count">9</td>' in page and '<td class="open-count">9</td>' in page
    assert "webhook: sent 11-06 09:31:05" in page and "email: pending after 1 tries" in page
    assert "failing" in page and "ConnectionRefusedError" in page
    assert f'id="walert-{ids[-1]}"' in page
    assert "<script>document" not in page  # no comment text on this page at all


def test_alert_page_says_whether_and_when_it_was_notified(seeded, client_for) -> None:
    ids = watch_and_notify(seeded)
    c = client_for("rui")
    first = c.get(f"/alerts/{ids[0]}").get_data(as_text=True)
    assert "webhook: sent 2026-11-06 09:31:05" in first and "1 failed tries" in first
    other = c.get(f"/alerts/{ids[1]}").get_data(as_text=True)
    assert "webhook: pending" in other


def test_annotators_may_not_open_the_watch_page(seeded, client_for) -> None:
    assert client_for("anna").get("/watch").status_code == 403


def test_empty_watch_page(seeded, client_for) -> None:
    page = client_for("ada").get("/watch").get_data(as_text=True)
    assert 'id="no-watched"' in page and 'id="no-notifications"' in page
