"""Put posts, topics and comments straight into a test database (no spider needed)."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from weibo_mh import db

#: Short comments written for these tests (not taken from any dataset).
SAMPLE_TEXTS = (
    "今天阳光很好，心情也不错。",
    "最近总是睡不着，什么都不想做。",
    "这个话题讨论得很热烈啊",
    "加油，一切都会好起来的！",
    "工作压力太大了，有点累。",
)


def seed(engine: sa.Engine, n: int = 0, texts: Sequence[str] | None = None, topic: str = "测试话题",
         prefix: str = "c", mid: str = "m1") -> list[str]:
    """Insert one post (under ``topic``) and comments; returns the comment ids in order.

    ``texts`` gives the comment texts; otherwise ``n`` comments cycle through SAMPLE_TEXTS.
    """
    if texts is None:
        texts = [SAMPLE_TEXTS[i % len(SAMPLE_TEXTS)] for i in range(n)]
    t = db.now()
    ids = [f"{prefix}{i:06d}" for i in range(len(texts))]
    with engine.begin() as conn:
        db.upsert(conn, db.posts, [{"mid": mid, "text": "一条测试微博", "first_scraped_at": t,
                                     "scraped_at": t}], update=[])
        if topic:
            db.upsert(conn, db.topics, [{"word": topic, "first_seen": t, "last_seen": t}], update=[],
                      keys=["word"])
            tid = conn.execute(sa.select(db.topics.c.id).where(db.topics.c.word == topic)).scalar_one()
            db.upsert(conn, db.post_topics, [{"mid": mid, "topic_id": tid, "first_seen": t}], update=[])
        rows = [{"id": cid, "mid": mid, "text": text, "first_scraped_at": t, "scraped_at": t}
                for cid, text in zip(ids, texts, strict=True)]
        for i in range(0, len(rows), 1000):
            conn.execute(db.comments.insert(), rows[i:i + 1000])
    return ids


def states(engine: sa.Engine) -> dict[str, dict]:
    """comment id -> its queue columns."""
    c = db.comments.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(c.id, c.score_status, c.claimed_by, c.lease_until, c.attempts,
                                      c.last_error, c.last_output, c.scored_at)).mappings().all()
    return {r["id"]: dict(r) for r in rows}


def score_rows(engine: sa.Engine) -> list[dict]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(db.scores)).mappings().all()]
