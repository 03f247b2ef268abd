"""llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) on 127.0.0.1.

The behaviour matched is llama-cpp-python 0.3.36's (pinned in requirements-dev.txt): it
serves /v1/models (the model alias), /v1/chat/completions, /v1/completions and
/extras/tokenize, ignores request fields it does not know (continue_final_message,
structured_outputs, guided_json) and answers a request it cannot parse with HTTP 500.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ALIAS = "tiny-qwen2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """One server process; ``stop`` and ``start`` again keep its port (for outage tests)."""

    def __init__(self, model: Path, log: Path, alias: str = ALIAS) -> None:
        self.model, self.log_path, self.alias = model, log, alias
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 90.0) -> LlamaServer:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child writes it until stopped
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(self.model), "--model_alias", self.alias,
             "--host", "127.0.0.1", "--port", str(self.port), "--n_ctx", "8192", "--n_threads", "1",
             "--n_threads_batch", "1", "--verbose", "false"],
            stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}: "
                                   f"{self.log_path.read_text(errors='replace')[-2000:]}")
            try:
                if requests.get(self.base_url + "/models", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer within {timeout:g}s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
