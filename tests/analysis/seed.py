"""A small database with known scores, so that every aggregate can be checked by hand.

Three topics, three posts (P2 sits in two topics), seven comments over three days
(Asia/Shanghai times, as stored). Two scorers: lexicon:v2 scored c1-c5 on the four
core dimensions; classifier:v1 scored the same five with some disagreement. c6 failed,
c7 is pending. c5 has no created_at, so its scraped_at stands in. Texts are written
for these tests.

    comment post  time              risk pos mood subst   classifier risk
    c1      P1    11-01 09:15       8    2   6    0       7
    c2      P2    11-01 09:45       2    4   3    1       2
    c3      P3    11-01 23:59:59    0    9   0    0       0
    c4      P2    11-02 00:00:00    7    1   7    3       7
    c5      P1    (scraped 11-02 10:30)  1  6  1   0       2
    c6      P1    11-02 10:05       failed
    c7      P3    11-03 08:00       pending

Topics: T1 高考加油 <- P1, P2; T2 失眠的夜晚 <- P2; T3 周末出游 <- P3.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa

from weibo_mh import db, rollups

T1, T2, T3 = "高考加油", "失眠的夜晚", "周末出游"
A, B = "lexicon:v2", "classifier:v1"
AUTHOR = "a" * 64
REPLY = "b" * 64
D = datetime

# comment id -> (post, created_at, scraped_at, status, text)
COMMENTS = {
    "c1": ("P1", D(2026, 11, 1, 9, 15), D(2026, 11, 1, 12), "done",
           "我已经想好了用什么办法，不想再撑了 | 真的"),
    "c2": ("P2", D(2026, 11, 1, 9, 45), D(2026, 11, 1, 12), "done", "最近总是睡不着，有点累"),
    "c3": ("P3", D(2026, 11, 1, 23, 59, 59), D(2026, 11, 2, 1), "done", "周末去爬山，太开心了 😀"),
    "c4": ("P2", D(2026, 11, 2, 0, 0, 0), D(2026, 11, 2, 1), "done",
           "药已经准备好了\n就是还没决定哪天"),
    "c5": ("P1", None, D(2026, 11, 2, 10, 30), "done", "考完了，睡一觉再说"),
    "c6": ("P1", D(2026, 11, 2, 10, 5), D(2026, 11, 2, 12), "failed", "……"),
    "c7": ("P3", D(2026, 11, 3, 8, 0), D(2026, 11, 3, 9), "pending", "下周还去吗"),
}
# comment -> (suicide_risk, positivity, mood_disorder, substance_use, confidence)
SCORES_A = {
    "c1": (8, 2, 6, 0, 0.9),
    "c2": (2, 4, 3, 1, 0.5),
    "c3": (0, 9, 0, 0, None),
    "c4": (7, 1, 7, 3, 0.6),
    "c5": (1, 6, 1, 0, 0.8),
}
SCORES_B = {
    "c1": (7, 2, 5, 0, None),
    "c2": (2, 5, 3, 1, None),
    "c3": (0, 8, 0, 0, None),
    "c4": (7, 1, 7, 2, None),
    "c5": (2, 6, 1, 0, None),
}
DIMS = ("suicide_risk", "positivity", "mood_disorder", "substance_use")
POSTS = {"P1": [T1], "P2": [T1, T2], "P3": [T3]}
# (run start, [(topic, rank, heat)])
SNAPSHOTS = [
    (D(2026, 11, 1, 10), [(T1, 1, 500_000), (T2, 3, 300_000)]),
    (D(2026, 11, 1, 22), [(T1, 2, 600_000)]),
    (D(2026, 11, 2, 10), [(T1, 2, 800_000), (T3, 5, 100_000)]),
]


def seed(url: str, places: dict[str, str | None] | None = None) -> None:
    """Insert the rows above into a migrated, empty database; ``places``: comment id -> IP location."""
    eng = db.make_engine(url)
    first = D(2026, 10, 31)
    with eng.begin() as conn:
        ids = {}
        for word in (T1, T2, T3):
            ids[word] = conn.execute(db.topics.insert().values(
                word=word, first_seen=first, last_seen=D(2026, 11, 3))).inserted_primary_key[0]  # type: ignore[index]
        for mid, words in POSTS.items():
            conn.execute(db.posts.insert().values(mid=mid, author_hash=AUTHOR, text=f"帖子{mid}",
                                                  created_at=first, first_scraped_at=first,
                                                  scraped_at=first))
            for w in words:
                conn.execute(db.post_topics.insert().values(mid=mid, topic_id=ids[w], first_seen=first))
        for cid, (mid, created, scraped, status, text) in COMMENTS.items():
            conn.execute(db.comments.insert().values(
                id=cid, mid=mid, author_hash=AUTHOR, reply_to_hash=REPLY, text=text, created_at=created,
                first_scraped_at=scraped, scraped_at=scraped, score_status=status,
                scored_at=scraped if status == "done" else None, ip_location=(places or {}).get(cid)))
        rows = []
        for scorer, table in ((A, SCORES_A), (B, SCORES_B)):
            for cid, vals in table.items():
                for dim, v in zip(DIMS, vals[:4], strict=True):
                    rows.append(dict(comment_id=cid, dimension=dim, scorer=scorer, value=v,
                                     confidence=vals[4], rubric_version="2026-11-a",
                                     scored_at=COMMENTS[cid][2]))
        conn.execute(db.scores.insert(), rows)
        for started, snaps in SNAPSHOTS:
            run_id = conn.execute(db.crawl_runs.insert().values(
                started_at=started, finished_at=started, status="ok")).inserted_primary_key[0]  # type: ignore[index]
            for word, rank, heat in snaps:
                conn.execute(db.topic_snapshots.insert().values(
                    crawl_run_id=run_id, topic_id=ids[word], rank=rank, heat=heat, seen_at=started))
        rollups.rebuild(conn, lag=timedelta(0))  # rows inserted directly: roll them up from scratch
    eng.dispose()


def topic_ids(url: str) -> dict[str, int]:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        out = {w: int(i) for i, w in conn.execute(sa.select(db.topics.c.id, db.topics.c.word))}
    eng.dispose()
    return out
