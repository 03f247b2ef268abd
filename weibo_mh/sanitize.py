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
# ANSI/VT100 escape sequences (colours, cursor moves): removed whole, not left as "[31m".
_ANSI = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
# Bidirectional controls (U+202A-U+202E embeddings/overrides, U+2066-U+2069 isolates, marks):
# they can make a table cell read backwards, so outputs show them instead of obeying them.
_BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# What outputs (HTML, Markdown, CSV) must not pass on raw: controls (tab and newline too,
# a table row is one line) and bidi controls.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


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
    if "\x1b" in value:
        value = _ANSI.sub("", value)
    return _CONTROL.sub(" ", value)


def clean_word(value: object) -> str:
    """A one-line name (a topic word): clean_text, then all whitespace runs to one space.

    Only strings are names: anything else (a number, a list, null in the JSON) is ''
    rather than its Python repr.
    """
    if not isinstance(value, str):
        return ""
    return " ".join(clean_text(value).split())


def visible(value: object) -> str:
    """Text for a report cell: control and bidi characters shown as ``<U+202E>``, never obeyed."""
    text = clean_text(value) if not isinstance(value, str) or "\x1b" in value else value
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        text = clean_text(text)
    return _INVISIBLE.sub(lambda m: f"<U+{ord(m.group()):04X}>", text)


#: First characters a spreadsheet reads as a formula (OWASP "CSV injection"); a leading
#: tab or line break can hide one from the eye.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r", "\n")


def csv_cell(value: object) -> object:
    """A CSV cell a spreadsheet will neither run nor show reversed.

    Text is clean_text'ed, its bidi controls shown as ``<U+202E>`` (as the reports do), and
    it gets a ``'`` first when it starts like a formula. Tab and newline stay inside the cell
    (CSV quotes them; notes span lines). Anything else passes through unchanged, for the
    caller (pandas, or the console's own formatting) to write.
    """
    if not isinstance(value, str):
        return value
    text = _BIDI.sub(lambda m: f"<U+{ord(m.group()):04X}>", clean_text(value))
    return "'" + text if text.startswith(FORMULA_START) else text


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
