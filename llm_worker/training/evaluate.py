"""Run any backend on labelled files and report how well it scores.

    python -m llm_worker.training.evaluate --backend lexicon --task suicide \\
        --data ../shared/datasets/sos1k/fold1_level.tsv --data ../shared/datasets/sos1k/fold1_binary.tsv \\
        --json out.json --report reports/eval-lexicon

Tasks: ``suicide`` (SOS-1K level and binary files), ``positivity`` (SMP2020-EWECT /
CLUEmotion emotion files), ``distortion`` (SocialCD-3K; ROC AUC of mood_disorder for
any distortion against none, a proxy). Each run also measures latency per comment
and comments per second. Bad input exits with status 2 and one line naming the file
and line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llm_worker.scoring.backends.base import ScoreInput, sources_of
from llm_worker.training import datasets as ds
from llm_worker.training import quality_metrics as qm
from weibo_mh.config import ConfigError, load_config
from weibo_mh.rubric import HIGH_RISK_LEVEL, LEVELS

TASKS = ("suicide", "positivity", "distortion")
#: Which dimension each task reads.
TASK_DIMENSION = {"suicide": "suicide_risk", "positivity": "positivity", "distortion": "mood_disorder"}
#: The topic given to the backend: the labelled data has none.
EVAL_TOPIC = ""


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


@dataclass
class Scored:
    """A dataset with the backend's values (None where the backend returned an error)."""

    data: ds.Dataset
    values: list[int | None]
    seconds: float
    errors: list[str] = field(default_factory=list)


def score_dataset(backend: Any, data: ds.Dataset, dimension: str, batch_size: int,
                  progress: bool = True) -> Scored:
    """Score every text of ``data`` in batches; failures are counted, never guessed."""
    values: list[int | None] = []
    errors: list[str] = []
    texts = data.texts
    t0 = time.perf_counter()
    last = t0
    for i in range(0, len(texts), batch_size):
        chunk = texts[i:i + batch_size]
        results = backend.score_batch([ScoreInput(EVAL_TOPIC, t) for t in chunk])
        if len(results) != len(chunk):
            raise RuntimeError(f"backend returned {len(results)} results for {len(chunk)} items")
        for r in results:
            if r.ok and dimension in r.scores:
                values.append(int(r.scores[dimension].value))
            else:
                values.append(None)
                errors.append(r.error or f"no {dimension} in the result")
        now = time.perf_counter()
        if progress and (now - last > 2 or i + batch_size >= len(texts)):
            done = min(i + batch_size, len(texts))
            print(f"  {data.path.name}: {done}/{len(texts)} scored, "
                  f"{done / max(now - t0, 1e-9):.1f} comments/s", file=sys.stderr)
            last = now
    return Scored(data, values, time.perf_counter() - t0, errors)


def file_metrics(task: str, s: Scored) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The task's metrics for one scored file, and a matrix for the report."""
    pairs = [(e.label, v) for e, v in zip(s.data.examples, s.values, strict=True) if v is not None]
    kind = s.data.kind
    if task == "suicide" and kind == ds.SOS_LEVEL:
        yt = [int(a) for a, _ in pairs]
        yp = [v for _, v in pairs]
        m = qm.level_metrics(yt, yp) if pairs else {"n": 0}
        mat = {"title": "suicide level (rows: true, columns: predicted)", "labels": list(LEVELS),
               "matrix": qm.matrix(yt, yp, LEVELS)} if pairs else None
        return m, mat
    if task == "suicide" and kind == ds.SOS_BINARY:
        yt = [int(a) for a, _ in pairs]
        yp = [int(v >= HIGH_RISK_LEVEL) for _, v in pairs]
        m = qm.binary_metrics(yt, yp) if pairs else {"n": 0}
        mat = {"title": f"high risk (level >= {HIGH_RISK_LEVEL}) (rows: true, columns: predicted)",
               "labels": [0, 1], "matrix": qm.matrix(yt, yp, [0, 1])} if pairs else None
        return m, mat
    if task == "positivity":
        targets = [(ds.positivity_target(a), v) for a, v in pairs]
        kept: list[tuple[int, int]] = [(t, v) for t, v in targets if t is not None]
    else:  # distortion: any distortion against none
        kept = [(int(a), v) for a, v in pairs]
    yt = [t for t, _ in kept]
    sc = [v for _, v in kept]
    m = qm.auc_metrics(yt, sc) if kept else {"n": 0, "roc_auc": None}  # type: ignore[assignment]
    if task == "distortion" and kept:
        m.update(_per_distortion(s))
    names = ("negative", "happy") if task == "positivity" else ("no distortion", "any distortion")
    rows = [[sum(1 for t, v in kept if t == cls and v == lv) for lv in LEVELS] for cls in (0, 1)]
    mat = {"title": f"{TASK_DIMENSION[task]} score by class (rows: {names[0]}, {names[1]})",
           "labels": list(LEVELS), "row_labels": list(names), "matrix": rows} if kept else None
    return m, mat


def _per_distortion(s: Scored) -> dict[str, Any]:
    """Each distortion against the other rows: which distortions the score follows.

    SocialCD-3K as published has no row without a distortion, so the any-against-none
    AUC is undefined on it; these per-column AUCs are the fallback (also a proxy)."""
    rows = [(e.extra, v) for e, v in zip(s.data.examples, s.values, strict=True) if v is not None]
    out: dict[str, Any] = {}
    for col in (rows[0][0] if rows else {}):
        yt = [int(x[col]) for x, _ in rows]
        if 0 < sum(yt) < len(yt):
            out[col] = round(float(qm.auc_metrics(yt, [v for _, v in rows])["roc_auc"] or 0.0), 4)
    return {"per_distortion_auc": out} if out else {}


def _pooled(task: str, scored: list[Scored]) -> dict[str, Any]:
    """Metrics over all files of one kind together (the cross-validation view)."""
    out: dict[str, Any] = {}
    by_kind: dict[str, list[Scored]] = {}
    for s in scored:
        by_kind.setdefault(s.data.kind, []).append(s)
    for kind, group in by_kind.items():
        if len(group) < 2:
            continue
        merged = ds.Dataset(Path("+".join(g.data.path.name for g in group)), kind,
                            [e for g in group for e in g.data.examples], "")
        values = [v for g in group for v in g.values]
        out[kind], _ = file_metrics(task, Scored(merged, values, sum(g.seconds for g in group)))
    return out


def check_task(task: str, data: ds.Dataset) -> None:
    if data.task != task:
        raise UsageError(f"{data.path}: a {data.kind} file belongs to task {data.task!r}, "
                         f"not {task!r}")


def build_backend(name: str, config: str | None, model: str | None, dimension: str,
                  adapter: str | None = None) -> Any:
    """The backend scoring ``dimension``. With a LoRA ``adapter`` (transformers only), the prompt
    lists the scales the adapter was trained with (its ``prompt_dimensions``), so evaluation sees
    the same prompt as training and the worker."""
    from llm_worker.scoring.backends import make_backend

    cfg = load_config(config)
    overrides: dict[str, Any] = {"dimensions": (dimension,)}
    if model:
        overrides["model"] = model
    if adapter:
        from llm_worker.scoring import adapter as lora

        if name != "transformers":
            raise UsageError("--adapter is for --backend transformers")
        try:
            meta = lora.metadata(adapter)
        except lora.AdapterError as e:
            raise UsageError(str(e)) from None
        dims = tuple(meta.get("prompt_dimensions") or (dimension,))
        if dimension not in dims:
            raise UsageError(f"the adapter's prompt has no {dimension} scale (it lists {', '.join(dims)})")
        overrides.update(adapter=adapter, dimensions=dims)
        if not model and meta.get("base_model"):
            overrides["model"] = meta["base_model"]
    return make_backend(name, cfg, **overrides), cfg


def machine() -> str:
    cores = os.cpu_count() or 0
    try:
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
        mem_s = f", {mem:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        mem_s = ""
    return f"{platform.machine()}, {cores} cores{mem_s}, Python {platform.python_version()}"


def evaluate(backend: Any, task: str, files: list[ds.Dataset], batch_size: int,
             progress: bool = True) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Score the files and return (the results document, the matrices for the report)."""
    dimension = TASK_DIMENSION[task]
    scored, per_file, matrices = [], [], []
    for data in files:
        s = score_dataset(backend, data, dimension, batch_size, progress)
        scored.append(s)
        m, mat = file_metrics(task, s)
        n = len(data)
        per_file.append({
            "file": str(data.path), "sha256": data.sha256, "kind": data.kind, "rows": n,
            "failed": len(s.errors), "first_error": s.errors[0] if s.errors else None,
            "metrics": m, "seconds": round(s.seconds, 4),
            "comments_per_second": round(n / s.seconds, 2) if s.seconds > 0 else None,
            "ms_per_comment": round(1000 * s.seconds / n, 4) if n else None,
        })
        if mat:
            matrices.append((data.path.name, mat))
    total_n = sum(len(s.data) for s in scored)
    total_s = sum(s.seconds for s in scored)
    doc: dict[str, Any] = {
        "backend": getattr(backend, "name", "?"), "task": task, "dimension": dimension,
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(),
        "sources": sources_of(backend), "files": per_file, "pooled": _pooled(task, scored),
        "timing": {"comments": total_n, "seconds": round(total_s, 4), "batch_size": batch_size,
                   "comments_per_second": round(total_n / total_s, 2) if total_s > 0 else None,
                   "ms_per_comment": round(1000 * total_s / total_n, 4) if total_n else None},
    }
    if task == "distortion":
        doc["note"] = ("proxy: mood_disorder is not a cognitive-distortion detector; the AUC only "
                       "shows whether texts with any distortion score higher than texts with none")
        if any(f["metrics"].get("roc_auc") is None for f in per_file):  # type: ignore[attr-defined]
            doc["note"] += ("; a file without distortion-free rows (SocialCD-3K as published has "
                            "none) has no such AUC, so per-distortion AUCs (one distortion against "
                            "the other rows) are given instead")
    return doc, matrices


def _fmt(v: Any) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_fmt(x)}" for k, x in v.items()) + "}"
    if isinstance(v, float):
        return f"{v:.1f}" if abs(v) >= 100 else f"{v:.4f}"
    return "–" if v is None else str(v)


def print_summary(doc: dict[str, Any]) -> None:
    print(f"backend {doc['backend']}  task {doc['task']}  ({doc['dimension']})")
    for f in doc["files"]:
        ms = "  ".join(f"{k}={_fmt(v)}" for k, v in f["metrics"].items())
        fail = f"  failed={f['failed']}" if f["failed"] else ""
        print(f"  {Path(f['file']).name} [{f['kind']}]: {ms}{fail}")
    for kind, m in doc["pooled"].items():
        print(f"  pooled {kind}: " + "  ".join(f"{k}={_fmt(v)}" for k, v in m.items()))
    t = doc["timing"]
    print(f"  {t['comments']} comments in {t['seconds']:.2f} s: {_fmt(t['comments_per_second'])} "
          f"comments/s, {_fmt(t['ms_per_comment'])} ms per comment (batch {t['batch_size']})")
    if "note" in doc:
        print(f"  note: {doc['note']}")
    by_source: dict[str, list[str]] = {}
    for d, src in doc.get("sources", {}).items():
        by_source.setdefault(src, []).append(d)
    for src, dims in by_source.items():
        print(f"  {', '.join(dims)} from: {src}")


def write_report(doc: dict[str, Any], matrices: list[tuple[str, dict[str, Any]]], out: Path,
                 command: str) -> Path:
    """A Markdown report with one matrix PNG per file."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# Evaluation: {doc['backend']} on the {doc['task']} task", "",
             f"- date: {doc['date']}", f"- machine: {doc['machine']}", f"- command: `{command}`",
             f"- dimension scored: `{doc['dimension']}`", ""]
    if "note" in doc:
        lines += [f"**Note.** This is a {doc['note']}.", ""]
    if doc["task"] == "suicide":
        lines += [f"Binary files: a level-scoring backend predicts high risk at level >= {HIGH_RISK_LEVEL}.", ""]
    lines += ["## Results", "", "| file | kind | rows | failed | metrics | comments/s | ms/comment |",
              "|---|---|---|---|---|---|---|"]
    for f in doc["files"]:
        ms = ", ".join(f"{k} {_fmt(v)}" for k, v in f["metrics"].items() if k != "n")
        lines.append(f"| {Path(f['file']).name} | {f['kind']} | {f['rows']} | {f['failed']} | {ms} | "
                     f"{_fmt(f['comments_per_second'])} | {_fmt(f['ms_per_comment'])} |")
    if doc["pooled"]:
        lines += ["", "Pooled over the files of one kind:", ""]
        for kind, m in doc["pooled"].items():
            lines.append(f"- {kind}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in m.items()))
    t = doc["timing"]
    lines += ["", f"Throughput: {t['comments']} comments in {t['seconds']:.2f} s, "
                  f"{_fmt(t['comments_per_second'])} comments/s ({_fmt(t['ms_per_comment'])} ms each, "
                  f"batch {t['batch_size']}).", ""]
    for i, (name, mat) in enumerate(matrices):
        png = out / f"matrix_{i + 1}_{Path(name).stem}.png"
        m = mat["matrix"]
        fig, ax = plt.subplots(figsize=(7, 5.5 if len(m) > 2 else 3))
        ax.imshow(m, cmap="Blues", aspect="auto")
        ax.set_xticks(range(len(mat["labels"])), [str(x) for x in mat["labels"]])
        rows = mat.get("row_labels") or [str(x) for x in mat["labels"]]
        ax.set_yticks(range(len(m)), rows)
        top = max(max(r) for r in m) or 1
        for r, row in enumerate(m):
            for c, v in enumerate(row):
                if v:
                    ax.text(c, r, str(v), ha="center", va="center", fontsize=8,
                            color="white" if v > top / 2 else "black")
        ax.set_xlabel("predicted" if "predicted" in mat["title"] else "score")
        ax.set_title(f"{name}: {mat['title']}", fontsize=9)
        fig.tight_layout()
        fig.savefig(png, dpi=100)
        plt.close(fig)
        lines += [f"![{name}]({png.name})", ""]
    if doc.get("sources"):
        lines += ["## Where this backend's scores come from", "",
                  *[f"- `{d}`{' (evaluated here)' if d == doc['dimension'] else ''}: {s}"
                    for d, s in doc["sources"].items()], ""]
    lines += ["## Caution", "",
              "These are research signals about text, not diagnoses of people. Results on the shared "
              "data are development results; the data sets are research-use only.", ""]
    path = out / "report.md"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m llm_worker.training.evaluate",
                                 description="Score labelled files with a backend and print the metrics "
                                             "(file formats are detected from their content).")
    ap.add_argument("--backend", required=True, help="lexicon, classifier, transformers, openai, …")
    ap.add_argument("--model", help="model path or id for the backend (classifier: a trained .joblib)")
    ap.add_argument("--config", help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--adapter", metavar="DIR",
                    help="transformers: a LoRA adapter from llm_worker.training.finetune on top of --model "
                         "(default: the adapter's base model)")
    ap.add_argument("--task", required=True, choices=TASKS)
    ap.add_argument("--data", required=True, action="append", metavar="FILE",
                    help="labelled file; repeat for several")
    ap.add_argument("--json", metavar="OUT", help="write the metrics as JSON here")
    ap.add_argument("--report", metavar="DIR", help="write report.md and matrix PNGs here")
    ap.add_argument("--limit", type=int, help="score only the first N rows of each file")
    ap.add_argument("--batch-size", type=int, help="comments per backend call (default: worker.batch_size)")
    ap.add_argument("--quiet", action="store_true", help="no progress lines")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    backend = None
    try:
        if a.limit is not None and a.limit < 1:
            raise UsageError("--limit must be at least 1")
        files = []
        for f in a.data:
            d = ds.load(f)
            check_task(a.task, d)
            if a.limit:
                d.examples = d.examples[: a.limit]
            files.append(d)
        backend, cfg = build_backend(a.backend, a.config, a.model, TASK_DIMENSION[a.task], a.adapter)
        batch = a.batch_size or cfg.worker.batch_size
        if batch < 1:
            raise UsageError("--batch-size must be at least 1")
        doc, matrices = evaluate(backend, a.task, files, batch, progress=not a.quiet)
    except (ds.DataFormatError, UsageError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    finally:
        if backend is not None:
            backend.close()
    print_summary(doc)
    command = "python -m llm_worker.training.evaluate " + " ".join(argv if argv is not None else sys.argv[1:])
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps(doc, ensure_ascii=False, indent=2), encoding="utf-8")
        print(f"metrics written to {a.json}")
    if a.report:
        print(f"report written to {write_report(doc, matrices, Path(a.report), command)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
