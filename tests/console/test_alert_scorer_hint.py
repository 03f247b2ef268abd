"""A console.alert_scorer that no worker runs is said out loud: by fill-alerts (which then
creates nothing) and by the worker at start-up, instead of a silent 0 alerts."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import sqlalchemy as sa

from analysis.console.__main__ import main
from tests.console.seed import MACHINE
from weibo_mh.alert_queue import missing_scorer_hint

GHOST = "openai:THUDM/glm-4-9b-chat-hf"


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def test_fill_alerts_warns_when_the_scorer_has_no_scores(seeded: sa.Engine, capsys: Any, monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", seeded.url.render_as_string(hide_password=False))
    assert main(["fill-alerts", "--scorer", GHOST, "--threshold", "7"]) == 0
    out = capsys.readouterr()
    assert f"0 new alerts from {GHOST}" in out.out
    assert f"warning: scorer {GHOST} has no suicide_risk scores" in out.err and MACHINE in out.err
    assert main(["fill-alerts", "--scorer", MACHINE, "--threshold", "9"]) == 0
    assert main(["fill-alerts", "--scorer", MACHINE, "--threshold", "9"]) == 0  # nothing new: no hint
    assert "warning" not in capsys.readouterr().err


def test_the_worker_warns_at_start_up(seeded: sa.Engine, caplog: Any) -> None:
    from llm_worker.__main__ import _warn_about_the_alert_scorer
    from tests.console.conftest import make_cfg

    cfg = make_cfg(seeded.url.render_as_string(hide_password=False), alert_scorer=GHOST)
    with caplog.at_level(logging.WARNING):
        _warn_about_the_alert_scorer(cfg, "lexicon:v2", seeded)
    assert "event=alert_scorer_idle" in caplog.text and GHOST in caplog.text
    caplog.clear()
    cfg.console.alert_scorer = MACHINE  # a scorer with scores: no warning
    _warn_about_the_alert_scorer(cfg, "transformers:x", seeded)
    assert not caplog.text


def test_hint_on_an_empty_database(sqlite_url: str) -> None:
    eng = sa.create_engine(sqlite_url)
    with eng.connect() as conn:
        assert "no scorer has written scores yet" in missing_scorer_hint(conn, GHOST)
    eng.dispose()
