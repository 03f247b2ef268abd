"""The worker loop in-process: draining, truncation, odd texts, backend failures, metrics."""

from __future__ import annotations

import socket
import threading
import urllib.request

import pytest
import sqlalchemy as sa

from llm_worker.metrics import Metrics
from llm_worker.scoring.backends import REGISTRY, backend_class, make_backend
from llm_worker.scoring.backends.base import Backend
from weibo_mh import db
from weibo_mh.config import SPEC, ConfigError, load_config
from weibo_mh.rubric import CORE_DIMENSIONS, EXTENDED_DIMENSIONS
from weibo_mh.sanitize import clean_text

from .helpers import Picky, Raising, Recording, make_worker
from .seed import score_rows, seed, states


def test_once_drains_the_queue_in_batches(engine):
    seed(engine, 37)
    stats = make_worker(engine, Recording(), batch_size=8).run()
    assert (stats.claimed, stats.scored, stats.failed, stats.batches) == (37, 37, 0, 5)
    assert {s["score_status"] for s in states(engine).values()} == {"done"}
    assert len(score_rows(engine)) == 37 * len(CORE_DIMENSIONS)


def test_max_items_stops_early(engine):
    seed(engine, 20)
    stats = make_worker(engine, Recording(), batch_size=8, max_items=10).run()
    assert stats.claimed == 10
    assert sum(s["score_status"] == "pending" for s in states(engine).values()) == 10


def test_long_text_is_truncated_and_the_truncation_recorded(engine):
    ids = seed(engine, texts=["好" * 10_000, "短评论"])
    backend = Recording()
    make_worker(engine, backend, max_chars=100).run()
    assert sorted(len(i.text) for i in backend.seen) == [3, 100]
    flags = {(r["comment_id"], r["truncated"]) for r in score_rows(engine)}
    assert flags == {(ids[0], True), (ids[1], False)}


WEIRD = ["", "   ", "😀😂🎉🙏", "\x00\x07控制\x1b[31m字符\x7f", "a\u200b\u200d\ufeffb", "𠀀𪚥" * 3]


def test_odd_texts_are_scored_not_crashed_on(engine):
    seed(engine, texts=WEIRD)
    backend = Recording(rationale="理由\ud800含孤立代理")
    stats = make_worker(engine, backend).run()
    assert (stats.scored, stats.failed) == (len(WEIRD), 0)
    assert all("\x00" not in i.text and "\x1b" not in i.text for i in backend.seen)
    assert {r["rationale"] for r in score_rows(engine)} == {"理由\ufffd含孤立代理"}


def test_invalid_utf8_in_sqlite_does_not_stop_the_worker(sqlite_url):
    """Another tool may write bytes that are not UTF-8; the driver would refuse to read them."""
    eng = db.make_engine(sqlite_url)
    (cid,) = seed(eng, texts=["placeholder"])
    with eng.begin() as conn:
        conn.exec_driver_sql("UPDATE comments SET text = CAST(X'e4bda0ff41edb080' AS TEXT)")
    backend = Recording()
    assert make_worker(eng, backend).run().scored == 1
    assert backend.seen[0].text.startswith("你") and "\ufffd" in backend.seen[0].text
    eng.dispose()


def test_clean_text_mends_surrogates_and_controls():
    assert clean_text("a\ud83d\ude00b") == "a😀b"       # a pair split into code points
    assert clean_text("x\udc80y") == "x\ufffdy"         # a lone one
    assert clean_text("行1\n行2\t\r\x00") == "行1\n行2\t  "
    assert clean_text(b"\xe4\xbd\xa0\xff") == "你\ufffd"
    assert clean_text(None) == ""


def test_bad_answers_are_retried_then_failed_and_never_scored(engine):
    ids = seed(engine, texts=["正常", "坏答案", "烂答案"])
    stats = make_worker(engine, Picky(), max_attempts=3).run()
    st = states(engine)
    assert [st[i]["score_status"] for i in ids] == ["done", "failed", "failed"]
    assert [st[i]["attempts"] for i in ids] == [1, 3, 1]     # 烂 is final: no retry
    assert st[ids[1]]["last_output"].startswith("模型说") and st[ids[2]]["last_output"] == '{"x": 99}'
    assert {r["comment_id"] for r in score_rows(engine)} == {ids[0]}
    assert (stats.scored, stats.failed, stats.retried) == (1, 2, 2)


def test_a_backend_that_raises_does_not_kill_the_loop(engine):
    ids = seed(engine, 3)
    stats = make_worker(engine, Raising(), batch_size=3, max_attempts=2).run()
    assert stats.batch_errors == 2
    st = states(engine)
    assert all(st[i]["score_status"] == "failed" and "model server went away" in st[i]["last_error"]
               for i in ids)
    assert score_rows(engine) == []


def test_results_that_break_the_contract_become_errors(engine):
    class Sloppy(Recording):
        def score_batch(self, items):
            res = super().score_batch(items)
            del res[0].scores["suicide_risk"]
            res[1].scores["positivity"].value = 12
            return res

    ids = seed(engine, 3)
    make_worker(engine, Sloppy(), max_attempts=1).run()
    st = states(engine)
    assert [st[i]["score_status"] for i in ids] == ["failed", "failed", "done"]
    assert "missing dimensions: suicide_risk" in st[ids[0]]["last_error"]
    assert "positivity" in st[ids[1]]["last_error"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_metrics_endpoint_counts_claimed_scored_failed(engine):
    seed(engine, texts=["好", "坏", "好", "烂"])
    metrics = Metrics("picky:v1")
    port = _free_port()
    metrics.serve("127.0.0.1", port)
    try:
        make_worker(engine, Picky(), metrics=metrics, max_attempts=1).run()
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    finally:
        metrics.close()
    assert 'llm_worker_claimed_total{scorer="picky:v1"} 4.0' in body
    assert 'llm_worker_scored_total{scorer="picky:v1"} 2.0' in body
    assert 'llm_worker_failed_total{scorer="picky:v1"} 2.0' in body
    assert 'llm_worker_batch_seconds_count{scorer="picky:v1"} 1.0' in body
    assert 'llm_worker_queue_comments{state="pending"} 0.0' in body
    assert 'llm_worker_queue_comments{state="failed"} 2.0' in body


def test_stop_while_idle_returns_promptly(engine):
    worker = make_worker(engine, Recording(), once=False, idle_max=30)
    t = threading.Timer(0.3, worker.request_stop)
    t.start()
    stats = worker.run()
    t.join()
    assert stats.claimed == 0 and worker.stopping


# ---------------------------------------------------------------------- registry


def test_registry_builds_the_null_backend_with_the_rubric():
    cfg = load_config()
    b = make_backend("null", cfg, dimensions=EXTENDED_DIMENSIONS, model=None)
    assert isinstance(b, Backend) and b.name == "null:v1" and b.dimensions == EXTENDED_DIMENSIONS
    assert make_backend("null", cfg).dimensions == CORE_DIMENSIONS


def test_registry_names_every_backend_and_rejects_unknown_ones():
    assert set(REGISTRY) == {"lexicon", "classifier", "transformers", "openai", "null"}
    assert set(REGISTRY) == set(SPEC["worker"]["backend"].choices)
    with pytest.raises(ConfigError, match="unknown backend"):
        backend_class("gpt5")


# ---------------------------------------------------------------------- connection loss


@pytest.mark.mysql
def test_a_session_killed_mid_write_back_is_retried_without_loss(mysql_url):
    """Kill the worker's MySQL session from another connection in the middle of the write-back
    transaction: the transaction is retried on a new connection; nothing is lost or doubled."""
    eng = db.make_engine(mysql_url)
    admin = sa.create_engine(db.normalise_url(mysql_url))
    seed(eng, 20)
    kills = []

    @sa.event.listens_for(eng, "before_cursor_execute")
    def kill_once(conn, cursor, statement, params, context, executemany):
        if statement.startswith("INSERT INTO scores") and not kills:
            victim = conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
            with admin.connect() as a:
                a.exec_driver_sql(f"KILL CONNECTION {int(victim)}")
            kills.append(victim)

    stats = make_worker(eng, Recording(), batch_size=8).run()
    assert len(kills) == 1
    assert (stats.scored, stats.lost) == (20, 0)
    st = states(eng)
    assert {s["score_status"] for s in st.values()} == {"done"} and {s["attempts"] for s in st.values()} == {1}
    assert len(score_rows(eng)) == 20 * len(CORE_DIMENSIONS)
    admin.dispose()
    eng.dispose()


# ---------------------------------------------------------------------- progress


def test_progress_is_one_updating_line_on_a_terminal_and_key_values_otherwise(caplog):
    import io
    import logging

    from weibo_mh.progress import Progress, Stats

    stats = Stats(claimed=32, scored=30, failed=2)
    term = io.StringIO()
    p = Progress(stream=term, tty=True)
    p.update(stats, force=True)
    p.update(stats, force=True)
    assert term.getvalue().count("\r\x1b[K") == 2 and "\n" not in term.getvalue()
    assert "claimed 32  scored 30  failed 2" in term.getvalue() and "comments/s" in term.getvalue()

    with caplog.at_level(logging.INFO, logger="llm_worker"):
        quiet = io.StringIO()
        Progress(stream=quiet, tty=False).update(stats, force=True)
        Progress(stream=quiet, tty=False).finish(stats)
    assert quiet.getvalue() == ""
    assert "event=progress claimed=32 scored=30 failed=2" in caplog.text
    assert "event=summary claimed=32" in caplog.text


def test_once_gives_up_on_a_database_that_stays_broken(sqlite_url):
    """A --once run (cron) must not hang forever; a long-running worker keeps retrying."""
    eng = db.make_engine(sqlite_url)
    seed(eng, 2)
    with eng.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE comments RENAME TO comments_gone")
    worker = make_worker(eng, Recording())
    stats = worker.run()
    assert worker.gave_up and "no such table" in worker.gave_up and stats.claimed == 0
    eng.dispose()


@pytest.mark.mysql
@pytest.mark.parametrize("driver", ["pymysql", "mysqlconnector"])
def test_a_session_killed_while_idle_is_replaced(mysql_url, driver):
    """The worker keeps one connection between batches; killing it (from another session,
    as a DBA or a failover would) costs one retry, not the worker."""
    url = sa.make_url(mysql_url).set(drivername=f"mysql+{driver}")
    eng = db.make_engine(url.render_as_string(hide_password=False))
    admin = sa.create_engine(db.normalise_url(mysql_url))
    seed(eng, 12)
    worker = make_worker(eng, Recording(), batch_size=4)
    assert worker.step() == 4
    victim = worker.queue._conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar()
    worker.queue._conn.commit()
    with admin.connect() as a:
        a.exec_driver_sql(f"KILL CONNECTION {int(victim)}")
    assert worker.step() == 4 and worker.step() == 4
    st = states(eng)
    assert {s["score_status"] for s in st.values()} == {"done"} and {s["attempts"] for s in st.values()} == {1}
    worker.queue.close()
    admin.dispose()
    eng.dispose()


def test_a_full_disk_at_write_back_costs_no_attempt(sqlite_url):
    """SQLITE_FULL (a full disk; here max_page_count, set on the transaction begun after the
    batch was scored) is the database's state, not the comments' fault: the batch goes back
    with its attempt not counted, and the error goes up to run(), which waits."""
    full = []

    class FillsTheDisk(Recording):
        def score_batch(self, items):  # noqa: ANN001, ANN201 - test double
            full.append(True)
            return super().score_batch(items)

    def cap(conn: sa.Connection) -> None:   # the write-back's transaction only
        if full and full.pop():
            raw = conn.connection.dbapi_connection
            raw.execute(f"PRAGMA max_page_count = {raw.execute('PRAGMA page_count').fetchone()[0]}")

    def uncap(conn: sa.Connection) -> None:   # the disk has room again for what follows
        conn.connection.dbapi_connection.execute("PRAGMA max_page_count = 1073741823")

    eng = db.make_engine(sqlite_url)
    ids = seed(eng, 150)   # 600 new score rows need new pages
    sa.event.listen(eng, "begin", cap)
    sa.event.listen(eng, "rollback", uncap)
    worker = make_worker(eng, FillsTheDisk(), batch_size=150)
    with pytest.raises(sa.exc.DBAPIError) as got:
        worker.step()
    why = db.server_state_error(got.value)
    assert why and "full" in why
    worker.queue.close()
    st = states(eng)
    assert all(st[i]["score_status"] == "pending" and st[i]["attempts"] == 0 and not st[i]["last_error"]
               for i in ids)
    assert score_rows(eng) == []
    eng.dispose()


@pytest.mark.mysql
def test_a_write_the_database_refuses_counts_as_an_attempt(mysql_url):
    """MariaDB (strict mode) refuses a scorer name longer than the column: the comments must
    end up failed with the reason, not be claimed again and again."""
    class LongName(Recording):
        name = "x" * 200

    eng = db.make_engine(mysql_url)
    ids = seed(eng, 2)
    stats = make_worker(eng, LongName(), max_attempts=2).run()
    st = states(eng)
    assert all(st[i]["score_status"] == "failed" and "write-back refused" in st[i]["last_error"]
               for i in ids)
    assert stats.failed == 2 and score_rows(eng) == []
    eng.dispose()


@pytest.mark.mysql
@pytest.mark.slow
def test_a_database_restart_mid_scoring_loses_and_doubles_nothing(mysql_url, caplog):
    """The database goes away while the model scores (every connection cut, new ones refused
    for 2 s) and comes back: the worker reconnects, writes the batch once and carries on."""
    from .tcp_proxy import TcpProxy

    url = sa.make_url(mysql_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 3306)).start()
    eng = db.make_engine(url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))
    seed(eng, 30)

    class RestartDuringFirstBatch(Recording):
        def score_batch(self, items):
            if not self.seen:
                proxy.stop()
                threading.Timer(2.0, proxy.start).start()
            return super().score_batch(items)

    with caplog.at_level("WARNING", logger="weibo_mh.db"):
        stats = make_worker(eng, RestartDuringFirstBatch(), batch_size=10).run()
    assert "write back scores: connection lost" in caplog.text
    assert (stats.scored, stats.lost, stats.failed) == (30, 0, 0)
    st = states(eng)
    assert {s["score_status"] for s in st.values()} == {"done"} and {s["attempts"] for s in st.values()} == {1}
    assert len(score_rows(eng)) == 30 * len(CORE_DIMENSIONS)
    proxy.stop()
    eng.dispose()
