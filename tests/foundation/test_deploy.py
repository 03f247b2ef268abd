"""The shipped deployment files work as written: systemd accepts the units, the env
example reads as systemd reads it, one install path everywhere, and the commands the
units run take the flags they are given."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.foundation.test_docs import TEXTS, commands, problems_of
from weibo_mh.config import SECRET_ENV

DEPLOY = ROOT / "deploy"
UNITS = sorted((DEPLOY / "systemd").glob("*.service")) + sorted((DEPLOY / "systemd").glob("*.timer"))
INSTALL = "/opt/weibo-mh"
ENV_EXAMPLE = DEPLOY / "secrets.env.example"


def unit_settings(path: Path) -> list[tuple[str, str, str]]:
    """(section, key, value) of a unit file, continuation lines joined, comments dropped."""
    out, section = [], ""
    text = path.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.append((section, key.strip(), value.strip()))
    return out


def parse_environment_file(text: str) -> dict[str, str]:
    """systemd's EnvironmentFile= reading (systemd 252, parse_env_file): a line starting
    with # or ; is a comment; anything else is KEY=VALUE, and a "#" later in the line is
    part of the value. Surrounding quotes are removed; a line without "=" is an error."""
    env = {}
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        key, eq, value = line.partition("=")
        assert eq, f"line {n}: not KEY=VALUE: {raw!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[key.strip()] = value
    return env


def test_the_units_are_there():
    names = {p.name for p in UNITS}
    assert {"weibo-mh-scheduler.service", "weibo-mh-worker@.service", "weibo-mh-console.service",
            "weibo-mh-rollups.service", "weibo-mh-rollups.timer"} <= names


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_unit_values_hold_no_trailing_comment_and_use_one_install_path(unit):
    for section, key, value in unit_settings(unit):
        assert " #" not in value and not value.endswith("#"), (
            f"{unit.name} [{section}] {key}: systemd keeps a trailing comment in the value: {value!r}")
        if key in {"WorkingDirectory", "ExecStart"}:
            assert value.startswith(INSTALL), f"{unit.name}: {key}={value} is outside {INSTALL}"
        if key == "EnvironmentFile":
            assert value == "/etc/weibo-mh/secrets.env"


@pytest.mark.parametrize("unit", [u for u in UNITS if u.suffix == ".service"], ids=lambda p: p.name)
def test_the_command_a_unit_runs_takes_its_flags(unit):
    (cmd,) = [v for _, k, v in unit_settings(unit) if k == "ExecStart"]
    found = commands(f"`{cmd.replace('%H-%i', 'host-1').replace('%i', '9108')}`")
    assert found, f"{unit.name}: no weibo-mh or python -m command in {cmd!r}"
    for prog, args in found:
        assert not problems_of(prog, args), problems_of(prog, args)


def test_the_worker_template_gives_each_instance_its_own_metrics_port():
    (cmd,) = [v for _, k, v in unit_settings(DEPLOY / "systemd" / "weibo-mh-worker@.service")
              if k == "ExecStart"]
    assert "--metrics-port %i" in cmd and "--worker-id %H-%i" in cmd


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze is not installed")
def test_systemd_analyze_verify_accepts_every_unit(tmp_path):
    """The units as installed: the install path points at a tree with the two programs they
    start (systemd checks that each ExecStart program exists and is executable)."""
    root = tmp_path / "opt-weibo-mh"
    (root / ".venv" / "bin").mkdir(parents=True)
    for exe in ("python", "weibo-mh"):
        (root / ".venv" / "bin" / exe).symlink_to("/bin/true")
    names = []
    for unit in UNITS:
        text = unit.read_text(encoding="utf-8").replace(INSTALL, str(root))
        name = unit.name.replace("@.service", "@9108.service")
        if name != unit.name:  # verify an instance of the template
            (tmp_path / unit.name).write_text(text, encoding="utf-8")
        (tmp_path / name).write_text(text, encoding="utf-8")
        names.append(f"./{name}")
    done = subprocess.run(["systemd-analyze", "verify", *names], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    said = [ln for ln in (done.stdout + done.stderr).splitlines() if "weibo-mh" in ln]
    assert done.returncode == 0 and not said, done.stdout + done.stderr


def test_the_env_example_reads_as_systemd_reads_it():
    env = parse_environment_file(ENV_EXAMPLE.read_text(encoding="utf-8"))
    known = set(SECRET_ENV) | {"OPENAI_API_KEY"}
    assert {"DATABASE_URL", "WEIBO_COOKIE_FILE", "WEIBO_MH_SALT_FILE", "WEIBO_MH_CONSOLE_KEY_FILE"} <= set(env)
    for key, value in env.items():
        assert key in known, f"{key}: no weibo-mh service reads it"
        assert "#" not in value and not re.search(r"\s", value), f"{key}={value!r}"
        if key.endswith("_FILE"):
            assert value.startswith("/etc/weibo-mh/"), f"{key}={value}: a file outside the repository"


def test_the_parser_keeps_a_trailing_comment_as_systemd_does():
    env = parse_environment_file("# c\nA=/etc/x   # note\n;c\nB=\"q v\"\n")
    assert env == {"A": "/etc/x   # note", "B": "q v"}


def test_the_docs_link_the_units_instead_of_retyping_them():
    for path, text in TEXTS.items():
        assert "ExecStart=" not in text, f"{path.name} retypes a unit: link deploy/systemd/ instead"
        assert "EnvironmentFile=/etc/weibo-mh/secrets.env " not in text


def test_one_install_path_everywhere():
    files = [*TEXTS, *sorted((ROOT / "configs").glob("*.toml")), *UNITS, ENV_EXAMPLE]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for other in ("/opt/weibo-mental-health", "/srv/weibo-mh"):
            assert other not in text, f"{path.relative_to(ROOT)} names {other}; the install path is {INSTALL}"


# --------------------------------------------------------------------------- example configs

def secret_files(env: dict[str, str], etc: Path) -> dict[str, str]:
    """The environment with /etc/weibo-mh/ moved to ``etc``, and every file it names written
    as an operator would (one line each; keys of the lengths the services demand)."""
    content = {"WEIBO_COOKIE_FILE": "SUB=ours; SUBP=ours", "WEIBO_COM_COOKIE_FILE": "SUB=ours-com",
               "WEIBO_MH_SALT_FILE": "s" * 64, "WEIBO_MH_CONSOLE_KEY_FILE": "k" * 64}
    out = {}
    for key, value in env.items():
        value = value.replace("/etc/weibo-mh", str(etc))
        if key.endswith("_FILE"):
            Path(value).write_text(content[key] + "\n", encoding="utf-8")
        out[key] = value
    return out


@pytest.mark.parametrize("config", sorted((ROOT / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_example_config_validates_with_the_environment_its_comments_name(config, tmp_path):
    from weibo_mh.config import file_problems, load_config

    text = config.read_text(encoding="utf-8")
    named = re.search(r"^# Environment: (\S+)$", text, re.M)
    env = {}
    if named:
        env = secret_files(parse_environment_file((ROOT / named.group(1)).read_text(encoding="utf-8")),
                           tmp_path)
        env["DATABASE_URL"] = "sqlite:///" + str(tmp_path / "x.db")
    cfg = load_config(config, env=env)
    assert file_problems(cfg, env) == []
    if "/etc/weibo-mh/" in text:  # every secret file the config names comes from that environment
        assert named, f"{config.name} names secret files but not the environment that provides them"
        assert "/etc/weibo-mh" not in cfg.dump(env).replace(str(tmp_path), "")


def test_the_production_example_makes_alerts_from_the_workers_own_scorer():
    from weibo_mh.config import CONFIG_DIR, load_config

    cfg = load_config(CONFIG_DIR / "production.example.toml", env={})
    assert cfg.console.alert_scorer == "" or cfg.console.alert_scorer.startswith(cfg.worker.backend + ":")
    assert cfg.worker.metrics_port == 0, "the worker@ template gives each instance its port"
