"""Mood disorder and substance use on the project's own sentences (issue 24, point 5).

``data/mood_substance.tsv`` was written for this test before any of the lexicon's errors on it
were looked at: for each dimension, signs at every level from 3 to 10 of the scale (SCALES.md),
the look-alikes the issue names (a sad day, exam stress, a sad song, a drama character, 抑郁
said loosely; cold medicine, a toast, a hangover joke, a pharmacy ad, smoking in a film,
sleeping pills kept for a suicide plan, which is suicide risk and not substance use) and a few
everyday sentences. Targets: ROC AUC >= 0.90 of signs against the rest, look-alikes <= 2.
"""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from llm_worker.scoring.backends.base import ScoreInput
from llm_worker.scoring.backends.lexicon import LexiconBackend
from llm_worker.training import quality_metrics as qm

DATA = Path(__file__).parent / "data" / "mood_substance.tsv"
DIMENSIONS = ("mood_disorder", "substance_use")


def _rows(dimension: str) -> list[dict[str, str]]:
    with DATA.open(encoding="utf-8", newline="") as f:
        return [r for r in csv.DictReader(f, delimiter="\t") if r["dimension"] == dimension]


def _scores(dimension: str, texts: list[str]) -> list[int]:
    results = LexiconBackend().score_batch([ScoreInput("", t) for t in texts])
    return [int(r.scores[dimension].value) for r in results]


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_the_file_covers_every_level_and_the_look_alikes(dimension):
    rows = _rows(dimension)
    assert len(rows) >= 60
    signs = {int(r["level"]) for r in rows if r["kind"] == "sign"}
    assert signs == set(range(3, 11))
    assert all(int(r["level"]) <= 2 for r in rows if r["kind"] != "sign")
    assert sum(r["kind"] == "look-alike" for r in rows) >= 20


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_signs_rank_above_the_rest(dimension):
    rows = _rows(dimension)
    scores = _scores(dimension, [r["text"] for r in rows])
    auc = qm.auc_metrics([int(r["kind"] == "sign") for r in rows], scores)["roc_auc"]
    assert auc is not None and auc >= 0.90, f"{dimension} AUC {auc:.3f}"


@pytest.mark.parametrize("dimension", DIMENSIONS)
def test_look_alikes_score_2_at_most(dimension):
    rows = [r for r in _rows(dimension) if r["kind"] == "look-alike"]
    scores = _scores(dimension, [r["text"] for r in rows])
    wrong = [(r["text"], s) for r, s in zip(rows, scores, strict=True) if s > 2]
    assert not wrong, wrong


def test_sleeping_pills_kept_for_a_plan_are_suicide_risk_not_substance_use():
    texts = [r["text"] for r in _rows("substance_use") if "安眠药" in r["text"] and r["kind"] == "look-alike"]
    results = LexiconBackend().score_batch([ScoreInput("", t) for t in texts])
    assert texts and all(r.scores["suicide_risk"].value >= 6 for r in results)
