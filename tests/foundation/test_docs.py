"""The docs say what the code does: commands and flags, config keys, links, figures.

Every ``weibo-mh …``, ``python -m …`` and ``python Weibo_Spider/default_schedule.py …``
command in README.md and docs/ is checked against its ``--help`` (the subcommand exists,
every flag is one it takes); every ``section.key`` and every key of a TOML example is in
the SPEC; every relative link and ``#anchor`` resolves to a file and a heading; every
figure followed by "comments/s", "/s", "s" or "F1" is one BENCHMARKS.md records.

Each distinct ``--help`` runs once, in this process (argparse prints and exits), so the
whole file takes about a second.
"""

from __future__ import annotations

import contextlib
import functools
import io
import re
import runpy
import shlex
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

from tests.conftest import ROOT
from weibo_mh.cli import COMMANDS
from weibo_mh.config import SPEC

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TEXTS = {p: p.read_text(encoding="utf-8") for p in DOC_FILES}
BENCHMARKS = (ROOT / "BENCHMARKS.md").read_text(encoding="utf-8")
#: Modules that are not ours: their commands are not checked.
FOREIGN = {"pytest", "pip", "venv", "http.server", "json.tool"}
#: The generated config reference (its "60 s" is a setting, and a test of its own checks it).
GENERATED = re.compile(r"<!-- config-reference:start -->.*?<!-- config-reference:end -->", re.S)


def _name(p: Path) -> str:
    return str(p.relative_to(ROOT))


# --------------------------------------------------------------------------- commands

def _code(text: str) -> list[str]:
    """Every code span and every line of every code block (continuation lines joined)."""
    out: list[str] = []
    for block in re.findall(r"^```[^\n]*\n(.*?)^```", text, re.S | re.M):
        out += block.replace("\\\n", " ").splitlines()
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    out += re.findall(r"`([^`\n]+)`", text)
    return out


_START = re.compile(r"(?:^|[\s(=])(?:\S*bin/)?(?:(weibo-mh)\s+|python3?\s+-m\s+([A-Za-z_][\w.]*)|"
                    r"python3?\s+(Weibo_Spider/default_schedule\.py))")
_STOP = re.compile(r"\s(?:#|\||&&|;|>|<|2>)|\s+\(")


def commands(text: str) -> list[tuple[str, list[str]]]:
    """(program, arguments) of each command in the text; program is a module name, or
    ``schedule`` for the scheduler script."""
    found: list[tuple[str, list[str]]] = []
    for line in _code(text):
        for m in _START.finditer(line):
            rest = line[m.end():]
            stop = _STOP.search(" " + rest)
            rest = rest[: stop.start() - 1] if stop else rest
            rest = rest.replace("\\|", "|")
            try:
                words = shlex.split(rest)
            except ValueError:
                words = rest.split()
            if m.group(1):  # weibo-mh SUB …
                if words and not re.fullmatch(r"-.*|[a-z][a-z-]*", words[0]):
                    continue  # a word in a sentence or a mail subject, not a command
                if not words or words[0].startswith("-"):
                    found.append(("weibo-mh", words))
                    continue
                target, pre, _ = COMMANDS.get(words[0], ("?" + words[0], [], ""))
                prog = "schedule" if target.startswith("path:") else target
                found.append((prog, [*pre, *words[1:]]))
            elif m.group(2):
                found.append((m.group(2).rstrip("."), words))
            else:
                found.append(("schedule", words))
    return found


def _run_help(prog: str, args: list[str]) -> str:
    """The --help text of ``prog args``; in this process where the program is argparse's."""
    if prog == "weibo-mh":
        from weibo_mh.cli import usage
        return usage()
    if prog == "scrapy":
        done = subprocess.run([sys.executable, "-m", "scrapy", *args, "--help"], cwd=ROOT / "Weibo_Spider",
                              capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr
    buf = io.StringIO()
    argv, path = sys.argv, list(sys.path)
    sys.argv = [prog, *args, "--help"]
    try:
        with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # runpy: "found in sys.modules"
            with contextlib.suppress(SystemExit):
                if prog == "schedule":
                    runpy.run_path(str(ROOT / "Weibo_Spider" / "default_schedule.py"), run_name="__main__")
                else:
                    runpy.run_module(prog, run_name="__main__", alter_sys=True)
    finally:
        sys.argv, sys.path[:] = argv, path
    return buf.getvalue()


@functools.cache
def help_text(prog: str, sub: str = "") -> str:
    return _run_help(prog, [sub] if sub else [])


def _subcommands(text: str) -> set[str]:
    """Subcommand names a help text offers: argparse's {a,b} and the first word after the
    program name on lines of a "commands" list."""
    subs: set[str] = set()
    for group in re.findall(r"\{([\w,-]+)\}", text):
        subs |= set(group.split(","))
    for line in text.splitlines():
        m = re.match(r"\s+(?:python -m [\w.]+ |weibo-mh )?([a-z][\w-]+)\s", line)
        if m:
            subs.add(m.group(1))
    return subs


_FLAG = re.compile(r"^\[?(--?[A-Za-z][\w-]*)")


def problems_of(prog: str, args: list[str]) -> list[str]:
    if prog.startswith("?"):
        return [f"`weibo-mh {prog[1:]}`: no such subcommand"]
    if prog in FOREIGN or prog.split(".")[0] in FOREIGN:
        return []
    top = help_text(prog)
    if "usage:" not in top and "Usage" not in top:
        return [f"`{prog} --help` printed no usage: {top[-300:]!r}"]
    sub = ""
    words = [w for w in args if w not in {"[", "]", "…", "...", "\\"}]
    if words and not words[0].startswith(("-", "[")) and prog != "weibo-mh":
        subs = _subcommands(top)
        has_subs = bool(re.search(r"\{[\w,-]+\}|commands", top))
        if has_subs and words[0] in subs:
            sub = words[0]
        elif has_subs and re.fullmatch(r"[a-z][a-z-]+", words[0]) and words[0] not in top:
            return [f"`{prog} {words[0]}`: not a subcommand in its --help"]
    text = help_text(prog, sub) if sub else top
    if sub and "usage:" not in text:
        text = top  # a hand-made subcommand without a parser of its own: its flags are in the top help
    out = []
    for w in words:
        m = _FLAG.match(w)
        if not m or w in {"-", "--"}:
            continue
        flag = m.group(1).split("=")[0]
        if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text + (top if sub else "")):
            out.append(f"`{prog}{' ' + sub if sub else ''}` has no flag {flag}")
    return out


DOC_COMMANDS = sorted({(_name(p), prog, tuple(args)) for p, t in TEXTS.items() for prog, args in commands(t)})


def test_the_docs_name_commands():
    progs = {prog for _, prog, _ in DOC_COMMANDS}
    assert {"llm_worker", "weibo_mh.db", "analysis.console", "schedule"} <= progs, progs


@pytest.mark.parametrize("line, problem", [
    ("`python -m llm_worker --no-such-flag`", "has no flag --no-such-flag"),
    ("`weibo-mh nonsense --x`", "no such subcommand"),
    ("`python -m analysis.console add-user mei --role responder --colour red`", "has no flag --colour"),
    ("`python -m weibo_mh.db migrate --db URL`", ""),
])
def test_the_command_check_catches_a_wrong_command(line, problem):
    found = [p for prog, args in commands(line) for p in problems_of(prog, args)]
    assert (problem in "\n".join(found)) if problem else not found, found


def test_every_documented_command_matches_its_help():
    bad = []
    for doc, prog, args in DOC_COMMANDS:
        bad += [f"{doc}: {p}   [{prog} {' '.join(args)}]" for p in problems_of(prog, list(args))]
    assert not bad, "\n".join(sorted(set(bad)))


# --------------------------------------------------------------------------- config keys

_MODULE_DIRS = {s for s in SPEC if (ROOT / s).is_dir()}


def config_keys(text: str) -> set[str]:
    """``section.key`` names in the prose and code, and ``[section] key`` of TOML examples."""
    text = GENERATED.sub("", text)
    keys = set()
    sections = "|".join(SPEC)
    for m in re.finditer(rf"(?<![\w./-])({sections})\.([a-z_]+)(?![\w/-]|\.\w)", text):
        sec, name = m.groups()
        if name in {"md", "py", "toml", "html"}:
            continue  # a file name (spider.md)
        if sec in _MODULE_DIRS and ((ROOT / sec / f"{name}.py").exists() or (ROOT / sec / name).is_dir()):
            continue  # a module (analysis.alerts), not a key
        keys.add(f"{sec}.{name}")
    for m in re.finditer(rf"\[({sections})\]\s+([a-z_]+)\s*=", text):
        keys.add(f"{m.group(1)}.{m.group(2)}")
    for block in re.findall(r"^```toml\n(.*?)^```", text, re.S | re.M):
        with contextlib.suppress(tomllib.TOMLDecodeError):
            for sec, values in tomllib.loads(block).items():
                keys |= {f"{sec}.{k}" for k in (values if isinstance(values, dict) else {})}
    return keys


def test_the_key_pattern():
    text = ("`spider.cookie_fil` and `analysis.alerts` (a module), docs/spider.md, `worker.backend`;\n"
            "[schedule] every_minute = 5\n```toml\n[console]\nalert_scorer = \"\"\nport_ = 1\n```\n")
    assert config_keys(text) == {"spider.cookie_fil", "worker.backend", "schedule.every_minute",
                                 "console.alert_scorer", "console.port_"}


def test_the_anchor_rules():
    assert slug("The cookies: setting and refreshing them") == "the-cookies-setting-and-refreshing-them"
    assert slug("Running it as a service (systemd)") == "running-it-as-a-service-systemd"
    assert slug("The scheduler: `python Weibo_Spider/default_schedule.py`") == \
        "the-scheduler-python-weibo_spiderdefault_schedulepy"
    assert anchors("# A\n## A\n```\n# not a heading\n```\n") == {"a", "a-1"}


def test_every_config_key_in_the_docs_is_in_the_spec():
    bad = []
    for p, t in TEXTS.items():
        for key in sorted(config_keys(t)):
            sec, _, name = key.partition(".")
            if name not in SPEC.get(sec, {}):
                bad.append(f"{_name(p)}: {key}")
    assert not bad, "config keys the SPEC does not know:\n" + "\n".join(bad)


# --------------------------------------------------------------------------- links

def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|\[([^\]]*)\]\([^)]*\)", r"\1", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    text = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    seen: dict[str, int] = {}
    out = set()
    for h in re.findall(r"^#{1,6}\s+(.+?)\s*#*$", text, re.M):
        s = slug(h)
        n = seen.get(s, 0)
        out.add(s if n == 0 else f"{s}-{n}")
        seen[s] = n + 1
    out |= set(re.findall(r'<a (?:name|id)="([^"]+)"', text))
    return out


def test_every_relative_link_and_anchor_resolves():
    bad = []
    for p, t in TEXTS.items():
        body = re.sub(r"^```.*?^```", "", t, flags=re.S | re.M)
        for target in re.findall(r"\]\(([^)\s]+)\)", body):
            if re.match(r"[a-z]+:", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (p.parent / file).resolve() if file else p
            if not dest.exists():
                bad.append(f"{_name(p)} -> {target}: no such file")
            elif anchor and dest.suffix == ".md":
                if anchor not in anchors(dest.read_text(encoding="utf-8")):
                    bad.append(f"{_name(p)} -> {target}: no such heading")
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------- figures

_NUM = r"(\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)"
#: unit -> (a figure in prose, a figure in BENCHMARKS prose, a table header of such figures)
UNITS = {
    "/s": (rf"{_NUM}\s?(?:comments/s|/s)(?![\w/])", rf"{_NUM}\s?(?:[\w ]{{0,12}})/s\b", r"/s\b|per s"),
    "s": (rf"{_NUM}[ \u00a0]s\b(?![/\w])", rf"{_NUM}\s?s\b(?![/\w])", r"\(s\)|\bs\b|seconds"),
    "F1": (rf"{_NUM}\s?(?:(?:binary|weighted|macro)\s)?(?:points?\s)?F1\b|\bF1\s(?:of\s)?{_NUM}",
           rf"{_NUM}\s?F1\b|\bF1\s(?:of\s|>=\s|≥\s)?[-−+]?{_NUM}", r"F1"),
}


def _number(s: str) -> str:
    return s.replace(",", "")


def _prose(text: str) -> str:
    text = GENERATED.sub("", text)
    return re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)


@functools.cache
def bench_figures() -> dict[str, frozenset[str]]:
    """The numbers BENCHMARKS.md records with each unit: written after them, or in a table
    column whose header names the unit."""
    known: dict[str, set[str]] = {u: set() for u in UNITS}
    header: list[str] = []
    for line in BENCHMARKS.splitlines():
        for unit, (_, inline, _) in UNITS.items():
            for m in re.finditer(inline, line):
                known[unit] |= {_number(g) for g in m.groups() if g}
        if not line.startswith("|"):
            header = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if not header:
            header = cells
            continue
        for col, cell in zip(header, cells, strict=False):
            for unit, (_, _, head) in UNITS.items():
                if re.search(head, col):
                    known[unit] |= {_number(n) for n in re.findall(_NUM, cell)}
    return {u: frozenset(v) for u, v in known.items()}


def figures(text: str) -> list[tuple[str, str, str]]:
    """(figure, unit, line) for every number followed by comments/s, /s, s or F1 (or after
    "F1"), outside code and the generated config reference."""
    out = []
    for line in _prose(text).splitlines():
        prose = re.sub(r"`[^`]*`", "", line)  # flags and settings in code spans are not figures
        for unit, (pattern, _, _) in UNITS.items():
            for m in re.finditer(rf"(?<![\w.,/])(?<![A-Za-z-]-){pattern}", prose):
                out += [(g, unit, line.strip()) for g in m.groups() if g]
    return out


def recorded(figure: str, known: frozenset[str]) -> bool:
    """The figure is in BENCHMARKS.md, as written or (a figure with decimals) rounded to as many
    decimals as it has; a whole number must be there as written."""
    fig = _number(figure)
    if fig in known:
        return True
    places = len(fig.partition(".")[2])
    return places > 0 and any(f"{float(k):.{places}f}" == fig for k in known)


def test_every_figure_in_the_docs_is_in_benchmarks():
    known = bench_figures()
    bad = []
    for p, t in TEXTS.items():
        for fig, unit, line in figures(t):
            if not recorded(fig, known[unit]):
                bad.append(f"{_name(p)}: {fig} {unit} in: {line[:150]}")
    assert not bad, "figures BENCHMARKS.md does not record:\n" + "\n".join(bad)


@pytest.mark.parametrize("snippet, expect", [
    ("decodes 31 comments/s on CPU", ["31"]),
    ("the demo takes about 20 s", ["20"]),
    ("~1,200/s per core", ["1,200"]),
    ("87.2 F1 on the held-out set", ["87.2"]),
    ("binary F1 87.2 and 3 points F1", ["87.2", "3"]),
    ("lost 1.1 binary and 2.4 weighted F1 points", ["2.4"]),
    ("about 15-25 s of training", ["25"]),
    ("`--timeout 30s`, three 400s and 5 items/s", []),
])
def test_the_figure_pattern(snippet, expect):
    assert sorted(f for f, _, _ in figures(snippet)) == sorted(expect)


def test_the_readme_counts_the_demo_corpus_right():
    from weibo.localsite.demo_corpus import build_corpus

    m = re.search(r"(\d+) hot topics, (\d+) posts and (\d+) comments", TEXTS[ROOT / "README.md"])
    assert m, "the README no longer describes the demo corpus"
    topics = [t for t in build_corpus()["topics"] if not t.get("is_ad")]
    posts = [p for t in topics for p in t.get("posts", [])]
    comments = [c for p in posts for c in p["comments_list"]]
    assert tuple(map(int, m.groups())) == (len(topics), len(posts), len(comments))
