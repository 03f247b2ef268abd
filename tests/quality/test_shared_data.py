"""Targets of the evaluation issue on the shared research data (skipped when ../shared is absent).

Nothing from these files is copied into the repository; they are read in place.
"""

from __future__ import annotations

import numpy as np
import pytest

from llm_worker.scoring.backends.lexicon import LexiconBackend
from llm_worker.training import datasets as ds
from llm_worker.training import quality_metrics as qm
from llm_worker.training.evaluate import evaluate
from tests.conftest import require_shared


def _folds():
    root = require_shared("sos1k")
    return [(ds.load(root / f"fold{k}_level.tsv"), ds.load(root / f"fold{k}_binary.tsv")) for k in range(1, 6)]


def test_lexicon_binary_f1_on_sos1k_is_at_least_70():
    files = [f for pair in _folds() for f in pair]
    doc, _ = evaluate(LexiconBackend(), "suicide", files, batch_size=256, progress=False)
    assert doc["pooled"]["sos_binary"]["binary_f1"] >= 0.70
    assert doc["pooled"]["sos_level"]["n"] == 999


@pytest.mark.parametrize("parts", [("smp2020_ewect", "usual_eval_labeled.txt"),
                                   ("clue_emotion2020", "valid.txt")])
def test_lexicon_positivity_auc_is_at_least_080(parts):
    data = ds.load(require_shared(*parts))
    doc, _ = evaluate(LexiconBackend(), "positivity", [data], batch_size=256, progress=False)
    assert doc["files"][0]["metrics"]["roc_auc"] >= 0.80


@pytest.mark.slow
def test_classifier_trained_on_four_folds_beats_the_lexicon_on_the_fifth():
    from llm_worker.training.train import Fold, train_suicide

    folds = _folds()
    model = train_suicide([Fold(lv, b) for lv, b in folds[:4]])
    test_level, test_binary = folds[4]
    levels, conf, _ = model.predict(test_level.texts)
    f1 = qm.binary_metrics(test_binary.labels, levels >= 6)["binary_f1"]
    lex = [r.scores["suicide_risk"].value for r in LexiconBackend().score_batch(
        [ds_input(t) for t in test_level.texts])]
    lex_f1 = qm.binary_metrics(test_binary.labels, np.array(lex) >= 6)["binary_f1"]
    assert f1 >= 0.80 and f1 > lex_f1
    assert qm.level_metrics(test_level.labels, levels)["weighted_f1"] >= 0.35
    assert ((conf > 0) & (conf <= 1)).all()


def ds_input(text: str):
    from llm_worker.scoring.backends.base import ScoreInput

    return ScoreInput("", text)
