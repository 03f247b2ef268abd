"""The team's own labels: human score rows in the database, as training data.

A team labels comments by writing ``scores`` rows with the scorer ``human:<name>``
(one row per comment, dimension and annotator; the same table the worker writes).
``train`` and ``finetune`` read them with ``--from-db URL --labels 'human:*'``:

- ``--labels`` is a glob over the scorer (``*`` any run of characters, ``?`` one); it must
  start with ``human:`` so that no machine scorer's output is ever trained on;
- all four core dimensions are read (suicide_risk, positivity, mood_disorder, substance_use);
  rows of other dimensions are ignored;
- when several annotators labelled one comment on one dimension, the label is their
  **median**; with an even number of annotators, the upper of the two middle values
  (``statistics.median_high``), so that a split between two annotators leans towards the
  higher level (for suicide risk: towards the side a crisis team acts on). A comment
  keeps a label on every dimension that at least one annotator labelled.

The labels' sha256 (over the sorted (comment, dimension, scorer, value) rows) goes into the
metadata of what is trained on them, like a file's hash.
"""

from __future__ import annotations

import hashlib
import statistics
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

from llm_worker.training import datasets as ds
from weibo_mh import db
from weibo_mh.rubric import CORE_DIMENSIONS, HIGH_RISK_LEVEL

PREFIX = "human:"


class LabelError(ValueError):
    pass


@dataclass
class DbLabels:
    """Combined human labels: per dimension, {comment id: level}; texts by comment id."""

    source: str                      # masked URL and pattern, for messages and metadata
    pattern: str
    texts: dict[str, str] = field(default_factory=dict)
    levels: dict[str, dict[str, int]] = field(default_factory=dict)
    annotators: list[str] = field(default_factory=list)
    rows: int = 0
    sha256: str = ""

    def count(self, dimension: str) -> int:
        return len(self.levels.get(dimension, {}))

    def pairs(self, dimension: str) -> tuple[list[str], list[int]]:
        """(texts, levels) of the comments labelled on ``dimension``, in comment-id order."""
        got = self.levels.get(dimension, {})
        ids = sorted(got)
        return [self.texts[i] for i in ids], [got[i] for i in ids]

    def dataset(self, dimension: str, binary: bool = False) -> ds.Dataset:
        """A pseudo-file of one dimension's labels, shaped like an SOS-1K level (or binary) file."""
        texts, levels = self.pairs(dimension)
        labels = [int(v >= HIGH_RISK_LEVEL) for v in levels] if binary else levels
        kind = ds.SOS_BINARY if binary else ds.SOS_LEVEL
        examples = [ds.Example(t, y, n) for n, (t, y) in enumerate(zip(texts, labels, strict=True), 1)]
        return ds.Dataset(Path(f"{self.source}#{dimension}{'-binary' if binary else ''}"), kind,
                          examples, self.sha256)

    def summary(self) -> str:
        dims = ", ".join(f"{d} {self.count(d)}" for d in CORE_DIMENSIONS)
        return (f"{self.rows} label rows from {len(self.annotators)} annotator(s) "
                f"({', '.join(self.annotators)}) on {len(self.texts)} comments: {dims}")


def like_pattern(pattern: str) -> str:
    """The SQL LIKE form of a scorer glob (``\\`` escapes LIKE's own wildcards)."""
    if not pattern.startswith(PREFIX):
        raise LabelError(f"--labels {pattern!r} must start with {PREFIX!r}: only human labels are "
                         "trained on, never a machine scorer's output")
    out = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return out.replace("*", "%").replace("?", "_")


def combine(values: list[int]) -> int:
    """The documented rule for several annotators: the median, upper middle when even."""
    return int(statistics.median_high(values))


def read_labels(url: str, pattern: str) -> DbLabels:
    """Human labels matching ``pattern`` from the database at ``url`` (schema checked)."""
    like = like_pattern(pattern)
    try:
        engine = db.open_checked(url)
    except db.SchemaError as e:
        raise LabelError(str(e)) from None
    s, c = db.scores, db.comments
    query = (sa.select(s.c.comment_id, s.c.dimension, s.c.scorer, s.c.value, c.c.text)
             .join(c, c.c.id == s.c.comment_id)
             .where(s.c.scorer.like(like, escape="\\"), s.c.dimension.in_(CORE_DIMENSIONS))
             .order_by(s.c.comment_id, s.c.dimension, s.c.scorer))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except sa.exc.SQLAlchemyError as e:
        raise LabelError(f"cannot read labels from {db.mask(url)}: {db.short_error(e)}") from None
    finally:
        engine.dispose()
    out = DbLabels(source=f"{db.mask(url)} (labels {pattern})", pattern=pattern, rows=len(rows))
    if not rows:
        raise LabelError(f"no score rows with a scorer matching {pattern!r} in {db.mask(url)}")
    h = hashlib.sha256()
    gathered: dict[tuple[str, str], list[int]] = {}
    annotators = set()
    for cid, dim, scorer, value, text in rows:
        h.update(f"{cid}\x1f{dim}\x1f{scorer}\x1f{value}\n".encode())
        out.texts[str(cid)] = text
        gathered.setdefault((str(cid), dim), []).append(int(value))
        annotators.add(scorer)
    for (cid, dim), values in gathered.items():
        out.levels.setdefault(dim, {})[cid] = combine(values)
    out.annotators = sorted(annotators)
    out.sha256 = h.hexdigest()
    return out
