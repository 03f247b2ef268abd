"""A scorer that does nothing: the same valid score for every comment.

It measures the queue's own overhead (bench/bench_queue.py) and drives the worker's
tests without a model. ``delay_seconds`` (or the LLM_WORKER_NULL_DELAY environment
variable) makes each batch take that long, to stand in for a slow model in load
and shutdown tests. Its scores mean nothing; the scorer name ``null:v1`` keeps them
apart from real ones.
"""

from __future__ import annotations

import os
import time
from typing import Any

from llm_worker.scoring.backends.base import DimensionScore, ScoreInput, ScoreResult
from weibo_mh.config import Config
from weibo_mh.rubric import dimensions_for

#: Neutral valence, no sign of anything else.
FIXED = {"positivity": 5}


class NullBackend:
    name = "null:v1"

    def __init__(self, dimensions: tuple[str, ...], delay_seconds: float = 0.0) -> None:
        self.dimensions = tuple(dimensions)
        self.delay_seconds = delay_seconds

    @classmethod
    def from_config(cls, cfg: Config, **overrides: Any) -> NullBackend:
        dims = overrides.get("dimensions") or dimensions_for(cfg.worker.rubric)
        delay = overrides.get("delay_seconds")
        if delay is None:
            delay = float(os.environ.get("LLM_WORKER_NULL_DELAY", "0") or 0)
        return cls(tuple(dims), delay_seconds=float(delay))

    def sources(self) -> dict[str, str]:
        return {"*": "constant (null backend, for load tests)"}

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        if self.delay_seconds:
            time.sleep(self.delay_seconds)
        return [ScoreResult(scores={d: DimensionScore(FIXED.get(d, 0), 1.0) for d in self.dimensions})
                for _ in items]

    def close(self) -> None:
        pass
