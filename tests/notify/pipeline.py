"""The whole loop as a user runs it: the scheduler (watch rounds) and the scoring worker (with
its notifier thread) as child processes, against a LocalSite with a watched tree-hole post,
an SMTP inbox and a webhook receiver. Used by the end-to-end test and bench/bench_watch.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from weibo.localsite import TREE_HOLE_MID, LocalSite

from tests.conftest import ROOT, TEST_SALT
from tests.notify.conftest import CRISIS, SECRET, SMTP_PASSWORD, SMTP_USER
from tests.notify.receivers import SmtpInbox, WebhookReceiver

SCHEDULE = ROOT / "Weibo_Spider" / "default_schedule.py"
LABEL = "树洞（本地测试）"
#: A comment the lexicon scorer puts at suicide risk 10 (text written for these tests).
HIGH_RISK = "测试用语：遗书已经写好了，今晚就从楼顶跳下去，再见了"


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


class Pipeline:
    def __init__(self, work: Path, db_url: str, site: LocalSite, inbox: SmtpInbox, hook: WebhookReceiver,
                 ca_file: Path, *, fast: bool, notify: str = "", watch_every: int = 1) -> None:
        self.work, self.db_url, self.site = work, db_url, site
        self.inbox, self.hook, self.ca_file = inbox, hook, ca_file
        self.fast, self.notify_extra, self.watch_every = fast, notify, watch_every
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.config = self._write_config()

    def _write_config(self) -> Path:
        w = self.work
        (w / "webhook.secret").write_text(SECRET + "\n")
        (w / "smtp.password").write_text(SMTP_PASSWORD + "\n")
        # fast: the spider tests' settings (no delay); otherwise the default politeness
        spider = ('download_delay = 0.0\nautothrottle = false\nflush_seconds = 1.0\n'
                  'ban_backoff_seconds = 0.01\n' if self.fast else "")
        worker = "idle_sleep_max_seconds = 2.0\n" if self.fast else ""
        notify = "poll_seconds = 1.0\n" if self.fast else ""
        cfg = f"""
[database]
url = {toml_str(self.db_url)}

[spider]
hotsearch_url = {toml_str(self.site.hotsearch_url)}
weibo_cn_base = {toml_str(self.site.url)}
s_weibo_base = {toml_str(self.site.s_weibo_base)}
weibo_com_base = {toml_str(self.site.weibo_com_base)}
{spider}
[schedule]
lock_file = {toml_str(str(w / "crawl.lock"))}
log_dir = {toml_str(str(w / "logs"))}

[watch]
posts = [{{post = "{TREE_HOLE_MID}", label = {toml_str(LABEL)}}}]
every_minutes = {self.watch_every}
lock_file = {toml_str(str(w / "watch.lock"))}

[worker]
backend = "lexicon"
{worker}
[analysis]
crisis_resources = {toml_str(CRISIS)}

[console]
public_url = "http://127.0.0.1:8080"

[notify]
channels = ["webhook", "email"]
webhook_url = {toml_str(self.hook.url)}
webhook_secret_file = {toml_str(str(w / "webhook.secret"))}
smtp_host = "127.0.0.1"
smtp_port = {self.inbox.port}
smtp_user = {toml_str(SMTP_USER)}
smtp_ca_file = {toml_str(str(self.ca_file))}
mail_from = "weibo-mh@example.org"
mail_to = ["team@example.org"]
{notify}{self.notify_extra}
"""
        path = w / "watch.toml"
        path.write_text(cfg, encoding="utf-8")
        return path

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WEIBO_COOKIE", "WEIBO_COM_COOKIE",
                                                                        "WEIBO_MH_"))}
        env.update(WEIBO_MH_CONFIG=str(self.config), DATABASE_URL=self.db_url, WEIBO_MH_SALT=TEST_SALT,
                   WEIBO_MH_SMTP_PASSWORD_FILE=str(self.work / "smtp.password"),
                   PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "Weibo_Spider")]))
        return env

    def start(self, nice: int = 0) -> None:
        pre = ["nice", "-n", str(nice)] if nice else []
        logs = self.work / "logs"
        logs.mkdir(exist_ok=True)
        cmds = {"scheduler": [*pre, sys.executable, str(SCHEDULE), "--config", str(self.config)],
                "worker": [*pre, sys.executable, "-m", "llm_worker", "--config", str(self.config)]}
        for name, cmd in cmds.items():
            out = open(logs / f"{name}.out", "wb")  # noqa: SIM115 - the child keeps it
            self.procs[name] = subprocess.Popen(cmd, env=self.env(), stdout=out, stderr=subprocess.STDOUT,
                                                cwd=ROOT)

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs.values())

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log(self, name: str) -> str:
        return (self.work / "logs" / f"{name}.out").read_text(encoding="utf-8", errors="replace")
