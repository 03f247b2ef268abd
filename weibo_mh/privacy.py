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

from weibo_mh.config import Config, load_salt, new_salt


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
