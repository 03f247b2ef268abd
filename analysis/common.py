"""What every analysis script shares: its command line, the database, the window, the scorer.

Each script is ``python -m analysis.<name>`` with the same options (``--db``,
``--out``, ``--since``, ``--until``, ``--topic``, ``--scorer``, ``--format``) plus a
few of its own. Bad input ends with exit status 2 and one line on stderr, never a
traceback: analysts run these by hand and need to know what to fix.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn

import sqlalchemy as sa
from sqlalchemy import event

from analysis.window import Window
from weibo_mh import db
from weibo_mh.config import load_or_exit, mask_url

#: Text values read from SQLite that were not valid UTF-8 (decoded with U+FFFD instead).
INVALID_UTF8 = {"values": 0}


class UsageError(Exception):
    """Bad input the user must fix; printed as one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """argparse that reports errors as one line (plus a hint), exit status 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


DATE_HELP = ("YYYY-MM-DD, 'YYYY-MM-DD HH:MM' or a span back from now such as 7d or 12h "
             "(Asia/Shanghai time, like the database)")


def parse_when(text: str, *, end: bool = False) -> datetime:
    """A window bound: a date, a date and time, or ``Nd``/``Nh`` before now (Shanghai time).

    With ``end`` a bare date means the end of that day (the next midnight), so that
    ``--until 2026-11-03`` includes the 3rd.
    """
    t = text.strip()
    m = re.fullmatch(r"(\d+)([dh])", t)
    if m:
        n = int(m.group(1))
        return db.now() - (timedelta(days=n) if m.group(2) == "d" else timedelta(hours=n))
    for fmt in ("%Y-%m-%d", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%dT%H:%M:%S"):
        try:
            value = datetime.strptime(t, fmt)
        except ValueError:
            continue
        if fmt == "%Y-%m-%d" and end:
            value += timedelta(days=1)
        return value
    raise argparse.ArgumentTypeError(f"not a date: {text!r} (use {DATE_HELP})")


def _since(text: str) -> datetime:
    return parse_when(text)


def _until(text: str) -> datetime:
    return parse_when(text, end=True)


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def _level(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a level: {text!r} (0-10)") from None
    if not 0 <= n <= 10:
        raise argparse.ArgumentTypeError(f"level must be 0-10, got {n}")
    return n


def make_parser(prog: str, doc: str) -> Parser:
    """The shared options; scripts add their own with ``parser.add_argument``.

    ``doc`` is the script's docstring: its prose becomes the description, its indented
    ``python -m`` lines the examples.
    """
    paras = [p for p in doc.strip().split("\n\n") if p.strip()]
    examples = [p for p in paras if p.lstrip().startswith("python -m")]
    prose = [textwrap.fill(" ".join(p.split()), 79) for p in paras if p not in examples]
    epilog = "examples:\n" + "\n".join(examples) if examples else ""
    ap = Parser(prog=f"python -m analysis.{prog}", description="\n\n".join(prose), epilog=epilog,
                formatter_class=argparse.RawDescriptionHelpFormatter)
    g = ap.add_argument_group("common options")
    g.add_argument("--config", metavar="FILE",
                   help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    g.add_argument("--db", metavar="URL",
                   help="database URL (default: DATABASE_URL, else the config's database.url)")
    g.add_argument("--out", metavar="DIR", help="output folder (default: the config's analysis.out_dir)")
    g.add_argument("--since", metavar="WHEN", type=_since,
                   help=f"first comment time included; {DATE_HELP}")
    g.add_argument("--until", metavar="WHEN", type=_until,
                   help="last day included (a bare date includes that whole day), or an exact "
                        "time (excluded)")
    g.add_argument("--topic", metavar="WORD",
                   help="only comments on posts in topics whose word contains WORD")
    g.add_argument("--scorer", metavar="NAME",
                   help="scorer to chart, e.g. lexicon:v2 (default: the config's analysis.scorer, "
                        "else the scorer with the most scores)")
    g.add_argument("--exclude-uncertain", action="store_true",
                   help="leave out LLM scores flagged uncertain: the model put little probability on "
                        "the levels 0-10 (default: the config's analysis.exclude_uncertain)")
    g.add_argument("--format", choices=("png", "svg"), default="png", help="chart format (default png)")
    g.add_argument("--source", choices=("rollups", "raw"), default="rollups",
                   help="read the daily rollups (default; falls back to raw rows where they cannot "
                        "answer, e.g. --freq hour) or always the raw score rows")
    return ap


def add_threshold(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--threshold", type=_level, metavar="LEVEL",
                    help="suicide-risk level at or above which a comment counts as high risk / "
                         "an alert (default: the config's analysis.alert_threshold, 7)")


def add_freq(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--freq", choices=("day", "hour"), default="day",
                    help="time bucket for series (default day; Asia/Shanghai calendar)")


def add_top(ap: argparse.ArgumentParser, help_text: str) -> None:
    ap.add_argument("--top", type=_positive, metavar="N", help=help_text)


positive = _positive


@dataclass
class Context:
    """Everything a chart builder needs: an engine, the window, the scorer, where to write."""

    engine: sa.Engine
    url: str
    window: Window
    scorer: str | None
    scorers: dict[str, int]
    dimensions: tuple[str, ...]
    out: Path
    fmt: str = "png"
    freq: str = "day"
    threshold: int = 7
    top: int = 8
    source: str = "rollups"
    args: argparse.Namespace | None = None
    cfg: Any = None
    cache: dict[Any, Future] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def path(self, stem: str, ext: str | None = None) -> Path:
        """Where an output goes, inside --out. A symlink planted there is removed (never
        followed), so writing the file can never overwrite what the link points to."""
        prepare_out(self.out)
        p = self.out / f"{stem}.{ext or self.fmt}"
        if p.is_symlink():
            print(f"warning: {p} was a symlink; replaced by a file (its target is untouched)",
                  file=sys.stderr)
            p.unlink()
        elif p.is_dir():
            raise UsageError(f"cannot write {p}: a folder of that name is in the way")
        return p

    def query(self, key: Any, fn: Callable[[sa.Connection], Any]) -> Any:
        """Run an aggregate query once per process, on its own connection.

        The report reuses results across charts. Safe from several threads: a second
        caller of the same key waits for the first instead of querying again.
        """
        with self._lock:
            cached = self.cache.get(key)
            owner = cached is None
            fut: Future[Any] = Future() if cached is None else cached
            if owner:
                self.cache[key] = fut
        if owner:
            try:
                with self.engine.connect() as conn:
                    fut.set_result(fn(conn))
            except BaseException as e:
                fut.set_exception(e)
        return fut.result()

    def peek(self, key: Any) -> Any:
        """A result already computed, or None."""
        fut = self.cache.get(key)
        return fut.result() if fut is not None and fut.done() and not fut.exception() else None


def prepare_out(out: Path) -> None:
    """Create the output folder, or UsageError (one line, exit 2) when it cannot be used."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder: name a folder (it is created "
                         "if missing)")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UsageError(f"cannot create the output folder {out}: {e.strerror}") from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise UsageError(f"cannot write to the output folder {out}: permission denied "
                         "(read-only?); choose another with --out")


def atomic_write(path: Path, write: Callable[[Path], Any]) -> Path:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it onto ``path``.

    Readers never see half a file, and the rename replaces a symlink at ``path`` itself
    instead of writing through it to its target.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_csv(path: Path, frame: Any, **to_csv: Any) -> Path:
    """A DataFrame as CSV, atomically (``DataFrame.to_csv`` options pass through)."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, **to_csv))


def fail(message: str) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def open_database(url: str) -> sa.Engine:
    """Engine after the schema check (db.open_checked); failures become UsageError."""
    try:
        engine = db.open_checked(url)
    except db.SchemaError as e:
        raise UsageError(str(e)) from None
    except (sa.exc.SQLAlchemyError, ImportError) as e:
        raise UsageError(f"cannot open {mask_url(url)}: {str(e).splitlines()[0][:300]}") from None
    if engine.dialect.name in ("mysql", "mariadb"):
        engine.dispose()  # the checked connection predates the listener below
        event.listen(engine, "connect", _mariadb_whole_table_plans)
    elif engine.dialect.name == "sqlite":
        engine.dispose()
        event.listen(engine, "connect", _sqlite_lenient_text)
    return engine


def _decode_text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        INVALID_UTF8["values"] += 1
        return raw.decode("utf-8", "replace")


def _sqlite_lenient_text(dbapi_conn: Any, _record: Any) -> None:
    """Another tool may have written invalid UTF-8 into SQLite: read it with U+FFFD, counted."""
    dbapi_conn.text_factory = _decode_text


def _mariadb_whole_table_plans(dbapi_conn: Any, _record: Any) -> None:
    """MariaDB's "lateral derived" plans re-run a per-post GROUP BY once per topic row.

    That is quick for a few rows and minutes for a whole table (measured: over 5 min
    instead of 50 s for a million comments); our aggregates always read whole windows.
    """
    cur = dbapi_conn.cursor()
    try:
        cur.execute("SELECT VERSION()")
        if "mariadb" in str(cur.fetchone()[0]).lower():
            cur.execute("SET SESSION optimizer_switch='split_materialized=off'")
    finally:
        cur.close()


def build_context(args: argparse.Namespace) -> Context:
    """Resolve config, database, window and scorer from the parsed options."""
    from analysis import queries
    from analysis.fonts import setup_fonts

    cfg = load_or_exit(args.config)
    url = args.db or cfg.database.url
    if args.db:
        from weibo_mh.config import resolve_sqlite_url

        url = resolve_sqlite_url(args.db, Path.cwd())
    if args.since and args.until and args.since >= args.until:
        raise UsageError(f"--since ({args.since:%Y-%m-%d %H:%M}) is not before --until "
                         f"({args.until:%Y-%m-%d %H:%M})")
    engine = open_database(url)
    window = Window(args.since, args.until, (args.topic or "").strip() or None,
                    exclude_uncertain=bool(getattr(args, "exclude_uncertain", False)
                                           or cfg.analysis.exclude_uncertain))
    with engine.connect() as conn:
        if window.topic and not queries.topic_exists(conn, window.topic):
            raise UsageError(f"no topic word contains {window.topic!r}")
        scorers = queries.scorers(conn)
    scorer = args.scorer or cfg.analysis.scorer or None
    if scorer and scorers and scorer not in scorers:
        known = ", ".join(f"{k} ({v} scores)" for k, v in scorers.items())
        raise UsageError(f"no scores from scorer {scorer!r}; known: {known}")
    if not scorer and scorers:
        scorer = next(iter(scorers))  # ordered by number of scores
    dims: tuple[str, ...] = ()
    if scorer and scorer in scorers:
        with engine.connect() as conn:
            dims = queries.dimensions(conn, scorer)
    out = Path(args.out) if args.out else Path(cfg.analysis.out_dir)
    prepare_out(out)
    threshold = getattr(args, "threshold", None)
    top = getattr(args, "top", None)
    setup_fonts()
    return Context(engine=engine, url=url, window=window, scorer=scorer, scorers=scorers,
                   dimensions=dims, out=out, fmt=args.format, freq=getattr(args, "freq", "day"),
                   threshold=cfg.analysis.alert_threshold if threshold is None else threshold,
                   top=cfg.analysis.top_topics if top is None else top,
                   source=getattr(args, "source", "rollups"), args=args, cfg=cfg)


def run(main: Callable[[list[str] | None], int], argv: list[str] | None = None) -> int:
    """Call a script's main, turning bad input and database failures into exit status 2."""
    try:
        return main(argv)
    except UsageError as e:
        fail(str(e))
    except db.SchemaError as e:
        fail(str(e))
    except sa.exc.OperationalError as e:
        fail(f"database error: {str(getattr(e, 'orig', e)).splitlines()[0][:300]}")
    except OSError as e:  # a read-only folder, a full disk: one line, not a traceback
        where = f" {e.filename}" if e.filename else ""
        fail(f"cannot write{where}: {e.strerror or e}")
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def warn_invalid_utf8() -> None:
    n = INVALID_UTF8["values"]
    if n:
        print(f"warning: {n} text values in the database were not valid UTF-8; read with the bad "
              "bytes replaced by U+FFFD", file=sys.stderr)


def report_written(paths: list[Path], counts: dict[str, Any] | None = None) -> None:
    """Tell the user what was written and how much went into it."""
    for p in paths:
        print(f"wrote {p}")
    if counts:
        print("  " + ", ".join(f"{k}: {v}" for k, v in counts.items()))
