"""The trained suicide-risk model: a binary high-risk ensemble and an 11-level head.

Why two heads: the binary task (level >= 6) is what crisis teams act on and the data
has separate binary labels; the 11 levels are finer but noisier. The model first
decides the band (high: 6-10, low: 0-5) with the ensemble, then picks the most likely
level inside that band, so level >= 6 always agrees with the binary decision.
The confidence is the probability of the chosen level (band probability times the
level's share inside the band).

Binary ensemble (probabilities averaged): logistic regression on n-grams + cues,
NB-weighted logistic regression, a sigmoid-calibrated linear SVM, and gradient
boosting on the lexicon cue features alone. Its decision threshold is chosen by an
inner 4-fold cross-validation on the training rows (never on the data scored later). Level head: a calibrated linear SVM
with balanced class weights.

Optionally a fine-tuned pretrained encoder (``encoder_model.EncoderClassifier``) joins in: its
P(high) is averaged with the ensemble's (equal weights), and the decision threshold becomes the
same average of the two members' own thresholds (the ensemble's inner-CV one, 0.5 for the
encoder, whose loss is class-balanced). Inside the chosen band the level is the argmax of the
SVM's and the encoder's level probabilities, averaged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.class_weight import compute_sample_weight

from llm_worker.scoring.features import CueFeatures, FeatureConfig, _Normalise, build_vectoriser
from weibo_mh.rubric import HIGH_RISK_LEVEL, LEVELS

if TYPE_CHECKING:
    from collections.abc import Callable

    from llm_worker.scoring.encoder_model import EncoderClassifier

#: How the level inside the chosen band is picked without an encoder: the calibrated level
#: probabilities ("calibrated", the default since the pre-registered CV with SOS-4K, BENCHMARKS.md)
#: or the raw class-balanced SVM's decision ("svm", the rule before; models saved before keep it).
BAND_LEVELS = ("svm", "calibrated")
INNER_FOLDS = 4  # inner CV for the decision threshold (fixed a priori: the outer CV trains on four folds)


def _calibration_cv(k: int, y: np.ndarray, groups: np.ndarray | None) -> int | list:
    """Splits for CalibratedClassifierCV: ``k`` folds, or, with augmented rows, ``k`` folds over
    their originals (``groups``), so a copy and its original never sit on both sides of the split
    that fits the calibration (the calibrator would see the SVM's over-confident scores on
    texts it had as good as trained on)."""
    if groups is None:
        return k
    return list(StratifiedGroupKFold(k).split(np.zeros(len(y)), y, groups))


def _nb_ratio(x: sparse.csr_matrix, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    p = np.asarray(x[y == 1].sum(0)).ravel() + alpha
    q = np.asarray(x[y == 0].sum(0)).ravel() + alpha
    return np.log((p / p.sum()) / (q / q.sum()))


class SuicideModel:
    """Fit on texts with levels (and binary labels when available); predict levels 0-10."""

    def __init__(self, features: FeatureConfig | None = None, threshold: float | None = None,
                 seed: int = 0, encoder: EncoderClassifier | None = None,
                 band_levels: str = "calibrated") -> None:
        if band_levels not in BAND_LEVELS:
            raise ValueError(f"band_levels must be one of {', '.join(BAND_LEVELS)}")
        self.features = features or FeatureConfig()
        self.threshold = threshold
        self.seed = seed
        self.encoder = encoder
        self.band_levels = band_levels

    def __setstate__(self, state: dict) -> None:
        state.setdefault("encoder", None)  # models saved before the encoder existed
        state.setdefault("band_levels", "svm")  # models saved before the choice: the rule they were measured with
        self.__dict__.update(state)

    # -- features --------------------------------------------------------------------------
    def _matrices(self, texts: list[str], fit: bool = False) -> tuple[sparse.csr_matrix, np.ndarray]:
        if fit:
            text_cfg = FeatureConfig(**{**self.features.as_dict(), "use_cues": False})
            self.text_vec_ = build_vectoriser(text_cfg)
            self.norm_ = _Normalise()
            self.cues_ = CueFeatures()
            t = self.text_vec_.fit_transform(texts)
            c = self.cues_.fit_transform(self.norm_.transform(texts)).toarray()
        else:
            t = self.text_vec_.transform(texts)
            c = self.cues_.transform(self.norm_.transform(texts)).toarray()
        return sparse.csr_matrix(t), c

    def _joined(self, t: sparse.csr_matrix, c: np.ndarray) -> sparse.csr_matrix:
        return sparse.hstack([t, sparse.csr_matrix(c * self.features.cue_weight)]).tocsr()

    def _nb(self, t: sparse.csr_matrix, c: np.ndarray, nb_r: np.ndarray) -> sparse.csr_matrix:
        b = (t > 0).astype(float).multiply(nb_r).tocsr()
        return sparse.hstack([b, sparse.csr_matrix(c * self.features.cue_weight)]).tocsr()

    # -- training --------------------------------------------------------------------------
    def _fit_binary(self, t: sparse.csr_matrix, c: np.ndarray, y_bin: np.ndarray,
                    groups: np.ndarray | None = None) -> dict:
        """The four binary members (and the NB ratios they need), fitted on one set of rows.
        ``groups``: each row's original (augmented rows), for the SVM's calibration splits."""
        x = self._joined(t, c)
        nb_r = _nb_ratio((t > 0).astype(float).tocsr(), y_bin)
        y0 = y_bin if groups is None else y_bin[np.unique(groups, return_index=True)[1]]
        cv = _calibration_cv(max(2, min(3, int(np.bincount(y0).min()))), y_bin, groups)
        return {
            "nb_r": nb_r,
            "lr": LogisticRegression(C=10, solver="liblinear", class_weight="balanced").fit(x, y_bin),
            "nb": LogisticRegression(C=1, solver="liblinear", class_weight="balanced").fit(
                self._nb(t, c, nb_r), y_bin),
            "svc": CalibratedClassifierCV(LinearSVC(C=0.5, class_weight="balanced", max_iter=5000),
                                          cv=cv).fit(x, y_bin),
            # Plain gradient boosting, not the histogram kind: its OpenMP prediction stalls on a busy
            # machine, and 33 dense features need no histograms.
            "gb": GradientBoostingClassifier(n_estimators=200, learning_rate=0.05, max_depth=3,
                                             subsample=0.8, random_state=self.seed).fit(
                c, y_bin, sample_weight=compute_sample_weight("balanced", y_bin)),
        }

    def _choose_threshold(self, t: sparse.csr_matrix, c: np.ndarray, y_bin: np.ndarray,
                          origin: np.ndarray | None = None) -> float:
        """Decision threshold on P(high) by inner cross-validation on the training rows only.

        The ensemble is refitted on each inner split (TF-IDF vocabulary and cue scaling are
        label-free and stay as fitted); the threshold maximising the high-risk F1 of the pooled
        out-of-fold probabilities wins (ties: the one nearest 0.5). Too few rows: 0.5.
        With augmented rows (``origin[j]`` = the original row of row j, originals first), the
        splits are over the originals: an inner fit sees the copies of its training originals
        only, and only originals are scored, so no copy of a scored text was trained on.
        """
        n = len(y_bin) if origin is None else int(np.sum(origin == np.arange(len(origin))))
        y0 = y_bin[:n]
        k = min(INNER_FOLDS, int(np.bincount(y0).min()))
        if k < 2 or n < 40:
            return 0.5
        oof = np.zeros(n)
        for tr, te in StratifiedKFold(k, shuffle=True, random_state=self.seed).split(np.zeros(n), y0):
            rows = tr if origin is None else np.flatnonzero(np.isin(origin, tr))
            members = self._fit_binary(t[rows], c[rows], y_bin[rows],
                                       None if origin is None else origin[rows])
            oof[te] = self._p_high_of(members, t[te], c[te])
        y_bin = y0
        grid = np.round(np.arange(0.30, 0.701, 0.01), 2)
        f1 = np.array([f1_score(y_bin, oof >= g, zero_division=0) for g in grid])
        best = np.flatnonzero(f1 >= f1.max() - 1e-12)
        self.inner_f1_ = float(f1.max())
        return float(grid[best[np.argmin(np.abs(grid[best] - 0.5))]])

    def fit(self, texts: list[str], levels: list[int], binary: list[int] | None = None,
            log: Callable[[str], None] | None = None, extra_texts: list[str] | None = None,
            extra_origin: list[int] | None = None) -> SuicideModel:
        """``extra_texts``: augmented copies, ``extra_origin[j]`` the index in ``texts`` of the
        original of copy j; a copy takes its original's labels (see ``training.augment``)."""
        y_lvl = np.asarray(levels, dtype=int)
        y_bin = np.asarray(binary, dtype=int) if binary is not None else (y_lvl >= HIGH_RISK_LEVEL).astype(int)
        if len(set(y_bin.tolist())) < 2:
            raise ValueError("training data needs both high-risk and low-risk examples")
        origin = None
        if extra_texts:
            src = np.asarray(extra_origin, dtype=int)
            if len(src) != len(extra_texts) or src.min() < 0 or src.max() >= len(texts):
                raise ValueError("extra_origin must give an original row for every extra text")
            origin = np.concatenate([np.arange(len(texts)), src])
            texts = list(texts) + list(extra_texts)
            y_lvl, y_bin = y_lvl[origin], y_bin[origin]
        self.augmented_rows_ = len(extra_texts) if extra_texts else 0
        t, c = self._matrices(texts, fit=True)
        x = self._joined(t, c)
        self.binary_ = self._fit_binary(t, c, y_bin, origin)
        self.threshold_ = (self._choose_threshold(t, c, y_bin, origin) if self.threshold is None
                           else float(self.threshold))
        counts = np.bincount(y_lvl if origin is None else y_lvl[:len(texts) - self.augmented_rows_],
                             minlength=len(LEVELS))
        present = counts[counts > 0]
        lvl_cv = int(min(3, present.min())) if len(present) > 1 else 0
        # Inside a band the level is the calibrated copy's argmax (band_levels "calibrated": with
        # SOS-4K's rows it beat the raw SVM's ranking on every CV fold; on SOS-1K's 800 rows alone
        # the raw SVM had been better) or the raw balanced SVM's ("svm"); the calibrated copy also
        # gives the confidence.
        self.lvl_svc_ = LinearSVC(C=1.0, class_weight="balanced", max_iter=5000).fit(x, y_lvl)
        if lvl_cv >= 2:
            self.lvl_ = CalibratedClassifierCV(LinearSVC(C=1.0, class_weight="balanced", max_iter=5000),
                                               cv=_calibration_cv(lvl_cv, y_lvl, origin)).fit(x, y_lvl)
        else:  # tiny data: one class per level at most; plain logistic regression still gives probabilities
            self.lvl_ = LogisticRegression(C=10, max_iter=2000, class_weight="balanced").fit(x, y_lvl)
        self.ngram_threshold_ = self.threshold_
        if self.encoder is not None:
            if log:
                log(f"fine-tuning the encoder {self.encoder.encoder} ({self.encoder.epochs} epochs)")
            self.encoder.fit(texts, y_lvl.tolist(), y_bin.tolist(), log=log)
            if self.threshold is None:
                self.threshold_ = 0.5 * self.ngram_threshold_ + 0.5 * 0.5
        return self

    @contextmanager
    def ngram_only(self) -> Iterator[SuicideModel]:
        """Predict with the n-gram ensemble alone, at its own threshold: the same rows, features
        and inner CV as a model trained without an encoder, so that one CV run measures both."""
        encoder, threshold = self.encoder, self.threshold_
        self.encoder, self.threshold_ = None, self.ngram_threshold_
        try:
            yield self
        finally:
            self.encoder, self.threshold_ = encoder, threshold

    # -- prediction ------------------------------------------------------------------------
    def _p_high_of(self, m: dict, t: sparse.csr_matrix, c: np.ndarray) -> np.ndarray:
        x = self._joined(t, c)
        parts = [m["lr"].predict_proba(x)[:, 1], m["nb"].predict_proba(self._nb(t, c, m["nb_r"]))[:, 1],
                 m["svc"].predict_proba(x)[:, 1], m["gb"].predict_proba(c)[:, 1]]
        return np.mean(parts, axis=0)

    def level_proba(self, x) -> np.ndarray:
        """Probabilities over all 11 levels (levels unseen in training get 0)."""
        p = self.lvl_.predict_proba(x)
        full = np.zeros((x.shape[0], len(LEVELS)))
        full[:, self.lvl_.classes_.astype(int)] = p
        return full

    def predict(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(levels, confidence of each level, probability of high risk)."""
        t, c = self._matrices(texts)
        x = self._joined(t, c)
        ph = self._p_high_of(self.binary_, t, c)
        pl = self.level_proba(x)
        d = np.full((x.shape[0], len(LEVELS)), -np.inf)
        if self.encoder is not None or self.band_levels == "calibrated":
            if self.encoder is not None:
                ph_enc, pl_enc = self.encoder.predict_proba(texts)
                ph = 0.5 * ph + 0.5 * ph_enc
                pl = 0.5 * pl + 0.5 * pl_enc
            seen = self.lvl_svc_.classes_.astype(int)
            d[:, seen] = pl[:, seen]
        else:
            dec = self.lvl_svc_.decision_function(x)
            if dec.ndim == 1:  # two levels only in training
                dec = np.column_stack([-dec, dec])
            d[:, self.lvl_svc_.classes_.astype(int)] = dec
        high = ph >= self.threshold_
        levels = np.where(high, HIGH_RISK_LEVEL + d[:, HIGH_RISK_LEVEL:].argmax(1),
                          d[:, :HIGH_RISK_LEVEL].argmax(1))
        # A band with no level seen in training: fall back to its edge level.
        levels = np.where(high & ~np.isfinite(d[:, HIGH_RISK_LEVEL:]).any(1), HIGH_RISK_LEVEL, levels)
        levels = np.where(~high & ~np.isfinite(d[:, :HIGH_RISK_LEVEL]).any(1), HIGH_RISK_LEVEL - 1, levels)
        eps = 1e-12
        lo, hi = pl[:, :HIGH_RISK_LEVEL] + eps, pl[:, HIGH_RISK_LEVEL:] + eps
        share = np.where(high, hi[np.arange(len(levels)), np.clip(levels - HIGH_RISK_LEVEL, 0, None)]
                         / hi.sum(1),
                         lo[np.arange(len(levels)), np.clip(levels, None, HIGH_RISK_LEVEL - 1)] / lo.sum(1))
        conf = np.where(high, ph, 1 - ph) * share
        return levels.astype(int), conf, ph


class PositivityModel:
    """Happy against negative emotions, from emotion-labelled files: P(happy) -> 0-10."""

    def fit(self, texts: list[str], happy: list[int]) -> PositivityModel:
        self.vec_ = build_vectoriser(FeatureConfig(char_ngrams=(1, 3), use_words=False, use_cues=False))
        x = self.vec_.fit_transform(texts)
        self.lr_ = LogisticRegression(C=3, solver="liblinear", class_weight="balanced").fit(x, happy)
        return self

    def proba(self, texts: list[str]) -> np.ndarray:
        return self.lr_.predict_proba(self.vec_.transform(texts))[:, 1]


class LevelHead:
    """One dimension's 0-10 level learned from a team's own labels (``train --from-db``).

    For mood_disorder and substance_use, which no public data set labels: character 1-3-gram
    TF-IDF and a class-balanced logistic regression over the levels seen in training. The
    level is the most likely one, its probability the confidence. The classifier backend
    blends it 50/50 with the lexicon's level, as it does the positivity head.
    """

    def fit(self, texts: list[str], levels: list[int]) -> LevelHead:
        if len(set(levels)) < 2:
            raise ValueError("a level head needs at least two different levels in its labels")
        self.vec_ = build_vectoriser(FeatureConfig(char_ngrams=(1, 3), use_words=False, use_cues=False))
        x = self.vec_.fit_transform(texts)
        self.lr_ = LogisticRegression(C=3, max_iter=2000, class_weight="balanced").fit(x, levels)
        self.n_labels_ = len(texts)
        return self

    def predict(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(levels, confidence of each)."""
        p = self.lr_.predict_proba(self.vec_.transform(texts))
        best = p.argmax(1)
        return self.lr_.classes_[best].astype(int), p[np.arange(len(best)), best]
