"""Migration 12 widens crawl_runs.status's CHECK to take bad_cookie, on both engines, on a
database created before it (whose CHECK refuses the new status) as on a fresh one."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from weibo_mh import db

#: A CHECK violation: IntegrityError on SQLite, OperationalError 4025 on MariaDB.
REFUSED = (sa.exc.IntegrityError, sa.exc.OperationalError)
REASON = "(?i)check|ck_crawl_runs_status"
OLD = ("running", "ok", "failed", "login_required", "rate_limited", "timed_out")


def _insert(engine: sa.Engine, status: str) -> None:
    with engine.begin() as conn:
        conn.execute(db.crawl_runs.insert().values(started_at=db.now(), status=status, host="t"))


def _as_before_12(engine: sa.Engine) -> None:
    """The database as version 7 left it: the old CHECK, no version 12 row."""
    with engine.begin() as conn:
        db.replace_check(conn, "crawl_runs", "ck_crawl_runs_status", db._enum_sql("status", OLD))
        conn.execute(db.schema_version.delete().where(db.schema_version.c.version == 12))


def test_a_fresh_database_takes_bad_cookie(engine):
    _insert(engine, "bad_cookie")
    with pytest.raises(REFUSED, match=REASON):
        _insert(engine, "no_such_status")


def test_migration_12_upgrades_an_older_database(engine):
    _insert(engine, "ok")
    _as_before_12(engine)
    engine.dispose()  # other connections see the old table definition too
    with pytest.raises(REFUSED, match=REASON):
        _insert(engine, "bad_cookie")
    assert db.migrate(engine) == [12]
    engine.dispose()
    _insert(engine, "bad_cookie")
    with pytest.raises(REFUSED, match=REASON):
        _insert(engine, "no_such_status")
    with engine.connect() as conn:
        statuses = conn.execute(sa.select(db.crawl_runs.c.status).order_by(db.crawl_runs.c.id)).scalars().all()
    assert statuses == ["ok", "bad_cookie"]
    assert db.migrate(engine) == []


def test_a_narrower_condition_that_stored_rows_break_is_refused_and_changes_nothing(engine):
    _insert(engine, "bad_cookie")
    with pytest.raises((db.SchemaError, *REFUSED)):
        with engine.begin() as conn:
            db.replace_check(conn, "crawl_runs", "ck_crawl_runs_status", db._enum_sql("status", OLD))
    engine.dispose()
    _insert(engine, "bad_cookie")  # the wider condition is still there
    with pytest.raises(REFUSED, match=REASON):
        _insert(engine, "no_such_status")
