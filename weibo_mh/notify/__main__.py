"""``python -m weibo_mh.notify`` (``weibo-mh notify``): run the sender, test the channels,
show the outbox, retry failed notifications."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from weibo_mh import db
from weibo_mh.config import ConfigError, load_or_exit, resolve_sqlite_url
from weibo_mh.notify import outbox


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m weibo_mh.notify",
        description="Push new alerts to responders through the channels of [notify] (webhook, email, "
                    "command). Notifications are written to the outbox with their alerts; this sends them.")
    def common(p: argparse.ArgumentParser, default: Any) -> None:
        # before or after the command: `notify --config F test` and `notify test --config F`
        p.add_argument("--config", default=default,
                       help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
        p.add_argument("--db", metavar="URL", default=default,
                       help="database URL (default: DATABASE_URL or database.url)")

    common(ap, None)
    sub = ap.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run = sub.add_parser("run", help="send pending notifications until SIGTERM (or once with --once)")
    run.add_argument("--once", action="store_true", help="one round over the channels, then exit")
    test = sub.add_parser("test", help="send a test message through each configured channel; one line each")
    status = sub.add_parser("status", help="notifications per channel and state, and each channel's back-off")
    retry = sub.add_parser("retry", help="make failed notifications pending again")
    for p in (run, test, status, retry):
        common(p, argparse.SUPPRESS)
    retry.add_argument("--channel", help="only this channel")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = load_or_exit(a.config)
    try:
        if a.command == "test":
            return _test(cfg)
        url = resolve_sqlite_url(a.db, Path.cwd()) if a.db else cfg.database.url
        engine = db.open_checked(url)
        if a.command == "status":
            return _status(engine)
        if a.command == "retry":
            with engine.begin() as conn:
                n = outbox.retry(conn, a.channel)
            print(f"{n} failed notifications are pending again")
            return 0
        return _run(cfg, engine, a.once)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except (db.SchemaError, sa.exc.SQLAlchemyError) as e:
        print(f"error: database: {db.short_error(e)}", file=sys.stderr)
        return 1


def _test(cfg: Any) -> int:
    from weibo_mh.notify.channels import SendError, channels_from
    from weibo_mh.notify.message import Renderer

    channels = channels_from(cfg)
    if not channels:
        print("no channel configured: set notify.channels (webhook, email, command)")
        return 1
    digest = Renderer.from_config(cfg).test_digest()
    failed = 0
    for name, ch in channels.items():
        try:
            ch.send(digest)
        except SendError as e:
            failed += 1
            print(f"{name}: FAILED: {e}")
        else:
            print(f"{name}: ok")
    return 1 if failed else 0


def _status(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        counts = outbox.counts(conn)
        chans = conn.execute(sa.select(db.notify_channels)).all()
    names = sorted({c for c, _ in counts} | {r.channel for r in chans})
    if not names:
        print("the outbox is empty")
    for name in names:
        per = ", ".join(f"{s} {counts.get((name, s), 0)}" for s in db.NOTIFY_STATES)
        row = next((r for r in chans if r.channel == name), None)
        extra = ""
        if row is not None and row.failures:
            extra = f"; {row.failures} failures in a row, next try {row.retry_at}: {row.last_error}"
        print(f"{name}: {per}{extra}")
    return 0


def _run(cfg: Any, engine: sa.Engine, once: bool) -> int:
    from weibo_mh.notify.channels import channels_from
    from weibo_mh.notify.sender import Notifier

    channels = channels_from(cfg)
    if not channels:
        raise ConfigError(f"{cfg.source}: notify.channels is empty: nothing to send through")
    notifier = Notifier.from_config(cfg, engine, channels)
    if once:
        notifier.reclaim()
        print(f"{notifier.tick()} messages sent")
        return 0
    signal.signal(signal.SIGTERM, lambda *_: notifier.stop())
    signal.signal(signal.SIGINT, lambda *_: notifier.stop())
    notifier.run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
