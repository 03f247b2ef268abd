"""A small console database: one topic, one post, 24 comments, lexicon scores, users.

Texts are written for these tests. Levels of suicide_risk under lexicon:v2 run
0,1,...,10 twice over c00-c21; c22 is the ``<script>`` comment (level 9); c23 is
unscored. Author "a"*64 wrote c08, c09 and c10 (levels 8, 9, 10) within three days:
repeated risk. Every comment is dated 2026-11-0x, Asia/Shanghai.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from analysis.console import auth
from weibo_mh import db, rollups

MACHINE = "lexicon:v2"
TOPIC = "高考加油"
REPEATER = "a" * 64
SCRIPT = "<script>document.title='pwned'</script>不想活了"
PASSWORD = "correct horse battery"
T0 = datetime(2026, 11, 1, 8, 0)


def comment_ids() -> list[str]:
    return [f"c{i:02d}" for i in range(24)]


def risk_of(i: int) -> int:
    return 9 if i == 22 else i % 11


def seed(url: str, users: bool = True) -> sa.Engine:
    engine = db.make_engine(url)
    t = db.now()
    with engine.begin() as conn:
        conn.execute(db.topics.insert().values(id=1, word=TOPIC, first_seen=T0, last_seen=T0))
        conn.execute(db.posts.insert().values(mid="P1", text="高考前一晚，大家都睡得着吗", created_at=T0,
                                              first_scraped_at=T0, scraped_at=T0))
        conn.execute(db.post_topics.insert().values(mid="P1", topic_id=1, first_seen=T0))
        rows, scores = [], []
        for i, cid in enumerate(comment_ids()):
            text = SCRIPT if i == 22 else f"测试评论 {i}：考完就好了"
            author = REPEATER if i in (8, 9, 10) else f"{i:064x}"
            when = T0 + timedelta(hours=i * 6)
            rows.append({"id": cid, "mid": "P1", "author_hash": author, "text": text, "created_at": when,
                         "first_scraped_at": when, "scraped_at": when,
                         "score_status": "pending" if i == 23 else "done"})
            if i == 23:
                continue
            for dim, value in (("suicide_risk", risk_of(i)), ("positivity", 10 - risk_of(i)),
                               ("mood_disorder", min(10, risk_of(i))), ("substance_use", 0)):
                scores.append({"comment_id": cid, "dimension": dim, "scorer": MACHINE, "value": value,
                               "confidence": 0.35 + 0.05 * (i % 11), "rubric_version": "2026-11-a",
                               "truncated": False, "scored_at": t})
        conn.execute(db.comments.insert(), rows)
        rollups.write_scores(conn, scores)  # the one way scores are written (keeps the rollups)
    if users:
        for name, role in (("anna", "annotator"), ("bo", "annotator"), ("rui", "responder"),
                           ("ada", "admin")):
            auth.add_user(engine, name, role, PASSWORD, actor="test")
    return engine
