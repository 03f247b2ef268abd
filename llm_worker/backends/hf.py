"""GLM-4-family scoring with transformers: likelihood of each level, never parsed text.

For every comment the prompt is split into a shared prefix (chat template start,
system message with the scales, the topic and the comment) and one short suffix
per dimension (the question, the assistant header and "分数："). The prefix is run
once per batch, with left padding, and its KV cache is reused for every dimension:
each suffix is appended, the next-token distribution over the eleven values
"0".."10" is read, and the cache is cropped back to the prefix. The most likely
level is stored with its probability (normalised over the eleven values) as the
confidence. The answer is valid by construction: no free text is parsed.

Values: when "0".."10" are all single tokens (true for GLM-4's tokenizers, whose
pre-tokeniser groups up to three digits), one forward pass per dimension suffices.
Otherwise each value is scored as a token sequence followed by the end-of-turn
token (so "1" and "10" are told apart), one pass per value: correct but slower.

Batching never changes a score: pads are masked and position ids are counted from
each row's first real token (attention_mask.cumsum - 1), so a left-padded row sees
exactly the positions it would see alone.
"""

from __future__ import annotations

import inspect
import logging
import time
from typing import Any

from llm_worker import prompt
from llm_worker.backends.base import DimensionScore, ScoreInput, ScoreResult, validate_result
from llm_worker.rubric import CORE_DIMENSIONS, LEVELS, dimensions_for

log = logging.getLogger(__name__)

VALUES = tuple(str(v) for v in LEVELS)


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return device


class TransformersBackend:
    """Scores with a local causal LM (GLM-4 family; any chat model with a chat template works)."""

    def __init__(self, model: str, *, dimensions: tuple[str, ...] = CORE_DIMENSIONS,
                 device: str = "auto", explain: bool = False, max_new_tokens: int = 64,
                 local_files_only: bool = False, max_comment_tokens: int = 512) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.model_id = model
        self.name = f"transformers:{model}"
        self.dimensions = tuple(dimensions)
        prompt.system_prompt(self.dimensions)  # validates the dimension names early
        self.explain = explain
        self.max_new_tokens = max_new_tokens
        self.max_comment_tokens = max_comment_tokens
        self.device = _pick_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        t0 = time.monotonic()
        self.tokenizer = AutoTokenizer.from_pretrained(model, local_files_only=local_files_only,
                                                       trust_remote_code=False)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            model, dtype=dtype, local_files_only=local_files_only, trust_remote_code=False,
        ).to(self.device).eval()
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.pad_id = int(self.tokenizer.pad_token_id)
        self._value_ids = [self.tokenizer.encode(v, add_special_tokens=False) for v in VALUES]
        self.single_token_values = (all(len(ids) == 1 for ids in self._value_ids)
                                    and len({ids[0] for ids in self._value_ids}) == len(VALUES))
        self._end_id = self._end_of_turn_id()
        self._suffix_ids = {d: self._suffix_for(d) for d in self.dimensions}
        #: Forward passes made, for benchmarks (prefix, suffix and generation steps).
        self.forward_passes = 0
        log.info("loaded %s on %s (%s) in %.1fs; values as %s", model, self.device, dtype,
                 time.monotonic() - t0, "single tokens" if self.single_token_values else "token sequences")

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> TransformersBackend:
        """Build from ``cfg.transformers`` / ``cfg.worker.rubric``; overrides: model, explain, dimensions, device."""
        t = cfg.transformers
        dims = overrides.get("dimensions") or dimensions_for(cfg.worker.rubric)
        return cls(overrides.get("model") or t.model, dimensions=tuple(dims),
                   device=overrides.get("device") or t.device,
                   explain=bool(overrides.get("explain", t.explain)),
                   max_new_tokens=t.max_new_tokens, local_files_only=t.local_files_only,
                   max_comment_tokens=t.max_comment_tokens)

    # ----- prompt pieces -------------------------------------------------------------------

    def _render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _split(self, topic: str, text: str, dimension: str) -> tuple[str, str]:
        """(shared prefix, dimension suffix) of the rendered likelihood prompt."""
        full = self._render(prompt.likelihood_messages(topic, text, dimension, self.dimensions))
        full += prompt.ANSWER_PREFIX
        block = prompt.data_block(topic, text)
        cut = full.rfind(block)
        if cut < 0:
            raise RuntimeError("the chat template changed the comment block; cannot share the prefix")
        cut += len(block)
        return full[:cut], full[cut:]

    def _suffix_for(self, dimension: str) -> list[int]:
        prefix, suffix = self._split("话题", "评论", dimension)
        other = self._split("另一个话题", "另一条评论", dimension)[1]
        if suffix != other:
            raise RuntimeError("the chat template makes the question depend on the comment")
        return self.tokenizer.encode(suffix, add_special_tokens=False)

    def _end_of_turn_id(self) -> int:
        eos = getattr(self.model.generation_config, "eos_token_id", None) or self.tokenizer.eos_token_id
        if isinstance(eos, (list, tuple)):
            # GLM-4 ends an assistant turn with <|user|> (or <|endoftext|>); prefer <|user|>.
            user = self.tokenizer.convert_tokens_to_ids("<|user|>")
            return user if user in eos else eos[0]
        return int(eos)

    def _cap_text(self, text: str) -> tuple[str, bool]:
        """Cut the comment to max_comment_tokens tokens (the worker has already cut characters)."""
        ids = self.tokenizer.encode(text, add_special_tokens=False)
        if len(ids) <= self.max_comment_tokens:
            return text, False
        cut = self.tokenizer.decode(ids[: self.max_comment_tokens], skip_special_tokens=True)
        return cut.rstrip("\ufffd"), True

    # ----- model passes --------------------------------------------------------------------

    def _forward(self, input_ids, attention_mask, position_ids, cache=None, keep: int = 1):
        kwargs = {"use_cache": True, "logits_to_keep": keep}
        if cache is not None:
            kwargs[self._cache_kw] = cache
        self.forward_passes += 1
        out = self.model(input_ids=input_ids, attention_mask=attention_mask,
                         position_ids=position_ids, **kwargs)
        new_cache = getattr(out, "cache", None) or getattr(out, "past_key_values", None)
        return out.logits, new_cache

    def _left_pad(self, seqs: list[list[int]]):
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for i, s in enumerate(seqs):
            ids[i, width - len(s):] = torch.tensor(s, dtype=torch.long)
            mask[i, width - len(s):] = 1
        return ids.to(self.device), mask.to(self.device)

    def _suffix_logprobs(self, cache, prefix_mask, prefix_len, suffix: list[int]):
        """Log-probabilities [batch, 11] of the values after ``suffix``; the cache is restored."""
        import torch

        n = prefix_mask.shape[0]
        cands = ([[]] if self.single_token_values
                 else [ids + [self._end_id] for ids in self._value_ids])
        scores = []
        for cand in cands:
            seq = torch.tensor(suffix + cand, dtype=torch.long, device=self.device).expand(n, -1)
            length = seq.shape[1]
            mask = torch.cat([prefix_mask, torch.ones((n, length), dtype=prefix_mask.dtype,
                                                      device=self.device)], dim=1)
            pos = prefix_len[:, None] + torch.arange(length, device=self.device)[None, :]
            logits, cache = self._forward(seq, mask, pos, cache=cache, keep=len(cand) + 1)
            cache.crop(-length)  # back to the shared prefix for the next suffix
            logp = torch.log_softmax(logits.float(), dim=-1)
            if self.single_token_values:
                ids = torch.tensor([v[0] for v in self._value_ids], device=self.device)
                return logp[:, -1, :].index_select(-1, ids)
            # logits[:, j] predicts cand[j] (the row before it); the final row is unused.
            target = torch.tensor(cand, device=self.device)
            picked = logp[:, : len(cand), :].gather(-1, target.expand(n, -1)[..., None])[..., 0]
            scores.append(picked.sum(-1))
        return torch.stack(scores, dim=-1)

    def _distributions(self, prefixes: list[list[int]]):
        """{dimension: tensor [batch, 11]} of level probabilities, the prefix run once."""
        import torch

        ids, mask = self._left_pad(prefixes)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        _, cache = self._forward(ids, mask, pos, keep=1)
        prefix_len = mask.sum(-1)
        return {dim: torch.softmax(self._suffix_logprobs(cache, mask, prefix_len, self._suffix_ids[dim]),
                                   dim=-1)
                for dim in self.dimensions}

    def _prefix_ids(self, topic: str, text: str) -> list[int]:
        return self.tokenizer.encode(self._split(topic, text, self.dimensions[0])[0],
                                     add_special_tokens=False)

    def probabilities(self, items: list[ScoreInput]) -> list[dict[str, list[float]]]:
        """The full distribution over levels 0..10 per item and dimension (for research and tests)."""
        import torch

        with torch.inference_mode():
            dists = self._distributions([self._prefix_ids(it.topic, self._cap_text(it.text)[0])
                                         for it in items])
        return [{d: dists[d][i].tolist() for d in self.dimensions} for i in range(len(items))]

    def _rationales(self, items: list[tuple[str, str]]) -> list[str]:
        texts = [self._render(prompt.explain_messages(t, x, self.dimensions)) for t, x in items]
        seqs = [self.tokenizer.encode(s, add_special_tokens=False) for s in texts]
        ids, mask = self._left_pad(seqs)
        out = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                  max_new_tokens=self.max_new_tokens, pad_token_id=self.pad_id)
        self.forward_passes += out.shape[1] - ids.shape[1]
        return [self.tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True).strip()
                for row in out]

    # ----- the Backend interface -----------------------------------------------------------

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        """One result per item; a failing batch gives transient error results, never an exception."""
        import torch

        if not items:
            return []
        capped = [self._cap_text(it.text) for it in items]
        pairs = [(it.topic, text) for it, (text, _) in zip(items, capped, strict=True)]
        try:
            with torch.inference_mode():
                dists = self._distributions([self._prefix_ids(t, x) for t, x in pairs])
                rows: list[dict[str, DimensionScore]] = [{} for _ in items]
                for dim, probs in dists.items():
                    conf, level = probs.max(dim=-1)
                    for i, row in enumerate(rows):
                        row[dim] = DimensionScore(value=int(level[i]), confidence=float(conf[i]))
                notes = self._rationales(pairs) if self.explain else [None] * len(items)
        except Exception as e:  # noqa: BLE001 - e.g. out of memory: the worker retries later
            log.exception("scoring a batch of %d failed", len(items))
            return [ScoreResult(error=f"{type(e).__name__}: {e}"[:500], truncated=cut, final=False)
                    for _, cut in capped]
        results = []
        for row, note, (_, cut) in zip(rows, notes, capped, strict=True):
            if note is not None:
                for s in row.values():
                    s.rationale = note
            results.append(validate_result(ScoreResult(scores=row, truncated=cut), self.dimensions))
        return results

    def close(self) -> None:
        import torch

        self.model = None  # type: ignore[assignment]
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
