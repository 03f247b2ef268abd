"""Masked-LM adaptation of an encoder (``python -m llm_worker.training.adapt``), on a tiny random BERT."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from transformers import AutoModel, BertModel

from llm_worker.scoring.tiny_model import build_tiny_bert
from llm_worker.training import adapt, train
from llm_worker.training import datasets as ds

DATA = Path(__file__).parent / "data"
LEVEL, BINARY = DATA / "sos_level.tsv", DATA / "sos_binary.tsv"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory) -> Path:
    return build_tiny_bert(tmp_path_factory.mktemp("bert"), ds.load(LEVEL).texts)


def weights(path: Path) -> dict:
    return AutoModel.from_pretrained(path, local_files_only=True).state_dict()


def test_the_adapted_encoder_is_a_checkpoint_that_train_accepts(tiny_bert, tmp_path, capsys):
    out = tmp_path / "adapted"
    # The binary file lists the same texts: they are read once.
    assert adapt.main(["--encoder", str(tiny_bert), "--data", str(LEVEL), "--data", str(BINARY),
                       "--out", str(out), "--epochs", "2"]) == 0
    info = json.loads((out / "adapted.json").read_text(encoding="utf-8"))
    assert info["texts"] == len(set(ds.load(LEVEL).texts)) and info["epochs"] == 2
    assert len(info["losses"]) == 2 and min(info["losses"]) > 0  # 0 would mean nothing was masked
    assert "epoch 2/2: masked-LM loss" in capsys.readouterr().err
    before, after = weights(tiny_bert), weights(out)
    assert before.keys() == after.keys()
    assert any((before[k] != after[k]).any() for k in before), "adaptation changed nothing"
    _, loading = BertModel.from_pretrained(out, local_files_only=True, output_loading_info=True)
    assert not loading["missing_keys"]  # it loads whole, pooler too
    assert all((before[k] == after[k]).all() for k in before if k.startswith("pooler."))  # MLM never sees it
    model = tmp_path / "m.joblib"
    assert train.main(["--task", "suicide", "--data", str(LEVEL), "--encoder", str(out),
                       "--encoder-epochs", "1", "--out", str(model)]) == 0


def test_adapting_twice_gives_the_same_encoder(tiny_bert, tmp_path):
    runs = []
    for name in ("a", "b"):
        assert adapt.main(["--encoder", str(tiny_bert), "--data", str(LEVEL), "--out",
                           str(tmp_path / name), "--epochs", "1"]) == 0
        runs.append(weights(tmp_path / name))
    assert all((runs[0][k] == runs[1][k]).all() for k in runs[0])


def test_a_long_epoch_reports_its_progress(tiny_bert, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(adapt, "PROGRESS_SECONDS", 0.0)  # every batch, instead of once a minute
    assert adapt.main(["--encoder", str(tiny_bert), "--data", str(LEVEL), "--out",
                       str(tmp_path / "o"), "--epochs", "1"]) == 0
    assert "epoch 1/1: 1/" in capsys.readouterr().err  # "1/N batches done"


def test_an_existing_output_directory_is_not_overwritten(tiny_bert, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "keep.txt").write_text("mine", encoding="utf-8")
    assert adapt.main(["--encoder", str(tiny_bert), "--data", str(LEVEL), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_malformed_data_file_is_refused_naming_the_line(tiny_bert, tmp_path, capsys):
    bad = tmp_path / "bad.tsv"
    bad.write_text("comment\tmyLabel\n今天很好\t3\n还行吧\t十二\n", encoding="utf-8")
    assert adapt.main(["--encoder", str(tiny_bert), "--data", str(bad), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "bad.tsv:3:" in err
    assert not (tmp_path / "o").exists()


def test_a_directory_that_is_not_an_encoder_is_refused(tmp_path, capsys):
    assert adapt.main(["--encoder", str(tmp_path), "--data", str(LEVEL), "--out", str(tmp_path / "o")]) == 2
    assert "not an encoder checkpoint" in capsys.readouterr().err


def test_help_says_what_it_is_for(capsys):
    with pytest.raises(SystemExit) as e:
        adapt.main(["--help"])
    assert e.value.code == 0
    assert "masked-language modelling" in capsys.readouterr().out
