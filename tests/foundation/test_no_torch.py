"""A scraping box and an analyst's machine need no torch: their code never imports it.

Each check runs in a fresh interpreter where ``import torch`` and ``import transformers``
fail (``sys.modules[name] = None``), as on a machine with only ``.[spider]`` or
``.[analysis]`` installed.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BLOCK = "import sys\nfor _m in ('torch', 'transformers', 'peft'):\n    sys.modules[_m] = None\n"
SPIDER_MODULES = ["weibo.settings", "weibo.spiders.hot_topics", "weibo.pipelines", "weibo.middlewares",
                  "weibo.store", "weibo.parsing", "weibo.localsite.server", "weibo.commands.crawl",
                  "weibo_mh.db", "weibo_mh.config", "weibo_mh.cli"]
ANALYSIS_MODULES = ["analysis.report", "analysis.alerts", "analysis.trends", "analysis.topics",
                    "analysis.distributions", "analysis.compare_scorers"]


def _run(code: str, cwd: str = str(ROOT)) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "Weibo_Spider")])}
    return subprocess.run([sys.executable, "-c", BLOCK + code], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_block_really_blocks():
    r = _run("import torch")
    assert r.returncode != 0 and "ModuleNotFoundError" in r.stderr


@pytest.mark.parametrize("modules", [SPIDER_MODULES, ANALYSIS_MODULES], ids=["spider", "analysis"])
def test_modules_import_without_torch(modules):
    r = _run("import importlib\n" + "".join(f"importlib.import_module({m!r})\n" for m in modules))
    assert r.returncode == 0, r.stderr


@pytest.mark.parametrize("argv", [
    ["path", "Weibo_Spider/default_schedule.py"],
    ["module", "analysis.report"],
    ["module", "analysis.alerts"],
    ["module", "weibo_mh.db"],
    ["module", "llm_worker"],
    ["cli", "work"],
    ["cli", "schedule"],
    ["cli", "report"],
], ids=lambda a: "-".join(a))
def test_help_runs_without_torch(argv):
    kind, target = argv
    if kind == "path":
        code = f"import runpy\nsys.argv = [{target!r}, '--help']\nrunpy.run_path({target!r}, run_name='__main__')"
    elif kind == "module":
        code = f"import runpy\nsys.argv = [{target!r}, '--help']\nrunpy.run_module({target!r}, run_name='__main__')"
    else:
        code = f"from weibo_mh.cli import main\nraise SystemExit(main([{target!r}, '--help']))"
    r = _run(code)
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()


def test_scrapy_crawl_help_without_torch():
    code = ("import runpy\nsys.argv = ['scrapy', 'crawl', 'hot_topics', '--help']\n"
            "runpy.run_module('scrapy', run_name='__main__')")
    r = _run(code, cwd=str(ROOT / "Weibo_Spider"))
    assert r.returncode == 0, r.stderr
    assert "usage" in r.stdout.lower()


def test_weibo_mh_lists_every_command():
    r = _run("from weibo_mh.cli import main\nraise SystemExit(main(['--help']))")
    assert r.returncode == 0, r.stderr
    for name in ("schedule", "crawl", "work", "migrate", "status", "report", "train", "evaluate"):
        assert f"  {name} " in r.stdout
