"""Helpers for the spider tests: a config pointing at a LocalSite, and running the real crawl.

The crawl always runs as ``scrapy crawl hot_topics`` in a subprocess (cwd Weibo_Spider),
exactly as a user runs it, against a LocalSite on 127.0.0.1. No Weibo traffic ever.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from weibo.localsite import LocalSite

from tests.conftest import ROOT, TEST_SALT
from weibo_mh import db

SPIDER_DIR = ROOT / "Weibo_Spider"
PY = sys.executable


def write_config(path: Path, site: LocalSite, extra_spider: str = "", extra: str = "") -> Path:
    """A config for a fast crawl of ``site``: no delay, no AutoThrottle, tiny back-offs.

    ``extra_spider`` holds ``key = value`` lines for [spider] (they win over the defaults here);
    ``extra`` is appended as further TOML sections.
    """
    spider = {
        "hotsearch_url": f'"{site.hotsearch_url}"', "weibo_cn_base": f'"{site.url}"',
        "s_weibo_base": f'"{site.s_weibo_base}"', "weibo_com_base": f'"{site.weibo_com_base}"',
        "download_delay": "0.0", "autothrottle": "false", "concurrent_per_domain": "4",
        "ban_backoff_seconds": "0.01", "ban_backoff_max_seconds": "0.05", "flush_seconds": "1.0",
    }
    for line in extra_spider.splitlines():
        if line.strip():
            key, value = (x.strip() for x in line.split("=", 1))
            spider[key] = value
    body = "\n".join(f"{k} = {v}" for k, v in spider.items())
    schedule = {"lock_file": f'"{path.parent / "crawl.lock"}"', "log_dir": f'"{path.parent / "logs"}"'}
    rest = []
    section = None
    for line in extra.splitlines():   # [schedule] keys given in extra are merged, not repeated
        if line.strip().startswith("["):
            section = line.strip()
        if section == "[schedule]" and "=" in line:
            key, value = (x.strip() for x in line.split("=", 1))
            schedule[key] = value
        elif section != "[schedule]":
            rest.append(line)
    sched_lines = "\n".join(f"{k} = {v}" for k, v in schedule.items())
    path.write_text(f"""
[database]
url = "sqlite:///{path.parent / 'unused.db'}"

[spider]
{body}

[schedule]
{sched_lines}

{chr(10).join(rest)}
""", encoding="utf-8")
    return path


def crawl_env(config: Path, db_url: str, salt: str | None = TEST_SALT, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("WEIBO_COOKIE", "WEIBO_COOKIE_FILE", "WEIBO_COM_COOKIE", "WEIBO_COM_COOKIE_FILE",
                        "WEIBO_MH_SALT", "WEIBO_MH_SALT_FILE")}
    env.update(WEIBO_MH_CONFIG=str(config), DATABASE_URL=db_url, **extra)
    if salt:
        env["WEIBO_MH_SALT"] = salt
    return env


@dataclass
class Crawl:
    returncode: int
    output: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_crawl(config: Path, db_url: str, *settings: str, salt: str | None = TEST_SALT,
              timeout: float = 120, spider: str = "hot_topics", **env: str) -> Crawl:
    cmd = [PY, "-m", "scrapy", "crawl", spider]
    for s in settings:
        cmd += ["-s", s]
    p = subprocess.run(cmd, cwd=SPIDER_DIR, env=crawl_env(config, db_url, salt, **env),
                       capture_output=True, text=True, timeout=timeout)
    return Crawl(p.returncode, p.stdout + p.stderr)


def counts(url: str) -> dict[str, int]:
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            return {t: int(conn.execute(sa.select(sa.func.count()).select_from(db.metadata.tables[t])).scalar() or 0)
                    for t in ("topics", "topic_snapshots", "posts", "post_topics", "comments", "crawl_runs")}
    finally:
        eng.dispose()


def runs(url: str) -> list[dict]:
    """crawl_runs rows, oldest first, with stats decoded."""
    eng = db.make_engine(url)
    try:
        with eng.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(sa.select(db.crawl_runs).order_by(db.crawl_runs.c.id))]
    finally:
        eng.dispose()
    for r in rows:
        r["stats"] = json.loads(r["stats"]) if r["stats"] else {}
    return rows
