"""``weibo-mh forget`` on SQLite and MariaDB: one author's rows go from every table, the
rollups move exactly (verify passes, the report equals a rebuild), pointers at them go, and
only the hash is recorded."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from tests.conftest import TEST_SALT
from tests.protection.helpers import column, rebuilt_report, report_files, scalar, seeded
from weibo_mh import db, rollups
from weibo_mh.protection import forget

CONFIG = "configs/default.toml"
UID = "1234567890"


def h(key: str) -> str:
    return hmac.new(TEST_SALT.encode(), key.encode(), hashlib.sha256).hexdigest()


def _their_rows(url: str) -> None:
    """c1 and c4 (both alerts; c1 has a task) and post P3 are theirs; c2 answers c1, c5 is in
    c1's thread, c7 names their nickname."""
    eng = db.make_engine(url)
    with eng.begin() as conn:
        conn.execute(db.comments.update().where(db.comments.c.id.in_(["c1", "c4"])).values(author_hash=h(f"u:{UID}")))
        conn.execute(db.comments.update().where(db.comments.c.id == "c2").values(reply_to_id="c1"))
        conn.execute(db.comments.update().where(db.comments.c.id == "c5").values(root_id="c1"))
        conn.execute(db.comments.update().where(db.comments.c.id == "c7").values(reply_to_hash=h("n:小鱼")))
        conn.execute(db.posts.update().where(db.posts.c.mid == "P3").values(author_hash=h(f"u:{UID}")))
        conn.execute(db.alerts.update().where(db.alerts.c.comment_id.in_(["c1", "c4"]))
                     .values(author_hash=h(f"u:{UID}")))
    eng.dispose()


@pytest.mark.slow
def test_forget_removes_one_author_everywhere_and_the_rollups_stay_exact(db_url, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("WEIBO_MH_SALT", TEST_SALT)
    seeded(db_url)
    _their_rows(db_url)
    eng = db.make_engine(db_url)
    with eng.begin() as conn:   # a human label on one of theirs too
        rollups.write_human_labels(conn, "bob", [("c4", "suicide_risk", 6)], "r")
    args = ["--db", db_url, "--config", CONFIG, "--weibo-uid", UID, "--nickname", "小鱼"]
    assert forget.main([*args, "--dry-run"]) == 0
    dry = capsys.readouterr().out
    assert scalar(db_url, "SELECT COUNT(*) FROM comments") == 7 and "would remove" in dry
    assert forget.main(args) == 0
    said = capsys.readouterr().out
    removed = {line.rsplit(None, 1)[0].strip(): line.split()[-1] for line in said.splitlines()
               if line.startswith("  ")}
    assert removed["comments"] == "2" and removed["alerts"] == "2" and removed["annotation_tasks"] == "1"
    assert removed["scores"] == str(2 * 4 * 2 + 1)    # two scorers x four dimensions x two, bob's label
    assert UID not in said and h(f"u:{UID}") in said

    assert column(db_url, "SELECT id FROM comments ORDER BY id") == ["c2", "c3", "c5", "c6", "c7"]
    assert scalar(db_url, "SELECT COUNT(*) FROM scores WHERE comment_id IN ('c1', 'c4')") == 0
    assert scalar(db_url, "SELECT COUNT(*) FROM alerts") == 0
    assert scalar(db_url, "SELECT COUNT(*) FROM risk_scores WHERE comment_id IN ('c1', 'c4')") == 0
    assert column(db_url, "SELECT reply_to_id FROM comments WHERE id = 'c2'") == [None]
    assert column(db_url, "SELECT reply_to_hash FROM comments WHERE id IN ('c2', 'c7')") == [None, None]
    assert column(db_url, "SELECT root_id FROM comments WHERE id = 'c5'") == [None]
    assert column(db_url, "SELECT text FROM posts WHERE mid = 'P3'") == [""]
    assert scalar(db_url, "SELECT COUNT(*) FROM posts WHERE author_hash = :h".replace(":h", f"'{h(f'u:{UID}')}'")) == 0
    assert sorted(column(db_url, "SELECT kind FROM forgotten_authors")) == ["author", "nickname"]
    detail = str(scalar(db_url, "SELECT detail FROM audit_log WHERE action = 'forget'"))
    assert h(f"u:{UID}") in detail and UID not in detail
    assert scalar(db_url, "SELECT target FROM audit_log WHERE action = 'forget'") == f"author:{h(f'u:{UID}')}"

    assert rollups.verify(eng) == []
    eng.dispose()
    assert report_files(db_url, tmp_path / "after", capsys) == rebuilt_report(db_url, tmp_path / "rebuilt", capsys)
    # again: nothing left to remove, nothing breaks
    assert forget.main(["--db", db_url, "--config", CONFIG, "--author-hash", h(f"u:{UID}")]) == 0
    assert "  comments  " in capsys.readouterr().out


def test_forget_refuses_a_bad_hash_and_needs_a_salt_for_a_uid(sqlite_url, capsys, monkeypatch):
    with pytest.raises(SystemExit) as e:
        forget.main(["--db", sqlite_url, "--config", CONFIG, "--author-hash", "not-a-hash"])
    assert e.value.code == 2 and "64 hexadecimal" in capsys.readouterr().err
    monkeypatch.delenv("WEIBO_MH_SALT", raising=False)
    monkeypatch.delenv("WEIBO_MH_SALT_FILE", raising=False)
    assert forget.main(["--db", sqlite_url, "--config", CONFIG, "--weibo-uid", UID]) == 2
    assert "salt" in capsys.readouterr().err
