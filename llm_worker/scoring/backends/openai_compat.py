"""Scoring through any OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama, llama.cpp).

This is how one database feeds a GPU cluster: each worker process keeps
``openai.concurrency`` requests in flight, the server batches them (and caches
the shared system-prompt prefix).

Per comment: one request asking for a JSON object with every dimension, guided by a
JSON schema (``response_format`` json_schema), temperature
0, and logprobs when configured (the confidence of a value is the probability of
its token(s); None when the server gives no logprobs). A server that answers 400 to
``response_format`` is asked with vLLM's older ``guided_json`` parameter, and then
without guidance; the answers are validated in every case.

Failure handling, so that a score is never invented:
* timeouts, connection errors, 5xx and 429 are retried ``max_retries`` times with
  exponential back-off (429's Retry-After is honoured); still failing -> an error
  result with ``final=False`` (the worker retries the comment later);
* an answer that is not valid JSON, misses a dimension or has a value outside the
  integers 0–10 gets ONE retry with the stricter prompt; still invalid -> an error
  result with ``final=True`` and the raw answer kept.
With ``openai.method = "likelihood"`` the backend instead scores like the
transformers backend: one request per dimension whose prompt ends with the
assistant's "分数：" (vLLM/SGLang ``continue_final_message``), reading the top
logprobs of the one answer token; the most likely level is stored with its
probability among the eleven levels.

The API key comes from the environment variable named by ``openai.api_key_env``
and is never logged.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from llm_worker.scoring import prompt
from llm_worker.scoring.backends.base import DimensionScore, ScoreInput, ScoreResult
from weibo_mh.rubric import CORE_DIMENSIONS, LEVELS, dimensions_for

log = logging.getLogger(__name__)

RAW_KEEP = 4000  # characters of a bad answer kept for the failed-comment record
RATIONALE_KEEP = 500
BACKOFF_MAX = 60.0


class TransientError(Exception):
    """The server could not answer now (timeout, 5xx, 429, connection); retrying later may help."""


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


TOP_LOGPROBS = 20  # the most vLLM and OpenAI return; the 11 levels fit


def level_from_top_logprobs(content: str, token_logprobs: list[dict] | None) -> DimensionScore:
    """The most likely level 0–10 of the first answer token and its probability among the levels.

    Token variants of one level (" 7", "7") are added up; levels absent from the top
    logprobs count as 0. Raises InvalidAnswer when no level is among them at all.
    """
    try:
        top = token_logprobs[0]["top_logprobs"] if token_logprobs else []
        pairs = [(t["token"].strip(), math.exp(float(t["logprob"]))) for t in top]
    except (KeyError, IndexError, TypeError, ValueError):
        pairs = []
    mass = [0.0] * len(LEVELS)
    for tok, prob in pairs:
        if tok.isdigit() and str(int(tok)) == tok and int(tok) in LEVELS:
            mass[int(tok)] += prob
    total = sum(mass)
    if total <= 0:
        raise InvalidAnswer("no level 0-10 among the top logprobs of the answer (does the server "
                            "return top_logprobs and accept continue_final_message?)", content)
    value = max(LEVELS, key=lambda v: mass[v])
    return DimensionScore(value=value, confidence=mass[value] / total)


class OpenAIBackend:
    """Scores comments through an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, base_url: str, model: str, *, dimensions: tuple[str, ...] = CORE_DIMENSIONS,
                 api_key: str | None = None, concurrency: int = 8, timeout: float = 60.0,
                 max_retries: int = 3, backoff: float = 1.0, guided_json: bool = True,
                 logprobs: bool = True, explain: bool = False, method: str = "json") -> None:
        if method not in ("json", "likelihood"):
            raise ValueError(f"method must be json or likelihood, not {method!r}")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"openai:{model}"
        self.dimensions = tuple(dimensions)
        self.explain = explain
        self.method = method
        self.schema = prompt.json_schema(self.dimensions, explain)  # validates the dimension names
        self._api_key = api_key
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        #: Ways to ask for schema-guided output, best first: the standard response_format, then
        #: vLLM's older ``guided_json`` extra parameter. One is dropped each time the server
        #: answers HTTP 400 to it; with none left, the prompt and the validation do the work.
        self.guides = ["response_format", "guided_json"] if guided_json else []
        self.logprobs = logprobs
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        self._lock = threading.Lock()
        #: Requests sent, retries made and stricter retries, for logs and benchmarks.
        self.stats = {"requests": 0, "retries": 0, "strict_retries": 0}

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.url!r}, model={self.model!r})"

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> OpenAIBackend:
        """Build from ``cfg.openai``; the key is read from the env var named by ``api_key_env``."""
        o = cfg.openai
        dims = overrides.get("dimensions") or dimensions_for(cfg.worker.rubric)
        key = os.environ.get(o.api_key_env) if o.api_key_env else None
        return cls(overrides.get("base_url") or o.base_url, overrides.get("model") or o.model,
                   dimensions=tuple(dims), api_key=key or None, concurrency=o.concurrency,
                   timeout=o.timeout_seconds, max_retries=o.max_retries, backoff=o.backoff_seconds,
                   guided_json=o.guided_json, logprobs=o.logprobs,
                   explain=bool(overrides.get("explain", False)), method=o.method)

    # ----- HTTP ----------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            s.headers["Content-Type"] = "application/json"
            if self._api_key:
                s.headers["Authorization"] = f"Bearer {self._api_key}"
            self._local.session = s
        return s

    def _payload(self, messages: list[dict[str, str]]) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0,
                                "max_tokens": 32 + 16 * len(self.dimensions) + 200 * self.explain}
        guide = self.guides[0] if self.guides else None
        if guide == "response_format":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "scores", "schema": self.schema, "strict": True}}
        elif guide == "guided_json":
            body["guided_json"] = self.schema
        if self.logprobs:
            body["logprobs"] = True
        return body

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(BACKOFF_MAX, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(BACKOFF_MAX, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)

    def chat(self, messages: list[dict[str, str]],
             extra: dict[str, Any] | None = None) -> tuple[str, list[dict] | None]:
        """(content, token logprobs or None). Retries transient trouble; raises TransientError.

        ``extra`` replaces or adds body fields (the likelihood method's prefill and logprobs).
        """
        attempt = 0
        while True:
            with self._lock:
                self.stats["requests"] += 1
            body = self._payload(messages)
            if extra:
                body = {k: v for k, v in body.items() if k not in ("response_format", "guided_json")}
                body.update(extra)
            problem, retry_after = self._post(body)
            if isinstance(problem, tuple):
                return problem
            if problem == "schema rejected":
                continue  # resend at once with the next way of guiding, or none
            if attempt >= self.max_retries:
                raise TransientError(f"{problem} (after {self.max_retries} retries)")
            wait = self._delay(attempt, retry_after)
            log.warning("%s; retry %d/%d in %.1fs", problem, attempt + 1, self.max_retries, wait)
            with self._lock:
                self.stats["retries"] += 1
            time.sleep(wait)
            attempt += 1

    def _post(self, body: dict[str, Any]) -> tuple[Any, str | None]:
        """One request: ((content, logprobs), None) on success, else (problem text, Retry-After)."""
        try:
            r = self._session().post(self.url, data=json.dumps(body, ensure_ascii=False).encode(),
                                     timeout=self.timeout)
        except requests.Timeout:
            return f"timeout after {self.timeout:g}s", None
        except requests.ConnectionError as e:
            return f"connection error: {type(e).__name__}", None
        if r.status_code == 429 or r.status_code >= 500:
            return f"HTTP {r.status_code} from {self.url}", r.headers.get("Retry-After")
        used = next((g for g in ("response_format", "guided_json") if g in body), None)
        if r.status_code == 400 and used:
            with self._lock:
                if self.guides and self.guides[0] == used:
                    self.guides.pop(0)
                    log.warning("the server rejected %s (HTTP 400: %s); next: %s (answers are "
                                "validated either way)", used, r.text[:200],
                                self.guides[0] if self.guides else "no guided output")
            return "schema rejected", None
        if r.status_code >= 400:
            raise TransientError(f"HTTP {r.status_code} from {self.url}: {r.text[:200]}")
        try:
            choice = r.json()["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError):
            raise InvalidAnswer("the server's reply is not a chat completion", r.text) from None
        lp = choice.get("logprobs") or {}
        return (content, lp.get("content") if isinstance(lp, dict) else None), None

    # ----- scoring -------------------------------------------------------------------------

    def _ask(self, item: ScoreInput, strict: bool, problem: str | None) -> dict[str, DimensionScore]:
        messages = prompt.json_messages(item.topic, item.text, self.dimensions, strict=strict,
                                        problem=problem, explain=self.explain)
        content, logprobs = self.chat(messages)
        return parse_scores(content, self.dimensions, logprobs)

    def _likelihood(self, item: ScoreInput) -> dict[str, DimensionScore]:
        """One request per dimension: the prompt ends with the assistant's "分数：" and the
        top logprobs of the next token give the distribution over "0".."10", as in the
        transformers backend. The server's prefix cache shares the system prompt and comment."""
        extra = {"max_tokens": 1, "logprobs": True, "top_logprobs": TOP_LOGPROBS,
                 "add_generation_prompt": False, "continue_final_message": True}
        out: dict[str, DimensionScore] = {}
        for d in self.dimensions:
            messages = prompt.likelihood_messages(item.topic, item.text, d, self.dimensions)
            messages.append({"role": "assistant", "content": prompt.ANSWER_PREFIX})
            content, logprobs = self.chat(messages, extra)
            out[d] = level_from_top_logprobs(content, logprobs)
        return out

    def score_one(self, item: ScoreInput) -> ScoreResult:
        """Score one comment; never raises."""
        try:
            if self.method == "likelihood":
                try:
                    return ScoreResult(scores=self._likelihood(item))
                except InvalidAnswer as e:  # a server without logprobs: asking again cannot help
                    return ScoreResult(error=f"likelihood scoring impossible: {e}",
                                       raw_output=e.raw[:RAW_KEEP], final=True)
            try:
                return ScoreResult(scores=self._ask(item, strict=False, problem=None))
            except InvalidAnswer as first:
                log.info("invalid answer (%s); one stricter retry", first)
                with self._lock:
                    self.stats["strict_retries"] += 1
                try:
                    return ScoreResult(scores=self._ask(item, strict=True, problem=str(first)))
                except InvalidAnswer as second:
                    return ScoreResult(error=f"invalid answer after the stricter retry: {second}",
                                       raw_output=second.raw[:RAW_KEEP], final=True)
        except TransientError as e:
            return ScoreResult(error=str(e), final=False)
        except Exception as e:  # noqa: BLE001 - one bad item must not sink the batch
            log.exception("unexpected error scoring one comment")
            return ScoreResult(error=f"{type(e).__name__}: {e}"[:500], final=False)

    def sources(self) -> dict[str, str]:
        return {"*": f"the language model {self.model} answering the rubric prompt"}

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        """Score up to ``concurrency`` comments at a time; results in input order."""
        return list(self._pool.map(self.score_one, items))

    def close(self) -> None:
        self._pool.shutdown(wait=True)
