"""What retention and forget share: short retried transactions, the audit row, the printout."""

from __future__ import annotations

import getpass
import json
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from weibo_mh import db

T = TypeVar("T")


def transaction(engine: Engine, fn: Callable[[Connection], T], what: str) -> T:
    """``fn`` in one write transaction (BEGIN IMMEDIATE on SQLite), run again after a lost
    connection, a deadlock or a lock timeout (``db.retry_on_disconnect``)."""
    def run() -> T:
        with engine.connect() as conn:
            conn.execution_options(sqlite_begin="IMMEDIATE")
            with conn.begin():
                return fn(conn)
    return db.retry_on_disconnect(run, attempts=8, what=what)


def actor() -> str:
    """Who ran the command, as the console's audit rows name shell actions."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "?"
    return f"shell:{user}"[:64]


def audit(conn: Connection, action: str, target: str, detail: Mapping[str, Any]) -> None:
    """One audit_log row (counts and cut-offs only: never a text, never a raw id)."""
    conn.execute(db.audit_log.insert().values(
        at=db.now(), actor=actor(), action=action[:32], target=target[:191],
        detail=json.dumps(detail, ensure_ascii=False, sort_keys=True, default=str), ip=""))


def add_counts(total: dict[str, int], part: Mapping[str, int]) -> None:
    for k, v in part.items():
        total[k] = total.get(k, 0) + int(v)


#: The line under ``scores`` that says how many of them were human labels.
LABELS = "  of which human labels"


def lines(counts: Mapping[str, int], verb: str, width: int = 0) -> list[str]:
    """One line per table: ``  comments            1234 deleted``."""
    width = max([width, *(len(k) for k in counts)])
    return [f"  {k:<{width}}  {v:>9} {verb}".rstrip() for k, v in counts.items()]


def count(conn: Connection, query: Any) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar() or 0)


def chunks(values: Sequence[T], n: int = 500) -> Iterator[Sequence[T]]:
    for i in range(0, len(values), n):
        yield values[i:i + n]


def run_cli(body: Callable[[], int], what: str) -> int:
    """A command's body with database trouble as one line and exit status 2. Work already
    committed stays; both commands pick up where they stopped when run again."""
    try:
        return body()
    except db.SchemaError as e:
        print(f"error: {e}", file=sys.stderr)
    except sa.exc.SQLAlchemyError as e:
        print(f"error: {what} stopped ({db.short_error(e)}); what is done stays done, run it again "
              f"to finish", file=sys.stderr)
    return 2
