"""The outbox: notifications are written with their alerts, once, for the alerts the policy picks."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from tests.notify.conftest import SCORER, add_comments, make_alerts
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.config import ConfigError, load_config
from weibo_mh.notify import outbox
from weibo_mh.notify.outbox import Policy

N = db.notifications


def rows(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(N).order_by(N.c.id)).all())


def test_one_row_per_alert_and_channel_written_with_the_alert(engine: sa.Engine) -> None:
    policy = Policy(("webhook", "email"), min_level=8)
    make_alerts(engine, [3, 7, 8, 9, 10], policy)
    got = rows(engine)
    with engine.connect() as conn:
        levels = dict(conn.execute(sa.select(db.alerts.c.id, db.alerts.c.level)).all())
    assert sorted(levels.values()) == [7, 8, 9, 10]  # the alert threshold is 7, min_level 8
    assert {(r.channel, levels[r.alert_id]) for r in got} == \
        {(c, lv) for c in ("webhook", "email") for lv in (8, 9, 10)}
    assert all(r.state == "pending" and r.attempts == 0 for r in got)
    # a second fill of the same comments changes nothing: one notification per alert, ever
    with engine.begin() as conn:
        assert fill_alerts(conn, SCORER, 7, notify=policy) == 0
    assert len(rows(engine)) == len(got)


def test_a_rolled_back_fill_leaves_neither_alert_nor_notification(engine: sa.Engine) -> None:
    ids = add_comments(engine, [9, 10])

    class Boom(Exception):
        pass

    with pytest.raises(Boom), engine.begin() as conn:
        assert fill_alerts(conn, SCORER, 7, comment_ids=ids, notify=Policy(("webhook",))) == 2
        assert conn.execute(sa.select(sa.func.count()).select_from(N)).scalar() == 2
        raise Boom
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.alerts)).scalar() == 0
    assert rows(engine) == []


def test_old_comments_from_a_backfill_are_not_pushed(engine: sa.Engine) -> None:
    make_alerts(engine, [9], Policy(("webhook",), max_age_hours=72), when=db.now() - timedelta(days=5))
    make_alerts(engine, [9], Policy(("webhook",), max_age_hours=72), start=1)
    assert len(rows(engine)) == 1
    make_alerts(engine, [9], Policy(("webhook",), max_age_hours=0), start=2,
                when=db.now() - timedelta(days=30))
    assert len(rows(engine)) == 2


def test_only_watched_posts_and_their_label(engine: sa.Engine) -> None:
    from weibo_mh.notify.message import Renderer

    with engine.begin() as conn:
        conn.execute(db.watched_posts.insert().values(mid="W1", label="树洞（测试）", added_at=db.now()))
    policy = Policy(("webhook",), only_watched=True)
    make_alerts(engine, [9], policy, mid="P1")
    make_alerts(engine, [9], policy, mid="W1", start=1)
    [row] = rows(engine)
    with engine.connect() as conn:
        [item] = Renderer("https://c.example.org").digest(conn, [row.id]).items
    assert (item.source, item.label, item.link) == ("watch", "树洞（测试）", f"https://c.example.org/alerts/{item.alert_id}")


def test_no_policy_no_rows(engine: sa.Engine) -> None:
    make_alerts(engine, [10], None)
    assert rows(engine) == []


def test_failures_back_off_then_fail_and_retry_resets(engine: sa.Engine) -> None:
    make_alerts(engine, [9, 10], Policy(("webhook",)))
    ids = [r.id for r in rows(engine)]
    now = db.now()
    with engine.begin() as conn:
        assert outbox.lease(conn, "webhook", "me", now, 60)
        assert not outbox.lease(conn, "webhook", "other", now, 60)
        first = outbox.mark_failed(conn, "webhook", ids, "HTTP 500", now, 30, 100, max_attempts=3)
        second = outbox.mark_failed(conn, "webhook", ids, "HTTP 500", now, 30, 100, max_attempts=3)
        third = outbox.mark_failed(conn, "webhook", ids, "HTTP 502 " + "x" * 900, now, 30, 100,
                                   max_attempts=3)
    assert [first - now, second - now, third - now] == [timedelta(seconds=s) for s in (30, 60, 100)]
    got = rows(engine)
    assert {r.state for r in got} == {"failed"} and {r.attempts for r in got} == {3}
    assert all(len(r.last_error) <= 500 for r in got)
    with engine.begin() as conn:
        assert outbox.retry(conn) == 2
        assert outbox.lease(conn, "webhook", "other", now + timedelta(seconds=61), 60)  # expired
    assert {r.state for r in rows(engine)} == {"pending"}


@pytest.mark.parametrize("notify, message", [
    ('channels = ["pager"]', "notify.channels"),
    ('channels = ["webhook"]', "webhook_url"),
    ('channels = ["email"]\nsmtp_host = "mail.example.org"', "mail_to"),
    ('channels = ["email"]\nsmtp_host = "m"\nmail_from = "a@b"\nmail_to = ["nobody"]', "mail_to"),
    ('channels = ["command"]', "notify.command"),
    ('min_level = 11', "notify.min_level"),
])
def test_bad_notify_config_stops_at_start(tmp_path, notify: str, message: str) -> None:
    f = tmp_path / "c.toml"
    f.write_text(f"[notify]\n{notify}\n")
    with pytest.raises(ConfigError, match=message):
        load_config(f, env={})
