"""Every entry point fails the same way on bad set-up, and no secret ever reaches a log line."""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import sqlalchemy as sa
from weibo.localsite import LocalSite
from weibo.localsite.demo_corpus import build_corpus

from tests.conftest import ROOT
from tests.reliability.faults import PY, run
from tests.spider.helpers import write_config

SPIDER = ROOT / "Weibo_Spider"

#: Every process a user starts, as (name, argv, cwd).
ENTRY_POINTS = {
    "scheduler": ([PY, "Weibo_Spider/default_schedule.py", "--once"], ROOT),
    "spider": ([PY, "-m", "scrapy", "crawl", "hot_topics"], SPIDER),
    "worker": ([PY, "-m", "llm_worker", "--once"], ROOT),
    "analysis": ([PY, "-m", "analysis.report", "--out", "{tmp}/report"], ROOT),
    "db": ([PY, "-m", "weibo_mh.db", "status"], ROOT),
}
CLEAN_ENV = {"WEIBO_COOKIE": "", "WEIBO_COOKIE_FILE": "", "WEIBO_MH_SALT": "", "WEIBO_MH_SALT_FILE": "",
             "DATABASE_URL": "", "WEIBO_MH_CONFIG": ""}


def start(name: str, tmp_path: Path, env: dict[str, str]):
    argv, cwd = ENTRY_POINTS[name]
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    env = {k: v.replace("{tmp}", str(tmp_path)) for k, v in env.items()}
    return run(argv, env={**CLEAN_ENV, **env}, cwd=cwd, timeout=120)


def assert_clean_exit_2(out, *needles: str) -> None:
    text = out.stdout + out.stderr
    assert out.returncode == 2, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_bad_config_exits_2_naming_key_and_file(name, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[worker]\nbatch_size = 'lots'\n", encoding="utf-8")
    out = start(name, tmp_path, {"WEIBO_MH_CONFIG": str(bad), "WEIBO_MH_SALT": "x" * 32})
    assert_clean_exit_2(out, "worker.batch_size", str(bad))


@pytest.mark.parametrize("name", ["scheduler", "spider"])
def test_a_missing_salt_exits_2_saying_how_to_make_one(name, tmp_path, sqlite_url):
    out = start(name, tmp_path, {"DATABASE_URL": sqlite_url})
    assert_clean_exit_2(out, "WEIBO_MH_SALT_FILE")


@pytest.mark.parametrize("url", ["mysql+pymysql://nobody:pw@127.0.0.1:1/none", "postgres-ish:/nonsense",
                                 "sqlite:///{tmp}/no-such-dir/x.db"])
@pytest.mark.parametrize("name", ENTRY_POINTS)
def test_a_wrong_database_url_exits_2(name, url, tmp_path):
    out = start(name, tmp_path, {"DATABASE_URL": url, "WEIBO_MH_SALT": "x" * 32})
    assert_clean_exit_2(out)
    assert ":pw@" not in out.stdout + out.stderr


@pytest.mark.mysql
@pytest.mark.slow
def test_no_secret_appears_in_any_log(mysql_url, tmp_path):
    """Run every process with a password, a cookie and a salt set, then grep all they printed and logged."""
    password = "pw-" + secrets.token_hex(8)
    cookie = "SUB=_cookie_" + secrets.token_hex(12)
    salt = "salt-" + secrets.token_hex(12)
    url = sa.make_url(mysql_url)
    user = "wmh_" + secrets.token_hex(4)
    admin = sa.create_engine(url)
    with admin.begin() as conn:
        for host in ("127.0.0.1", "localhost"):
            conn.exec_driver_sql(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")
            conn.exec_driver_sql(f"GRANT ALL ON `{url.database}`.* TO '{user}'@'{host}'")
    secret_url = url.set(username=user, password=password).render_as_string(hide_password=False)
    outputs: list[str] = []
    try:
        with LocalSite(build_corpus(comments_per_post=6)) as site:
            config = write_config(tmp_path / "c.toml", site, extra="[schedule]\ntime_budget_minutes = 2\n")
            env = {"WEIBO_MH_CONFIG": str(config), "DATABASE_URL": secret_url, "WEIBO_COOKIE": cookie,
                   "WEIBO_MH_SALT": salt}
            for name in ENTRY_POINTS:
                out = start(name, tmp_path, env)
                outputs.append(out.stdout + out.stderr)
                assert out.returncode == 0, f"{name}: {outputs[-1][-3000:]}"
            assert site.cookies[cookie] > 0, "the cookie was sent to the site"
        # The same processes when the password is wrong or the server is unreachable.
        for bad in (url.set(username=user, password=password + "x"), url.set(port=1, password=password)):
            env["DATABASE_URL"] = bad.render_as_string(hide_password=False)
            for name in ("worker", "analysis", "db"):
                out = start(name, tmp_path, env)
                outputs.append(out.stdout + out.stderr)
                assert out.returncode == 2, outputs[-1]
        outputs += [p.read_text(encoding="utf-8", errors="replace") for p in tmp_path.rglob("*.log")]
        outputs.append(config.read_text(encoding="utf-8"))
    finally:
        with admin.begin() as conn:
            for host in ("127.0.0.1", "localhost"):
                conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'{host}'")
        admin.dispose()
    everything = "\n".join(outputs)
    assert len(everything) > 1000, "the processes should have logged what they did"
    for value in (password, cookie, cookie.split("=", 1)[1], salt):
        assert value not in everything
