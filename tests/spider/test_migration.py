"""Migration 3 (the spider's columns) upgrades a database made at version 1 and keeps its rows."""

from __future__ import annotations

import sqlalchemy as sa

from weibo_mh import db

NEW = {"posts": {"ip_location", "is_retweet"},
       "comments": {"ip_location", "is_hot", "root_id", "reply_to_id"},
       "topic_snapshots": {"label"}}


def v1_metadata() -> sa.MetaData:
    """Today's tables without the columns migration 3 adds: the version-1 schema."""
    old = sa.MetaData()
    for table in db.metadata.sorted_tables:
        copy = table.to_metadata(old)
        for name in NEW.get(table.name, ()):
            copy._columns.remove(copy.c[name])
    return old


def test_a_version_1_database_upgrades_to_the_spider_columns(db_url: str) -> None:
    eng = db.make_engine(db_url)
    with eng.begin() as conn:   # start again from an empty database, then build version 1
        if not db.is_sqlite(conn):
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 0")
        db.metadata.drop_all(conn)
        if not db.is_sqlite(conn):
            conn.exec_driver_sql("SET FOREIGN_KEY_CHECKS = 1")
    v1 = v1_metadata()
    now = db.now()
    with eng.begin() as conn:
        v1.create_all(conn)
        conn.execute(v1.tables["schema_version"].insert().values(version=1, applied_at=now,
                                                                 description="initial schema"))
        conn.execute(v1.tables["posts"].insert().values(mid="1", text="旧帖子", first_scraped_at=now,
                                                        scraped_at=now))
        conn.execute(v1.tables["comments"].insert().values(id="2", mid="1", text="旧评论",
                                                           first_scraped_at=now, scraped_at=now))
    assert db.current_version(eng) == 1
    assert "is_hot" not in {c["name"] for c in sa.inspect(eng).get_columns("comments")}
    assert db.migrate(eng) == [v for v in sorted(db.MIGRATIONS) if v > 1]
    insp = sa.inspect(eng)
    for table, cols in NEW.items():
        assert cols <= {c["name"] for c in insp.get_columns(table)}, table
    with eng.connect() as conn:
        row = conn.execute(sa.select(db.comments.c.text, db.comments.c.is_hot, db.comments.c.ip_location,
                                     db.comments.c.root_id)).one()
        assert tuple(row) == ("旧评论", False, None, None)
        assert conn.execute(sa.select(db.posts.c.is_retweet)).scalar() is False
    db.check_schema(eng)
    eng.dispose()
