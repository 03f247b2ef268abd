"""Traditional augmentation: deterministic per seed, label-keeping, training rows only."""

from __future__ import annotations

from pathlib import Path

import joblib
import pytest

from llm_worker.scoring.classifier_model import SuicideModel
from llm_worker.scoring.lexicons import matcher, modifiers
from llm_worker.training import augment as aug
from llm_worker.training import datasets as ds
from llm_worker.training import train

DATA = Path(__file__).parent / "data"
TEXTS = ["今天去超市买了好多水果，真的很开心", "我不想死，我只是觉得很累", "妈妈明天来看我，我们一起吃饭",
         "朋友说我最近总是睡不着，可能是压力太大了", "好"]
ALL = aug.AugmentSettings(aug.TRADITIONAL, copies=3, seed=0)


def test_every_method_changes_the_text_and_keeps_negators():
    for method in aug.TRADITIONAL:
        outs = {aug.augment_text(TEXTS[1], method, seed=s) for s in range(6)}
        assert any(o != TEXTS[1] for o in outs), method
        assert all("不" in o for o in outs), (method, outs)


def test_augmentation_is_deterministic_for_a_seed_and_independent_of_the_other_rows():
    a = aug.augment(TEXTS, ALL)
    assert a == aug.augment(TEXTS, ALL)
    assert a != aug.augment(TEXTS, aug.AugmentSettings(aug.TRADITIONAL, copies=3, seed=1))
    new, origin = a
    assert len(new) == len(origin) and set(origin) <= set(range(len(TEXTS)))
    # The copies of one text do not depend on which other texts are augmented with it.
    alone, _ = aug.augment([TEXTS[2]], ALL)
    assert alone == [t for t, o in zip(new, origin, strict=True) if o == 2]
    # No copy repeats its original or an earlier copy.
    for i, text in enumerate(TEXTS):
        copies = [t for t, o in zip(new, origin, strict=True) if o == i]
        assert text not in copies and len(set(copies)) == len(copies)


def test_the_synonym_list_holds_no_risk_cue_and_no_negator():
    res = aug.resources()
    words = set(res["synonyms"]) | set(res["fillers"])
    suicide = matcher("suicide")
    for w in words:
        hits = [h for h in suicide.find(w) if h.category != "noise"]
        assert not hits, (w, hits)
        assert w not in modifiers().negators
    sentiment = matcher("sentiment")
    assert not [e for e in res["emoji"] if sentiment.find(e)]


def test_bad_settings_are_refused():
    with pytest.raises(aug.AugmentError, match="unknown augmentation"):
        aug.AugmentSettings(("shuffle",))
    with pytest.raises(aug.AugmentError, match="copies"):
        aug.AugmentSettings(("swap",), copies=0)
    with pytest.raises(aug.AugmentError, match="generating backend"):
        aug.augment(TEXTS, aug.AugmentSettings(("paraphrase",)))
    assert train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"), "--cv",
                       "--augment", "shuffle"]) == 2


def test_cross_validation_never_augments_the_test_fold(tmp_path, monkeypatch):
    rows = (DATA / "sos_level.tsv").read_text(encoding="utf-8").splitlines()[1:]
    files = []
    for k in range(3):
        f = tmp_path / f"fold{k}.tsv"
        f.write_text("comment\tmyLabel\n" + "\n".join(rows[k::3]) + "\n", encoding="utf-8")
        files.append(f)
    seen: list[list[str]] = []

    def spy(texts, settings, paraphraser=None):
        seen.append(list(texts))
        return aug.augment(texts, settings, paraphraser)

    monkeypatch.setattr(train, "augment_rows", spy)
    folds = train.pair_folds([ds.load(f) for f in files])
    res = train.cross_validate(folds, log=lambda s: None,
                               augment=aug.AugmentSettings(("synonym", "swap"), copies=1))
    assert len(res["folds"]) == 3 and len(seen) == 3
    for k, texts in enumerate(seen):
        assert not set(texts) & set(folds[k].texts)
        assert set(texts) == {t for i, f in enumerate(folds) if i != k for t in f.texts}


def test_the_model_trains_on_copies_and_scores_originals_in_its_inner_cv():
    rows = [r.split("\t") for r in (DATA / "sos_level.tsv").read_text(encoding="utf-8").splitlines()[1:]]
    texts, levels = [r[0] for r in rows], [int(r[1]) for r in rows]
    extra, origin = aug.augment(texts, aug.AugmentSettings(aug.TRADITIONAL, copies=1))
    model = SuicideModel().fit(texts, levels, extra_texts=extra, extra_origin=origin)
    assert model.augmented_rows_ == len(extra) > len(texts) // 2
    assert 0.30 <= model.threshold_ <= 0.70
    lv, _, _ = model.predict(["我已经吃了一瓶安眠药，永别了", "今天去超市买了好多水果"])
    assert lv[0] > lv[1]
    with pytest.raises(ValueError, match="extra_origin"):
        SuicideModel().fit(texts, levels, extra_texts=extra, extra_origin=origin[:-1])


def test_calibration_never_splits_a_copy_from_its_original():
    """The calibrated SVMs fit their sigmoid on held-out rows; a copy of a held-out original on
    the fitting side would make those rows look easier than new comments are."""
    import numpy as np

    from llm_worker.scoring.classifier_model import _calibration_cv

    groups = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 3, 5, 7, 9, 9])
    y = np.array([0, 1, 0, 1, 0, 1, 0, 1, 0, 1, 0, 0, 1, 1, 1, 1, 1])
    assert _calibration_cv(3, y, None) == 3
    splits = _calibration_cv(3, y, groups)
    assert len(splits) == 3
    for tr, te in splits:
        assert not set(groups[tr]) & set(groups[te])
        assert sorted([*tr, *te]) == list(range(len(y)))


def test_train_records_the_augmentation_in_the_model(tmp_path):
    out = tmp_path / "m.joblib"
    assert train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"),
                       "--data", str(DATA / "sos_binary.tsv"), "--augment", "synonym", "punct",
                       "--augment-copies", "1", "--augment-seed", "3", "--out", str(out)]) == 0
    meta = joblib.load(out)["meta"]
    assert meta["augment"] == {"methods": ["synonym", "punct"], "copies": 1, "alpha": 0.1, "seed": 3,
                               "paraphrase": {}}


def test_the_augment_options_are_one_set_for_every_command(capsys):
    """train, finetune and bench_quality share add_augment_options; bench hands them to train."""
    import argparse

    ap = argparse.ArgumentParser()
    aug.add_augment_options(ap)
    a = ap.parse_args(["--augment", "swap", "punct", "--augment-copies", "3", "--augment-alpha", "0.25",
                       "--augment-seed", "7"])
    settings = aug.augment_settings(a)
    assert settings == aug.AugmentSettings(("swap", "punct"), copies=3, alpha=0.25, seed=7)
    assert aug.augment_settings(ap.parse_args(aug.augment_argv(settings))) == settings
    assert aug.augment_settings(ap.parse_args([])) is None
    with pytest.raises(aug.AugmentError, match="paraphrase .* is for finetune"):
        aug.augment_settings(ap.parse_args(["--augment", "swap", "paraphrase"]))
    assert aug.augment_settings(ap.parse_args(["--augment", "paraphrase"]), aug.METHODS).methods == ("paraphrase",)
    assert train.main(["--task", "suicide", "--data", str(DATA / "sos_level.tsv"), "--cv",
                       "--augment", "paraphrase"]) == 2
    assert "is for finetune" in capsys.readouterr().err
