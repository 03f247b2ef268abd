"""The database dies mid-crawl: a throwaway MariaDB, SIGKILLed by its PID and restarted.

- An outage shorter than the store's retries costs nothing: the batches wait and go in.
- An outage that outlasts the crawl fails the run (exit 1) instead of recording ``ok``,
  and the next crawl, seeing a run that ended without a record, pages every post in
  full, so that all the data is there afterwards.

Never the shared server: ThrowawayMariaDB (tests/reliability/faults.py) runs its own.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from weibo.localsite import LocalSite
from weibo.localsite.demo_corpus import build_corpus

from tests.reliability.faults import ThrowawayMariaDB, table_counts, throwaway_server
from tests.spider.helpers import PY, SPIDER_DIR, crawl_env, run_crawl, runs, write_config

pytestmark = [pytest.mark.mysql, pytest.mark.slow]

CORPUS = build_corpus(comments_per_post=22)
CRAWLED = [t for t in CORPUS["topics"] if not t["is_ad"]]
EXPECTED = {"topics": len(CRAWLED),
            "posts": len({p["mid"] for t in CRAWLED for p in t["posts"]}),
            "comments": len({c["id"] for t in CRAWLED for p in t["posts"] for c in p["comments_list"]})}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[ThrowawayMariaDB]:
    if not ThrowawayMariaDB.available():
        pytest.fail("mariadb-install-db / mariadbd not installed (apt-get install mariadb-server)")
    with throwaway_server(tmp_path_factory.mktemp("mariadb")) as m:
        yield m


@pytest.fixture
def url(server) -> str:
    if server.proc is None or server.proc.poll() is not None:
        server.start()
    return server.new_database(f"wmh_{uuid.uuid4().hex[:8]}")


def stored(url: str) -> dict[str, int]:
    c = table_counts(url)
    return {k: c[k] for k in EXPECTED}


def wait_for_comments(url: str, n: int, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if table_counts(url)["comments"] >= n:
                return
        except Exception:  # noqa: BLE001, S110 - the tables may be locked a moment
            pass
        time.sleep(0.1)
    raise AssertionError("the crawl did not store comments in time")


def start_crawl(config: Path, url: str, *settings: str) -> subprocess.Popen[str]:
    cmd = [PY, "-m", "scrapy", "crawl", "hot_topics"]
    for s in settings:
        cmd += ["-s", s]
    return subprocess.Popen(cmd, cwd=SPIDER_DIR, env=crawl_env(config, url), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def test_a_short_outage_mid_crawl_costs_nothing(server, url, tmp_path):
    with LocalSite(CORPUS, delay=0.02) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 2\nflush_items = 20")
        proc = start_crawl(config, url)
        try:
            wait_for_comments(url, 40, proc)
            server.kill()
            time.sleep(3)
            server.start()
            output, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, output[-5000:]
    assert "connection lost" in output  # the outage happened, and was ridden out
    assert stored(url) == EXPECTED
    last = runs(url)[-1]
    assert last["status"] == "ok" and last["stats"]["rows_lost"] == 0
    assert last["comments_new"] == EXPECTED["comments"]


def test_an_outage_to_the_end_fails_the_run_and_the_next_crawl_fetches_everything(server, url, tmp_path):
    with LocalSite(CORPUS, delay=0.01) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 2\nflush_items = 20")
        proc = start_crawl(config, url, "STORE_RETRY_ATTEMPTS=2")
        try:
            wait_for_comments(url, 40, proc)
            server.kill()
            output, _ = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 1, output[-5000:]
        assert "could not be written (lost to database errors)" in output
        server.start()
        partial = stored(url)
        assert partial["comments"] < EXPECTED["comments"]
        assert runs(url)[-1]["status"] == "running"  # it could not record its end
        # the re-crawl: the run without a record makes it page every post in full
        again = run_crawl(config, url, timeout=300)
    assert again.ok, again.output[-5000:]
    assert "paging every post's comments in full" in again.output
    assert stored(url) == EXPECTED
    assert runs(url)[-1]["status"] == "ok"
