"""The labelled-file loaders: formats are recognised by content, and a bad file names its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_worker.training import datasets as ds

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize("name, kind, rows", [
    ("sos_level.tsv", ds.SOS_LEVEL, 44), ("sos_binary.tsv", ds.SOS_BINARY, 44),
    ("emotion_list.json", ds.EMOTION, 12), ("emotion_lines.jsonl", ds.EMOTION, 12),
    ("distortion.tsv", ds.DISTORTION, 6),
])
def test_each_format_is_detected_from_its_content(name, kind, rows):
    d = ds.load(DATA / name)
    assert d.kind == kind and len(d) == rows
    assert len(d.sha256) == 64


def test_labels_are_typed_per_format():
    assert ds.load(DATA / "sos_level.tsv").labels[-1] == 10
    assert set(ds.load(DATA / "sos_binary.tsv").labels) == {0, 1}
    assert ds.load(DATA / "emotion_list.json").labels[0] == "happy"
    cd = ds.load(DATA / "distortion.tsv")
    assert cd.labels == [0, 0, 0, 1, 1, 1]
    assert cd.examples[3].extra["非此即彼"] == 1


def test_positivity_target_leaves_out_neutral_and_surprise():
    assert ds.positivity_target("like") == 1
    assert ds.positivity_target("disgust") == 0
    assert ds.positivity_target("neutral") is None and ds.positivity_target("surprise") is None


@pytest.mark.parametrize("name, line, words", [
    ("bad_level.tsv", 3, "not an integer"),
    ("bad_range.tsv", 3, "outside 0-10"),
    ("bad_lines.jsonl", 2, "not valid JSON"),
    ("bad_header.tsv", 1, "unknown format"),
])
def test_a_malformed_file_names_the_file_and_the_line(name, line, words):
    with pytest.raises(ds.DataFormatError) as e:
        ds.load(DATA / name)
    assert str(e.value).startswith(f"{DATA / name}:{line}:")
    assert words in str(e.value)
    assert e.value.line == line


def test_missing_empty_and_non_utf8_files(tmp_path):
    with pytest.raises(ds.DataFormatError, match="file not found"):
        ds.load(tmp_path / "nope.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(ds.DataFormatError, match="empty"):
        ds.load(tmp_path / "empty.tsv")
    (tmp_path / "gbk.tsv").write_bytes(b"comment\tmyLabel\n" + "你好\t1\n".encode("gb18030"))
    with pytest.raises(ds.DataFormatError, match=r"gbk.tsv:2: not UTF-8"):
        ds.load(tmp_path / "gbk.tsv")


def test_a_header_only_file_has_no_rows(tmp_path):
    (tmp_path / "h.tsv").write_text("comment\ttwoClass\n")
    with pytest.raises(ds.DataFormatError, match="no labelled rows"):
        ds.load(tmp_path / "h.tsv")
