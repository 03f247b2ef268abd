"""The spider's batched writes: a killed connection, a refused row, and a database that cannot
take any row (full disk, read-only, too many connections), on real SQLite and MariaDB."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
import sqlalchemy as sa
from weibo.store import DatabaseUnavailable, Store

from tests.reliability.faults import ThrowawayMariaDB, throwaway_server
from weibo_mh import db


def rows(n: int, mid: str = "Mkill01") -> tuple[dict, list[dict]]:
    now = db.now()
    post = {"mid": mid, "author_hash": "a" * 64, "author_raw": None, "text": "一条帖子",
            "created_at": datetime(2026, 11, 20, 12, 0), "reposts": 1, "comments_count": n, "likes": 2,
            "source": "iPhone", "first_scraped_at": now, "scraped_at": now, "full_text": True,
            "topics": ["一个话题"]}
    comments = [{"id": f"77{i:04d}", "mid": mid, "author_hash": "b" * 64, "author_raw": None,
                 "reply_to_hash": None, "text": f"第{i}条评论😭", "likes": i, "created_at": None,
                 "source": None, "first_scraped_at": now, "scraped_at": now} for i in range(n)]
    return post, comments


class KillOnce(Store):
    """Kills its own session from another connection in the middle of the first write."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.admin = db.make_engine(url)
        self.kills = 0

    def _write(self, conn, topics, posts, comments):  # noqa: ANN001 - test double
        result = super()._write(conn, topics, posts, comments)
        if self.kills == 0:
            self.kills += 1
            victim = conn.execute(sa.text("SELECT CONNECTION_ID()")).scalar()
            with self.admin.connect() as admin:
                admin.execute(sa.text(f"KILL {int(victim)}"))
        return result  # the commit after this fails: the whole batch is written again


@pytest.mark.mysql
def test_a_session_killed_mid_transaction_is_retried_without_loss_or_duplicates(mysql_url: str) -> None:
    store = KillOnce(mysql_url)
    store.start_run()
    post, comments = rows(30)
    store.add("post", post)
    for c in comments:
        store.add("comment", c)
    assert store.flush() == 31
    assert store.kills == 1
    assert store.counts()["comments_new"] == 30 and store.counts()["posts_new"] == 1
    with store.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.comments)).scalar() == 30
        assert conn.execute(sa.select(sa.func.count()).select_from(db.post_topics)).scalar() == 1
    store.admin.dispose()
    store.close()


def test_a_recrawl_updates_counts_but_not_scoring_state(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.start_run()
    post, comments = rows(3)
    store.add("post", post)
    for c in comments:
        store.add("comment", c)
    store.flush()
    with store.engine.begin() as conn:
        conn.execute(db.comments.update().values(score_status="done", attempts=1))
    again = Store(sqlite_url)
    again.start_run()
    post2, comments2 = rows(3)
    comments2[0]["likes"] = 50
    comments2[1]["ip_location"] = "上海"   # a location never moves: the rollups count scores by it
    post2.update(full_text=False, text="摘要…")        # an excerpt never overwrites a stored text
    again.add("post", post2)
    for c in comments2:
        again.add("comment", c)
    again.flush()
    assert again.counts() == {"topics": 0, "posts_new": 0, "posts_updated": 1,
                              "comments_new": 0, "comments_updated": 3}
    with again.engine.connect() as conn:
        assert conn.execute(sa.select(db.posts.c.text)).scalar() == "一条帖子"
        got = conn.execute(sa.select(db.comments.c.likes, db.comments.c.score_status, db.comments.c.ip_location)
                           .order_by(db.comments.c.id)).all()
    assert [tuple(r) for r in got] == [(50, "done", None), (1, "done", None), (2, "done", None)]
    store.close()
    again.close()


# ----------------------------------------------------------------- the database's state, not the rows'
# A full disk, a read-only server or too many connections refuse every row: writing them one by
# one would drop them all. They are kept, the error says why, and the next flush writes them once.


def fill(store: Store, n: int, mid: str = "Mstate1", size: int = 10) -> int:
    post, comments = rows(n, mid)
    store.add("post", post)
    for c in comments:
        c["text"] = c["text"] * size
        store.add("comment", c)
    return n + 1


def stored(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.execute(sa.select(sa.func.count()).select_from(db.posts)).scalar() or 0,
                conn.execute(sa.select(sa.func.count()).select_from(db.comments)).scalar() or 0)


def test_one_rejected_row_is_dropped_and_counted_and_the_others_written(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.start_run()
    n = fill(store, 5)
    orphan = dict(rows(1, "NO_SUCH_POST")[1][0], id="ORPHAN")   # its post does not exist: a foreign key
    store.add("comment", orphan)
    assert store.flush() == n
    assert store.dropped == {"comment_rejected_by_database": 1} and store.pending() == 0
    assert stored(store.engine) == (1, 5)
    store.close()


def with_pragma(store: Store, pragma: list[str]) -> None:
    """Every new connection of the store's engine runs ``pragma[0]`` (changeable by the test)."""
    sa.event.listen(store.engine, "connect", lambda dbapi_conn, _rec: dbapi_conn.execute(pragma[0]))
    store.engine.dispose()  # the pooled connections do not have it yet


def test_a_full_sqlite_disk_drops_nothing_and_the_rows_go_in_once_there_is_room(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.start_run()
    with store.engine.connect() as conn:
        pages = int(conn.exec_driver_sql("PRAGMA page_count").scalar() or 0)
    pragma = [f"PRAGMA max_page_count={pages + 2}"]   # a real SQLITE_FULL, as on a full disk
    with_pragma(store, pragma)
    n = fill(store, 40, size=60)
    with pytest.raises(DatabaseUnavailable, match="disk full") as err:
        store.flush()
    assert "database or disk is full" in str(err.value) and "kept for the next flush" in str(err.value)
    assert store.pending() == n and not store.dropped and store.rows_written == 0
    assert stored(store.engine) == (0, 0)
    pragma[0] = "PRAGMA max_page_count=1073741823"   # space freed
    store.engine.dispose()
    assert store.flush() == n
    assert store.flush() == 0 and store.pending() == 0 and not store.dropped
    assert stored(store.engine) == (1, 40) and store.counts()["comments_new"] == 40
    store.close()


def test_a_read_only_sqlite_file_drops_nothing(sqlite_url: str) -> None:
    store = Store(sqlite_url)
    store.start_run()
    pragma = ["PRAGMA query_only=ON"]   # "attempt to write a readonly database" (SQLITE_READONLY)
    with_pragma(store, pragma)
    n = fill(store, 3)
    with pytest.raises(DatabaseUnavailable, match="read-only"):
        store.flush()
    assert store.pending() == n and not store.dropped
    pragma[0] = "PRAGMA query_only=OFF"
    store.engine.dispose()
    assert store.flush() == n and stored(store.engine) == (1, 3)
    store.close()


def test_a_disk_that_fills_during_row_by_row_keeps_the_rest(sqlite_url: str) -> None:
    """A batch refused for one bad row; while its rows go in one by one, the disk fills."""
    store = Store(sqlite_url)
    store.start_run()
    begins = [0]

    @sa.event.listens_for(store.engine, "begin")
    def _fill_the_disk(conn: sa.Connection) -> None:
        begins[0] += 1   # 1: the batch, 2: the post alone, 3: the first comment alone
        if begins[0] == 3:
            pages = conn.exec_driver_sql("PRAGMA page_count").scalar()
            conn.exec_driver_sql(f"PRAGMA max_page_count={pages}")   # no page more: SQLITE_FULL
        elif begins[0] > 3:
            conn.exec_driver_sql("PRAGMA max_page_count=1073741823")

    fill(store, 4, size=400)
    store.add("comment", dict(rows(1, "NO_SUCH_POST")[1][0], id="ORPHAN"))
    with pytest.raises(DatabaseUnavailable, match="disk full.*5 rows are kept"):
        store.flush()
    assert store.pending() == 5 and not store.dropped and store.rows_written == 1
    assert stored(store.engine) == (1, 0)
    assert store.flush() == 4   # the next flush: the orphan alone is dropped
    assert store.dropped == {"comment_rejected_by_database": 1} and store.pending() == 0
    assert stored(store.engine) == (1, 4) and store.rows_written == 5
    store.close()


@pytest.fixture(scope="module")
def throwaway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ThrowawayMariaDB]:
    """A private MariaDB: these tests make it read-only and short of connections."""
    if not ThrowawayMariaDB.available():
        pytest.skip("mariadb-install-db / mariadbd not installed (apt-get install mariadb-server)")
    with throwaway_server(tmp_path_factory.mktemp("mariadb")) as m:
        yield m


@pytest.fixture
def limited(throwaway: ThrowawayMariaDB) -> Iterator[tuple[str, sa.Engine]]:
    """A migrated database and a user without SUPER (read_only and max_connections apply to it)."""
    name = f"wmh_{uuid.uuid4().hex[:8]}"
    throwaway.new_database(name)
    admin = sa.create_engine(throwaway.server_url(), poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER `{name}`@'127.0.0.1' IDENTIFIED BY 'pw'")
        conn.exec_driver_sql(f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{name}`.* TO `{name}`@'127.0.0.1'")
    try:
        yield f"mysql+pymysql://{name}:pw@127.0.0.1:{throwaway.port}/{name}?charset=utf8mb4", admin
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql("SET GLOBAL read_only=0")
            conn.exec_driver_sql("SET GLOBAL max_connections=151")
            conn.exec_driver_sql(f"DROP USER `{name}`@'127.0.0.1'")
        admin.dispose()


@pytest.mark.mysql
def test_a_read_only_server_drops_nothing_and_the_rows_go_in_once_when_writable(limited) -> None:
    url, admin = limited
    store = Store(url)
    store.start_run()
    n = fill(store, 30)
    with admin.connect() as conn:
        conn.exec_driver_sql("SET GLOBAL read_only=1")
    with pytest.raises(DatabaseUnavailable, match="read-only") as err:
        store.flush()
    assert "1290" in str(err.value)
    assert store.pending() == n and not store.dropped and store.db_errors == 0
    assert stored(store.engine) == (0, 0)
    with admin.connect() as conn:
        conn.exec_driver_sql("SET GLOBAL read_only=0")
    assert store.flush() == n and store.flush() == 0
    assert stored(store.engine) == (1, 30) and not store.dropped
    assert store.counts()["comments_new"] == 30
    store.close()


@pytest.mark.mysql
def test_too_many_connections_drops_nothing_and_the_rows_go_in_when_one_frees_up(limited) -> None:
    import pymysql

    url, admin = limited
    store = Store(url)
    store.start_run()
    n = fill(store, 30)
    u = sa.make_url(url)
    held: list[pymysql.Connection] = []
    with admin.connect() as conn:
        conn.exec_driver_sql("SET GLOBAL max_connections=3")
    try:
        store.engine.dispose()   # its pooled connection closes; the next one must be new
        for _ in range(10):      # take every connection the server still allows
            try:
                held.append(pymysql.connect(host=u.host, port=u.port, user=u.username, password="pw",
                                            database=u.database))
            except pymysql.err.OperationalError as e:
                assert e.args[0] == 1040
                break
        with pytest.raises(DatabaseUnavailable, match="too many connections") as err:
            store.flush()
        assert "1040" in str(err.value)
        assert store.pending() == n and not store.dropped
    finally:
        for c in held:
            c.close()
        with admin.connect() as conn:
            conn.exec_driver_sql("SET GLOBAL max_connections=151")
    assert store.flush() == n and store.flush() == 0
    assert stored(store.engine) == (1, 30) and not store.dropped
    store.close()


@pytest.mark.mysql
def test_row_errors_and_server_state_errors_are_told_apart_by_mariadb_code(mysql_url: str) -> None:
    """Real errors of the shared server: the rows' own faults get None, the server's a reason."""
    eng = db.make_engine(mysql_url)
    now = db.now()
    post = {"mid": "Mclass1", "text": "x", "first_scraped_at": now, "scraped_at": now}

    def error_of(sql: str, params: dict | None = None) -> sa.exc.DBAPIError:
        with eng.connect() as conn, pytest.raises(sa.exc.DBAPIError) as err:
            conn.execute(sa.text(sql) if params is None else db.posts.insert(), params or {})
        return err.value

    with eng.begin() as conn:
        conn.execute(db.posts.insert(), post)
    duplicate = error_of("", post)                                             # 1062
    too_long = error_of("", dict(post, mid="M" * 40))                           # 1406
    orphan = error_of("INSERT INTO comments (id, mid, text, first_scraped_at, scraped_at) "
                      "VALUES ('c1', 'NO_SUCH_POST', 'x', NOW(), NOW())")       # 1452
    no_table = error_of("INSERT INTO no_such_table VALUES (1)")                 # 1146
    assert [e.orig.args[0] for e in (duplicate, too_long, orphan, no_table)] == [1062, 1406, 1452, 1146]
    assert [db.server_state_error(e) for e in (duplicate, too_long, orphan)] == [None, None, None]
    assert "run python -m weibo_mh.db migrate" in (db.server_state_error(no_table) or "")
    eng.dispose()
