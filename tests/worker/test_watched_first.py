"""Watched posts' comments are scored before the hot-topic backlog (issue 26, point 3).

The watched comment reaches the database through the spider's own write path
(weibo.store.Store, which sets comments.priority for watched posts), and the real worker
process scores it. Every test runs on SQLite and on MariaDB (the db_url fixture).
"""

from __future__ import annotations

import sqlalchemy as sa
from weibo.store import Store

from llm_worker.queue import Queue
from weibo_mh import db

from .seed import seed, states
from .test_cli import run

WATCHED = "4990000000000001"


def store_watched_comment(url: str, cid: str, text: str = "今晚真的撑不下去了") -> None:
    """A watch round's write: the post is watched, then its new comment is stored."""
    store = Store(url)
    store.start_run(kind="watch")
    store.sync_watch_list([{"mid": WATCHED, "bid": None, "label": "树洞"}], [])
    t = db.now()
    store.add("post", {"mid": WATCHED, "text": "一个树洞", "first_scraped_at": t, "scraped_at": t,
                       "full_text": True, "topics": []})
    store.add("comment", {"id": cid, "mid": WATCHED, "text": text, "likes": 0, "is_hot": False,
                          "first_scraped_at": t, "scraped_at": t})
    store.flush()
    store.close()


def test_with_5000_hot_comments_pending_a_new_watched_comment_is_scored_in_the_next_batch(
        engine: sa.Engine, db_url: str) -> None:
    seed(engine, 5000, prefix="h", mid="4880000000000001")
    store_watched_comment(db_url, "w000001")
    r = run(db_url, "--backend", "lexicon", "--once", "--batch-size", "16", "--max-items", "16")
    assert r.returncode == 0, r.stderr
    st = states(engine)
    assert st["w000001"]["score_status"] == "done"
    assert sum(s["score_status"] == "done" for s in st.values()) == 16


def test_claims_take_watched_comments_first_then_fill_the_batch_from_the_backlog(
        engine: sa.Engine, db_url: str) -> None:
    hot = seed(engine, 30, prefix="h", mid="4880000000000001")
    store_watched_comment(db_url, "w000001")
    store_watched_comment(db_url, "w000002", "加油")
    got = [c.id for c in Queue(engine, "w1").claim(5)]
    assert got[:2] in (["w000001", "w000002"], ["w000002", "w000001"])
    assert set(got[2:]) <= set(hot) and len(got) == 5
    # a second worker gets neither the watched ones nor the first worker's backlog rows
    other = [c.id for c in Queue(engine, "w2").claim(40)]
    assert not set(other) & set(got) and len(other) == 27


def test_comments_stored_before_a_post_was_watched_are_raised_when_it_is(
        engine: sa.Engine, db_url: str) -> None:
    seed(engine, 3, prefix="e", mid=WATCHED)          # a hot-topic crawl stored these earlier
    seed(engine, 10, prefix="h", mid="4880000000000001")
    store_watched_comment(db_url, "w000001")
    c = db.comments.c
    with engine.connect() as conn:
        raised = dict(conn.execute(sa.select(c.id, c.priority)).all())
    assert {raised[f"e{i:06d}"] for i in range(3)} == {db.WATCHED_PRIORITY}
    assert raised["h000000"] == 0
    got = {x.id for x in Queue(engine, "w1").claim(4)}
    assert got == {"e000000", "e000001", "e000002", "w000001"}


def test_a_worker_that_found_none_waiting_looks_again_after_the_recheck_window(
        engine: sa.Engine, db_url: str, monkeypatch) -> None:
    import llm_worker.queue as queue

    seed(engine, 20, prefix="h", mid="4880000000000001")
    q = Queue(engine, "w1")
    monkeypatch.setattr(queue, "WATCHED_RECHECK_SECONDS", 3600.0)
    assert "w000001" not in {x.id for x in q.claim(2)}   # none waiting: no look for an hour
    store_watched_comment(db_url, "w000001")
    assert "w000001" not in {x.id for x in q.claim(2)}   # inside the window: the backlog
    q._watched_next_check = 0.0                           # the window has passed
    assert "w000001" in {x.id for x in q.claim(2)}
