"""Paired fold differences between cross-validated models, as the CV protocol reads them.

Why: the protocol in docs/quality.md counts a difference only when it is larger than the standard
error of the paired fold differences (their SD / sqrt(folds)). This prints that for the models in
one ``train --cv --json`` file (the model and its ``variants``: the n-gram ensemble alone, the
encoder's kept epochs) or for the models of two such files (``--against``), as a Markdown table.

    python bench/cv_compare.py cv.json                      # each variant against the model
    python bench/cv_compare.py cv.json --against other.json # the other file's model against this one's
    python bench/cv_compare.py cv.json --base ngram-only     # the model and the others against one variant
    python bench/cv_compare.py cv.json --team                # what a threshold of 6 did, and the confusion
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

PARTS = (("folds", "fold files"), ("spread", "spread rows"), ("all", "all rows"))
METRICS = (("binary_f1", "binary F1"), ("weighted_f1", "weighted F1"))


def fold_values(model: dict[str, Any], part: str, metric: str) -> list[float] | None:
    """The metric of each fold (x100) for one part of a CV result, or None if it has no such part."""
    vals = []
    for row in model["folds"]:
        r = row if part == "folds" else row.get(part)
        if not r:
            return None
        vals.append(100 * r[metric])
    return vals


def compare(base: list[float], other: list[float]) -> dict[str, Any]:
    """Mean of each, the mean paired difference (other - base), its standard error and a verdict."""
    if len(base) != len(other):
        raise ValueError("the two runs have different numbers of folds")
    diffs = [o - b for b, o in zip(base, other, strict=True)]
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else float("nan")
    delta = statistics.mean(diffs)
    verdict = ("within noise" if not abs(delta) > se else "ahead" if delta > 0 else "behind")
    return {"base": statistics.mean(base), "base_sd": statistics.stdev(base) if len(base) > 1 else 0.0,
            "other": statistics.mean(other), "other_sd": statistics.stdev(other) if len(other) > 1 else 0.0,
            "delta": delta, "se": se, "per_fold": diffs, "verdict": verdict}


def table(base_name: str, base: dict[str, Any], others: list[tuple[str, dict[str, Any]]]) -> str:
    lines = [f"| model | test rows | metric | {base_name} | model | Δ (model − {base_name}) | SE of Δ | per-fold Δ | |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, other in others:
        for part, title in PARTS:
            for metric, label in METRICS:
                a, b = fold_values(base, part, metric), fold_values(other, part, metric)
                if a is None or b is None:
                    continue
                c = compare(a, b)
                lines.append(f"| {name} | {title} | {label} | {c['base']:.2f} ± {c['base_sd']:.2f} | "
                             f"{c['other']:.2f} ± {c['other_sd']:.2f} | {c['delta']:+.2f} | {c['se']:.2f} | "
                             + ", ".join(f"{d:+.1f}" for d in c["per_fold"]) + f" | {c['verdict']} |")
    return "\n".join(lines)


def team(res: dict[str, Any]) -> str:
    """Out of fold, level >= 6 against the labels (binary files, or level >= 6): found, missed and
    raised wrongly per part, then the pooled per-level confusion (rows true, columns predicted)."""
    lines = ["| rows | high-risk comments | found | missed | low-risk comments raised | recall | precision |",
             "|---|---|---|---|---|---|---|"]
    oof = res["out_of_fold"]
    parts = [(p, t) for p, t in (("folds", "fold files"), ("spread", "spread rows")) if any(r["part"] == p for r in oof)]
    for part, title in [*parts, ("all", "all rows")]:
        rows = [r for r in oof if part == "all" or r["part"] == part]
        high = sum(r["binary"] for r in rows)
        found = sum(1 for r in rows if r["binary"] and r["predicted"] >= 6)
        raised = sum(1 for r in rows if not r["binary"] and r["predicted"] >= 6)
        lines.append(f"| {title} ({len(rows):,}) | {high:,} | {found:,} | {high - found:,} | {raised:,} | "
                     f"{found / max(high, 1):.3f} | {found / max(found + raised, 1):.3f} |")
    m = res["pooled_level_matrix"]
    labels = m["labels"]
    lines += ["", "| true \\ predicted | " + " | ".join(map(str, labels)) + " | rows |",
              "|---" * (len(labels) + 2) + "|"]
    lines += [f"| {y} | " + " | ".join(map(str, row)) + f" | {sum(row)} |" for y, row in zip(labels, m["matrix"],
                                                                                        strict=True)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cv_json", type=Path, help="a `python -m llm_worker.training.train --cv --json` file")
    ap.add_argument("--against", type=Path, metavar="JSON",
                    help="compare this other CV file's model with the first one's (same folds)")
    ap.add_argument("--base", metavar="VARIANT",
                    help="compare the model and the other variants against this variant of the first file "
                         "(e.g. ngram-only: what the encoder adds)")
    ap.add_argument("--team", action="store_true",
                    help="instead: what a threshold of 6 found, missed and raised wrongly, out of fold, "
                         "and the pooled per-level confusion, for the first file's model")
    a = ap.parse_args(argv)
    try:
        base = json.loads(a.cv_json.read_text(encoding="utf-8"))
        if a.against:
            others = [(a.against.name, json.loads(a.against.read_text(encoding="utf-8")))]
        else:
            others = list(base.get("variants", {}).items())
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if a.team:
        try:
            print(team(base))
        except KeyError as e:
            print(f"error: {a.cv_json}: no out-of-fold rows ({e}); it is not a train --cv --json file", file=sys.stderr)
            return 2
        return 0
    if not others:
        print(f"error: {a.cv_json} has no variants (train --cv with --encoder records them); "
              "give --against JSON", file=sys.stderr)
        return 2
    base_name = a.cv_json.name if a.against else "the model"
    if a.base:
        variants = dict(others)
        if a.against or a.base not in variants:
            print(f"error: --base takes a variant of {a.cv_json}: {', '.join(variants) or 'it has none'}",
                  file=sys.stderr)
            return 2
        others = [("the model", base), *((n, v) for n, v in others if n != a.base)]
        base, base_name = variants[a.base], a.base
    try:
        print(table(base_name, base, others))
    except (KeyError, ValueError) as e:
        print(f"error: {a.cv_json}: not a CV result of the same folds ({e})", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
