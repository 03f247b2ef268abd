"""Alert triage: the queue of alerts, their states, and the decisions as CSV.

States go new -> acknowledged -> escalated, dismissed or resolved (an escalated alert
may still be resolved). Every change is one UPDATE guarded by the state, assignee and
notes it starts from, so two responders acting on one alert at once cannot both win; and
the decision form carries a token of the alert as shown (seen_token), so a form opened
before someone else's note or assignment is refused rather than written over it. Each
change is recorded in audit_log.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from analysis.console.auth import User, active_users, audit
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.notify.outbox import Policy
from weibo_mh.sanitize import csv_cell

A = db.alerts
C = db.comments
P = db.posts
PT = db.post_topics
TP = db.topics

OPEN = ("new", "acknowledged", "escalated")
#: action -> (states it may start from, state it leads to; None keeps the state)
ACTIONS: dict[str, tuple[tuple[str, ...], str | None]] = {
    "acknowledge": (("new",), "acknowledged"),
    "escalate": (("acknowledged",), "escalated"),
    "dismiss": (("acknowledged",), "dismissed"),
    "resolve": (("acknowledged", "escalated"), "resolved"),
    "assign": (OPEN, None),
    "note": (db.ALERT_STATES, None),
}
SORTS = {
    "level": (A.c.level.desc(), A.c.comment_time.desc(), A.c.id.desc()),
    "recent": (A.c.comment_time.desc(), A.c.id.desc()),
    "repeat": (A.c.repeat_count.desc(), A.c.level.desc(), A.c.comment_time.desc()),
}
FILTERS = {"open": OPEN, "all": db.ALERT_STATES, **{s: (s,) for s in db.ALERT_STATES}}
NOTE_MAX = 2000
#: Who may be given an alert (the roles that can open it).
ASSIGNEE_ROLES = ("responder", "admin")


class TriageError(ValueError):
    """An action the alert's state does not allow, or bad input; the message says why."""


def counts(conn: Connection) -> dict[str, int]:
    rows = conn.execute(sa.select(A.c.state, sa.func.count()).group_by(A.c.state))
    out = dict.fromkeys(db.ALERT_STATES, 0)
    out.update({s: int(n) for s, n in rows})
    return out


def page(conn: Connection, states: tuple[str, ...], sort: str, limit: int,
         offset: int = 0) -> list[dict[str, Any]]:
    """One page of alerts with their comment's text and topics.

    One query per state, each walking its (state, sort key) index for just the first
    ``offset + limit`` rows, merged here: a single ``state IN (…)`` query would have to
    sort every open alert before it could return the first fifty.
    """
    keys = SORTS[sort]
    cols = [A.c.id, A.c.comment_id, A.c.level, A.c.scorer, A.c.state, A.c.assignee, A.c.comment_time,
            A.c.repeat_count, A.c.created_at]
    found: list[dict[str, Any]] = []
    for state in states:
        q = sa.select(*cols).where(A.c.state == state).order_by(*keys).limit(offset + limit)
        found += [dict(r._mapping) for r in conn.execute(q)]
    found.sort(key=_sort_key(sort))
    rows = found[offset:offset + limit]
    if not rows:
        return rows
    text = {cid: (t, mid) for cid, t, mid in conn.execute(
        sa.select(C.c.id, C.c.text, C.c.mid).where(C.c.id.in_([r["comment_id"] for r in rows])))}
    for r in rows:
        r["text"], r["mid"] = text.get(r["comment_id"], ("", ""))
    topics = _topics(conn, {r["mid"] for r in rows})
    for r in rows:
        r["topics"] = topics.get(r["mid"], [])
    return rows


def _sort_key(sort: str) -> Any:
    """The Python twin of ``SORTS[sort]`` (all descending)."""
    def key(r: dict[str, Any]) -> tuple[Any, ...]:
        t = -r["comment_time"].timestamp()
        if sort == "level":
            return (-r["level"], t, -r["id"])
        if sort == "recent":
            return (t, -r["id"])
        return (-r["repeat_count"], -r["level"], t)
    return key


def _topics(conn: Connection, mids: set[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if not mids:
        return out
    q = (sa.select(PT.c.mid, TP.c.word).select_from(PT.join(TP, TP.c.id == PT.c.topic_id))
         .where(PT.c.mid.in_(sorted(mids))).order_by(TP.c.word))
    for mid, word in conn.execute(q):
        out.setdefault(mid, []).append(word)
    return out


def get(conn: Connection, alert_id: int) -> dict[str, Any] | None:
    q = (sa.select(A, C.c.text, C.c.mid, C.c.created_at.label("comment_created"),
                   P.c.text.label("post_text"))
         .select_from(A.join(C, C.c.id == A.c.comment_id).join(P, P.c.mid == C.c.mid))
         .where(A.c.id == alert_id))
    r = conn.execute(q).first()
    if r is None:
        return None
    out = dict(r._mapping)
    out["topics"] = _topics(conn, {out["mid"]}).get(out["mid"], [])
    out["seen"] = seen_token(out["state"], out["assignee"], out["notes"])
    return out


def seen_token(state: str, assignee: str | None, notes: str | None) -> str:
    """The alert as a reviewer saw it, for the form: act() refuses a form whose alert changed since.

    Covers exactly what a decision may overwrite (state, assignee, notes), so a reviewer who
    opened the page before someone else's note or assignment is told so instead of replacing it.
    """
    raw = json.dumps([state, assignee, notes], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:16]


def same_author(conn: Connection, alert: dict[str, Any], days: int) -> list[dict[str, Any]]:
    """The author's other alerts within ``days`` either side of this one (by ix_alerts_author_time)."""
    if not alert.get("author_hash"):
        return []
    span = timedelta(days=days)
    q = (sa.select(A.c.id, A.c.level, A.c.state, A.c.comment_time)
         .where(A.c.author_hash == alert["author_hash"], A.c.id != alert["id"],
                A.c.comment_time >= alert["comment_time"] - span,
                A.c.comment_time <= alert["comment_time"] + span)
         .order_by(A.c.comment_time.desc()).limit(50))
    return [dict(r._mapping) for r in conn.execute(q)]


def history(conn: Connection, alert_id: int) -> list[dict[str, Any]]:
    L = db.audit_log
    q = (sa.select(L.c.at, L.c.actor, L.c.action, L.c.detail).where(L.c.target == f"alert:{alert_id}")
         .order_by(L.c.at, L.c.id))
    return [dict(r._mapping) for r in conn.execute(q)]


def act(conn: Connection, user: User, alert_id: int, action: str, *, seen: str, note: str = "",
        assignee: str | None = None, ip: str = "") -> str:
    """Apply ``action`` to an alert; returns its new state. Raises TriageError if not allowed.

    ``seen`` is the form's seen_token(): when the alert has changed since the page was
    rendered, nothing is written (a stale form must not replace a newer note or assignee).
    An assignee must be an active responder or admin.
    """
    if action not in ACTIONS:
        raise TriageError(f"unknown action {action!r}")
    note = (note or "").strip()[:NOTE_MAX]
    if action == "note" and not note:
        raise TriageError("write a note first")
    row = conn.execute(sa.select(A.c.state, A.c.assignee, A.c.notes).where(A.c.id == alert_id)).first()
    if row is None:
        raise TriageError(f"no alert {alert_id}")
    if seen != seen_token(row.state, row.assignee, row.notes):
        raise TriageError("someone else changed this alert after you opened it (see its notes and "
                          "history); nothing was saved: read it again and redo your decision")
    allowed, to = ACTIONS[action]
    if row.state not in allowed:
        raise TriageError(f"cannot {action} an alert that is {row.state} "
                          f"(allowed from: {', '.join(allowed)})")
    t = db.now()
    values: dict[str, Any] = {"updated_at": t}
    if to is not None:
        values["state"] = to
    if assignee is not None:
        assignee = assignee.strip() or None
        if assignee is not None and assignee not in active_users(conn, ASSIGNEE_ROLES):
            raise TriageError(f"{assignee!r} is not an active responder or admin; choose one from the list")
    if action == "acknowledge":
        values.update(acknowledged_at=t, acknowledged_by=user.username)
        if assignee is None:  # whoever acknowledges takes it, unless they name someone
            assignee = row.assignee or user.username
    if to in ("escalated", "dismissed", "resolved"):
        values.update(closed_at=t, closed_by=user.username)
    if action in ("assign", "acknowledge"):
        values["assignee"] = assignee
    if note:
        stamp = f"[{t:%Y-%m-%d %H:%M} {user.username}, {action}] {note}"
        values["notes"] = f"{row.notes}\n{stamp}" if row.notes else stamp
    # the row as read: a note or assignment written meanwhile is never overwritten
    unchanged = [A.c.state == row.state, A.c.notes.is_not_distinct_from(row.notes),
                 A.c.assignee.is_not_distinct_from(row.assignee)]
    n = conn.execute(A.update().where(A.c.id == alert_id, *unchanged).values(**values)).rowcount
    if not n:
        raise TriageError("the alert changed meanwhile; reload it")
    detail: dict[str, Any] = {"from": row.state, "to": values.get("state", row.state)}
    if "assignee" in values:
        detail["assignee"] = values["assignee"]
    if note:
        detail["note"] = note
    audit(conn, user.username, f"alert_{action}", f"alert:{alert_id}", detail, ip=ip)
    return str(values.get("state", row.state))


# --------------------------------------------------------------------------- CSV

EXPORT_COLUMNS = ["alert_id", "comment_id", "post_mid", "weibo_cn_url", "scorer", "level",
                  "repeat_count", "comment_time", "state", "assignee", "created_at",
                  "acknowledged_at", "acknowledged_by", "closed_at", "closed_by", "notes"]


def safe_cell(value: Any) -> str:
    """A CSV cell: None empty, times as text, then sanitize.csv_cell (formulas, controls, bidi)."""
    if value is None:
        return ""
    s = value.strftime("%Y-%m-%d %H:%M:%S") if hasattr(value, "strftime") else str(value)
    return str(csv_cell(s))


def comment_url(base: str, mid: str, comment_id: str) -> str:
    """The weibo.cn page of the post's comments, at the comment (anchors are ``C_<id>``)."""
    from urllib.parse import quote

    return f"{base.rstrip('/')}/comment/{quote(str(mid), safe='')}#C_{quote(str(comment_id), safe='')}"


def export_rows(conn: Connection, states: tuple[str, ...], base: str) -> Iterator[str]:
    """The decisions as CSV text, chunk by chunk (UTF-8 BOM first, so Excel reads Chinese right)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    buf.write("\ufeff")
    w.writerow(EXPORT_COLUMNS)
    q = (sa.select(A.c.id, A.c.comment_id, C.c.mid, A.c.scorer, A.c.level, A.c.repeat_count,
                   A.c.comment_time, A.c.state, A.c.assignee, A.c.created_at, A.c.acknowledged_at,
                   A.c.acknowledged_by, A.c.closed_at, A.c.closed_by, A.c.notes)
         .select_from(A.join(C, C.c.id == A.c.comment_id)).where(A.c.state.in_(states))
         .order_by(A.c.id))
    for i, r in enumerate(conn.execute(q)):
        cells = [r.id, r.comment_id, r.mid, comment_url(base, r.mid, r.comment_id), r.scorer, r.level,
                 r.repeat_count, r.comment_time, r.state, r.assignee, r.created_at, r.acknowledged_at,
                 r.acknowledged_by, r.closed_at, r.closed_by, r.notes]
        w.writerow([safe_cell(c) for c in cells])
        if i % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def fill_and_audit(conn: Connection, actor: str, scorer: str, threshold: int, repeat_days: int,
                   notify: Policy | None, ip: str = "") -> int:
    """Alerts from one scorer's scores at ``threshold`` or above, with their notifications and
    one audit row (the admin page's button and the ``fill-alerts`` command)."""
    n = fill_alerts(conn, scorer, threshold, repeat_days=repeat_days, notify=notify)
    audit(conn, actor, "fill_alerts", f"scorer:{scorer}"[:191], {"threshold": threshold, "created": n}, ip=ip)
    return n
