"""Scoring through any OpenAI-compatible chat-completions server (vLLM, SGLang, Ollama, llama.cpp).

This is how one database feeds a GPU cluster: each worker process keeps
``openai.concurrency`` requests in flight, the server batches them (and caches
the shared system-prompt prefix).

Start-up (``prepare``: run by the worker before the first claim, which waits while the server is
away, and by ``score_batch`` itself when nobody ran it, as in evaluation; nothing is assumed):
* ``GET /v1/models``: the configured model must be listed (empty ``openai.model``: the
  server's only model). A mismatch stops the worker with one line. The scorer name is
  ``openai:<model the server reports>:<method>`` (``:json`` or ``:likelihood``).
* JSON method: each way of guiding (``GUIDES``) is tried on a probe whose prompt asks for
  prose; a guide is in force only when the probe comes back as bare JSON matching the
  schema. A 4xx or 5xx whose body names the field means the server does not support it:
  it is dropped and the body logged once. One log line says which guide is in force.
* Likelihood method: the server's tokenizer (vLLM ``/tokenize``, llama-cpp-python
  ``/extras/tokenize``) says how each level 0-10 is spelt in tokens, and the prompt the
  server will score is checked: either ``continue_final_message`` is honoured (the chat
  prompt grows only by the answer prefix), or the chat template named by
  ``openai.chat_template`` renders exactly the server's prompt (the next-token logprobs
  of ``/v1/completions`` on it equal those of ``/v1/chat/completions``). Otherwise the
  worker refuses with one line naming the server, what it lacks and ``method = "json"``.

Per comment (JSON method): one request asking for a JSON object with every dimension,
temperature 0, ``logprobs`` with ``top_logprobs: 1`` (llama-cpp-python returns no
logprobs without it); the confidence of a value is the probability of its token(s).
The answers are validated in every case. Special-token strings in the comment are
broken (``prompt.neutralise`` with ``openai.special_tokens``).

Per comment (likelihood method): per dimension, the next-token top logprobs after
"分数：" (and after "分数：1" where a level is spelt in two tokens, as "10" is by Qwen's
tokenizer): a level's probability is that of its whole token sequence, P("1")·P("0"|"1")
for 10 and P("1")·P(no further digit|"1") for 1; see ``level_scores``.

Failure handling, so that a score is never invented:
* timeouts, connection errors, 5xx, 408 and 429 are retried ``max_retries`` times with
  exponential back-off (429's Retry-After is honoured); still failing -> the server is
  unavailable: the result says so (``unavailable``) and the worker hands the comment back
  without counting an attempt, then waits for the server;
* any other 4xx is permanent (a wrong key, model name or request shape): the batch
  raises PermanentBackendError naming the setting to check, and the worker stops;
  except a content-filter refusal (Zhipu error 1301, a body saying the content was
  blocked, finish_reason "sensitive"/"content_filter", or a refusal sentence instead
  of JSON), which fails that comment finally as "refused by the server's content
  filter", and a prompt longer than the server's context, which fails that comment;
* an answer that is not valid JSON, misses a dimension or has a value outside the
  integers 0–10 gets ONE retry with the stricter prompt; still invalid -> an error
  result with ``final=True`` and the raw answer kept.

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
    BackendUnavailable,
    DimensionScore,
    PermanentBackendError,
    ScoreInput,
    ScoreResult,
    judge_mass,
)
from llm_worker.scoring.backends.openai_answers import (
    InvalidAnswer,
    Tops,
    is_refusal,
    level_scores,
    parse_scores,
    top_pairs,
)
from llm_worker.scoring.chat_template import load_chat_template, render_chat
from weibo_mh.rubric import CORE_DIMENSIONS, LEVELS, dimensions_for

log = logging.getLogger(__name__)

RAW_KEEP = 4000  # characters of a bad answer kept for the failed-comment record
BACKOFF_MAX = 60.0


class TransientError(BackendUnavailable):
    """The server could not answer now (timeout, 5xx, 429, connection), even after the retries."""


TOP_LOGPROBS = 20  # vLLM's default --max-logprobs; the 11 levels fit

#: Ways to ask for schema-guided output, best first (checked against vLLM's docs, 2026-12-01,
#: and llama-cpp-python 0.3.36's server code): ``structured_outputs: {"json": schema}`` (vLLM
#: 0.10.2 and later; the only field left in 0.12+), the standard ``response_format`` json_schema
#: (vLLM since 0.6, SGLang, OpenAI; llama-cpp-python answers it with HTTP 500 "Input should be
#: 'text' or 'json_object'"), llama.cpp's ``response_format: {"type": "json_object", "schema":
#: ...}`` ("json_object": llama-cpp-python turns the schema into a grammar), and the old
#: top-level ``guided_json`` (vLLM before 0.12; removed in 0.12, which ignores it with HTTP
#: 200). Servers ignore fields they do not know (llama-cpp-python ignores structured_outputs
#: and guided_json), so each is verified on a probe at start-up (``OpenAIBackend.prepare``).
GUIDES = ("structured_outputs", "response_format", "json_object", "guided_json")
#: The body field each guide travels in (what an error body names when it is unsupported).
GUIDE_FIELD = {"structured_outputs": "structured_outputs", "response_format": "response_format",
               "json_object": "response_format", "guided_json": "guided_json"}
#: A prompt that makes an unguided model write prose: only guidance can turn it into JSON.
PROBE_MESSAGES = [{"role": "system", "content": "只回答“好的”两个字，不要输出 JSON，不要输出数字。"},
                  {"role": "user", "content": "请回答。"}]
#: Guidance counts as ignored after this many invalid answers under it, if they are at least
#: half of its answers: with guidance honoured an answer is valid by construction.
IGNORED_AFTER = 2

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


class OpenAIBackend:
    """Scores comments through an OpenAI-compatible ``/chat/completions`` endpoint."""

    def __init__(self, base_url: str, model: str, *, dimensions: tuple[str, ...] = CORE_DIMENSIONS,
                 api_key: str | None = None, concurrency: int = 8, timeout: float = 60.0,
                 max_retries: int = 3, backoff: float = 1.0, guided_json: bool = True,
                 logprobs: bool = True, explain: bool = False, method: str = "json",
                 top_logprobs: int = TOP_LOGPROBS, special_tokens: list[str] | tuple[str, ...] = (),
                 answer_mass_floor: float = 0.5, api_key_env: str = "OPENAI_API_KEY",
                 chat_template: str = "") -> None:
        if method not in ("json", "likelihood"):
            raise ValueError(f"method must be json or likelihood, not {method!r}")
        self.base_url = base_url.rstrip("/")
        self.url = self.base_url + "/chat/completions"
        self.model = model
        self.dimensions = tuple(dimensions)
        self.explain = explain
        self.method = method
        self.name = self._scorer_name()
        self.schema = prompt.json_schema(self.dimensions, explain)  # validates the dimension names
        self._api_key = api_key
        self.api_key_env = api_key_env
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff = backoff
        #: Ways to ask for schema-guided output still in play, the one in use first. One is
        #: dropped when the server rejects it (an error body naming its field), when the start-up
        #: probe shows that the server ignores it, or when the invalid answers under it do.
        self.guides = list(GUIDES) if guided_json else []
        self._guide_counts = {g: [0, 0] for g in GUIDES}  # answers, invalid answers
        self._ignored_logged = False
        self.logprobs = logprobs
        self.top_logprobs = max(1, int(top_logprobs))  # more than 20 needs vLLM --max-logprobs
        self.special_tokens = tuple(special_tokens) or prompt.DEFAULT_SPECIAL_TOKENS
        self.answer_mass_floor = answer_mass_floor
        #: Likelihood method: a chat template file (.gguf or Jinja) rendered here, so that the
        #: answer prefix is scored through /v1/completions where the server ignores
        #: continue_final_message (llama-cpp-python).
        self.chat_template = chat_template
        self._template: tuple[str, str, str] | None = None
        #: "chat" (continue_final_message) or "completions" (the template rendered here); set by
        #: ``prepare``.
        self.route: str | None = None
        #: How the server spells each level in tokens ({10: ("1", "0")} on Qwen's tokenizer).
        self.spelling: dict[int, tuple[str, ...]] = {v: (str(v),) for v in LEVELS}
        #: Token ids of "0".."10" for vLLM's ``logprob_token_ids`` (exact level logprobs), set by
        #: ``prepare`` through the server's tokenizer; () when they cannot be used.
        self.value_token_ids: tuple[int, ...] = ()
        self.prepared = False
        #: Held while ``prepare`` runs (not ``_lock``, which prepare's helpers take themselves).
        self._prepare_lock = threading.Lock()
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="openai")
        self._lock = threading.Lock()
        self._logged: set[str] = set()
        #: Requests sent, retries made, stricter retries and refusals, for logs and benchmarks.
        self.stats = {"requests": 0, "retries": 0, "strict_retries": 0, "refused": 0}

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.url!r}, model={self.model!r})"

    def _scorer_name(self) -> str:
        """``openai:<model>:<method>``: JSON and likelihood scores never replace each other."""
        return f"openai:{self.model}:{self.method}"

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
        template = getattr(o, "chat_template", "") or ""
        if template and not os.path.isfile(template):
            raise ConfigError(f"openai.chat_template: no such file: {template}")
        key = os.environ.get(o.api_key_env) if o.api_key_env else None
        return cls(overrides.get("base_url") or o.base_url, overrides.get("model") or o.model,
                   dimensions=tuple(dims), api_key=key or None, concurrency=o.concurrency,
                   timeout=o.timeout_seconds, max_retries=o.max_retries, backoff=o.backoff_seconds,
                   guided_json=o.guided_json, logprobs=o.logprobs,
                   explain=bool(overrides.get("explain", False)), method=o.method,
                   top_logprobs=o.top_logprobs, special_tokens=list(o.special_tokens),
                   answer_mass_floor=cfg.worker.answer_mass_floor, api_key_env=o.api_key_env,
                   chat_template=template)

    def _log_once(self, key: str, level: int, msg: str, *args: Any) -> None:
        with self._lock:
            if key in self._logged:
                return
            self._logged.add(key)
        log.log(level, msg, *args)

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

    def _payload(self, messages: list[dict[str, str]], guide: str | None) -> dict[str, Any]:
        body: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": 0,
                                "max_tokens": 32 + 16 * len(self.dimensions) + 200 * self.explain}
        if guide == "structured_outputs":
            body["structured_outputs"] = {"json": self.schema}
        elif guide == "response_format":
            body["response_format"] = {"type": "json_schema", "json_schema": {
                "name": "scores", "schema": self.schema, "strict": True}}
        elif guide == "json_object":
            body["response_format"] = {"type": "json_object", "schema": self.schema}
        elif guide == "guided_json":
            body["guided_json"] = self.schema
        if self.logprobs:
            # top_logprobs too: llama-cpp-python returns no logprobs at all without it.
            body["logprobs"] = True
            body["top_logprobs"] = 1
        return body

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        if retry_after:
            try:
                return min(BACKOFF_MAX, max(0.0, float(retry_after)))
            except ValueError:
                pass
        return min(BACKOFF_MAX, self.backoff * 2 ** attempt) * (0.5 + random.random() / 2)

    def _call(self, url: str, make_body: Any, retries: int | None = None) -> tuple[dict[str, Any], str | None]:
        """POST ``make_body()`` to ``url`` until it answers 200: (reply JSON, guide used).

        ``make_body`` returns (body, guide) and is called again for every attempt, so that a
        field dropped after a rejection is left out. Transient trouble is retried ``retries``
        times (default ``max_retries``), then raises TransientError; raises Refused, TooLong
        and PermanentBackendError as ``_client_error`` decides.
        """
        retries = self.max_retries if retries is None else retries
        attempt = 0
        while True:
            with self._lock:
                self.stats["requests"] += 1
            body, guide = make_body()
            problem, retry_after = self._post(url, body, guide)
            if isinstance(problem, dict):
                return problem, guide
            if problem == "resend":
                continue  # at once, without what the server rejected
            if attempt >= retries:
                raise TransientError(f"{problem} (after {retries} retries)")
            wait = self._delay(attempt, retry_after)
            log.warning("%s; retry %d/%d in %.1fs", problem, attempt + 1, retries, wait)
            with self._lock:
                self.stats["retries"] += 1
            time.sleep(wait)
            attempt += 1

    def chat(self, messages: list[dict[str, str]], extra: dict[str, Any] | None = None,
             ) -> tuple[str, list[dict] | None, str | None]:
        """(content, token logprobs or None, guide used or None).

        Retries transient trouble (raises TransientError when it persists); raises
        Refused, TooLong, InvalidAnswer and PermanentBackendError. ``extra`` adds body
        fields (the likelihood method's prefill and logprobs) and turns guidance off.
        """
        def make() -> tuple[dict[str, Any], str | None]:
            guide = self.guides[0] if self.guides and not extra else None
            body = self._payload(messages, guide)
            if extra:
                body.update(extra)
                if "top_logprobs" in body:
                    body["top_logprobs"] = self.top_logprobs
                if self.value_token_ids:
                    body["logprob_token_ids"] = list(self.value_token_ids)
            return body, guide

        reply, guide = self._call(self.url, make)
        try:
            choice = reply["choices"][0]
            finish = choice.get("finish_reason")
            content = choice["message"].get("content")
            if finish in FILTER_FINISH:
                raise Refused(f"finish_reason={finish}: {content or ''}")
            if not isinstance(content, str):
                raise TypeError("content is not a string")
        except (KeyError, IndexError, TypeError, AttributeError):
            raise InvalidAnswer("the server's reply is not a chat completion", json.dumps(reply)[:RAW_KEEP]) from None
        lp = choice.get("logprobs") or {}
        return content, lp.get("content") if isinstance(lp, dict) else None, guide

    def _post(self, url: str, body: dict[str, Any], guide: str | None) -> tuple[Any, str | None]:
        """One request: (reply JSON, None) on success, "resend" after dropping a field the server
        rejected, else (problem text, Retry-After) for a transient problem."""
        try:
            r = self._session().post(url, data=json.dumps(body, ensure_ascii=False).encode(),
                                     timeout=self.timeout)
        except requests.Timeout:
            return f"timeout after {self.timeout:g}s", None
        except requests.ConnectionError as e:
            return f"connection error: {type(e).__name__}", None
        if r.status_code >= 400 and self._drop_named_field(r, body, guide):
            return "resend", None
        if r.status_code in (408, 429) or r.status_code >= 500:
            return f"HTTP {r.status_code} from {url}", r.headers.get("Retry-After")
        if r.status_code >= 400:
            return self._client_error(r, body, guide), None
        try:
            reply = r.json()
            if not isinstance(reply, dict):
                raise ValueError
        except ValueError:
            raise InvalidAnswer("the server's reply is not JSON", r.text[:RAW_KEEP]) from None
        return reply, None

    def _drop_named_field(self, r: requests.Response, body: dict[str, Any], guide: str | None) -> bool:
        """A 4xx or 5xx whose body names an optional field we sent: the server does not support
        it. The guide is dropped (its body logged once) and the request sent again without it."""
        text = r.text[:500]
        if guide and GUIDE_FIELD[guide] in text and not FILTER_BODY.search(text):
            self._drop_guide(guide, f"the server rejected it (HTTP {r.status_code}: {text[:300]})")
            return True
        if "logprob_token_ids" in body and "logprob_token_ids" in text:
            with self._lock:
                if self.value_token_ids:
                    self.value_token_ids = ()
                    log.warning("the server rejected logprob_token_ids (HTTP %d: %s); reading the "
                                "levels from the top logprobs instead", r.status_code, text[:200])
            return True
        return False

    def _client_error(self, r: requests.Response, body: dict[str, Any], guide: str | None) -> str:
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
        if r.status_code in (400, 422) and guide:
            self._drop_guide(guide, f"the server rejected it (HTTP {r.status_code}: {text[:300]})")
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

    # ----- start-up checks -----------------------------------------------------------------

    def prepare(self) -> None:
        """Check, once, what the server really does (see the module docstring).

        Raises BackendUnavailable when the server does not answer (the worker waits), and
        PermanentBackendError with one line when it cannot score as configured.
        """
        with self._prepare_lock:
            if self.prepared:
                return
            self._check_model()
            if self.method == "likelihood":
                self._prepare_likelihood()
            elif self.guides:
                self._probe_guides()
            else:
                log.info("guided output: off (openai.guided_json = false); answers are validated")
            self.prepared = True

    def _get(self, url: str) -> requests.Response:
        try:
            return self._session().get(url, timeout=self.timeout)
        except requests.RequestException as e:
            raise TransientError(f"{url}: {type(e).__name__}") from None

    def _check_model(self) -> None:
        """The configured model must be one the server lists (empty: its only model)."""
        url = self.base_url + "/models"
        r = self._get(url)
        if r.status_code in (408, 429) or r.status_code >= 500:
            raise TransientError(f"HTTP {r.status_code} from {url}")
        if r.status_code in (401, 403):
            raise PermanentBackendError(self._permanent_message(r.status_code, r.text))
        try:
            ids = [str(m["id"]) for m in r.json()["data"]] if r.status_code == 200 else None
        except (ValueError, KeyError, TypeError):
            ids = None
        if ids is None:
            if not self.model:
                raise PermanentBackendError(f"GET {url} lists no models (HTTP {r.status_code}) and "
                                            "openai.model is empty: set openai.model")
            log.warning("GET %s lists no models (HTTP %d); trusting openai.model = %r",
                        url, r.status_code, self.model)
            return
        if self.model not in ids:
            if not self.model and len(ids) == 1:
                self.model = ids[0]
            else:
                which = (f"serves only {ids[0]!r}: set openai.model = {ids[0]!r} (or leave it empty)"
                         if len(ids) == 1 else f"serves {ids}: set openai.model to one of them")
                raise PermanentBackendError(
                    f"openai.model is {self.model!r} but the server at {self.base_url} {which}")
        self.name = self._scorer_name()
        log.info("model: %s (listed by GET %s); scorer name %s", self.model, url, self.name)

    def _probe_guides(self) -> None:
        """Find the first guide the server really honours: the probe asks for prose, so only a
        guide in force can turn the answer into bare JSON matching the schema."""
        while self.guides:
            guide = self.guides[0]
            try:
                reply, used = self._call(self.url, lambda: (self._probe_body(self.guides[0] if self.guides else None),
                                                            self.guides[0] if self.guides else None), retries=0)
            except TransientError as e:
                # A 5xx that names nothing: if the server answers the same probe unguided, the
                # guide is what breaks it. (A timeout or a refused connection says nothing.)
                if not str(e).startswith("HTTP 5"):
                    raise
                try:
                    self._call(self.url, lambda: (self._probe_body(None), None), retries=0)
                except TransientError:
                    raise e from None
                self._drop_guide(guide, f"the server fails on it ({e})")
                continue
            if used != guide:
                continue  # dropped after an error body named it; try the next
            try:
                content = reply["choices"][0]["message"]["content"]
            except (KeyError, IndexError, TypeError):
                content = None
            if isinstance(content, str) and self._bare_valid(content):
                log.info("guided output in force: %s (the start-up probe, which asks for prose, came back "
                         "as bare JSON matching the schema)", guide)
                return
            self._drop_guide(guide, f"the server ignores it (the probe answer was not bare JSON matching "
                                    f"the schema: {str(content)[:80]!r})")
        log.info("guided output in force: none (the server honours none of %s); every answer is validated",
                 ", ".join(GUIDES))

    def _probe_body(self, guide: str | None) -> dict[str, Any]:
        body = self._payload(PROBE_MESSAGES, guide)
        body.pop("logprobs", None)
        body.pop("top_logprobs", None)
        return body

    def _bare_valid(self, content: str) -> bool:
        try:
            obj = json.loads(content)
            parse_scores(content, self.dimensions)
        except (InvalidAnswer, ValueError, RecursionError):
            return False
        extra = set(obj) - set(self.dimensions) - {prompt.RATIONALE_KEY}
        return content.strip().startswith("{") and not extra

    def _tokenizer(self) -> Any:
        """A function text -> token ids through the server's tokenizer, or None.

        vLLM serves ``POST /tokenize`` ({"prompt"} -> {"tokens"}); llama-cpp-python serves
        ``POST /extras/tokenize`` ({"input"} -> {"tokens"}, BOS included when the model adds
        one, so the ids of "" are cut off the front).
        """
        root = self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

        def ask(path: str, payload: dict[str, Any]) -> list[int] | None:
            try:
                r = self._session().post(root + path, data=json.dumps(payload, ensure_ascii=False).encode(),
                                         timeout=self.timeout)
            except requests.RequestException as e:
                raise TransientError(f"{root + path}: {type(e).__name__}") from None
            if r.status_code >= 500:
                raise TransientError(f"HTTP {r.status_code} from {root + path}")
            try:
                toks = r.json().get("tokens") if r.status_code == 200 else None
            except (ValueError, AttributeError):
                return None
            return [int(t) for t in toks] if isinstance(toks, list) else None

        if ask("/tokenize", {"model": self.model, "prompt": "0", "add_special_tokens": False}) is not None:
            return lambda text: ask("/tokenize", {"model": self.model, "prompt": text, "add_special_tokens": False})
        empty = ask("/extras/tokenize", {"model": self.model, "input": ""})
        if empty is None:
            return None

        def extras(text: str) -> list[int] | None:
            ids = ask("/extras/tokenize", {"model": self.model, "input": text})
            return ids[len(empty):] if ids is not None and ids[:len(empty)] == empty else ids
        return extras

    def _refuse(self, missing: str) -> PermanentBackendError:
        return PermanentBackendError(f"likelihood scoring is impossible on the server at {self.base_url} "
                                     f"(model {self.model}): {missing}. Set openai.method = \"json\" to score "
                                     "with schema-guided JSON answers instead")

    def _prepare_likelihood(self) -> None:
        tok = self._tokenizer()
        if tok is None:
            raise self._refuse("it serves no tokenizer endpoint (vLLM /tokenize, llama-cpp-python "
                               "/extras/tokenize), so how it spells the levels 0-10 in tokens is unknown")
        digits = {str(d): tok(str(d)) for d in range(10)}
        for v in LEVELS:
            ids = tok(str(v))
            if ids is not None and len(ids) == 1:
                self.spelling[v] = (str(v),)
            elif ids is not None and ids == [i for c in str(v) for i in (digits[c] or [-1])]:
                self.spelling[v] = tuple(str(v))
            else:
                raise self._refuse(f"its tokenizer spells the level {v} as {ids}, neither one token nor "
                                   "one token per digit")
        split = [v for v in LEVELS if len(self.spelling[v]) > 1]
        if all(len(digits[str(d)] or []) == 1 for d in range(10)) and not split:
            ids = tuple(i for v in LEVELS for i in (tok(str(v)) or []))
            self.value_token_ids = ids if len(set(ids)) == len(LEVELS) else ()
        else:
            self.value_token_ids = ()
        if self.chat_template:
            self._check_template()
            self.route = "completions"
        else:
            self._check_continue(tok)
            self.route = "chat"
        log.info("likelihood scoring: levels read from %s; %s; prompt %s",
                 "exact level logprobs (logprob_token_ids)" if self.value_token_ids else
                 f"the top {self.top_logprobs} logprobs",
                 f"levels spelt in two tokens: {split} (scored as token sequences)" if split else
                 "every level is one token",
                 "rendered here from openai.chat_template and scored through /v1/completions "
                 "(checked: the server's own chat prompt gives the same logprobs)" if self.route == "completions"
                 else "prefilled with continue_final_message (checked: the server honours it)")

    def _usage(self, reply: dict[str, Any]) -> int | None:
        try:
            return int(reply["usage"]["prompt_tokens"])
        except (KeyError, TypeError, ValueError):
            return None

    def _check_continue(self, tok: Any) -> None:
        """The chat prompt with the prefilled answer prefix must grow by that prefix only; a
        server that ignores continue_final_message closes the turn and opens a fresh one."""
        msgs = prompt.likelihood_messages("话题", "评论", self.dimensions[0], self.dimensions, self.special_tokens)
        base, _ = self._call(self.url, lambda: ({"model": self.model, "messages": msgs, "max_tokens": 1,
                                                 "temperature": 0}, None), retries=0)
        filled, _ = self._call(self.url, lambda: (
            {"model": self.model, "messages": [*msgs, {"role": "assistant", "content": prompt.ANSWER_PREFIX}],
             "max_tokens": 1, "temperature": 0, "add_generation_prompt": False,
             "continue_final_message": True}, None), retries=0)
        a, b = self._usage(base), self._usage(filled)
        prefix = tok("\n" + prompt.ANSWER_PREFIX)
        if a is None or b is None or prefix is None:
            raise self._refuse("it reports no usage.prompt_tokens, so whether it honours "
                               "continue_final_message cannot be checked")
        if not 0 < b - a <= len(prefix):
            raise self._refuse(
                f"it ignores continue_final_message (the prompt grew by {b - a} tokens for the "
                f"{len(prefix)}-token answer prefix: the answer would be scored in a fresh assistant turn). "
                "Set openai.chat_template to the model's .gguf file (or its Jinja chat template) to score "
                "through /v1/completions")

    def _check_template(self) -> None:
        """The prompt rendered here must be the one the server renders: the next-token logprobs
        of /v1/completions on it must equal those of /v1/chat/completions on the messages."""
        try:
            self._template = load_chat_template(self.chat_template)
            msgs = prompt.likelihood_messages("话题", "评论", self.dimensions[0], self.dimensions,
                                              self.special_tokens)
            text = render_chat(self._template, msgs)
        except (OSError, ValueError, TypeError) as e:
            raise PermanentBackendError(f"openai.chat_template {self.chat_template}: {e}") from None
        chat, _ = self._call(self.url, lambda: ({"model": self.model, "messages": msgs, "max_tokens": 1,
                                                 "temperature": 0, "logprobs": True, "top_logprobs": 5},
                                                None), retries=0)
        comp, _ = self._call(self.base_url + "/completions", lambda: (
            {"model": self.model, "prompt": text, "max_tokens": 1, "temperature": 0, "logprobs": 5}, None),
            retries=0)
        try:
            a = dict(top_pairs(chat["choices"][0]["logprobs"]["content"][0]["top_logprobs"]))
            b = dict(top_pairs(comp["choices"][0]["logprobs"]["top_logprobs"][0]))
        except (KeyError, IndexError, TypeError):
            raise self._refuse("its chat or completions replies carry no top logprobs") from None
        same = (a.keys() == b.keys() and all(abs(math.log(a[k]) - math.log(b[k])) < 1e-3 for k in a)
                and self._usage(chat) == self._usage(comp))
        if not same:
            raise self._refuse(f"openai.chat_template ({self.chat_template}) does not render the prompt the "
                               "server renders (the next-token logprobs differ): point it at the served "
                               "model's own .gguf file")

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

    def _next_tokens(self, item: ScoreInput, dimension: str, after: str) -> tuple[Tops, str]:
        """The top next tokens after "分数：" + ``after`` for one dimension's prompt, and the
        answer text the server gave (for the failed-comment record)."""
        messages = prompt.likelihood_messages(item.topic, item.text, dimension, self.dimensions,
                                              self.special_tokens)
        if self.route == "completions":
            assert self._template is not None
            text = render_chat(self._template, messages)
            if text.endswith("<|assistant|>"):
                text += "\n"  # as the transformers backend: GLM-4 writes the newline itself
            body = {"model": self.model, "prompt": text + prompt.ANSWER_PREFIX + after, "max_tokens": 1,
                    "temperature": 0, "logprobs": self.top_logprobs}
            reply, _ = self._call(self.base_url + "/completions", lambda: (dict(body, logprobs=self.top_logprobs),
                                                                            None))
            try:
                choice = reply["choices"][0]
                return top_pairs((choice.get("logprobs") or {}).get("top_logprobs", [None])[0]), str(choice["text"])
            except (KeyError, IndexError, TypeError, AttributeError):
                raise InvalidAnswer("the server's reply is not a completion", json.dumps(reply)[:RAW_KEEP]) from None
        messages.append({"role": "assistant", "content": prompt.ANSWER_PREFIX + after})
        extra = {"max_tokens": 1, "logprobs": True, "top_logprobs": self.top_logprobs,
                 "add_generation_prompt": False, "continue_final_message": True}
        content, logprobs, _ = self.chat(messages, extra)
        try:
            top = logprobs[0]["top_logprobs"] if logprobs else []
        except (KeyError, IndexError, TypeError):
            top = []
        return top_pairs(top), content

    def _likelihood(self, item: ScoreInput) -> dict[str, DimensionScore]:
        """Per dimension, the next-token logprobs after "分数：" (and after "分数：1" where a level
        is spelt in two tokens) give every level's probability as a token sequence
        (``level_scores``). The server's prefix cache shares the system prompt and the comment
        across dimensions."""
        prefixes = sorted({"".join(p[:i]) for p in self.spelling.values() for i in range(1, len(p))})
        out: dict[str, DimensionScore] = {}
        for d in self.dimensions:
            root, content = self._next_tokens(item, d, "")
            if not root:
                raise InvalidAnswer("no level 0-10 among the top logprobs of the answer (does the server "
                                    "return top_logprobs?)", content)
            after = {p: self._next_tokens(item, d, p)[0] for p in prefixes}
            exact = bool(self.value_token_ids)
            out[d] = judge_mass(level_scores(root, after, self.spelling, None if exact else self.top_logprobs),
                                self.answer_mass_floor)
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
            return ScoreResult(error=f"model server unavailable: {e}", final=False, unavailable=True)
        except PermanentBackendError:
            raise
        except Exception as e:  # noqa: BLE001 - one bad item must not sink the batch
            log.exception("unexpected error scoring one comment")
            return ScoreResult(error=f"{type(e).__name__}: {e}"[:500], final=False)

    def sources(self) -> dict[str, str]:
        return {"*": f"the language model {self.model} answering the rubric prompt"}

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        """Score up to ``concurrency`` comments at a time; results in input order.

        Runs the start-up checks first when nobody did (evaluation, paraphrasing build the
        backend without the worker): a server away then makes every result ``unavailable``.
        Raises PermanentBackendError when the server refuses the configuration itself.
        """
        if not self.prepared:
            try:
                self.prepare()
            except BackendUnavailable as e:
                return [ScoreResult(error=f"model server unavailable: {e}", final=False, unavailable=True)
                        for _ in items]
        return list(self._pool.map(self.score_one, items))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
