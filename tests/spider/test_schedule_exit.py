"""The scheduler's --once says what happened: the crawl's own exit code, and a cookie file
that cannot be used gets the run status bad_cookie, which notify_on can name."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest
from weibo.localsite import LocalSite

from tests.spider.helpers import PY, SPIDER_DIR, crawl_env, runs, write_config

SCHEDULE = str(SPIDER_DIR / "default_schedule.py")
# default_schedule.py is a script beside the Scrapy project, not an installed module.
_SPEC = importlib.util.spec_from_file_location("default_schedule", SCHEDULE)
assert _SPEC and _SPEC.loader
_schedule = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_schedule)
once_exit_code = _schedule.once_exit_code


def _notifying_config(tmp_path: Path, site: LocalSite, note: Path) -> Path:
    script = tmp_path / "notify.py"
    script.write_text("import os, pathlib, sys\npathlib.Path(sys.argv[1]).write_text("
                      "os.environ['WEIBO_MH_RUN_STATUS'] + ': ' + os.environ['WEIBO_MH_RUN_ERROR'])\n")
    return write_config(tmp_path / "c.toml", site, extra=(
        f'[schedule]\nnotify_command = "{PY} {script} {note}"\n'
        'notify_on = ["login_required", "bad_cookie", "rate_limited"]'))


@pytest.mark.parametrize("cookie, why", [
    (None, "does not exist"),
    ("SUB=first-half\nSUBP=second-half\n", "line break"),
])
def test_a_bad_cookie_file_is_its_own_status_and_notifies(sqlite_url: str, site: LocalSite, tmp_path: Path,
                                                          cookie: str | None, why: str) -> None:
    cookie_file = tmp_path / "cookie"
    if cookie is not None:
        cookie_file.write_text(cookie, encoding="utf-8")
    note = tmp_path / "note.txt"
    config = _notifying_config(tmp_path, site, note)
    env = crawl_env(config, sqlite_url, WEIBO_COOKIE_FILE=str(cookie_file))
    p = subprocess.run([PY, SCHEDULE, "--config", str(config), "--once"], env=env,
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    (run,) = runs(sqlite_url)
    assert run["status"] == "bad_cookie" and run["finished_at"] is not None
    assert why in run["error"] and "WEIBO_COOKIE_FILE" in run["error"]
    assert "SUB=first-half" not in p.stderr + run["error"]  # the cookie itself is never shown
    assert note.read_text().startswith("bad_cookie: ")
    assert site.page_hits() == 0


def test_once_returns_the_crawls_own_code_when_it_refuses_to_start(sqlite_url: str, site: LocalSite,
                                                                   tmp_path: Path) -> None:
    """A crawl that exits 2 before recording an end (here: a database only it is given) makes
    --once exit 2, not 1; the run is recorded as failed with the reason."""
    config = write_config(tmp_path / "c.toml", site)
    p = subprocess.run([PY, SCHEDULE, "--config", str(config), "--once", "-s",
                        f"DATABASE_URL=sqlite:///{tmp_path / 'missing' / 'x.db'}"],
                       env=crawl_env(config, sqlite_url), capture_output=True, text=True, timeout=120)
    assert p.returncode == 2, p.stderr
    (run,) = runs(sqlite_url)
    assert run["status"] == "failed" and "status 2 (a configuration error)" in run["error"]


@pytest.mark.parametrize("status, rc, code", [
    ("ok", 0, 0), ("failed", 1, 1), ("failed", 2, 2), ("login_required", 3, 3),
    ("failed", -9, 1), ("timed_out", -15, 5), ("timed_out", 0, 5), ("bad_cookie", None, 2),
    ("locked", None, 6),
])
def test_once_exit_code(status: str, rc: int | None, code: int) -> None:
    assert once_exit_code(status, rc) == code
