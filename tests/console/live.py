"""The console on a real waitress server (127.0.0.1, an ephemeral port, real threads) and a client.

``Live`` starts the app the way ``python -m analysis.console`` does (``serve_options``:
connection limit, channel timeout, cleanup interval from the config) and stops it; ``Client``
is one browser's cookie jar, speaking HTTP to it with ``requests``.
"""

from __future__ import annotations

import copy
import re
import threading
from typing import Any

import requests
import sqlalchemy as sa
from waitress import wasyncore
from waitress.server import create_server

from analysis.console.__main__ import serve_options
from analysis.console.app import create_app
from tests.console.conftest import KEY, make_cfg
from tests.console.seed import PASSWORD
from weibo_mh import db


class Live:
    def __init__(self, engine: sa.Engine, threads: int = 8, **console: Any) -> None:
        self.engine = engine
        self.cfg = make_cfg(engine.url.render_as_string(hide_password=False), **console)
        self.app = create_app(self.cfg, engine, KEY)
        self.server = create_server(self.app, host="127.0.0.1", port=0, **serve_options(self.cfg, threads))
        self.base = f"http://127.0.0.1:{self.server.effective_port}"
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="waitress")
        self.thread.start()

    def _run(self) -> None:
        """waitress's own loop (server.run), in slices, so that it can stop in its own thread."""
        sockets = self.server._map  # noqa: SLF001 - waitress keeps its server and channels there
        while not self._stop.is_set():
            wasyncore.loop(timeout=0.1, map=sockets, use_poll=True, count=1)
        self.server.task_dispatcher.shutdown()
        wasyncore.close_all(sockets)

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)

    def client(self, name: str | None = None, password: str = PASSWORD, **headers: str) -> Client:
        c = Client(self.base, headers)
        if name is not None:
            r = c.login(name, password)
            assert r.status_code == 302, (r.status_code, r.text[:300])
        return c

    def audit(self, **where: Any) -> list[Any]:
        L = db.audit_log
        q = sa.select(L).order_by(L.c.id)
        for k, v in where.items():
            q = q.where(L.c[k] == v)
        with self.engine.connect() as conn:
            return list(conn.execute(q))

    def hits(self, action: str, actor: str = "-") -> int:
        return sum(r.hits for r in self.audit(action=action, actor=actor))


class Client:
    def __init__(self, base: str, headers: dict[str, str]) -> None:
        self.base = base
        self.http = requests.Session()
        self.http.headers.update(headers)

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.http.get(self.base + path, allow_redirects=False, timeout=60, **kw)

    def post(self, path: str, data: dict[str, str], **kw: Any) -> requests.Response:
        return self.http.post(self.base + path, data=data, allow_redirects=False, timeout=60, **kw)

    def request(self, method: str, path: str, **kw: Any) -> requests.Response:
        return self.http.request(method, self.base + path, allow_redirects=False, timeout=60, **kw)

    def csrf(self, path: str = "/login") -> str:
        return token(self.get(path).text)

    def login(self, name: str, password: str = PASSWORD, **kw: Any) -> requests.Response:
        return self.post("/login", {"username": name, "password": password, "csrf_token": self.csrf()}, **kw)

    def form(self, path: str) -> dict[str, str]:
        """The CSRF token and, on an alert page, the seen token of the page at ``path``."""
        page = self.get(path)
        assert page.status_code == 200, (path, page.status_code)
        out = {"csrf_token": token(page.text)}
        m = re.search(r'name="seen" value="([0-9a-f]+)"', page.text)
        if m:
            out["seen"] = m.group(1)
        return out

    def stolen(self) -> Client:
        """Another client holding a copy of this one's cookies as they are now (what a thief holds)."""
        c = Client(self.base, dict(self.http.headers))
        for cookie in self.http.cookies:
            c.http.cookies.set_cookie(copy.copy(cookie))
        return c


def token(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)
