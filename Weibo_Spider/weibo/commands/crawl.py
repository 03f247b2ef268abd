"""``scrapy crawl hot_topics`` with checks before the start and a meaningful exit status.

Scrapy's own crawl command exits 0 whatever happened. This one refuses to start
(exit 2, one line on stderr) without a salt, with an unreadable cookie file, or
against a missing or older database schema, and exits with the code of the
run's crawl_runs status afterwards (see ``weibo.status``).
"""

from __future__ import annotations

import argparse
import sys

from scrapy.commands import ScrapyHelpFormatter
from scrapy.commands.crawl import Command as ScrapyCrawl
from scrapy.exceptions import UsageError
from scrapy.settings import BaseSettings

from weibo.status import EXIT_CONFIG, EXIT_HELP, exit_code
from weibo_mh.config import ConfigError, load_config
from weibo_mh.db import SchemaError, mask, open_checked


class _RawHelp(argparse.RawDescriptionHelpFormatter, ScrapyHelpFormatter):
    pass


def preflight(settings: BaseSettings) -> str | None:
    """Everything a crawl needs before its first request; an error message or None."""
    from weibo_mh.config import cookie_from
    from weibo_mh.privacy import pseudonymiser_from

    try:
        cfg = load_config(settings.get("WEIBO_MH_CONFIG") or None)
        pseudonymiser_from(cfg)
        cookie_from(cfg)
        url = settings.get("DATABASE_URL")
        if not url:
            return "no database: set database.url in the config, DATABASE_URL, or -s DATABASE_URL=…"
        open_checked(url).dispose()
    except (ConfigError, SchemaError) as e:
        return str(e)
    if settings.get("SCHEDULER_BACKEND") == "redis":
        import redis

        try:
            redis.Redis.from_url(settings.get("REDIS_URL")).ping()
        except (redis.RedisError, ValueError) as e:
            return f"scheduler_backend is redis but Redis at {mask(settings.get('REDIS_URL'))} " \
                   f"does not answer: {e}"
    return None


class Command(ScrapyCrawl):
    def short_desc(self) -> str:
        return "Run a spider (hot_topics); the exit status reflects how the run ended"

    def long_desc(self) -> str:
        return ("Run a spider of this project, e.g. `scrapy crawl hot_topics`. Settings come from\n"
                "the config named by WEIBO_MH_CONFIG (default configs/default.toml); override any\n"
                "with -s KEY=VALUE (DOWNLOAD_DELAY, TOPIC_LIMIT, DATABASE_URL, …).\n\n" + EXIT_HELP)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        super().add_options(parser)
        parser.formatter_class = _RawHelp

    def run(self, args: list[str], opts: argparse.Namespace) -> None:
        if len(args) != 1:
            raise UsageError("give exactly one spider name, e.g. hot_topics")
        assert self.settings is not None and self.crawler_process is not None
        problem = preflight(self.settings)
        if problem:
            print(f"error: {problem}", file=sys.stderr)
            self.exitcode = EXIT_CONFIG
            return
        crawler = self._create_crawler(args[0])
        self.crawler_process.crawl(crawler, **opts.spargs)
        self.crawler_process.start()
        if self.crawler_process.bootstrap_failed:
            self.exitcode = 1
            return
        self.exitcode = exit_code(crawler.stats.get_value("weibo/status"))
