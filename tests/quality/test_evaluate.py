"""python -m llm_worker.training.evaluate on the project's own labelled files, through the backend registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llm_worker.training import evaluate

DATA = Path(__file__).parent / "data"


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = evaluate.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_suicide_task_on_level_and_binary_files(tmp_path, capsys):
    code, out, _ = run(capsys, "--backend", "lexicon", "--task", "suicide", "--quiet",
                       "--data", DATA / "sos_level.tsv", "--data", DATA / "sos_binary.tsv",
                       "--json", tmp_path / "m.json", "--report", tmp_path / "rep")
    assert code == 0
    assert "weighted_f1=" in out and "binary_f1=" in out and "comments/s" in out
    doc = json.loads((tmp_path / "m.json").read_text())
    assert doc["backend"] == "lexicon:v3" and doc["task"] == "suicide"
    level, binary = doc["files"]
    assert set(level["metrics"]) >= {"accuracy", "weighted_f1", "macro_f1", "mae"}
    assert binary["metrics"]["binary_f1"] > 0.7   # the lexicon on sentences written to be clear
    assert doc["timing"]["comments"] == 88 and doc["timing"]["comments_per_second"] > 0
    report = (tmp_path / "rep" / "report.md").read_text()
    assert "research signals" in report and "![sos_level.tsv]" in report
    assert len(list((tmp_path / "rep").glob("matrix_*.png"))) == 2
    assert "- `suicide_risk` (evaluated here): lexicon" in report
    assert "- `positivity`: lexicon" in report


def test_the_report_says_where_every_score_comes_from(capsys):
    code, out, _ = run(capsys, "--backend", "lexicon", "--task", "positivity", "--quiet",
                       "--data", DATA / "emotion_list.json")
    assert code == 0
    assert "positivity, mood_disorder, substance_use, suicide_risk from: lexicon" in out


def test_positivity_task_on_both_emotion_formats(tmp_path, capsys):
    code, out, _ = run(capsys, "--backend", "lexicon", "--task", "positivity", "--quiet",
                       "--data", DATA / "emotion_list.json", "--data", DATA / "emotion_lines.jsonl",
                       "--json", tmp_path / "p.json")
    assert code == 0
    doc = json.loads((tmp_path / "p.json").read_text())
    first = doc["files"][0]["metrics"]
    assert first["n"] == 10            # neutral and surprise left out
    assert first["roc_auc"] > 0.8
    assert "emotion" in doc["pooled"]


def test_distortion_task_says_it_is_a_proxy(tmp_path, capsys):
    code, out, _ = run(capsys, "--backend", "lexicon", "--task", "distortion", "--quiet",
                       "--data", DATA / "distortion.tsv", "--report", tmp_path / "r")
    assert code == 0
    assert "proxy" in out
    assert "proxy" in (tmp_path / "r" / "report.md").read_text()


def test_limit_scores_only_the_first_rows(tmp_path, capsys):
    code, _, _ = run(capsys, "--backend", "lexicon", "--task", "suicide", "--quiet", "--limit", "5",
                     "--data", DATA / "sos_level.tsv", "--json", tmp_path / "m.json")
    assert code == 0
    assert json.loads((tmp_path / "m.json").read_text())["files"][0]["rows"] == 5


@pytest.mark.parametrize("name, where", [("bad_level.tsv", "bad_level.tsv:3:"),
                                         ("bad_lines.jsonl", "bad_lines.jsonl:2:")])
def test_a_malformed_file_exits_2_naming_the_line(capsys, name, where):
    code, _, err = run(capsys, "--backend", "lexicon", "--task", "suicide", "--data", DATA / name)
    assert code == 2
    assert where in err and "Traceback" not in err


def test_a_file_of_another_task_is_refused(capsys):
    code, _, err = run(capsys, "--backend", "lexicon", "--task", "suicide",
                       "--data", DATA / "emotion_list.json")
    assert code == 2 and "positivity" in err


def test_an_unknown_backend_is_refused(capsys):
    code, _, err = run(capsys, "--backend", "nonesuch", "--task", "suicide", "--data", DATA / "sos_level.tsv")
    assert code == 2 and "nonesuch" in err


def test_the_classifier_without_a_model_says_how_to_train(tmp_path, capsys):
    code, _, err = run(capsys, "--backend", "classifier", "--model", tmp_path / "none.joblib",
                       "--task", "suicide", "--data", DATA / "sos_level.tsv")
    assert code == 2 and "llm_worker.training.train" in err


class _HalfBroken:
    """A scorer that fails every other comment: evaluate must count failures, not guess scores."""

    name = "half-broken"
    dimensions = ("suicide_risk",)

    def score_batch(self, items):
        from llm_worker.scoring.backends.base import DimensionScore, ScoreResult

        return [ScoreResult(scores={"suicide_risk": DimensionScore(7)}) if i % 2 == 0
                else ScoreResult(error="model said nonsense") for i, _ in enumerate(items)]

    def close(self):
        pass


def test_failed_items_are_counted_and_left_out_of_the_metrics():
    from llm_worker.training import datasets as ds

    data = ds.load(DATA / "sos_level.tsv")
    doc, _ = evaluate.evaluate(_HalfBroken(), "suicide", [data], batch_size=4, progress=False)
    f = doc["files"][0]
    assert f["failed"] == 22 and f["first_error"] == "model said nonsense"
    assert f["metrics"]["n"] == 22


def test_a_backend_without_sources_is_credited_as_a_whole():
    from llm_worker.scoring.backends.base import sources_of

    class Plain:
        name = "plain:v0"
        dimensions = ("suicide_risk",)

    assert set(sources_of(Plain()).values()) == {"plain:v0"}
    assert "positivity" in sources_of(Plain())   # the core dimensions are always listed
