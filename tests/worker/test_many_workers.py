"""Several worker processes on one database never score a comment twice."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from weibo_mh import db

from .seed import seed, states
from .test_cli import start

DIMS = 4


def run_workers(url: str, n_workers: int) -> list[str]:
    # A small per-batch delay stands in for a model, so that the processes overlap.
    procs = [start(url, "--backend", "null", "--once", "--batch-size", "16",
                   "--worker-id", f"w{i}", LLM_WORKER_NULL_DELAY="0.01") for i in range(n_workers)]
    errs = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
        errs.append(err)
    return errs


def check_scored_exactly_once(engine: sa.Engine, n: int) -> set[str]:
    st = states(engine)
    assert len(st) == n
    assert {s["score_status"] for s in st.values()} == {"done"}
    assert {s["attempts"] for s in st.values()} == {1}          # claimed exactly once
    s = db.scores.c
    with engine.connect() as conn:
        per_comment = conn.execute(sa.select(s.comment_id, sa.func.count()).group_by(s.comment_id)).all()
    assert len(per_comment) == n and {k for _, k in per_comment} == {DIMS}
    return {s["claimed_by"] for s in st.values()}


@pytest.mark.mysql
@pytest.mark.slow
def test_three_processes_on_mariadb_score_each_comment_once(mysql_url):
    eng = db.make_engine(mysql_url)
    seed(eng, 2000)
    errs = run_workers(mysql_url, 3)
    workers = check_scored_exactly_once(eng, 2000)
    assert len(workers) >= 2, errs      # they really ran side by side
    assert sum(int(e.split("event=summary claimed=")[1].split()[0]) for e in errs) == 2000
    eng.dispose()


@pytest.mark.slow
def test_three_processes_on_sqlite_score_each_comment_once(sqlite_url):
    eng = db.make_engine(sqlite_url)
    seed(eng, 600)
    errs = run_workers(sqlite_url, 3)
    check_scored_exactly_once(eng, 600)
    assert sum(int(e.split("event=summary claimed=")[1].split()[0]) for e in errs) == 600
    eng.dispose()
