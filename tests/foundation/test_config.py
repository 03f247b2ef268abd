"""Configuration: one TOML file, environment overrides, clear errors with exit status 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from weibo_mh.config import (
    CONFIG_DIR,
    ConfigError,
    cookie_from,
    load_config,
    mask_url,
    reference_markdown,
)


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "c.toml"
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("name", ["default.toml", "demo.toml", "production.example.toml"])
def test_shipped_configs_are_valid(name):
    load_config(CONFIG_DIR / name, env={})


def test_defaults_are_the_embedded_setup():
    cfg = load_config(CONFIG_DIR / "default.toml", env={})
    assert cfg.database.url == f"sqlite:///{ROOT / 'data' / 'weibo.db'}"
    assert cfg.worker.backend == "lexicon"
    assert cfg.schedule.times == ["10:00", "22:00"]
    assert cfg.spider.download_delay >= 3


def test_environment_overrides_the_file(tmp_path):
    cfg = load_config(CONFIG_DIR / "default.toml",
                      env={"DATABASE_URL": "mysql+pymysql://u:pw@h/db", "REDIS_URL": "redis://r:1/2"})
    assert cfg.database.url == "mysql+pymysql://u:pw@h/db"
    assert cfg.spider.redis_url == "redis://r:1/2"


@pytest.mark.parametrize("text, message", [
    ("[worker]\nbatch_sise = 3\n", "unknown key worker.batch_sise"),
    ("[wroker]\nbatch_size = 3\n", "unknown section [wroker]"),
    ("[worker]\nbatch_size = 'ten'\n", "worker.batch_size must be an integer"),
    ("[spider]\ndownload_delay = true\n", "spider.download_delay must be a number"),
    ("[worker]\nbackend = 'gpt'\n", "worker.backend = 'gpt' is not one of"),
    ("[schedule]\ntimes = ['25:00']\n", "schedule.times"),
    ("[worker\nbatch_size = 3\n", "not valid TOML"),
])
def test_bad_config_names_the_key_and_the_file(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path, env={})
    assert message in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_bad_config_exits_2_without_traceback(tmp_path):
    path = write(tmp_path, "[worker]\nbatch_size = -1\n")
    out = subprocess.run([sys.executable, "-m", "weibo_mh.config", "--config", str(path)],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "worker.batch_size" in out.stderr and str(path) in out.stderr
    assert "Traceback" not in out.stderr


def test_printed_config_masks_secrets(tmp_path):
    path = write(tmp_path, "[database]\nurl = 'mysql+pymysql://u:hunter2secret@h/db'\n")
    out = subprocess.run([sys.executable, "-m", "weibo_mh.config", "--config", str(path)],
                         capture_output=True, text=True, check=True)
    assert "hunter2secret" not in out.stdout
    assert "mysql+pymysql://u:***@h/db" in out.stdout


def test_mask_url():
    assert mask_url("mysql+pymysql://root@h/db") == "mysql+pymysql://root@h/db"
    assert mask_url("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"


def test_cookie_comes_only_from_env_or_file(tmp_path):
    cfg = load_config(CONFIG_DIR / "default.toml", env={})
    assert cookie_from(cfg, env={}) == ""
    assert cookie_from(cfg, env={"WEIBO_COOKIE": " SUB=abc \n"}) == "SUB=abc"
    f = tmp_path / "cookie.txt"
    f.write_text("SUB=fromfile\n", encoding="utf-8")
    assert cookie_from(cfg, env={"WEIBO_COOKIE_FILE": str(f)}) == "SUB=fromfile"
    with pytest.raises(ConfigError, match="does not exist"):
        cookie_from(cfg, env={"WEIBO_COOKIE_FILE": str(tmp_path / "missing")})


def test_reference_lists_every_key():
    ref = reference_markdown()
    for key in ("database.url", "spider.download_delay", "worker.backend", "schedule.times"):
        assert f"`{key}`" in ref


def _config_cmd(path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("WEIBO_", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "weibo_mh.cli", "config", "--config", str(path)],
                          capture_output=True, text=True, env={**clean, **env}, timeout=60)


def test_config_command_refuses_a_named_file_that_is_missing(tmp_path):
    path = write(tmp_path, f"[privacy]\nsalt_file = '{tmp_path / 'no-salt'}'\n"
                           f"[spider]\ncookie_file = '{tmp_path / 'no-cookie'}'\n")
    out = _config_cmd(path, {})
    assert out.returncode == 2, out.stderr
    assert "no-salt does not exist" in out.stderr and "no-cookie does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_config_command_prints_the_environments_overrides_with_secrets_hidden(tmp_path):
    salt = tmp_path / "salt"
    salt.write_text("x" * 40, encoding="utf-8")
    path = write(tmp_path, "[privacy]\nsalt_file = '/etc/weibo-mh/salt'\n"
                           "[spider]\ncookie_file = '/etc/weibo-mh/cookie'\n")
    out = _config_cmd(path, {"WEIBO_MH_SALT_FILE": str(salt), "WEIBO_COOKIE": "SUB=hunter2cookie",
                             "DATABASE_URL": "mysql+pymysql://u:hunter2pw@h/db"})
    assert out.returncode == 0, out.stderr
    assert f'salt_file = "{salt}"  # from WEIBO_MH_SALT_FILE' in out.stdout
    assert 'cookie_file = "(set in the environment, hidden)"  # from WEIBO_COOKIE' in out.stdout
    assert 'url = "mysql+pymysql://u:***@h/db"  # from DATABASE_URL' in out.stdout
    assert "hunter2" not in out.stdout + out.stderr


def test_config_command_refuses_a_cookie_with_a_line_break(tmp_path):
    cookie = tmp_path / "cookie"
    cookie.write_text("SUB=a\nSUBP=b\n", encoding="utf-8")
    out = _config_cmd(write(tmp_path, ""), {"WEIBO_COOKIE_FILE": str(cookie)})
    assert out.returncode == 2 and "line break" in out.stderr


def test_config_path_relative_to_the_working_directory_survives_crawls_chdir(tmp_path):
    """`WEIBO_MH_CONFIG=configs/x.toml weibo-mh crawl` reads the file from where it was run."""
    from weibo_mh import cli

    rel = Path("configs") / "default.toml"
    env = {"WEIBO_MH_CONFIG": str(rel)}
    cli.absolute_config_env(env, ROOT)
    assert env["WEIBO_MH_CONFIG"] == str(ROOT / rel)


def test_the_config_check_reads_the_notification_secrets(tmp_path):
    """A webhook channel without its HMAC secret fails `weibo-mh config`, not the worker's start."""
    from weibo_mh.config import file_problems

    path = tmp_path / "c.toml"
    path.write_text('[notify]\nchannels = ["webhook"]\nwebhook_url = "https://hooks.example.org/x"\n',
                    encoding="utf-8")
    cfg = load_config(path, env={})
    (problem,) = file_problems(cfg, env={})
    assert "WEIBO_MH_WEBHOOK_SECRET_FILE" in problem
    secret = tmp_path / "secret"
    secret.write_text("s" * 32, encoding="utf-8")
    assert file_problems(cfg, env={"WEIBO_MH_WEBHOOK_SECRET_FILE": str(secret)}) == []
