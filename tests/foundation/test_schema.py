"""The schema: one source of truth, created the same on SQLite and MariaDB, upgraded idempotently."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT
from weibo_mh import db

TABLES = set(db.metadata.tables)  # every table of the code's metadata


def test_schema_sql_matches_the_code():
    """sql/schema.sql is generated from weibo_mh/db.py; regenerate with `make schema`."""
    on_disk = (ROOT / "sql" / "schema.sql").read_text(encoding="utf-8")
    assert on_disk == db.mysql_ddl(), "sql/schema.sql drifted from weibo_mh/db.py: run `make schema`"


def test_schema_sql_runs_on_mariadb(mysql_server):
    """The committed DDL itself is valid MySQL/MariaDB and yields the same tables and columns."""
    from tests.conftest import create_mysql_database, drop_mysql_database

    name, admin = create_mysql_database(mysql_server, prefix="wmh_ddl")
    try:
        eng = sa.create_engine(mysql_server.set(database=name))
        with eng.begin() as conn:
            for stmt in (ROOT / "sql" / "schema.sql").read_text(encoding="utf-8").split(";\n"):
                body = "\n".join(ln for ln in stmt.splitlines() if not ln.startswith("--")).strip()
                if body:
                    conn.exec_driver_sql(body)
        insp = sa.inspect(eng)
        assert set(insp.get_table_names()) == TABLES
        for table in db.metadata.sorted_tables:
            assert {c["name"] for c in insp.get_columns(table.name)} == set(table.c.keys())
        assert db.current_version(eng) == db.SCHEMA_VERSION
        eng.dispose()
    finally:
        drop_mysql_database(admin, name)


def test_tables_exist_on_both_engines(engine):
    insp = sa.inspect(engine)
    assert TABLES <= set(insp.get_table_names())
    cols = {c["name"] for c in insp.get_columns("comments")}
    assert {"score_status", "claimed_by", "lease_until", "attempts", "last_error"} <= cols
    assert db.current_version(engine) == db.SCHEMA_VERSION


def test_mysql_tables_are_innodb_utf8mb4(mysql_url):
    eng = db.make_engine(mysql_url)
    with eng.connect() as conn:
        rows = conn.execute(sa.text(
            "SELECT table_name, engine, table_collation FROM information_schema.tables "
            "WHERE table_schema = DATABASE()")).all()
    eng.dispose()
    assert {r[0] for r in rows} == TABLES
    for name, engine_name, collation in rows:
        assert engine_name == "InnoDB", name
        assert collation.startswith("utf8mb4"), name


def test_migrate_twice_does_nothing(engine):
    assert db.migrate(engine) == []
    with engine.connect() as conn:
        n = conn.execute(sa.select(sa.func.count()).select_from(db.schema_version)).scalar()
        assert n == len(db.MIGRATIONS)  # one row per migration applied


def test_migrate_cli_is_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    cmd = [sys.executable, "-m", "weibo_mh.db", "migrate", "--db", url]
    first = subprocess.run(cmd, capture_output=True, text=True, check=True)
    second = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert "migrated" in first.stdout
    assert "nothing to do" in second.stdout


def test_services_refuse_an_older_schema(tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    eng = db.make_engine(url)
    with pytest.raises(db.SchemaError, match="migrate"):
        db.check_schema(eng)
    db.migrate(eng)
    with eng.begin() as conn:  # pretend the database was made by an older release
        conn.execute(sa.delete(db.schema_version).where(db.schema_version.c.version > 1))
    with pytest.raises(db.SchemaError, match=f"needs version {db.SCHEMA_VERSION}"):
        db.check_schema(eng)
    eng.dispose()


def test_bad_url_is_a_clear_error():
    out = subprocess.run([sys.executable, "-m", "weibo_mh.db", "status", "--db", "nosuch://x"],
                         capture_output=True, text=True)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr


def _post(mid: str, text: str = "帖子正文", likes: int = 0) -> dict:
    t = db.now()
    return {"mid": mid, "author_hash": "a" * 64, "text": text, "created_at": t, "likes": likes,
            "reposts": 0, "comments_count": 0, "source": "微博 weibo.com", "first_scraped_at": t,
            "scraped_at": t}


def test_four_byte_utf8_round_trip(engine):
    """Chinese text with emoji (4-byte UTF-8) survives on both engines."""
    text = "今天好难过😭 但还是谢谢大家🙏🏻 𠮷野家"
    with engine.begin() as conn:
        db.upsert(conn, db.posts, [_post("M1", text)], update=["text"])
    with engine.connect() as conn:
        assert conn.execute(sa.select(db.posts.c.text)).scalar() == text


@pytest.mark.mysql
def test_mysqlconnector_driver_round_trip(mysql_url):
    """Both MySQL drivers work through the URL."""
    url = sa.make_url(mysql_url).set(drivername="mysql+mysqlconnector").render_as_string(hide_password=False)
    eng = db.make_engine(url)
    db.check_schema(eng)
    text = "连接器也能存表情🥲"
    with eng.begin() as conn:
        db.upsert(conn, db.posts, [_post("M2", text)], update=["text"])
    with eng.connect() as conn:
        assert conn.execute(sa.select(db.posts.c.text).where(db.posts.c.mid == "M2")).scalar() == text
    eng.dispose()


def test_upsert_is_idempotent_and_counts(engine):
    with engine.begin() as conn:
        assert db.upsert(conn, db.posts, [_post("M1"), _post("M2")], update=["likes"]) == (2, 0)
    with engine.begin() as conn:
        assert db.upsert(conn, db.posts, [_post("M1", likes=5), _post("M3")], update=["likes"]) == (1, 1)
    with engine.begin() as conn:  # the same batch again changes nothing
        assert db.upsert(conn, db.posts, [_post("M1", likes=5), _post("M3")], update=["likes"]) == (0, 2)
    with engine.connect() as conn:
        rows = dict(conn.execute(sa.select(db.posts.c.mid, db.posts.c.likes)).all())
    assert rows == {"M1": 5, "M2": 0, "M3": 0}


def test_upsert_keeps_columns_not_named(engine):
    """A re-crawl updates counts but never resets a comment's scoring state."""
    t = db.now()
    comment = {"id": "C1", "mid": "M1", "text": "评论", "likes": 1, "first_scraped_at": t, "scraped_at": t}
    with engine.begin() as conn:
        db.upsert(conn, db.posts, [_post("M1")], update=["likes"])
        db.upsert(conn, db.comments, [comment], update=["likes", "scraped_at"])
        conn.execute(sa.update(db.comments).values(score_status="done", attempts=1))
    with engine.begin() as conn:
        db.upsert(conn, db.comments, [{**comment, "likes": 9}], update=["likes", "scraped_at"])
    with engine.connect() as conn:
        row = conn.execute(sa.select(db.comments)).mappings().one()
    assert (row["likes"], row["score_status"], row["attempts"]) == (9, "done", 1)


def test_times_are_shanghai_wall_clock():
    from datetime import UTC

    aware = datetime(2026, 1, 1, 16, 30, tzinfo=UTC)
    assert db.to_db_time(aware) == datetime(2026, 1, 2, 0, 30)
