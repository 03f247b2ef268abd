"""Real receivers on 127.0.0.1 for the notification tests and the latency benchmark.

- ``SmtpInbox``: aiosmtpd's SMTP server (requires STARTTLS with a certificate made at test
  time, optional login), on an ephemeral port that survives ``stop``/``start`` (an outage);
- ``WebhookReceiver``: an HTTP server that checks the HMAC signature of every POST, can
  answer 500 a few times (an outage) or slowly, and records what it accepted and when.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import hashlib
import hmac
import ipaddress
import json
import threading
import time
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key, made now (never stored in the repo)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                        x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "smtp-cert.pem", directory / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class _Handler:
    def __init__(self, inbox: SmtpInbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.inbox._got(envelope, session)
        return "250 Message accepted for delivery"


class SmtpInbox:
    def __init__(self, cert: Path, key: Path, user: str = "", password: str = "", tls: bool = True) -> None:
        import ssl

        self.tls = tls
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.user, self.password = user, password
        self.messages: list[Message] = []
        self.arrivals: list[float] = []
        self.tls_seen: list[bool] = []
        self.port = 0
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def _auth(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.login.decode() == self.user \
            and data.password.decode() == self.password
        return AuthResult(success=ok, handled=False)

    def _got(self, envelope: Any, session: Any) -> None:
        with self._lock:
            self.messages.append(email.message_from_bytes(envelope.original_content or envelope.content))
            self.arrivals.append(time.time())
            self.tls_seen.append(session.ssl is not None)

    def _factory(self) -> SMTP:
        kw: dict[str, Any] = {"hostname": "localhost"}
        if self.tls:
            kw.update(tls_context=self.ctx, require_starttls=True)
        if self.user:
            kw.update(authenticator=self._auth, auth_require_tls=True, auth_required=True)
        return SMTP(_Handler(self), **kw)

    def start(self) -> SmtpInbox:
        loop = asyncio.new_event_loop()
        server = loop.run_until_complete(loop.create_server(self._factory, "127.0.0.1", self.port,
                                                            reuse_address=True))
        self.port = server.sockets[0].getsockname()[1]
        self._loop, self._server = loop, server
        self._thread = threading.Thread(target=loop.run_forever, name="smtp-inbox", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        loop, server = self._loop, self._server
        if loop is None:
            return

        async def close() -> None:
            server.close()
            await server.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(10)
        loop.close()
        self._loop = None

    def bodies(self) -> list[str]:
        with self._lock:
            return [m.get_payload(decode=True).decode("utf-8") for m in self.messages]


class WebhookReceiver:
    """POSTs with a good signature are recorded (200); a bad one gets 401 and is recorded apart."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.accepted: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.refused = 0
        self.fail_next = 0
        self.delay = 0.0
        #: requests with a good signature being answered now (a test can act mid-delivery)
        self.in_flight = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ts = self.headers.get("X-WeiboMH-Timestamp", "")
                want = "sha256=" + hmac.new(outer.secret.encode(), ts.encode() + b"." + body,
                                            hashlib.sha256).hexdigest()
                got = self.headers.get("X-WeiboMH-Signature", "")
                with outer._lock:
                    if not hmac.compare_digest(want, got):
                        outer.refused += 1
                        status = 401
                    elif outer.fail_next > 0:
                        outer.fail_next -= 1
                        status = 500
                    else:
                        status = 200
                    if status != 401:
                        outer.in_flight += 1
                if outer.delay:
                    time.sleep(outer.delay)
                with outer._lock:
                    if status == 200:
                        outer.accepted.append(json.loads(body))
                        outer.arrivals.append(time.time())
                    if status != 401:
                        outer.in_flight -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, name="webhook", daemon=True)

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alert_ids(self) -> list[int]:
        with self._lock:
            return [a["alert_id"] for p in self.accepted for a in p["alerts"]]
