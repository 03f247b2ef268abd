"""Numbers out of range, URLs that would be misread and undecodable secret files stop every
service at start-up with one line and exit status 2, and never print a password."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.reliability.test_outputs import read_only_dir  # noqa: F401 - a fixture
from tests.reliability.test_startup_and_secrets import ENTRY_POINTS, assert_clean_exit_2, start
from weibo_mh.config import SPEC, ConfigError, load_config, mask_url


@pytest.mark.parametrize("section, line, words", [
    ("spider", "download_delay = inf", "must be a finite number"),
    ("spider", "download_delay = nan", "must be a finite number"),
    ("spider", "flush_seconds = -1.0", "must not be negative"),
    ("spider", "ban_backoff_seconds = -inf", "must be a finite number"),
    ("worker", "batch_size = 100000000000000000000", "must be at most 100000"),
    ("worker", "lease_seconds = 0", "must be at least 1"),
    ("analysis", "alert_threshold = 11", "must be at most 10"),
    ("analysis", "alert_threshold = -1", "must not be negative"),
    ("worker", "metrics_port = 70000", "must be at most 65535"),
])
def test_out_of_range_numbers_are_refused_naming_key_and_limit(tmp_path, section, line, words):
    path = tmp_path / "c.toml"
    path.write_text(f"[{section}]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(path, env={})
    key = line.split(" =")[0]
    assert f"{section}.{key}" in str(e.value) and words in str(e.value) and str(path) in str(e.value)


def test_every_number_has_its_limits_declared_once_in_the_spec():
    for sec, keys in SPEC.items():
        for name, key in keys.items():
            if key.type in (int, float):
                assert key.min is not None, f"{sec}.{name}"
                if key.max is not None:
                    assert key.min <= key.default <= key.max, f"{sec}.{name}"


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_an_infinite_delay_stops_every_service(name, tmp_path):
    bad = tmp_path / "inf.toml"
    bad.write_text("[spider]\ndownload_delay = inf\n", encoding="utf-8")
    out = start(name, tmp_path, {"WEIBO_MH_CONFIG": str(bad), "WEIBO_MH_SALT": "x" * 32})
    assert_clean_exit_2(out, "spider.download_delay", "finite")


PASSWORD = "p@ss:w/rd"
AT_URL = f"mysql+pymysql://someone:{PASSWORD}@127.0.0.1:1/weibo"


def test_mask_hides_a_password_with_at_and_colon():
    for url in (AT_URL, "mysql+pymysql://u:a:b@h/db", "mysql+pymysql://u:a@b@c@h:3306/db?x=1",
                "redis://:p@w@127.0.0.1:6379/0"):
        masked = mask_url(url)
        assert "***" in masked, masked
        for part in ("a:b", "a@b", "p@w", PASSWORD, "ss:w"):
            assert part not in masked, masked
    assert mask_url("mysql+pymysql://u:p%40ss@h/db") == "mysql+pymysql://u:***@h/db"
    assert mask_url("sqlite:////tmp/a@b.db") == "sqlite:////tmp/a@b.db"


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_url_with_an_unencoded_at_is_refused_with_advice(name, tmp_path):
    out = start(name, tmp_path, {"DATABASE_URL": AT_URL, "WEIBO_MH_SALT": "x" * 32})
    assert_clean_exit_2(out, "percent-encode", "%40")
    text = out.stdout + out.stderr
    for part in (PASSWORD, "ss:w", "w/rd@"):
        assert part not in text, text


@pytest.mark.mysql
def test_a_percent_encoded_password_works(mysql_server, tmp_path):
    """The same password, encoded, reaches the server intact (it answers 'access denied',
    not 'unknown host'): the URL is read as meant."""
    from urllib.parse import quote

    url = mysql_server.set(username="nobody_here", password=None).render_as_string(False)
    url = url.replace("nobody_here@", f"nobody_here:{quote(PASSWORD, safe='')}@")
    out = start("db", tmp_path, {"DATABASE_URL": url})
    assert out.returncode == 2
    text = out.stdout + out.stderr
    assert "Access denied" in text and "nobody_here" in text, text
    assert PASSWORD not in text and quote(PASSWORD, safe="") not in text


@pytest.mark.parametrize("var, names", [("WEIBO_MH_SALT_FILE", ["spider", "scheduler"]),
                                        ("WEIBO_COOKIE_FILE", ["spider"])])
def test_an_undecodable_secret_file_is_one_line_and_exit_2(var, names, tmp_path, sqlite_url):
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"\xff\xfe\x00not-utf8-\x80\x81")
    env = {"DATABASE_URL": sqlite_url, "WEIBO_MH_SALT": "x" * 32, var: str(secret)}
    if var == "WEIBO_MH_SALT_FILE":
        env["WEIBO_MH_SALT"] = ""
    for name in names:
        out = start(name, tmp_path, env)
        assert_clean_exit_2(out, var, "not valid UTF-8")
        assert "not-utf8" not in out.stdout + out.stderr


def test_a_read_only_lock_folder_is_one_line_and_exit_2(read_only_dir, tmp_path, sqlite_url):  # noqa: F811
    config = tmp_path / "c.toml"
    config.write_text(f'[schedule]\nlock_file = "{read_only_dir / "crawl.lock"}"\n'
                      f'log_dir = "{tmp_path / "logs"}"\n', encoding="utf-8")
    out = start("scheduler", tmp_path, {"WEIBO_MH_CONFIG": str(config), "DATABASE_URL": sqlite_url,
                                        "WEIBO_MH_SALT": "x" * 32})
    assert_clean_exit_2(out, "schedule.lock_file", str(read_only_dir))
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr



@pytest.mark.parametrize("flag, value, key", [("--batch-size", "100000000000000000000", "worker.batch_size"),
                                              ("--batch-size", "0", "worker.batch_size"),
                                              ("--lease-seconds", "-3", "worker.lease_seconds"),
                                              ("--metrics-port", "70000", "worker.metrics_port")])
def test_worker_flags_obey_the_spec_limits(flag, value, key, sqlite_url):
    """A command-line flag cannot pass what the config file may not (limits declared once)."""
    out = subprocess.run([sys.executable, "-m", "llm_worker", "--db", sqlite_url, "--once", flag, value],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2, out.stderr
    assert key in out.stderr and "Traceback" not in out.stderr
