"""Scale-out: two crawler processes share one request queue and dupe filter through scrapy-redis."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from weibo.localsite import LocalSite, expected_counts, scale_corpus

from tests.spider.helpers import PY, SPIDER_DIR, counts, crawl_env, runs, write_config

pytestmark = [pytest.mark.slow, pytest.mark.redis]
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A unique key prefix; every key under it is deleted afterwards."""
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL)
        client.ping()
    except redis.RedisError as e:
        msg = (f"no Redis at {REDIS_URL} ({e}); start one with: "
               "redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save ''")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    prefix = f"wmh_test_{uuid.uuid4().hex[:10]}"
    yield prefix
    leftovers = list(client.scan_iter(f"{prefix}:*"))
    if leftovers:
        client.delete(*leftovers)


def test_two_processes_crawl_together_without_duplicate_requests_or_rows(
        db_url: str, redis_prefix: str, tmp_path: Path) -> None:
    import redis

    corpus = scale_corpus(topics=3, posts_per_topic=12, comments_per_post=12)
    expected = expected_counts(corpus)
    with LocalSite(corpus, delay=0.08) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1")
        env = crawl_env(config, db_url, REDIS_URL=REDIS_URL)
        cmd = [PY, "-m", "scrapy", "crawl", "hot_topics", "-s", "SCHEDULER_BACKEND=redis",
               "-s", f"REDIS_KEY_PREFIX={redis_prefix}", "-s", "REDIS_IDLE_SECONDS=2",
               "-s", "CONCURRENT_REQUESTS=1"]   # no process hoards requests from the shared queue
        logs = [tmp_path / f"crawler{i}.log" for i in (1, 2)]
        procs = []
        for log in logs:
            with open(log, "w") as out:
                procs.append(subprocess.Popen(cmd, cwd=SPIDER_DIR, env=env, stdout=out,
                                              stderr=subprocess.STDOUT))
            # the second crawler joins once the first is at work, as on a second machine
            deadline = time.monotonic() + 60
            while "shared scheduler on Redis" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
        for p in procs:
            p.wait(timeout=180)
        outputs = [path.read_text() for path in logs]
    for p, text in zip(procs, outputs, strict=True):
        assert p.returncode == 0, text
    assert all("shared scheduler on Redis" in text for text in outputs)

    # every page fetched exactly once between the two, and every row stored exactly once
    assert max(site.hits.values()) == 1
    assert site.page_hits() == expected["pages"]
    stored = counts(db_url)
    assert (stored["posts"], stored["comments"], stored["post_topics"]) == \
        (expected["posts"], expected["comments"], expected["post_topics"])
    assert stored["topic_snapshots"] == expected["topics"]    # only one process read the hot search

    both = runs(db_url)
    assert [r["status"] for r in both] == ["ok", "ok"]
    assert sum(r["pages"] for r in both) == expected["pages"]
    assert all(r["pages"] > 0 for r in both), "both processes should have taken work from the queue"
    # the last crawler out cleared the shared queue and dupe filter for the next run
    assert list(redis.Redis.from_url(REDIS_URL).scan_iter(f"{redis_prefix}:*")) == []
