"""``weibo-mh export`` on SQLite and MariaDB: it reads back with pandas, holds no raw id, no
author hash and no text unless asked, re-keys authors per export, and its manifest checks."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest

from analysis import export
from tests.analysis.seed import AUTHOR, COMMENTS, REPLY, A, B
from tests.conftest import TEST_SALT
from tests.protection.helpers import column, seeded

CONFIG = "configs/default.toml"


def run(url: str, out, *extra: str) -> pd.DataFrame:  # noqa: ANN001
    assert export.main(["--db", url, "--config", CONFIG, "--out", str(out), *extra]) == 0
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    for name, f in manifest["files"].items():   # every file is the one the manifest names
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == f["sha256"]
    data = next(name for name in manifest["files"] if name.startswith("comments."))
    return pd.read_parquet(out / data) if data.endswith(".parquet") else pd.read_csv(out / data)


def test_export_reads_back_de_identified_and_rekeyed(db_url, tmp_path, monkeypatch):
    seeded(db_url)
    first = run(db_url, tmp_path / "one")
    second = run(db_url, tmp_path / "two")
    assert len(first) == len(COMMENTS) == len(second)
    assert {f"{A}/suicide_risk", f"{A}/rubric_version", f"{B}/positivity", "mid", "ip_location",
            "topics", "time", "author_key"} <= set(first.columns)
    assert not any(c.startswith("human:") for c in first.columns)      # annotators are not exported
    assert "text" not in first.columns
    # no raw id, no author or reply hash, no comment id, no text anywhere in the file
    secret = {*COMMENTS, AUTHOR, REPLY, *column(db_url, "SELECT text FROM comments")}
    for frame in (first, second):
        cells = {str(v) for v in frame.astype(str).to_numpy().ravel()}
        assert not cells & secret
        raw = (tmp_path / "one" / "comments.parquet").read_bytes()
        assert AUTHOR.encode() not in raw and REPLY.encode() not in raw
    # hour precision; a level of c4 (11-02 00:00, A: risk 7) where it should be
    assert (pd.to_datetime(first["time"]).dt.minute == 0).all()
    row = first[pd.to_datetime(first["time"]) == pd.Timestamp("2026-11-02 00:00")]
    assert list(row[f"{A}/suicide_risk"]) == [7] and set(first["mid"]) == {"P1", "P2", "P3"}
    # one author, one key per export; another export, another key
    assert first["author_key"].nunique() == 1 and second["author_key"].nunique() == 1
    assert first["author_key"][0] != second["author_key"][0]
    # --stable-authors: the same key in every such export; --with-text, --scorer, csv
    monkeypatch.setenv("WEIBO_MH_SALT", TEST_SALT)
    s1 = run(db_url, tmp_path / "s1", "--stable-authors", "--scorer", A, "--format", "csv", "--with-text")
    s2 = run(db_url, tmp_path / "s2", "--stable-authors", "--scorer", A)
    assert s1["author_key"][0] == s2["author_key"][0] != first["author_key"][0]
    assert len(s1) == 5 and not any(c.startswith(B) for c in s1.columns)   # only what A scored
    assert "药已经准备好了" in " ".join(s1["text"])
    readme = (tmp_path / "s1" / "README.md").read_text(encoding="utf-8")
    assert f"`{A}/suicide_risk`" in readme and "not diagnoses" in readme
    manifest = json.loads((tmp_path / "s1" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["filters"]["scorers"] == [A] and manifest["row_counts"] == {"comments.csv": 5}
    assert manifest["scorers"][A]["rubric_versions"] == ["2026-11-a"] and manifest["config_sha256"]


def test_export_filters_and_refusals(sqlite_url, tmp_path, capsys):
    seeded(sqlite_url)
    got = run(sqlite_url, tmp_path / "w", "--since", "2026-11-02", "--until", "2026-11-02", "--topic", "失眠")
    assert list(got["mid"]) == ["P2"]   # c4 only: 11-02, on P2 (T2 失眠的夜晚)
    with pytest.raises(SystemExit):
        export.main(["--db", sqlite_url, "--config", CONFIG, "--out", str(tmp_path / "x"), "--scorer", "nope:1"])
    assert "no scores from scorer 'nope:1'" in capsys.readouterr().err
    assert not (tmp_path / "x" / "manifest.json").exists()
