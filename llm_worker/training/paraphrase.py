"""LLM paraphrase augmentation: a generating backend rewrites training texts, cached on disk.

The SOS-1K paper's LLM-based augmentation asks a model to rewrite a comment in other words,
keeping its meaning and risk. Here any generating backend does it: ``transformers`` (greedy
generation after the rubric's shared system prompt, so the KV cache of the head is reused) or
``openai`` (one chat request per text, at temperature 0 for copy 1 and 0.7 beyond).

Every rewrite is cached in a JSON-lines file keyed by the sha256 of (text, copy number,
backend name, prompt version, maximum new tokens), so a rerun with the same settings costs
nothing and a change of any setting is a new key. A rewrite that comes back empty is dropped
by ``augment``. Only training rows are ever paraphrased (``augment`` is called on them).
"""

from __future__ import annotations

import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

from llm_worker.scoring import prompt

PROMPT_VERSION = "p1"
ASK = ("请用不同的措辞改写上面这条评论：保持原意、情绪和其中表达的风险程度完全不变，"
       "保持第一人称和口语风格，不要添加或删去信息，不要解释。只输出改写后的评论。")


def messages(text: str, dimensions: tuple[str, ...]) -> list[dict[str, str]]:
    """The rubric's system message (shared head), the comment as data, then the request."""
    return [{"role": "system", "content": prompt.system_prompt(dimensions)},
            {"role": "user", "content": prompt.data_block("", text) + ASK}]


class Paraphraser:
    """Rewrites texts through ``backend`` (transformers or openai), with a file cache."""

    def __init__(self, backend: Any, cache: str | Path, max_new_tokens: int = 96, batch_size: int = 8,
                 log=None) -> None:
        self.backend = backend
        self.cache_path = Path(cache)
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.log = log or (lambda s: print(s, file=sys.stderr))
        self.cache: dict[str, str] = {}
        if self.cache_path.is_file():
            for line in self.cache_path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    row = json.loads(line)
                    self.cache[row["key"]] = row["text"]
        self.generated = 0  # rewrites made by the model in this process (not from the cache)

    def settings(self) -> dict[str, Any]:
        return {"backend": getattr(self.backend, "name", "?"), "prompt_version": PROMPT_VERSION,
                "max_new_tokens": self.max_new_tokens, "cache": str(self.cache_path)}

    def key(self, text: str, copy: int) -> str:
        raw = json.dumps([text, copy, getattr(self.backend, "name", "?"), PROMPT_VERSION,
                          self.max_new_tokens], ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()

    def _generate(self, texts: list[str], copies: list[int]) -> list[str]:
        dims = tuple(getattr(self.backend, "dimensions", ("suicide_risk",)))
        if hasattr(self.backend, "generate_after_head"):  # transformers
            import torch

            rests = [self.backend.after_head(messages(t, dims)) for t in texts]
            with torch.inference_mode():  # as the backend's own rationales: no autograd state in its cache
                rows = self.backend.generate_after_head(rests, self.max_new_tokens)
            return [self.backend.tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]
        if hasattr(self.backend, "chat"):  # openai
            from llm_worker.scoring.backends.openai_compat import InvalidAnswer, Refused, TooLong

            out = []
            for t, c in zip(texts, copies, strict=True):
                try:
                    content, _ = self.backend.chat(messages(t, dims), extra={
                        "max_tokens": self.max_new_tokens, "temperature": 0 if c == 1 else 0.7,
                        "logprobs": False})
                except (Refused, TooLong, InvalidAnswer) as e:
                    # this text gets no rewrite ("" is dropped by augment); the others go on
                    self.log(f"  no paraphrase for one text: {type(e).__name__}: {e}")
                    content = ""
                out.append(content.strip())
            return out
        raise TypeError(f"backend {getattr(self.backend, 'name', '?')} cannot generate text")

    def paraphrase(self, texts: list[str], copies: list[int]) -> list[str]:
        """One rewrite per (text, copy number); cached ones are not generated again."""
        keys = [self.key(t, c) for t, c in zip(texts, copies, strict=True)]
        todo = [i for i, k in enumerate(keys) if k not in self.cache]
        if todo:
            self.log(f"paraphrasing {len(todo)} texts with {getattr(self.backend, 'name', '?')} "
                     f"({len(texts) - len(todo)} from the cache)")
        t0 = last = time.monotonic()
        self.cache_path.parent.mkdir(parents=True, exist_ok=True)
        with self.cache_path.open("a", encoding="utf-8") as f:
            for start in range(0, len(todo), self.batch_size):
                part = todo[start:start + self.batch_size]
                outs = self._generate([texts[i] for i in part], [copies[i] for i in part])
                for i, out in zip(part, outs, strict=True):
                    self.cache[keys[i]] = out
                    f.write(json.dumps({"key": keys[i], "text": out}, ensure_ascii=False) + "\n")
                f.flush()
                self.generated += len(part)
                if time.monotonic() - last > 30:
                    last = time.monotonic()
                    self.log(f"  paraphrased {start + len(part)}/{len(todo)} ({last - t0:.0f} s)")
        return [self.cache[k] for k in keys]
