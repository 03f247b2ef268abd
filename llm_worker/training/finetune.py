"""LoRA fine-tuning of a GLM-4 scorer on labelled data, on exactly the prompt it scores with.

    python -m llm_worker.training.finetune --model BASE --task suicide|positivity|all \\
        --data FILE… [--from-db URL --labels 'human:*'] --out ADAPTER_DIR

Every labelled (comment, dimension) pair is one training example: the transformers backend's
likelihood prompt for that dimension, token for token (``TransformersBackend.prompt_ids``: the
chat template, the rubric's system message, the comment as data, the dimension's question and
"分数："), and the loss is the cross-entropy of the labelled level's token ("0".."10") as the next
token. So training and scoring see the same tokens, and the scorer reads the trained
distribution directly.

How labels become levels:
- SOS-1K level files (``comment<TAB>myLabel``): suicide_risk, the level as it is; binary files
  carry no level and are skipped;
- emotion files (SMP2020-EWECT, CLUEmotion): positivity 8 for happy/happiness/like, 2 for
  sad/sadness/angry/anger/fear/disgust, 5 for neutral; surprise is left out;
- ``--from-db``: the human labels as stored, per dimension (several annotators: their median,
  see ``db_labels``).

LoRA through peft on all linear layers of the decoder (``--target-modules``). On CUDA: bf16
weights and gradient checkpointing, or ``--qlora``: the base model in 4-bit NF4 through
bitsandbytes (CUDA only). On the CPU: float32 (tests, the tiny model). The output directory
holds peft's adapter files and ``finetune.json``: base model id, rubric version, the data's
sha256, the settings, and the validation metrics before and after training. Score with it
through ``transformers.adapter = DIR`` (or ``evaluate --backend transformers --adapter DIR``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llm_worker.scoring import adapter as lora
from llm_worker.scoring.backends.base import PermanentBackendError
from llm_worker.scoring.backends.openai_compat import TransientError
from llm_worker.training import datasets as ds
from llm_worker.training.augment import (
    METHODS,
    AugmentError,
    AugmentSettings,
    add_augment_options,
    augment,
    augment_settings,
)
from llm_worker.training.db_labels import LabelError, read_labels
from weibo_mh.config import ConfigError
from weibo_mh.rubric import CORE_DIMENSIONS, RUBRIC_VERSION

TASK_DIMENSIONS = {"suicide": ("suicide_risk",), "positivity": ("positivity",), "all": CORE_DIMENSIONS}
#: Emotion labels as positivity levels (documented in the module docstring and docs/llm.md).
EMOTION_LEVELS = {"happy": 8, "happiness": 8, "like": 8, "sad": 2, "sadness": 2, "angry": 2, "anger": 2,
                  "fear": 2, "disgust": 2, "neutral": 5}


class UsageError(Exception):
    pass


@dataclass(frozen=True)
class Labelled:
    text: str
    dimension: str
    level: int


def _log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def examples_from_files(files: list[ds.Dataset], dims: tuple[str, ...], log=_log) -> list[Labelled]:
    out: list[Labelled] = []
    for f in files:
        if f.kind == ds.SOS_LEVEL and "suicide_risk" in dims:
            out += [Labelled(e.text, "suicide_risk", int(e.label)) for e in f.examples]
        elif f.kind == ds.EMOTION and "positivity" in dims:
            out += [Labelled(e.text, "positivity", EMOTION_LEVELS[str(e.label)])
                    for e in f.examples if e.label in EMOTION_LEVELS]
        elif f.kind == ds.DISTORTION:
            raise UsageError(f"{f.path}: a cognitive-distortion file has no 0-10 levels to train on")
        else:
            log(f"{f.path}: skipped ({f.kind} labels carry no level of {', '.join(dims)})")
    return out


def split(examples: list[Labelled], fraction: float, seed: int) -> tuple[list[Labelled], list[Labelled]]:
    """(train, validation) by comment text, so one comment's dimensions never straddle the split."""
    texts = sorted({e.text for e in examples})
    random.Random(seed).shuffle(texts)
    n_val = int(round(fraction * len(texts))) if fraction > 0 else 0
    if fraction > 0 and len(texts) > 1:
        n_val = min(max(1, n_val), len(texts) - 1)
    val = set(texts[:n_val])
    return [e for e in examples if e.text not in val], [e for e in examples if e.text in val]


def augment_examples(train: list[Labelled], settings: AugmentSettings, paraphraser=None) -> list[Labelled]:
    """Augmented copies of the training examples' texts, each with all its original's labels."""
    texts = sorted({e.text for e in train})
    new, origin = augment(texts, settings, paraphraser)
    by_text: dict[str, list[Labelled]] = {}
    for e in train:
        by_text.setdefault(e.text, []).append(e)
    return [Labelled(t, e.dimension, e.level) for t, o in zip(new, origin, strict=True)
            for e in by_text[texts[o]]]


# ----- the model --------------------------------------------------------------------------


def _prompt_builder(model: str, dims: tuple[str, ...], max_length: int, local_files_only: bool):
    """A tokenizer-only TransformersBackend: the backend's own prompt pieces, no model weights."""
    from transformers import AutoTokenizer

    from llm_worker.scoring.backends.hf import TransformersBackend

    class PromptBuilder(TransformersBackend):
        def __init__(self) -> None:  # noqa: D401 - the parts of the backend that build prompts
            self.model_id = model
            self.dimensions = dims
            self.max_comment_tokens = max_length
            self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local_files_only,
                                                           trust_remote_code=False)
            self._prepare_prompts()

    return PromptBuilder()


def load_base(model: str, device: str, qlora: bool, local_files_only: bool):
    """(model, dtype name) on ``device``: bf16 on CUDA (4-bit NF4 with ``qlora``), float32 on CPU."""
    import torch
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"local_files_only": local_files_only, "trust_remote_code": False}
    if qlora:
        if not device.startswith("cuda"):
            raise UsageError("--qlora needs CUDA (bitsandbytes 4-bit); on the CPU train in float32")
        try:
            from transformers import BitsAndBytesConfig
        except ImportError:  # pragma: no cover - transformers always has it
            raise UsageError("this transformers build has no BitsAndBytesConfig") from None
        try:
            import bitsandbytes  # noqa: F401
        except ImportError:
            raise UsageError("--qlora needs bitsandbytes: pip install bitsandbytes==0.50.2") from None
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16)
        kwargs["device_map"] = {"": device}
        m = AutoModelForCausalLM.from_pretrained(model, dtype=torch.bfloat16, **kwargs)
        from peft import prepare_model_for_kbit_training

        return prepare_model_for_kbit_training(m, use_gradient_checkpointing=True), "4-bit nf4 + bf16"
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    m = AutoModelForCausalLM.from_pretrained(model, dtype=dtype, **kwargs)
    m = m.to(device)  # type: ignore[arg-type]
    if device.startswith("cuda"):
        m.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        m.enable_input_require_grads()
    return m, "bf16" if device.startswith("cuda") else "float32"


def _batch(seqs: list[list[int]], pad_id: int, device: str):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
        mask[i, width - len(s):] = 1
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), pos.to(device)


def next_token_logits(model, seqs: list[list[int]], pad_id: int, device: str):
    """Logits [batch, vocab] of the token after each sequence (left-padded, real positions)."""
    ids, mask, pos = _batch(seqs, pad_id, device)
    out = model(input_ids=ids, attention_mask=mask, position_ids=pos, use_cache=False, logits_to_keep=1)
    return out.logits[:, -1, :].float()


def evaluate_levels(model, rows: list[tuple[list[int], int, str]], value_ids: list[int], pad_id: int,
                    device: str, batch_size: int) -> dict[str, Any]:
    """Loss (cross-entropy of the level token), accuracy and MAE of the most likely level, per dimension."""
    import torch

    if not rows:
        return {}
    per: dict[str, dict[str, float]] = {}
    dists: list[list[float]] = []
    with torch.no_grad():
        for start in range(0, len(rows), batch_size):
            part = rows[start:start + batch_size]
            logits = next_token_logits(model, [r[0] for r in part], pad_id, device)
            target = torch.tensor([value_ids[r[1]] for r in part], device=logits.device)
            loss = torch.nn.functional.cross_entropy(logits, target, reduction="none")
            probs = torch.softmax(logits[:, value_ids], dim=-1)
            dists += probs.tolist()
            pred = probs.argmax(-1).tolist()
            for (_, level, dim), lo, p in zip(part, loss.tolist(), pred, strict=True):
                d = per.setdefault(dim, {"n": 0, "loss": 0.0, "correct": 0, "abs_error": 0.0,
                                         "p_label": 0.0})
                d["n"] += 1
                d["loss"] += lo
                d["correct"] += int(p == level)
                d["abs_error"] += abs(p - level)
            for (_, level, dim), pr in zip(part, probs.tolist(), strict=True):
                per[dim]["p_label"] += pr[level]
    metrics = {dim: {"n": int(d["n"]), "loss": round(d["loss"] / d["n"], 4),
                     "accuracy": round(d["correct"] / d["n"], 4), "mae": round(d["abs_error"] / d["n"], 4),
                     "mean_p_label": round(d["p_label"] / d["n"], 4)} for dim, d in per.items()}
    return {"per_dimension": metrics, "distributions": dists}


def run(a: argparse.Namespace, log=_log) -> dict[str, Any]:
    """The whole fine-tuning run; returns the metadata written to finetune.json."""
    import torch

    dims = TASK_DIMENSIONS[a.task]
    prompt_dims = tuple(a.prompt_dimensions) if a.prompt_dimensions else CORE_DIMENSIONS
    if any(d not in prompt_dims for d in dims):
        raise UsageError("--prompt-dimensions must include the dimensions being trained")
    files = [ds.load(f) for f in a.data]
    examples = examples_from_files(files, dims, log)
    db_meta = None
    if a.from_db:
        labels = read_labels(a.from_db, a.labels)
        log(f"read {labels.summary()}")
        for dim in dims:
            texts, levels = labels.pairs(dim)
            examples += [Labelled(t, dim, v) for t, v in zip(texts, levels, strict=True)]
        db_meta = {"source": labels.source, "pattern": labels.pattern, "sha256": labels.sha256,
                   "rows": labels.rows, "annotators": labels.annotators,
                   "rule": "median of the annotators (upper middle when even)"}
    if not examples:
        raise UsageError(f"no labelled examples of {', '.join(dims)} in the data")
    if a.limit:
        examples = examples[: a.limit]
    train_ex, val_ex = split(examples, a.validation, a.seed)
    device = a.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"device {device!r} requested but CUDA is not available")
    builder = _prompt_builder(a.model, prompt_dims, a.max_length, a.local_files_only)
    try:
        value_ids = builder.value_ids()
    except RuntimeError as e:
        raise UsageError(f"{a.model}: {e}; fine-tuning scores single-token values only") from None
    settings = augment_settings(a, METHODS)
    paraphraser = None
    if settings is not None:
        if "paraphrase" in settings.methods:
            paraphraser = make_paraphraser(a, log)
        try:
            extra = augment_examples(train_ex, settings, paraphraser)
        finally:
            if paraphraser is not None:
                paraphraser.backend.close()
        log(f"augmentation ({', '.join(settings.methods)}, {settings.copies} copies, seed {settings.seed}): "
            f"{len(extra)} new examples on top of {len(train_ex)} (training split only)")
        train_ex = train_ex + extra
    torch.manual_seed(a.seed)
    base, dtype_name = load_base(a.model, device, a.qlora, a.local_files_only)
    from peft import LoraConfig, get_peft_model

    config = LoraConfig(r=a.rank, lora_alpha=a.alpha, lora_dropout=a.dropout, bias="none",
                        task_type="CAUSAL_LM",
                        target_modules=a.target_modules if a.target_modules != ["all-linear"] else "all-linear")
    model = get_peft_model(base, config)
    trainable, total = model.get_nb_trainable_parameters()
    log(f"LoRA r={a.rank} alpha={a.alpha} dropout={a.dropout} on {a.model} ({dtype_name}, {device}): "
        f"{trainable:,} trainable parameters of {total:,}")
    pad_id = int(builder.tokenizer.pad_token_id if builder.tokenizer.pad_token_id is not None
                 else builder.tokenizer.eos_token_id)

    def rows_of(exs: list[Labelled]) -> list[tuple[list[int], int, str]]:
        return [(builder.prompt_ids("", e.text, e.dimension), e.level, e.dimension) for e in exs]

    train_rows, val_rows = rows_of(train_ex), rows_of(val_ex)
    log(f"{len(train_rows)} training and {len(val_rows)} validation examples "
        f"({', '.join(dims)}; prompts of {min(len(r[0]) for r in train_rows)}-"
        f"{max(len(r[0]) for r in train_rows)} tokens)")
    model.eval()
    with model.disable_adapter():
        before = evaluate_levels(model, val_rows, value_ids, pad_id, device, a.batch_size)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=a.lr, weight_decay=0.0)
    steps_per_epoch = math.ceil(len(train_rows) / a.batch_size)
    total_steps = steps_per_epoch * a.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, int(0.06 * total_steps))) * max(0.0, 1 - s / total_steps))
    rng = random.Random(a.seed)
    epoch_loss: list[float] = []
    t0 = last = time.monotonic()
    step = 0
    for epoch in range(1, a.epochs + 1):
        model.train()
        order = list(range(len(train_rows)))
        rng.shuffle(order)
        losses = []
        for start in range(0, len(order), a.batch_size):
            part = [train_rows[i] for i in order[start:start + a.batch_size]]
            logits = next_token_logits(model, [r[0] for r in part], pad_id, device)
            target = torch.tensor([value_ids[r[1]] for r in part], device=logits.device)
            loss = torch.nn.functional.cross_entropy(logits, target)
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
            opt.step()
            sched.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(loss.detach()))
            step += 1
            if time.monotonic() - last > a.progress_seconds:
                last = time.monotonic()
                log(f"  epoch {epoch}/{a.epochs} step {step}/{total_steps} loss {sum(losses) / len(losses):.4f} "
                    f"({last - t0:.0f} s)")
        epoch_loss.append(round(sum(losses) / len(losses), 4))
        log(f"epoch {epoch}/{a.epochs}: training loss {epoch_loss[-1]:.4f} ({time.monotonic() - t0:.0f} s)")
    model.eval()
    after = evaluate_levels(model, val_rows, value_ids, pad_id, device, a.batch_size)
    for dim, m in after.get("per_dimension", {}).items():
        b = before["per_dimension"][dim]
        log(f"validation {dim} (n={m['n']}): loss {b['loss']:.3f} -> {m['loss']:.3f}, "
            f"accuracy {b['accuracy']:.3f} -> {m['accuracy']:.3f}, MAE {b['mae']:.2f} -> {m['mae']:.2f}")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(out))
    import peft
    import transformers

    meta = {
        "base_model": a.model, "rubric_version": RUBRIC_VERSION, "task": a.task, "dimensions": list(dims),
        "prompt_dimensions": list(prompt_dims),
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "data": [{"name": f.path.name, "sha256": f.sha256, "kind": f.kind, "rows": len(f)} for f in files],
        "db_labels": db_meta,
        "settings": {"rank": a.rank, "alpha": a.alpha, "dropout": a.dropout, "lr": a.lr, "epochs": a.epochs,
                     "batch_size": a.batch_size, "max_length": a.max_length, "validation": a.validation,
                     "seed": a.seed, "target_modules": a.target_modules, "qlora": a.qlora,
                     "dtype": dtype_name, "device": device, "limit": a.limit,
                     "augment": settings.as_dict() if settings else None,
                     "paraphrase": paraphraser.settings() if paraphraser else None},
        "training": {"examples": len(train_rows), "epoch_loss": epoch_loss,
                     "seconds": round(time.monotonic() - t0, 1), "trainable_parameters": trainable},
        "validation": {"examples": len(val_rows),
                       "before": before.get("per_dimension", {}), "after": after.get("per_dimension", {})},
        "loss": "cross-entropy of the labelled level token after 分数： (the full vocabulary)",
        "levels": {"sos_level": "as they are", "emotion": EMOTION_LEVELS, "database": "as stored (median)"},
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "peft": peft.__version__},
        "research_use_only": True,
    }
    (out / lora.META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False), encoding="utf-8")
    # For tests and checks: the validation distributions the saved adapter must reproduce.
    (out / "validation_distributions.json").write_text(json.dumps(
        {"texts": [e.text for e in val_ex], "dimensions": [e.dimension for e in val_ex],
         "distributions": after.get("distributions", [])}, ensure_ascii=False), encoding="utf-8")
    log(f"adapter saved to {out} ({lora.tag(out)}); score with transformers.adapter = \"{out}\"")
    return meta


def make_paraphraser(a: argparse.Namespace, log=_log):
    from llm_worker.scoring.backends import make_backend
    from llm_worker.training.paraphrase import Paraphraser
    from weibo_mh.config import load_config

    if not a.paraphrase_backend or not a.paraphrase_cache:
        raise UsageError("--augment paraphrase needs --paraphrase-backend and --paraphrase-cache FILE")
    overrides: dict[str, Any] = {}
    if a.paraphrase_model:
        overrides["model"] = a.paraphrase_model
    if a.paraphrase_backend == "transformers":
        overrides["device"] = "cpu" if a.device == "cpu" else None
        overrides = {k: v for k, v in overrides.items() if v}
    backend = make_backend(a.paraphrase_backend, load_config(a.config), **overrides)
    return Paraphraser(backend, a.paraphrase_cache, max_new_tokens=a.paraphrase_max_new_tokens, log=log)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m llm_worker.training.finetune",
                                 description="LoRA fine-tuning of a GLM-4 scorer (peft) on labelled files or "
                                             "human labels, on the transformers backend's own likelihood prompt.")
    ap.add_argument("--model", required=True, metavar="BASE", help="hub id or local directory of the base model")
    ap.add_argument("--task", required=True, choices=tuple(TASK_DIMENSIONS),
                    help="suicide: suicide_risk; positivity; all: the four core dimensions that have labels")
    ap.add_argument("--data", action="append", default=[], metavar="FILE", help="labelled file; repeat")
    ap.add_argument("--from-db", metavar="URL", help="also train on human score rows in this database")
    ap.add_argument("--labels", default="human:*", metavar="PATTERN",
                    help="with --from-db: scorer glob of the human labels (default 'human:*')")
    ap.add_argument("--out", required=True, metavar="ADAPTER_DIR", help="where to write the adapter")
    ap.add_argument("--rank", type=int, default=16, help="LoRA rank (default 16)")
    ap.add_argument("--alpha", type=float, default=32, help="LoRA alpha (default 32)")
    ap.add_argument("--dropout", type=float, default=0.05, help="LoRA dropout (default 0.05)")
    ap.add_argument("--lr", type=float, default=2e-4, help="peak learning rate (default 2e-4; warm-up 6%%, "
                                                          "then linear decay)")
    ap.add_argument("--epochs", type=int, default=2, help="epochs (default 2)")
    ap.add_argument("--batch-size", type=int, default=4, help="examples per step (default 4)")
    ap.add_argument("--max-length", type=int, default=512, metavar="TOKENS",
                    help="the comment is cut to this many tokens, as the backend's max_comment_tokens (default 512)")
    ap.add_argument("--validation", type=float, default=0.1, metavar="FRACTION",
                    help="share of the comments held out for validation (default 0.1; 0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--target-modules", nargs="+", default=["all-linear"], metavar="NAME",
                    help="modules that get LoRA weights (default all-linear: every linear layer but lm_head)")
    ap.add_argument("--qlora", action="store_true", help="load the base model in 4-bit (bitsandbytes, CUDA only)")
    ap.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ap.add_argument("--local-files-only", action="store_true", help="never contact the hub")
    ap.add_argument("--prompt-dimensions", nargs="+", metavar="DIM",
                    help="dimensions whose scales the system prompt lists (default: the four core ones, as "
                         "the worker scores with worker.rubric = core)")
    ap.add_argument("--limit", type=int, help="use only the first N labelled examples (smoke runs)")
    ap.add_argument("--progress-seconds", type=float, default=30.0, help="a progress line this often")
    g = add_augment_options(ap, methods=METHODS,
                            what="augment the training split (never the validation split)")
    g.add_argument("--paraphrase-backend", choices=("transformers", "openai"),
                   help="with --augment paraphrase: the generating backend")
    g.add_argument("--paraphrase-model", help="its model (default: the config's)")
    g.add_argument("--paraphrase-cache", metavar="FILE",
                   help="JSON-lines cache of the rewrites (a rerun continues from it)")
    g.add_argument("--paraphrase-max-new-tokens", type=int, default=96, metavar="N",
                   help="longest rewrite, in tokens (default 96)")
    g.add_argument("--config", help="TOML config for the paraphrase backend")
    a = ap.parse_args(argv)
    if not a.data and not a.from_db:
        ap.error("give labelled files with --data FILE, or --from-db URL")
    for name in ("rank", "epochs", "batch_size", "max_length"):
        if getattr(a, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 <= a.validation < 1 or not 0 <= a.dropout < 1 or a.lr <= 0:
        ap.error("--validation and --dropout must be in [0, 1), --lr positive")
    return a


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        run(a)
    except (ds.DataFormatError, UsageError, AugmentError, LabelError, lora.AdapterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a model that cannot be found or loaded
        print(f"error: cannot load {a.model}: {e}", file=sys.stderr)
        return 2
    except (ConfigError, PermanentBackendError) as e:  # the paraphrase backend's config or server
        print(f"error: paraphrase backend: {e}", file=sys.stderr)
        return 2
    except TransientError as e:  # the server stayed away through its retries; the cache keeps what was done
        print(f"error: paraphrase server unavailable ({e}); rerun to continue from the cache",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
