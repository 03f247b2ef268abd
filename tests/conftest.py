"""Shared fixtures: migrated databases on SQLite and on a real MariaDB/MySQL server.

Tests marked ``mysql`` use TEST_MYSQL_URL (default: the MariaDB on this machine).
Each such test gets a throwaway database that is dropped afterwards. With no server
reachable they skip and say how to start one; with CI=true that is a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from weibo_mh import db

# No test ever fetches model weights or data from a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
DATASETS = SHARED / "datasets"
TEST_MYSQL_URL = os.environ.get("TEST_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
START_HINT = ("start one with: start-stop-daemon --start --oknodo --background "
              "--exec /usr/sbin/mariadbd -- --user=mysql  (or set TEST_MYSQL_URL)")
TEST_SALT = "test-salt-0123456789abcdef"


def _server_url(url: str) -> sa.URL:
    return sa.make_url(db.normalise_url(url))


@pytest.fixture(scope="session")
def mysql_server() -> sa.URL:
    """The server URL, or skip (fail under CI=true) when no server answers."""
    url = _server_url(TEST_MYSQL_URL)
    try:
        eng = sa.create_engine(url)
        with eng.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        eng.dispose()
    except Exception as e:  # noqa: BLE001 - any failure means "no server"
        msg = f"no MySQL/MariaDB at {url.render_as_string(hide_password=True)} ({type(e).__name__}); {START_HINT}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return url


def create_mysql_database(server: sa.URL, prefix: str = "wmh_t") -> tuple[str, sa.Engine]:
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    return name, admin


def drop_mysql_database(admin: sa.Engine, name: str) -> None:
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    admin.dispose()


@pytest.fixture
def mysql_url(mysql_server: sa.URL) -> Iterator[str]:
    """A fresh, migrated throwaway database on the server; dropped afterwards."""
    name, admin = create_mysql_database(mysql_server)
    url = mysql_server.set(database=name).render_as_string(hide_password=False)
    eng = db.make_engine(url)
    db.migrate(eng)
    eng.dispose()
    try:
        yield url
    finally:
        drop_mysql_database(admin, name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh, migrated SQLite file."""
    url = f"sqlite:///{tmp_path / 'test.db'}"
    eng = db.make_engine(url)
    db.migrate(eng)
    eng.dispose()
    return url


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def db_url(request: pytest.FixtureRequest) -> str:
    """Run the test once on SQLite and once on MariaDB."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    eng = db.make_engine(db_url)
    yield eng
    eng.dispose()


def require_shared(*parts: str) -> Path:
    """Path under ../shared/datasets, or skip with a clear message when it is absent."""
    p = DATASETS.joinpath(*parts)
    if not p.exists():
        pytest.skip(f"research data not found at {p}: these tests need ../shared beside the repository")
    return p
