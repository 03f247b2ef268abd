"""The metrics of the evaluation issue, in one place so that evaluate, train and bench agree.

- suicide levels: accuracy, weighted and macro F1 over the 11 levels, MAE (and, as an
  extra, binary F1 with level >= 6 as high risk on both sides);
- suicide binary files: F1 of the high-risk class, a level-scoring backend predicting
  high at level >= 6;
- positivity / distortion: ROC AUC of a 0-10 score against a 0/1 target.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    precision_score,
    recall_score,
    roc_auc_score,
)

from weibo_mh.rubric import HIGH_RISK_LEVEL, LEVELS


def level_metrics(y_true: Sequence[int], y_pred: Sequence[int]) -> dict[str, float]:
    yt, yp = np.asarray(y_true), np.asarray(y_pred)
    return {
        "n": int(len(yt)),
        "accuracy": float(accuracy_score(yt, yp)),
        "weighted_f1": float(f1_score(yt, yp, labels=list(LEVELS), average="weighted", zero_division=0)),
        "macro_f1": float(f1_score(yt, yp, labels=list(LEVELS), average="macro", zero_division=0)),
        "mae": float(mean_absolute_error(yt, yp)),
        "binary_f1_from_levels": float(f1_score(yt >= HIGH_RISK_LEVEL, yp >= HIGH_RISK_LEVEL,
                                                zero_division=0)),
    }


def binary_metrics(y_true: Sequence[int], y_pred_high: Sequence[int | bool]) -> dict[str, float]:
    yt, yp = np.asarray(y_true).astype(int), np.asarray(y_pred_high).astype(int)
    return {
        "n": int(len(yt)),
        "binary_f1": float(f1_score(yt, yp, zero_division=0)),
        "precision": float(precision_score(yt, yp, zero_division=0)),
        "recall": float(recall_score(yt, yp, zero_division=0)),
        "accuracy": float(accuracy_score(yt, yp)),
    }


def auc_metrics(y_true: Sequence[int], scores: Sequence[float]) -> dict[str, float | None]:
    yt, s = np.asarray(y_true).astype(int), np.asarray(scores, dtype=float)
    both = len(set(yt.tolist())) == 2
    return {
        "n": int(len(yt)),
        "n_positive": int(yt.sum()),
        "n_negative": int(len(yt) - yt.sum()),
        "roc_auc": float(roc_auc_score(yt, s)) if both else None,
        "mean_score_positive": float(s[yt == 1].mean()) if yt.sum() else None,
        "mean_score_negative": float(s[yt == 0].mean()) if (yt == 0).any() else None,
    }


def matrix(y_true: Sequence[int], y_pred: Sequence[int], labels: Sequence[int]) -> list[list[int]]:
    return confusion_matrix(y_true, y_pred, labels=list(labels)).tolist()
