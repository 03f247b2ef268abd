"""What the spider may store: cleaned text, numbers in range, strings that fit their columns.

Every check reads its limit from the schema (weibo_mh.db), so the database never sees a
value it would reject: a lone surrogate (the driver cannot encode it), a heat of 10^30
(overflow on both engines) or a 200-character topic word (MariaDB: "Data too long").
Text is cleaned with the worker's hygiene (weibo_mh.sanitize.clean_text).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from weibo_mh import db
from weibo_mh.sanitize import clean_text, clean_word

#: Largest value of the schema's integer types (both engines: signed 32 and 64 bits).
INT_MAX = 2**31 - 1
BIGINT_MAX = 2**63 - 1

#: Longest post or comment text kept; a longer one is cut (and the cut is counted).
MAX_TEXT = 20000


def column(table: str, name: str) -> sa.Column:
    return db.metadata.tables[table].c[name]


def length_of(table: str, name: str) -> int | None:
    """The declared length of a string column (None: unbounded text)."""
    return getattr(column(table, name).type, "length", None)


WORD_CHARS = length_of("topics", "word") or 191


def topic_word(value: object) -> tuple[str, str]:
    """(word, '') for a storable topic word, else ('', reason)."""
    if not isinstance(value, str):
        return "", "topic_word_not_text"
    word = clean_word(value)
    if not word:
        return "", "topic_word_empty"
    if len(word) > WORD_CHARS:
        return "", "topic_word_too_long"
    return word, ""


def count(value: object, limit: int = INT_MAX) -> tuple[int, bool]:
    """A non-negative count clamped to its column: (value, True when it had to be changed)."""
    if isinstance(value, bool) or value is None:
        return 0, value is not None
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return (limit if value == float("inf") else 0), True
        value = int(value)
    if not isinstance(value, int):
        try:
            value = int(str(value))
        except ValueError:
            return 0, True
    if value < 0:
        return 0, True
    if value > limit:
        return limit, True
    return value, False


def text(value: object, limit: int = MAX_TEXT) -> tuple[str, bool]:
    """Cleaned text cut to ``limit`` characters: (text, True when cut)."""
    t = clean_text(value).strip()
    if len(t) > limit:
        return t[:limit], True
    return t, False


def optional(value: object, table: str, name: str) -> str | None:
    """A cleaned short string (source, category) cut to its column, or None."""
    if value is None:
        return None
    t = " ".join(clean_text(value).split())
    n = length_of(table, name)
    return (t[:n] if n else t) or None


def misfit(table: str, row: dict[str, Any]) -> str:
    """The first column of ``row`` the database would refuse ('' when all fit).

    Strings longer than their column, or with lone surrogates; integers outside the
    column's range. The last safety net before a batch is sent.
    """
    t = db.metadata.tables[table]
    for name, value in row.items():
        if name not in t.c or value is None:
            continue
        typ = t.c[name].type
        if isinstance(value, str):
            n = getattr(typ, "length", None)
            if n and len(value) > n:
                return f"{table}_{name}_too_long"
            if any("\ud800" <= ch <= "\udfff" for ch in value) or "\x00" in value:
                return f"{table}_{name}_not_text"
        elif isinstance(value, int) and not isinstance(value, bool):
            top = BIGINT_MAX if isinstance(typ, sa.BigInteger) else INT_MAX
            if not -top - 1 <= value <= top:
                return f"{table}_{name}_out_of_range"
    return ""
