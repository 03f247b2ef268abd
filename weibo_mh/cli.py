"""``weibo-mh``: one command over the project's entry points.

Each subcommand runs an existing module (or the scheduler script) exactly as its
``python -m`` form would, with the remaining arguments; nothing is imported until a
subcommand is chosen, so ``weibo-mh --help`` needs no torch, Scrapy or pandas.
"""

from __future__ import annotations

import os
import runpy
import sys
from collections.abc import MutableMapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: subcommand -> (what it runs, prepended arguments, one line of help)
COMMANDS: dict[str, tuple[str, list[str], str]] = {
    "schedule": ("path:Weibo_Spider/default_schedule.py", [], "the scraper daemon (--once: one crawl now)"),
    "crawl": ("scrapy", ["crawl", "hot_topics"], "one crawl with Scrapy (scrapy crawl hot_topics)"),
    "site": ("weibo.localsite", [], "a local weibo.cn-shaped site for trying things out"),
    "work": ("llm_worker", [], "the scoring worker (python -m llm_worker)"),
    "migrate": ("weibo_mh.db", ["migrate"], "create or upgrade the database schema"),
    "status": ("weibo_mh.db", ["status"], "schema version and row counts"),
    "config": ("weibo_mh.config", [], "validate a config and the files it names; print it, secrets masked"),
    "salt": ("weibo_mh.privacy", ["new-salt"], "print a new pseudonymisation salt"),
    "notify": ("weibo_mh.notify", [], "push alerts to responders: run, test, status, retry"),
    "report": ("analysis.report", [], "every chart, the alert table and index.html"),
    "alerts": ("analysis.alerts", [], "the high-risk comment table"),
    "trends": ("analysis.trends", [], "scores over time"),
    "topics": ("analysis.topics", [], "scores by topic"),
    "regions": ("analysis.regions", [], "scores by IP location (IP属地)"),
    "distributions": ("analysis.distributions", [], "score histograms"),
    "compare": ("analysis.compare_scorers", [], "two scorers on the same comments"),
    "console": ("analysis.console", [], "the review console: labels, agreement, alert triage"),
    "agreement": ("analysis.agreement", [], "human labels against the scorers: kappa, alpha, F1"),
    "retention": ("weibo_mh.protection.retention", [], "empty old texts, delete old rows ([retention])"),
    "forget": ("weibo_mh.protection.forget", [], "a deletion request: remove one author everywhere"),
    "export": ("analysis.export", [], "a de-identified research copy (Parquet or CSV)"),
    "train": ("llm_worker.training.train", [], "train the CPU classifier"),
    "evaluate": ("llm_worker.training.evaluate", [], "score a labelled data set and report accuracy"),
    "adapt": ("llm_worker.training.adapt", [], "masked-LM adaptation of an encoder"),
}


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: weibo-mh COMMAND [ARGS...]   (weibo-mh COMMAND --help for its options)", "",
             "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_) in COMMANDS.items()]
    return "\n".join(lines)


def absolute_config_env(env: MutableMapping[str, str], cwd: Path) -> None:
    """Make WEIBO_MH_CONFIG and a relative SQLite DATABASE_URL absolute against ``cwd``, for a
    command that changes its working directory (``crawl`` runs in Weibo_Spider/)."""
    from weibo_mh.config import CONFIG_ENV, resolve_sqlite_url

    if env.get(CONFIG_ENV) and not Path(env[CONFIG_ENV]).expanduser().is_absolute():
        env[CONFIG_ENV] = str(cwd / Path(env[CONFIG_ENV]).expanduser())
    if env.get("DATABASE_URL"):
        env["DATABASE_URL"] = resolve_sqlite_url(env["DATABASE_URL"], cwd)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in {"-h", "--help", "help"}:
        print(usage())
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"weibo-mh: unknown command {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    target, pre, _ = COMMANDS[name]
    if target.startswith("path:"):
        path = ROOT / target[5:]
        sys.argv = [str(path), *pre, *rest]
        runpy.run_path(str(path), run_name="__main__")
        return 0
    if target == "scrapy":
        absolute_config_env(os.environ, Path.cwd())
        os.chdir(ROOT / "Weibo_Spider")  # scrapy finds the project through scrapy.cfg
    sys.argv = [f"weibo-mh {name}", *pre, *rest]
    runpy.run_module(target, run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
