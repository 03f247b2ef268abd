"""The fine-tuned encoder's scoring speed and F1: float32 against the fast paths, side by side.

    .venv/bin/python bench/bench_encoder_speed.py --model MODEL.joblib --data FILE [--data FILE …]
        [--rounds 3] [--time-texts 256] [--batch-size 64] [--onnx] [--json OUT]

``MODEL`` is a classifier trained with ``--encoder`` (``python -m llm_worker.training.train``);
``--data`` are labelled suicide files it was not trained on (level files, binary twins, an SOS-4K
part). Every path scores the same texts with the SAME fine-tuned encoder, so the F1 difference is
the fast path's own, not a training difference:

- ``float32``: the fine-tuned nets as trained (torch, ``inference_mode``, batches of similar
  length), the scoring path before issue 24 (``EncoderClassifier(scoring="float32")``);
- ``int8``: torch's dynamic int8 quantisation of the encoder body (``scoring="int8"``);
- ``onnx-float32``: the same nets exported to ONNX and run by ONNX Runtime, graph as exported
  (the default scoring path before the fusion);
- ``onnx-fused-float32``: that graph after ONNX Runtime's BERT fusion (fused attention,
  LayerNorm, GELU; ``scoring="onnx"``); the ONNX rows are left out when onnxruntime or onnx is
  not installed;
- ``onnx-fused-int8``: the fused graph with its MatMul weights in dynamic int8, one scale per
  output channel (``scoring="onnx-int8"``);
- ``onnx-int8-per-tensor`` (with ``--onnx``): the unfused graph after ONNX Runtime's default
  dynamic int8 quantisation, one scale per tensor (the first int8 trial; bench only).

Timing: ``--rounds`` rounds, each scoring the same ``--time-texts`` texts (a seeded sample of
the files' texts) once with every path in turn (interleaved, so a busy machine slows them alike);
the median round gives comments/s, and the ratio to float32 is reported. Accuracy: the full classifier (n-grams + encoder) with each path, binary F1
(level >= 6 where a file has no binary twin) and weighted F1 over the 11 levels. Also prints the
thread count, the largest difference of any probability from float32's (max abs Δp), and
whether the path meets issue 24's bar (200 comments/s, both F1 within 0.5 points). Prints Markdown.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def paths(enc: Any, onnx: bool) -> dict[str, Any]:
    """The scoring paths to compare, each an object with the encoder's predict_proba: the
    encoder's own ``scoring`` values, then the ONNX graphs before fusion (the default until
    fusion) and, with ``--onnx``, that graph quantised per tensor (the first int8 trial)."""
    out: dict[str, Any] = {}
    names = {"float32": "float32", "int8": "int8", "onnx": "onnx-fused-float32", "onnx-int8": "onnx-fused-int8"}
    for name, label in names.items():
        way = copy.copy(enc)
        way.scoring, way.scorers_ = name, None
        t0 = time.perf_counter()
        way.scorers()
        if way.scoring_used_ != name:
            print(f"{name}: not available here ({way.scoring_used_}); left out", file=sys.stderr)
            continue
        note = f" ({way.onnx_note_})" if name.startswith("onnx") else ""
        print(f"{label}: ready in {time.perf_counter() - t0:.0f} s{note}", file=sys.stderr)
        out[label] = way
    if "onnx-fused-float32" not in out:
        return out
    extra = {"onnx-float32": None, **({"onnx-int8-per-tensor": "per-tensor"} if onnx else {})}
    for label, quantise in extra.items():
        way = copy.copy(enc)
        way.scorers_ = [enc._onnx_scorer(net, fuse=False, quantise=quantise) for net in enc.nets_]
        way.scoring_used_ = label
        out[label] = way
    order = ["float32", "int8", "onnx-float32", "onnx-fused-float32", "onnx-fused-int8", "onnx-int8-per-tensor"]
    return {name: out[name] for name in order if name in out}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a classifier .joblib trained with --encoder")
    ap.add_argument("--data", action="append", required=True, metavar="FILE",
                    help="labelled suicide file the model was not trained on; repeat")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3; the median counts)")
    ap.add_argument("--time-texts", type=int, default=256, metavar="N",
                    help="time on a seeded sample of N of the texts (default 256; 0: all of them)")
    ap.add_argument("--batch-size", type=int, default=64, help="comments per encoder batch (default 64)")
    ap.add_argument("--onnx", action="store_true", help="also time the unfused ONNX graph with per-tensor int8 quantisation")
    ap.add_argument("--json", help="also write the figures as JSON")
    a = ap.parse_args(argv)
    import joblib
    import torch

    from llm_worker.training import datasets as ds
    from llm_worker.training.train import Fold, _concat, pair_folds, part_metrics

    model = joblib.load(a.model)["suicide"]
    if model.encoder is None:
        print(f"error: {a.model} has no encoder (train it with --encoder)", file=sys.stderr)
        return 2
    folds: list[Fold] = pair_folds([ds.load(f) for f in a.data])
    texts, levels, binary = _concat(folds)
    enc = model.encoder
    rng = np.random.default_rng(0)
    timed = ([texts[i] for i in rng.permutation(len(texts))[:a.time_texts]] if 0 < a.time_texts < len(texts)
             else texts)
    res: dict[str, Any] = {"model": Path(a.model).name, "comments": len(texts), "timed_comments": len(timed),
                           "rounds": a.rounds,
                           "batch_size": a.batch_size, "torch_threads": torch.get_num_threads(),
                           "cpus": os.cpu_count(), "load_average": os.getloadavg()[0], "paths": {}}
    ways = paths(enc, a.onnx)
    for w in ways.values():  # warm up (and make the int8 copies) outside the timing
        w.predict_proba(texts[:8], a.batch_size)
    times: dict[str, list[float]] = {n: [] for n in ways}
    for r in range(a.rounds):
        for name, w in ways.items():
            t0 = time.perf_counter()
            w.predict_proba(timed, a.batch_size)
            times[name].append(time.perf_counter() - t0)
        print(f"round {r + 1}/{a.rounds}: " + "  ".join(f"{n} {len(timed) / t[-1]:.1f}/s"
                                                      for n, t in times.items()), file=sys.stderr)
    base = statistics.median(times["float32"])
    ref = ways["float32"].predict_proba(texts, a.batch_size)
    for name, w in ways.items():
        model.encoder = w
        pred, _conf, _ph = model.predict(texts)
        p_high, p_lvl = w.predict_proba(texts, a.batch_size)
        m = part_metrics(levels, binary, pred.tolist())
        med = statistics.median(times[name])
        res["paths"][name] = {"comments_per_second": len(timed) / med, "speedup": base / med,
                              "binary_f1": m["binary_f1"], "weighted_f1": m["weighted_f1"],
                              "max_abs_dp": float(max(np.abs(p_high - ref[0]).max(), np.abs(p_lvl - ref[1]).max())),
                              "seconds": times[name]}
    model.encoder = enc
    print(markdown(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


def meets(p: dict[str, Any], base: dict[str, Any]) -> bool:
    """Issue 24's bar: at least 200 comments/s, binary and weighted F1 within 0.5 points of float32."""
    return (p["comments_per_second"] >= 200 and abs(p["binary_f1"] - base["binary_f1"]) <= 0.005
            and abs(p["weighted_f1"] - base["weighted_f1"]) <= 0.005)


def markdown(r: dict[str, Any]) -> str:
    base = r["paths"]["float32"]
    out = [f"{r['timed_comments']} comments timed, {r['comments']} scored for F1, batch {r['batch_size']}, {r['torch_threads']} torch threads on "
           f"{r['cpus']} cores (load average {r['load_average']:.1f} at the start), median of "
           f"{r['rounds']} interleaved rounds; the same fine-tuned encoder ({r['model']}) on every path.", "",
           "| path | encoder comments/s | × float32 | binary F1 | Δ | weighted F1 | Δ | max abs Δp | 200/s, F1 within 0.5 |",
           "|---|---|---|---|---|---|---|---|---|"]
    for name, p in r["paths"].items():
        out.append(f"| {name} | {p['comments_per_second']:.1f} | {p['speedup']:.2f} | "
                   f"{100 * p['binary_f1']:.2f} | {100 * (p['binary_f1'] - base['binary_f1']):+.2f} | "
                   f"{100 * p['weighted_f1']:.2f} | {100 * (p['weighted_f1'] - base['weighted_f1']):+.2f} | "
                   f"{p['max_abs_dp']:.1e} | {'yes' if meets(p, base) else 'no'} |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
