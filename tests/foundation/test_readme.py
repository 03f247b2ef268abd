"""The README stays true: its configuration reference is the code's, its commands exist."""

from __future__ import annotations

import importlib.util
import re

from tests.conftest import ROOT
from weibo_mh.config import reference_markdown

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_config_reference_matches_the_code():
    block = re.search(r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", README, re.S)
    assert block, "README lost its config-reference markers"
    assert block.group(1).strip() == reference_markdown().strip(), (
        "README's configuration reference drifted: paste `python -m weibo_mh.config --reference`")


def test_the_two_setup_commands_are_documented():
    assert "make demo" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_every_module_the_readme_runs_exists():
    modules = {m.rstrip(".") for m in re.findall(r"python -m ([a-z_][a-z_.]*)", README)}
    modules -= {"venv", "pytest", "pip"}
    assert modules, "expected `python -m …` commands in the README"
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert not missing, f"README runs modules that do not exist: {missing}"


def test_every_script_path_the_readme_names_exists():
    paths = set(re.findall(r"\b((?:Weibo_Spider|bench|configs|tests|sql)/[\w./-]+\.(?:py|toml|sql))\b", README))
    missing = [p for p in sorted(paths) if not (ROOT / p).exists()]
    assert not missing, f"README names files that do not exist: {missing}"
