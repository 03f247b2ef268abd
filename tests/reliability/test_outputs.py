"""Reports and alert tables are safe to open, and bad output folders end in one line and exit 2.

The seeded database of tests/analysis gets hostile high-risk comments (a spreadsheet
formula, a javascript: link, NUL, ANSI, an RLO) and one comment whose text is not valid
UTF-8 (written with SQLite's CAST, as another tool could). The real report runs over it.
"""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.analysis.seed import AUTHOR, DIMS, A, seed
from tests.conftest import ROOT
from weibo_mh import db, rollups

HOSTILE = {
    "h1": '=HYPERLINK("http://example.invalid/x","点这里")',
    "h2": "+1 打电话给我",
    "h3": "-2 不想活了",
    "h4": "@所有人 救救我",
    "h5": "\t=1+1 藏在制表符后",
    "h6": "看这里 [点我](javascript:alert(1)) ![图](x.png)",
    "h7": "空\x00字符和\x1b[31m颜色\x1b[0m",
    "h8": "反向\u202e文字 <b>粗</b> | 列",
}
BAD_UTF8_ID = "h9"


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DATABASE_URL="", WEIBO_MH_CONFIG="")
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def one_line_exit_2(p: subprocess.CompletedProcess[str], *words: str) -> None:
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr
    for w in words:
        assert w in p.stderr, p.stderr


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("outputs") / "hostile.db"
    url = f"sqlite:///{path}"
    eng = db.make_engine(url)
    db.migrate(eng)
    eng.dispose()
    seed(url)
    eng = db.make_engine(url)
    when = db.now()
    with eng.begin() as conn:
        for cid, text in [*HOSTILE.items(), (BAD_UTF8_ID, "placeholder")]:
            conn.execute(db.comments.insert().values(
                id=cid, mid="P1", author_hash=AUTHOR, text=text, created_at=when, first_scraped_at=when,
                scraped_at=when, score_status="done", scored_at=when))
            rollups.write_scores(conn, [dict(comment_id=cid, dimension=d, scorer=A, value=9 if
                                                   d == "suicide_risk" else 1, rubric_version="t",
                                                   scored_at=when) for d in DIMS])
    eng.dispose()
    raw = sqlite3.connect(path)
    raw.execute("UPDATE comments SET text = CAST(X'E4B88DE683B3ff20E6B4BB' AS TEXT) WHERE id = ?",
                (BAD_UTF8_ID,))
    raw.commit()
    raw.close()
    return url


@pytest.fixture(scope="module")
def report(hostile_db, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess[str], Path]:
    out = tmp_path_factory.mktemp("report")
    victim = out.parent / "victim.txt"
    victim.write_text("precious", encoding="utf-8")
    (out / "alerts.csv").symlink_to(victim)       # planted links: never written through
    (out / "index.html").symlink_to(victim)
    p = cli("analysis.report", "--db", hostile_db, "--out", str(out), "--scorer", A, "--since",
            "2026-01-01")
    return out, p, victim


def test_the_report_survives_invalid_utf8_and_counts_it(report, hostile_db):
    out, p, _ = report
    assert p.returncode == 0, p.stderr
    assert (out / "index.html").is_file() and (out / "alerts.csv").is_file(), p.stderr
    assert "1 text values in the database were not valid UTF-8" in p.stderr, p.stderr
    page = (out / "index.html").read_text(encoding="utf-8")
    assert "1 text values in the database were not valid UTF-8" in page
    assert "不想\ufffd" in page  # the good bytes of the bad row are shown, the bad one replaced
    rows = list(csv.DictReader((out / "alerts.csv").open(encoding="utf-8-sig")))
    assert BAD_UTF8_ID in {r["comment_id"] for r in rows}
    before = db.make_engine(hostile_db)
    with before.connect() as conn:  # the database itself is untouched
        assert conn.execute(sa.select(sa.func.count()).select_from(db.comments)).scalar() == 16
    before.dispose()


def test_no_symlink_is_followed_and_no_temporary_file_is_left(report):
    out, p, victim = report
    assert victim.read_text(encoding="utf-8") == "precious"
    assert not (out / "alerts.csv").is_symlink() and not (out / "index.html").is_symlink()
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_csv_cells_cannot_run_as_formulas(report):
    out, _, _ = report
    rows = list(csv.DictReader((out / "alerts.csv").open(encoding="utf-8-sig")))
    texts = {r["comment_id"]: r["text"] for r in rows}
    for cid in ("h1", "h2", "h3", "h4", "h5"):
        assert texts[cid].startswith("'"), texts[cid]
        assert texts[cid][1:] == HOSTILE[cid]
    for r in rows:
        for value in r.values():
            assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), r
            assert "\x00" not in value and "\x1b" not in value and "\u202e" not in value
    assert texts["h6"] == HOSTILE["h6"]  # only the first character matters to a spreadsheet
    assert texts["h8"] == HOSTILE["h8"].replace("\u202e", "<U+202E>")  # shown, not obeyed


def test_markdown_and_html_escape_links_and_show_controls(report):
    out, _, _ = report
    md = (out / "alerts.md").read_text(encoding="utf-8")
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "](javascript:" not in md and "\\[点我\\]\\(javascript:alert\\(1\\)\\)" in md
    assert "\\!\\[图\\]" in md
    for text in (md, html):
        assert "\u202e" not in text and "<U+202E>" in text.replace("\\<", "<").replace("\\>", ">") \
            or "&lt;U+202E&gt;" in text
        assert "\x00" not in text and "\x1b" not in text
    assert "<b>粗</b>" not in html and "&lt;b&gt;粗&lt;/b&gt;" in html
    assert "\\| 列" in md


def test_out_naming_a_file_is_one_line_and_exit_2(hostile_db, tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_text("x", encoding="utf-8")
    one_line_exit_2(cli("analysis.alerts", "--db", hostile_db, "--out", str(f)), "is a file")
    one_line_exit_2(cli("analysis.report", "--db", hostile_db, "--out", str(f / "sub")), str(f))


@pytest.fixture
def read_only_dir(tmp_path) -> Iterator[Path]:
    """A folder nobody may write to: chattr +i as root (root ignores modes), else mode 0555."""
    d = tmp_path / "ro"
    d.mkdir()
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a folder read-only")
        yield d
        subprocess.run(["chattr", "-i", str(d)], check=True)
    else:
        d.chmod(0o555)
        yield d
        d.chmod(0o755)


def test_a_read_only_output_folder_is_one_line_and_exit_2(hostile_db, read_only_dir):
    one_line_exit_2(cli("analysis.alerts", "--db", hostile_db, "--out", str(read_only_dir)),
                    str(read_only_dir))
    one_line_exit_2(cli("analysis.report", "--db", hostile_db, "--out", str(read_only_dir / "new")),
                    str(read_only_dir))


@pytest.mark.mysql
def test_alerts_read_from_mariadb_are_safe_to_open_too(mysql_url, tmp_path):
    seed(mysql_url)
    eng = db.make_engine(mysql_url)
    when = db.now()
    with eng.begin() as conn:
        for cid, text in HOSTILE.items():
            conn.execute(db.comments.insert().values(
                id=cid, mid="P1", author_hash=AUTHOR, text=text, created_at=when, first_scraped_at=when,
                scraped_at=when, score_status="done", scored_at=when))
            rollups.write_scores(conn, [dict(comment_id=cid, dimension=d, scorer=A, value=9 if
                                                   d == "suicide_risk" else 1, rubric_version="t",
                                                   scored_at=when) for d in DIMS])
    eng.dispose()
    p = cli("analysis.alerts", "--db", mysql_url, "--out", str(tmp_path), "--scorer", A, "--since",
            "2026-01-01")
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((tmp_path / "alerts.csv").open(encoding="utf-8-sig")))
    texts = {r["comment_id"]: r["text"] for r in rows}
    assert all(texts[c].startswith("'") for c in ("h1", "h2", "h3", "h4", "h5"))
    md = (tmp_path / "alerts.md").read_text(encoding="utf-8")
    assert "](javascript:" not in md and "\u202e" not in md and "\x00" not in md
