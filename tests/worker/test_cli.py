"""`python -m llm_worker` as a real process: exit codes, signals, requeue, crash recovery."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from weibo_mh import db

from .seed import score_rows, seed, states

ROOT = Path(__file__).resolve().parents[2]


def worker_cmd(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "llm_worker", "--db", url, *args]


def run(url: str, *args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(worker_cmd(url, *args), capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **env})


def start(url: str, *args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(worker_cmd(url, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1", **env})


def wait_for(engine, status: str, n: int, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sum(s["score_status"] == status for s in states(engine).values()) >= n:
            return
        time.sleep(0.1)
    raise AssertionError(f"never saw {n} comments {status}")


def test_once_drains_and_exits_0_with_a_structured_summary(engine, db_url):
    seed(engine, 50)
    r = run(db_url, "--backend", "null", "--once", "--batch-size", "16")
    assert r.returncode == 0, r.stderr
    assert "event=summary claimed=50 scored=50 failed=0" in r.stderr and " pending=0 " in r.stderr
    assert {s["score_status"] for s in states(engine).values()} == {"done"}
    assert {x["scorer"] for x in score_rows(engine)} == {"null:v1"}


def test_a_database_without_schema_exits_2_saying_what_to_run(tmp_path):
    r = run(f"sqlite:///{tmp_path / 'empty.db'}", "--backend", "null", "--once")
    assert r.returncode == 2
    assert "no such database file" in r.stderr and "weibo_mh.db migrate" in r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "empty.db").exists(), "a service never creates a database"


def test_an_unreachable_database_exits_2(tmp_path):
    r = run("mysql+pymysql://root@127.0.0.1:9/nothing", "--backend", "null", "--once")
    assert r.returncode == 2 and "cannot connect" in r.stderr and "Traceback" not in r.stderr


def test_a_bad_config_exits_2_naming_the_key(tmp_path, sqlite_url):
    bad = tmp_path / "bad.toml"
    bad.write_text("[worker]\nbatchsize = 3\n", encoding="utf-8")
    r = run(sqlite_url, "--config", str(bad), "--once")
    assert r.returncode == 2 and "worker.batchsize" in r.stderr and "Traceback" not in r.stderr


def test_bad_flags_exit_2(sqlite_url):
    assert run(sqlite_url, "--batch-size", "0").returncode == 2
    assert run(sqlite_url, "--backend", "gpt5").returncode == 2
    r = run(sqlite_url, "--backend", "null", "--worker-id", "w" * 200)
    assert r.returncode == 2 and "--worker-id" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run([sys.executable, "-m", "llm_worker", "requeue", "--scorer", "x"],
                       capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 2


def test_requeue_failed_and_status_from_the_command_line(engine, db_url):
    ids = seed(engine, 3)
    with engine.begin() as conn:
        conn.execute(db.comments.update().where(db.comments.c.id.in_(ids[:2]))
                     .values(score_status="failed", attempts=3, last_error="model said nonsense"))
    r = run(db_url, "status")
    assert "most common errors" in r.stdout and "2  model said nonsense" in r.stdout
    r = run(db_url, "requeue", "--failed")
    assert r.returncode == 0 and "requeued 2 failed comments" in r.stdout
    assert {s["attempts"] for s in states(engine).values()} == {0}
    run(db_url, "--backend", "null", "--once")
    r = run(db_url, "requeue", "--all", "--scorer", "lexicon:v3")
    assert "requeued 3 done comments not yet scored by lexicon:v3" in r.stdout
    r = run(db_url, "status")
    assert r.returncode == 0 and "pending" in r.stdout and "scored by null:v1: 3" in r.stdout
    assert "most common errors" not in r.stdout


def read_until(p: subprocess.Popen, text: str) -> str:
    """The worker's stderr up to the line holding ``text`` (a fixed sleep flaked under load)."""
    seen = ""
    assert p.stderr is not None
    while text not in seen:
        line = p.stderr.readline()
        assert line, f"the worker ended before logging {text!r}:\n{seen}"
        seen += line
    return seen


def test_sigterm_while_idle_exits_0(sqlite_url):
    p = start(sqlite_url, "--backend", "null")
    head = read_until(p, "event=start")  # logged once the signal handlers are in place
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=30)
    err = head + err
    assert p.returncode == 0, err
    assert "event=stopping reason=SIGTERM" in err and "event=summary" in err


@pytest.mark.slow
def test_sigterm_mid_batch_finishes_the_batch_in_hand(engine, db_url):
    seed(engine, 12)
    p = start(db_url, "--backend", "null", "--batch-size", "5", LLM_WORKER_NULL_DELAY="2")
    wait_for(engine, "claimed", 5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    st = states(engine)
    assert sorted(s["score_status"] for s in st.values()) == ["done"] * 5 + ["pending"] * 7
    assert len(score_rows(engine)) == 5 * 4


@pytest.mark.slow
def test_a_second_sigterm_releases_the_batch_without_counting_the_attempt(engine, db_url):
    seed(engine, 8)
    p = start(db_url, "--backend", "null", "--batch-size", "5", LLM_WORKER_NULL_DELAY="20")
    wait_for(engine, "claimed", 5)
    p.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "event=released comments=5" in err
    st = states(engine)
    assert {(s["score_status"], s["attempts"], s["claimed_by"]) for s in st.values()} == {("pending", 0, None)}
    assert score_rows(engine) == []


@pytest.mark.slow
def test_a_killed_worker_leaves_leases_that_expire_and_are_claimed_again(engine, db_url):
    ids = seed(engine, 10)
    p = start(db_url, "--backend", "null", "--batch-size", "4", "--lease-seconds", "1",
              "--worker-id", "doomed", LLM_WORKER_NULL_DELAY="60")
    wait_for(engine, "claimed", 4)
    p.kill()
    p.communicate(timeout=30)
    time.sleep(2.2)  # let the 1 s lease run out
    r = run(db_url, "--backend", "null", "--once", "--worker-id", "rescuer")
    assert r.returncode == 0, r.stderr
    st = states(engine)
    assert {s["score_status"] for s in st.values()} == {"done"}
    assert sorted(st[i]["attempts"] for i in ids) == [1] * 6 + [2] * 4
    assert {s["claimed_by"] for s in st.values()} == {"rescuer"}
    assert len(score_rows(engine)) == 10 * 4


@pytest.mark.slow
def test_a_live_worker_slower_than_its_lease_keeps_its_batch(engine, db_url):
    """Its heartbeat renews the 1 s lease through a 5 s batch, so a rival process finds nothing."""
    seed(engine, 4)
    p = start(db_url, "--backend", "null", "--batch-size", "4", "--lease-seconds", "1", "--once",
              "--worker-id", "slow", LLM_WORKER_NULL_DELAY="5")
    wait_for(engine, "claimed", 4)
    time.sleep(2.5)  # more than two leases
    rival = run(db_url, "--backend", "null", "--once", "--worker-id", "rival")
    assert rival.returncode == 0, rival.stderr
    assert "event=summary claimed=0 " in rival.stderr
    _, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "event=summary claimed=4 scored=4 failed=0" in err
    st = states(engine)
    assert {(s["score_status"], s["claimed_by"], s["attempts"]) for s in st.values()} == {("done", "slow", 1)}
    assert len(score_rows(engine)) == 4 * 4


def test_metrics_are_served_by_the_running_worker(sqlite_url):
    import socket
    import urllib.request

    eng = db.make_engine(sqlite_url)
    seed(eng, 7)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    p = start(sqlite_url, "--backend", "null", "--metrics-port", str(port))
    try:
        wait_for(eng, "done", 7)
        body = ""
        for _ in range(100):
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
                if 'llm_worker_scored_total{scorer="null:v1"} 7.0' in body:
                    break
            except OSError:
                pass
            time.sleep(0.1)
        assert 'llm_worker_scored_total{scorer="null:v1"} 7.0' in body
        assert 'llm_worker_up{scorer="null:v1"} 1.0' in body
    finally:
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=30)
        eng.dispose()
    assert p.returncode == 0
