"""The console's commands (serve through waitress, fill-queue, fill-alerts, new-key) and the
admin pages over HTTP, on SQLite."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from analysis.common import UsageError
from analysis.console.__main__ import main
from tests.conftest import ROOT
from tests.console.conftest import csrf
from tests.console.seed import MACHINE
from weibo_mh import db


@pytest.fixture
def db_url(sqlite_url: str) -> str:
    return sqlite_url


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_needs_a_key_and_binds_localhost(seeded: sa.Engine, tmp_path: Path) -> None:
    url = seeded.url.render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WEIBO_MH_CONSOLE")}
    env.update(PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'Weibo_Spider'}", DATABASE_URL=url)
    out = subprocess.run([sys.executable, "-m", "analysis.console"], env=env, capture_output=True,
                         text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 2 and "signing key" in out.stderr
    port = _free_port()
    env["WEIBO_MH_CONSOLE_KEY"] = "s" * 40
    proc = subprocess.Popen([sys.executable, "-m", "analysis.console", "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path)
    try:
        body = ""
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    body = r.read().decode()
                break
            except OSError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                time.sleep(0.1)
        assert '"ok"' in body
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin", timeout=5) as r:
            assert r.url.endswith("/login?next=/admin")  # followed the redirect to the login page
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    log = proc.stdout.read() if proc.stdout else ""
    assert f"event=serve url=http://127.0.0.1:{port}" in log and "s" * 40 not in log


def test_fill_commands(seeded: sa.Engine, tmp_path: Path, capsys: Any, monkeypatch: Any) -> None:
    url = seeded.url.render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", url)
    assert main(["fill-alerts", "--scorer", MACHINE, "--threshold", "9"]) == 0
    assert "5 new alerts from lexicon:v2" in capsys.readouterr().out  # 9, 10, 9, 10 and c22
    assert main(["fill-alerts", "--threshold", "9"]) == 0  # the only machine scorer is the default
    assert "0 new alerts" in capsys.readouterr().out
    ids = tmp_path / "ids.txt"
    ids.write_text("c01\nc02\nmissing\n")
    assert main(["fill-queue", "--strategy", "ids", "--ids", str(ids)]) == 0
    assert "queued 2 comments" in capsys.readouterr().out
    assert main(["fill-queue", "--n", "5", "--seed", "1"]) == 0
    assert "queued 5 comments (1 double-coded) of 5 asked, stratified by lexicon:v2" in capsys.readouterr().out
    key = tmp_path / "k" / "console.key"
    assert main(["new-key", str(key)]) == 0
    assert len(key.read_text().strip()) >= 32 and (key.stat().st_mode & 0o777) == 0o600
    with pytest.raises(UsageError, match="exists already"):
        main(["new-key", str(key)])  # never overwrites a key


def test_admin_pages_fill_export_and_audit(client_for: Any, seeded: sa.Engine) -> None:
    ada = client_for("ada")
    page = ada.get("/admin").get_data(as_text=True)
    assert MACHINE in page and "anna" in page
    token = csrf(page)
    r = ada.post("/admin/fill-alerts", data={"csrf_token": token, "scorer": MACHINE, "threshold": "7"},
                 follow_redirects=True)
    assert "9 new alerts from lexicon:v2" in r.get_data(as_text=True)
    r = ada.post("/admin/queue", data={"csrf_token": token, "strategy": "stratified", "scorer": MACHINE,
                                       "n": "11"}, follow_redirects=True)
    assert "Queued 11 comments" in r.get_data(as_text=True)
    with seeded.begin() as conn:
        conn.execute(db.alerts.update().where(db.alerts.c.comment_id == "c07")
                     .values(notes="=cmd|' /C calc'!A0", state="acknowledged"))
        other = conn.execute(sa.select(db.alerts.c.comment_id).where(db.alerts.c.comment_id != "c07")
                             .order_by(db.alerts.c.id)).scalars().first()
        # a bidi override would show the cell reversed; a control character, a bell or worse
        conn.execute(db.alerts.update().where(db.alerts.c.comment_id == other)
                     .values(notes="反向\u202e文字\x07 <- 倒着读", assignee="@SUM(A1)"))
    r = ada.get("/alerts/export.csv?state=all")
    assert r.headers["Content-Disposition"].startswith("attachment; filename=alerts-all-")
    text = r.get_data(as_text=True)
    assert "\u202e" not in text and "\x07" not in text
    rows = list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(rows) == 9
    assert next(x for x in rows if x["comment_id"] == "c07")["notes"] == "'=cmd|' /C calc'!A0"
    hostile = next(x for x in rows if x["comment_id"] == other)
    assert hostile["notes"] == "反向<U+202E>文字  <- 倒着读"
    assert hostile["assignee"] == "'@SUM(A1)"
    assert all(not v.startswith(("=", "+", "-", "@", "\t", "\r", "\n")) for x in rows for v in x.values())
    r = ada.post("/admin/users/bo/disable", data={"csrf_token": token}, follow_redirects=True)
    assert "bo: disabled" in r.get_data(as_text=True)
    audit = ada.get("/admin/audit").get_data(as_text=True)
    for action in ("fill_alerts", "fill_queue", "export_alerts", "disable_user", "login"):
        assert f"<td>{action}</td>" in audit, action
    assert ada.get("/alerts/99999").status_code == 404
