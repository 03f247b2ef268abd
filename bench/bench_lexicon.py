"""Throughput of the CPU scorers: lexicon and (when a model is given or can be trained) classifier.

    .venv/bin/python bench/bench_lexicon.py [--model MODEL.joblib] [--n 20000]

Texts: the shared SOS-1K and emotion comments when ../shared is there (read in place),
otherwise the project's own test sentences. Both backends score the same texts in
the same run, at batch sizes 1 and 64; figures are comments per second and the ratio.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared" / "datasets"
OWN = ROOT / "tests" / "quality" / "data"


def texts(n: int) -> tuple[list[str], str]:
    from llm_worker.training import datasets as ds

    files = [SHARED / "sos1k" / "fold1_level.tsv", SHARED / "clue_emotion2020" / "valid.txt",
             SHARED / "smp2020_ewect" / "usual_eval_labeled.txt"]
    if all(f.exists() for f in files):
        pool, src = [t for f in files for t in ds.load(f).texts], "shared SOS-1K + emotion comments"
    else:
        pool = ds.load(OWN / "sos_level.tsv").texts + ds.load(OWN / "emotion_lines.jsonl").texts
        src = "the project's test sentences"
    out = (pool * (n // len(pool) + 1))[:n]
    return out, f"{src}, {n} comments, mean {sum(map(len, out)) / n:.0f} characters"


def rate(backend, items, batch: int) -> float:
    backend.score_batch(items[:batch])  # warm-up (jieba, caches)
    t0 = time.perf_counter()
    for i in range(0, len(items), batch):
        backend.score_batch(items[i:i + batch])
    return len(items) / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="trained classifier model (default: train a small one on the test sentences)")
    ap.add_argument("--n", type=int, default=20000, help="comments for the lexicon (classifier: n/10)")
    a = ap.parse_args()
    from llm_worker.scoring.backends.base import ScoreInput
    from llm_worker.scoring.backends.classifier import ClassifierBackend
    from llm_worker.scoring.backends.lexicon import LexiconBackend

    corpus, desc = texts(a.n)
    items = [ScoreInput("热搜话题", t) for t in corpus]
    out: dict = {"texts": desc, "lexicon": {}, "classifier": {}}
    lex = LexiconBackend()
    for b in (1, 64):
        out["lexicon"][b] = rate(lex, items, b)
    with tempfile.TemporaryDirectory() as tmp:
        model = a.model
        if not model:
            from llm_worker.training import train

            model = f"{tmp}/bench.joblib"
            train.main(["--task", "suicide", "--data", str(OWN / "sos_level.tsv"),
                        "--data", str(OWN / "sos_binary.tsv"), "--out", model])
        clf = ClassifierBackend(model)
        small = items[: max(64, a.n // 10)]
        for b in (1, 64):
            out["classifier"][b] = rate(clf, small, b)
    print(f"Texts: {out['texts']}")
    print("| backend | batch 1 (comments/s) | batch 64 (comments/s) |\n|---|---|---|")
    for name in ("lexicon", "classifier"):
        print(f"| {name} | {out[name][1]:.0f} | {out[name][64]:.0f} |")
    print(f"\nlexicon / classifier at batch 64: {out['lexicon'][64] / out['classifier'][64]:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
