"""The console's watch view: per watched post, when it was last crawled, its newest comment and
its alert counts; per alert, whether and when each push channel notified it.

Its own blueprint and templates (``templates/watch/``) so that the console's core (app.py:
sessions, triage) changes only by the line that registers it; the alert page shows the
notifications through the ``notifications_for`` template global.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, Flask, render_template
from sqlalchemy.engine import Connection, Engine

from analysis.console.triage import OPEN
from weibo_mh import db
from weibo_mh.notify import outbox

WP, A, C, N = db.watched_posts, db.alerts, db.comments, db.notifications
RECENT = 50


def watched(conn: Connection) -> list[dict[str, Any]]:
    """Every watched post (active first, then by label) with its alert counts by state."""
    posts = [dict(r._mapping) for r in conn.execute(
        sa.select(WP).order_by(WP.c.active.desc(), WP.c.label, WP.c.mid))]
    mids = [p["mid"] for p in posts]
    counts: dict[str, dict[str, int]] = {}
    if mids:
        for mid, state, n in conn.execute(
                sa.select(C.c.mid, A.c.state, sa.func.count()).select_from(A.join(C, C.c.id == A.c.comment_id))
                .where(C.c.mid.in_(mids)).group_by(C.c.mid, A.c.state)):
            counts.setdefault(mid, {})[state] = int(n)
    for p in posts:
        by_state = counts.get(p["mid"], {})
        p["alerts"] = sum(by_state.values())
        p["open"] = sum(by_state.get(s, 0) for s in OPEN)
    return posts


def notifications(conn: Connection, alert_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """alert id -> its notifications (channel, state, attempts, sent_at, last_error)."""
    out: dict[int, list[dict[str, Any]]] = {}
    if not alert_ids:
        return out
    for r in conn.execute(sa.select(N.c.alert_id, N.c.channel, N.c.state, N.c.attempts, N.c.sent_at,
                                    N.c.next_attempt_at, N.c.last_error)
                          .where(N.c.alert_id.in_(alert_ids)).order_by(N.c.channel)):
        out.setdefault(int(r.alert_id), []).append(dict(r._mapping))
    return out


def recent_alerts(conn: Connection, mids: list[str]) -> list[dict[str, Any]]:
    """The newest alerts on these posts, each with its post's mid and its notifications."""
    if not mids:
        return []
    rows = [dict(r._mapping) for r in conn.execute(
        sa.select(A.c.id, A.c.level, A.c.state, A.c.comment_time, A.c.repeat_count, C.c.mid)
        .select_from(A.join(C, C.c.id == A.c.comment_id)).where(C.c.mid.in_(mids))
        .order_by(A.c.id.desc()).limit(RECENT))]
    sent = notifications(conn, [r["id"] for r in rows])
    for r in rows:
        r["notifications"] = sent.get(r["id"], [])
    return rows


def register(app: Flask, engine: Engine, requires: Callable[..., Any]) -> None:
    """Add /watch and the ``notifications_for`` template global to the console."""
    bp = Blueprint("watch", __name__, template_folder="templates")

    @bp.get("/watch")
    @requires("responder", "admin")
    def watch_page() -> Any:
        with engine.connect() as conn:
            posts = watched(conn)
            labels = {p["mid"]: p["label"] for p in posts}
            alerts = recent_alerts(conn, list(labels))
            outbox_counts = outbox.counts(conn)
            channels = conn.execute(sa.select(db.notify_channels)).all()
        return render_template("watch/watch.html", posts=posts, alerts=alerts, labels=labels,
                               outbox=outbox_counts, channels=channels, states=db.NOTIFY_STATES)

    app.register_blueprint(bp)
