"""Charts and the report: fixed-size, non-blank images, "no data" instead of crashes, honest links.

The report runs in-process on the seeded database (SQLite and MariaDB); the
checks read the files it wrote the way a user would: images, CSV, Markdown, HTML.
"""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from PIL import Image

from analysis import alerts, compare_scorers, distributions, fonts, report, topics, trends
from analysis.plotting import pixel_size
from tests.analysis.seed import AUTHOR, REPLY, T1, T2, A, seed
from tests.conftest import ROOT

CHARTS = {"trends_all_day", "trends_topics_day", "trends_topics_risk_day", "histograms",
          "risk_by_topic", "topic_heatmap", "topic_heat_day", "compare_scorers", "regions"}


def kind_of(stem: str) -> str:
    return re.sub(r"_(day|hour)$", "", stem)


def assert_chart(path: Path) -> None:
    """The PNG has the size its kind promises and is not one flat colour."""
    with Image.open(path) as im:
        assert im.size == pixel_size(kind_of(path.stem)), path.name
        pixels = np.asarray(im.convert("L"))
    assert pixels.std() > 1.0, f"{path.name} looks blank"
    assert (pixels < 128).mean() > 0.001, f"{path.name} has almost no ink"


class Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.targets: list[str] = []

    def handle_starttag(self, tag, attrs):  # noqa: ANN001
        for name, value in attrs:
            if name in ("href", "src") and value:
                self.targets.append(value)


def links_of(index: Path) -> list[str]:
    p = Links()
    p.feed(index.read_text(encoding="utf-8"))
    return p.targets


def run_report(url: str, out: Path, *extra: str) -> int:
    return report.main(["--db", url, "--out", str(out), "--min-comments", "1", "--scorer", A, *extra])


def test_report_on_seeded_database(db_url, tmp_path, capsys):
    seed(db_url)
    out = tmp_path / "rep"
    assert run_report(db_url, out) == 0
    printed = capsys.readouterr().out
    assert "comments: 7, topics: 3, scored: 5, failed: 1, alerts: 2" in printed

    pngs = {p.stem for p in out.glob("*.png")}
    assert pngs == CHARTS
    for p in out.glob("*.png"):
        assert_chart(p)

    # index.html shows every chart and links every file it names; each link resolves
    index = out / "index.html"
    targets = links_of(index)
    assert all(not t.startswith(("/", "http")) for t in targets)
    for t in targets:
        assert (out / t).is_file(), f"index.html links a missing file: {t}"
    written = {p.name for p in out.iterdir() if p.name != "index.html"}
    assert written == set(targets), "every file written is linked from index.html"
    html = index.read_text(encoding="utf-8")
    assert "not diagnoses of people" in html and "crisis resources" in html
    for label, value in (("comments", 7), ("topics", 3), ("scoring failed", 1)):
        assert re.search(rf"<td>{label}</td><td>{value}</td>", html), label
    assert "药已经准备好了 就是还没决定哪天" in html  # the alert text, newline folded
    assert AUTHOR not in html and REPLY not in html

    # the aggregated tables are written beside the charts
    with open(out / "trends_all_day.csv", encoding="utf-8") as f:
        trows = [r for r in csv.DictReader(f) if r["dimension"] == "suicide_risk"]
    assert [(r["n"], r["total"], r["high"], r["comments"]) for r in trows] == [
        ("3", "10", "1", "3"), ("2", "8", "1", "3")]


def test_alert_files_have_the_caution_and_no_user_hashes(sqlite_url, tmp_path, capsys):
    seed(sqlite_url)
    assert alerts.main(["--db", sqlite_url, "--out", str(tmp_path), "--scorer", A]) == 0
    assert "caution:" in capsys.readouterr().out
    md = (tmp_path / "alerts.md").read_text(encoding="utf-8")
    assert "not diagnoses of people" in md and "follow their team's protocol" in md
    assert "analysis.crisis_resources" in md
    assert "不想再撑了 \\| 真的" in md  # a pipe in the text does not break the table
    assert md.count("\n| 8 |") == 1 and md.count("\n| 7 |") == 1
    raw = (tmp_path / "alerts.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # BOM, so Excel shows the Chinese
    rows = list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert [(r["level"], r["comment_id"], r["topics"]) for r in rows] == [
        ("8", "c1", T1), ("7", "c4", f"{T2} / {T1}")]
    assert rows[1]["text"] == "药已经准备好了\n就是还没决定哪天"
    assert AUTHOR not in raw.decode("utf-8-sig") and REPLY not in raw.decode("utf-8-sig")
    assert not any("hash" in k for k in rows[0])


def test_alert_threshold_and_limit(sqlite_url, tmp_path, capsys):
    seed(sqlite_url)
    assert alerts.main(["--db", sqlite_url, "--out", str(tmp_path), "--threshold", "8", "--scorer", A]) == 0
    rows = list(csv.DictReader((tmp_path / "alerts.csv").read_text(encoding="utf-8-sig").splitlines()))
    assert [r["comment_id"] for r in rows] == ["c1"]
    assert alerts.main(["--db", sqlite_url, "--out", str(tmp_path), "--threshold", "0", "--limit", "2",
                        "--scorer", A]) == 0
    md = (tmp_path / "alerts.md").read_text(encoding="utf-8")
    assert "**5**" in md and "showing the 2 highest" in md


def test_each_script_writes_its_charts(sqlite_url, tmp_path, capsys):
    seed(sqlite_url)
    args = ["--db", sqlite_url, "--out", str(tmp_path), "--scorer", A]
    assert trends.main([*args, "--freq", "hour", "--top", "2"]) == 0
    assert distributions.main(args) == 0
    assert topics.main([*args, "--min-comments", "1"]) == 0
    assert compare_scorers.main([*args, "--scorer-a", "lexicon:v2", "--scorer-b", "classifier:v1"]) == 0
    out = capsys.readouterr().out
    assert "suicide_risk kappa" in out
    for stem in ("trends_all_hour", "trends_topics_hour", "trends_topics_risk_hour", "histograms",
                 "risk_by_topic", "topic_heatmap", "topic_heat_day", "compare_scorers"):
        assert_chart(tmp_path / f"{stem}.png")
    summary = (tmp_path / "compare_scorers_summary.csv").read_text(encoding="utf-8")
    assert summary.splitlines()[0] == "dimension,pairs,kappa_quadratic,exact,within_1"


def test_svg_charts_carry_the_chinese_topic_names(sqlite_url, tmp_path, capsys):
    seed(sqlite_url)
    assert topics.main(["--db", sqlite_url, "--out", str(tmp_path), "--format", "svg",
                        "--min-comments", "1", "--scorer", A]) == 0
    svg = (tmp_path / "topic_heatmap.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and T1 in svg


def test_empty_database_gives_no_data_charts(sqlite_url, tmp_path, capsys):
    out = tmp_path / "rep"
    assert report.main(["--db", sqlite_url, "--out", str(out), "--format", "svg"]) == 0
    svgs = sorted(out.glob("*.svg"))
    assert {p.stem for p in svgs} == CHARTS
    for p in svgs:
        assert "no data" in p.read_text(encoding="utf-8"), p.name
    assert "has no scores yet" in (out / "histograms.svg").read_text(encoding="utf-8")
    for t in links_of(out / "index.html"):
        assert (out / t).is_file()
    assert "comments: 0, topics: 0, scored: 0, failed: 0, alerts: 0" in capsys.readouterr().out


def test_empty_window_gives_no_data_charts_of_the_usual_size(sqlite_url, tmp_path, capsys):
    seed(sqlite_url)
    out = tmp_path / "rep"
    assert run_report(sqlite_url, out, "--since", "2027-01-01") == 0
    assert {p.stem for p in out.glob("*.png")} == CHARTS
    for p in out.glob("*.png"):
        assert_chart(p)
    assert report.main(["--db", sqlite_url, "--out", str(tmp_path / "svg"), "--format", "svg",
                        "--since", "2027-01-01"]) == 0
    assert "no scored comments in 2027-01-01" in (tmp_path / "svg" / "trends_all_day.svg").read_text(
        encoding="utf-8")


def test_no_missing_glyph_warnings_with_a_cjk_font(sqlite_url, tmp_path, capsys):
    # Runs on every machine: with no system CJK font the mplfonts package provides one.
    assert fonts.find_cjk_font() is not None, fonts.INSTALL_HINT
    seed(sqlite_url)
    fonts.setup_fonts(force=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert run_report(sqlite_url, tmp_path / "rep") == 0
    missing = [str(w.message) for w in caught if "missing from font" in str(w.message)]
    assert missing == []


def test_without_a_cjk_font_one_warning_and_charts_still_render(sqlite_url, tmp_path, capsys,
                                                                 monkeypatch):
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    monkeypatch.setitem(fonts._state, "warned", False)
    try:
        assert fonts.setup_fonts(candidates=(), force=True) is None
        assert fonts.setup_fonts(candidates=(), force=True) is None
        err = capsys.readouterr().err
        assert err.count("warning: no CJK font") == 1 and "mplfonts" in err
        seed(sqlite_url)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert distributions.main(["--db", sqlite_url, "--out", str(tmp_path), "--scorer", A]) == 0
        assert_chart(tmp_path / "risk_by_topic.png")
    finally:
        fonts.setup_fonts(force=True)


def test_the_packaged_font_stands_in_when_no_system_font_is_named(monkeypatch):
    monkeypatch.delenv(fonts.FONT_ENV, raising=False)
    try:
        assert fonts.setup_fonts(candidates=("No Such Family",), force=True) == "Noto Sans CJK SC"
        assert str(fonts.font_source()).endswith("NotoSansCJKsc-Regular.otf")
        assert fonts.packaged_font_file() is not None
    finally:
        fonts.setup_fonts(force=True)


def test_glyphs_no_font_has_give_one_line_of_warning(tmp_path):
    code = (
        "from analysis import fonts\n"
        "fonts.setup_fonts()\n"
        "from matplotlib.figure import Figure\n"
        "for i in range(3):\n"
        "    fig = Figure(); ax = fig.add_subplot(); ax.set_title('话题 \\U0001F62D\\U0001F97A\\U0001FAE0')\n"
        f"    fig.savefig(r'{tmp_path}/x%d.png' % i)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "missing from font" in lines[0], out.stderr
