"""Pseudonymisation: user ids are stored only as HMAC-SHA256 under a secret salt."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from weibo_mh import config, privacy
from weibo_mh.config import CONFIG_DIR, ConfigError, load_config


def test_no_salt_refuses_to_start():
    cfg = load_config(CONFIG_DIR / "default.toml", env={})
    with pytest.raises(ConfigError, match="WEIBO_MH_SALT_FILE"):
        config.load_salt(cfg, env={})


def test_salt_from_env_and_file(tmp_path):
    cfg = load_config(CONFIG_DIR / "default.toml", env={})
    assert config.load_salt(cfg, env={"WEIBO_MH_SALT": "s" * 20}) == b"s" * 20
    f = tmp_path / "salt"
    f.write_text("f" * 32 + "\n", encoding="utf-8")
    assert config.load_salt(cfg, env={"WEIBO_MH_SALT_FILE": str(f)}) == b"f" * 32


def test_short_salt_is_rejected():
    cfg = load_config(CONFIG_DIR / "default.toml", env={})
    with pytest.raises(ConfigError, match="too short"):
        config.load_salt(cfg, env={"WEIBO_MH_SALT": "short"})


def test_demo_salt_is_created_once(tmp_path):
    path = tmp_path / "data" / "demo.salt"
    first = config.demo_salt(path)
    assert config.demo_salt(path) == first
    assert len(first) >= config.MIN_SALT_CHARS
    assert (path.stat().st_mode & 0o777) == 0o600


def test_demo_config_may_create_its_salt():
    cfg = load_config(CONFIG_DIR / "demo.toml", env={})
    assert len(config.load_salt(cfg, env={})) >= config.MIN_SALT_CHARS


def test_hash_is_hmac_sha256_and_raw_ids_are_opt_in():
    p = privacy.Pseudonymiser(b"k" * 16)
    expected = hmac.new(b"k" * 16, b"u:12345", hashlib.sha256).hexdigest()
    assert p.hash("u:12345") == expected
    assert p.hash("u:12345") != privacy.Pseudonymiser(b"j" * 16).hash("u:12345")
    assert p.hash("") is None and p.raw("u:12345") is None
    assert privacy.Pseudonymiser(b"k" * 16, keep_raw_ids=True).raw("u:12345") == "u:12345"
    assert "k" * 16 not in repr(p)
