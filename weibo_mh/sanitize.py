"""Make any comment text safe to score and to store.

Bad data happens: control characters pasted from other apps, lone UTF-16 surrogates
from a broken JSON escape, invalid UTF-8 written by another tool. None of these may
crash the worker, neither in the backend (tokenisers, HTTP JSON bodies) nor in the
database driver (which refuses to encode a lone surrogate).
"""

from __future__ import annotations

import re

# C0 and C1 control characters except tab and newline.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(value: object) -> str:
    """Lone surrogates -> U+FFFD (valid surrogate pairs are joined), controls -> space."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    elif not isinstance(value, str):
        value = str(value)
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        value = value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _CONTROL.sub(" ", value)


def truncate(text: str, max_chars: int) -> tuple[str, bool]:
    """Cut to ``max_chars`` characters (0: no limit); True when something was cut."""
    if max_chars and len(text) > max_chars:
        return text[:max_chars], True
    return text, False


def for_db(value: object, limit: int) -> str | None:
    """A cleaned, length-capped string for last_error / last_output / rationale columns."""
    if value is None:
        return None
    text = clean_text(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
