"""Small scorers with known behaviour for the worker tests, and a worker factory.

They implement the real Backend protocol; the queue, database and loop they run
with are the real ones.
"""

from __future__ import annotations

import io
from typing import Any

from llm_worker.metrics import Metrics
from llm_worker.queue import Queue
from llm_worker.scoring.backends.base import DimensionScore, ScoreInput, ScoreResult
from llm_worker.worker import Worker
from weibo_mh.progress import Progress
from weibo_mh.rubric import CORE_DIMENSIONS


class Recording:
    """Scores every comment 3 and remembers what it was given."""

    name = "recording:v1"
    dimensions = CORE_DIMENSIONS

    def __init__(self, rationale: str | None = None) -> None:
        self.seen: list[ScoreInput] = []
        self.rationale = rationale

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        self.seen.extend(items)
        return [ScoreResult(scores={d: DimensionScore(3, 0.5, self.rationale) for d in self.dimensions})
                for _ in items]

    def close(self) -> None:
        pass


class Picky(Recording):
    """Refuses comments that contain 坏 (retryable) or 烂 (final), as a model with bad output would."""

    name = "picky:v1"

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        out = []
        for r, item in zip(super().score_batch(items), items, strict=True):
            if "坏" in item.text:
                r = ScoreResult(error="unparsable answer", raw_output="模型说：" + "乱" * 5000)
            elif "烂" in item.text:
                r = ScoreResult(error="value out of range after retry", raw_output='{"x": 99}', final=True)
            out.append(r)
        return out


class Raising(Recording):
    """The whole batch fails, as a crashed model server would."""

    name = "raising:v1"

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        raise ConnectionError("model server went away")


def make_worker(engine: Any, backend: Any, worker_id: str = "w1", *, lease_seconds: int = 600,
                max_attempts: int = 3, **kw: Any) -> Worker:
    kw.setdefault("once", True)
    kw.setdefault("idle_max", 0.1)
    queue = Queue(engine, worker_id, lease_seconds=lease_seconds, max_attempts=max_attempts)
    return Worker(queue, backend, metrics=kw.pop("metrics", None) or Metrics(backend.name),
                  progress=Progress(stream=io.StringIO(), tty=False), **kw)
