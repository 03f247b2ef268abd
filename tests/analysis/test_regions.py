"""Scores by IP location: the GROUP BY gives the numbers worked out by hand (both engines),
and the script writes its chart and a formula-safe CSV.

Locations given to the seed's comments here (scorer lexicon:v1):

    comment  location  risk pos mood subst
    c1       广东       8    2   6    0
    c2       广东       2    4   3    1
    c3       北京       0    9   0    0      (11-01 23:59:59)
    c4       NULL       7    1   7    3
    c5       海外       1    6   1    0
"""

from __future__ import annotations

import csv
import subprocess
import sys
from datetime import datetime

import pandas as pd

from analysis import queries as Q
from analysis import regions, report
from analysis import rollup_queries as RQ
from analysis.plotting import pixel_size
from analysis.window import Window
from tests.analysis.seed import A, seed
from tests.conftest import ROOT
from weibo_mh import db

PLACES = {"c1": "广东", "c2": "广东", "c3": "北京", "c4": None, "c5": "海外"}
COLS = ["location", "comments", "mean_suicide_risk", "mean_positivity", "mean_mood_disorder",
        "mean_substance_use", "high_risk_share"]


def seed_places(url: str, places: dict[str, str | None] = PLACES) -> None:
    seed(url, places)


def rows(url: str, win: Window, threshold: int) -> list[tuple]:
    """The table from the rollups (the default path), checked against the raw rows."""
    eng = db.make_engine(url)
    with eng.connect() as conn:
        t = regions.table(RQ.by_location(conn, win, A, threshold), threshold)
        raw = regions.table(Q.by_location(conn, win, A, threshold), threshold)
    eng.dispose()
    pd.testing.assert_frame_equal(t, raw, check_dtype=False)
    return [tuple(round(x, 3) if isinstance(x, float) else x for x in r)
            for r in t[COLS].itertuples(index=False)]


def test_per_location_numbers_by_hand(db_url):
    seed_places(db_url)
    assert rows(db_url, Window(), 7) == [
        ("广东", 2, 5.0, 3.0, 4.5, 0.5, 0.5),
        ("unknown", 1, 7.0, 1.0, 7.0, 3.0, 1.0),   # NULL: Weibo showed no location
        ("北京", 1, 0.0, 9.0, 0.0, 0.0, 0.0),
        ("海外", 1, 1.0, 6.0, 1.0, 0.0, 0.0),
    ]
    # threshold 8: only c1 is high risk; window to the end of 11-01: c1, c2, c3
    assert [(r[0], r[-1]) for r in rows(db_url, Window(), 8)] == [
        ("广东", 0.5), ("unknown", 0.0), ("北京", 0.0), ("海外", 0.0)]
    assert rows(db_url, Window(until=datetime(2026, 11, 2)), 7) == [
        ("广东", 2, 5.0, 3.0, 4.5, 0.5, 0.5), ("北京", 1, 0.0, 9.0, 0.0, 0.0, 0.0)]
    # --topic 失眠: post P2 only (c2, c4)
    assert rows(db_url, Window(topic="失眠"), 7) == [
        ("unknown", 1, 7.0, 1.0, 7.0, 3.0, 1.0), ("广东", 1, 2.0, 4.0, 3.0, 1.0, 0.0)]


def test_chart_keeps_only_groups_with_enough_comments():
    t = regions.table(regions.pd.DataFrame(
        {"location": ["甲", "甲", "乙", "乙"], "dimension": ["suicide_risk", "positivity"] * 2,
         "n": [30, 30, 5, 5], "total": [60, 90, 10, 20], "high": [3, 0, 5, 0]}), 7)
    assert list(regions.chart_rows(t, 10, 20)["location"]) == ["甲"]
    assert list(regions.chart_rows(t, 10, 1)["location"]) == ["甲", "乙"]
    assert list(regions.chart_rows(t, 1, 1)["location"]) == ["甲"]


def test_cli_writes_chart_and_formula_safe_csv(sqlite_url, tmp_path):
    seed_places(sqlite_url, {**PLACES, "c3": "=1+1"})  # a hostile cell from a page
    out = tmp_path / "out"
    p = subprocess.run([sys.executable, "-m", "analysis.regions", "--db", sqlite_url, "--out", str(out),
                        "--scorer", A, "--min-comments", "1", "--top", "3"],
                       capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "caution:" in p.stdout and "IP locations: 4" in p.stdout
    from PIL import Image

    with Image.open(out / "regions.png") as im:
        assert im.size == pixel_size("regions")
        lo, hi = im.convert("L").getextrema()
        assert hi - lo > 100  # not blank
    with open(out / "regions.csv", encoding="utf-8-sig", newline="") as f:
        got = list(csv.DictReader(f))
    assert [r["location"] for r in got] == ["广东", "'=1+1", "unknown", "海外"]
    assert got[0]["high_risk_share"] == "0.5"


def test_help_and_no_scores(sqlite_url, tmp_path):
    p = subprocess.run([sys.executable, "-m", "analysis.regions", "--help"], capture_output=True,
                       text=True, cwd=ROOT, timeout=60)
    assert p.returncode == 0
    for opt in ("--config", "--db", "--since", "--until", "--topic", "--scorer", "--threshold",
                "--out", "--min-comments", "--top", "python -m analysis.regions"):
        assert opt in p.stdout
    # an empty database: a "no data" chart, no CSV, exit 0
    assert regions.main(["--db", sqlite_url, "--out", str(tmp_path)]) == 0
    assert (tmp_path / "regions.png").is_file() and not (tmp_path / "regions.csv").exists()


def test_report_has_the_section(sqlite_url, tmp_path):
    seed_places(sqlite_url)
    out = tmp_path / "rep"
    assert report.main(["--db", sqlite_url, "--out", str(out), "--scorer", A]) == 0
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "<h2>IP locations</h2>" in index
    assert "regions.png" in index and "regions.csv" in index
