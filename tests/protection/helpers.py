"""Shared steps of the data-protection tests: the seeded database with alerts, tasks and
labels, the report's data files, and the rollups compared with a rebuild."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa

from analysis import report
from tests.analysis.seed import A, seed
from weibo_mh import alert_queue, db, rollups

PLACES = {"c1": "广东", "c2": "广东", "c3": "北京", "c4": None, "c5": "海外", "c6": "北京", "c7": "广东"}


def seeded(url: str) -> None:
    """The analysis seed, plus alerts (c1, c4), an annotation task (c1) and a human label (c2)."""
    seed(url, PLACES)
    eng = db.make_engine(url)
    with eng.begin() as conn:
        assert alert_queue.fill_alerts(conn, A, 7) == 2
        conn.execute(db.annotation_tasks.insert().values(comment_id="c1", created_at=db.now()))
        rollups.write_human_labels(conn, "alice", [("c2", "suicide_risk", 3)], "r")
    eng.dispose()


def report_files(url: str, out: Path, capsys=None) -> dict[str, str]:  # noqa: ANN001
    """Every data file the report writes (CSV, Markdown), by name, and its printed counts."""
    assert report.main(["--db", url, "--out", str(out), "--min-comments", "1", "--scorer", A]) == 0
    files = {p.name: p.read_text(encoding="utf-8") for p in sorted(out.iterdir())
             if p.suffix in (".csv", ".md")}
    if capsys is not None:
        files["(printed counts)"] = next(line for line in capsys.readouterr().out.splitlines()
                                         if line.strip().startswith("comments:"))
    return files


def rebuilt_report(url: str, out: Path, capsys=None) -> dict[str, str]:  # noqa: ANN001
    """The report after ``rollups rebuild`` (the same rule for retired days)."""
    eng = db.make_engine(url)
    with eng.connect() as conn:
        until = rollups.state(conn, rollups.WATERMARK)
    with eng.begin() as conn:
        rollups.rebuild(conn, lag=timedelta(0), now=until)
    eng.dispose()
    return report_files(url, out, capsys)


def scalar(url: str, query: str) -> object:
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            return conn.execute(sa.text(query)).scalar()
    finally:
        eng.dispose()


def column(url: str, query: str) -> list:
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            return [r[0] for r in conn.execute(sa.text(query))]
    finally:
        eng.dispose()
