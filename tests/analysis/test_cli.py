"""The scripts as analysts run them: clear --help, and bad input ends with exit 2 and one line."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from analysis.common import parse_when
from tests.analysis.seed import seed
from tests.conftest import ROOT

SCRIPTS = ("trends", "distributions", "topics", "compare_scorers", "alerts", "report")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    e = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "WEIBO_MH_CONFIG")}
    e.update(env or {})
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=ROOT,
                          env=e, timeout=120)


def assert_usage_error(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode == 2, p.stderr
    assert "Traceback" not in p.stderr
    lines = [line for line in p.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, p.stderr
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("script", SCRIPTS)
def test_help(script):
    p = cli(f"analysis.{script}", "--help")
    assert p.returncode == 0
    for opt in ("--db", "--out", "--since", "--until", "--topic", "--scorer", "--format"):
        assert opt in p.stdout
    assert "python -m analysis." in p.stdout  # the examples


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> str:
    from weibo_mh import db

    path = tmp_path_factory.mktemp("cli") / "seeded.db"
    url = f"sqlite:///{path}"
    eng = db.make_engine(url)
    db.migrate(eng)
    eng.dispose()
    seed(url)
    return url


def test_missing_sqlite_file_is_not_created(tmp_path):
    missing = tmp_path / "nope.db"
    assert_usage_error(cli("analysis.trends", "--db", f"sqlite:///{missing}", "--out", str(tmp_path)),
                       "no such database file")
    assert not missing.exists()


@pytest.mark.parametrize("url, words", [
    ("not a url", ["not a database URL"]),
    ("postgresql://u@h/db", ["unsupported database"]),
    ("mysql+pymysql://root:secret@127.0.0.1:1/x", ["cannot connect", "***"]),
])
def test_bad_database_urls(url, words, tmp_path):
    p = cli("analysis.report", "--db", url, "--out", str(tmp_path))
    assert_usage_error(p, *words)
    assert "secret" not in p.stderr


def test_database_without_schema(tmp_path):
    path = tmp_path / "empty.db"
    sqlite3.connect(path).execute("CREATE TABLE other (x)").connection.close()
    assert_usage_error(cli("analysis.alerts", "--db", f"sqlite:///{path}", "--out", str(tmp_path)),
                       "has no schema", "migrate")


@pytest.mark.parametrize("args, words", [
    (["--since", "2026-13-01"], ["not a date", "2026-13-01"]),
    (["--until", "yesterday"], ["not a date"]),
    (["--since", "2026-11-03", "--until", "2026-11-01"], ["is not before --until"]),
    (["--scorer", "gpt:none"], ["no scores from scorer 'gpt:none'", "lexicon:v2"]),
    (["--topic", "不存在"], ["no topic word contains"]),
    (["--threshold", "11"], ["0-10"]),
    (["--format", "jpg"], ["invalid choice"]),
])
def test_bad_options(seeded, tmp_path, args, words):
    assert_usage_error(cli("analysis.alerts", "--db", seeded, "--out", str(tmp_path), *args), *words)


def test_a_good_run_prints_paths_and_counts(seeded, tmp_path):
    p = cli("analysis.alerts", "--db", seeded, "--out", str(tmp_path), "--scorer", "lexicon:v2",
            "--since", "2026-11-01", "--until", "2026-11-02")
    assert p.returncode == 0, p.stderr
    assert f"wrote {tmp_path / 'alerts.csv'}" in p.stdout
    assert "alerts in window: 2" in p.stdout


def test_database_url_from_the_environment(seeded, tmp_path):
    p = cli("analysis.distributions", "--out", str(tmp_path), env={"DATABASE_URL": seeded})
    assert p.returncode == 0, p.stderr
    assert (tmp_path / "histograms.png").is_file()


def test_date_parsing():
    from datetime import datetime

    assert parse_when("2026-11-03") == datetime(2026, 11, 3)
    assert parse_when("2026-11-03", end=True) == datetime(2026, 11, 4)
    assert parse_when("2026-11-03 08:30", end=True) == datetime(2026, 11, 3, 8, 30)
    assert parse_when("2026-11-03T08:30:15") == datetime(2026, 11, 3, 8, 30, 15)
    assert (datetime.now() - parse_when("7d")).days >= 6


def test_report_default_folder_is_new_each_run(seeded, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[analysis]\nout_dir = "{tmp_path / "reports"}"\ncrisis_resources = '
                   '"Call the team lead; hotline 000-0000 (example)"\n', encoding="utf-8")
    p = cli("analysis.report", "--config", str(cfg), "--db", seeded, "--scorer", "lexicon:v2")
    assert p.returncode == 0, p.stderr
    (folder,) = list((tmp_path / "reports").glob("report-*"))
    html = (folder / "index.html").read_text(encoding="utf-8")
    assert "hotline 000-0000 (example)" in html
    assert "hotline 000-0000" in (folder / "alerts.md").read_text(encoding="utf-8")
    assert Path(folder / "alerts.csv").is_file()
