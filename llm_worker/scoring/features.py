"""Features for the trained classifier: character and word n-grams, lexicon cues, length, negation.

The n-gram vectorisers learn their vocabulary from the training texts; the cue
features come from the project's own lexicons (llm_worker/scoring/lexicons), so a trained
model is the lexicon's judgement plus what the labelled data adds to it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import StandardScaler

from llm_worker.scoring.backends.lexicon import analyse, grade_suicide
from llm_worker.scoring.lexicons import matcher

_URLS = re.compile(r"https?://\S+")
_MENTIONS = re.compile(r"@[^\s:：，,]{1,30}")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Lower-case, drop URLs and @mentions, squeeze spaces: the model should read words."""
    text = _MENTIONS.sub("@", _URLS.sub(" ", text or "")).lower()
    return _SPACES.sub(" ", text).strip()


_jieba = None


def segmenter() -> Any:
    """jieba, loaded once and quietly (its dictionary takes about a second to load)."""
    global _jieba
    if _jieba is None:
        import jieba

        jieba.setLogLevel(logging.WARNING)
        jieba.initialize()
        _jieba = jieba
    return _jieba


def words(text: str) -> list[str]:
    """jieba segmentation; punctuation and spaces are dropped."""
    return [w for w in segmenter().lcut(text) if w.strip() and not re.fullmatch(r"[\W_]+", w)]


SUICIDE_CATEGORIES = ("suffering", "suffering_strong", "existential", "wish", "wish_strong", "method",
                      "method_inquiry", "company", "plan", "timing", "attempt_past", "attempt_now")


#: The implicit-risk cue tables (issue 17) feed the existing plan and method features, so the
#: feature vector keeps its length and models trained before them still load.
CATEGORY_ALIAS = {"farewell": "plan", "farewell_weak": "plan", "stockpile": "plan", "place": "method"}


def cue_vector(text: str) -> list[float]:
    """Dense lexicon features of one normalised text (order: ``cue_names()``)."""
    hits = matcher("suicide").find(text)
    live = [h for h in hits if h.category != "noise"]
    counts = {c: 0.0 for c in SUICIDE_CATEGORIES}
    negated = {c: 0.0 for c in SUICIDE_CATEGORIES}
    for h in live:
        cat = CATEGORY_ALIAS.get(h.category, h.category)
        if cat in counts:  # the implicit-risk tables count as plan/method cues; "everyday" as none
            (negated if h.negated else counts)[cat] += 1.0
    level = grade_suicide(text, hits)[0]
    a = analyse(text)
    vec = [min(v, 3.0) for v in counts.values()] + [min(v, 2.0) for v in negated.values()]
    vec += [level / 10, float(level >= 6), float(level >= 4),
            a.scores["positivity"].value / 10, a.scores["mood_disorder"].value / 10,
            a.scores["substance_use"].value / 10]
    n = len(text)
    vec += [np.log1p(n) / 6, float(n <= 10), text.count("？") + text.count("?") > 0,
            float("我" in text), float(any(h.negated for h in hits))]
    return [float(v) for v in vec]


def cue_names() -> list[str]:
    return ([f"cue_{c}" for c in SUICIDE_CATEGORIES] + [f"neg_{c}" for c in SUICIDE_CATEGORIES]
            + ["lex_level", "lex_high", "lex_wish", "lex_positivity", "lex_mood", "lex_substance",
               "log_len", "short", "question", "first_person", "any_negation"])


class CueFeatures(BaseEstimator, TransformerMixin):
    """Lexicon cue counts and scores, length and negation, scaled."""

    def fit(self, X, y=None):  # noqa: N803 - sklearn's names
        self.scaler_ = StandardScaler().fit(self._raw(X))
        return self

    def _raw(self, X) -> np.ndarray:  # noqa: N803
        return np.array([cue_vector(x) for x in X], dtype=float)

    def transform(self, X):  # noqa: N803
        return sparse.csr_matrix(self.scaler_.transform(self._raw(X)))


@dataclass
class FeatureConfig:
    """What the vectoriser uses; saved with the model so that scoring rebuilds the same thing."""

    char_ngrams: tuple[int, int] = (1, 4)
    word_ngrams: tuple[int, int] = (1, 2)
    use_words: bool = True
    use_cues: bool = True
    cue_weight: float = 0.3  # dense cue features next to L2-normalised TF-IDF rows: 0.3 did best in CV
    min_df: int = 1
    max_features: int = 200_000

    def as_dict(self) -> dict:
        return asdict(self)


def build_vectoriser(fc: FeatureConfig) -> Pipeline:
    parts: list[tuple[str, object]] = [
        ("char", TfidfVectorizer(analyzer="char", ngram_range=fc.char_ngrams, sublinear_tf=True,
                                 min_df=fc.min_df, max_features=fc.max_features, preprocessor=normalise)),
    ]
    if fc.use_words:
        parts.append(("word", TfidfVectorizer(analyzer=_word_analyser(fc.word_ngrams), sublinear_tf=True,
                                              min_df=fc.min_df, max_features=fc.max_features)))
    weights = {name: 1.0 for name, _ in parts}
    if fc.use_cues:
        parts.append(("cues", Pipeline([("norm", _Normalise()), ("cue", CueFeatures())])))
        weights["cues"] = fc.cue_weight
    return Pipeline([("union", FeatureUnion(parts, transformer_weights=weights))])


class _Normalise(BaseEstimator, TransformerMixin):
    def fit(self, X, y=None):  # noqa: N803
        return self

    def transform(self, X):  # noqa: N803
        return [normalise(x) for x in X]


class _WordNgrams:
    """A picklable word n-gram analyser over jieba tokens."""

    def __init__(self, ngram_range: tuple[int, int]) -> None:
        self.ngram_range = tuple(ngram_range)

    def __call__(self, text: str) -> list[str]:
        toks = words(normalise(text))
        lo, hi = self.ngram_range
        out = []
        for n in range(lo, hi + 1):
            out += [" ".join(toks[i:i + n]) for i in range(len(toks) - n + 1)]
        return out


def _word_analyser(ngram_range: tuple[int, int]) -> _WordNgrams:
    return _WordNgrams(ngram_range)
