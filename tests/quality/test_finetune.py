"""LoRA fine-tuning (peft) of the tiny random GLM-4 on project-written sentences, and scoring with the adapter."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("peft")

from llm_worker.scoring.backends.base import ScoreInput  # noqa: E402
from llm_worker.scoring.backends.hf import TransformersBackend  # noqa: E402
from llm_worker.scoring.tiny_model import build_tiny_glm  # noqa: E402
from llm_worker.training import augment as aug  # noqa: E402
from llm_worker.training import evaluate, finetune  # noqa: E402
from llm_worker.training.paraphrase import Paraphraser  # noqa: E402

#: Written for these tests. Most are high (8); the tiny model can learn that much.
SENTENCES = [
    ("今天去超市买了好多水果", 0), ("周末和同学一起打篮球", 0), ("这部电影的配乐很好听", 0),
    ("下雨了记得带伞", 0),
    ("计划好了月底烧炭", 8), ("下个月生日那天就去跳河", 8), ("等考完试就去跳楼", 8),
    ("过完年就结束自己", 8), ("已经写好遗书，月底就走", 8), ("安眠药攒够了，下周吃掉", 8),
    ("准备好了绳子，月底动手", 8), ("想好了哪天从楼顶跳下去", 8), ("车票买好了，到海边就不回来了", 8),
    ("月底之前把事情交代清楚就走", 8), ("等妈妈生日过完我就离开", 8), ("毕业那天就结束这一切", 8),
]
ARGS = ["--task", "suicide", "--prompt-dimensions", "suicide_risk", "--device", "cpu", "--rank", "4",
        "--alpha", "8", "--dropout", "0", "--lr", "5e-3", "--epochs", "4", "--batch-size", "4",
        "--validation", "0.25", "--seed", "0"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: on a shared 2-core machine two threads contend and run 20-30x slower."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return build_tiny_glm(tmp_path_factory.mktemp("glm") / "tiny")


@pytest.fixture(scope="module")
def labelled(tmp_path_factory) -> Path:
    f = tmp_path_factory.mktemp("data") / "ft_level.tsv"
    f.write_text("comment\tmyLabel\n" + "".join(f"{t}\t{y}\n" for t, y in SENTENCES), encoding="utf-8")
    return f


@pytest.fixture(scope="module")
def adapter(tiny, labelled, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("adapters") / "suicide-lora"
    assert finetune.main(["--model", str(tiny), "--data", str(labelled), "--out", str(out), *ARGS]) == 0
    return out


def test_training_lowers_the_loss_and_moves_levels_toward_the_labels(adapter, labelled):
    meta = json.loads((adapter / "finetune.json").read_text(encoding="utf-8"))
    loss = meta["training"]["epoch_loss"]
    assert len(loss) == 4 and loss[-1] < loss[0]
    before, after = meta["validation"]["before"]["suicide_risk"], meta["validation"]["after"]["suicide_risk"]
    assert after["n"] == 4 and after["loss"] < before["loss"]
    assert after["mean_p_label"] > before["mean_p_label"] and after["mae"] <= before["mae"]
    # The metadata says what was trained, on what, how.
    assert meta["base_model"].endswith("tiny") and meta["rubric_version"]
    assert meta["data"][0]["name"] == labelled.name and len(meta["data"][0]["sha256"]) == 64
    assert meta["settings"]["rank"] == 4 and meta["settings"]["dtype"] == "float32"
    assert meta["prompt_dimensions"] == ["suicide_risk"]
    assert (adapter / "adapter_config.json").is_file() and (adapter / "adapter_model.safetensors").is_file()


def test_the_saved_adapter_reloads_and_reproduces_the_distributions(adapter, tiny):
    saved = json.loads((adapter / "validation_distributions.json").read_text(encoding="utf-8"))
    b = TransformersBackend(str(tiny), dimensions=("suicide_risk",), device="cpu", adapter=str(adapter))
    got = b.probabilities([ScoreInput("", t) for t in saved["texts"]])
    for row, want in zip(got, saved["distributions"], strict=True):
        assert row["suicide_risk"] == pytest.approx(want, abs=1e-4)
    base = TransformersBackend(str(tiny), dimensions=("suicide_risk",), device="cpu")
    base_rows = base.probabilities([ScoreInput("", t) for t in saved["texts"]])
    assert any(abs(x - y) > 1e-3 for r, s in zip(got, base_rows, strict=True)
               for x, y in zip(r["suicide_risk"], s["suicide_risk"], strict=True))
    # The trained distribution leans towards the labelled high levels.
    assert sum(r["suicide_risk"][8] for r in got) > sum(r["suicide_risk"][8] for r in base_rows)
    b.close()
    base.close()


def test_the_scorer_name_carries_the_adapter_name_and_hash(adapter, tiny, tmp_path):
    base = TransformersBackend(str(tiny), dimensions=("suicide_risk",), device="cpu")
    b = TransformersBackend(str(tiny), dimensions=("suicide_risk",), device="cpu", adapter=str(adapter))
    assert base.name == f"transformers:{tiny}"
    assert b.name.startswith(f"transformers:{tiny}+suicide-lora-") and len(b.name.rsplit("-", 1)[1]) == 8
    assert "LoRA adapter" in b.sources()["*"]
    # Other weights under the same directory name: another hash.
    other = tmp_path / "suicide-lora"
    shutil.copytree(adapter, other)
    w = other / "adapter_model.safetensors"
    w.write_bytes(w.read_bytes()[:-1] + bytes([w.read_bytes()[-1] ^ 1]))
    from llm_worker.scoring import adapter as lora

    assert lora.tag(other) != lora.tag(adapter) and lora.tag(other).startswith("suicide-lora-")
    b.close()
    base.close()


def test_evaluate_scores_with_the_adapter(adapter, tiny, labelled, tmp_path):
    out = tmp_path / "eval.json"
    assert evaluate.main(["--backend", "transformers", "--model", str(tiny), "--adapter", str(adapter),
                          "--task", "suicide", "--data", str(labelled), "--json", str(out), "--quiet",
                          "--batch-size", "8"]) == 0
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert "+suicide-lora-" in doc["backend"]
    assert all("LoRA adapter" in v for v in doc["sources"].values())
    assert doc["files"][0]["rows"] == len(SENTENCES) and doc["files"][0]["failed"] == 0
    assert evaluate.main(["--backend", "lexicon", "--adapter", str(adapter), "--task", "suicide",
                          "--data", str(labelled)]) == 2
    assert evaluate.main(["--backend", "transformers", "--model", str(tiny), "--adapter", str(tmp_path),
                          "--task", "suicide", "--data", str(labelled)]) == 2


def test_clear_errors(tiny, labelled, tmp_path, capsys):
    code = finetune.main(["--model", str(tiny), "--data", str(labelled), "--out", str(tmp_path / "q"),
                          "--qlora", *ARGS])
    assert code == 2 and "--qlora needs CUDA" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        finetune.main(["--model", str(tiny), "--task", "suicide", "--out", str(tmp_path / "x")])


def test_finetune_reads_human_labels_from_the_database(tiny, sqlite_url, tmp_path):
    from tests.quality.test_db_labels import seed

    seed(sqlite_url, {"alice": 0, "bob": 1})
    out = tmp_path / "team-lora"
    assert finetune.main(["--model", str(tiny), "--task", "all", "--from-db", sqlite_url, "--out", str(out),
                          "--device", "cpu", "--rank", "2", "--epochs", "1", "--limit", "6",
                          "--validation", "0", "--lr", "1e-3"]) == 0
    meta = json.loads((out / "finetune.json").read_text(encoding="utf-8"))
    assert meta["db_labels"]["annotators"] == ["human:alice", "human:bob"]
    assert meta["training"]["examples"] == 6 and meta["prompt_dimensions"] == list(finetune.CORE_DIMENSIONS)


def test_llm_paraphrase_is_cached_and_only_augments_training_texts(tiny, tmp_path):
    """Plumbing only: the tiny model's rewrites are random tokens."""
    backend = TransformersBackend(str(tiny), dimensions=("suicide_risk",), device="cpu")
    cache = tmp_path / "para.jsonl"
    p = Paraphraser(backend, cache, max_new_tokens=6, log=lambda s: None)
    texts = [t for t, _ in SENTENCES[:3]]
    first = p.paraphrase(texts, [1, 1, 1])
    assert p.generated == 3 and len(cache.read_text(encoding="utf-8").splitlines()) == 3
    again = Paraphraser(backend, cache, max_new_tokens=6, log=lambda s: None)
    assert again.paraphrase(texts, [1, 1, 1]) == first and again.generated == 0
    other = Paraphraser(backend, cache, max_new_tokens=5, log=lambda s: None)  # other settings: new keys
    other.paraphrase(texts[:1], [1])
    assert other.generated == 1
    settings = aug.AugmentSettings(("paraphrase",), copies=1)
    train_ex = [finetune.Labelled(t, "suicide_risk", y) for t, y in SENTENCES[:3]]
    extra = finetune.augment_examples(train_ex, settings, again)
    assert {e.text for e in extra} <= {x for x in first if x.strip()} and again.generated == 0
    assert all(e.level == dict(SENTENCES)[texts[first.index(e.text)]] for e in extra)
    backend.close()


def test_finetune_augments_its_training_split_with_paraphrases(tiny, labelled, tmp_path):
    cache = tmp_path / "para.jsonl"
    out = tmp_path / "aug-lora"
    args = ["--model", str(tiny), "--data", str(labelled), "--out", str(out), "--task", "suicide",
            "--prompt-dimensions", "suicide_risk", "--device", "cpu", "--rank", "2", "--epochs", "1",
            "--limit", "6", "--validation", "0.34", "--augment", "paraphrase", "swap", "--augment-copies", "1",
            "--paraphrase-backend", "transformers", "--paraphrase-model", str(tiny),
            "--paraphrase-cache", str(cache), "--paraphrase-max-new-tokens", "4"]
    assert finetune.main(args) == 0
    meta = json.loads((out / "finetune.json").read_text(encoding="utf-8"))
    assert meta["settings"]["augment"]["methods"] == ["paraphrase", "swap"]
    assert meta["settings"]["paraphrase"]["cache"] == str(cache)
    # Validation texts (held out) are never paraphrased: the cache holds training texts only.
    held_out = set(json.loads((out / "validation_distributions.json").read_text(encoding="utf-8"))["texts"])
    from llm_worker.training.paraphrase import Paraphraser as P

    keys = {json.loads(line)["key"] for line in cache.read_text(encoding="utf-8").splitlines()}
    probe = P.__new__(P)
    probe.backend, probe.max_new_tokens = type("B", (), {"name": f"transformers:{tiny}"})(), 4
    assert held_out and not keys & {probe.key(t, 1) for t in held_out}
