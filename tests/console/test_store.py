"""The console's tables on SQLite and MariaDB: migration, alert fill, the queue, triage, CSV."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa

from analysis.console import annotate, triage
from analysis.console.auth import User
from llm_worker.queue import Queue
from llm_worker.scoring.backends.base import DimensionScore, ScoreInput, ScoreResult
from llm_worker.worker import Worker
from tests.console.seed import MACHINE, REPEATER
from weibo_mh import db
from weibo_mh.alert_queue import fill_alerts, repeat_counts, update_repeats
from weibo_mh.rubric import CORE_DIMENSIONS, RUBRIC_VERSION

ANNA = User(1, "anna", "annotator")
BO = User(2, "bo", "annotator")
RUI = User(3, "rui", "responder")


def test_a_version_1_database_upgrades(db_url: str) -> None:
    eng = db.make_engine(db_url)
    console = {t.name for t in db.CONSOLE_TABLES} - {"scores"}
    with eng.begin() as conn:  # back to version 1: no console tables (5, 11), no outbox (9), no level index
        for name in ("notifications", "notify_channels"):  # version 9, whose outbox points at alerts
            conn.exec_driver_sql(f"DROP TABLE {name}")
        for name in ("console_sessions", "login_attempts", "audit_log", "alerts", "annotation_tasks",
                     "console_users"):
            conn.exec_driver_sql(f"DROP TABLE {name}")
        if db.is_sqlite(conn):
            conn.exec_driver_sql("DROP INDEX ix_scores_level")
        else:
            conn.exec_driver_sql("DROP INDEX ix_scores_level ON scores")
        conn.execute(db.schema_version.delete().where(db.schema_version.c.version > 1))
    assert db.current_version(eng) == 1
    assert 5 in db.migrate(eng)
    insp = sa.inspect(eng)
    assert console <= set(insp.get_table_names())
    assert "ix_scores_level" in {ix["name"] for ix in insp.get_indexes("scores")}
    assert db.migrate(eng) == []
    eng.dispose()


def test_fill_alerts_is_idempotent_and_counts_repeats(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        n = fill_alerts(conn, MACHINE, 7)
    # levels 7-10 among c00-c21 (twice each: 8), plus c22 at 9
    assert n == 9
    with seeded.begin() as conn:
        assert fill_alerts(conn, MACHINE, 7) == 0
        assert fill_alerts(conn, MACHINE, 6, comment_ids=["c06", "c17"]) == 2
        rows = conn.execute(sa.select(db.alerts.c.comment_id, db.alerts.c.repeat_count,
                                      db.alerts.c.state).where(db.alerts.c.author_hash == REPEATER)
                            .order_by(db.alerts.c.comment_time)).all()
    assert [(r.comment_id, r.repeat_count, r.state) for r in rows] == \
        [("c08", 1, "new"), ("c09", 2, "new"), ("c10", 3, "new")]



def test_update_repeats_recounts_every_alert(seeded: sa.Engine) -> None:
    A = db.alerts
    with seeded.begin() as conn:
        fill_alerts(conn, MACHINE, 6)
        want = dict(conn.execute(sa.select(A.c.id, A.c.repeat_count)).all())
        assert len(set(want.values())) > 1  # several counts: one UPDATE each
        conn.execute(A.update().where(A.c.author_hash.is_not(None)).values(repeat_count=99))
        authors = set(conn.execute(sa.select(A.c.author_hash).where(A.c.author_hash.is_not(None))).scalars())
        assert update_repeats(conn, authors) == len(want)
        assert dict(conn.execute(sa.select(A.c.id, A.c.repeat_count)).all()) == want
        assert update_repeats(conn, authors) == 0


def test_repeat_window() -> None:
    t = datetime(2026, 11, 1)
    got = repeat_counts([(1, t), (2, t + timedelta(days=3)), (3, t + timedelta(days=7)),
                         (4, t + timedelta(days=8))], days=7)
    assert got == {1: 1, 2: 2, 3: 3, 4: 3}  # day 0 has left the window of day 8


class Alarming:
    """Scores every comment at suicide risk 8."""

    name = "alarming:v1"
    dimensions = CORE_DIMENSIONS

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        return [ScoreResult(scores={d: DimensionScore(8 if d == "suicide_risk" else 0, 0.9)
                                    for d in self.dimensions}) for _ in items]

    def close(self) -> None:
        pass


def test_the_worker_fills_alerts_after_each_batch(seeded: sa.Engine) -> None:
    w = Worker(Queue(seeded, "w-test"), Alarming(), batch_size=4, once=True, alert_threshold=7)
    stats = w.run()
    assert stats.scored == 1  # c23, the only pending comment
    with seeded.connect() as conn:
        rows = conn.execute(sa.select(db.alerts.c.comment_id, db.alerts.c.scorer, db.alerts.c.level)).all()
    assert [tuple(r) for r in rows] == [("c23", "alarming:v1", 8)]


def test_queue_stratified_double_coded_label_skip_undo(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        out = annotate.fill(conn, "stratified", 11, actor="ada", scorer=MACHINE, share=0.5, seed=1)
        assert (out.comments, out.double_coded) == (11, 6)
        strata = conn.execute(sa.select(db.annotation_tasks.c.stratum)
                              .where(db.annotation_tasks.c.copy == 1)).scalars().all()
        assert sorted(strata) == list(range(11))  # one comment from every level
        again = annotate.fill(conn, "stratified", 100, actor="ada", scorer=MACHINE, share=0.0)
        assert again.comments == 23 - 11  # never a comment twice
        with pytest.raises(annotate.QueueError, match="no suicide_risk scores"):
            annotate.fill(conn, "stratified", 5, actor="ada", scorer="nobody:v0")
    with seeded.begin() as conn:
        t = annotate.current_task(conn, ANNA)
        assert t is not None
        assert t["topics"] == ["高考加油"]
        values = {"positivity": 3, "mood_disorder": 5, "substance_use": 0, "suicide_risk": 10}
        assert annotate.label(conn, ANNA, t["id"], values)
        assert not annotate.label(conn, BO, t["id"], values)  # not bo's task
        rows = conn.execute(sa.select(db.scores).where(db.scores.c.scorer == "human:anna")).all()
        assert {(r.dimension, r.value, r.rubric_version) for r in rows} == \
            {(d, v, RUBRIC_VERSION) for d, v in values.items()}
        t2 = annotate.current_task(conn, ANNA)
        assert t2 is not None
        assert annotate.skip(conn, ANNA, t2["id"])
        assert annotate.undo(conn, ANNA) == t2["comment_id"]  # the skip
        reopened = annotate.current_task(conn, ANNA)
        assert reopened is not None and reopened["id"] == t2["id"]
        assert annotate.label(conn, ANNA, t2["id"], values)
        assert annotate.undo(conn, ANNA) == t2["comment_id"]  # the label: its scores are gone
        left = conn.execute(sa.select(sa.func.count()).select_from(db.scores).where(
            db.scores.c.scorer == "human:anna", db.scores.c.comment_id == t2["comment_id"])).scalar()
        assert left == 0
    # double coding: the second copy goes to another annotator, never to the first one again
    with seeded.begin() as conn:
        mine: set[str] = {t["comment_id"], t2["comment_id"]}  # labelled, and undone, above
        while (t := annotate.current_task(conn, ANNA)) is not None:
            mine.add(t["comment_id"])
            annotate.label(conn, ANNA, t["id"], values)
        theirs: set[str] = set()
        while (t := annotate.current_task(conn, BO)) is not None:
            theirs.add(t["comment_id"])
            annotate.label(conn, BO, t["id"], values)
    assert len(mine) == 23 and len(theirs) == 6 and theirs <= mine


def test_queue_random_and_ids(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        assert annotate.fill(conn, "ids", 3, actor="ada", ids=["c05", "nope", "c05", "c07"],
                             share=0).comments == 2
        assert annotate.fill(conn, "random", 5, actor="ada", share=0).comments == 5
        assert annotate.queue_counts(conn) == {"open": 7}


def _act(conn: sa.Connection, aid: int, action: str, **kw: str) -> str:
    """A decision made on the alert as it is now (the form's seen token, as the page sends it)."""
    a = triage.get(conn, aid)
    assert a is not None
    return triage.act(conn, RUI, aid, action, seen=a["seen"], **kw)


def test_triage_states_and_csv(seeded: sa.Engine) -> None:
    with seeded.begin() as conn:
        fill_alerts(conn, MACHINE, 7)
        by_repeat = triage.page(conn, triage.OPEN, "repeat", 3)
        assert by_repeat[0]["comment_id"] == "c10" and by_repeat[0]["repeat_count"] == 3
        by_level = triage.page(conn, triage.OPEN, "level", 50)
        assert [r["level"] for r in by_level] == sorted((r["level"] for r in by_level), reverse=True)
        recent = triage.page(conn, triage.OPEN, "recent", 1)
        assert recent[0]["comment_id"] == "c22"
        aid = by_level[0]["id"]
        with pytest.raises(triage.TriageError, match="cannot escalate an alert that is new"):
            _act(conn, aid, "escalate")
        assert _act(conn, aid, "acknowledge") == "acknowledged"
        assert _act(conn, aid, "note", note="=HYPERLINK(\"http://x\")") == "acknowledged"
        assert _act(conn, aid, "escalate", note="called the team lead") == "escalated"
        assert _act(conn, aid, "resolve") == "resolved"
        with pytest.raises(triage.TriageError):
            _act(conn, aid, "dismiss")
        a = triage.get(conn, aid)
        assert a is not None
        assert a["assignee"] == "rui" and a["acknowledged_by"] == "rui" and a["closed_at"] is not None
        hist = [h["action"] for h in triage.history(conn, aid)]
        assert hist == ["alert_acknowledge", "alert_note", "alert_escalate", "alert_resolve"]
        text = "".join(triage.export_rows(conn, db.ALERT_STATES, "https://weibo.cn"))
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 9
    row = next(r for r in rows if r["alert_id"] == str(aid))
    assert row["state"] == "resolved"
    assert row["weibo_cn_url"] == f"https://weibo.cn/comment/P1#C_{row['comment_id']}"
    assert "'=HYPERLINK" not in row["notes"][:1] and row["notes"].startswith("[")


@pytest.mark.parametrize("cell,out", [("=1+1", "'=1+1"), ("+86", "'+86"), ("-2", "'-2"), ("@SUM(A1)", "'@SUM(A1)"),
                                      ("\tx", "'\tx"), ("ok", "ok"), (None, "")])
def test_csv_cells_never_start_a_formula(cell: str | None, out: str) -> None:
    assert triage.safe_cell(cell) == out
