"""Any mix of level files: a level file without binary labels takes level >= 6, and the CV
protocol spreads rows without folds (SOS-4K) over the folds by a stable hash of their text."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import joblib

from llm_worker.training import datasets as ds
from llm_worker.training import evaluate, train
from tests.conftest import require_shared

DATA = Path(__file__).parent / "data"


def _level_rows() -> list[str]:
    return (DATA / "sos_level.tsv").read_text(encoding="utf-8").splitlines()[1:]


def _write(path: Path, rows: list[str]) -> Path:
    path.write_text("comment\tmyLabel\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_a_level_file_without_binary_labels_takes_level_6_and_says_so(tmp_path, capsys):
    extra = _write(tmp_path / "newer_level.tsv", [r.replace("\t", "，真的\t", 1) for r in _level_rows()])
    out = tmp_path / "m.joblib"
    code = train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"),
                       "--data", str(DATA / "sos_binary.tsv"), "--data", str(extra), "--out", str(out)])
    assert code == 0
    err = capsys.readouterr().err
    assert "level >= 6 for newer_level.tsv (no binary file)" in err
    meta = joblib.load(out)["meta"]
    assert meta["binary_labels"] == {"sos_level.tsv": "sos_binary.tsv", "newer_level.tsv": "level >= 6"}


def test_level_files_alone_train_and_say_where_high_risk_comes_from(tmp_path, capsys):
    out = tmp_path / "m.joblib"
    assert train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"), "--out", str(out)]) == 0
    assert "high/low labels from level >= 6 (no binary files)" in capsys.readouterr().err
    assert joblib.load(out)["meta"]["binary_labels"] == {"sos_level.tsv": "level >= 6"}


def test_a_fold_without_binary_file_derives_its_labels():
    level = ds.load(DATA / "sos_level.tsv")
    fold = train.Fold(level, None)
    assert fold.binary_labels == [int(y >= 6) for y in fold.levels]
    assert fold.binary_source == "level >= 6"


def test_the_hash_fold_is_stable_and_keeps_duplicates_together():
    # The protocol's rule, spelled out: it must give the same folds on every machine and Python.
    assert ds.hash_fold("今天天气真好", 5) == int(hashlib.sha256("今天天气真好".encode()).hexdigest()[:16], 16) % 5
    assert ds.hash_fold("  不想活了 ", 5) == ds.hash_fold("不想活了", 5)
    data = ds.load(DATA / "sos_level.tsv")
    parts = ds.split_by_hash(data, 5)
    assert sum(len(p) for p in parts) == len(data)
    assert all(ds.hash_fold(e.text, 5) == k for k, p in enumerate(parts) for e in p.examples)
    assert parts[0].path.name == "sos_level.tsv#fold1"


def _two_folds(tmp_path: Path) -> list[str]:
    lines = (DATA / "sos_level.tsv").read_text().splitlines()
    blines = (DATA / "sos_binary.tsv").read_text().splitlines()
    args = []
    for k in range(2):
        (tmp_path / f"f{k}_level.tsv").write_text("\n".join([lines[0]] + lines[1 + k::2]) + "\n")
        (tmp_path / f"f{k}_binary.tsv").write_text("\n".join([blines[0]] + blines[1 + k::2]) + "\n")
        args += ["--data", str(tmp_path / f"f{k}_level.tsv"), "--data", str(tmp_path / f"f{k}_binary.tsv")]
    return args


def test_cv_spreads_rows_without_folds_by_hash_and_reports_them_apart(tmp_path, capsys):
    spread = _write(tmp_path / "newer.tsv", [r.replace("\t", "。唉\t", 1) for r in _level_rows()])
    out = tmp_path / "cv.json"
    code = train.main(["--task", "suicide", "--cv", *_two_folds(tmp_path), "--cv-spread", str(spread),
                       "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr()
    assert "spread over the folds by a hash of their text" in printed.err
    assert "spread rows: binary_f1=" in printed.out and "(mean ± fold SD)" in printed.out
    res = json.loads(out.read_text())
    n = len(_level_rows())
    per_fold = [sum(ds.hash_fold(t, 2) == k for t in ds.load(spread).texts) for k in range(2)]
    assert res["protocol"]["spread_rows_per_fold"] == per_fold and sum(per_fold) == n
    assert res["protocol"]["spread_rows_trained_on"] is True
    assert res["protocol"]["binary_labels"] == {"f0_level.tsv": "f0_binary.tsv", "f1_level.tsv": "f1_binary.tsv"}
    for part in (res, res["spread"], res["all"]):
        assert set(part["mean"]) == set(part["sd"]) >= {"binary_f1", "weighted_f1"}
    assert [r["spread"]["n"] for r in res["folds"]] == per_fold
    assert [r["all"]["n"] for r in res["folds"]] == [r["n"] + r["spread"]["n"] for r in res["folds"]]
    assert sum(map(sum, res["pooled_level_matrix"]["matrix"])) == 2 * n
    assert len(res["out_of_fold"]) == 2 * n


def test_cv_spread_test_only_scores_the_same_rows_without_training_on_them(tmp_path, capsys):
    spread = _write(tmp_path / "newer.tsv", [r.replace("\t", "。唉\t", 1) for r in _level_rows()])
    out = tmp_path / "cv.json"
    assert train.main(["--task", "suicide", "--cv", *_two_folds(tmp_path), "--cv-spread", str(spread),
                       "--cv-spread-test-only", "--json", str(out)]) == 0
    assert "(scored, never trained on)" in capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["protocol"]["spread_rows_trained_on"] is False
    assert sum(r["spread"]["n"] for r in res["folds"]) == len(_level_rows())


def test_cv_spread_is_refused_without_cv(tmp_path, capsys):
    code = train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"),
                       "--cv-spread", str(DATA / "sos_level.tsv"), "--out", str(tmp_path / "m.joblib")])
    assert code == 2 and "--cv-spread is for --cv" in capsys.readouterr().err
    code = train.main(["--task", "suicide", "--cv", *_two_folds(tmp_path), "--cv-spread-test-only"])
    assert code == 2 and "needs --cv-spread" in capsys.readouterr().err


def test_sos4k_reads_as_a_level_file_and_pairs_beside_the_five_folds():
    """The shared SOS-4K file as it is: no binary labels, so level >= 6 (skips without ../shared)."""
    sos4k = ds.load(require_shared("sos4k", "train.tsv"))
    sos1k = require_shared("sos1k")
    assert sos4k.kind == ds.SOS_LEVEL and len(sos4k) == 2361
    files = [ds.load(sos1k / f"fold{k}_{kind}.tsv") for k in range(1, 6) for kind in ("level", "binary")]
    folds = train.pair_folds([*files, sos4k])
    assert [f.binary_source for f in folds][-2:] == ["fold5_binary.tsv", "level >= 6"]
    parts = ds.split_by_hash(sos4k, 5)
    assert all(len(p) > 300 for p in parts) and sum(len(p) for p in parts) == len(sos4k)
    fold_texts = {t for f in folds[:5] for t in f.texts}
    assert not fold_texts & set(sos4k.texts)   # the shared copy has every SOS-1K text removed


def test_evaluate_takes_the_sos4k_file_as_it_is(tmp_path, capsys):
    path = require_shared("sos4k", "train.tsv")
    code = evaluate.main(["--backend", "lexicon", "--task", "suicide", "--quiet", "--limit", "60",
                          "--data", str(path), "--json", str(tmp_path / "e.json")])
    assert code == 0
    m = json.loads((tmp_path / "e.json").read_text())["files"][0]["metrics"]
    assert m["n"] == 60 and 0 <= m["binary_f1_from_levels"] <= 1


def test_bench_quality_splits_sos4k_by_the_same_hash(tmp_path):
    """bench_quality --sos4k: fold k trains on the other hash folds' rows and tests on its own."""
    import importlib.util

    path = Path(__file__).parents[2] / "bench" / "bench_quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    src = _write(tmp_path / "newer.tsv", [r.replace("\t", "。唉\t", 1) for r in _level_rows()])
    parts = bench.sos4k_parts(src, tmp_path)
    everything = set(ds.load(src).texts)
    for k, (train_file, test_file) in enumerate(parts):
        tr, te = set(ds.load(train_file).texts), set(ds.load(test_file).texts)
        assert tr | te == everything and not tr & te
        assert all(ds.hash_fold(t, 5) == k for t in te)


def test_band_levels_can_come_from_the_calibrated_probabilities(tmp_path, capsys):
    out = tmp_path / "m.joblib"
    assert train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"), "--band-levels", "calibrated",
                       "--out", str(out)]) == 0
    bundle = joblib.load(out)
    assert bundle["meta"]["band_levels"] == "calibrated" and bundle["suicide"].band_levels == "calibrated"
    levels, _, ph = bundle["suicide"].predict(ds.load(DATA / "sos_level.tsv").texts)
    assert ((levels >= 6) == (ph >= bundle["suicide"].threshold_)).all()
