"""Scoring through any OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama, llama.cpp).

This is how one database feeds a GPU cluster: each worker process keeps
``openai.concurrency`` requests in flight, the server batches them (and caches
the shared system-prompt prefix).

Per comment: one request asking for a JSON object with every dimension, guided by a
JSON schema, temperature 0, and logprobs when configured (the confidence of a value
is the probability of its token(s); None when the server gives no logprobs). The
ways of guiding are tried in the order of ``GUIDES`` (vLLM >= 0.12 ``structured_outputs``,
``response_format`` json_schema, vLLM < 0.12 ``guided_json``, none); one is dropped
when the server answers 400 to it or when the invalid answers under it show that the
server ignores it. The answers are validated in every case. Special-token strings in
the comment are broken (``prompt.neutralise`` with ``openai.special_tokens``).

Failure handling, so that a score is never invented:
* timeouts, connection errors, 5xx, 408 and 429 are retried ``max_retries`` times with
  exponential back-off (429's Retry-After is honoured); still failing -> an error
  result with ``final=False`` (the worker retries the comment later);
* any other 4xx is permanent (a wrong key, model name or request shape): the batch
  raises PermanentBackendError naming the setting to check, and the worker stops;
  except a content-filter refusal (Zhipu error 1301, a body saying the content was
  blocked, finish_reason "sensitive"/"content_filter", or a refusal sentence instead
  of JSON), which fails that comment finally as "refused by the server's content
  filter", and a prompt longer than the server's context, which fails that comment;
* an answer that is not valid JSON, misses a dimension or has a value outside the
  integers 0–10 gets ONE retry with the stricter prompt; still invalid -> an error
  result with ``final=True`` and the raw answer kept.
With ``openai.method = "likelihood"`` the backend instead scores like the
transformers backend: one request per dimension whose prompt ends with the
assistant's "分数：" (vLLM/SGLang ``continue_final_message``), reading the logprobs
of the one answer token: exactly for the eleven level tokens where vLLM offers
``logprob_token_ids`` (ids looked up once through its /tokenize), else from the top
logprobs (at most the server's --max-logprobs), with the gap the missing levels may
carry recorded. The most likely level is stored with its probability among the
eleven levels and the answer mass.

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
from llm_worker.scoring.backends.base import (
    REFUSED,
    DimensionScore,
    PermanentBackendError,
    ScoreInput,
    ScoreResult,
    judge_mass,
)
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


TOP_LOGPROBS = 20  # vLLM's default --max-logprobs; the 11 levels fit

#: Ways to ask for schema-guided output, best first (checked against vLLM's docs, 2026-12-01):
#: ``structured_outputs: {"json": schema}`` (vLLM 0.10.2 and later; the only field left in
#: 0.12+), the standard ``response_format`` json_schema (vLLM since 0.6, SGLang, OpenAI), and
#: the old top-level ``guided_json`` (vLLM before 0.12; removed in 0.12, which ignores it
#: with HTTP 200). A server that ignores a field it does not know is caught by the share of
#: invalid answers under guidance (``IGNORED_AFTER``).
GUIDES = ("structured_outputs", "response_format", "guided_json")
#: Guidance counts as ignored after this many invalid answers under it, if they are at least
#: half of its answers: with guidance honoured an answer is valid by construction.
IGNORED_AFTER = 2

#: Sentences a model (or a hosted API's filter) answers instead of JSON when it refuses.
REFUSAL = re.compile(
    r"抱歉|对不起|很遗憾|我无法|无法(?:协助|提供|回答|完成|处理|满足)|不能(?:协助|提供|回答|处理)|"
    r"敏感内容|不安全(?:或敏感)?的?内容|违反.{0,12}(?:政策|规定)|"
    r"\bI(?:'m| am) (?:sorry|unable)|\bI can(?:no|')t (?:help|assist|comply|provide)|\bcontent (?:policy|filter)",
    re.I)
#: Error bodies (any 4xx) and finish reasons that mean the content filter blocked the request:
#: Zhipu's code 1301 ("系统检测到输入或生成内容可能包含不安全或敏感内容"), finish_reason
#: "sensitive" (Zhipu) or "content_filter" (OpenAI, Azure).
FILTER_BODY = re.compile(r'"code"\s*:\s*"?1301\b|content[_ ]filter|content_policy|'
                         r'(?:content|prompt|input|request)[^"]{0,40}(?:was |were |been )?blocked|'
                         r'不安全或敏感|敏感内容|内容安全', re.I)
FILTER_FINISH = ("sensitive", "content_filter")
CONTEXT_TOO_LONG = re.compile(r"maximum context length|context length|too many tokens|prompt is too long",
                              re.I)
MAX_LOGPROBS = re.compile(r"logprobs? of \d+, which is greater than max allowed: (\d+)", re.I)


class Refused(Exception):
    """The server's content filter refused the request; ``raw`` is what it said."""

    def __init__(self, raw: str) -> None:
        super().__init__(REFUSED)
        self.raw = raw


class TooLong(Exception):
    """The server rejected this comment's prompt as longer than its context."""


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


class OpenAIBackend:
    """Scores comments through an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, base_url: str, model: str, *, dimensions: tuple[str, ...] = CORE_DIMENSIONS,
                 api_key: str | None = None, concurrency: int = 8, timeout: float = 60.0,
                 max_retries: int = 3, backoff: float = 1.0, guided_json: bool = True,
                 logprobs: bool = True, explain: bool = False, method: str = "json",
                 top_logprobs: int = TOP_LOGPROBS, special_tokens: list[str] | tuple[str, ...] = (),
                 answer_mass_floor: float = 0.5, api_key_env: str = "OPENAI_API_KEY") -> None:
        if method not in ("json", "likelihood"):
            raise ValueError(f"method must be json or likelihood, not {method!r}")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.name = f"openai:{model}"
        self.dimensions = tuple(dimensions)
        self.explain = explain
        self.method = method
        self.schema = prompt.json_schema(self.dimensions, explain)  # validates the dimension names
        self._api_key = api_key
        self.api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        #: Ways to ask for schema-guided output still in play, the one in use first. One is
        #: dropped when the server answers HTTP 400 to it, or when the invalid answers under
        #: it show that the server ignores it; with none left, the prompt and the validation
        #: do the work. What the server accepted is remembered for the life of the process.
        self.guides = list(GUIDES) if guided_json else []
        self._guide_counts = {g: [0, 0] for g in GUIDES}  # answers, invalid answers
        self._ignored_logged = False
        self._accepted_logged = False
        self.logprobs = logprobs
        self.top_logprobs = max(1, int(top_logprobs))  # more than 20 needs vLLM --max-logprobs
        self.special_tokens = tuple(special_tokens) or prompt.DEFAULT_SPECIAL_TOKENS
        self.answer_mass_floor = answer_mass_floor
        #: Token ids of "0".."10" for vLLM's ``logprob_token_ids`` (exact level logprobs):
        #: None until looked up through the server's /tokenize, () when it cannot be used.
        self.value_token_ids: tuple[int, ...] | None = None
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        self._lock = threading.Lock()
        #: Requests sent, retries made, stricter retries and refusals, for logs and benchmarks.
        self.stats = {"requests": 0, "retries": 0, "strict_retries": 0, "refused": 0}

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.url!r}, model={self.model!r})"

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> OpenAIBackend:
        """Build from ``cfg.openai``; the key is read from the env var named by ``api_key_env``."""
        from weibo_mh.config import ConfigError

        o = cfg.openai
        dims = overrides.get("dimensions") or dimensions_for(cfg.worker.rubric)
        if not all(isinstance(t, str) and t for t in o.special_tokens):
            raise ConfigError("openai.special_tokens must be a list of non-empty strings")
        if o.top_logprobs < 1:
            raise ConfigError("openai.top_logprobs must be at least 1")
        key = os.environ.get(o.api_key_env) if o.api_key_env else None
        return cls(overrides.get("base_url") or o.base_url, overrides.get("model") or o.model,
                   dimensions=tuple(dims), api_key=key or None, concurrency=o.concurrency,
                   timeout=o.timeout_seconds, max_retries=o.max_retries, backoff=o.backoff_seconds,
                   guided_json=o.guided_json, logprobs=o.logprobs,
                   explain=bool(overrides.get("explain", False)), method=o.method,
                   top_logprobs=o.top_logprobs, special_tokens=list(o.special_tokens),
                   answer_mass_floor=cfg.worker.answer_mass_floor, api_key_env=o.api_key_env)

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
        if guide == "structured_outputs":
            body["structured_outputs"] = {"json": self.schema}
        elif guide == "response_format":
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

    def chat(self, messages: list[dict[str, str]], extra: dict[str, Any] | None = None,
             ) -> tuple[str, list[dict] | None, str | None]:
        """(content, token logprobs or None, guide used or None).

        Retries transient trouble (raises TransientError when it persists); raises
        Refused, TooLong, InvalidAnswer and PermanentBackendError. ``extra`` adds body
        fields (the likelihood method's prefill and logprobs) and turns guidance off.
        """
        attempt = 0
        while True:
            with self._lock:
                self.stats["requests"] += 1
            body = self._payload(messages)
            if extra:
                body = {k: v for k, v in body.items() if k not in GUIDES}
                body.update(extra)
                if "top_logprobs" in body:
                    body["top_logprobs"] = self.top_logprobs
                if self.value_token_ids:
                    body["logprob_token_ids"] = list(self.value_token_ids)
            problem, retry_after = self._post(body)
            if isinstance(problem, tuple):
                used = next((g for g in GUIDES if g in body), None)
                return problem[0], problem[1], used
            if problem == "resend":
                continue  # at once, without what the server rejected
            if attempt >= self.max_retries:
                raise TransientError(f"{problem} (after {self.max_retries} retries)")
            wait = self._delay(attempt, retry_after)
            log.warning("%s; retry %d/%d in %.1fs", problem, attempt + 1, self.max_retries, wait)
            with self._lock:
                self.stats["retries"] += 1
            time.sleep(wait)
            attempt += 1

    def _post(self, body: dict[str, Any]) -> tuple[Any, str | None]:
        """One request: ((content, logprobs), None) on success, "resend" after dropping a field
        the server rejected, else (problem text, Retry-After) for a transient problem."""
        try:
            r = self._session().post(self.url, data=json.dumps(body, ensure_ascii=False).encode(),
                                     timeout=self.timeout)
        except requests.Timeout:
            return f"timeout after {self.timeout:g}s", None
        except requests.ConnectionError as e:
            return f"connection error: {type(e).__name__}", None
        if r.status_code in (408, 429) or r.status_code >= 500:
            return f"HTTP {r.status_code} from {self.url}", r.headers.get("Retry-After")
        if r.status_code >= 400:
            return self._client_error(r, body), None
        try:
            choice = r.json()["choices"][0]
            finish = choice.get("finish_reason")
            content = choice["message"].get("content")
            if finish in FILTER_FINISH:
                raise Refused(f"finish_reason={finish}: {content or ''}")
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise InvalidAnswer("the server's reply is not a chat completion", r.text) from None
        lp = choice.get("logprobs") or {}
        return (content, lp.get("content") if isinstance(lp, dict) else None), None

    def _client_error(self, r: requests.Response, body: dict[str, Any]) -> str:
        """A 4xx other than 408 and 429: a refusal, a comment too long, a field to drop, or a
        configuration mistake (PermanentBackendError, naming the setting to check)."""
        text = r.text[:500]
        if FILTER_BODY.search(text):
            raise Refused(f"HTTP {r.status_code}: {text}")
        if r.status_code in (400, 413, 422) and CONTEXT_TOO_LONG.search(text):
            raise TooLong(f"the server rejected the prompt as too long (HTTP {r.status_code}: "
                          f"{text[:200]}); lower worker.max_chars")
        m = MAX_LOGPROBS.search(text)
        if r.status_code in (400, 422) and m and int(m.group(1)) < 1:
            raise PermanentBackendError(f"HTTP {r.status_code} from {self.url}: {text[:300]}. The server returns "
                                        "no logprobs (vLLM --max-logprobs 0): start it with --max-logprobs 20, "
                                        "or set openai.method = \"json\" and openai.logprobs = false")
        if r.status_code in (400, 422) and m and int(m.group(1)) < self.top_logprobs:
            with self._lock:
                if int(m.group(1)) < self.top_logprobs:
                    self.top_logprobs = max(1, int(m.group(1)))
                    log.warning("the server allows at most %d top logprobs (vLLM --max-logprobs); asking "
                                "for %d from now on: levels outside them are recorded as a mass gap "
                                "(start vLLM with --max-logprobs 20 to avoid it)",
                                self.top_logprobs, self.top_logprobs)
            return "resend"
        if r.status_code in (400, 422) and "logprob_token_ids" in body:
            with self._lock:
                if self.value_token_ids:
                    self.value_token_ids = ()
                    log.warning("the server rejected logprob_token_ids (HTTP %d: %s); reading the "
                                "levels from the top logprobs instead", r.status_code, text[:200])
            return "resend"
        used = next((g for g in GUIDES if g in body), None)
        if r.status_code in (400, 422) and used:
            self._drop_guide(used, f"the server rejected it (HTTP {r.status_code}: {text[:200]})")
            return "resend"
        raise PermanentBackendError(self._permanent_message(r.status_code, text))

    def _permanent_message(self, status: int, text: str) -> str:
        where = f"HTTP {status} from {self.url}: {text[:300]}"
        if status in (401, 403):
            return (f"{where}. Check the API key: openai.api_key_env names the environment variable "
                    f"holding it (now {self.api_key_env!r}, "
                    f"{'set' if self._api_key else 'not set'} in this environment)")
        if status == 404:
            return (f"{where}. Check openai.model (now {self.model!r}: the name the server serves, see "
                    f"GET {self.base_url}/models) and openai.base_url (it should end in /v1)")
        return (f"{where}. The server refuses the request itself: check openai.method "
                f"(now {self.method!r}), openai.logprobs, openai.guided_json and the server's flags")

    # ----- guided output -------------------------------------------------------------------

    def _drop_guide(self, guide: str, why: str) -> None:
        with self._lock:
            if not self.guides or self.guides[0] != guide:
                return
            self.guides.pop(0)
            log.warning("guided output via %s dropped: %s; next: %s (answers are validated either way)",
                        guide, why, self.guides[0] if self.guides else "no guided output")

    def _note_answer(self, guide: str | None, valid: bool) -> bool:
        """Count an answer under ``guide``; True when it shows that the guide is ignored."""
        if guide is None:
            return False
        with self._lock:
            counts = self._guide_counts[guide]
            counts[0] += 1
            counts[1] += not valid
            if valid and not self._accepted_logged:
                self._accepted_logged = True
                log.info("guided output: the server accepts %s", guide)
            ignored = counts[1] >= IGNORED_AFTER and counts[1] * 2 >= counts[0]
            first = ignored and not self._ignored_logged
            if first:
                self._ignored_logged = True
        if ignored:
            why = (f"{counts[1]} of {counts[0]} answers under it were invalid, so the server "
                   "ignores it (vLLM >= 0.12 ignores guided_json; older vLLM ignores structured_outputs)")
            if first:
                log.warning("guided output looks ignored by the server: %s", why)
            self._drop_guide(guide, why)
        return ignored

    # ----- scoring -------------------------------------------------------------------------

    def _ask(self, item: ScoreInput, strict: bool, problem: str | None) -> dict[str, DimensionScore]:
        """One JSON answer; an answer made invalid because guidance was ignored is asked again."""
        messages = prompt.json_messages(item.topic, item.text, self.dimensions, strict=strict,
                                        problem=problem, explain=self.explain,
                                        special_tokens=self.special_tokens)
        for _ in range(len(GUIDES) + 1):
            content, logprobs, guide = self.chat(messages)
            try:
                scores = parse_scores(content, self.dimensions, logprobs)
            except InvalidAnswer:
                if self._note_answer(guide, valid=False) or (guide and self.guides[:1] != [guide]):
                    continue  # that guide was ignored: ask again with the next way of guiding
                raise
            self._note_answer(guide, valid=True)
            return scores
        raise InvalidAnswer("the server ignored every way of guiding the output", content)

    def _lookup_value_ids(self) -> tuple[int, ...]:
        """Ids of "0".."10" from vLLM's /tokenize, for exact level logprobs; () if unavailable."""
        root = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url
        ids: list[int] = []
        try:
            for v in LEVELS:
                r = self._session().post(root + "/tokenize", timeout=self.timeout, data=json.dumps(
                    {"model": self.model, "prompt": str(v), "add_special_tokens": False}).encode())
                toks = r.json().get("tokens") if r.status_code == 200 else None
                if not isinstance(toks, list) or len(toks) != 1:
                    return ()
                ids.append(int(toks[0]))
        except (requests.RequestException, ValueError, TypeError, AttributeError):
            return ()
        return tuple(ids) if len(set(ids)) == len(LEVELS) else ()

    def _likelihood(self, item: ScoreInput) -> dict[str, DimensionScore]:
        """One request per dimension: the prompt ends with the assistant's "分数：" and the
        logprobs of the next token give the distribution over "0".."10", as in the
        transformers backend. Where the server supports it (vLLM ``logprob_token_ids``) the
        eleven levels' logprobs are asked for exactly; otherwise the top logprobs are read and
        the mass the missing levels may carry is recorded. The server's prefix cache shares
        the system prompt and the comment across dimensions."""
        if self.value_token_ids is None:
            ids = self._lookup_value_ids()
            with self._lock:
                if self.value_token_ids is None:
                    self.value_token_ids = ids
                    log.info("level logprobs: %s", "exact (logprob_token_ids)" if ids else
                             f"top {self.top_logprobs} (no /tokenize with single-token values)")
        extra = {"max_tokens": 1, "logprobs": True, "top_logprobs": self.top_logprobs,
                 "add_generation_prompt": False, "continue_final_message": True}
        out: dict[str, DimensionScore] = {}
        for d in self.dimensions:
            messages = prompt.likelihood_messages(item.topic, item.text, d, self.dimensions,
                                                  self.special_tokens)
            messages.append({"role": "assistant", "content": prompt.ANSWER_PREFIX})
            content, logprobs, _ = self.chat(messages, extra)
            exact = bool(self.value_token_ids)
            score = level_from_top_logprobs(content, logprobs, None if exact else self.top_logprobs)
            out[d] = judge_mass(score, self.answer_mass_floor)
        return out

    def _refused(self, raw: str) -> ScoreResult:
        with self._lock:
            self.stats["refused"] += 1
        return ScoreResult(error=REFUSED, raw_output=raw[:RAW_KEEP], final=True, refused=True)

    def score_one(self, item: ScoreInput) -> ScoreResult:
        """Score one comment; raises only PermanentBackendError (no comment is at fault)."""
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
                    if is_refusal(second.raw) or is_refusal(first.raw):
                        return self._refused(second.raw)
                    return ScoreResult(error=f"invalid answer after the stricter retry: {second}",
                                       raw_output=second.raw[:RAW_KEEP], final=True)
        except Refused as e:
            return self._refused(e.raw)
        except TooLong as e:
            return ScoreResult(error=str(e), final=True)
        except TransientError as e:
            return ScoreResult(error=str(e), final=False)
        except PermanentBackendError:
            raise
        except Exception as e:  # noqa: BLE001 - one bad item must not sink the batch
            log.exception("unexpected error scoring one comment")
            return ScoreResult(error=f"{type(e).__name__}: {e}"[:500], final=False)

    def sources(self) -> dict[str, str]:
        return {"*": f"the language model {self.model} answering the rubric prompt"}

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        """Score up to ``concurrency`` comments at a time; results in input order.

        Raises PermanentBackendError when the server refuses the configuration itself.
        """
        return list(self._pool.map(self.score_one, items))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
