"""The sender against real receivers: an SMTP server with STARTTLS and login (aiosmtpd) and
an HTTP receiver that checks the HMAC signature. Outages, digests, the hourly cap and two
notifiers at once: every alert reaches every channel exactly once."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.notify.conftest import CRISIS, SECRET, Clock, make_alerts, notify_cfg, smtp_env
from tests.notify.receivers import SmtpInbox, WebhookReceiver
from weibo_mh import db
from weibo_mh.config import ConfigError
from weibo_mh.notify.channels import Webhook, channels_from
from weibo_mh.notify.message import Renderer
from weibo_mh.notify.outbox import Policy, policy_from
from weibo_mh.notify.sender import Notifier
from weibo_mh.rubric import CAUTION


def notifier(cfg, engine: sa.Engine, tmp_path: Path, clock: Clock | None = None, **kw) -> Notifier:
    return Notifier.from_config(cfg, engine, channels_from(cfg, env=smtp_env(tmp_path)),
                                clock=clock or db.now, **kw)


def states(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return dict(conn.execute(sa.select(db.notifications.c.state, sa.func.count())
                                 .group_by(db.notifications.c.state)).all())


def alert_ids(engine: sa.Engine) -> list[int]:
    with engine.connect() as conn:
        return sorted(conn.execute(sa.select(db.alerts.c.id)).scalars())


def test_one_alert_reaches_the_inbox_and_the_webhook(engine, tmp_path, inbox: SmtpInbox,
                                                     hook: WebhookReceiver, cert) -> None:
    cfg = notify_cfg(str(engine.url), tmp_path, ["webhook", "email"], hook, inbox, cert[0])
    author = "f" * 64
    make_alerts(engine, [6, 9], policy_from(cfg), author=author, text="测试：不想再撑下去了")
    make_alerts(engine, [8], policy_from(cfg), start=5, author=author)  # the same author again
    n = notifier(cfg, engine, tmp_path)
    assert n.tick() == 2
    assert inbox.tls_seen == [True]
    [mail] = inbox.bodies()
    [payload] = hook.accepted
    assert hook.refused == 0
    assert {a["level"] for a in payload["alerts"]} == {8, 9}
    for text in (mail, str(payload)):
        assert "https://console.example.org/alerts/" in text
        assert CRISIS in text and CAUTION[:60] in text
        assert "树洞测试" in text  # the topic
        assert "不想再撑" not in text and author not in text  # no text, no author hash
        assert "repeated" in text
    assert inbox.messages[0]["Subject"].startswith("[weibo-mh] 2 new alerts: suicide risk 9, 8")
    assert states(engine) == {"sent": 4}
    assert n.tick() == 0  # nothing twice


def test_text_only_when_include_text(sq, tmp_path, hook: WebhookReceiver) -> None:
    cfg = notify_cfg(str(sq.url), tmp_path, ["webhook"], hook, include_text=True)
    make_alerts(sq, [10], policy_from(cfg), text="测试：今晚就结束")
    notifier(cfg, sq, tmp_path).tick()
    assert hook.accepted[0]["alerts"][0]["text"] == "测试：今晚就结束"


def test_every_footer_has_the_caution_and_the_crisis_resources() -> None:
    assert Renderer(crisis_resources="12356").footer.endswith("Crisis resources: 12356")
    bare = Renderer().test_digest().text()
    assert CAUTION in bare and "Crisis resources: none configured (set analysis.crisis_resources)" in bare


def test_a_wrong_secret_is_refused_by_the_receiver(hook: WebhookReceiver) -> None:
    from weibo_mh.notify.channels import SendError

    with pytest.raises(SendError, match="HTTP 401"):
        Webhook(hook.url, "not-" + SECRET, 5).send(Renderer().test_digest())
    Webhook(hook.url, SECRET, 5).send(Renderer().test_digest())
    assert hook.refused == 1 and len(hook.accepted) == 1


def test_webhook_errors_never_name_the_path_or_query() -> None:
    from weibo_mh.notify.channels import SendError

    hook = Webhook("http://127.0.0.1:9/services/T0KEN/S3CRET?key=K3Y", SECRET, 2)
    with pytest.raises(SendError) as e:
        hook.send(Renderer().test_digest())
    assert str(e.value).startswith("webhook http://127.0.0.1:9: ConnectionError")
    assert "T0KEN" not in str(e.value) and "K3Y" not in str(e.value)


def test_email_refuses_a_server_without_starttls_or_with_an_untrusted_certificate(cert) -> None:
    from weibo_mh.notify.channels import Email, SendError

    plain = SmtpInbox(cert[0], cert[1], tls=False).start()
    try:
        with pytest.raises(SendError, match="does not offer STARTTLS"):
            Email("127.0.0.1", plain.port, True, "", "", "a@b.org", ["c@d.org"], 5).send(Renderer().test_digest())
    finally:
        plain.stop()
    assert plain.messages == []
    tls = SmtpInbox(*cert).start()
    try:  # the system's CAs do not know the test certificate
        with pytest.raises(SendError, match="CERTIFICATE_VERIFY_FAILED|SSLCertVerificationError"):
            Email("127.0.0.1", tls.port, True, "", "", "a@b.org", ["c@d.org"], 5).send(Renderer().test_digest())
    finally:
        tls.stop()
    assert tls.messages == []


def test_outages_lose_and_duplicate_nothing(engine, tmp_path, inbox: SmtpInbox, hook: WebhookReceiver,
                                            cert) -> None:
    cfg = notify_cfg(str(engine.url), tmp_path, ["webhook", "email"], hook, inbox, cert[0],
                     digest_minutes=0.0, max_per_hour=1000, backoff_seconds=30.0)
    clock = Clock()
    n = notifier(cfg, engine, tmp_path, clock)
    inbox.stop()          # the SMTP server is down
    hook.fail_next = 2    # the webhook answers 500 twice
    make_alerts(engine, [9, 10], policy_from(cfg))
    assert n.tick() == 0
    with engine.connect() as conn:
        errors = {r.channel: r.last_error for r in conn.execute(sa.select(db.notifications))}
    assert "HTTP 500" in errors["webhook"] and "SMTP 127.0.0.1" in errors["email"]
    assert SECRET not in str(errors)
    make_alerts(engine, [8], policy_from(cfg), start=10)  # arrives during the outage
    assert n.tick() == 0  # backing off: nothing tried
    clock.advance(seconds=31)
    assert n.tick() == 0  # webhook 500 again, SMTP still down
    clock.advance(seconds=61)
    inbox.start()         # back, on the same port
    assert n.tick() == 2
    assert sorted(hook.alert_ids()) == sorted(set(hook.alert_ids())) and len(hook.alert_ids()) == 3
    assert len(inbox.messages) == 1 and inbox.messages[0]["Subject"].startswith("[weibo-mh] 3 new alerts")
    assert states(engine) == {"sent": 6}
    clock.advance(hours=2)
    assert n.tick() == 0


def test_digest_window_and_hourly_cap_hold_back_but_never_drop(engine, tmp_path,
                                                               hook: WebhookReceiver) -> None:
    cfg = notify_cfg(str(engine.url), tmp_path, ["webhook"], hook, digest_minutes=5.0, max_per_hour=2)
    clock = Clock()
    n = notifier(cfg, engine, tmp_path, clock)
    policy = policy_from(cfg)
    make_alerts(engine, [9], policy)
    assert n.tick() == 1                   # the first alert goes at once
    make_alerts(engine, [9, 10], policy, start=1)
    clock.advance(minutes=2)
    make_alerts(engine, [8], policy, start=3)
    assert n.tick() == 0                   # inside the window: gathered
    clock.advance(minutes=3, seconds=1)
    assert n.tick() == 1                   # one digest of three
    assert [len(p["alerts"]) for p in hook.accepted] == [1, 3]
    make_alerts(engine, [7, 9], policy, start=4)
    clock.advance(minutes=10)
    assert n.tick() == 0                   # two messages in the last hour: capped
    assert states(engine) == {"sent": 4, "pending": 2}
    clock.advance(minutes=46)              # the first message leaves the hour
    assert n.tick() == 1
    assert [len(p["alerts"]) for p in hook.accepted] == [1, 3, 2]
    assert sorted(hook.alert_ids()) == alert_ids(engine)


def test_two_notifiers_at_once_send_each_alert_once(engine, tmp_path, hook: WebhookReceiver) -> None:
    cfg = notify_cfg(str(engine.url), tmp_path, ["webhook"], hook, digest_minutes=0.0, max_per_hour=100_000)
    hook.delay = 0.05
    senders = [notifier(cfg, engine, tmp_path) for _ in range(2)]
    done = threading.Event()

    def spin(n: Notifier) -> None:
        while not done.is_set():
            n.tick()

    threads = [threading.Thread(target=spin, args=(s,)) for s in senders]
    for t in threads:
        t.start()
    try:
        for k in range(12):
            make_alerts(engine, [9], policy_from(cfg), start=k)
        for _ in range(200):
            if states(engine) == {"sent": 12}:
                break
            threading.Event().wait(0.05)
    finally:
        done.set()
        for t in threads:
            t.join(10)
    assert states(engine) == {"sent": 12}
    assert sorted(hook.alert_ids()) == alert_ids(engine) and len(alert_ids(engine)) == 12


def test_command_channel_gets_the_alert_in_its_environment(sq, tmp_path) -> None:
    out = tmp_path / "env.txt"
    script = tmp_path / "page.py"
    script.write_text("import os, sys\nopen(sys.argv[1], 'w').write(os.environ['WEIBO_MH_NOTIFY_MAX_LEVEL'] + "
                      "'|' + os.environ['WEIBO_MH_NOTIFY_LINK'] + '|' + sys.stdin.read())\n")
    import sys

    cfg = notify_cfg(str(sq.url), tmp_path, ["command"], command=f"{sys.executable} {script} '{out}'")
    make_alerts(sq, [10], policy_from(cfg))
    assert notifier(cfg, sq, tmp_path).tick() == 1
    level, link, body = out.read_text().split("|", 2)
    assert level == "10" and link == f"https://console.example.org/alerts/{alert_ids(sq)[0]}"
    assert '"alerts"' in body


def test_missing_secrets_stop_at_start(tmp_path, sq) -> None:
    hook_cfg = notify_cfg(str(sq.url), tmp_path, ["webhook"], webhook_url="http://127.0.0.1:9/h")
    with pytest.raises(ConfigError, match="HMAC secret"):
        channels_from(hook_cfg, env={})
    mail = notify_cfg(str(sq.url), tmp_path, ["email"], smtp_host="127.0.0.1", smtp_user="u",
                      mail_from="a@b", mail_to=["c@d"])
    with pytest.raises(ConfigError, match="WEIBO_MH_SMTP_PASSWORD"):
        channels_from(mail, env={})


def test_policy_only_for_configured_channels(sq, tmp_path) -> None:
    cfg = notify_cfg(str(sq.url), tmp_path, [])
    assert policy_from(cfg) is None
    cfg.notify.channels = ["command"]
    assert policy_from(cfg) == Policy(("command",), 7, False, 72.0)
