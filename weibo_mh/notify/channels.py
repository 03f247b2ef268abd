"""How a digest reaches responders: a signed webhook, an e-mail over SMTP, or a command.

Each channel's ``send`` returns when the receiver took the message and raises ``SendError``
(one line, never a secret) otherwise; the sender decides about retries.

- webhook: POST of the digest's JSON; ``X-WeiboMH-Signature: sha256=<hex>`` is the
  HMAC-SHA256, under the secret, of ``<X-WeiboMH-Timestamp>.<body>`` (the timestamp-dot-body
  scheme of Stripe-style signatures, so a receiver can refuse replays; GitHub's
  ``X-Hub-Signature-256`` signs the body alone). ``X-WeiboMH-Delivery`` is the digest id.
  Only a 2xx answer counts; redirects are not followed.
- email: SMTP with STARTTLS required by default: a server that does not offer it gets no
  mail (no quiet fallback to clear text); optional login.
- command: no shell; the digest in ``WEIBO_MH_NOTIFY_*`` variables and as JSON on stdin, as
  ``schedule.notify_command`` passes a crawl run.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import shlex
import smtplib
import ssl
import subprocess
import time
from collections.abc import Mapping
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any, Protocol

from weibo_mh.config import notify_secrets
from weibo_mh.notify.message import Digest

SIGNATURE_HEADER = "X-WeiboMH-Signature"
TIMESTAMP_HEADER = "X-WeiboMH-Timestamp"
DELIVERY_HEADER = "X-WeiboMH-Delivery"
ERROR_CHARS = 300


class SendError(Exception):
    """The channel did not take the message; the text says why, in one line."""


class Channel(Protocol):
    name: str

    def send(self, digest: Digest) -> None: ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def _one_line(text: str) -> str:
    return " ".join(str(text).split())[:ERROR_CHARS]


class Webhook:
    name = "webhook"

    def __init__(self, url: str, secret: str, timeout: float) -> None:
        from urllib.parse import urlsplit

        self.url, self._secret, self.timeout = url, secret, timeout
        # errors name the host only: chat webhooks carry their token in the path
        parts = urlsplit(url)
        self.where = f"webhook {parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}"
        self._hide = [x for x in (parts.path, parts.query) if len(x) > 1]

    def _clean(self, text: str) -> str:
        for x in self._hide:
            text = text.replace(x, "/…")
        return _one_line(text)

    def send(self, digest: Digest) -> None:
        import requests

        body = digest.body()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json; charset=utf-8", TIMESTAMP_HEADER: ts,
                   SIGNATURE_HEADER: sign(self._secret, ts, body), DELIVERY_HEADER: digest.id,
                   "User-Agent": "weibo-mental-health notifier"}
        try:
            r = requests.post(self.url, data=body, headers=headers, timeout=self.timeout,
                              allow_redirects=False)
        except requests.RequestException as e:
            raise SendError(f"{self.where}: {type(e).__name__}: {self._clean(str(e))}") from None
        if not 200 <= r.status_code < 300:
            raise SendError(f"{self.where}: HTTP {r.status_code} {self._clean(r.text[:200])}")


class Email:
    name = "email"

    def __init__(self, host: str, port: int, starttls: bool, user: str, password: str, sender: str,
                 to: list[str], timeout: float, ca_file: str = "") -> None:
        self.host, self.port, self.starttls, self.user = host, port, starttls, user
        self._password = password
        self.sender, self.to, self.timeout, self.ca_file = sender, list(to), timeout, ca_file

    def message(self, digest: Digest) -> EmailMessage:
        m = EmailMessage()
        m["Subject"] = digest.subject
        m["From"] = self.sender
        m["To"] = ", ".join(self.to)
        m["Date"] = formatdate(localtime=False, usegmt=True)
        # the Message-ID names the digest (as X-WeiboMH-Delivery does for the webhook)
        m["Message-ID"] = make_msgid(idstring=digest.id, domain="weibo-mh.invalid")
        m.set_content(digest.text())
        return m

    def send(self, digest: Digest) -> None:
        where = f"SMTP {self.host}:{self.port}"
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as s:
                s.ehlo()
                if self.starttls:
                    if not s.has_extn("starttls"):
                        raise SendError(f"{where}: the server does not offer STARTTLS "
                                        f"(notify.smtp_starttls = true refuses to send in clear)")
                    ctx = ssl.create_default_context(cafile=self.ca_file or None)
                    s.starttls(context=ctx)
                    s.ehlo()
                if self.user:
                    s.login(self.user, self._password)
                s.send_message(self.message(digest))
        except SendError:
            raise
        except smtplib.SMTPResponseException as e:
            msg = e.smtp_error.decode("utf-8", "replace") if isinstance(e.smtp_error, bytes) else e.smtp_error
            raise SendError(f"{where}: {e.smtp_code} {_one_line(msg)}") from None
        except (smtplib.SMTPException, OSError) as e:  # refused, timeout, TLS failure, DNS
            raise SendError(f"{where}: {type(e).__name__}: {_one_line(str(e))}") from None


class Command:
    name = "command"

    def __init__(self, command: str, timeout: float) -> None:
        self.argv = shlex.split(command)
        self.timeout = timeout

    def environment(self, digest: Digest) -> dict[str, str]:
        top = max(digest.items, key=lambda i: i.level, default=None)
        env = dict(os.environ, WEIBO_MH_NOTIFY_DIGEST=digest.id, WEIBO_MH_NOTIFY_SUBJECT=digest.subject,
                   WEIBO_MH_NOTIFY_COUNT=str(len(digest.items)),
                   WEIBO_MH_NOTIFY_ALERT_IDS=",".join(str(i.alert_id) for i in digest.items),
                   WEIBO_MH_NOTIFY_MAX_LEVEL=str(top.level if top else 0),
                   WEIBO_MH_NOTIFY_LINK=top.link if top else "",
                   WEIBO_MH_NOTIFY_TEXT=digest.text(), WEIBO_MH_NOTIFY_TEST="1" if digest.test else "0")
        return env

    def send(self, digest: Digest) -> None:
        try:
            done = subprocess.run(self.argv, env=self.environment(digest), input=digest.body(),
                                  capture_output=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SendError(f"command {self.argv[0]}: {_one_line(str(e))}") from None
        if done.returncode:
            err = _one_line(done.stderr.decode("utf-8", "replace"))
            raise SendError(f"command {self.argv[0]} exited {done.returncode}" + (f": {err}" if err else ""))


def channels_from(cfg: Any, env: Mapping[str, str] | None = None) -> dict[str, Channel]:
    """The configured channels with their secrets read; ConfigError when a secret is missing."""
    no = cfg.notify
    secret, password = notify_secrets(cfg, env)
    out: dict[str, Channel] = {}
    for name in no.channels:
        if name == "webhook":
            out[name] = Webhook(no.webhook_url, secret, no.webhook_timeout_seconds)
        elif name == "email":
            out[name] = Email(no.smtp_host, no.smtp_port, no.smtp_starttls, no.smtp_user, password,
                              no.mail_from, no.mail_to, no.smtp_timeout_seconds, no.smtp_ca_file)
        elif name == "command":
            out[name] = Command(no.command, no.command_timeout_seconds)
    return out
