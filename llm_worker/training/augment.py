"""Data augmentation for training: extra, label-keeping copies of training texts.

Why: SOS-1K has 999 comments; its paper reports that augmentation adds up to 4.65 F1
points. Each copy changes a text a little and keeps its labels. Augmentation is applied
to training rows only: ``train`` and ``finetune`` call it on the rows they train on, and
the classifier's inner cross-validation (which picks the decision threshold) augments
only the inner training part, so no copy of a text is ever scored as held-out data.

Traditional methods (EDA, Wei & Zou 2019, adapted to Chinese with jieba words):

- ``synonym``: replace about ``alpha`` of the words that have a synonym in the project's
  list (``synonyms.toml``; no risk cues, no negators) by another word of their group;
- ``insert``: insert a synonym of a word of the text (or a neutral filler) at a random place;
- ``delete``: drop each word with probability ``alpha`` (at least one);
- ``swap``: swap two words, about ``alpha`` of the words times;
- ``emoji``: insert one or two emoji that no lexicon counts;
- ``punct``: add, drop, repeat or replace one punctuation mark.

Negators (不, 没, 别 …) are never deleted, swapped or replaced, so ``不想死`` does not
become ``想死``. Deterministic: a copy depends only on the seed, the copy number and the
text itself, never on the other rows or their order. A copy equal to its original or to
an earlier copy is dropped.

``paraphrase`` (LLM rewriting through a generating backend) lives in ``paraphrase.py``.
"""

from __future__ import annotations

import argparse
import random
import re
import tomllib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from llm_worker.scoring.features import segmenter

TRADITIONAL = ("synonym", "insert", "delete", "swap", "emoji", "punct")
#: Methods that need a generating model (``paraphrase.py``).
LLM_METHODS = ("paraphrase",)
METHODS = TRADITIONAL + LLM_METHODS

_PUNCT = re.compile(r"^[\W_]+$")
_NEGATOR_START = ("不", "没", "别", "未", "无", "非", "莫", "勿", "甭")


class AugmentError(ValueError):
    pass


@dataclass(frozen=True)
class AugmentSettings:
    """What to augment with. ``copies`` per text, each made by one method chosen at random."""

    methods: tuple[str, ...]
    copies: int = 2
    alpha: float = 0.1
    seed: int = 0
    paraphrase: dict = field(default_factory=dict)  # backend settings, when "paraphrase" is used

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown or not self.methods:
            raise AugmentError(f"unknown augmentation method(s) {', '.join(unknown) or '(none)'}; "
                               f"choose from {', '.join(METHODS)}")
        if self.copies < 1:
            raise AugmentError("augmentation copies must be at least 1")
        if not 0 < self.alpha <= 0.5:
            raise AugmentError("augmentation alpha must be in (0, 0.5]")

    def as_dict(self) -> dict:
        d = asdict(self)
        d["methods"] = list(self.methods)
        return d


def add_augment_options(parser: argparse.ArgumentParser, *, methods: tuple[str, ...] = TRADITIONAL,
                        what: str = "add augmented copies of the training rows (never of held-out data)",
                        ) -> argparse._ArgumentGroup:
    """The ``--augment`` options, written once for train, finetune and bench_quality.

    ``methods`` are the ones the command can run (finetune adds ``paraphrase``); ``what`` is
    what ``--augment`` does there. Returns the option group, for options only one command has
    (finetune's ``--paraphrase-*``). augment_settings() reads the parsed values back.
    """
    d = AugmentSettings(("swap",))
    g = parser.add_argument_group("augmentation", "label-keeping copies of training texts; see docs/quality.md")
    g.add_argument("--augment", nargs="+", metavar="METHOD",
                   help=f"{what}: {', '.join(methods)}")
    g.add_argument("--augment-copies", type=int, default=d.copies, metavar="N",
                   help=f"augmented copies per training text (default {d.copies}; "
                        "each by one method drawn at random)")
    g.add_argument("--augment-alpha", type=float, default=d.alpha, metavar="A",
                   help=f"share of the words a copy changes, in (0, 0.5] (default {d.alpha})")
    g.add_argument("--augment-seed", type=int, default=d.seed, metavar="N",
                   help=f"augmentation seed (default {d.seed})")
    return g


def augment_settings(a: argparse.Namespace, methods: tuple[str, ...] = TRADITIONAL) -> AugmentSettings | None:
    """The parsed add_augment_options() values as settings, or None without ``--augment``.

    AugmentError (not an argparse exit, so each command reports it its own way) on an unknown
    method, a method this command cannot run (``paraphrase`` outside finetune), bad copies or alpha.
    """
    if not a.augment:
        return None
    elsewhere = [m for m in a.augment if m in METHODS and m not in methods]
    if elsewhere:
        raise AugmentError(f"this command augments with {', '.join(methods)}; {', '.join(elsewhere)} "
                           "(a generating model) is for finetune")
    return AugmentSettings(tuple(a.augment), copies=a.augment_copies, alpha=a.augment_alpha,
                           seed=a.augment_seed)


def augment_argv(settings: AugmentSettings) -> list[str]:
    """``settings`` as add_augment_options() arguments: how bench_quality passes them to train."""
    return ["--augment", *settings.methods, "--augment-copies", str(settings.copies),
            "--augment-alpha", repr(settings.alpha), "--augment-seed", str(settings.seed)]


@lru_cache(maxsize=1)
def resources() -> dict:
    with (Path(__file__).with_name("synonyms.toml")).open("rb") as f:
        raw = tomllib.load(f)
    synonyms: dict[str, tuple[str, ...]] = {}
    for group in raw["groups"]:
        for w in group:
            if w in synonyms:
                raise AugmentError(f"synonyms.toml: {w!r} is in two groups")
            synonyms[w] = tuple(x for x in group if x != w)
    return {"synonyms": synonyms, "fillers": tuple(raw["fillers"]), "emoji": tuple(raw["emoji"]),
            "punctuation": tuple(raw["punctuation"])}


def tokens(text: str) -> list[str]:
    """jieba's words, punctuation kept (so joining them gives the text back)."""
    return list(segmenter().lcut(text))


def _protected(word: str) -> bool:
    return word.startswith(_NEGATOR_START) or bool(_PUNCT.match(word)) or not word.strip()


def _free(words: list[str]) -> list[int]:
    return [i for i, w in enumerate(words) if not _protected(w)]


def _count(words: list[str], alpha: float) -> int:
    return max(1, round(alpha * len(_free(words))))


def synonym_replace(words: list[str], rng: random.Random, alpha: float) -> list[str]:
    syn = resources()["synonyms"]
    spots = [i for i in _free(words) if words[i] in syn]
    rng.shuffle(spots)
    out = list(words)
    for i in spots[: _count(words, alpha)]:
        out[i] = rng.choice(syn[words[i]])
    return out


def random_insert(words: list[str], rng: random.Random, alpha: float) -> list[str]:
    res = resources()
    out = list(words)
    for _ in range(_count(words, alpha)):
        have = [w for w in out if w in res["synonyms"]]
        new = rng.choice(res["synonyms"][rng.choice(have)]) if have else rng.choice(res["fillers"])
        out.insert(rng.randint(0, len(out)), new)
    return out


def random_delete(words: list[str], rng: random.Random, alpha: float) -> list[str]:
    free = _free(words)
    if len(free) < 2:
        return list(words)
    drop = {i for i in free if rng.random() < alpha}
    if not drop:
        drop = {rng.choice(free)}
    if len(drop) >= len(free):
        drop.discard(min(drop))
    return [w for i, w in enumerate(words) if i not in drop]


def random_swap(words: list[str], rng: random.Random, alpha: float) -> list[str]:
    free = _free(words)
    out = list(words)
    if len(free) < 2:
        return out
    for _ in range(_count(words, alpha)):
        a, b = rng.sample(free, 2)
        out[a], out[b] = out[b], out[a]
    return out


def emoji_noise(words: list[str], rng: random.Random, alpha: float) -> list[str]:
    out = list(words)
    for _ in range(rng.randint(1, 2)):
        out.insert(rng.randint(0, len(out)), rng.choice(resources()["emoji"]))
    return out


def punct_noise(words: list[str], rng: random.Random, alpha: float) -> list[str]:
    marks = resources()["punctuation"]
    out = list(words)
    present = [i for i, w in enumerate(out) if _PUNCT.match(w)]
    action = rng.choice(("add", "drop", "repeat", "replace") if present else ("add",))
    if action == "add":
        out.insert(rng.randint(1, len(out)) if out else 0, rng.choice(marks))
    elif action == "drop":
        del out[rng.choice(present)]
    elif action == "repeat":
        i = rng.choice(present)
        out[i] = out[i] * 2
    else:
        out[rng.choice(present)] = rng.choice(marks)
    return out


OPERATIONS = {"synonym": synonym_replace, "insert": random_insert, "delete": random_delete,
              "swap": random_swap, "emoji": emoji_noise, "punct": punct_noise}


def augment_text(text: str, method: str, seed: int = 0, copy: int = 1, alpha: float = 0.1) -> str:
    """One traditional copy of ``text``; depends only on (seed, copy, method, text)."""
    rng = random.Random(f"{seed}\x1f{copy}\x1f{method}\x1f{text}")
    return "".join(OPERATIONS[method](tokens(text), rng, alpha))


def augment(texts: list[str], settings: AugmentSettings, paraphraser=None) -> tuple[list[str], list[int]]:
    """New texts and, for each, the index of its original in ``texts``.

    Copy ``c`` of a text uses a method drawn from ``settings.methods`` by a generator seeded
    with (seed, c, text). ``paraphrase`` needs ``paraphraser`` (``paraphrase.Paraphraser``),
    which rewrites all texts that drew it in one cached batch.
    """
    if "paraphrase" in settings.methods and paraphraser is None:
        raise AugmentError("the paraphrase method needs a generating backend (--paraphrase-model)")
    plan: list[tuple[int, int, str]] = []
    for i, text in enumerate(texts):
        for c in range(1, settings.copies + 1):
            pick = random.Random(f"{settings.seed}\x1f{c}\x1fmethod\x1f{text}")
            plan.append((i, c, pick.choice(settings.methods)))
    rewritten: dict[tuple[int, int], str] = {}
    para = [(i, c) for i, c, m in plan if m == "paraphrase"]
    if para:
        outs = paraphraser.paraphrase([texts[i] for i, _ in para], [c for _, c in para])
        rewritten = dict(zip(para, outs, strict=True))
    new_texts: list[str] = []
    origin: list[int] = []
    seen: dict[int, set[str]] = {}
    for i, c, m in plan:
        text = texts[i]
        new = rewritten[(i, c)] if m == "paraphrase" else augment_text(text, m, settings.seed, c, settings.alpha)
        done = seen.setdefault(i, {text})
        if not new.strip() or new in done:
            continue
        done.add(new)
        new_texts.append(new)
        origin.append(i)
    return new_texts, origin
