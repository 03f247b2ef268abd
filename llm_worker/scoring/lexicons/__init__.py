"""Cue lists written for this project, and the matcher that finds them in a comment.

Each ``*.toml`` file here is one domain (suicide, mood, substance, sentiment, icd10):
tables of ``{weight, words}``. ``modifiers.toml`` holds the negators and degree words
shared by all of them. The matcher takes the longest cue at each position (so
``不想活`` wins over ``想活``, and the ``noise`` idioms such as ``笑死`` hide the ``死``
inside them), then looks a few characters back, within the clause, for a negator
(``不想死了`` is not ``想死``) and for a degree word (``非常`` / ``有点``).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOMAINS = ("suicide", "mood", "substance", "sentiment", "icd10")

#: Punctuation and spaces end a clause: negation does not reach across them.
_CLAUSE_END = re.compile(r"[，,。.！!？?；;：:、\s~～…\n]")


@dataclass(frozen=True)
class Hit:
    category: str
    word: str
    start: int
    weight: float
    negated: bool
    degree: float  # 1.0 plain, >1 strengthened (非常), <1 softened (有点)


@dataclass(frozen=True)
class Modifiers:
    window: int
    negators: tuple[str, ...]
    negator_exceptions: tuple[str, ...]
    strong: tuple[str, ...]
    weak: tuple[str, ...]
    strong_factor: float
    weak_factor: float
    first_person: tuple[str, ...]
    third_person: tuple[str, ...]
    hypothetical: tuple[str, ...]
    discourage: tuple[str, ...]


def _read(name: str) -> dict:
    path = HERE / f"{name}.toml"
    with path.open("rb") as f:
        return tomllib.load(f)


@lru_cache(maxsize=1)
def modifiers() -> Modifiers:
    raw = _read("modifiers")
    tup = {k: tuple(v) for k, v in raw.items() if isinstance(v, list)}
    return Modifiers(window=int(raw["window"]), strong_factor=float(raw["strong_factor"]),
                     weak_factor=float(raw["weak_factor"]), **tup)


class CueMatcher:
    """All cues of one domain in one regular expression, longest alternative first."""

    def __init__(self, domain: str, tables: dict[str, dict], mods: Modifiers) -> None:
        self.domain = domain
        self.mods = mods
        self.categories = tuple(tables)
        self.lookup: dict[str, tuple[str, float]] = {}
        for cat, table in tables.items():
            weight = float(table.get("weight", 1.0))
            for w in table["words"]:
                self.lookup.setdefault(w.lower(), (cat, weight))  # the first table listing a word wins
        words = sorted(self.lookup, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(w) for w in words))
        self._neg = re.compile("|".join(re.escape(w) for w in sorted(mods.negators, key=len, reverse=True)))
        self._exc = re.compile("|".join(re.escape(w) for w in mods.negator_exceptions))
        self._strong = re.compile("|".join(re.escape(w) for w in mods.strong))
        self._weak = re.compile("|".join(re.escape(w) for w in mods.weak))

    def _context(self, text: str, start: int) -> str:
        left = text[max(0, start - self.mods.window):start]
        cut = None
        for m in _CLAUSE_END.finditer(left):
            cut = m.end()
        return left[cut:] if cut is not None else left

    def find(self, text: str) -> list[Hit]:
        """Every cue in ``text`` (already lower-cased), with negation and degree resolved."""
        hits: list[Hit] = []
        for m in self.pattern.finditer(text):
            word = m.group(0)
            cat, weight = self.lookup[word]
            ctx = self._context(text, m.start())
            negated = False
            if ctx:
                bare = self._exc.sub("", ctx) if self.mods.negator_exceptions else ctx
                negated = self._neg.search(bare) is not None
            degree = 1.0
            if ctx:
                if self._weak.search(ctx):
                    degree = self.mods.weak_factor
                elif self._strong.search(ctx):
                    degree = self.mods.strong_factor
            hits.append(Hit(cat, word, m.start(), weight, negated, degree))
        return hits


@cache
def matcher(domain: str) -> CueMatcher:
    """The cached matcher for one domain file (``suicide``, ``mood``, …)."""
    if domain not in DOMAINS:
        raise ValueError(f"unknown lexicon {domain!r} (known: {', '.join(DOMAINS)})")
    return CueMatcher(domain, _read(domain), modifiers())


def contains_any(text: str, words: tuple[str, ...]) -> bool:
    return any(w in text for w in words)
