"""Lease renewal: a live worker keeps its claims while the backend is busy; a hung one does not.

Leases are stored to the whole second, so the tests wait on the queue's clock, not on sleeps.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from llm_worker.heartbeat import Heartbeat
from llm_worker.queue import Queue
from weibo_mh import db

from .helpers import Recording, make_worker
from .seed import score_rows, seed, states


class Slow(Recording):
    """Scores like Recording, after ``seconds`` (a big model, a busy GPU server, a hang)."""

    name = "slow:v1"

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def score_batch(self, items):
        time.sleep(self.seconds)
        return super().score_batch(items)


def run_in_thread(worker) -> tuple[threading.Thread, dict]:
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(stats=worker.run()))
    t.start()
    return t, box


def wait_claimed(engine: sa.Engine, n: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sum(s["score_status"] == "claimed" for s in states(engine).values()) < n:
        assert time.monotonic() < deadline, f"{n} comments were never claimed"
        time.sleep(0.05)


def test_renew_pushes_only_this_workers_live_claims_ahead(engine):
    ids = seed(engine, 4)
    mine, theirs = Queue(engine, "w1", lease_seconds=300), Queue(engine, "w2", lease_seconds=300)
    got = [c.id for c in mine.claim(3)]
    with engine.begin() as conn:  # as if the claim were old
        conn.execute(sa.update(db.comments).where(db.comments.c.id.in_(got))
                     .values(lease_until=db.now() + timedelta(seconds=5)))
    assert theirs.renew(got) == 0
    assert mine.renew(ids) == 3  # the pending fourth is not claimed by w1: untouched
    assert mine.renew(ids) == 3  # the same second again: rows matched still count (MySQL found-rows)
    st = states(engine)
    assert all(st[i]["lease_until"] > db.now() + timedelta(seconds=250) for i in got)
    assert st[ids[3]]["score_status"] == "pending" and st[ids[3]]["lease_until"] is None
    assert mine.renew([]) == 0


def test_a_batch_slower_than_its_lease_is_not_taken_over(engine):
    ids = seed(engine, 6)
    worker = make_worker(engine, Slow(4.0), "slow", lease_seconds=1, batch_size=6)
    rival = Queue(engine, "rival", lease_seconds=60)
    t, box = run_in_thread(worker)
    wait_claimed(engine, 6)
    stolen = []
    while t.is_alive():  # for four one-second leases the rival keeps trying
        stolen += rival.claim(10)
        time.sleep(0.1)
    t.join()
    assert stolen == []
    stats = box["stats"]
    assert (stats.scored, stats.lost) == (6, 0)
    st = states(engine)
    assert {(st[i]["score_status"], st[i]["claimed_by"], st[i]["attempts"]) for i in ids} == {("done", "slow", 1)}
    assert len(score_rows(engine)) == 6 * 4


def test_a_hung_backend_stops_renewing_and_its_comments_pass_on(engine, caplog):
    ids = seed(engine, 3)
    worker = make_worker(engine, Slow(6.0), "hung", lease_seconds=1, batch_size=3, max_batch_seconds=1.5)
    heir = Queue(engine, "heir", lease_seconds=60)
    caplog.set_level(logging.WARNING, "llm_worker")
    t, box = run_in_thread(worker)
    wait_claimed(engine, 3)
    taken: list = []
    deadline = time.monotonic() + 30
    while len(taken) < 3 and time.monotonic() < deadline:
        taken += heir.claim(10)
        time.sleep(0.1)
    t.join()
    assert sorted(c.id for c in taken) == ids
    assert "event=lease_renewal_stopped" in caplog.text
    assert (box["stats"].scored, box["stats"].lost) == (0, 3)  # the hung worker writes nothing
    assert score_rows(engine) == []
    assert {s["claimed_by"] for s in states(engine).values()} == {"heir"}


def test_a_heartbeat_that_cannot_reach_the_database_says_so_and_keeps_beating(caplog):
    with socket.socket() as s:  # a port that was just free: connections are refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:{port}/test")
    queue = Queue(engine, "w1", lease_seconds=1)
    caplog.set_level(logging.WARNING, "llm_worker")
    with Heartbeat(queue, ["c1", "c2"]) as hb:
        time.sleep(1.2)
    engine.dispose()
    assert hb.failures >= 2 and hb.renewals == 0
    assert caplog.text.count("event=lease_renewal_failed") == hb.failures


@pytest.mark.mysql
def test_a_database_outage_during_a_slow_batch_is_counted_and_the_beat_resumes(mysql_url, caplog):
    from .tcp_proxy import TcpProxy

    url = sa.make_url(mysql_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306)).start()
    eng = db.make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    ids = seed(eng, 4)

    class OutageWhileScoring(Slow):
        def score_batch(self, items):
            proxy.stop()
            threading.Timer(1.5, proxy.start).start()
            return super().score_batch(items)

    caplog.set_level(logging.WARNING, "llm_worker")
    worker = make_worker(eng, OutageWhileScoring(4.0), lease_seconds=1, batch_size=4)
    stats = worker.run()
    assert (stats.scored, stats.lost) == (4, 0)
    failures = worker.metrics.registry.get_sample_value("llm_worker_lease_renewal_failures_total",
                                                        {"scorer": "slow:v1"})
    assert failures >= 1 and caplog.text.count("event=lease_renewal_failed") == failures
    assert {s["score_status"] for s in states(eng).values()} == {"done"}
    assert sorted(states(eng)) == ids
    eng.dispose()
