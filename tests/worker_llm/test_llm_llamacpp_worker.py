"""`python -m llm_worker` against a real llama.cpp server (llama-cpp-python 0.3.36), with both
methods, and through the server being stopped and started again mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import sqlalchemy as sa

from tests.worker.seed import score_rows, seed, states
from tests.worker_llm.llama_server import ALIAS, LlamaServer
from tests.worker_llm.test_llm_worker_cli import run_worker
from weibo_mh import db
from weibo_mh.rubric import CORE_DIMENSIONS

TEXTS = ["今天又失眠了，好累。", "谢谢大家，开心的一天！", "不想说话。"]


def config(srv, method: str) -> str:
    return (f'[openai]\nbase_url = "{srv.base_url}"\nmodel = ""\nmethod = "{method}"\nconcurrency = 1\n'
            f'chat_template = "{srv.model}"\nbackoff_seconds = 0.05\nmax_retries = 1\n')


def test_the_worker_scores_with_both_methods_through_llama_cpp(tmp_path, sqlite_url, llama_server):
    engine = db.make_engine(sqlite_url)
    try:
        seed(engine, texts=TEXTS)
        for method in ("json", "likelihood"):
            if method == "likelihood":  # the same comments again, under the likelihood scorer's name
                with engine.begin() as conn:
                    conn.execute(sa.update(db.comments).values(score_status="pending", attempts=0))
            p = run_worker(tmp_path, sqlite_url, config(llama_server, method), "--backend", "openai")
            assert p.returncode == 0, p.stderr[-3000:]
            assert f"scorer=openai:{ALIAS}:{method}" in p.stderr
        rows = score_rows(engine)
        by = {s: [r for r in rows if r["scorer"] == f"openai:{ALIAS}:{s}"] for s in ("json", "likelihood")}
        assert len(by["json"]) == len(by["likelihood"]) == len(TEXTS) * len(CORE_DIMENSIONS)
        assert all(r["value"] == 10 and r["answer_mass"] > 0.9 for r in by["likelihood"])
        assert all(r["confidence"] is not None for r in by["json"])
    finally:
        engine.dispose()


@pytest.mark.slow
def test_a_llama_cpp_restart_mid_run_scores_every_comment_exactly_once(tmp_path, sqlite_url, tiny_gguf):
    n = 24
    engine = db.make_engine(sqlite_url)
    seed(engine, n=n)
    srv = LlamaServer(tiny_gguf, tmp_path / "server.log").start()
    cfg = tmp_path / "worker.toml"
    cfg.write_text(config(srv, "likelihood"), encoding="utf-8")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("DATABASE_URL", None)
    worker = subprocess.Popen([sys.executable, "-m", "llm_worker", "--config", str(cfg), "--db", sqlite_url,
                               "--once", "--backend", "openai", "--batch-size", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # stop the server once scoring has begun
            if any(s["score_status"] == "done" for s in states(engine).values()):
                break
            time.sleep(0.02)
        srv.stop()
        time.sleep(1.5)  # the worker finds it gone and waits
        srv.start()
        out, err = worker.communicate(timeout=180)
    finally:
        if worker.poll() is None:
            worker.kill()
        srv.stop()
    try:
        assert worker.returncode == 0, err[-3000:]
        assert "event=model_server_unavailable" in err and "event=model_server_back" in err
        got = states(engine)
        assert {s["score_status"] for s in got.values()} == {"done"}  # none failed
        rows = score_rows(engine)
        keys = [(r["comment_id"], r["dimension"]) for r in rows]
        assert len(keys) == len(set(keys)) == n * len(CORE_DIMENSIONS)  # each exactly once
    finally:
        engine.dispose()
