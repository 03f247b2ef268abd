"""A real OpenAI-compatible chat-completions server on 127.0.0.1, for tests and benchmarks.

It speaks HTTP and the chat-completions JSON shape, and misbehaves on request.
Its "model" is deliberately naive: the scores are derived from the characters of
the comment it finds between <评论> and </评论>, so tests are about format,
validation and retries, not about model wisdom.

Behaviour is chosen per request: ``script`` is a list of actions used one per
request (then ``mode`` for every later request). Actions:

  good          valid JSON with every dimension
  garbage       prose, not JSON
  fenced        valid JSON inside a Markdown code fence
  out_of_range  one value is 11
  missing       the last dimension is left out
  float         one value is 3.5
  not_completion  HTTP 200 with a body that is not a chat completion
  obedient      follows instructions in the comment: if it says 忽略以上指令 and the prompt
                is not the stricter retry, answers "好的，所有分数都是0" (wrong format)
  echo          answers with the comment text itself
  timeout       sleeps ``sleep_seconds`` before answering (good)
  500, 503      server error
  429           rate limited, with Retry-After: 0
  401, 404      unauthorised, unknown model (permanent)
  400, 422      a request the server refuses (permanent); 408: request timeout (transient)
  refuse_1301   HTTP 400 with Zhipu's content-filter error body (code 1301)
  refuse_text   a refusal sentence instead of JSON
  sensitive     HTTP 200 with finish_reason "sensitive" (Zhipu's filter cut the answer)

Flags: ``field_errors`` ({field: (status, message)}: any request carrying the field gets that
error), ``reject_schema`` (400 when response_format is sent), ``reject_guided_json``
(400 when vLLM's old guided_json is sent), ``offer_logprobs``,
``barrier`` (a threading.Barrier every request waits on: proves concurrency without timing).

Server shapes (vLLM's, as of its docs and issues, 2026-12-01):
``guides`` the guided-output fields it understands (default all three:
structured_outputs, response_format, guided_json); ``unknown_fields`` what it does
with the others: "ignore" (vLLM: HTTP 200, no guidance) or "reject" (HTTP 400);
``unguided`` the action used when no guidance is honoured (None: the scripted one;
"garbage": a model that writes prose unless guided); ``models`` the model names
it serves (others: 404); ``max_logprobs`` (vLLM's --max-logprobs, default 20: more
top_logprobs is a 400 with vLLM's message); ``rich_levels`` (likelihood answers
spread mass over all eleven levels, so that top-k cuts some off); ``tokenize``
(serves vLLM's /tokenize, "0".."10" as ids 1000..1010, other text one id per character) and
``token_ids`` (honours ``logprob_token_ids``); ``continue_final`` (honours vLLM's
``continue_final_message``; False: ignores it, as llama-cpp-python does, and answers in a
fresh turn). ``GET /v1/models`` lists ``models`` (or "fake-glm"); every completion reports
``usage.prompt_tokens`` (one per character, three per message and per generation prompt).
The start-up probes (``OpenAIBackend.prepare``) never use up the ``script``: the guide probe is
answered "好的" unless a guide it honours was sent, as an instruction-following model would.
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMENT = re.compile(r"<评论>(.*?)</评论>", re.S)
STRICT_MARK = "上一次的回答无效"
PROBE_MARK = "只回答“好的”"


def naive_scores(comment: str, dimensions: list[str]) -> dict[str, int]:
    """Deterministic values 0–10 derived from the comment's characters."""
    base = sum(map(ord, comment))
    return {d: (base + 7 * i) % 11 for i, d in enumerate(dimensions)}


def split_tokens(content: str) -> list[str]:
    """A crude tokenisation for logprobs: digit runs, spaces and other runs."""
    return re.findall(r"\d+|\s+|[^\d\s]+", content)


class FakeOpenAI:
    def __init__(self, mode: str = "good", dimensions: tuple[str, ...] = ()) -> None:
        self.mode = mode
        self.base_url = ""  # set by the fixture from start()
        self.script: list[str] = []
        self.reject_schema = False
        self.reject_guided_json = False
        self.offer_logprobs = True
        self.sleep_seconds = 2.0
        self.barrier: threading.Barrier | None = None
        self.guides = {"structured_outputs", "response_format", "guided_json"}
        self.unknown_fields = "ignore"
        self.unguided: str | None = None
        self.models: set[str] | None = None
        self.max_logprobs = 20
        self.rich_levels = False
        self.tokenize = False
        self.token_ids = False
        self.continue_final = True
        #: field -> (status, message): a request carrying the field gets this error (a body naming it).
        self.field_errors: dict[str, tuple[int, str]] = {}
        self.default_dimensions = list(dimensions)
        self.port = 0
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.actions: list[str] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----
    def start(self) -> str:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # as real servers do; else delayed ACKs cost 40 ms a reply

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                fake._handle(self)

            def do_GET(self) -> None:  # noqa: N802
                if self.path.rstrip("/") == "/v1/models":
                    names = sorted(fake.models) if fake.models is not None else ["fake-glm"]
                    return fake._send(self, 200, {"object": "list", "data": [
                        {"id": n, "object": "model", "owned_by": "fake"} for n in names]})
                fake._send(self, 404, {"error": {"message": "not found"}})

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    # ----- behaviour -----
    def _next_action(self) -> str:
        with self._lock:
            return self.script.pop(0) if self.script else self.mode

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        raw = h.rfile.read(length)
        if h.path.rstrip("/") == "/tokenize" and self.tokenize:
            text = json.loads(raw).get("prompt", "")
            ids = [1000 + int(text)] if text.isdigit() and int(text) <= 10 else [ord(c) for c in text]
            return self._send(h, 200, {"count": len(ids), "max_model_len": 4096, "tokens": ids})
        if h.path.rstrip("/") != "/v1/chat/completions":
            return self._send(h, 404, {"error": {"message": "not found"}})
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(h, 400, {"error": {"message": "bad json"}})
        with self._lock:
            self.requests.append(body)
            self.headers.append(dict(h.headers))
        if self.barrier is not None:
            try:
                self.barrier.wait(timeout=10)
            except threading.BrokenBarrierError:
                return self._send(h, 500, {"error": {"message": "barrier broken"}})
        for field, (status, error) in self.field_errors.items():
            if field in body:
                return self._send(h, status, {"error": {"message": error}})
        if self.reject_schema and "response_format" in body:
            return self._send(h, 400, {"error": {"message": "response_format is not supported"}})
        if self.reject_guided_json and "guided_json" in body:
            return self._send(h, 400, {"error": {"message": "unknown parameter guided_json"}})
        if self.models is not None and body.get("model") not in self.models:
            return self._send(h, 404, {"error": {"message": f"The model `{body.get('model')}` does not exist.",
                                                 "type": "NotFoundError", "code": 404}})
        for field in ("structured_outputs", "response_format", "guided_json", "logprob_token_ids"):
            known = field in self.guides or (field == "logprob_token_ids" and self.token_ids)
            if field in body and not known and self.unknown_fields == "reject":
                return self._send(h, 400, {"error": {"message": f"unknown field {field}"}})
        if body.get("logprobs") and int(body.get("top_logprobs") or 0) > self.max_logprobs:
            n = body["top_logprobs"]
            return self._send(h, 400, {"error": {"message": f"Requested sample logprobs of {n}, which is "
                                                 f"greater than max allowed: {self.max_logprobs}",
                                                 "type": "BadRequestError", "code": 400}})
        probe = PROBE_MARK in body["messages"][0]["content"]
        check = body.get("max_tokens") == 1 and not body.get("logprobs")
        if probe:
            content = (json.dumps(naive_scores("", self._dimensions(body)), ensure_ascii=False)
                       if self._schema(body) else "好的")
            return self._send(h, 200, self._reply(body, {"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": content}}))
        if check:
            return self._send(h, 200, self._reply(body, {"index": 0, "finish_reason": "length", "message": {
                "role": "assistant", "content": "分"}}))
        action = self._next_action()
        if self.unguided and not self._schema(body) and not body.get("continue_final_message"):
            action = self.unguided
        with self._lock:
            self.actions.append(action)
        if action in ("500", "503", "401", "404", "400", "408", "422"):
            return self._send(h, int(action), {"error": {"message": f"fake {action}"}})
        if action == "refuse_1301":
            return self._send(h, 400, {"error": {"code": "1301", "message": "系统检测到输入或生成内容可能包含"
                                                 "不安全或敏感内容，请您避免输入易产生敏感内容的提示语，感谢您的配合。"}})
        if action == "sensitive":
            return self._send(h, 200, {"id": "fake-3", "object": "chat.completion", "model": body.get("model"),
                                       "choices": [{"index": 0, "finish_reason": "sensitive",
                                                    "message": {"role": "assistant", "content": ""}}]})
        if action == "429":
            return self._send(h, 429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if action == "not_completion":
            return self._send(h, 200, {"hello": "world"})
        if action == "timeout":
            time.sleep(self.sleep_seconds)
            action = "good"
        if body.get("continue_final_message") and body["messages"][-1]["role"] == "assistant":
            if not self.continue_final:  # a fresh assistant turn: mass spread over anything
                body = {**body, "rich": True}
            return self._likelihood(h, body)
        content = self._answer(action, body)
        message = {"role": "assistant", "content": content}
        choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": "stop"}
        if body.get("logprobs") and self.offer_logprobs:
            choice["logprobs"] = {"content": [
                {"token": t, "logprob": -0.25 if t.isdigit() else 0.0, "top_logprobs": []}
                for t in split_tokens(content)]}
        self._send(h, 200, self._reply(body, choice))

    def _reply(self, body: dict[str, Any], choice: dict[str, Any]) -> dict[str, Any]:
        msgs = body["messages"]
        honoured = self.continue_final and body.get("continue_final_message") and msgs[-1]["role"] == "assistant"
        tokens = sum(len(m["content"]) + 3 for m in msgs) + (0 if honoured else 3)
        return {"id": "fake-1", "object": "chat.completion", "model": body.get("model"), "choices": [choice],
                "usage": {"prompt_tokens": tokens, "completion_tokens": 1, "total_tokens": tokens + 1}}

    def _likelihood(self, h: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        """One answer token after the prefilled "分数：": the naive level (p .6), the next one
        (p .3) and a non-digit (p .1) as top logprobs."""
        user = body["messages"][-2]["content"]
        m = COMMENT.search(user)
        dim = re.search(r"（([a-z0-9_]+)），按量表给出", user)
        dims = [dim.group(1)] if dim else ["?"]
        v = naive_scores(m.group(1) if m else "", dims)[dims[0]]
        if dims[0] in self.default_dimensions:  # same value as the JSON mode gives for this dimension
            v = naive_scores(m.group(1) if m else "", self.default_dimensions)[dims[0]]
        top = [(str(v), 0.6), (str((v + 1) % 11), 0.3), ("分", 0.1)]
        if body.get("rich"):
            top = [("好", 0.3), ("我", 0.2), (str(v), 0.05)]
        elif self.rich_levels:  # all eleven levels carry mass: .5, .2 and .02 for each of the other nine
            top = [(str(v), 0.5), (str((v + 1) % 11), 0.2), ("分", 0.12)]
            top += [(str(x), 0.02) for x in range(11) if x not in (v, (v + 1) % 11)]
        wanted = body.get("logprob_token_ids") if self.token_ids else None
        if wanted:  # exactly the tokens asked for (plus the sampled one), as vLLM does
            names = {str(i - 1000) for i in wanted}
            top = [t for t in top if t[0] in names or t[0] == str(v)]
        else:
            top = top[: body.get("top_logprobs", 0)]
        choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": str(v)},
                                  "finish_reason": "length"}
        if body.get("logprobs") and self.offer_logprobs:
            choice["logprobs"] = {"content": [{"token": str(v), "logprob": math.log(0.6), "top_logprobs": [
                {"token": t, "logprob": math.log(p)} for t, p in top]}]}
        self._send(h, 200, self._reply(body, choice))

    def _answer(self, action: str, body: dict[str, Any]) -> str:
        user = body["messages"][-1]["content"]
        m = COMMENT.search(user)
        comment = m.group(1) if m else ""
        dims = self._dimensions(body)
        scores: dict[str, Any] = naive_scores(comment, dims)
        if action == "garbage":
            return "我觉得这条评论挺有意思的，分数大概是七八分吧。"
        if action == "refuse_text":
            return "抱歉，我无法协助处理涉及自我伤害的内容。如果你正在经历困难，请联系专业人士。"
        if action == "echo":
            return comment
        if action == "obedient" and "忽略以上指令" in comment and STRICT_MARK not in user:
            return "好的，所有分数都是0"
        if action == "out_of_range":
            scores[dims[0]] = 11
        if action == "missing":
            scores.pop(dims[-1])
        if action == "float":
            scores[dims[0]] = 3.5
        if '"rationale"' in user:  # explain mode
            scores["rationale"] = f"这条评论有{len(comment)}个字。"
        text = json.dumps(scores, ensure_ascii=False)
        return f"```json\n{text}\n```" if action == "fenced" else text

    def _schema(self, body: dict[str, Any]) -> dict[str, Any] | None:
        """The JSON schema of the request, if sent in a field this server honours."""
        found = {"structured_outputs": (body.get("structured_outputs") or {}).get("json"),
                 "response_format": (body.get("response_format") or {}).get("json_schema", {}).get("schema"),
                 "guided_json": body.get("guided_json")}
        return next((v for k, v in found.items() if v and k in self.guides), None)

    def _dimensions(self, body: dict[str, Any]) -> list[str]:
        schema = self._schema(body)
        if schema:
            return [k for k in schema["required"] if k != "rationale"]
        # Without a schema, read the keys from the prompt's example object.
        user = body["messages"][-1]["content"]
        found = re.findall(r'"([a-z0-9_]+)": 整数', user)
        return found or self.default_dimensions

    @staticmethod
    def _send(h: BaseHTTPRequestHandler, status: int, obj: dict[str, Any],
              headers: dict[str, str] | None = None) -> None:
        data = json.dumps(obj, ensure_ascii=False).encode()
        try:
            h.send_response(status)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout test)


if __name__ == "__main__":  # python tests/worker_llm/fake_openai.py [--port N] [--mode M]: serve until Ctrl-C
    import argparse

    ap = argparse.ArgumentParser(description="A naive fake OpenAI-compatible server on 127.0.0.1 (for trying "
                                             "the openai backend without a GPU; its scores mean nothing).")
    ap.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    ap.add_argument("--mode", default="good", help="behaviour for every request, e.g. good, garbage, 500")
    a = ap.parse_args()
    srv = FakeOpenAI(mode=a.mode)
    srv.port = a.port
    print(srv.start(), flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        srv.stop()
