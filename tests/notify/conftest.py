"""Notification fixtures: a real SMTP inbox with STARTTLS, a signature-checking webhook, and
alerts made the way the worker makes them (scores through rollups, then fill_alerts)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from tests.notify.receivers import SmtpInbox, WebhookReceiver, self_signed_cert
from weibo_mh import db, rollups
from weibo_mh.alert_queue import fill_alerts
from weibo_mh.config import load_config
from weibo_mh.notify.outbox import Policy

SCORER = "lexicon:v2"
SECRET = "s3cret-webhook-key-for-tests"
SMTP_USER, SMTP_PASSWORD = "notifier", "smtp-pass-for-tests"
CRISIS = "测试热线 000-0000 (test line)"


@pytest.fixture
def sq(sqlite_url: str) -> Iterator[sa.Engine]:
    """SQLite only, for tests whose database part the two-database tests already cover."""
    eng = db.make_engine(sqlite_url)
    yield eng
    eng.dispose()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path)


@pytest.fixture
def inbox(cert: tuple[Path, Path]) -> Iterator[SmtpInbox]:
    box = SmtpInbox(*cert, user=SMTP_USER, password=SMTP_PASSWORD).start()
    yield box
    box.stop()


@pytest.fixture
def hook() -> Iterator[WebhookReceiver]:
    r = WebhookReceiver(SECRET).start()
    yield r
    r.stop()


def notify_cfg(url: str, tmp_path: Path, channels: list[str], hook: WebhookReceiver | None = None,
               inbox: SmtpInbox | None = None, cert: Path | None = None, **notify: Any) -> Any:
    """A loaded default config pointed at the receivers (secrets in files under tmp_path)."""
    cfg = load_config(None, env={})
    cfg.database.url = url
    cfg.console.public_url = "https://console.example.org"
    cfg.analysis.crisis_resources = CRISIS
    n = cfg.notify
    n.channels = channels
    if hook is not None:
        secret = tmp_path / "webhook.secret"
        secret.write_text(SECRET + "\n")
        n.webhook_url, n.webhook_secret_file = hook.url, str(secret)
    if inbox is not None:
        n.smtp_host, n.smtp_port, n.smtp_user = "127.0.0.1", inbox.port, SMTP_USER
        n.smtp_ca_file = str(cert)
        n.mail_from, n.mail_to = "weibo-mh@example.org", ["team@example.org"]
        n.smtp_timeout_seconds = 5.0
    n.webhook_timeout_seconds = 5.0
    for k, v in notify.items():
        setattr(n, k, v)
    return cfg


def smtp_env(tmp_path: Path) -> dict[str, str]:
    f = tmp_path / "smtp.password"
    f.write_text(SMTP_PASSWORD)
    return {"WEIBO_MH_SMTP_PASSWORD_FILE": str(f)}


def add_comments(engine: sa.Engine, levels: list[int], *, start: int = 0, mid: str = "P1",
                 when: datetime | None = None, author: str | None = None,
                 text: str = "测试用评论：今晚好累") -> list[str]:
    """Scored comments (one per level) on post ``mid`` under topic 树洞测试; returns their ids."""
    t = when or db.now()
    with engine.connect() as conn, conn.execution_options(sqlite_begin="IMMEDIATE").begin():
        if conn.execute(sa.select(db.posts.c.mid).where(db.posts.c.mid == mid)).first() is None:
            conn.execute(db.posts.insert().values(mid=mid, text="测试帖子", created_at=t, first_scraped_at=t,
                                                  scraped_at=t))
            tid = conn.execute(sa.select(db.topics.c.id).where(db.topics.c.word == "树洞测试")).scalar()
            if tid is None:
                new = conn.execute(db.topics.insert().values(word="树洞测试", first_seen=t, last_seen=t))
                tid = new.inserted_primary_key[0]  # type: ignore[index]
            conn.execute(db.post_topics.insert().values(mid=mid, topic_id=tid, first_seen=t))
        ids = [f"{mid}c{start + i:04d}" for i in range(len(levels))]
        conn.execute(db.comments.insert(), [
            {"id": cid, "mid": mid, "author_hash": author or f"{start + i:064x}", "text": text,
             "created_at": t - timedelta(minutes=1), "first_scraped_at": t, "scraped_at": t,
             "score_status": "done"} for i, cid in enumerate(ids)])
        rollups.write_scores(conn, [
            {"comment_id": cid, "dimension": "suicide_risk", "scorer": SCORER, "value": lv, "confidence": 0.9,
             "rubric_version": "2026-11-a", "truncated": False, "scored_at": t}
            for cid, lv in zip(ids, levels, strict=True)])
    return ids


def make_alerts(engine: sa.Engine, levels: list[int], policy: Policy | None, **kw: Any) -> list[str]:
    """Comments at these levels, then the worker's fill (threshold 7) in one transaction."""
    ids = add_comments(engine, levels, **kw)
    with engine.connect() as conn, conn.execution_options(sqlite_begin="IMMEDIATE").begin():
        fill_alerts(conn, SCORER, 7, comment_ids=ids, notify=policy)
    return ids


class Clock:
    """A settable clock for the sender's windows and back-off (no sleeping in tests)."""

    def __init__(self) -> None:
        self.t = db.now()

    def __call__(self) -> datetime:
        return self.t

    def advance(self, **kw: float) -> None:
        self.t += timedelta(**kw)
