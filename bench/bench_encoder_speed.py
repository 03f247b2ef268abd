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
- ``onnx-float32``: the same nets exported to ONNX and run by ONNX Runtime (``scoring="onnx"``,
  the default; left out when onnxruntime or onnx is not installed);
- ``onnx-int8`` (with ``--onnx``): that ONNX model after ONNX Runtime's dynamic int8 quantisation
  (bench only).

Timing: ``--rounds`` rounds, each scoring the same ``--time-texts`` texts (a seeded sample of
the files' texts) once with every path in turn (interleaved, so a busy machine slows them alike);
the median round gives comments/s, and the ratio to float32 is reported. Accuracy: the full classifier (n-grams + encoder) with each path, binary F1
(level >= 6 where a file has no binary twin) and weighted F1 over the 11 levels. Also prints the
thread count. Prints Markdown.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


class OnnxEncoder:
    """The encoder's predict_proba through ONNX Runtime, quantised to int8 (one member): the
    comparison only, not a scoring path."""

    def __init__(self, enc: Any, path: Path, quantise: bool) -> None:
        import onnxruntime as ort
        import torch

        from llm_worker.scoring.encoder_model import _Probabilities

        sample = enc.tokenizer_(["样本文字", "再来一句更长一点的样本文字"], padding=True, return_tensors="pt")
        fp32 = path / "encoder.onnx"
        torch.onnx.export(_Probabilities(enc.nets_[0]).eval(), (sample["input_ids"], sample["attention_mask"]),
                          str(fp32), input_names=["input_ids", "attention_mask"], output_names=["p_high", "p_level"],
                          dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                        "attention_mask": {0: "batch", 1: "tokens"},
                                        "p_high": {0: "batch"}, "p_level": {0: "batch"}},
                          opset_version=17, dynamo=False)
        model = fp32
        if quantise:
            from onnxruntime.quantization import QuantType, quantize_dynamic

            model = path / "encoder.int8.onnx"
            quantize_dynamic(str(fp32), str(model), weight_type=QuantType.QInt8)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), opts, providers=["CPUExecutionProvider"])
        self.tokenizer_, self.max_length = enc.tokenizer_, enc.max_length

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        p_high, p_lvl = np.zeros(len(texts)), np.zeros((len(texts), 11))
        by_len = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(texts), batch_size):
            idx = by_len[start:start + batch_size]
            b = self.tokenizer_([texts[i] for i in idx], padding=True, truncation=True,
                                max_length=self.max_length, return_tensors="np")
            p_high[idx], p_lvl[idx] = self.session.run(None, {"input_ids": b["input_ids"].astype(np.int64),
                                                              "attention_mask": b["attention_mask"].astype(np.int64)})
        return p_high, p_lvl


def paths(enc: Any, tmp: Path, onnx: bool) -> dict[str, Any]:
    """The scoring paths to compare, each an object with the encoder's predict_proba."""
    out: dict[str, Any] = {}
    for name in ("float32", "int8", "onnx"):
        way = copy.copy(enc)
        way.scoring, way.scorers_ = name, None
        way.scorers()
        if way.scoring_used_ != name:
            print(f"{name}: not available here ({way.scoring_used_}); left out", file=sys.stderr)
            continue
        out["onnx-float32" if name == "onnx" else name] = way
    if onnx:
        try:
            import onnx as _onnx  # noqa: F401 - the exporter and the quantiser need it
            import onnxruntime  # noqa: F401
        except ImportError as e:
            print(f"--onnx: {e.name} is not installed; the ONNX int8 row is left out", file=sys.stderr)
            return out
        t0 = time.perf_counter()
        out["onnx-int8"] = OnnxEncoder(enc, tmp, quantise=True)
        print(f"onnx-int8: exported and quantised in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="a classifier .joblib trained with --encoder")
    ap.add_argument("--data", action="append", required=True, metavar="FILE",
                    help="labelled suicide file the model was not trained on; repeat")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (default 3; the median counts)")
    ap.add_argument("--time-texts", type=int, default=256, metavar="N",
                    help="time on a seeded sample of N of the texts (default 256; 0: all of them)")
    ap.add_argument("--batch-size", type=int, default=64, help="comments per encoder batch (default 64)")
    ap.add_argument("--onnx", action="store_true", help="also time ONNX Runtime with int8 quantisation")
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
    with tempfile.TemporaryDirectory() as tmp:
        ways = paths(enc, Path(tmp), a.onnx)
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
        for name, w in ways.items():
            model.encoder = w
            pred, _conf, _ph = model.predict(texts)
            m = part_metrics(levels, binary, pred.tolist())
            med = statistics.median(times[name])
            res["paths"][name] = {"comments_per_second": len(timed) / med, "speedup": base / med,
                                  "binary_f1": m["binary_f1"], "weighted_f1": m["weighted_f1"],
                                  "seconds": times[name]}
        model.encoder = enc
    print(markdown(res))
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2), encoding="utf-8")
    return 0


def markdown(r: dict[str, Any]) -> str:
    base = r["paths"]["float32"]
    out = [f"{r['timed_comments']} comments timed, {r['comments']} scored for F1, batch {r['batch_size']}, {r['torch_threads']} torch threads on "
           f"{r['cpus']} cores (load average {r['load_average']:.1f} at the start), median of "
           f"{r['rounds']} interleaved rounds; the same fine-tuned encoder ({r['model']}) on every path.", "",
           "| path | encoder comments/s | × float32 | binary F1 | Δ | weighted F1 | Δ |",
           "|---|---|---|---|---|---|---|"]
    for name, p in r["paths"].items():
        out.append(f"| {name} | {p['comments_per_second']:.1f} | {p['speedup']:.2f} | "
                   f"{100 * p['binary_f1']:.2f} | {100 * (p['binary_f1'] - base['binary_f1']):+.2f} | "
                   f"{100 * p['weighted_f1']:.2f} | {100 * (p['weighted_f1'] - base['weighted_f1']):+.2f} |")
    return "\n".join(out)


if __name__ == "__main__":
    raise SystemExit(main())
