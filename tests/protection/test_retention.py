"""``weibo-mh retention`` on SQLite and MariaDB: old texts go with the charts unchanged, old
rows go with the rollups still equal to a rebuild under the same rule, batches let a worker
work meanwhile."""

from __future__ import annotations

import threading
from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from llm_worker.queue import Queue
from llm_worker.scoring.backends.base import DimensionScore, ScoreResult
from tests.protection.helpers import column, rebuilt_report, report_files, scalar, seeded
from weibo_mh import db, rollups
from weibo_mh.protection import retention
from weibo_mh.rubric import CORE_DIMENSIONS

CONFIG = "configs/default.toml"


def days_to(day: date) -> int:
    """--...-older-than DAYS whose cut-off is ``day``'s midnight."""
    return (db.now().date() - day).days


@pytest.mark.slow
def test_texts_retention_keeps_every_figure_and_no_old_text(db_url, tmp_path, capsys):
    seeded(db_url)
    before = report_files(db_url, tmp_path / "before", capsys)
    snapshot = _snapshot(db_url)
    days = days_to(date(2026, 11, 3))  # c1-c6 are older; c7 (11-03, pending) is not
    assert retention.main(["--db", db_url, "--config", CONFIG, "--texts-older-than", str(days),
                           "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "comments.text" in out and "would be emptied" in out
    assert column(db_url, "SELECT id FROM comments WHERE text = '' ORDER BY id") == []
    assert retention.main(["--db", db_url, "--config", CONFIG, "--texts-older-than", str(days)]) == 0
    out = capsys.readouterr().out
    assert " 6 emptied" in out.split("comments.text")[1].splitlines()[0]
    assert column(db_url, "SELECT id FROM comments WHERE text <> '' ORDER BY id") == ["c7"]
    assert column(db_url, "SELECT mid FROM posts WHERE text <> ''") == []   # posts of 10-31
    assert scalar(db_url, "SELECT COUNT(*) FROM comments") == 7
    after = report_files(db_url, tmp_path / "after", capsys)
    # every chart's data and the counts are as they were; only the alert table's texts went
    texts = {k for k in before if k.startswith("alerts")}
    assert {k: v for k, v in after.items() if k not in texts} == \
        {k: v for k, v in before.items() if k not in texts}
    assert "药已经准备好了" in before["alerts.md"] and "药已经准备好了" not in after["alerts.md"]
    assert _snapshot(db_url) == snapshot
    eng = db.make_engine(db_url)
    assert rollups.verify(eng) == []
    assert scalar(db_url, "SELECT COUNT(*) FROM audit_log WHERE action = 'retention'") == 1
    # nothing requeues a comment without its text: a scorer would overwrite real levels with
    # the levels of an empty string
    from llm_worker.queue import requeue_done, requeue_failed

    assert requeue_failed(eng) == 0 and requeue_done(eng) == 0
    eng.dispose()


def _snapshot(url: str) -> dict:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        out = rollups.snapshot(conn)
    eng.dispose()
    return out


@pytest.mark.slow
def test_rows_retention_keeps_the_days_counts_and_verify_agrees(db_url, tmp_path, capsys):
    seeded(db_url)
    before = report_files(db_url, tmp_path / "before", capsys)
    days = days_to(date(2026, 11, 2))   # c1, c2, c3 (11-01) go
    assert retention.main(["--db", db_url, "--config", CONFIG, "--rows-older-than", str(days),
                           "--dry-run"]) == 0
    dry = capsys.readouterr().out
    want = {"comments": 3, "scores": 2 * 4 * 3 + 1, "  of which human labels": 1, "alerts": 1,
            "annotation_tasks": 1, "risk_scores": 2, "posts": 0}
    for table, n in want.items():
        assert any(line.strip().startswith(table.strip()) and line.rstrip().endswith(f" {n} would be deleted")
                   for line in dry.splitlines()), (table, dry)
    assert scalar(db_url, "SELECT COUNT(*) FROM comments") == 7   # a dry run changes nothing
    assert retention.main(["--db", db_url, "--config", CONFIG, "--rows-older-than", str(days)]) == 0
    real = capsys.readouterr().out
    for table, n in want.items():
        assert any(line.strip().startswith(table.strip()) and line.rstrip().endswith(f" {n} deleted")
                   for line in real.splitlines()), (table, real)
    assert column(db_url, "SELECT id FROM comments ORDER BY id") == ["c4", "c5", "c6", "c7"]
    assert column(db_url, "SELECT comment_id FROM alerts") == ["c4"]
    assert scalar(db_url, "SELECT COUNT(*) FROM annotation_tasks") == 0
    assert scalar(db_url, "SELECT COUNT(*) FROM scores WHERE comment_id IN ('c1', 'c2', 'c3')") == 0
    eng = db.make_engine(db_url)
    assert rollups.verify(eng) == []
    assert rollups.main(["verify", "--db", db_url, "--config", CONFIG]) == 0
    said = capsys.readouterr().out
    assert "rollups equal the raw rows" in said and "days before 2026-11-02 were retired" in said
    eng.dispose()
    after = report_files(db_url, tmp_path / "after", capsys)
    # the trend of 11-01 is still drawn from the kept counts; the alert list lost c1
    assert after["trends_all_day.csv"] == before["trends_all_day.csv"]
    assert "药已经准备好了" in after["alerts.md"]          # c4 stays
    assert after == rebuilt_report(db_url, tmp_path / "rebuilt", capsys)
    detail = scalar(db_url, "SELECT detail FROM audit_log WHERE action = 'retention'")
    assert '"comments": 3' in str(detail)


def test_a_worker_claims_and_writes_back_during_a_retention_run(db_url):
    """Batches are short transactions: the worker claims, scores and writes back meanwhile."""
    eng = db.make_engine(db_url)
    old, first = datetime(2026, 10, 1, 8), datetime(2026, 10, 1, 9)
    with eng.begin() as conn:
        conn.execute(db.posts.insert().values(mid="P", text="帖子", created_at=old, first_scraped_at=first,
                                              scraped_at=first))
        conn.execute(db.comments.insert(), [
            {"id": f"o{i:04d}", "mid": "P", "text": "旧评论", "created_at": old, "first_scraped_at": first,
             "scraped_at": first, "score_status": "done"} for i in range(400)])
        rollups.write_scores(conn, [{"comment_id": f"o{i:04d}", "dimension": "suicide_risk", "scorer": "x:1",
                                     "value": i % 11, "rubric_version": "r", "scored_at": first}
                                    for i in range(400)])
        now = db.now()
        conn.execute(db.comments.insert(), [
            {"id": f"n{i:04d}", "mid": "P", "text": "新评论", "created_at": now, "first_scraped_at": now,
             "scraped_at": now} for i in range(60)])
        rollups.refresh(conn, lag=timedelta(0))
    plan = retention.Plan(rows_before=datetime(2026, 11, 1), batch_size=5, pause_seconds=0.01)
    result: dict = {}
    t = threading.Thread(target=lambda: result.update(deleted=retention.run(eng, plan)[0]))
    queue = Queue(eng, "w-test", lease_seconds=60)
    t.start()
    during = 0
    while t.is_alive():
        got = queue.claim(4)
        if not got:
            break
        scores = {d: DimensionScore(3) for d in CORE_DIMENSIONS}
        out = queue.complete(got, [ScoreResult(scores=scores) for _ in got], "w:1", "r", CORE_DIMENSIONS)
        assert out.done == len(got)
        during += t.is_alive()
    t.join(60)
    queue.close()
    assert during >= 1, "the worker could not write while retention ran"
    assert result["deleted"]["comments"] == 400
    with eng.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(db.comments)).scalar() == 60
    assert rollups.verify(eng) == []
    eng.dispose()


def test_the_config_alone_drives_a_run_and_old_audit_rows_go(sqlite_url, tmp_path, capsys):
    """What the timer runs: no flags, the [retention] section decides; 0 keeps."""
    eng = db.make_engine(sqlite_url)
    with eng.begin() as conn:
        conn.execute(db.audit_log.insert(), [
            {"at": datetime(2020, 1, 1), "actor": "a", "action": "login", "target": "user:a"},
            {"at": db.now(), "actor": "a", "action": "login", "target": "user:a"}])
    eng.dispose()
    assert retention.main(["--db", sqlite_url, "--config", CONFIG]) == 0
    assert "nothing to do" in capsys.readouterr().out
    cfg = tmp_path / "c.toml"
    cfg.write_text("[retention]\naudit_log_days = 30\nbatch_size = 1\n", encoding="utf-8")
    assert retention.main(["--db", sqlite_url, "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "audit_log before" in out and out.rstrip().endswith("1 deleted")
    assert column(sqlite_url, "SELECT action FROM audit_log ORDER BY id") == ["login", "retention"]
    with pytest.raises(SystemExit):   # a flag is checked like the key it overrides
        retention.main(["--db", sqlite_url, "--config", CONFIG, "--rows-older-than", "-3"])
    assert "must not be negative" in capsys.readouterr().err


def test_a_watched_post_keeps_its_row_when_its_old_comments_go(sqlite_url, capsys):
    old = datetime(2020, 1, 1)
    eng = db.make_engine(sqlite_url)
    with eng.begin() as conn:
        for mid in ("Pwatched", "Pplain"):
            conn.execute(db.posts.insert().values(mid=mid, text="帖子", created_at=old,
                                                  first_scraped_at=old, scraped_at=old))
            conn.execute(db.comments.insert().values(id=f"c-{mid}", mid=mid, text="评论", created_at=old,
                                                     first_scraped_at=old, scraped_at=old))
        conn.execute(db.watched_posts.insert().values(mid="Pwatched", label="树洞", added_at=old))
    eng.dispose()
    assert retention.main(["--db", sqlite_url, "--config", CONFIG, "--rows-older-than", "30",
                           "--dry-run"]) == 0
    assert any(line.strip().startswith("posts") and line.rstrip().endswith(" 1 would be deleted")
               for line in capsys.readouterr().out.splitlines())
    assert retention.main(["--db", sqlite_url, "--config", CONFIG, "--rows-older-than", "30"]) == 0
    assert scalar(sqlite_url, "SELECT COUNT(*) FROM comments") == 0
    assert column(sqlite_url, "SELECT mid FROM posts") == ["Pwatched"]


def test_retired_days_keep_their_counts_and_late_comments_still_add_up(sqlite_url):
    """The rule for deleted days, in the rollups themselves: a retired day's counts are kept as
    they were, a comment of that day collected later adds to them through the write path, and
    a rebuild (and so verify) recomputes only the later days."""
    from tests.analysis.seed import A, seed

    seed(sqlite_url)
    eng = db.make_engine(sqlite_url)
    day = date(2026, 11, 1)
    key = (A, "suicide_risk", day, 0)
    with eng.begin() as conn:
        kept = rollups.snapshot(conn)[key]
        try:
            rollups.retire_comments(conn, ["c4"], datetime(2026, 11, 2))   # c4 is of 11-02
            raise AssertionError("a comment of a later day was retired")
        except ValueError as e:
            assert "c4" in str(e)
        conn.execute(db.alerts.delete())
        out = rollups.retire_comments(conn, ["c1", "c2", "c3"], datetime(2026, 11, 2))
        assert out["comments"] == 3 and out["scores"] == 24
        assert rollups.retired_before(conn) == datetime(2026, 11, 2)
        assert rollups.snapshot(conn)[key] == kept
        # a late comment of 11-01, collected and scored now
        conn.execute(db.comments.insert().values(id="late", mid="P1", text="迟到的评论",
                                                 created_at=datetime(2026, 11, 1, 20), first_scraped_at=db.now(),
                                                 scraped_at=db.now()))
        rollups.write_scores(conn, [{"comment_id": "late", "dimension": "suicide_risk", "scorer": A,
                                     "value": 5, "rubric_version": "r", "scored_at": db.now()}])
        got = rollups.snapshot(conn)[key]
        assert got[0] == kept[0] + 1 and got[1] == kept[1] + 5
    assert rollups.verify(eng) == []
    with eng.begin() as conn:
        rollups.rebuild(conn, lag=timedelta(0), now=rollups.state(conn, rollups.WATERMARK))
        assert rollups.snapshot(conn)[key] == got     # kept, not recomputed from the one row left
    eng.dispose()
