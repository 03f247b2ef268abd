"""A deletion request holds across crawls: after ``weibo-mh forget``, the real spider crawling
the local site again drops that author's comments (counted in the run's stats) and stores
their posts without text or author, on SQLite and MariaDB."""

from __future__ import annotations

from pathlib import Path

import pytest
from weibo.localsite import LocalSite

from tests.conftest import TEST_SALT
from tests.spider.helpers import run_crawl, runs, write_config
from tests.spider.test_crawl import fetch, h
from weibo_mh.protection import forget

pytestmark = pytest.mark.slow


def test_a_forgotten_author_crawled_again_is_dropped(db_url: str, site: LocalSite, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:  # noqa: ANN001
    config = write_config(tmp_path / "spider.toml", site, "incremental = false")
    assert run_crawl(config, db_url).ok
    who = h("u:7000040")
    theirs = fetch(db_url, f"SELECT id FROM comments WHERE author_hash = '{who}'")
    assert theirs, "the small corpus has comments of u:7000040"
    total = fetch(db_url, "SELECT COUNT(*) FROM comments")[0][0]
    monkeypatch.setenv("WEIBO_MH_SALT", TEST_SALT)
    assert forget.main(["--db", db_url, "--config", str(config), "--weibo-uid", "7000040"]) == 0
    assert f"forgot author {who}" in capsys.readouterr().out
    assert fetch(db_url, "SELECT COUNT(*) FROM comments")[0][0] == total - len(theirs)
    # a post author too (by hash): the post stays, for the comments of others on it
    poster = h("u:5000001")
    assert forget.main(["--db", db_url, "--config", str(config), "--author-hash", poster]) == 0
    on_post = fetch(db_url, "SELECT COUNT(*) FROM comments WHERE mid = '5100000000000001'")

    again = run_crawl(config, db_url)
    assert again.ok, again.output
    assert fetch(db_url, f"SELECT COUNT(*) FROM comments WHERE author_hash = '{who}'") == [(0,)]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments")[0][0] == total - len(theirs)
    run = runs(db_url)[-1]
    assert run["status"] == "ok"
    assert run["stats"]["dropped"]["forgotten_author"] == len(theirs)
    assert run["dropped"] == len(theirs)
    assert fetch(db_url, "SELECT text, author_hash FROM posts WHERE mid = '5100000000000001'") == [("", None)]
    assert fetch(db_url, "SELECT COUNT(*) FROM comments WHERE mid = '5100000000000001'") == on_post
