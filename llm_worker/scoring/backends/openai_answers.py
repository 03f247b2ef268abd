"""Reading what an OpenAI-compatible server answered: JSON scores, refusals, level logprobs.

Pure functions over the answer text and the logprobs (no HTTP), shared by the openai
backend's two methods: ``parse_scores`` validates a JSON answer and reads its confidences,
``level_scores`` turns next-token top logprobs into a level with every level scored as
its whole token sequence, ``is_refusal`` tells a refusal sentence from an answer.
"""

from __future__ import annotations

import json
import math
import re

from llm_worker.scoring import prompt
from llm_worker.scoring.backends.base import DimensionScore
from weibo_mh.rubric import LEVELS

RATIONALE_KEEP = 500


class InvalidAnswer(Exception):
    """The answer is not a valid set of scores; ``raw`` is what the server said."""

    def __init__(self, problem: str, raw: str) -> None:
        super().__init__(problem)
        self.raw = raw


def parse_scores(content: str, dimensions: tuple[str, ...],
                 token_logprobs: list[dict] | None = None) -> dict[str, DimensionScore]:
    """Validate an answer: one JSON object, every dimension an integer 0–10. Raises InvalidAnswer.

    A Markdown code fence around the object is tolerated; anything else is not. A string
    under ``prompt.RATIONALE_KEY`` (explain mode) becomes every dimension's rationale.
    """
    text = content.strip()
    fence = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, flags=re.S)
    if fence:
        text = fence.group(1)
    try:
        obj = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise InvalidAnswer("the answer is not valid JSON", content) from None
    if not isinstance(obj, dict):
        raise InvalidAnswer("the answer is not a JSON object", content)
    missing = [d for d in dimensions if d not in obj]
    if missing:
        raise InvalidAnswer(f"missing dimensions: {', '.join(missing)}", content)
    bad = [f"{d}={obj[d]!r}" for d in dimensions
           if not (isinstance(obj[d], int) and not isinstance(obj[d], bool) and 0 <= obj[d] <= 10)]
    if bad:
        raise InvalidAnswer(f"values must be integers 0-10: {', '.join(bad)}", content)
    conf = value_confidences(content, dimensions, token_logprobs)
    note = obj.get(prompt.RATIONALE_KEY)
    if isinstance(note, str) and note.strip():
        note = note.strip()[:RATIONALE_KEEP]
    else:
        note = None
    return {d: DimensionScore(value=obj[d], confidence=conf.get(d), rationale=note) for d in dimensions}


def value_confidences(content: str, dimensions: tuple[str, ...],
                      token_logprobs: list[dict] | None) -> dict[str, float]:
    """Probability of each value's token(s), from the chat-completions ``logprobs.content`` list.

    The tokens are laid end to end to find which of them spell the number after
    ``"dimension":``; when they do not spell the answer exactly, no confidence is given.
    """
    if not token_logprobs:
        return {}
    try:
        tokens = [(t["token"], float(t["logprob"])) for t in token_logprobs]
    except (KeyError, TypeError, ValueError):
        return {}
    if "".join(tok for tok, _ in tokens) != content:
        return {}
    starts, pos = [], 0
    for tok, _ in tokens:
        starts.append(pos)
        pos += len(tok)
    out: dict[str, float] = {}
    for d in dimensions:
        m = re.search(rf'"{re.escape(d)}"\s*:\s*(\d+)', content)
        if not m:
            continue
        lo, hi = m.span(1)
        logp = sum(lp for (tok, lp), s in zip(tokens, starts, strict=True)
                   if s < hi and s + len(tok) > lo)
        out[d] = min(1.0, math.exp(logp))
    return out


#: Sentences a model (or a hosted API's filter) answers instead of JSON when it refuses.
REFUSAL = re.compile(
    r"抱歉|对不起|很遗憾|我无法|无法(?:协助|提供|回答|完成|处理|满足)|不能(?:协助|提供|回答|处理)|"
    r"敏感内容|不安全(?:或敏感)?的?内容|违反.{0,12}(?:政策|规定)|"
    r"\bI(?:'m| am) (?:sorry|unable)|\bI can(?:no|')t (?:help|assist|comply|provide)|\bcontent (?:policy|filter)",
    re.I)
def is_refusal(content: str) -> bool:
    """An answer that is a refusal sentence instead of JSON (short, no braces)."""
    text = content.strip()
    return bool(text) and "{" not in text and len(text) < 400 and REFUSAL.search(text) is not None


def level_from_top_logprobs(content: str, token_logprobs: list[dict] | None,
                            top_k: int | None = None) -> DimensionScore:
    """The most likely level 0–10 of the first answer token, its probability among the levels,
    the answer mass (the levels' probability together) and, when levels are missing from the
    top logprobs, the gap: at most ``missing × smallest listed probability`` (when the list
    was cut at ``top_k``; a shorter list is everything the server had).

    Token variants of one level (" 7", "7") are added up; levels absent from the top
    logprobs count as 0 in the level and the mass (the mass is then a lower bound). Raises
    InvalidAnswer when no level is among them at all.
    """
    try:
        top = token_logprobs[0]["top_logprobs"] if token_logprobs else []
        pairs = [(t["token"].strip(), math.exp(float(t["logprob"]))) for t in top]
    except (KeyError, IndexError, TypeError, ValueError):
        pairs = []
    mass = [0.0] * len(LEVELS)
    seen: set[int] = set()
    for tok, prob in pairs:
        if tok.isdigit() and str(int(tok)) == tok and int(tok) in LEVELS:
            mass[int(tok)] += prob
            seen.add(int(tok))
    total = sum(mass)
    if total <= 0:
        raise InvalidAnswer("no level 0-10 among the top logprobs of the answer (does the server "
                            "return top_logprobs and accept continue_final_message?)", content)
    value = max(LEVELS, key=lambda v: mass[v])
    missing = len(LEVELS) - len(seen)
    gap = None
    if missing:
        cut = top_k is None or len(pairs) >= top_k
        gap = min(1.0, missing * min(p for _, p in pairs)) if cut else 0.0
    return DimensionScore(value=value, confidence=mass[value] / total, answer_mass=min(1.0, total),
                          mass_gap=gap)


Tops = list[tuple[str, float]]


def top_pairs(top: list[dict] | dict | None) -> Tops:
    """(token text, probability) pairs from a chat ``top_logprobs`` list or a completions dict."""
    try:
        if isinstance(top, dict):
            return [(str(t), math.exp(float(lp))) for t, lp in top.items()]
        return [(str(t["token"]), math.exp(float(t["logprob"]))) for t in top or []]
    except (KeyError, TypeError, ValueError, AttributeError):
        return []


def _mass(pairs: Tops, piece: str) -> float:
    """Probability of ``piece`` as the next token (variants such as " 7" and "7" added up)."""
    return sum(p for tok, p in pairs if tok.strip() == piece)


def level_scores(root: Tops, after: dict[str, Tops], spelling: dict[int, tuple[str, ...]],
                 top_k: int | None = None) -> DimensionScore:
    """The most likely level from the next-token top logprobs, every level scored as its
    whole token sequence.

    ``root`` is what may follow "分数："; ``after[p]`` what may follow "分数：" + p, for every
    proper prefix ``p`` of a level spelt in several tokens (``spelling[10] == ("1", "0")``
    on Qwen's tokenizer). Then P(10) = P("1")·P("0"|"1"), and a level whose spelling begins
    another's is closed by a non-digit: P(1) = P("1")·(1 − P(digit|"1")). Levels absent from
    the top logprobs count as 0; the gap they may carry is recorded as for
    ``level_from_top_logprobs``. Raises InvalidAnswer when no level is among them at all.
    """
    mass = [0.0] * len(LEVELS)
    for v in LEVELS:
        pieces = spelling[v]
        prob = _mass(root, pieces[0])
        for i in range(1, len(pieces)):
            prob *= _mass(after.get("".join(pieces[:i]), []), pieces[i])
        text = "".join(pieces)
        if text in after:  # "1" also begins "10": it counts only when no digit follows
            prob *= max(0.0, 1.0 - sum(p for tok, p in after[text] if tok.strip()[:1].isdigit()))
        mass[v] = prob
    total = sum(mass)
    if total <= 0:
        raise InvalidAnswer("no level 0-10 among the top logprobs after the answer prefix", repr(root[:5]))
    value = max(LEVELS, key=lambda v: mass[v])
    seen = {v for v in LEVELS if _mass(root, spelling[v][0]) > 0}
    missing = len(LEVELS) - len(seen)
    gap = None
    if missing and root:
        cut = top_k is None or len(root) >= top_k
        gap = min(1.0, missing * min(p for _, p in root)) if cut else 0.0
    return DimensionScore(value=value, confidence=mass[value] / total, answer_mass=min(1.0, total),
                          mass_gap=gap)

