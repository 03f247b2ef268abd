"""The README and docs/ stay true: the configuration reference is the code's, commands exist."""

from __future__ import annotations

import importlib.util
import re

from tests.conftest import ROOT
from weibo_mh.config import reference_markdown

README = (ROOT / "README.md").read_text(encoding="utf-8")
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
DOCS = "\n".join(p.read_text(encoding="utf-8") for p in DOC_FILES)
CONFIG_DOC = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")


def test_config_reference_matches_the_code():
    block = re.search(r"<!-- config-reference:start -->\n(.*?)\n<!-- config-reference:end -->", CONFIG_DOC, re.S)
    assert block, "docs/configuration.md lost its config-reference markers"
    assert block.group(1).strip() == reference_markdown().strip(), (
        "docs/configuration.md drifted: paste `python -m weibo_mh.config --reference`")


def test_the_two_setup_commands_are_documented():
    assert "make demo" in README and "make test" in README
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert re.search(r"^demo:", makefile, re.M) and re.search(r"^test:", makefile, re.M)


def test_every_module_the_readme_runs_exists():
    modules = {m.rstrip(".") for m in re.findall(r"python -m ([a-z_][a-z_.]*)", DOCS)}
    modules -= {"venv", "pytest", "pip"}
    assert modules, "expected `python -m …` commands in the README"
    missing = [m for m in sorted(modules) if importlib.util.find_spec(m) is None]
    assert not missing, f"README runs modules that do not exist: {missing}"


def test_every_script_path_the_readme_names_exists():
    paths = set(re.findall(r"\b((?:Weibo_Spider|bench|configs|tests|sql)/[\w./-]+\.(?:py|toml|sql))\b", DOCS))
    missing = [p for p in sorted(paths) if not (ROOT / p).exists()]
    assert not missing, f"README names files that do not exist: {missing}"


def test_readme_is_a_front_page_that_links_every_doc():
    assert len(README.splitlines()) <= 200
    for doc in sorted((ROOT / "docs").glob("*.md")):
        assert f"docs/{doc.name}" in README, f"README does not link {doc.name}"


def test_relative_links_in_the_docs_resolve():
    broken = []
    for path in DOC_FILES:
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if not (path.parent / target).exists():
                broken.append(f"{path.name} -> {target}")
    assert not broken, broken
