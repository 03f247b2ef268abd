"""What a notification says: a digest of one or more alerts, as text and as JSON.

A digest carries, per alert, the level, the dimension, the watch label or the hot topic, the
comment's time and a link to the alert in the console. It never carries an author hash, a
user id or a nickname; the comment's text only with ``notify.include_text = true``. A repeat
author's alert says "repeated" and how many alerts that author has in the repeat window (the
count the console shows). Every digest ends with the caution of SCALES.md and the team's
crisis resources.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from weibo_mh import db
from weibo_mh.rubric import CAUTION
from weibo_mh.sanitize import truncate, visible

A = db.alerts
C = db.comments
N = db.notifications
TEXT_CHARS = 500
TZ = "+08:00"  # the database's times are Asia/Shanghai
DIMENSION_NAMES = {"suicide_risk": "suicide risk"}


@dataclass(frozen=True)
class Item:
    alert_id: int
    level: int
    dimension: str
    #: "watch" (a watched post: ``label`` is its watch label) or "topic" (``label`` is a hot topic)
    source: str
    label: str
    comment_time: str
    link: str
    repeated: bool
    repeat_count: int
    text: str | None = None


@dataclass(frozen=True)
class Digest:
    items: list[Item]
    footer: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    test: bool = False

    @property
    def subject(self) -> str:
        if self.test:
            return "[weibo-mh] test notification"
        levels = ", ".join(str(i.level) for i in sorted(self.items, key=lambda i: -i.level))
        what = DIMENSION_NAMES.get(self.items[0].dimension, self.items[0].dimension)
        n = len(self.items)
        return f"[weibo-mh] {n} new alert{'s' * (n != 1)}: {what} {levels}"

    def text(self) -> str:
        lines = [self.subject, ""]
        if self.test:
            lines.append("This is a test of the notification channel; no alert is behind it.")
        for i in self.items:
            where = f'watched post "{i.label}"' if i.source == "watch" else \
                f"topic #{i.label}#" if i.label else "no topic"
            rep = f" · repeated ({i.repeat_count} alerts from this author in the repeat window)" \
                if i.repeated else ""
            lines.append(f"Alert {i.alert_id}: {DIMENSION_NAMES.get(i.dimension, i.dimension)} "
                         f"level {i.level}/10 · {where} · comment at {i.comment_time}{rep}")
            if i.link:
                lines.append(f"  {i.link}")
            if i.text is not None:
                lines.append(f"  「{i.text}」")
        lines += ["", "-- ", self.footer]
        return "\n".join(lines)

    def payload(self) -> dict[str, Any]:
        return {"type": "test" if self.test else "alerts", "digest": self.id, "subject": self.subject,
                "alerts": [asdict(i) for i in self.items], "footer": self.footer}

    def body(self) -> bytes:
        """The JSON a webhook receives (and a command reads on stdin), UTF-8."""
        return json.dumps(self.payload(), ensure_ascii=False, sort_keys=True).encode("utf-8")


@dataclass(frozen=True)
class Renderer:
    """Turns notification rows into a Digest ([notify] include_text, console.public_url)."""

    public_url: str = ""
    include_text: bool = False
    crisis_resources: str = ""

    @classmethod
    def from_config(cls, cfg: Any) -> Renderer:
        return cls(cfg.console.public_url.rstrip("/"), bool(cfg.notify.include_text),
                   (cfg.analysis.crisis_resources or "").strip())

    @property
    def footer(self) -> str:
        resources = self.crisis_resources or "none configured (set analysis.crisis_resources)"
        return f"Caution: {CAUTION}\nCrisis resources: {resources}"

    def link(self, alert_id: int) -> str:
        return f"{self.public_url}/alerts/{alert_id}" if self.public_url else ""

    def test_digest(self) -> Digest:
        return Digest([], self.footer, test=True)

    def digest(self, conn: Connection, notification_ids: Sequence[int]) -> Digest:
        cols = [A.c.id, A.c.level, A.c.dimension, A.c.repeat_count, A.c.comment_time, C.c.mid]
        if self.include_text:
            cols.append(C.c.text)
        rows = conn.execute(sa.select(*cols).select_from(N.join(A, A.c.id == N.c.alert_id)
                                                         .join(C, C.c.id == A.c.comment_id))
                            .where(N.c.id.in_(list(notification_ids))).order_by(A.c.id)).all()
        mids = sorted({r.mid for r in rows})
        labels = self._labels(conn, mids)
        items = []
        for r in rows:
            source, label = labels.get(r.mid, ("topic", ""))
            text = truncate(visible(r.text), TEXT_CHARS)[0] if self.include_text else None
            items.append(Item(int(r.id), int(r.level), r.dimension, source, label, _when(r.comment_time),
                              self.link(int(r.id)), int(r.repeat_count) > 1, int(r.repeat_count), text))
        return Digest(items, self.footer)

    @staticmethod
    def _labels(conn: Connection, mids: list[str]) -> dict[str, tuple[str, str]]:
        """mid -> ("watch", label) for watched posts, else ("topic", the first hot topic)."""
        out: dict[str, tuple[str, str]] = {}
        if not mids:
            return out
        pt, t = db.post_topics, db.topics
        for mid, word in conn.execute(sa.select(pt.c.mid, sa.func.min(t.c.word))
                                      .select_from(pt.join(t, t.c.id == pt.c.topic_id))
                                      .where(pt.c.mid.in_(mids)).group_by(pt.c.mid)):
            out[mid] = ("topic", word)
        wp = db.watched_posts
        for mid, label in conn.execute(sa.select(wp.c.mid, wp.c.label).where(wp.c.mid.in_(mids))):
            out[mid] = ("watch", label or mid)
        return out


def _when(t: datetime | None) -> str:
    return "unknown" if t is None else t.strftime("%Y-%m-%d %H:%M") + f" ({TZ}, Asia/Shanghai)"
