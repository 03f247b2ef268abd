"""LoRA adapters from ``python -m llm_worker.training.finetune``, on top of a base model.

An adapter directory holds peft's ``adapter_config.json`` and ``adapter_model.safetensors``
plus our ``finetune.json`` (base model, rubric version, data hashes, settings, metrics).
The scorer name of a backend with an adapter carries the adapter's name and a short hash
of its weights and configuration, so its scores are never mixed with the base model's, nor
with another adapter's, in the ``scores`` table.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

META_FILE = "finetune.json"
WEIGHT_FILES = ("adapter_config.json", "adapter_model.safetensors", "adapter_model.bin")


class AdapterError(ValueError):
    pass


def check_dir(path: str | Path) -> Path:
    p = Path(path)
    if not (p / "adapter_config.json").is_file():
        raise AdapterError(f"{p} is not a LoRA adapter directory (no adapter_config.json); make one "
                           "with python -m llm_worker.training.finetune")
    return p


def tag(path: str | Path) -> str:
    """``<name>-<hash8>``: the directory's name (at most 32 characters) and a hash of its weights."""
    p = check_dir(path)
    h = hashlib.sha256()
    for name in WEIGHT_FILES:
        f = p / name
        if f.is_file():
            h.update(name.encode() + b"\0" + f.read_bytes())
    name = re.sub(r"[^\w.-]+", "_", p.resolve().name)[:32] or "adapter"
    return f"{name}-{h.hexdigest()[:8]}"


def metadata(path: str | Path) -> dict[str, Any]:
    """``finetune.json`` of the adapter, or {} when it has none (an adapter made elsewhere)."""
    f = check_dir(path) / META_FILE
    if not f.is_file():
        return {}
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise AdapterError(f"{f}: cannot read the adapter's metadata ({e})") from None


def apply(model: Any, path: str | Path, merge: bool = True) -> Any:
    """The base ``model`` with the adapter at ``path`` loaded (and merged into its weights).

    Merged, the model is a plain transformers model again: the same forward pass, KV cache and
    generation as the base model, at no extra cost per token.
    """
    try:
        from peft import PeftModel
    except ImportError:
        raise AdapterError("loading a LoRA adapter needs the peft package (pip install peft==0.21.2)") from None
    p = check_dir(path)
    peft_model = PeftModel.from_pretrained(model, str(p), is_trainable=False)
    return peft_model.merge_and_unload() if merge else peft_model
