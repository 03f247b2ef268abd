"""``classifier``: the scikit-learn model trained by ``python -m llm_worker.training.train``, on the CPU.

suicide_risk comes from the trained model (its confidence is the model's probability
of the chosen level). positivity comes from the trained positivity head blended with
the lexicon when the model has one, otherwise from the lexicon. mood_disorder and
substance_use come from a head trained on the team's own labels (``train --from-db``)
blended 50/50 with the lexicon when the model has one, otherwise from the lexicon; the
extended ICD-10 blocks come from the lexicon. The model file is
a joblib pickle: load only models you trained yourself. A model trained with
``--encoder`` needs torch and transformers to load.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from llm_worker.scoring.backends.base import (
    DimensionScore,
    PermanentBackendError,
    ScoreInput,
    ScoreResult,
)
from llm_worker.scoring.backends.lexicon import analyse
from weibo_mh.config import ConfigError
from weibo_mh.rubric import CORE_DIMENSIONS, EXTENDED_DIMENSIONS

TRAIN_HINT = ("train one with: python -m llm_worker.training.train --task suicide --data LEVEL.tsv "
              "[--data BINARY.tsv …] --out PATH (see docs/quality.md)")


def load_model(path: str | Path) -> dict[str, Any]:
    """The saved bundle, or ConfigError saying how to get one."""
    import joblib

    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"classifier: no trained model at {p}; {TRAIN_HINT}")
    try:
        bundle = joblib.load(p)
    except ImportError as e:  # a model trained with --encoder needs torch and transformers to load
        raise ConfigError(f"classifier: {p} needs the Python package {e.name or e}, which is not "
                          "installed (models trained with --encoder need torch and transformers)") from None
    except Exception as e:  # noqa: BLE001 - any unreadable file is the same user problem
        raise ConfigError(f"classifier: {p} is not a model saved by llm_worker.training.train ({type(e).__name__})") from None
    if not isinstance(bundle, dict) or "suicide" not in bundle or "meta" not in bundle:
        raise ConfigError(f"classifier: {p} is not a model saved by llm_worker.training.train")
    return bundle


def _file_tag(p: Path) -> str:
    h = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:8]


class ClassifierBackend:
    """``classifier:<model stem>-<hash>``; see the module docstring for where each score comes from."""

    def __init__(self, model_path: str | Path, dimensions: tuple[str, ...] = CORE_DIMENSIONS,
                 max_chars: int = 512, explain: bool = False) -> None:
        unknown = [d for d in dimensions if d not in EXTENDED_DIMENSIONS]
        if unknown:
            raise ConfigError(f"classifier backend cannot score {', '.join(unknown)}")
        path = Path(model_path)
        bundle = load_model(path)
        self.meta: dict[str, Any] = bundle["meta"]
        self.model = bundle["suicide"]
        self.positivity = bundle.get("positivity")
        self.heads: dict[str, Any] = bundle.get("heads") or {}
        self.name = f"classifier:{path.stem}-{_file_tag(path)}"
        self.dimensions = tuple(dimensions)
        self.max_chars = max_chars
        self.explain = explain
        self._extended = any(d not in CORE_DIMENSIONS for d in self.dimensions)

    def prepare(self) -> None:
        """Build the fine-tuned encoder's scorers now (its ONNX export and int8 quantisation take
        seconds), so that the worker does it before its first claim, not while holding one; the
        path that ran is logged. Without an encoder there is nothing to do."""
        encoder = getattr(self.model, "encoder", None)
        if encoder is None:
            return
        try:
            encoder.scorers()
        except Exception as e:  # noqa: BLE001 - the model file, not any comment, is at fault
            raise PermanentBackendError(f"classifier: the encoder of {self.name} cannot score here "
                                        f"({type(e).__name__}: {e}); check classifier.model_path") from None

    def sources(self) -> dict[str, str]:
        encoder = getattr(self.model, "encoder", None)
        also = ""
        if encoder is not None:
            copies = f" ({encoder.members} seeds averaged)" if getattr(encoder, "members", 1) > 1 else ""
            also = f", averaged with the fine-tuned encoder {encoder.encoder}{copies}"
        out = {"*": "lexicon (hand-written cue lists, untrained)",
               "suicide_risk": f"trained model (n-gram and cue ensemble{also}; levels inside its high/low band)"}
        if self.positivity is not None:
            out["positivity"] = "trained emotion head blended 50/50 with the lexicon"
        for dim in ("mood_disorder", "substance_use"):
            head = self.heads.get(dim)
            out[dim] = (f"head trained on {head.n_labels_} human labels "
                        f"({self.meta.get('db_labels', {}).get('pattern', 'human:*')}) blended 50/50 with the lexicon"
                        if head is not None else
                        "lexicon (hand-written cue lists, untrained; the model has no labels for this dimension)")
        return out

    @classmethod
    def from_config(cls, cfg, **overrides: Any) -> ClassifierBackend:
        from weibo_mh.rubric import dimensions_for

        path = overrides.get("model_path") or overrides.get("model") or cfg.classifier.model_path
        dims = overrides.get("dimensions") or dimensions_for(cfg.worker.rubric)
        return cls(path, dimensions=tuple(dims), max_chars=overrides.get("max_chars") or cfg.worker.max_chars,
                   explain=bool(overrides.get("explain", False)))

    def _score(self, texts: list[str]) -> list[ScoreResult]:
        truncated = [self.max_chars > 0 and len(t) > self.max_chars for t in texts]
        texts = [t[: self.max_chars] if cut else t for t, cut in zip(texts, truncated, strict=True)]
        levels, conf, p_high = self.model.predict(texts)
        encoder = getattr(self.model, "encoder", None)
        if encoder is not None:  # the encoder reads a fixed number of tokens: say when it read less
            truncated = [a or b for a, b in zip(truncated, encoder.cut(texts), strict=True)]
        p_happy = self.positivity.proba(texts) if self.positivity is not None else None
        heads = {d: h.predict(texts) for d, h in self.heads.items() if d in self.dimensions}
        out = []
        for i, text in enumerate(texts):
            lex = analyse(text, extended=self._extended)
            scores = dict(lex.scores)
            scores["suicide_risk"] = DimensionScore(int(levels[i]), round(float(conf[i]), 4))
            if p_happy is not None:
                # Equal blend of the trained head (P(happy) on 0-10) and the lexicon's valence.
                value = int(round(0.5 * 10 * float(p_happy[i]) + 0.5 * lex.scores["positivity"].value))
                scores["positivity"] = DimensionScore(max(0, min(10, value)), round(float(
                    max(p_happy[i], 1 - p_happy[i])), 4))
            for dim, (lv, cf) in heads.items():
                value = int(round(0.5 * float(lv[i]) + 0.5 * lex.scores[dim].value))
                scores[dim] = DimensionScore(max(0, min(10, value)), round(float(cf[i]), 4))
            chosen = {d: scores[d] for d in self.dimensions}
            if self.explain and "suicide_risk" in chosen:
                chosen["suicide_risk"].rationale = (f"P(high risk) = {float(p_high[i]):.2f}; lexicon cues: "
                                                    + ("、".join(lex.cues["suicide_risk"][:6]) or "none"))
            out.append(ScoreResult(scores=chosen, truncated=truncated[i]))
        return out

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        texts = [it.text if isinstance(it.text, str) else "" for it in items]
        try:
            return self._score(texts)
        except Exception:  # noqa: BLE001 - find the bad item(s) instead of failing them all
            out = []
            for t in texts:
                try:
                    out.extend(self._score([t]))
                except Exception as e:  # noqa: BLE001
                    out.append(ScoreResult(error=f"classifier: {type(e).__name__}: {e}"))
            return out

    def close(self) -> None:
        pass
