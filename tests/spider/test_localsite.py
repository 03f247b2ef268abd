"""The local weibo.cn stand-in: `python -m weibo.localsite` serves until SIGTERM; pages have the shapes."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from urllib.request import urlopen

from weibo.localsite import LocalSite, small_corpus

from tests.spider.helpers import PY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_module_serves_until_sigterm() -> None:
    port = free_port()
    proc = subprocess.Popen([PY, "-m", "weibo.localsite", "--corpus", "test", "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        banner = proc.stdout.readline()
        assert f"http://127.0.0.1:{port}" in banner
        data = json.loads(urlopen(f"http://127.0.0.1:{port}/ajax/side/hotSearch", timeout=10).read())
        assert len(data["data"]["realtime"]) == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "stopped after 1 requests" in out


def test_pages_are_paginated_and_requests_counted() -> None:
    with LocalSite(small_corpus()) as site:
        first = urlopen(f"{site.url}/comment/5100000000000001?page=1", timeout=10).read().decode()
        third = urlopen(f"{site.url}/comment/5100000000000001?page=3", timeout=10).read().decode()
        time.sleep(0.05)
    assert first.count('id="C_') == 12 and first.count("[热门]") == 2 and 'name="mp" type="hidden" value="3"' in first
    assert third.count('id="C_') == 3 and 'id="M_"' not in third
    assert site.hits == {"/comment/5100000000000001?page=1": 1, "/comment/5100000000000001?page=3": 1}
