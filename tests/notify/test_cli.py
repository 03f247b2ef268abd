"""``python -m weibo_mh.notify``: ``test`` answers one line per channel; ``run`` restarted after a
SIGTERM loses and duplicates nothing; after a SIGKILL mid-send it loses nothing, and the only
repeat is the message that was in flight (delivery is at least once, docs/deploying.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import ROOT
from tests.notify.conftest import SECRET, SMTP_PASSWORD, make_alerts
from tests.notify.receivers import SmtpInbox, WebhookReceiver
from weibo_mh import db
from weibo_mh.notify.outbox import Policy


def write_config(tmp_path: Path, url: str, hook: WebhookReceiver, inbox: SmtpInbox | None = None,
                 ca: Path | None = None, command: str = "") -> Path:
    (tmp_path / "hook.secret").write_text(SECRET)
    channels = ["webhook"] + (["email"] if inbox else []) + (["command"] if command else [])
    lines = [f'channels = {channels!r}'.replace("'", '"'), f'webhook_url = "{hook.url}"',
             f'webhook_secret_file = "{tmp_path / "hook.secret"}"', "digest_minutes = 0.0",
             "max_per_hour = 1000", "poll_seconds = 0.2"]
    if inbox:
        lines += ['smtp_host = "127.0.0.1"', f"smtp_port = {inbox.port}", 'smtp_user = "notifier"',
                  f'smtp_ca_file = "{ca}"', 'mail_from = "a@example.org"', 'mail_to = ["b@example.org"]',
                  "smtp_timeout_seconds = 3.0"]
    if command:
        lines.append(f"command = '{command}'")
    f = tmp_path / "notify.toml"
    f.write_text(f'[database]\nurl = "{url}"\n\n[notify]\n' + "\n".join(lines) + "\n")
    return f


def env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "smtp.pw").write_text(SMTP_PASSWORD)
    e = {k: v for k, v in os.environ.items() if not k.startswith("WEIBO_MH_")}
    e.update(WEIBO_MH_SMTP_PASSWORD_FILE=str(tmp_path / "smtp.pw"),
             PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "Weibo_Spider")]))
    return e


def notify(tmp_path: Path, config: Path, *args: str, **kw) -> subprocess.CompletedProcess[str]:  # noqa: ANN003
    return subprocess.run([sys.executable, "-m", "weibo_mh.notify", "--config", str(config), *args],
                          env=env(tmp_path), capture_output=True, text=True, timeout=60, **kw)


def test_notify_test_reports_each_channel_in_one_line(sqlite_url, tmp_path, hook, inbox, cert) -> None:
    config = write_config(tmp_path, sqlite_url, hook, inbox, cert[0], command=f"{sys.executable} -c pass")
    r = notify(tmp_path, config, "test")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == ["webhook: ok", "email: ok", "command: ok"]
    assert hook.accepted[0]["type"] == "test" and "test notification" in inbox.messages[0]["Subject"]
    inbox.stop()
    hook.fail_next = 1
    r = notify(tmp_path, config, "test")
    assert r.returncode == 1
    lines = r.stdout.splitlines()
    assert len(lines) == 3 and lines[2] == "command: ok"
    assert lines[0].startswith("webhook: FAILED: webhook http://127.0.0.1:") and "HTTP 500" in lines[0]
    assert lines[1].startswith("email: FAILED: SMTP 127.0.0.1:") and "Refused" in lines[1]
    assert SMTP_PASSWORD not in r.stdout + r.stderr and SECRET not in r.stdout + r.stderr


def test_notify_test_without_a_secret_is_a_config_error(sqlite_url, tmp_path, hook) -> None:
    config = write_config(tmp_path, sqlite_url, hook)
    (tmp_path / "hook.secret").unlink()
    r = notify(tmp_path, config, "test")
    assert r.returncode == 2 and "hook.secret does not exist" in r.stderr and "Traceback" not in r.stderr


def sent(url: str) -> dict[str, int]:
    eng = db.make_engine(url)
    with eng.connect() as conn:
        out: dict[str, int] = dict(conn.execute(sa.select(db.notifications.c.state, sa.func.count())
                                .group_by(db.notifications.c.state)).all())
    eng.dispose()
    return out


def start(tmp_path: Path, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "weibo_mh.notify", "--config", str(config), "run"],
                            env=env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_until(check, timeout: float = 20) -> None:  # noqa: ANN001
    end = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < end, "timed out"
        time.sleep(0.05)


@pytest.mark.slow
def test_restarts_lose_nothing_and_repeat_at_most_the_message_in_flight(sqlite_url, tmp_path, hook) -> None:
    config = write_config(tmp_path, sqlite_url, hook)
    engine = db.make_engine(sqlite_url)
    policy = Policy(("webhook",))
    hook.delay = 1.5
    # SIGTERM while a message is in flight: it is finished and marked, then the process exits
    make_alerts(engine, [9, 9, 10], policy)
    proc = start(tmp_path, config)
    wait_until(lambda: hook.in_flight > 0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert sent(sqlite_url) == {"sent": 3} and len(hook.alert_ids()) == 3
    # restarted: the next alerts, and nothing again
    make_alerts(engine, [8, 9], policy, start=3)
    proc = start(tmp_path, config)
    wait_until(lambda: sent(sqlite_url) == {"sent": 5})
    # SIGKILL mid-send: the message reaches the receiver but is never marked
    make_alerts(engine, [10], policy, start=5)
    wait_until(lambda: hook.in_flight > 0)
    proc.kill()
    proc.wait()
    wait_until(lambda: len(hook.alert_ids()) == 6)
    assert sent(sqlite_url) == {"sent": 5, "pending": 1}
    proc = start(tmp_path, config)  # frees the dead process's lease at once, sends the pending row
    wait_until(lambda: sent(sqlite_url) == {"sent": 6})
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=30)
    ids = hook.alert_ids()
    with engine.connect() as conn:
        all_ids = sorted(conn.execute(sa.select(db.alerts.c.id)).scalars())
    assert sorted(set(ids)) == all_ids            # nothing lost
    assert len(ids) == 7 and ids[-1] == ids[-2]   # the one repeat: the killed message, same alert id
    engine.dispose()
