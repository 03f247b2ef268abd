"""GLM-4-family scoring with transformers: likelihood of each level, never parsed text.

The prompt is split in three: the head (chat template start, system message with
the scales, user header) is the same for every comment and is run once per
process; the data block (topic and comment) is run once per batch on top of a
copy of the head's KV cache; then for each dimension its short suffix (the
question, the assistant header and "分数：") is appended, the next-token
distribution over the eleven values "0".."10" is read, and the cache is cropped
back. So the prompt's prefix is shared across dimensions *and* across comments.
The most likely level is stored with its probability (normalised over the eleven
values) as the confidence, and the probability the model put on the eleven values
together (over the whole vocabulary) as the answer mass: below ``answer_mass_floor``
the score is flagged uncertain. The answer is valid by construction: no free text is parsed.

Every special or added token of the loaded tokenizer is broken inside the data block
(``prompt.neutralise``), so a comment can never put a role token there; the head,
data block and suffix must encode to the same ids apart as together (checked at load).

Values: when "0".."10" are all single tokens (true for GLM-4's tokenizers, whose
pre-tokeniser groups up to three digits), one forward pass per dimension suffices.
Otherwise each value is scored as its token sequence, and a value whose spelling begins
another's (1 of 10) counts only when no digit follows it, as the openai backend does: the
question runs once, and one short pass over "1" on top of its cache reads what follows.

Batching never changes a score: the data blocks are left-padded (the pads sit
between the head and the block), pads are masked, and position ids count real
tokens only (attention_mask.cumsum - 1), so every row sees exactly the positions
it would see alone.
"""

from __future__ import annotations

import copy
import inspect
import logging
import time
from typing import Any

from llm_worker.scoring import prompt
from llm_worker.scoring.backends.base import (
    DimensionScore,
    ScoreInput,
    ScoreResult,
    judge_mass,
    validate_result,
)
from weibo_mh.rubric import CORE_DIMENSIONS, LEVELS, dimensions_for

log = logging.getLogger(__name__)

VALUES = tuple(str(v) for v in LEVELS)


def _pick_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} requested but CUDA is not available")
    return device


def special_tokens_of(tokenizer: Any) -> tuple[str, ...]:
    """Every special or added token string of ``tokenizer`` (what ``prompt.neutralise`` breaks)."""
    found = set(getattr(tokenizer, "all_special_tokens", ()) or ())
    for tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        found.add(str(getattr(tok, "content", tok)))
    return tuple(sorted(t for t in found if t))


class TransformersBackend:
    """Scores with a local causal LM (GLM-4 family; any chat model with a chat template works)."""

    def __init__(self, model: str, *, dimensions: tuple[str, ...] = CORE_DIMENSIONS,
                 device: str = "auto", explain: bool = False, max_new_tokens: int = 64,
                 local_files_only: bool = False, max_comment_tokens: int = 512,
                 answer_mass_floor: float = 0.5, adapter: str | None = None) -> None:
        import torch

        self.model_id = model
        self.name = f"transformers:{model}"
        self.dimensions = tuple(dimensions)
        prompt.system_prompt(self.dimensions)  # validates the dimension names early
        self.explain = explain
        self.max_new_tokens = max_new_tokens
        self.max_comment_tokens = max_comment_tokens
        self.answer_mass_floor = answer_mass_floor
        self.local_files_only = local_files_only
        self.device = _pick_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        t0 = time.monotonic()
        self.tokenizer = self._load_tokenizer(model)
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = self._load_model(model, dtype).to(self.device).eval()
        # A LoRA adapter from llm_worker.training.finetune, merged into the weights; the scorer
        # name carries its name and hash, so its scores never mix with the base model's.
        self.adapter = adapter or None
        if self.adapter:
            from llm_worker.scoring import adapter as lora

            self.model = lora.apply(self.model, self.adapter).eval()
            self.name = f"transformers:{model}+{lora.tag(self.adapter)}"
        params = inspect.signature(self.model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.pad_id = int(self.tokenizer.pad_token_id)
        self._end_id = self._end_of_turn_id()
        self._prepare_prompts()
        self._head_cache: Any = None  # KV cache of the head, computed on first use
        #: Forward passes made and token positions run through the model, for benchmarks.
        self.forward_passes = 0
        self.tokens_in = 0
        log.info("loaded %s on %s (%s) in %.1fs; values as %s", model, self.device, dtype,
                 time.monotonic() - t0, "single tokens" if self.single_token_values else "token sequences")

    # ----- loading (one place each, so that adapters or other loaders can hook in) ---------

    def _load_tokenizer(self, model: str) -> Any:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(model, local_files_only=self.local_files_only,
                                             trust_remote_code=False)

    def _load_model(self, model: str, dtype: Any) -> Any:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(model, dtype=dtype, local_files_only=self.local_files_only,
                                                    trust_remote_code=False)

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> TransformersBackend:
        """Build from ``cfg.transformers`` / ``cfg.worker.rubric``; overrides: model, explain, dimensions, device."""
        from weibo_mh.config import ConfigError

        t = cfg.transformers
        dims = overrides.get("dimensions") or dimensions_for(cfg.worker.rubric)
        model = overrides.get("model") or t.model
        try:
            return cls(model, dimensions=tuple(dims), device=overrides.get("device") or t.device,
                       explain=bool(overrides.get("explain", t.explain)),
                       max_new_tokens=t.max_new_tokens, local_files_only=t.local_files_only,
                       max_comment_tokens=t.max_comment_tokens,
                       answer_mass_floor=cfg.worker.answer_mass_floor,
                       adapter=overrides.get("adapter") or getattr(t, "adapter", "") or None)
        except (OSError, RuntimeError, ValueError) as e:  # not found offline, no CUDA, bad checkpoint
            raise ConfigError(f"transformers backend: cannot load {model!r}: {e}") from None

    # ----- prompt pieces -------------------------------------------------------------------

    def _prepare_prompts(self) -> None:
        """The tokenizer-side state every prompt needs (also used by ``training.finetune``)."""
        self.special_tokens = special_tokens_of(self.tokenizer)
        self._value_ids = [self.tokenizer.encode(v, add_special_tokens=False) for v in VALUES]
        self.single_token_values = (all(len(ids) == 1 for ids in self._value_ids)
                                    and len({ids[0] for ids in self._value_ids}) == len(VALUES))
        #: Run each dimension's question once and put the values on top of its cache (False:
        #: the question again with every value followed by the end of turn, as before issue 25;
        #: kept to measure the difference in bench/bench_llm.py).
        self.share_suffix = True
        self._digits = None
        self._check_template()

    def _render(self, messages: list[dict[str, str]]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def _split(self, topic: str, text: str, dimension: str) -> tuple[str, str, str]:
        """(head, data block, dimension suffix) of the rendered likelihood prompt.

        The head (template start, system message, user header) is the same for every
        comment, the data block for every dimension of one comment.
        """
        full = self._render(prompt.likelihood_messages(topic, text, dimension, self.dimensions,
                                                       self.special_tokens))
        if full.endswith("<|assistant|>"):
            full += "\n"  # GLM-4 writes "<|assistant|>\n" before every answer; some templates stop short
        full += prompt.ANSWER_PREFIX
        block = prompt.data_block(topic, text, self.special_tokens)
        cut = full.rfind(block)
        if cut < 0:
            raise RuntimeError("the chat template changed the comment block; cannot share the prefix")
        return full[:cut], block, full[cut + len(block):]

    def _check_template(self) -> None:
        """The head must not depend on the comment, the suffix neither: else nothing can be shared."""
        a = [self._split("话题", "评论", d) for d in self.dimensions]
        b = [self._split("另一个话题", "另一条评论", d) for d in self.dimensions]
        if len({x[0] for x in a + b}) != 1 or any(x[2] != y[2] for x, y in zip(a, b, strict=True)):
            raise RuntimeError("the chat template mixes the comment into the shared parts of the prompt")
        self._head_text = a[0][0]
        self._head_ids = self.tokenizer.encode(self._head_text, add_special_tokens=False)
        self._suffix_ids = {d: self.tokenizer.encode(x[2], add_special_tokens=False)
                            for d, x in zip(self.dimensions, a, strict=True)}
        # The three parts are encoded apart; that is only right if no token spans a boundary.
        sample = ("微博话题#2026#", "今天睡了3个小时，吃了100片药？！ok <|user|> 😭 1234567")
        for d in self.dimensions[:2]:
            head, block, suffix = self._split(*sample, d)
            enc = [self.tokenizer.encode(x, add_special_tokens=False) for x in (head, block, suffix)]
            if enc[0] + enc[1] + enc[2] != self.tokenizer.encode(head + block + suffix, add_special_tokens=False):
                raise RuntimeError("the tokenizer merges across the head / data block / question boundaries; "
                                   "the prompt cannot be split for prefix sharing")

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
        self.tokens_in += input_ids.numel()
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
        """Log-probabilities [batch, 11] of the values after ``suffix``; the cache is restored.

        The suffix (the question, the assistant header and "分数：") runs once; its last logits
        give every value's first token. A value spelt in several tokens ("1","0" for 10 on
        Qwen-style tokenizers) then runs only its leading tokens on top of the suffix's cache
        (one short pass, cropped back after), and a value whose spelling begins another's
        counts only when no digit follows it: P(10) = P("1")·P("0"|"1"),
        P(1) = P("1")·(1 − P(digit|"1")). The openai backend scores the same way
        (``openai_answers.level_scores``), so both give the same levels on the same model.
        """
        import torch

        if not self.share_suffix:
            return self._suffix_logprobs_rerun(cache, prefix_mask, prefix_len, suffix)
        n, length = prefix_mask.shape[0], len(suffix)
        seq = torch.tensor(suffix, dtype=torch.long, device=self.device).expand(n, -1)
        mask = torch.cat([prefix_mask, torch.ones((n, length), dtype=prefix_mask.dtype, device=self.device)], dim=1)
        pos = prefix_len[:, None] + torch.arange(length, device=self.device)[None, :]
        logits, cache = self._forward(seq, mask, pos, cache=cache, keep=1)
        first = torch.log_softmax(logits[:, -1, :].float(), dim=-1)
        if self.single_token_values:
            cache.crop(-length)
            return first.index_select(-1, torch.tensor([v[0] for v in self._value_ids], device=self.device))
        # After each proper prefix of a value's spelling: the next-token log-probabilities.
        after: dict[tuple[int, ...], Any] = {}
        for feed in sorted({tuple(ids[:-1]) for ids in self._value_ids if len(ids) > 1}, key=len, reverse=True):
            if feed in after:
                continue  # already read as part of a longer feed
            seq = torch.tensor(feed, dtype=torch.long, device=self.device).expand(n, -1)
            mask_c = torch.cat([mask, torch.ones((n, len(feed)), dtype=mask.dtype, device=self.device)], dim=1)
            pos_c = prefix_len[:, None] + length + torch.arange(len(feed), device=self.device)[None, :]
            logits_c, cache = self._forward(seq, mask_c, pos_c, cache=cache, keep=len(feed))
            cache.crop(-len(feed))
            logp = torch.log_softmax(logits_c.float(), dim=-1)
            for i in range(1, len(feed) + 1):
                after.setdefault(feed[:i], logp[:, i - 1, :])
        digits = self._digit_token_mask()
        scores = []
        for ids in self._value_ids:
            lp = first[:, ids[0]]
            for i in range(1, len(ids)):
                lp = lp + after[tuple(ids[:i])][:, ids[i]]
            if tuple(ids) in after:  # "1" also begins "10": closed by anything but a digit
                no_digit = 1.0 - after[tuple(ids)].exp()[:, digits].sum(-1)
                lp = lp + torch.log(no_digit.clamp(min=1e-30))
            scores.append(lp)
        cache.crop(-length)  # back to the shared prefix for the next dimension
        return torch.stack(scores, dim=-1)

    def _digit_token_mask(self):
        """Bool mask over the vocabulary: tokens whose text starts with a digit (computed once)."""
        import torch

        if self._digits is None:
            size = self.model.get_output_embeddings().weight.shape[0]
            texts = [self.tokenizer.decode([i]) if i < len(self.tokenizer) else "" for i in range(size)]
            self._digits = torch.tensor([t.strip()[:1].isdigit() for t in texts], device=self.device)
        return self._digits

    def _suffix_logprobs_rerun(self, cache, prefix_mask, prefix_len, suffix: list[int]):
        """The way before issue 25, kept for ``bench/bench_llm.py``'s side-by-side ratio: the suffix
        runs again with every value followed by the end-of-turn token (eleven passes over it)."""
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

    def _head_cache_for(self, n: int):
        """A fresh KV cache holding the head (system prompt) for ``n`` rows; the head runs once per process."""
        import torch

        if self._head_cache is None:
            ids = torch.tensor([self._head_ids], dtype=torch.long, device=self.device)
            pos = torch.arange(ids.shape[1], device=self.device)[None, :]
            _, self._head_cache = self._forward(ids, torch.ones_like(ids), pos, keep=1)
        cache = copy.deepcopy(self._head_cache)
        cache.batch_repeat_interleave(n)
        return cache

    def _distributions(self, blocks: list[list[int]]):
        """{dimension: (tensor [batch, 11] of level probabilities, tensor [batch] of answer mass)}.

        The answer mass is the probability of the eleven answers over the whole vocabulary
        (for multi-token values: of each value's tokens followed by the end of turn).

        Layout of row i: [head][pads][data block i][suffix]. The pads sit between the
        shared head and the data block and are masked; position ids count real tokens
        only, so every row sees the positions it would see alone.
        """
        import torch

        n, head = len(blocks), len(self._head_ids)
        ids, seg_mask = self._left_pad(blocks)
        mask = torch.cat([torch.ones((n, head), dtype=seg_mask.dtype, device=self.device), seg_mask], dim=1)
        pos = head + (seg_mask.cumsum(-1) - 1).clamp(min=0)
        _, cache = self._forward(ids, mask, pos, cache=self._head_cache_for(n), keep=1)
        prefix_len = head + seg_mask.sum(-1)
        out = {}
        for dim in self.dimensions:
            logp = self._suffix_logprobs(cache, mask, prefix_len, self._suffix_ids[dim])
            out[dim] = (torch.softmax(logp, dim=-1), torch.logsumexp(logp, dim=-1).exp().clamp(max=1.0))
        return out

    def _prefix_ids(self, topic: str, text: str) -> list[int]:
        """Token ids of the comment's data block (what follows the shared head)."""
        head, block, _ = self._split(topic, text, self.dimensions[0])
        if head != self._head_text:
            raise RuntimeError("the chat template's head changed with the comment")
        return self.tokenizer.encode(block, add_special_tokens=False)

    def probabilities(self, items: list[ScoreInput]) -> list[dict[str, list[float]]]:
        """The full distribution over levels 0..10 per item and dimension (for research and tests)."""
        import torch

        with torch.inference_mode():
            dists = self._distributions([self._prefix_ids(it.topic, self._cap_text(it.text)[0])
                                         for it in items])
        return [{d: dists[d][0][i].tolist() for d in self.dimensions} for i in range(len(items))]

    def answer_masses(self, items: list[ScoreInput]) -> list[dict[str, float]]:
        """The probability put on the eleven levels together, per item and dimension."""
        import torch

        with torch.inference_mode():
            dists = self._distributions([self._prefix_ids(it.topic, self._cap_text(it.text)[0])
                                         for it in items])
        return [{d: float(dists[d][1][i]) for d in self.dimensions} for i in range(len(items))]

    def after_head(self, messages: list[dict[str, str]]) -> list[int]:
        """Token ids of a rendered prompt after the shared head (its system message must be ours)."""
        text = self._render(messages)
        if not text.startswith(self._head_text):
            raise RuntimeError("this prompt does not start with the shared head")
        return self.tokenizer.encode(text[len(self._head_text):], add_special_tokens=False)

    def generate_after_head(self, rests: list[list[int]], max_new_tokens: int,
                            min_new_tokens: int = 0) -> list[list[int]]:
        """Greedy generation for prompts [head][pads][rest], reusing the head's KV cache."""
        import torch

        n, head = len(rests), len(self._head_ids)
        seg, seg_mask = self._left_pad(rests)
        head_ids = torch.tensor([self._head_ids], dtype=torch.long, device=self.device).expand(n, -1)
        ids = torch.cat([head_ids, seg], dim=1)
        mask = torch.cat([torch.ones((n, head), dtype=seg_mask.dtype, device=self.device), seg_mask], dim=1)
        out = self.model.generate(input_ids=ids, attention_mask=mask, do_sample=False,
                                  max_new_tokens=max_new_tokens, min_new_tokens=min_new_tokens,
                                  pad_token_id=self.pad_id, **{self._cache_kw: self._head_cache_for(n)})
        self.forward_passes += out.shape[1] - ids.shape[1]
        return [row[ids.shape[1]:].tolist() for row in out]

    def _rationales(self, items: list[tuple[str, str]]) -> list[str]:
        rests = [self.after_head(prompt.explain_messages(t, x, self.dimensions, self.special_tokens))
                 for t, x in items]
        return [self.tokenizer.decode(row, skip_special_tokens=True).strip()
                for row in self.generate_after_head(rests, self.max_new_tokens)]

    # ----- the Backend interface -----------------------------------------------------------

    def _score_pairs(self, pairs: list[tuple[str, str]]):
        """Rows of DimensionScore for (topic, capped text) pairs; halves the batch on out-of-memory."""
        import torch

        try:
            with torch.inference_mode():
                dists = self._distributions([self._prefix_ids(t, x) for t, x in pairs])
                rows: list[dict[str, DimensionScore]] = [{} for _ in pairs]
                for dim, (probs, mass) in dists.items():
                    conf, level = probs.max(dim=-1)
                    for i, row in enumerate(rows):
                        row[dim] = judge_mass(DimensionScore(value=int(level[i]), confidence=float(conf[i]),
                                                             answer_mass=float(mass[i])),
                                              self.answer_mass_floor)
                notes = self._rationales(pairs) if self.explain else [None] * len(pairs)
        except torch.OutOfMemoryError:
            if len(pairs) == 1:
                raise
            if self.device.startswith("cuda"):
                torch.cuda.empty_cache()
            half = len(pairs) // 2
            log.warning("out of memory with a batch of %d; scoring it in halves "
                        "(consider a smaller worker.batch_size)", len(pairs))
            rows_a, notes_a = self._score_pairs(pairs[:half])
            rows_b, notes_b = self._score_pairs(pairs[half:])
            return rows_a + rows_b, notes_a + notes_b
        return rows, notes

    def sources(self) -> dict[str, str]:
        lora = f" with the LoRA adapter {self.adapter}" if self.adapter else ""
        return {"*": f"the language model {self.model_id}{lora} answering the rubric prompt"}

    def prompt_ids(self, topic: str, text: str, dimension: str) -> list[int]:
        """The exact token ids scored for one comment and dimension: head, data block, suffix.

        The next token after them is the level; ``llm_worker.training.finetune`` trains on these.
        """
        return self._head_ids + self._prefix_ids(topic, self._cap_text(text)[0]) + self._suffix_ids[dimension]

    def value_ids(self) -> list[int]:
        """Token ids of "0".."10" (single tokens only; finetune needs them)."""
        if not self.single_token_values:
            raise RuntimeError("the tokenizer splits some of the values 0..10 into several tokens")
        return [ids[0] for ids in self._value_ids]

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        """One result per item; a failing batch gives transient error results, never an exception."""
        if not items:
            return []
        capped = [self._cap_text(it.text) for it in items]
        pairs = [(it.topic, text) for it, (text, _) in zip(items, capped, strict=True)]
        try:
            rows, notes = self._score_pairs(pairs)
        except Exception as e:  # noqa: BLE001 - e.g. out of memory for one comment: retried later
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

        self.model = None
        if self.device.startswith("cuda"):
            torch.cuda.empty_cache()
