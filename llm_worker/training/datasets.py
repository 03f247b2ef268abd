"""Loaders for the labelled formats that evaluation and training read.

The format is detected from the content, never from the file name:
- ``[`` first: a JSON list of ``{id, content, label}`` (SMP2020-EWECT emotion);
- ``{`` first: JSON lines of ``{id, content, label}`` (CLUEmotion2020);
- a TSV header ``comment<TAB>myLabel``: SOS-1K suicide levels 0-10;
- a TSV header ``comment<TAB>twoClass``: SOS-1K binary risk (1 = high);
- a TSV header with a ``内容`` column and 0/1 columns: SocialCD-3K cognitive distortions.

A malformed file raises DataFormatError naming the file and the line, so that the
command-line tools can print one clear line and exit with status 2.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

#: Dataset kinds and the evaluation task each one belongs to.
SOS_LEVEL = "sos_level"
SOS_BINARY = "sos_binary"
EMOTION = "emotion"
DISTORTION = "distortion"
TASK_OF_KIND = {SOS_LEVEL: "suicide", SOS_BINARY: "suicide", EMOTION: "positivity", DISTORTION: "distortion"}

POSITIVE_EMOTIONS = frozenset({"happy", "happiness", "like"})
NEGATIVE_EMOTIONS = frozenset({"sad", "sadness", "angry", "anger", "fear", "disgust"})
#: Emotion labels that are valid but left out of the positivity task.
OTHER_EMOTIONS = frozenset({"neutral", "surprise"})
TEXT_COLUMN_CD = "内容"


class DataFormatError(ValueError):
    """A labelled file that cannot be read; the message starts with ``FILE:LINE:``."""

    def __init__(self, path: str | Path, line: int | None, message: str) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = str(path)
        self.line = line


@dataclass
class Example:
    text: str
    label: int | str          # level 0-10, 0/1, an emotion name, or 0/1 any-distortion
    line: int                 # 1-based line in the file (JSON list: the item's index + 1)
    extra: dict[str, int] = field(default_factory=dict)  # SocialCD-3K: the 12 columns


@dataclass
class Dataset:
    path: Path
    kind: str
    examples: list[Example]
    sha256: str

    @property
    def task(self) -> str:
        return TASK_OF_KIND[self.kind]

    @property
    def texts(self) -> list[str]:
        return [e.text for e in self.examples]

    @property
    def labels(self) -> list[int | str]:
        return [e.label for e in self.examples]

    def __len__(self) -> int:
        return len(self.examples)


def _read_text(path: Path) -> tuple[str, str]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataFormatError(path, None, "file not found") from None
    except OSError as e:
        raise DataFormatError(path, None, f"cannot read: {e.strerror}") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataFormatError(path, line, "not UTF-8 text") from None
    return text, digest


def detect_kind(path: Path, text: str) -> str:
    """The dataset kind of ``text`` (the content of ``path``), or DataFormatError."""
    stripped = text.lstrip()
    if not stripped:
        raise DataFormatError(path, 1, "the file is empty")
    if stripped[0] == "[":
        return EMOTION + ":list"
    if stripped[0] == "{":
        return EMOTION + ":lines"
    header = text.split("\n", 1)[0].rstrip("\r").split("\t")
    names = [h.strip() for h in header]
    if len(names) == 2 and names[1] == "myLabel":
        return SOS_LEVEL
    if len(names) == 2 and names[1] == "twoClass":
        return SOS_BINARY
    if TEXT_COLUMN_CD in names:
        return DISTORTION
    raise DataFormatError(path, 1, "unknown format: expected a JSON list, JSON lines, or a TSV header "
                                   "'comment<TAB>myLabel', 'comment<TAB>twoClass' or one with a '内容' column")


def _int_label(path: Path, lineno: int, value: str, allowed: range) -> int:
    try:
        v = int(value.strip())
    except ValueError:
        raise DataFormatError(path, lineno, f"label {value.strip()!r} is not an integer") from None
    if v not in allowed:
        raise DataFormatError(path, lineno, f"label {v} is outside {allowed.start}-{allowed.stop - 1}")
    return v


def _load_sos(path: Path, text: str, kind: str) -> list[Example]:
    allowed = range(0, 11) if kind == SOS_LEVEL else range(0, 2)
    out = []
    for lineno, line in enumerate(text.split("\n")[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if "\t" not in line:
            raise DataFormatError(path, lineno, "expected 'comment<TAB>label', found no tab")
        comment, label = line.rsplit("\t", 1)
        out.append(Example(comment, _int_label(path, lineno, label, allowed), lineno))
    return out


def _emotion_item(path: Path, lineno: int, item: object) -> Example:
    if not isinstance(item, dict) or "content" not in item or "label" not in item:
        raise DataFormatError(path, lineno, "expected an object with 'content' and 'label'")
    content, label = item["content"], item["label"]
    if not isinstance(content, str) or not isinstance(label, str):
        raise DataFormatError(path, lineno, "'content' and 'label' must be strings")
    label = label.strip().lower()
    if label not in POSITIVE_EMOTIONS | NEGATIVE_EMOTIONS | OTHER_EMOTIONS:
        raise DataFormatError(path, lineno, f"unknown emotion label {label!r}")
    return Example(content, label, lineno)


def _load_emotion_list(path: Path, text: str) -> list[Example]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataFormatError(path, e.lineno, f"not valid JSON: {e.msg}") from None
    if not isinstance(data, list):
        raise DataFormatError(path, 1, "expected a JSON list")
    # A JSON list is often one long line: number the items instead (item N -> "line" N).
    return [_emotion_item(path, i + 1, item) for i, item in enumerate(data)]


def _load_emotion_lines(path: Path, text: str) -> list[Example]:
    out = []
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(path, lineno, f"not valid JSON: {e.msg}") from None
        out.append(_emotion_item(path, lineno, item))
    return out


def _load_distortion(path: Path, text: str) -> list[Example]:
    lines = text.split("\n")
    header = [h.strip() for h in lines[0].rstrip("\r").split("\t")]
    ti = header.index(TEXT_COLUMN_CD)
    flags = [i for i in range(len(header)) if i != ti]
    out = []
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise DataFormatError(path, lineno, f"expected {len(header)} columns, found {len(cells)}")
        extra = {header[i]: _int_label(path, lineno, cells[i], range(0, 2)) for i in flags}
        out.append(Example(cells[ti], int(any(extra.values())), lineno, extra))
    return out


def load(path: str | Path) -> Dataset:
    """Read one labelled file; the kind is detected from its content."""
    p = Path(path)
    text, digest = _read_text(p)
    kind = detect_kind(p, text)
    if kind == EMOTION + ":list":
        examples, kind = _load_emotion_list(p, text), EMOTION
    elif kind == EMOTION + ":lines":
        examples, kind = _load_emotion_lines(p, text), EMOTION
    elif kind in (SOS_LEVEL, SOS_BINARY):
        examples = _load_sos(p, text, kind)
    else:
        examples = _load_distortion(p, text)
    if not examples:
        raise DataFormatError(p, None, "no labelled rows")
    return Dataset(p, kind, examples, digest)


def positivity_target(label: int | str) -> int | None:
    """1 for happy texts, 0 for negative ones, None for those the positivity task leaves out."""
    if label in POSITIVE_EMOTIONS:
        return 1
    if label in NEGATIVE_EMOTIONS:
        return 0
    return None


def hash_fold(text: str, k: int) -> int:
    """A stable fold 0..k-1 for ``text``: SHA-256 of its stripped UTF-8, modulo ``k``.

    Stable across runs, machines and Python versions (unlike ``hash``), and the same text
    always lands in the same fold, so a duplicated comment cannot sit on both sides of a split.
    This is the CV protocol's rule for rows that come without folds (SOS-4K)."""
    return int(hashlib.sha256(text.strip().encode("utf-8")).hexdigest()[:16], 16) % k


def split_by_hash(data: Dataset, k: int) -> list[Dataset]:
    """``data`` cut into ``k`` parts by ``hash_fold``; part j is named ``NAME#foldJ+1``."""
    parts: list[list[Example]] = [[] for _ in range(k)]
    for e in data.examples:
        parts[hash_fold(e.text, k)].append(e)
    return [Dataset(data.path.with_name(f"{data.path.name}#fold{j + 1}"), data.kind, rows, data.sha256)
            for j, rows in enumerate(parts)]
