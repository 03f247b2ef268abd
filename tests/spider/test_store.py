"""The spider's batched writes survive a connection killed in the middle of a transaction."""

from __future__ import annotations

from datetime import datetime

import pytest
import sqlalchemy as sa
from weibo.store import Store

from weibo_mh import db


def rows(n: int, mid: str = "Mkill01") -> tuple[dict, list[dict]]:
    now = db.now()
    post = {"mid": mid, "author_hash": "a" * 64, "author_raw": None, "text": "一条帖子",
            "created_at": datetime(2026, 11, 20, 12, 0), "reposts": 1, "comments_count": n, "likes": 2,
            "source": "iPhone", "first_scraped_at": now, "scraped_at": now, "full_text": True,
            "topics": ["一个话题"]}
    comments = [{"id": f"77{i:04d}", "mid": mid, "author_hash": "b" * 64, "author_raw": None,
                 "reply_to_hash": None, "text": f"第{i}条评论😭", "likes": i, "created_at": None,
                 "source": None, "first_scraped_at": now, "scraped_at": now} for i in range(n)]
    return post, comments


class KillOnce(Store):
    """Kills its own session from another connection in the middle of the first write."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.admin = db.make_engine(url)
        self.kills = 0

    def _write(self, conn, topics, posts, comments):  # noqa: ANN001 - test double
        result = super()._write(conn, topics, posts, comments)
        if self.kills == 0:
            self.kills += 1
            victim = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
            with self.admin.connect() as admin:
                admin.execute(sa.text(f"KILL {int(victim)}"))
        return result  # the commit after this fails: the whole batch is written again


@pytest.mark.mysql
def test_a_session_killed_mid_transaction_is_retried_without_loss_or_duplicates(mysql_url: str) -> None:
    store = KillOnce(mysql_url)
    store.start_run()
    post, comments = rows(30)
    store.add("post", post)
    for c in comments:
        store.add("comment", c)
    assert store.flush() == 31
    assert store.kills == 1
    assert store.counts()["comments_new"] == 30 and store.counts()["posts_new"] == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.comments)).scalar() == 30
        assert conn.execute(sa.select(sa.func.count()).select_from(db.post_topics)).scalar() == 1
    store.admin.dispose()
    store.close()


def test_a_recrawl_updates_counts_but_not_scoring_state(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.start_run()
    post, comments = rows(3)
    store.add("post", post)
    for c in comments:
        store.add("comment", c)
    store.flush()
    with store.engine.begin() as conn:
        conn.execute(db.comments.update().values(score_status="done", attempts=1))
    again = Store(sqlite_url)
    again.start_run()
    post2, comments2 = rows(3)
    comments2[0]["likes"] = 50
    comments2[1]["ip_location"] = "上海"   # a location never moves: the rollups count scores by it
    post2.update(full_text=False, text="摘要…")        # an excerpt never overwrites a stored text
    again.add("post", post2)
    for c in comments2:
        again.add("comment", c)
    again.flush()
    assert again.counts() == {"topics": 0, "posts_new": 0, "posts_updated": 1,
                              "comments_new": 0, "comments_updated": 3}
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(db.posts.c.text)).scalar() == "一条帖子"
        got = conn.execute(sa.select(db.comments.c.likes, db.comments.c.score_status, db.comments.c.ip_location)
                           .order_by(db.comments.c.id)).all()
    assert [tuple(r) for r in got] == [(50, "done", None), (1, "done", None), (2, "done", None)]
    store.close()
    again.close()
