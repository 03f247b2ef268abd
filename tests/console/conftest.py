"""Console fixtures: a seeded database on SQLite and MariaDB, the app, a logged-in client."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

from analysis.console.app import create_app
from tests.console.seed import PASSWORD, seed
from weibo_mh.config import load_config

KEY = "k" * 40


def make_cfg(url: str, **console: Any) -> Any:
    cfg = load_config(None, env={})
    cfg.database.url = url
    cfg.analysis.crisis_resources = "测试热线 000-0000 (test line)"
    for k, v in console.items():
        setattr(cfg.console, k, v)
    return cfg


@pytest.fixture
def seeded(db_url: str) -> Iterator[sa.Engine]:
    eng = seed(db_url)
    yield eng
    eng.dispose()


@pytest.fixture
def app(seeded: sa.Engine) -> Any:
    cfg = make_cfg(seeded.url.render_as_string(hide_password=False))
    a = create_app(cfg, seeded, KEY)
    a.config["TESTING"] = True
    return a


def csrf(html: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token on the page"
    return m.group(1)


def login(client: Any, name: str, password: str = PASSWORD) -> Any:
    page = client.get("/login")
    return client.post("/login", data={"username": name, "password": password,
                                       "csrf_token": csrf(page.get_data(as_text=True))})


@pytest.fixture
def client_for(app: Any) -> Any:
    def make(name: str) -> Any:
        c = app.test_client()
        r = login(c, name)
        assert r.status_code == 302, r.get_data(as_text=True)
        return c
    return make


@pytest.fixture(autouse=True)
def fast_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cheap argon2 parameters for tests (the real ones cost ~100 ms a hash by design)."""
    from argon2 import PasswordHasher

    from analysis.console import auth

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(auth, "_hasher", cheap)
    monkeypatch.setattr(auth, "_DUMMY", cheap.hash("not a password of anyone"))  # unknown names, as cheap


@pytest.fixture
def serve(seeded: sa.Engine) -> Iterator[Any]:
    """Start the console on a real waitress server over the seeded database: ``serve(**console)``."""
    from tests.console.live import Live

    started: list[Live] = []

    def start(**console: Any) -> Live:
        live = Live(seeded, **console)
        started.append(live)
        return live

    yield start
    for live in started:
        live.stop()
