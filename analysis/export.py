"""A de-identified research copy: one row per comment, its scores as columns, in Parquet or CSV.

It sits beside the report because it reads the database the way the report does (the same
window, topic and scorer options) and writes a folder of files atomically like it. Each row
holds the comment's time cut to the hour (--time-precision), its post's topics, the post
mid, the IP location Weibo showed, its likes, and one column per scorer and dimension with
each scorer's rubric version. Not in it: Weibo user ids, author hashes, comment ids,
nicknames and reply targets. Authors become keys made with a fresh random key for every
export, so two exports cannot be joined on authors (--stable-authors derives the key from
the salt instead, for a series of exports meant to be joined). Texts only with --with-text.
Beside the data: README.md (the data dictionary) and manifest.json (filters, scorers, rubric,
config hash, row counts and the sha256 of each file).

    python -m analysis.export --out /srv/exports/2026-11 --since 2026-11-01 --until 2026-11-30
    python -m analysis.export --out x --scorer lexicon:v2 --format csv --topic 高考
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import secrets
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from analysis.common import (
    UsageError,
    atomic_write,
    fail,
    open_database,
    parse_when,
    prepare_out,
    run,
)
from analysis.queries import comment_time, window_conditions
from analysis.window import Window
from weibo_mh import db
from weibo_mh.rubric import RUBRIC_VERSION

C = db.comments
S = db.scores
PT = db.post_topics
T = db.topics
CHUNK = 2000
HUMAN = "human:"
PRECISIONS = ("hour", "day")
#: Context of the salt-derived key of --stable-authors (changing it re-keys every author).
STABLE_CONTEXT = b"weibo-mh export author keys v1"


@dataclass
class Spec:
    """What one export holds."""

    window: Window
    scorers: list[str]
    fmt: str = "parquet"
    with_text: bool = False
    precision: str = "hour"
    key: bytes = field(default_factory=lambda: secrets.token_bytes(32), repr=False)
    stable: bool = False
    #: Only comments one of ``scorers`` scored (--scorer given); else every comment in the window.
    only_scored: bool = False


def rekey(key: bytes, kind: str, value: str | None) -> str | None:
    """A 16-hex-digit key of ``value`` under this export's key (None stays None)."""
    if not value:
        return None
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()[:16]


def stable_key(salt: bytes) -> bytes:
    """The --stable-authors key: derived from the salt, so the same in every such export and
    as secret as the salt (an export never holds it)."""
    return hmac.new(salt, STABLE_CONTEXT, hashlib.sha256).digest()


def columns_of(conn: Connection, scorers: Sequence[str]) -> dict[str, list[str]]:
    """scorer -> its dimensions, for the score columns."""
    out: dict[str, list[str]] = defaultdict(list)
    for scorer, dim in conn.execute(sa.select(S.c.scorer, S.c.dimension).where(S.c.scorer.in_(list(scorers)))
                                    .distinct().order_by(S.c.scorer, S.c.dimension)):
        out[scorer].append(dim)
    return dict(out)


def _ids(conn: Connection, spec: Spec) -> Iterator[list[str]]:
    """The window's comment ids in chunks (keyset paging by id)."""
    conds = window_conditions(spec.window)
    if spec.only_scored:
        conds.append(sa.exists().where(S.c.comment_id == C.c.id, S.c.scorer.in_(spec.scorers)))
    last = ""
    while True:
        ids = list(conn.execute(sa.select(C.c.id).where(*conds, C.c.id > last).order_by(C.c.id)
                                .limit(CHUNK)).scalars())
        if not ids:
            return
        yield ids
        last = ids[-1]


def _cut(t: datetime, precision: str) -> datetime:
    t = t.replace(minute=0, second=0, microsecond=0)
    return t.replace(hour=0) if precision == "day" else t


def rows(conn: Connection, spec: Spec, dims: dict[str, list[str]],
         rubrics: dict[str, set[str]] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The export's rows, a chunk at a time; the rubric versions met go into ``rubrics``."""
    cols = [C.c.id, C.c.mid, C.c.author_hash, comment_time().label("at"), C.c.created_at,
            C.c.ip_location, C.c.likes, *([C.c.text] if spec.with_text else [])]
    for ids in _ids(conn, spec):
        base = conn.execute(sa.select(*cols).where(C.c.id.in_(ids)).order_by(C.c.id)).all()
        topics: dict[str, list[str]] = defaultdict(list)
        mids = sorted({r.mid for r in base})
        for mid, word in conn.execute(sa.select(PT.c.mid, T.c.word).select_from(PT.join(T, T.c.id == PT.c.topic_id))
                                      .where(PT.c.mid.in_(mids)).order_by(PT.c.mid, T.c.word)):
            topics[mid].append(word)
        scores: dict[str, dict[str, Any]] = defaultdict(dict)
        for cid, scorer, dim, value, rubric in conn.execute(
                sa.select(S.c.comment_id, S.c.scorer, S.c.dimension, S.c.value, S.c.rubric_version)
                .where(S.c.comment_id.in_(ids), S.c.scorer.in_(list(dims)))):
            scores[cid][f"{scorer}/{dim}"] = int(value)
            scores[cid][f"{scorer}/rubric_version"] = rubric
            if rubrics is not None:
                rubrics.setdefault(scorer, set()).add(rubric)
        out = []
        for r in base:
            row: dict[str, Any] = {
                "author_key": rekey(spec.key, "a", r.author_hash),
                "time": _cut(r.at, spec.precision),
                "time_is_collection": r.created_at is None,
                "topics": "|".join(topics.get(r.mid, [])),
                "mid": r.mid,
                "ip_location": r.ip_location,
                "likes": int(r.likes or 0),
            }
            for scorer, ds in dims.items():
                got = scores.get(r.id, {})
                for d in ds:
                    row[f"{scorer}/{d}"] = got.get(f"{scorer}/{d}")
                row[f"{scorer}/rubric_version"] = got.get(f"{scorer}/rubric_version")
            if spec.with_text:
                row["text"] = r.text
            out.append(row)
        yield out


def schema(dims: dict[str, list[str]], with_text: bool) -> Any:
    import pyarrow as pa

    fields = [("author_key", pa.string()), ("time", pa.timestamp("s")), ("time_is_collection", pa.bool_()),
              ("topics", pa.string()), ("mid", pa.string()), ("ip_location", pa.string()),
              ("likes", pa.int64())]
    for scorer, ds in dims.items():
        fields += [(f"{scorer}/{d}", pa.int8()) for d in ds]
        fields.append((f"{scorer}/rubric_version", pa.string()))
    if with_text:
        fields.append(("text", pa.string()))
    return pa.schema(fields)


def write_data(engine: Engine, spec: Spec, dims: dict[str, list[str]], path: Path,
               rubrics: dict[str, set[str]] | None = None) -> int:
    """Stream the rows into ``path`` (atomically). Returns the row count."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    sch = schema(dims, spec.with_text)
    n = 0

    def write(tmp: Path) -> None:
        nonlocal n
        writer: Any = (pq.ParquetWriter(tmp, sch, compression="zstd") if spec.fmt == "parquet"
                       else pcsv.CSVWriter(tmp, sch))
        try:
            with engine.connect() as conn:
                for chunk in rows(conn, spec, dims, rubrics):
                    writer.write_table(pa.Table.from_pylist(chunk, schema=sch))
                    n += len(chunk)
        finally:
            writer.close()

    atomic_write(path, write)
    return n


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def readme(spec: Spec, dims: dict[str, list[str]], data_name: str, n: int) -> str:
    """The data dictionary."""
    keys = ("derived from the deployment's secret salt: the same author has the same key in "
            "every --stable-authors export of this deployment" if spec.stable else
            "made with a random key used for this export only and not kept: keys cannot be "
            "joined with any other export")
    lines = [
        "# De-identified research export (weibo-mental-health)", "",
        f"`{data_name}`: {n} rows, one per Weibo comment. Made with `weibo-mh export`; "
        "`manifest.json` holds the filters, the scorers, the rubric and the sha256 of each file.", "",
        "Not in this export: Weibo user ids, author hashes, comment ids, nicknames, reply targets"
        + ("." if spec.with_text else ", comment texts."),
        "The scores are model (or annotator) estimates of what a text expresses, "
        "not diagnoses of people.", "",
        "| column | type | meaning |", "|---|---|---|",
        f"| `author_key` | string | the comment's author, {keys}; empty when Weibo showed none |",
        f"| `time` | timestamp | when the comment was written, Asia/Shanghai (UTC+8), cut to the "
        f"{spec.precision} |",
        "| `time_is_collection` | bool | true: Weibo gave no time, `time` is when it was first collected |",
        "| `topics` | string | hot-search topics the comment's post was found under, joined by `\\|` |",
        "| `mid` | string | the Weibo post the comment is on |",
        "| `ip_location` | string | IP属地 as Weibo showed it (a province, or a country); empty: none shown |",
        "| `likes` | integer | likes when last collected |",
    ]
    for scorer, ds in dims.items():
        for d in ds:
            lines.append(f"| `{scorer}/{d}` | integer 0-10 | level of `{d}` by scorer `{scorer}` "
                         "(scales: SCALES.md of the project); empty: not scored |")
        lines.append(f"| `{scorer}/rubric_version` | string | rubric version of `{scorer}`'s scores |")
    if spec.with_text:
        lines.append("| `text` | string | the comment's text (@mentions already replaced by @用户; "
                     "empty after text retention) |")
    return "\n".join(lines) + "\n"


def export(engine: Engine, out: Path, spec: Spec, cfg_hash: str = "") -> dict[str, Any]:
    """Write data, README.md and manifest.json (last) into ``out``. Returns the manifest."""
    prepare_out(out)
    with engine.connect() as conn:
        dims = columns_of(conn, spec.scorers)
    data = out / f"comments.{spec.fmt}"
    met: dict[str, set[str]] = {}   # the rubric versions of the exported scores
    n = write_data(engine, spec, dims, data, met)
    doc = atomic_write(out / "README.md", lambda tmp: tmp.write_text(readme(spec, dims, data.name, n),
                                                                     encoding="utf-8"))
    w = spec.window
    manifest = {
        "created_at": f"{db.now():%Y-%m-%d %H:%M:%S} Asia/Shanghai",
        "format": spec.fmt,
        "filters": {"since": w.since and f"{w.since:%Y-%m-%d %H:%M}", "until": w.until and f"{w.until:%Y-%m-%d %H:%M}",
                    "topic": w.topic, "scorers": spec.scorers, "with_text": spec.with_text,
                    "time_precision": spec.precision, "stable_authors": spec.stable},
        "scorers": {s: {"dimensions": ds, "rubric_versions": sorted(met.get(s, ()))} for s, ds in dims.items()},
        "rubric_version": RUBRIC_VERSION,
        "schema_version": db.SCHEMA_VERSION,
        "config_sha256": cfg_hash,
        "row_counts": {data.name: n},
        "files": {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in (data, doc)},
    }
    atomic_write(out / "manifest.json", lambda tmp: tmp.write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"))
    return manifest


def main(argv: list[str] | None = None) -> int:
    return run(_main, argv)


def _main(argv: list[str] | None) -> int:
    from weibo_mh.config import ConfigError, load_or_exit, resolve_sqlite_url

    doc = __doc__ or ""
    ap = argparse.ArgumentParser(prog="python -m analysis.export", description=doc.split("\n\n    python -m")[0],
                                 epilog="examples:\n" + doc.split("\n\n", 2)[-1].strip("\n"),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", metavar="DIR", required=True, help="folder for the files (created if missing)")
    ap.add_argument("--since", metavar="WHEN", type=lambda s: parse_when(s),
                    help="first comment time included (YYYY-MM-DD, YYYY-MM-DD HH:MM, or 7d for the last 7 days)")
    ap.add_argument("--until", metavar="WHEN", type=lambda s: parse_when(s, end=True),
                    help="last day included (a bare date includes that whole day), or an exact time (excluded)")
    ap.add_argument("--topic", metavar="WORD", help="only comments on posts in topics whose word contains WORD")
    ap.add_argument("--scorer", metavar="NAME", action="append", default=[],
                    help="a scorer whose levels to export, repeatable; only comments it scored "
                         "(default: every scorer but the human:* annotators, every comment)")
    ap.add_argument("--format", choices=("parquet", "csv"), default="parquet", help="default parquet")
    ap.add_argument("--with-text", action="store_true", help="include the comment texts")
    ap.add_argument("--stable-authors", action="store_true",
                    help="author keys derived from the salt, the same in every such export "
                         "(default: a fresh random key per export)")
    ap.add_argument("--time-precision", choices=PRECISIONS, default="hour", help="default hour")
    ap.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL, else the config's database.url)")
    ap.add_argument("--config", metavar="FILE", help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    a = ap.parse_args(argv)
    cfg = load_or_exit(a.config)
    url = resolve_sqlite_url(a.db, Path.cwd()) if a.db else cfg.database.url
    if a.since and a.until and a.since >= a.until:
        fail("--since is not before --until")
    engine = open_database(url)
    with engine.connect() as conn:
        known = list(conn.execute(sa.select(S.c.scorer).distinct()).scalars())
    unknown = [s for s in a.scorer if s not in known]
    if unknown:
        raise UsageError(f"no scores from scorer {unknown[0]!r}; known: {', '.join(sorted(known))}")
    scorers = a.scorer or sorted(s for s in known if not s.startswith(HUMAN))
    spec = Spec(Window(a.since, a.until, (a.topic or "").strip() or None), scorers, a.format,
                a.with_text, a.time_precision, stable=a.stable_authors, only_scored=bool(a.scorer))
    if a.stable_authors:
        from weibo_mh.config import load_salt

        try:
            spec.key = stable_key(load_salt(cfg))
        except ConfigError as e:
            raise UsageError(str(e)) from None
    cfg_hash = hashlib.sha256(cfg.dump().split("\n", 1)[1].encode()).hexdigest()
    m = export(engine, Path(a.out), spec, cfg_hash)
    for name, f in m["files"].items():
        print(f"wrote {Path(a.out) / name} (sha256 {f['sha256'][:12]}…)")
    print(f"wrote {Path(a.out) / 'manifest.json'}; {next(iter(m['row_counts'].values()))} rows, "
          f"scorers: {', '.join(m['scorers']) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
