"""Every console write is one short write transaction that cannot be refused half-way.

SQLite: ``BEGIN IMMEDIATE`` takes the write lock before the first read, waiting up to the
busy timeout (``db.make_engine``: 30 s) for other writers, as the worker, the spider and
the rollups do. A plain ``BEGIN`` reads first and is refused ("database is locked") at its
first write whenever another writer committed in between, whatever the busy timeout.
MariaDB: InnoDB may pick our transaction as a deadlock victim (1213) or give up waiting for a
row lock (1205); the whole transaction is then run again, a few times, since nothing of it
was kept.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from weibo_mh import db

T = TypeVar("T")
#: MariaDB/MySQL errors after which the transaction was rolled back and may simply run again.
RETRY_CODES = (1205, 1213)
ATTEMPTS = 4


def write(engine: Engine, fn: Callable[[Connection], T]) -> T:
    """Run ``fn(conn)`` in one write transaction and commit; retried on a MariaDB deadlock or a
    dropped connection.

    ``fn`` must only touch the database (it may run more than once).
    """
    for attempt in range(ATTEMPTS):
        try:
            with engine.connect() as conn:
                conn.execution_options(sqlite_begin="IMMEDIATE")
                with conn.begin():
                    return fn(conn)
        except sa.exc.OperationalError as e:
            if attempt == ATTEMPTS - 1 or not retryable(e):
                raise
            time.sleep(0.02 * 2 ** attempt)
    raise AssertionError("unreachable")


def retryable(e: sa.exc.DBAPIError) -> bool:
    """A deadlock or lock-wait timeout (PyMySQL puts the code first in args, mysql-connector in
    errno), or a connection the server dropped (a restart: the pool's next connection is new).
    Not SQLite's "database is locked": that comes after the whole busy timeout already."""
    args: tuple[Any, ...] = tuple(getattr(e.orig, "args", ()))
    code = getattr(e.orig, "errno", None) or (args[0] if args else None)
    if code in RETRY_CODES:
        return True
    return db.is_disconnect(e) and "database is locked" not in str(e.orig).lower()
