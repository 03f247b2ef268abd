"""python -m llm_worker.training.train on the project's own sentences, and the classifier backend it feeds."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import pytest

from llm_worker.scoring.backends import make_backend
from llm_worker.scoring.backends.base import Backend, ScoreInput, validate_result
from llm_worker.training import evaluate, train
from weibo_mh.config import load_config
from weibo_mh.rubric import CORE_DIMENSIONS, EXTENDED_DIMENSIONS

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "tiny.joblib"
    code = train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"),
                       "--data", str(DATA / "sos_binary.tsv"), "--data", str(DATA / "emotion_lines.jsonl"),
                       "--out", str(out)])
    assert code == 0
    return out


def test_the_saved_model_carries_its_metadata(model_path):
    bundle = joblib.load(model_path)
    meta = bundle["meta"]
    assert meta["task"] == "suicide" and meta["research_use_only"] is True
    assert {f["name"] for f in meta["files"]} == {"sos_level.tsv", "sos_binary.tsv", "emotion_lines.jsonl"}
    assert all(len(f["sha256"]) == 64 for f in meta["files"])
    assert meta["sklearn"] and meta["features"]["char_ngrams"]
    assert meta["positivity"] == "model blended with lexicon"
    assert meta["threshold"] == bundle["suicide"].threshold_


def test_the_decision_threshold_is_chosen_by_inner_cross_validation():
    """Enough rows: the threshold comes from out-of-fold probabilities on the training rows."""
    from llm_worker.scoring.classifier_model import SuicideModel

    rows = [line.split("\t") for line in (DATA / "sos_level.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    texts, levels = [r[0] for r in rows] * 2, [int(r[1]) for r in rows] * 2
    model = SuicideModel().fit(texts, levels)
    assert 0.30 <= model.threshold_ <= 0.70 and 0.0 <= model.inner_f1_ <= 1.0
    assert SuicideModel(threshold=0.6).fit(texts, levels).threshold_ == 0.6


def test_the_registry_builds_the_classifier_from_the_model(model_path):
    b = make_backend("classifier", load_config(), model=str(model_path))
    assert isinstance(b, Backend)
    assert b.name.startswith("classifier:tiny-") and b.dimensions == CORE_DIMENSIONS
    results = b.score_batch([ScoreInput("话题", t) for t in
                             ("我已经吃了一瓶安眠药，永别了", "今天去超市买了好多水果", "", "😂")])
    assert all(validate_result(r, CORE_DIMENSIONS) is r for r in results)
    assert results[0].scores["suicide_risk"].value > results[1].scores["suicide_risk"].value
    for r in results:
        assert 0 < r.scores["suicide_risk"].confidence <= 1


def test_the_classifier_scores_the_extended_rubric_and_explains(model_path):
    from llm_worker.scoring.backends.classifier import ClassifierBackend

    b = ClassifierBackend(model_path, dimensions=EXTENDED_DIMENSIONS, explain=True)
    (r,) = b.score_batch([ScoreInput("t", "每天喝酒，已经上瘾，还总是幻听")])
    assert validate_result(r, EXTENDED_DIMENSIONS) is r
    assert "P(high risk)" in r.scores["suicide_risk"].rationale


def test_the_classifier_is_deterministic(model_path):
    from llm_worker.scoring.backends.classifier import ClassifierBackend

    items = [ScoreInput("t", t) for t in ("想死", "好开心", "计划好了月底烧炭")]
    a = [r.scores["suicide_risk"].value for r in ClassifierBackend(model_path).score_batch(items)]
    b = [r.scores["suicide_risk"].value for r in ClassifierBackend(model_path).score_batch(items)]
    assert a == b


def test_evaluate_runs_the_trained_classifier(model_path, tmp_path, capsys):
    code = evaluate.main(["--backend", "classifier", "--model", str(model_path), "--task", "suicide",
                          "--quiet", "--data", str(DATA / "sos_binary.tsv"), "--json", str(tmp_path / "m.json")])
    assert code == 0
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["backend"].startswith("classifier:")
    assert doc["files"][0]["metrics"]["binary_f1"] > 0.8   # it has seen these sentences
    src = doc["sources"]
    assert src["suicide_risk"].startswith("trained model")
    assert src["positivity"].startswith("trained emotion head")   # the model has one
    assert src["mood_disorder"].startswith("lexicon") and src["substance_use"].startswith("lexicon")


def test_cross_validation_uses_one_fold_per_level_file(tmp_path, capsys):
    lines = (DATA / "sos_level.tsv").read_text().splitlines()
    blines = (DATA / "sos_binary.tsv").read_text().splitlines()
    args = []
    for k in range(2):
        (tmp_path / f"f{k}_level.tsv").write_text("\n".join([lines[0]] + lines[1 + k::2]) + "\n")
        (tmp_path / f"f{k}_binary.tsv").write_text("\n".join([blines[0]] + blines[1 + k::2]) + "\n")
        args += ["--data", str(tmp_path / f"f{k}_binary.tsv"), "--data", str(tmp_path / f"f{k}_level.tsv")]
    code = train.main(["--task", "suicide", "--cv", "--json", str(tmp_path / "cv.json"), *args])
    assert code == 0
    res = json.loads((tmp_path / "cv.json").read_text())
    assert [r["fold"] for r in res["folds"]] == ["f0_level.tsv", "f1_level.tsv"]
    assert set(res["mean"]) >= {"weighted_f1", "mae", "binary_f1"}


def test_binary_labels_must_match_a_level_file(tmp_path, capsys):
    (tmp_path / "other_binary.tsv").write_text("comment\ttwoClass\n别的句子\t1\n")
    code = train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"),
                       "--data", str(tmp_path / "other_binary.tsv"), "--out", str(tmp_path / "m.joblib")])
    assert code == 2
    assert "same texts" in capsys.readouterr().err


def test_train_refuses_malformed_and_wrong_files(tmp_path, capsys):
    assert train.main(["--task", "suicide", "--data", str(DATA / "bad_range.tsv"),
                       "--out", str(tmp_path / "m.joblib")]) == 2
    assert "bad_range.tsv:3:" in capsys.readouterr().err
    assert train.main(["--task", "suicide", "--data", str(DATA / "distortion.tsv"),
                       "--out", str(tmp_path / "m.joblib")]) == 2
    assert train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv")]) == 2
    assert not (tmp_path / "m.joblib").exists()
