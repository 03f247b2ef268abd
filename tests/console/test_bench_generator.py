"""bench/bench_console.py generates the same rows on SQLite and on MariaDB.

The benchmark's SQLite and MySQL figures are only comparable if both databases hold the
same data, so the two generators are run side by side on a small size and compared row by
row (the indexes too: the generator loads MariaDB with its checks off).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from weibo_mh import db

ROOT = Path(__file__).resolve().parents[2]
N = 2000


def _bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_console", ROOT / "bench" / "bench_console.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_console", mod)
    spec.loader.exec_module(mod)
    return mod


def _rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    eng = db.make_engine(url)
    out: dict[str, list[tuple[Any, ...]]] = {}
    with eng.connect() as conn:
        for t in (db.topics, db.posts, db.post_topics, db.comments, db.scores):
            pk = list(t.primary_key.columns)
            rows = conn.execute(sa.select(t).order_by(*pk)).all()
            out[t.name] = [tuple(round(v, 4) if isinstance(v, float) else v for v in r) for r in rows]
    eng.dispose()
    return out


def _indexes(url: str) -> dict[str, set[Any]]:
    eng = db.make_engine(url)
    insp = sa.inspect(eng)
    out = {t: {(ix["name"], tuple(ix["column_names"])) for ix in insp.get_indexes(t)}
           for t in ("comments", "scores")}
    eng.dispose()
    return out


def test_sqlite_generator_sizes(sqlite_url: str) -> None:
    bench = _bench()
    bench.generate(sqlite_url, N)
    rows = _rows(sqlite_url)
    assert len(rows["topics"]) == 50
    assert len(rows["posts"]) == len(rows["post_topics"]) == N // 50
    assert len(rows["comments"]) == N
    machine = [r for r in rows["scores"] if r[2] == bench.MACHINE]
    humans = [r for r in rows["scores"] if r[2].startswith("human:")]
    assert len(machine) == 4 * N
    assert len(humans) == 4 * 2000  # h1 1,200 comments, h2 800, on all four scales


@pytest.mark.mysql
def test_mysql_generator_writes_the_sqlite_rows(sqlite_url: str, mysql_url: str) -> None:
    bench = _bench()
    bench.generate(sqlite_url, N)
    bench.generate(mysql_url, N)
    want, got = _rows(sqlite_url), _rows(mysql_url)
    for table in want:
        assert got[table] == want[table], table
    assert _indexes(mysql_url) == _indexes(sqlite_url)  # same index names and columns
    # the load switched the checks off for its session only: a fresh connection has them on
    eng = db.make_engine(mysql_url)
    with eng.connect() as conn:
        assert conn.exec_driver_sql("SELECT @@foreign_key_checks, @@unique_checks").one() == (1, 1)
        # ids are zero-padded like SQLite's printf and never cut, however many there are
        pad = bench.Dialect("mysql").pad("p", "i", 6)
        got_ids = conn.exec_driver_sql(f"SELECT {pad} FROM (SELECT seq AS i FROM seq_0_to_0 "
                                       "UNION ALL SELECT 1234567) AS k ORDER BY i").scalars().all()
        assert got_ids == ["p000000", "p1234567"]
    eng.dispose()
