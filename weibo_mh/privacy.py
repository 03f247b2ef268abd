"""Pseudonymisation: Weibo user ids become HMAC-SHA256 hashes under a secret salt.

The salt comes from WEIBO_MH_SALT, WEIBO_MH_SALT_FILE or ``privacy.salt_file``.
Without one a service refuses to start, so that nobody stores hashes that an
attacker could reverse by hashing every known user id. Only the demo
configuration (``privacy.demo_salt = true``) may create a random salt, in the
git-ignored ``data/`` folder.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from weibo_mh.config import PROJECT_ROOT, Config, ConfigError, read_secret_file

DEMO_SALT_FILE = PROJECT_ROOT / "data" / "demo.salt"
MIN_SALT_CHARS = 16


def load_salt(cfg: Config, env: Mapping[str, str] | None = None) -> bytes:
    """The salt as bytes, or ConfigError explaining how to provide one."""
    environ: Mapping[str, str] = os.environ if env is None else env
    if environ.get("WEIBO_MH_SALT"):
        salt, origin = environ["WEIBO_MH_SALT"].strip(), "WEIBO_MH_SALT"
    elif environ.get("WEIBO_MH_SALT_FILE"):
        salt, origin = read_secret_file(environ["WEIBO_MH_SALT_FILE"], "WEIBO_MH_SALT_FILE"), "WEIBO_MH_SALT_FILE"
    elif cfg.privacy.salt_file:
        salt, origin = read_secret_file(cfg.privacy.salt_file, "privacy.salt_file"), "privacy.salt_file"
    elif cfg.privacy.demo_salt:
        salt, origin = demo_salt(), str(DEMO_SALT_FILE)
    else:
        raise ConfigError(
            f"{cfg.source}: no salt for pseudonymising user ids. Set WEIBO_MH_SALT_FILE to a file "
            "outside the repository (create one with: python -m weibo_mh.privacy new-salt > FILE), "
            "or set WEIBO_MH_SALT, or privacy.salt_file in the config.")
    if len(salt) < MIN_SALT_CHARS:
        raise ConfigError(f"the salt from {origin} is too short: use at least {MIN_SALT_CHARS} characters")
    return salt.encode("utf-8")


def demo_salt(path: Path = DEMO_SALT_FILE) -> str:
    """Read the demo salt, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = new_salt()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(value + "\n")
    return value


def new_salt() -> str:
    return secrets.token_hex(32)


class Pseudonymiser:
    """Turns user ids (``u:123``) and reply nicknames (``n:nick``) into stable hashes."""

    def __init__(self, salt: bytes, keep_raw_ids: bool = False) -> None:
        if not salt:
            raise ValueError("empty salt")
        self._salt = salt
        self.keep_raw_ids = keep_raw_ids

    def hash(self, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        return hmac.new(self._salt, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def raw(self, value: str | None) -> str | None:
        """The raw id, only when the config explicitly keeps raw ids."""
        return value if self.keep_raw_ids else None

    def __repr__(self) -> str:  # never show the salt
        return f"Pseudonymiser(keep_raw_ids={self.keep_raw_ids})"


def pseudonymiser_from(cfg: Config) -> Pseudonymiser:
    return Pseudonymiser(load_salt(cfg), keep_raw_ids=cfg.privacy.keep_raw_ids)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(prog="python -m weibo_mh.privacy",
                                 description="Salt helpers for pseudonymising Weibo user ids.")
    ap.add_argument("command", choices=["new-salt"], help="new-salt: print a fresh random salt")
    ap.parse_args()
    print(new_salt())
