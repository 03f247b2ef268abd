"""`make demo`, end to end: the real Makefile recipe, site, scheduler, spider, worker and report.

It runs the demo's own recipe (`make demo-run`, which `make demo` calls after the
install) with a copy of configs/demo.toml that points at a free port and a
temporary database, twice, and checks that the second run duplicates nothing.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
from weibo.localsite.demo_corpus import DAYS, HIGH_RISK, build_corpus

from tests.conftest import ROOT
from weibo_mh import db

CORPUS = build_corpus()
N_COMMENTS = sum(len(p["comments_list"]) for t in CORPUS["topics"] for p in t["posts"])
HISTORY = DAYS * 2  # the demo's earlier hot-search snapshots, one crawl run each (demo-history)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_config(tmp_path: Path, port: int) -> Path:
    text = (ROOT / "configs" / "demo.toml").read_text(encoding="utf-8")
    text = text.replace("127.0.0.1:8765", f"127.0.0.1:{port}")
    text = text.replace('url = "sqlite:///data/demo.db"', f'url = "sqlite:///{tmp_path}/demo.db"')
    text = text.replace('lock_file = "data/demo-crawl.lock"',
                        f'lock_file = "{tmp_path}/crawl.lock"\nlog_dir = "{tmp_path}/logs"')
    assert str(port) in text and str(tmp_path) in text
    path = tmp_path / "demo.toml"
    path.write_text(text, encoding="utf-8")
    return path


def make_demo(tmp_path: Path, config: Path, port: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "demo-run", f"BIN={Path(sys.executable).parent}",
         f"DEMO_CONFIG={config}", f"DEMO_PORT={port}", f"DEMO_LOG={tmp_path}/site.log",
         f"DEMO_REPORT={tmp_path}/report"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_make_demo_runs_the_whole_pipeline_and_can_run_again(tmp_path):
    port = free_port()
    config = demo_config(tmp_path, port)
    first = make_demo(tmp_path, config, port)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "Done." in first.stdout

    eng = db.make_engine(f"sqlite:///{tmp_path}/demo.db")

    def counts() -> dict[str, int]:
        with eng.connect() as conn:
            return {t: conn.execute(sa.select(sa.func.count()).select_from(db.metadata.tables[t])).scalar()
                    for t in ("topics", "posts", "comments", "scores", "crawl_runs")}

    after_first = counts()
    # lexicon:v3 and the demo's own labels (human:demo), four dimensions each
    assert after_first == {"topics": 11, "posts": 17, "comments": N_COMMENTS, "scores": 8 * N_COMMENTS,
                           "crawl_runs": 1 + HISTORY}
    with eng.connect() as conn:
        days = conn.execute(sa.select(sa.func.count(sa.distinct(sa.func.date(db.comments.c.created_at))))).scalar()
        texts = conn.execute(sa.select(db.comments.c.text)).scalars().all()
    assert days >= 12  # two weeks of comments, not one crawl day
    assert all(sum(t.startswith(h) for t in texts) == 1 for h, _ in HIGH_RISK)
    report = tmp_path / "report"
    html = (report / "index.html").read_text(encoding="utf-8")
    for name in re.findall(r"""(?:src|href)=["']([^"'#:]+)["']""", html):
        assert (report / name).exists(), name
    assert (report / "alerts.md").exists() and "alerts.md" in html

    second = make_demo(tmp_path, config, port)
    assert second.returncode == 0, second.stdout + second.stderr
    assert counts() == {**after_first, "crawl_runs": 2 + HISTORY}
    with eng.connect() as conn:
        statuses = dict(conn.execute(sa.select(db.crawl_runs.c.status, sa.func.count())
                                     .group_by(db.crawl_runs.c.status)).all())
        assert conn.execute(sa.select(sa.func.max(db.comments.c.attempts))).scalar() == 1
    eng.dispose()
    assert statuses == {"ok": 2 + HISTORY}


def test_make_demo_refuses_a_port_in_use(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        out = make_demo(tmp_path, demo_config(tmp_path, port), port)
    assert out.returncode != 0
    assert f"port {port} is in use" in out.stderr
