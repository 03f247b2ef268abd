"""A model server that goes away costs no attempts; progress lines say what is true.

The fake OpenAI server injects the faults (5xx storms, a closed port); the real llama.cpp
server's stop and restart is in test_llm_llamacpp_worker.py.
"""

from __future__ import annotations

import io
import logging
import threading

from llm_worker import worker as worker_mod
from llm_worker.scoring.backends.openai_compat import OpenAIBackend
from tests.worker.helpers import Recording, make_worker
from tests.worker.seed import seed, states
from tests.worker_llm.llama_server import free_port
from weibo_mh import db
from weibo_mh.progress import Progress, rate_text

TEXTS = ["今天阳光很好。", "最近总是睡不着。", "谢谢大家。", "好累。"]


def test_a_5xx_storm_hands_the_batch_back_uncounted_and_the_worker_resumes(sqlite_url, fake_openai, caplog):
    engine = db.make_engine(sqlite_url)
    try:
        seed(engine, texts=TEXTS)
        b = OpenAIBackend(fake_openai.base_url, "fake-glm", concurrency=2, backoff=0.01, max_retries=1)
        w = make_worker(engine, b, batch_size=2, max_attempts=1)
        assert w.prepare_backend()
        fake_openai.mode = "503"
        threading.Timer(1.2, lambda: setattr(fake_openai, "mode", "good")).start()
        with caplog.at_level(logging.INFO, logger="llm_worker"):
            stats = w.run()
        assert w.gave_up is None
        got = states(engine)
        # max_attempts = 1: had the outage counted, every comment would have failed
        assert {s["score_status"] for s in got.values()} == {"done"}
        assert {s["attempts"] for s in got.values()} == {1}
        assert stats.scored == len(TEXTS) and stats.failed == 0 and stats.released >= 2
        assert caplog.text.count("event=model_server_unavailable") == 1  # once, not per retry
        assert "event=model_server_back" in caplog.text
    finally:
        engine.dispose()


def test_max_items_counts_only_what_was_kept_and_an_outage_claims_one_at_a_time(sqlite_url, fake_openai):
    engine = db.make_engine(sqlite_url)
    try:
        seed(engine, texts=TEXTS)
        b = OpenAIBackend(fake_openai.base_url, "fake-glm", concurrency=2, backoff=0.01, max_retries=0)
        w = make_worker(engine, b, batch_size=2, max_items=len(TEXTS))
        assert w.prepare_backend()
        claims: list[tuple[int, bool]] = []
        claim = w.queue.claim

        def recording_claim(limit: int) -> list:
            claims.append((limit, w._outage is not None))
            return claim(limit)

        w.queue.claim = recording_claim
        fake_openai.mode = "503"
        threading.Timer(1.2, lambda: setattr(fake_openai, "mode", "good")).start()
        stats = w.run()
        # the comments handed back during the outage are not counted against --max-items
        assert stats.scored == len(TEXTS) and stats.claimed == len(TEXTS)
        assert {s["score_status"] for s in states(engine).values()} == {"done"}
        during = [limit for limit, away in claims if away]
        assert claims[0] == (2, False) and during and set(during) == {1}
    finally:
        engine.dispose()


def test_once_gives_up_with_a_non_zero_status_when_the_server_never_answered(sqlite_url, tmp_path):
    from tests.worker_llm.test_llm_worker_cli import run_worker

    engine = db.make_engine(sqlite_url)
    seed(engine, texts=TEXTS)
    engine.dispose()
    url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    p = run_worker(tmp_path, sqlite_url, f'[openai]\nbase_url = "{url}"\nbackoff_seconds = 0.01\n'
                   'max_retries = 0\n', "--backend", "openai")
    assert p.returncode == 1, p.stderr[-2000:]
    assert "never answered" in p.stderr and "Traceback" not in p.stderr
    engine = db.make_engine(sqlite_url)
    try:
        assert {(s["score_status"], s["attempts"]) for s in states(engine).values()} == {("pending", 0)}
    finally:
        engine.dispose()


def test_once_gives_up_after_a_long_outage(sqlite_url, fake_openai, monkeypatch):
    monkeypatch.setattr(worker_mod, "ONCE_OUTAGE_SECONDS", 0.3)
    engine = db.make_engine(sqlite_url)
    try:
        seed(engine, texts=TEXTS)
        w = make_worker(engine, OpenAIBackend(fake_openai.base_url, "fake-glm", backoff=0.01, max_retries=0))
        assert w.prepare_backend()
        fake_openai.mode = "500"
        w.run()
        assert w.gave_up and "model server unavailable" in w.gave_up
        assert {(s["score_status"], s["attempts"]) for s in states(engine).values()} == {("pending", 0)}
    finally:
        engine.dispose()


def test_rates_have_two_significant_figures():
    assert [rate_text(x) for x in (0, 0.0123, 0.05, 0.5, 3.456, 57.3, 1234.5)] == \
        ["0", "0.012", "0.05", "0.5", "3.5", "57", "1234"]


def test_pending_is_counted_after_the_write_back(sqlite_url, caplog):
    engine = db.make_engine(sqlite_url)
    try:
        seed(engine, texts=TEXTS)
        w = make_worker(engine, Recording(), batch_size=2)
        w.progress = Progress(stream=io.StringIO(), tty=False, log_every=0)
        with caplog.at_level(logging.INFO, logger="llm_worker"):
            w.run()
        pending = [int(line.split("pending=")[1].split()[0]) for line in caplog.messages
                   if line.startswith("event=progress")]
        assert pending == [2, 0]
    finally:
        engine.dispose()
