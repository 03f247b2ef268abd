"""``python -m analysis.console``: serve the review console, or manage it from the shell.

    python -m analysis.console --config /etc/weibo-mh/production.toml            # serve on 127.0.0.1:8080
    python -m analysis.console add-user alice --role annotator             # asks for the password
    python -m analysis.console fill-queue --strategy stratified --scorer lexicon:v2 --n 200
    python -m analysis.console fill-alerts --scorer lexicon:v2 --threshold 7
    python -m analysis.console new-key /etc/weibo-mh/console.key            # a session signing key
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from analysis.common import Parser, UsageError, open_database
from analysis.console.writes import write
from weibo_mh.config import Config, ConfigError, console_key_from, load_or_exit, resolve_sqlite_url

log = logging.getLogger("analysis.console")
COMMANDS = ("serve", "add-user", "fill-queue", "fill-alerts", "new-key")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE",
                   help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    p.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL, else database.url)")


def parser() -> Parser:
    doc = __doc__ or ""
    ap = Parser(prog="python -m analysis.console", formatter_class=argparse.RawDescriptionHelpFormatter,
                description="The review console: human labels, agreement with the scorers, alert "
                            "triage. Without a command it serves the console.",
                epilog="examples:\n" + "\n".join(doc.split("\n\n")[1:]))
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    s = sub.add_parser("serve", help="serve the console (the default)")
    _serve_options(s)
    u = sub.add_parser("add-user", help="create a user (asks for the password, twice)")
    u.add_argument("name")
    u.add_argument("--role", required=True, choices=("annotator", "responder", "admin"))
    u.add_argument("--replace", action="store_true", help="set a new password and role for an existing user")
    _common(u)
    q = sub.add_parser("fill-queue", help="add comments to the annotation queue")
    q.add_argument("--strategy", choices=("stratified", "random", "ids"), default="stratified")
    q.add_argument("--scorer", help="stratify by this scorer's suicide-risk level "
                                    "(default: console.alert_scorer, analysis.scorer, the most used)")
    q.add_argument("--n", type=int, help="comments to add (default: console.queue_size)")
    q.add_argument("--ids", metavar="FILE", help="with --strategy ids: a file of comment ids, one a line")
    q.add_argument("--seed", type=int, help="random seed for the double-coding draw")
    _common(q)
    f = sub.add_parser("fill-alerts", help="create alerts from scores at or above a level (idempotent)")
    f.add_argument("--scorer", help="default: console.alert_scorer, analysis.scorer, the most used")
    f.add_argument("--threshold", type=int, help="suicide-risk level (default: console.alert_threshold)")
    _common(f)
    k = sub.add_parser("new-key", help="write a new random session signing key to FILE (mode 600)")
    k.add_argument("file")
    return ap


def _serve_options(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--host", help="address to bind (default: console.host, 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default: console.port, 8080)")
    p.add_argument("--threads", type=int, default=8, help="request threads (default 8)")


def _engine(a: argparse.Namespace, cfg: Config) -> sa.Engine:
    url = resolve_sqlite_url(a.db, Path.cwd()) if a.db else cfg.database.url
    return open_database(url)


def _default_scorer(conn: sa.Connection, cfg: Config) -> str:
    from analysis.queries import scorers

    if cfg.console.alert_scorer:
        return str(cfg.console.alert_scorer)
    if cfg.analysis.scorer:
        return str(cfg.analysis.scorer)
    machine = [s for s in scorers(conn) if not s.startswith("human:")]
    if not machine:
        raise UsageError("no machine scores in the database yet: run the worker first, or give --scorer")
    return machine[0]


def _read_password() -> str:
    first = getpass.getpass("password (at least 10 characters): ")
    second = getpass.getpass("again: ")
    if first != second:
        raise UsageError("the two passwords differ; nothing changed")
    return first


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in (*COMMANDS, "-h", "--help"):
        args = ["serve", *args]
    a = parser().parse_args(args)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if a.command == "new-key":
        return _new_key(Path(a.file))
    cfg = load_or_exit(a.config)
    if a.command == "add-user":
        from analysis.console.auth import AuthError, add_user, check_role, check_username

        check_username(a.name)
        check_role(a.role)
        engine = _engine(a, cfg)
        try:
            what = add_user(engine, a.name, a.role, _read_password(), actor=f"shell:{getpass.getuser()}",
                            replace=a.replace)
        except AuthError as e:
            raise UsageError(str(e)) from None
        print(f"{what} user {a.name} ({a.role})")
        return 0
    if a.command == "fill-queue":
        return _fill_queue(a, cfg)
    if a.command == "fill-alerts":
        return _fill_alerts(a, cfg)
    return _serve(a, cfg)


def _fill_queue(a: argparse.Namespace, cfg: Config) -> int:
    from analysis.console.annotate import QueueError, fill

    engine = _engine(a, cfg)
    ids: list[str] = []
    if a.strategy == "ids":
        if not a.ids:
            raise UsageError("--strategy ids needs --ids FILE")
        try:
            ids = Path(a.ids).read_text(encoding="utf-8").split()
        except OSError as e:
            raise UsageError(f"cannot read {a.ids}: {e.strerror}") from None
    n = a.n or (len(ids) if ids else cfg.console.queue_size)
    if n < 1:
        raise UsageError("--n must be at least 1")
    actor = f"shell:{getpass.getuser()}"
    try:
        with engine.connect() as conn:
            scorer = a.scorer or (_default_scorer(conn, cfg) if a.strategy == "stratified" else None)
        out = write(engine, lambda conn: fill(conn, a.strategy, n, actor=actor, scorer=scorer, ids=ids,
                                              share=cfg.console.double_coding_share, seed=a.seed))
    except QueueError as e:
        raise UsageError(str(e)) from None
    print(f"queued {out.comments} comments ({out.double_coded} double-coded) of {out.asked} asked"
          + (f", stratified by {scorer}" if a.strategy == "stratified" else ""))
    return 0


def _fill_alerts(a: argparse.Namespace, cfg: Config) -> int:
    from analysis.console.triage import fill_and_audit
    from weibo_mh.alert_queue import missing_scorer_hint
    from weibo_mh.notify.outbox import policy_from

    threshold = cfg.console.alert_threshold if a.threshold is None else a.threshold
    if not 0 <= threshold <= 10:
        raise UsageError(f"--threshold must be a level 0-10, got {threshold}")
    engine = _engine(a, cfg)
    actor = f"shell:{getpass.getuser()}"
    with engine.connect() as conn:
        scorer = a.scorer or _default_scorer(conn, cfg)
    n = write(engine, lambda conn: fill_and_audit(conn, actor, scorer, threshold,
                                                  cfg.console.repeat_days, policy_from(cfg)))
    print(f"{n} new alerts from {scorer} at suicide risk >= {threshold}")
    if not n:
        with engine.connect() as conn:   # read after the write, outside its lock
            hint = missing_scorer_hint(conn, scorer)
        if hint:
            print(f"warning: {hint}", file=sys.stderr)
    return 0


def _new_key(path: Path) -> int:
    if path.exists():
        raise UsageError(f"{path} exists already; remove it first (every session signed with it ends)")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_urlsafe(48) + "\n")
    print(f"wrote a new key to {path}; point WEIBO_MH_CONSOLE_KEY_FILE (or console.secret_key_file) at it")
    return 0


def _serve(a: argparse.Namespace, cfg: Config) -> int:
    import waitress

    from analysis.console.app import create_app

    key = console_key_from(cfg)
    engine = _engine(a, cfg)
    host = a.host or cfg.console.host
    port = cfg.console.port if a.port is None else a.port
    app = create_app(cfg, engine, key)
    if host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("event=bind_public host=%s note='the console serves plain HTTP; put a TLS proxy in "
                    "front and set console.secure_cookie = true'", host)
    opts = serve_options(cfg, a.threads)
    log.info("event=serve url=http://%s:%d connection_limit=%d channel_timeout=%d trusted_proxies=%d",
             host, port, opts["connection_limit"], opts["channel_timeout"], len(cfg.console.trusted_proxies))
    waitress.serve(app, host=host, port=port, **opts)
    return 0


def serve_options(cfg: Config, threads: int = 8) -> dict[str, Any]:
    """waitress's settings from ``console.*``: how many connections, and how long an idle one lives.

    waitress's own proxy handling (one ``trusted_proxy``) stays off: the app reads
    X-Forwarded-For itself, from the addresses in ``console.trusted_proxies`` only. Without
    any, waitress also drops the X-Forwarded-* headers before the app sees them (its
    default); with some, it passes them on.
    """
    con = cfg.console
    return {"threads": threads, "connection_limit": int(con.connection_limit),
            "channel_timeout": int(con.channel_timeout), "cleanup_interval": int(con.cleanup_interval),
            "clear_untrusted_proxy_headers": not con.trusted_proxies, "ident": "weibo-mh-console"}


def run(argv: list[str] | None = None) -> int:
    from analysis.common import fail

    try:
        return main(argv)
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except UsageError as e:
        fail(str(e))
    except KeyboardInterrupt:
        return 130
    except sa.exc.OperationalError as e:
        fail(f"database error: {str(getattr(e, 'orig', e)).splitlines()[0][:300]}")
    return 1


if __name__ == "__main__":
    raise SystemExit(run())
