"""Scoring quality on the shared research data: SOS-1K 5-fold CV, positivity AUC, the tiny-model path.

    .venv/bin/python bench/bench_quality.py [--shared ../shared/datasets] [--json OUT] [--skip-tiny]
                                            [--encoder m3e-small|DIR [--members N]
                                             [--adapt [--adapt-data FILE …] [--adapt-epochs N]]
                                             [--task-adapt-epochs N]]
                                            [--augment METHOD … [--augment-copies N] [--augment-alpha A]
                                             [--augment-seed N]] [--sos4k [FILE]]

For each of the five shared SOS-1K folds, the lexicon (untrained) is evaluated on the
fold, and the classifier is trained on the other four with ``python -m llm_worker.training.train``
(plus SMP2020 virus_train for its positivity head) and evaluated on the fold with
``python -m llm_worker.training.evaluate``'s code through the backend registry. Positivity AUC is
measured on SMP2020 usual_eval_labeled and CLUEmotion valid for each backend. With
``--encoder``, a third row trains the classifier with that encoder fine-tuned too (about
4 minutes a fold on 2 cores); ``--adapt`` first adapts the encoder on the SocialCD-3K posts
(``python -m llm_worker.training.adapt``, about 10 minutes), or on the ``--adapt-data`` files (paths
under --shared; never SOS-1K, which is the test data); ``--members N`` averages N fine-tuned
copies (N times the time) and adds a row for the same models' first member alone;
``--task-adapt-epochs N`` adapts the encoder further, for each fold, on that fold's own
training comments (the other four folds' texts, labels unused; never the test fold) before
fine-tuning it: task-adaptive pretraining, after Gururangan et al. 2020. ``--augment METHOD …``
adds a row for the classifier trained with ``train --augment METHOD …`` (with the same
``--augment-copies``, ``--augment-alpha`` and ``--augment-seed``, train's defaults unless
given) on the same training folds, beside the plain one in the same run; the test
fold is never augmented. ``--sos4k`` adds SOS-4K's rows: each goes to one of the five folds by a
stable hash of its text (``datasets.hash_fold``), trains the models of the other folds and is
scored with its own, reported apart from SOS-1K's rows. Finally
the tiny random GLM runs through evaluate to show that the transformers path works:
its accuracy is meaningless. Prints Markdown; skips with a message when the data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SHARED = ROOT.parent / "shared" / "datasets"
FIRST = "classifier+encoder, member 1 alone"


def run_eval(backend: str, task: str, files: list[Path], model: str | None = None,
             limit: int | None = None, batch: int = 64) -> dict:
    from llm_worker.training import datasets as ds
    from llm_worker.training.evaluate import TASK_DIMENSION, build_backend, evaluate

    data = [ds.load(f) for f in files]
    if limit:
        for d in data:
            d.examples = d.examples[:limit]
    b, _cfg = build_backend(backend, None, model, TASK_DIMENSION[task])
    try:
        doc, _ = evaluate(b, task, data, batch, progress=False)
    finally:
        b.close()
    return doc


def fold_row(doc: dict) -> dict:
    level, binary, *spread = doc["files"]
    row = {"binary_f1": binary["metrics"]["binary_f1"], "weighted_f1": level["metrics"]["weighted_f1"],
           "macro_f1": level["metrics"]["macro_f1"], "mae": level["metrics"]["mae"],
           "comments_per_second": doc["timing"]["comments_per_second"]}
    if spread:  # SOS-4K's rows of this fold: high risk is level >= 6 on both sides
        m = spread[0]["metrics"]
        row.update(sos4k_binary_f1=m["binary_f1_from_levels"], sos4k_weighted_f1=m["weighted_f1"],
                   sos4k_mae=m["mae"])
    return row


def write_level_file(path: Path, data) -> Path:
    """A part of a level file, in its own format, in the run's temporary directory."""
    path.write_text("comment\tmyLabel\n" + "".join(f"{e.text}\t{e.label}\n" for e in data.examples),
                    encoding="utf-8")
    return path


def sos4k_parts(path: Path, tmp: Path) -> list[tuple[Path, Path]]:
    """For each fold k: (SOS-4K rows of the other four hash folds, SOS-4K rows of fold k).

    Rows go to folds by ``datasets.hash_fold`` (the CV protocol, docs/quality.md); the parts are
    written to the temporary directory, read in place by train and evaluate, and deleted with it."""
    from llm_worker.training import datasets as ds

    data = ds.load(path)
    parts = ds.split_by_hash(data, 5)
    out = []
    for k in range(5):
        train = ds.Dataset(data.path, data.kind, [e for j, p in enumerate(parts) if j != k for e in p.examples], "")
        out.append((write_level_file(tmp / f"sos4k_train_fold{k + 1}.tsv", train),
                    write_level_file(tmp / f"sos4k_fold{k + 1}.tsv", parts[k])))
    return out


def main() -> int:
    from llm_worker.training.augment import (
        AugmentError,
        add_augment_options,
        augment_argv,
        augment_settings,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--json", help="also write all figures as JSON")
    ap.add_argument("--skip-tiny", action="store_true", help="leave out the tiny transformers run")
    ap.add_argument("--encoder", metavar="m3e-small|DIR",
                    help="also cross-validate the classifier trained with this encoder (slow)")
    ap.add_argument("--adapt", action="store_true",
                    help="with --encoder: first adapt it on the SocialCD-3K posts (python -m "
                         "llm_worker.training.adapt; same Weibo tree hole as SOS-1K, no shared text), once")
    ap.add_argument("--adapt-data", action="append", metavar="FILE",
                    help="with --adapt: adapt on this file under --shared instead (repeat), e.g. "
                         "smp2020_ewect/virus_train.txt; default socialcd3k/train.tsv")
    ap.add_argument("--adapt-epochs", type=int, metavar="N",
                    help="with --adapt: masked-LM epochs (default: adapt's own)")
    ap.add_argument("--task-adapt-epochs", type=int, metavar="N",
                    help="with --encoder: for each fold, first adapt the encoder on that fold's "
                         "training comments for N masked-LM epochs (never on the test fold)")
    add_augment_options(ap, what="also cross-validate the classifier trained with train --augment METHOD …, "
                                 "on the training folds only")
    ap.add_argument("--sos4k", nargs="?", const="sos4k/train.tsv", metavar="FILE",
                    help="also train on SOS-4K (default sos4k/train.tsv under --shared) and test on it: its "
                         "rows are spread over the five folds by a stable hash of their text, and their "
                         "figures are reported apart from SOS-1K's")
    ap.add_argument("--members", type=int, default=1, metavar="N",
                    help="with --encoder: average N fine-tuned copies (train --encoder-members N)")
    a = ap.parse_args()
    try:
        augment = augment_settings(a)  # bad methods or values stop here, not in fold 1's training
    except AugmentError as e:
        ap.error(str(e))
    if a.adapt and not a.encoder:
        ap.error("--adapt needs --encoder")
    if (a.adapt_data or a.adapt_epochs is not None) and not a.adapt:
        ap.error("--adapt-data and --adapt-epochs need --adapt")
    if any(Path(f).parts[:1] == ("sos1k",) for f in a.adapt_data or []):
        ap.error("--adapt-data must not include SOS-1K: it is the test data")
    if a.task_adapt_epochs is not None and not a.encoder:
        ap.error("--task-adapt-epochs needs --encoder")
    if a.task_adapt_epochs is not None and a.task_adapt_epochs < 1:
        ap.error("--task-adapt-epochs must be at least 1")
    if a.members != 1 and not a.encoder:
        ap.error("--members needs --encoder")
    if a.members < 1:
        ap.error("--members must be at least 1")
    sos = a.shared / "sos1k"
    if not sos.is_dir():
        print(f"skipped: research data not found at {a.shared} (needs ../shared/datasets beside the repo)")
        return 0
    if a.sos4k and not (a.shared / a.sos4k).is_file():
        print(f"skipped: {a.shared / a.sos4k} not found (--sos4k)")
        return 0
    from llm_worker.training import adapt, train

    smp = a.shared / "smp2020_ewect" / "usual_eval_labeled.txt"
    clue = a.shared / "clue_emotion2020" / "valid.txt"
    virus = a.shared / "smp2020_ewect" / "virus_train.txt"
    results: dict = {"lexicon": {"folds": []}, "classifier": {"folds": []}}
    trained = (["classifier"] + (["classifier+augment"] if augment else [])
               + (["classifier+encoder"] if a.encoder else []))
    if augment:
        results["classifier+augment"] = {"folds": [], "augment": list(augment.methods),
                                         "settings": augment.as_dict()}
    for name in [n for n in trained if n == "classifier+encoder"]:
        results[name] = {"folds": [], "encoder": a.encoder, "members": a.members}
        if a.task_adapt_epochs is not None:
            results[name].update(task_adapt_epochs=a.task_adapt_epochs, task_adapt_seconds=[])
    if a.encoder and a.members > 1:  # the same run's first member alone: what averaging adds
        results[FIRST] = {"folds": []}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        encoder = a.encoder
        parts = sos4k_parts(a.shared / a.sos4k, Path(tmp)) if a.sos4k else []
        if a.sos4k:
            results["sos4k"] = a.sos4k
        if a.adapt:
            t0 = time.perf_counter()
            encoder = f"{tmp}/adapted"
            adapt_on = a.adapt_data or ["socialcd3k/train.tsv"]
            args = ["--encoder", a.encoder, "--out", encoder]
            for f in adapt_on:
                args += ["--data", str(a.shared / f)]
            if a.adapt_epochs is not None:
                args += ["--epochs", str(a.adapt_epochs)]
            if adapt.main(args) != 0:
                return 1
            info = json.loads(Path(encoder, "adapted.json").read_text(encoding="utf-8"))
            results["classifier+encoder"]["adapted_on"] = adapt_on
            results["classifier+encoder"]["adapt_epochs"] = info["epochs"]
            results["classifier+encoder"]["adapt_texts"] = info["texts"]
            results["classifier+encoder"]["adapt_seconds"] = round(time.perf_counter() - t0, 1)
        for k in range(1, 6):
            test = [sos / f"fold{k}_level.tsv", sos / f"fold{k}_binary.tsv"]
            args = ["--task", "suicide"]
            if parts:
                test.append(parts[k - 1][1])
                args += ["--data", str(parts[k - 1][0])]
            results["lexicon"]["folds"].append(fold_row(run_eval("lexicon", "suicide", test)))
            for j in range(1, 6):
                if j != k:
                    args += ["--data", str(sos / f"fold{j}_level.tsv"), "--data", str(sos / f"fold{j}_binary.tsv")]
            fold_encoder = encoder
            if a.task_adapt_epochs is not None:  # on this fold's training comments only
                t0 = time.perf_counter()
                fold_encoder = f"{tmp}/task-adapted-{k}"
                # The level files alone: a fold's binary file lists the same texts.
                train_files = [x for j in range(1, 6) if j != k for x in ("--data", str(sos / f"fold{j}_level.tsv"))]
                if adapt.main(["--encoder", encoder, *train_files, "--out", fold_encoder,
                               "--epochs", str(a.task_adapt_epochs)]) != 0:
                    print(f"adapting the encoder on fold {k}'s training comments failed", file=sys.stderr)
                    return 1
                results["classifier+encoder"]["task_adapt_seconds"].append(round(time.perf_counter() - t0, 1))
            if virus.exists():
                args += ["--data", str(virus)]
            print(f"fold {k}: lexicon {results['lexicon']['folds'][-1]}", file=sys.stderr)
            for name in trained:
                model = f"{tmp}/fold{k}-{name}.joblib"
                extra = (["--encoder", fold_encoder, "--encoder-members", str(a.members)]
                         if name == "classifier+encoder" else [])
                if name == "classifier+augment" and augment:
                    extra = augment_argv(augment)
                t0 = time.perf_counter()
                if train.main([*args, "--out", model, *extra]) != 0:
                    print(f"training fold {k} ({name}) failed", file=sys.stderr)
                    return 1
                row = fold_row(run_eval("classifier", "suicide", test, model=model))
                row["train_seconds"] = round(time.perf_counter() - t0, 1)
                results[name]["folds"].append(row)
                print(f"        {name} {row}", file=sys.stderr)
                if name == "classifier+encoder" and FIRST in results:
                    row = fold_row(run_eval("classifier", "suicide", test, model=first_member(model)))
                    results[FIRST]["folds"].append(row)
                    print(f"        {FIRST} {row}", file=sys.stderr)
        for name in [n for n in results if n not in ("seconds", "tiny")]:
            folds = results[name]["folds"]
            keys = [m for m in folds[0] if m not in ("comments_per_second", "train_seconds")]
            results[name]["mean"] = {m: statistics.mean(f[m] for f in folds) for m in keys}
            results[name]["sd"] = {m: statistics.stdev(f[m] for f in folds) for m in keys}
        pos_files = [f for f in (smp, clue) if f.exists()]
        runs: list[tuple[str, str | None]] = [("lexicon", None),
                                              *((n, f"{tmp}/fold5-{n}.joblib") for n in trained)]
        for name, pos_model in runs:
            if pos_files:
                doc = run_eval("lexicon" if pos_model is None else "classifier", "positivity", pos_files,
                               model=pos_model)
                results[name]["positivity_auc"] = {Path(f["file"]).parent.name + "/" + Path(f["file"]).name:
                                                   f["metrics"]["roc_auc"] for f in doc["files"]}
        if not a.skip_tiny:
            results["tiny"] = tiny_run(sos, Path(tmp))
    results["seconds"] = round(time.perf_counter() - t_all, 1)
    print(markdown(results))
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0


def first_member(path: str) -> str:
    """A copy of an encoder model that keeps only its first fine-tuned member."""
    import joblib

    bundle = joblib.load(path)
    enc = bundle["suicide"].encoder
    enc.nets_, enc.members = enc.nets_[:1], 1
    out = path.replace(".joblib", "-member1.joblib")
    joblib.dump(bundle, out)
    return out


def tiny_run(sos: Path, tmp: Path) -> dict | None:
    """The tiny random GLM through evaluate: proves the path, says nothing about accuracy."""
    try:
        from llm_worker.scoring.tiny_model import build_tiny_glm
    except ImportError:
        return None
    path = build_tiny_glm(tmp / "tiny-glm")
    doc = run_eval("transformers", "suicide", [sos / "fold1_level.tsv", sos / "fold1_binary.tsv"],
                   model=str(path), limit=20, batch=8)
    return {"backend": doc["backend"], "rows_per_file": 20, **fold_row(doc)}


def markdown(r: dict) -> str:
    out = ["| backend | fold | binary F1 | weighted F1 | macro F1 | MAE |", "|---|---|---|---|---|---|"]
    names = [n for n in ("lexicon", "classifier", "classifier+augment", "classifier+encoder", FIRST) if n in r]
    for name in names:
        for i, f in enumerate(r[name]["folds"], 1):
            out.append(f"| {name} | {i} | {100 * f['binary_f1']:.2f} | {100 * f['weighted_f1']:.2f} | "
                       f"{100 * f['macro_f1']:.2f} | {f['mae']:.3f} |")
        m, sd = r[name]["mean"], r[name]["sd"]
        out.append(f"| **{name}** | **mean** | **{100 * m['binary_f1']:.2f}** | **{100 * m['weighted_f1']:.2f}** | "
                   f"**{100 * m['macro_f1']:.2f}** | **{m['mae']:.3f}** |")
        out.append(f"| {name} | fold SD | {100 * sd['binary_f1']:.2f} | {100 * sd['weighted_f1']:.2f} | "
                   f"{100 * sd['macro_f1']:.2f} | {sd['mae']:.3f} |")
    out.append("")
    if r.get("sos4k"):
        out += [f"SOS-4K rows ({r['sos4k']}, spread over the folds by a hash of their text; high risk = "
                "level >= 6), apart from SOS-1K's:", "",
                "| backend | fold | binary F1 | weighted F1 | MAE |", "|---|---|---|---|---|"]
        for name in names:
            for i, f in enumerate(r[name]["folds"], 1):
                out.append(f"| {name} | {i} | {100 * f['sos4k_binary_f1']:.2f} | "
                           f"{100 * f['sos4k_weighted_f1']:.2f} | {f['sos4k_mae']:.3f} |")
            m, sd = r[name]["mean"], r[name]["sd"]
            out.append(f"| **{name}** | **mean ± SD** | **{100 * m['sos4k_binary_f1']:.2f} ± "
                       f"{100 * sd['sos4k_binary_f1']:.2f}** | **{100 * m['sos4k_weighted_f1']:.2f} ± "
                       f"{100 * sd['sos4k_weighted_f1']:.2f}** | **{m['sos4k_mae']:.3f}** |")
        out.append("")
    for name in [n for n in names[1:] if n != FIRST]:
        folds = r[name]["folds"]
        out.append(f"- {name}: training {statistics.mean(f['train_seconds'] for f in folds):.0f} s a fold, "
                   f"scoring {statistics.mean(f['comments_per_second'] for f in folds):.0f} comments/s")
        if r[name].get("adapted_on"):
            out.append(f"- {name}: encoder first adapted on {', '.join(r[name]['adapted_on'])} "
                       f"({r[name]['adapt_texts']} texts, {r[name]['adapt_epochs']} epochs, "
                       f"{r[name]['adapt_seconds']:.0f} s)")
        if r[name].get("task_adapt_epochs"):
            out.append(f"- {name}: then, for each fold, adapted on that fold's training comments "
                       f"({r[name]['task_adapt_epochs']} epochs, "
                       f"{statistics.mean(r[name]['task_adapt_seconds']):.0f} s a fold)")
    out += ["", "| backend | positivity ROC AUC |", "|---|---|"]
    for name in names:
        for f, auc in r[name].get("positivity_auc", {}).items():
            out.append(f"| {name} | {f}: {auc:.4f} |")
    if r.get("tiny"):
        t = r["tiny"]
        out += ["", f"Tiny random GLM ({t['backend']}) through evaluate on the first {t['rows_per_file']} rows "
                    f"of fold 1: binary F1 {100 * t['binary_f1']:.1f}, weighted F1 {100 * t['weighted_f1']:.1f}, "
                    f"{t['comments_per_second']:.1f} comments/s. MEANINGLESS accuracy: random weights; "
                    "this only shows the path works."]
    out.append(f"\nTotal time {r['seconds']} s.")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
