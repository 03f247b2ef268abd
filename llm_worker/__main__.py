"""Command line of the scoring worker.

    python -m llm_worker [--config F] [--db URL] [--backend NAME] [--once] ...   score comments
    python -m llm_worker requeue --failed | --all [--scorer X]                    put comments back
    python -m llm_worker status                                                  queue counts

Exit status: 0 after a normal stop (including SIGTERM / Ctrl-C), 2 for a bad
configuration, an unusable database, an older schema or a backend that refuses the
configuration (a permanent HTTP 4xx from the LLM server, or a server that cannot score as
configured), 1 when a --once run gave up on a database or a model server that stayed away
(at once when the model server never answered), or for anything unexpected.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

import sqlalchemy as sa

from weibo_mh import db
from weibo_mh.config import Config, ConfigError, load_config, mask_url, spec_arg
from weibo_mh.notify.outbox import policy_from

if TYPE_CHECKING:
    from weibo_mh.notify.sender import Notifier

log = logging.getLogger("llm_worker")

EPILOG = """other commands:
  python -m llm_worker requeue --failed          failed comments back to pending
  python -m llm_worker requeue --all [--scorer X] done comments back to pending (with --scorer:
                                                 only those scorer X has not scored yet)
  python -m llm_worker status                    comments per queue state, scores per scorer
"""


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="TOML config file (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    p.add_argument("--db", metavar="URL", help="database URL (overrides DATABASE_URL and database.url)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))


def run_parser() -> argparse.ArgumentParser:
    from llm_worker.scoring.backends import REGISTRY

    p = argparse.ArgumentParser(
        prog="python -m llm_worker", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Score comments waiting in the database: claim a batch, score it with a backend, "
                    "write the scores back. Run as many workers against one database as you like.")
    _common(p)
    p.add_argument("--backend", choices=sorted(REGISTRY), help="scorer (default: worker.backend)")
    p.add_argument("--model", help="model id or path for the backend (transformers, openai, classifier)")
    p.add_argument("--explain", action="store_true", default=None,
                   help="also store a short rationale per score (backends that support it)")
    p.add_argument("--rubric", choices=("core", "extended"), help="dimensions to score (default: worker.rubric)")
    p.add_argument("--once", action="store_true", help="drain the queue, then exit 0")
    p.add_argument("--batch-size", type=spec_arg("worker", "batch_size"), metavar="N", help="comments per batch (worker.batch_size)")
    p.add_argument("--max-items", type=_positive, metavar="N", help="stop after claiming N comments")
    p.add_argument("--worker-id", metavar="ID",
                   help="name written to claimed_by; must be unique among running workers (default: host-pid)")
    p.add_argument("--lease-seconds", type=spec_arg("worker", "lease_seconds"), metavar="S", help="claim lease (worker.lease_seconds)")
    p.add_argument("--metrics-port", type=spec_arg("worker", "metrics_port"), metavar="PORT",
                   help="serve Prometheus /metrics on PORT (worker.metrics_port; 0: off)")
    return p


def requeue_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llm_worker requeue",
                                description="Put comments back in the queue.")
    _common(p)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--failed", action="store_true", help="failed comments, with a fresh attempt count")
    what.add_argument("--all", action="store_true",
                      help="done comments, so that another scorer scores them too (scores are kept)")
    p.add_argument("--scorer", help="with --all: only comments this scorer (e.g. lexicon:v2) has not scored")
    return p


def status_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m llm_worker status",
                                description="Comments per queue state and scored comments per scorer.")
    _common(p)
    return p


COMMANDS = ("requeue", "status")
#: Options that take a value, so that `--db status.db` is not read as the status command.
_VALUE_OPTIONS = {"--config", "--db", "--log-level", "--backend", "--model", "--rubric", "--batch-size",
                  "--max-items", "--worker-id", "--lease-seconds", "--metrics-port", "--scorer"}


def _split_command(argv: list[str]) -> tuple[str, list[str]]:
    """The sub-command may come anywhere (`--db URL requeue --failed` works too)."""
    for i, tok in enumerate(argv):
        if tok in COMMANDS and (i == 0 or argv[i - 1] not in _VALUE_OPTIONS):
            return tok, argv[:i] + argv[i + 1:]
    return "run", argv


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1: {value!r}")
    return n


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")
    for noisy in ("mysql.connector", "httpx", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _config_and_engine(a: argparse.Namespace) -> tuple[Config, sa.Engine]:
    cfg = load_config(a.config)
    url = a.db or cfg.database.url
    return cfg, db.open_checked(url, echo=cfg.database.echo)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command, argv = _split_command(argv)
    parser = {"run": run_parser, "requeue": requeue_parser, "status": status_parser}[command]()
    a = parser.parse_args(argv)
    if command == "requeue" and a.scorer and not a.all:
        parser.error("--scorer goes with --all")
    _setup_logging(a.log_level)
    try:
        cfg, engine = _config_and_engine(a)
        if command == "requeue":
            return _requeue(a, engine)
        if command == "status":
            return _status(engine)
        return _run(a, cfg, engine)
    except (ConfigError, db.SchemaError) as e:
        kind = "configuration error" if isinstance(e, ConfigError) else "database error"
        print(f"{kind}: {e}", file=sys.stderr)
        return 2


def _requeue(a: argparse.Namespace, engine: sa.Engine) -> int:
    from llm_worker.queue import requeue_done, requeue_failed

    if a.failed:
        n = requeue_failed(engine)
        print(f"requeued {n} failed comments")
    else:
        n = requeue_done(engine, a.scorer)
        extra = f" not yet scored by {a.scorer}" if a.scorer else ""
        print(f"requeued {n} done comments{extra}")
    return 0


def _status(engine: sa.Engine) -> int:
    from llm_worker.queue import queue_counts

    print(f"database: {mask_url(engine.url.render_as_string(hide_password=False))}")
    for status, n in queue_counts(engine).items():
        print(f"  {status:8} {n:>10}")
    s, c = db.scores.c, db.comments.c
    with engine.connect() as conn:
        rows = conn.execute(sa.select(s.scorer, sa.func.count(sa.distinct(s.comment_id)))
                            .group_by(s.scorer).order_by(s.scorer)).all()
        errors = conn.execute(sa.select(c.last_error, sa.func.count().label("n"))
                              .where(c.score_status == "failed").group_by(c.last_error)
                              .order_by(sa.desc("n")).limit(5)).all()
    for scorer, n in rows:
        print(f"  scored by {scorer}: {n}")
    if errors:
        print("  most common errors of failed comments (python -m llm_worker requeue --failed "
              "puts them back):")
        for error, n in errors:
            print(f"    {n:>8}  {(error or '')[:120]}")
    return 0


def _alert_threshold(cfg: Config, scorer: str) -> int | None:
    """The level at which this worker fills the alerts table, or None (off, or another scorer's job)."""
    c = cfg.console
    if not c.alerts_from_worker or (c.alert_scorer and c.alert_scorer != scorer):
        return None
    return int(c.alert_threshold)


def _warn_about_the_alert_scorer(cfg: Config, scorer: str, engine: sa.Engine) -> None:
    """Say at start-up when console.alert_scorer names another scorer that has no scores: then
    neither this worker nor fill-alerts will ever raise an alert."""
    from weibo_mh.alert_queue import missing_scorer_hint

    c = cfg.console
    if not c.alert_scorer or c.alert_scorer == scorer:
        return
    with engine.connect() as conn:
        hint = missing_scorer_hint(conn, c.alert_scorer)
    if hint:
        log.warning("event=alert_scorer_idle this worker scores as %s and fills no alerts: %s", scorer, hint)


def _notifier(cfg: Config, engine: sa.Engine) -> Notifier | None:
    """The push-notification sender the worker runs in a thread (notify.in_worker)."""
    from weibo_mh.notify.channels import channels_from
    from weibo_mh.notify.sender import Notifier  # noqa: F811 - the runtime import of the type

    if not cfg.notify.channels or not cfg.notify.in_worker:
        return None
    return Notifier.from_config(cfg, engine, channels_from(cfg))


def _run(a: argparse.Namespace, cfg: Config, engine: sa.Engine) -> int:
    from llm_worker.metrics import Metrics
    from llm_worker.queue import Queue
    from llm_worker.scoring.backends import make_backend
    from llm_worker.scoring.backends.base import PermanentBackendError
    from llm_worker.worker import Worker, default_worker_id
    from weibo_mh.progress import Progress
    from weibo_mh.rubric import dimensions_for

    w = cfg.worker
    notifier = _notifier(cfg, engine)  # before the model loads: a missing secret stops at once
    if not (a.lease_seconds or w.lease_seconds):
        raise ConfigError(f"{cfg.source}: worker.lease_seconds must be at least 1")
    name = a.backend or w.backend
    rubric = a.rubric or w.rubric
    try:
        backend = make_backend(name, cfg, model=a.model, explain=a.explain,
                               dimensions=dimensions_for(rubric))
    except (OSError, ValueError, ImportError) as e:  # a missing model file, a bad checkpoint
        raise ConfigError(f"cannot load backend {name!r}: {e}") from None
    worker_id = a.worker_id or default_worker_id()
    try:
        queue = Queue(engine, worker_id, lease_seconds=a.lease_seconds or w.lease_seconds,
                      max_attempts=w.max_attempts)
    except ValueError as e:
        backend.close()
        raise ConfigError(f"--worker-id: {e}") from None
    worker = Worker(queue, backend, batch_size=a.batch_size or w.batch_size, max_chars=w.max_chars,
                    max_items=a.max_items or 0, once=a.once, idle_max=w.idle_sleep_max_seconds,
                    max_batch_seconds=w.max_batch_seconds, progress=Progress(),
                    alert_repeat_days=cfg.console.repeat_days, notify_policy=policy_from(cfg))
    worker.install_signal_handlers()
    # The backend's start-up checks (the openai backend asks its server what it really does,
    # and learns the model name the scores are stored under); a server that is away is waited for.
    try:
        ready = worker.prepare_backend()
    except PermanentBackendError as e:
        backend.close()
        queue.close()
        print(f"backend error (no comment was claimed): {e}", file=sys.stderr)
        return 2
    if not ready:
        backend.close()
        queue.close()
        if worker.gave_up:
            print(f"gave up: {worker.gave_up}", file=sys.stderr)
        return 1 if worker.gave_up else 0
    limit = db.scores.c.scorer.type.length  # type: ignore[attr-defined]
    if len(backend.name) > limit:
        backend.close()
        raise ConfigError(f"scorer name {backend.name[:60]!r}… is {len(backend.name)} characters; the "
                          f"scores table allows {limit}: use a shorter model path (a symlink, say) or "
                          "the server's --model_alias / --served-model-name")
    metrics = worker.metrics = Metrics(backend.name)
    worker.alert_threshold = _alert_threshold(cfg, backend.name)
    old_name = cfg.console.alert_scorer
    if old_name and backend.name.startswith(old_name + ":"):
        log.warning("event=config_hint console.alert_scorer=%r is this scorer's old name (without the method); "
                    "its scores are now stored as %r, so this worker fills no alerts until "
                    "console.alert_scorer is set to that", old_name, backend.name)
    else:
        _warn_about_the_alert_scorer(cfg, backend.name, engine)
    port = w.metrics_port if a.metrics_port is None else a.metrics_port
    log.info("event=start worker=%s backend=%s scorer=%s dimensions=%d db=%s batch_size=%d "
             "lease_seconds=%d max_attempts=%d once=%s config=%s", worker_id, name, backend.name,
             len(backend.dimensions), mask_url(engine.url.render_as_string(hide_password=False)),
             worker.batch_size, queue.lease_seconds, queue.max_attempts, a.once, cfg.source)
    try:
        if port:
            try:
                metrics.serve(w.metrics_host, port)
            except OSError as e:
                raise ConfigError(f"cannot serve metrics on {w.metrics_host}:{port}: {e.strerror}") from None
        thread = notifier.start_thread() if notifier else None
        stats = worker.run()
    finally:
        if notifier:
            notifier.stop()
            if thread:
                thread.join(timeout=notifier.lease_seconds)
        metrics.close()
        backend.close()
        engine.dispose()
    log.info("event=exit worker=%s scored=%d failed=%d", worker_id, stats.scored, stats.failed)
    if worker.fatal:
        print(f"backend error (no comment's attempts were used): {worker.fatal}", file=sys.stderr)
        return 2
    return 1 if worker.gave_up else 0


if __name__ == "__main__":
    raise SystemExit(main())
