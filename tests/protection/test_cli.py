"""The three commands as a user (or a timer) runs them: clear --help through ``weibo-mh``, and
retention and forget need only the kernel (no pandas, Scrapy or torch on a spider box)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

BLOCK = "import sys\nfor _m in ('pandas', 'torch', 'scrapy', 'matplotlib', 'pyarrow'):\n    sys.modules[_m] = None\n"


def _run(code: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "Weibo_Spider")])}
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("name, options", [
    ("retention", ["--texts-older-than", "--rows-older-than", "--audit-log-older-than", "--dry-run"]),
    ("forget", ["--weibo-uid", "--author-hash", "--nickname", "--dry-run"]),
    ("export", ["--since", "--until", "--topic", "--scorer", "--format", "--with-text", "--stable-authors"]),
])
def test_help(name, options):
    r = _run(f"from weibo_mh.cli import main\nraise SystemExit(main([{name!r}, '--help']))")
    assert r.returncode == 0, r.stderr
    for opt in options:
        assert opt in r.stdout


@pytest.mark.parametrize("module", ["weibo_mh.protection.retention", "weibo_mh.protection.forget"])
def test_runs_with_the_kernel_alone(module, sqlite_url):
    r = _run(BLOCK + f"import runpy\nsys.argv = ['x', '--db', {sqlite_url!r}, '--dry-run', "
             + ("'--rows-older-than', '30'" if "retention" in module else f"'--author-hash', {'0' * 64!r}")
             + f"]\nrunpy.run_module({module!r}, run_name='__main__')")
    assert r.returncode == 0, r.stderr
    assert "would" in r.stdout
