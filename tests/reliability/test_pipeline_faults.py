"""The whole data path under faults: spider -> database <- workers, counting rows before and after.

Every test crawls the project's demo corpus from a local site with the real spider,
then scores it with real worker processes, and checks that nothing was lost or
stored twice: comments, posts and topics match the corpus, and every comment ends
``done`` with exactly one score per dimension, or ``failed`` with a reason.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import sqlalchemy as sa
from weibo.localsite import LocalSite
from weibo.localsite.demo_corpus import build_corpus

from tests.reliability.faults import (
    SessionKiller,
    popen,
    run,
    scoring_summary,
    table_counts,
    worker_cmd,
)
from tests.spider.helpers import counts, run_crawl, runs, write_config
from weibo_mh import db

CORPUS = build_corpus()
CRAWLED = [t for t in CORPUS["topics"] if not t["is_ad"]]
N_COMMENTS = len({c["id"] for t in CRAWLED for p in t["posts"] for c in p["comments_list"]})
N_POSTS = len({p["mid"] for t in CRAWLED for p in t["posts"]})
EXPECTED = {"topics": len(CRAWLED), "posts": N_POSTS, "comments": N_COMMENTS}


def crawl(tmp_path: Path, url: str, site: LocalSite, extra: str = "", name: str = "c.toml"):
    return run_crawl(write_config(tmp_path / name, site, extra), url)


def stored(url: str) -> dict[str, int]:
    c = counts(url)
    return {k: c[k] for k in EXPECTED}


def all_scored_once(url: str, scorer_count: int = 1) -> None:
    summary = scoring_summary(url)
    assert summary["status"] == {"done": N_COMMENTS}, summary
    assert summary["comments_without_4_scores"] == 0, summary
    assert summary["done_without_scores"] == 0, summary
    assert table_counts(url)["scores"] == N_COMMENTS * 4 * scorer_count


def wait_for_leases_to_expire(url: str, timeout: float = 30) -> None:
    """Until the queue's own clock (whole seconds) is past every lease: a fixed sleep is not enough,
    because times are stored to the second and a lease of 2 s can look unexpired 2.9 s later."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            until = conn.execute(sa.select(sa.func.max(db.comments.c.lease_until))).scalar()
    finally:
        engine.dispose()
    deadline = time.monotonic() + timeout
    while until is not None and db.now() <= until and time.monotonic() < deadline:
        time.sleep(0.2)


@pytest.mark.mysql
@pytest.mark.slow
def test_killed_database_sessions_mid_crawl_and_mid_scoring_lose_nothing(mysql_url, tmp_path):
    with LocalSite(CORPUS, delay=0.01) as site, SessionKiller(mysql_url, every=0.3) as killer:
        result = crawl(tmp_path, mysql_url, site, "concurrent_per_domain = 1\nflush_items = 20")
    assert killer.killed, "the spider's sessions should have been killed at least once"
    assert result.ok, result.output
    assert stored(mysql_url) == EXPECTED
    assert runs(mysql_url)[-1]["status"] == "ok"

    with SessionKiller(mysql_url, every=0.3) as killer:
        out = run(worker_cmd(mysql_url, "--backend", "null", "--once", "--batch-size", "8"),
                  env={"LLM_WORKER_NULL_DELAY": "0.05"})
    assert out.returncode == 0, out.stdout + out.stderr
    assert killer.killed, "the worker's sessions should have been killed at least once"
    all_scored_once(mysql_url)


def test_a_worker_killed_mid_batch_is_rescored_exactly_once(db_url, tmp_path):
    with LocalSite(CORPUS) as site:
        assert crawl(tmp_path, db_url, site).ok
    slow = {"LLM_WORKER_NULL_DELAY": "30"}
    with popen(worker_cmd(db_url, "--backend", "null", "--batch-size", "16", "--lease-seconds", "2",
                          "--worker-id", "doomed"), env=slow) as doomed:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and scoring_summary(db_url)["status"].get("claimed", 0) == 0:
            time.sleep(0.2)
        assert scoring_summary(db_url)["status"].get("claimed") == 16
        doomed.send_signal(signal.SIGKILL)
    wait_for_leases_to_expire(db_url)
    out = run(worker_cmd(db_url, "--backend", "null", "--once", "--worker-id", "heir"))
    assert out.returncode == 0, out.stdout + out.stderr
    all_scored_once(db_url)
    eng = db.make_engine(db_url)
    with eng.connect() as conn:
        attempts = dict(conn.execute(sa.select(db.comments.c.attempts, sa.func.count())
                                     .group_by(db.comments.c.attempts)).all())
    eng.dispose()
    assert attempts == {1: N_COMMENTS - 16, 2: 16}


@pytest.mark.mysql
def test_three_workers_score_a_fresh_crawl_once(mysql_url, tmp_path):
    with LocalSite(CORPUS) as site:
        assert crawl(tmp_path, mysql_url, site).ok
    procs = []
    for i in range(3):
        procs.append(popen(worker_cmd(mysql_url, "--backend", "lexicon", "--once", "--batch-size", "4",
                                      "--worker-id", f"w{i}")))
    entered = [p.__enter__() for p in procs]
    try:
        for p in entered:
            p.wait(timeout=180)
            assert p.returncode == 0, p.stdout.read() if p.stdout else ""
    finally:
        for p in procs:
            p.__exit__(None, None, None)
    all_scored_once(mysql_url)
    eng = db.make_engine(mysql_url)
    with eng.connect() as conn:
        assert conn.execute(sa.select(sa.func.max(db.comments.c.attempts))).scalar() == 1
        workers = conn.execute(sa.select(sa.func.count(sa.distinct(db.comments.c.claimed_by)))).scalar()
    eng.dispose()
    assert workers >= 2, "the work should have been shared"


@pytest.mark.parametrize("scenario, status", [("ban418", "rate_limited"), ("login_redirect", "login_required"),
                                              ("login_page", "login_required"), ("malformed", "ok")])
def test_a_failed_crawl_keeps_earlier_data(sqlite_url, tmp_path, scenario, status):
    db_url = sqlite_url
    with LocalSite(CORPUS) as site:
        assert crawl(tmp_path, db_url, site).ok
    before = table_counts(db_url)
    with LocalSite(CORPUS, scenario=scenario, after=8) as site:
        result = crawl(tmp_path, db_url, site, "ban_limit = 3", name="bad.toml")
    after = table_counts(db_url)
    last = runs(db_url)[-1]
    assert last["status"] == status, result.output
    assert result.ok == (status == "ok")
    assert after["crawl_runs"] == before["crawl_runs"] + 1
    for table in ("topics", "posts", "post_topics", "comments"):
        assert after[table] == before[table], table
    if scenario == "malformed":
        assert last["errors"] + last["dropped"] > 0
        assert last["stats"], "malformed pages are recorded with their URLs"
