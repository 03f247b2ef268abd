"""The one interface every scorer implements: a batch of (topic, text) in, scores out.

A backend never invents a score. When it cannot produce a valid value for every
requested dimension it raises ScoringError for that item (see ``ScoreResult.error``),
and the worker retries or marks the comment failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@dataclass(frozen=True)
class ScoreInput:
    topic: str
    text: str


@dataclass
class DimensionScore:
    value: int                      # 0..10
    confidence: float | None = None  # probability of `value` among the 11 levels, when known
    rationale: str | None = None
    #: Likelihood scoring only: the probability the model put on the 11 levels together (the
    #: rest went to other next tokens). Small means the model wanted to say something else
    #: after "分数：", and the level means little. None when the backend does not know it.
    answer_mass: float | None = None
    #: When levels were missing from a server's top-k logprobs: an upper bound of the mass the
    #: missing levels can carry (each at most the smallest listed probability). None: exact.
    mass_gap: float | None = None
    #: answer_mass below the configured floor (worker.answer_mass_floor); None: not judged.
    uncertain: bool | None = None


def judge_mass(score: DimensionScore, floor: float) -> DimensionScore:
    """Set ``uncertain`` from ``answer_mass`` and the floor (0 disables the flag)."""
    if score.answer_mass is not None:
        score.uncertain = bool(floor > 0 and score.answer_mass < floor)
    return score


@dataclass
class ScoreResult:
    """Scores for one comment; ``error`` set (and ``scores`` empty) when it could not be scored."""

    scores: dict[str, DimensionScore] = field(default_factory=dict)
    error: str | None = None
    raw_output: str | None = None   # kept (truncated) for failed items
    truncated: bool = False         # the text was cut to the character budget
    #: True when retrying later cannot help (the model's answer was invalid even after the
    #: stricter retry); the worker then marks the comment failed at once. False for
    #: transient trouble (timeouts, 5xx), which is retried until worker.max_attempts.
    final: bool = False
    #: The server's content filter refused the request (counted in the metrics; final).
    refused: bool = False
    #: The model server could not be reached (connection error, timeout, 5xx after the
    #: retries): not the comment's fault, so the worker hands it back without counting an
    #: attempt and waits for the server.
    unavailable: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


#: The reason stored for a comment the server's content filter refused.
REFUSED = "refused by the server's content filter"


class PermanentBackendError(Exception):
    """The backend cannot work at all with this configuration (HTTP 401, 403, 404, 400, 422…).

    Retrying cannot help and no comment is at fault, so the worker gives the batch back
    without counting an attempt and stops with exit status 2. The message names the
    setting to check.
    """


class BackendUnavailable(Exception):
    """The model server does not answer now (connection error, timeout, 5xx): the worker waits
    for it, with capped back-off, instead of spending the comments' attempts."""


class ScoringError(Exception):
    """A backend could not score an item; ``raw_output`` keeps what the model said."""

    def __init__(self, message: str, raw_output: str | None = None) -> None:
        super().__init__(message)
        self.raw_output = raw_output


@runtime_checkable
class Backend(Protocol):
    #: Stored in scores.scorer, e.g. "lexicon:v2" or "transformers:THUDM/glm-4-9b-chat-hf".
    name: str
    dimensions: tuple[str, ...]

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        """One result per input, in order. Must not raise for a single bad item."""
        ...

    def close(self) -> None:
        ...


def sources_of(backend: object) -> dict[str, str]:
    """Where each dimension's score comes from, for evaluation reports.

    Covers the core dimensions and any others the backend scores. A backend may define
    ``sources() -> {dimension or "*": description}`` ("*" for the rest); without it every
    dimension is credited to the backend as a whole.
    """
    from weibo_mh.rubric import CORE_DIMENSIONS

    dims = list(dict.fromkeys([*CORE_DIMENSIONS, *getattr(backend, "dimensions", ())]))
    own = getattr(backend, "sources", None)
    got = own() if callable(own) else {}
    fallback = got.get("*", str(getattr(backend, "name", "?")))
    return {d: got.get(d, fallback) for d in dims}


def validate_result(result: ScoreResult, dimensions: tuple[str, ...]) -> ScoreResult:
    """Turn a result with a missing dimension or an out-of-range value into an error result."""
    if result.error is not None:
        return result
    missing = [d for d in dimensions if d not in result.scores]
    if missing:
        return ScoreResult(error=f"missing dimensions: {', '.join(missing)}", raw_output=result.raw_output,
                           truncated=result.truncated)
    for d in dimensions:
        v = result.scores[d].value
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= 10:
            return ScoreResult(error=f"{d}: value {v!r} is not an integer 0-10",
                               raw_output=result.raw_output, truncated=result.truncated)
    return result
