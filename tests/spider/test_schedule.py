"""The scheduler (Weibo_Spider/default_schedule.py): --once, the time budget, the lock, clean stops."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
from filelock import FileLock
from weibo.localsite import LocalSite, expected_counts, small_corpus

from tests.spider.helpers import PY, SPIDER_DIR, counts, crawl_env, runs, write_config

pytestmark = pytest.mark.slow
SCHEDULE = str(SPIDER_DIR / "default_schedule.py")


def schedule(config: Path, db_url: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([PY, SCHEDULE, "--config", str(config), *args], env=crawl_env(config, db_url),
                          capture_output=True, text=True, timeout=timeout)


def test_once_runs_one_crawl_and_exits_with_its_status(sqlite_url: str, site: LocalSite,
                                                       config: Path) -> None:
    p = schedule(config, sqlite_url, "--once")
    assert p.returncode == 0, p.stderr
    (run,) = runs(sqlite_url)
    assert run["status"] == "ok" and run["comments_new"] == 43
    assert f"crawl run {run['id']} ok" in p.stderr
    (log,) = (config.parent / "logs").glob(f"crawl-*-run{run['id']}.log")
    assert "Spider closed (finished)" in log.read_text()


def test_once_reports_a_login_wall_with_its_exit_code_and_runs_the_notification(
        sqlite_url: str, tmp_path: Path) -> None:
    note = tmp_path / "note.txt"
    script = tmp_path / "notify.py"   # stands in for e.g. `sh -c '… | mail -s … ops@example.org'`
    script.write_text("import os, pathlib, sys\npathlib.Path(sys.argv[1]).write_text("
                      "os.environ['WEIBO_MH_RUN_STATUS'] + ' ' + os.environ['WEIBO_MH_RUN_ID'])\n")
    command = f"{PY} {script} {note}"
    with LocalSite(small_corpus(), scenario="login_redirect", after=2) as site:
        config = write_config(tmp_path / "c.toml", site,
                              extra=f'[schedule]\nnotify_command = "{command}"')
        p = schedule(config, sqlite_url, "--once")
    assert p.returncode == 3, p.stderr
    (run,) = runs(sqlite_url)
    assert run["status"] == "login_required"
    assert note.read_text() == f"login_required {run['id']}"
    assert "notification command run" in p.stderr


def test_the_time_budget_stops_a_slow_crawl_and_records_timed_out(sqlite_url: str, tmp_path: Path) -> None:
    with LocalSite(small_corpus(), delay=0.5) as site:
        config = write_config(tmp_path / "c.toml", site, "concurrent_per_domain = 1",
                              extra="[schedule]\ntime_budget_minutes = 0.04\ngrace_seconds = 4.0")
        p = schedule(config, sqlite_url, "--once")
    assert p.returncode == 5, p.stderr
    (run,) = runs(sqlite_url)
    assert run["status"] == "timed_out" and run["finished_at"] is not None
    assert "time budget" in run["error"]
    assert "sending SIGTERM" in p.stderr
    assert site.peak_in_flight == 1   # one request at a time: 15 pages x 0.5 s outlast the budget
    assert site.page_hits() < expected_counts(small_corpus())["pages"]   # stopped before the end


def test_a_held_lock_means_no_second_crawl(sqlite_url: str, site: LocalSite, config: Path) -> None:
    with FileLock(str(config.parent / "crawl.lock"), timeout=0):
        p = schedule(config, sqlite_url, "--once")
    assert p.returncode == 6
    assert "holds the lock" in p.stderr
    assert counts(sqlite_url)["crawl_runs"] == 0 and site.page_hits() == 0


def test_the_daemon_stops_cleanly_on_sigterm(sqlite_url: str, site: LocalSite, config: Path) -> None:
    proc = subprocess.Popen([PY, SCHEDULE, "--config", str(config)], env=crawl_env(config, sqlite_url),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    line = ""
    while "scheduler started" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()
    assert "crawls daily at 10:00, 22:00" in line
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "scheduler stopped" in err


def test_bad_input_exits_2_without_a_traceback(sqlite_url: str, tmp_path: Path, config: Path) -> None:
    p = schedule(config, sqlite_url, "--once", "-s", "NO_EQUALS_SIGN")
    assert p.returncode == 2 and "KEY=VALUE" in p.stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[spider]\ntopic_limit = 'many'\n")
    p = schedule(bad, sqlite_url, "--once")
    assert p.returncode == 2 and "spider.topic_limit" in p.stderr and "Traceback" not in p.stderr
    p = schedule(config, f"sqlite:///{tmp_path / 'empty.db'}", "--once")
    assert p.returncode == 2 and "migrate" in p.stderr


def test_help_lists_the_exit_codes() -> None:
    out = subprocess.run([PY, SCHEDULE, "--help"], capture_output=True, text=True, timeout=60).stdout
    for line in ("0  ok", "3  login_required", "4  rate_limited", "5  timed_out", "6  another crawl"):
        assert line in out
