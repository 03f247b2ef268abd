"""The crawl scheduler: runs `scrapy crawl hot_topics` at the configured times, one run at a time,
and the watch rounds (`scrapy crawl watch`, every watch.every_minutes) beside them.

Each run is a child process with a time budget (SIGTERM, then SIGKILL after a
grace period; the run is then recorded as timed_out), its own log file, and its
crawl_runs row created here first, so that even a crawler killed before its
first write leaves a record. A file lock keeps two runs (or two schedulers)
from overlapping. A failed run is logged and the daemon carries on; SIGTERM or
Ctrl-C stops it cleanly (a running crawl is asked to stop first).

Watch rounds run in a thread of their own with their own lock (watch.lock_file), child
process, time budget and crawl_runs rows (kind watch), so a long hot-topic crawl never
delays a watch round and a round never delays the hot-topic crawl (docs/spider.md,
Scheduling).
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import schedule
import sqlalchemy as sa
from filelock import FileLock, Timeout
from weibo.status import EXIT_CONFIG, EXIT_HELP, EXIT_LOCKED, exit_code

from weibo_mh import db
from weibo_mh.config import (
    COOKIES,
    Config,
    ConfigError,
    cookie_from,
    load_or_exit,
    resolve_sqlite_url,
)
from weibo_mh.privacy import pseudonymiser_from

HERE = Path(__file__).resolve().parent
log = logging.getLogger("weibo.schedule")


class Scheduler:
    """Runs one kind of crawl (the hot-topic crawl here; WatchScheduler: the watch rounds)."""

    spider = "hot_topics"
    kind = "hot"            # crawl_runs.kind
    what = "crawl run"      # how the log names a run
    lock_key = "schedule.lock_file"

    def __init__(self, config_path: str, db_url: str, budget_minutes: float, grace_seconds: float,
                 lock_file: str, log_dir: str, settings: list[str], notify_command: str = "",
                 notify_on: tuple[str, ...] = (), preflight: Callable[[], str] | None = None) -> None:
        self.config_path = config_path
        self.db_url = db_url
        self.budget = budget_minutes * 60.0
        self.grace = grace_seconds
        self.lock = FileLock(lock_file)
        self.lock_file = lock_file
        self.log_dir = Path(log_dir)
        self.settings = settings
        self.notify_command = notify_command
        self.notify_on = set(notify_on)
        self.engine = db.open_checked(db_url)
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        #: checked before each crawl; a message makes the run bad_cookie without starting it
        self.preflight = preflight
        #: exit code of the last crawl process (None: it did not run)
        self.last_rc: int | None = None

    def check_paths(self) -> None:
        """The lock and log folders must be writable: ConfigError (exit 2) now, not a traceback later."""
        for key, folder in ((self.lock_key, Path(self.lock_file).parent),
                            ("schedule.log_dir", self.log_dir)):
            try:
                folder.mkdir(parents=True, exist_ok=True)
                probe = folder / f".write-test-{os.getpid()}"
                probe.write_bytes(b"")
                probe.unlink()
            except OSError as e:
                raise ConfigError(f"{key}: cannot write to {folder}: {e.strerror or e} "
                                  "(read-only? choose another folder in the config)") from None

    # ----------------------------------------------------------------- one run

    def run_once(self) -> str:
        """One crawl now. Returns its status, or 'locked' when another crawl holds the lock."""
        try:
            self.lock.acquire(timeout=0)
        except Timeout:  # a TimeoutError, hence an OSError: caught first
            log.warning("another %s holds the lock %s; not starting a second one", self.what,
                        self.lock_file)
            return "locked"
        except OSError as e:
            raise ConfigError(f"{self.lock_key} {self.lock_file}: {e.strerror or e}") from None
        try:
            return self._run_locked()
        finally:
            self.lock.release()

    def _run_locked(self) -> str:
        run_id = self._new_run()
        self.last_rc = None
        problem = self.preflight() if self.preflight else ""
        if problem:
            return self._refuse(run_id, "bad_cookie", problem)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{self.kind_prefix()}-{datetime.now():%Y%m%d-%H%M%S}-run{run_id}.log"
        cmd = [sys.executable, "-m", "scrapy", "crawl", self.spider, "-s", f"CRAWL_RUN_ID={run_id}"]
        for s in self.settings:
            cmd += ["-s", s]
        env = dict(os.environ, WEIBO_MH_CONFIG=self.config_path, DATABASE_URL=self.db_url)
        log.info("%s %d starting (budget %.1f min), log %s", self.what, run_id, self.budget / 60, log_path)
        started = time.monotonic()
        with open(log_path, "ab") as out:
            self.child = subprocess.Popen(cmd, cwd=HERE, env=env, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)
            timed_out, rc = self._wait(self.child, started)
            self.child = None
        self.last_rc = rc
        took = time.monotonic() - started
        status = self._settle(run_id, rc, timed_out, log_path)
        row = self._row(run_id)
        log.info("%s %d %s after %.1fs (exit %s): %d topics, posts %d new / %d updated, "
                 "comments %d new / %d updated, %d pages, %d dropped, %d errors%s",
                 self.what, run_id, status, took, rc, row.topics, row.posts_new, row.posts_updated,
                 row.comments_new, row.comments_updated, row.pages, row.dropped, row.errors,
                 f"; {row.error}" if row.error else "")
        if status in self.notify_on and self.notify_command:
            self.notify(run_id, status, row.error or "")
        return status

    def _refuse(self, run_id: int, status: str, error: str) -> str:
        """End a run that was not started (its cookie cannot be used): record, log, notify."""
        self._end_run(run_id, {"status": status, "error": error})
        log.error("%s %d not started: %s: %s", self.what, run_id, status, error)
        if status in self.notify_on and self.notify_command:
            self.notify(run_id, status, error)
        return status

    def notify(self, run_id: int, status: str, error: str) -> None:
        """Run schedule.notify_command (no shell) with the run in its environment; never fatal."""
        env = dict(os.environ, WEIBO_MH_RUN_ID=str(run_id), WEIBO_MH_RUN_STATUS=status,
                   WEIBO_MH_RUN_ERROR=error[:500], WEIBO_MH_RUN_KIND=self.kind)
        try:
            done = subprocess.run(shlex.split(self.notify_command), env=env, timeout=60,
                                  capture_output=True, text=True)
        except (OSError, ValueError, subprocess.TimeoutExpired) as e:
            log.error("notification command for run %d (%s) could not run: %s", run_id, status, e)
            return
        if done.returncode:
            log.error("notification command for run %d (%s) exited %d: %s", run_id, status,
                      done.returncode, (done.stderr or "").strip()[:300])
        else:
            log.info("notification command run for crawl run %d (%s)", run_id, status)

    def _wait(self, child: subprocess.Popen[bytes], started: float) -> tuple[bool, int]:
        """Wait for the child within the budget; SIGTERM, then SIGKILL after the grace period."""
        deadline = started + self.budget
        termed_at: float | None = None
        timed_out = False
        while True:
            try:
                return timed_out, child.wait(timeout=0.2)
            except subprocess.TimeoutExpired:
                pass
            now = time.monotonic()
            if termed_at is None and (now >= deadline or self.stopping):
                timed_out = not self.stopping
                log.warning("%s; sending SIGTERM to the crawler",
                            "time budget exhausted" if timed_out else "stopping")
                self._signal(child, signal.SIGTERM)
                termed_at = now
            elif termed_at is not None and now - termed_at >= self.grace:
                log.warning("crawler still running %.0fs after SIGTERM; sending SIGKILL", self.grace)
                self._signal(child, signal.SIGKILL)
                return timed_out, child.wait()

    @staticmethod
    def _signal(child: subprocess.Popen[bytes], sig: signal.Signals) -> None:
        try:
            os.killpg(child.pid, sig)
        except ProcessLookupError:
            pass

    def kind_prefix(self) -> str:
        """The start of this kind's log file names: crawl-… or watch-…."""
        return "crawl" if self.kind == "hot" else self.kind

    # ----------------------------------------------------------------- crawl_runs

    def _new_run(self) -> int:
        def go() -> int:
            with self.engine.begin() as conn:
                res = conn.execute(db.crawl_runs.insert().values(
                    started_at=db.now(), status="running", host=socket.gethostname()[:255],
                    kind=self.kind))
                return int(res.inserted_primary_key[0])  # type: ignore[index]
        return db.retry_on_disconnect(go, what="create crawl run")

    def _row(self, run_id: int) -> sa.Row:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(db.crawl_runs).where(db.crawl_runs.c.id == run_id)).one()

    def _settle(self, run_id: int, rc: int, timed_out: bool, log_path: Path) -> str:
        """Record what the crawler could not: a time-out, or an exit without a final status."""
        row = self._row(run_id)
        values: dict[str, object] = {}
        if timed_out:
            values = {"status": "timed_out", "error": f"time budget of {self.budget / 60:g} min "
                                                      f"exhausted; crawler stopped (exit {rc})"}
        elif row.status == "running":
            why = " (a configuration error)" if rc == EXIT_CONFIG else ""
            values = {"status": "failed", "error": f"crawler exited with status {rc}{why} before "
                                                   f"recording an end; see {log_path}"}
        if values:
            self._end_run(run_id, values)
            return str(values["status"])
        return row.status

    def _end_run(self, run_id: int, values: dict[str, object]) -> None:
        values = {**values, "finished_at": db.now()}

        def go() -> None:
            with self.engine.begin() as conn:
                conn.execute(db.crawl_runs.update().where(db.crawl_runs.c.id == run_id).values(**values))
        db.retry_on_disconnect(go, what="settle crawl run")

    # ----------------------------------------------------------------- daemon

    def job(self) -> None:
        try:
            self.run_once()
        except Exception:  # noqa: BLE001 - one failed run must not stop the daemon
            log.exception("%s failed; the scheduler carries on", self.what)

    def stop(self, signum: int, _frame: object) -> None:
        if self.stopping:
            return
        log.info("received %s: stopping%s", signal.Signals(signum).name,
                 " after asking the running crawl to stop" if self.child else "")
        self.stopping = True

    def forever(self, times: list[str], every_minutes: int) -> int:
        if every_minutes > 0:
            schedule.every(every_minutes).minutes.do(self.job)
            log.info("scheduler started: a crawl every %d minutes", every_minutes)
        else:
            for t in times:
                schedule.every().day.at(t).do(self.job)
            log.info("scheduler started: crawls daily at %s (local time)", ", ".join(times))
        while not self.stopping:
            schedule.run_pending()
            if not self.stopping:
                nxt = schedule.next_run()
                wait = max(0.0, (nxt - datetime.now()).total_seconds()) if nxt else 60.0
                time.sleep(min(1.0, wait))
        schedule.clear()
        log.info("scheduler stopped")
        return 0


def cookie_problem(cfg: Config) -> str:
    """Why the cookies a crawl would send cannot be used ('' when they can): a cookie file
    that is missing, unreadable or empty, or a cookie holding a line break. Read before
    every run, so that a refreshed file is picked up without a restart."""
    for site in COOKIES:
        try:
            cookie_from(cfg, site=site)
        except ConfigError as e:
            return str(e)
    return ""


def once_exit_code(status: str, crawl_rc: int | None) -> int:
    """``--once``'s exit status: the crawl's own exit code when the crawl ran and exited with
    one (2 for a crawl that refused its configuration, not 1), else its status's code."""
    if status == "locked":
        return EXIT_LOCKED
    if status != "timed_out" and crawl_rc is not None and crawl_rc > 0:
        return crawl_rc
    return exit_code(status)


class WatchScheduler(Scheduler):
    """The watch rounds: `scrapy crawl watch` with its own lock, budget and crawl_runs kind."""

    spider = "watch"
    kind = "watch"
    what = "watch round"
    lock_key = "watch.lock_file"


def watch_scheduler(cfg: Config, url: str, settings: list[str]) -> WatchScheduler | None:
    """The watch rounds' scheduler when [watch] lists posts or keywords (None: nothing to watch)."""
    w = cfg.watch
    if not w.posts and not w.keywords:
        return None
    if Path(w.lock_file).resolve() == Path(cfg.schedule.lock_file).resolve():
        raise ConfigError("watch.lock_file must differ from schedule.lock_file: with one lock a "
                          "long hot-topic crawl would hold up the watch rounds")
    sched = WatchScheduler(str(Path(str(cfg.source)).resolve()), url, w.time_budget_minutes,
                           cfg.schedule.grace_seconds, w.lock_file, cfg.schedule.log_dir, settings,
                           cfg.schedule.notify_command, tuple(cfg.schedule.notify_on),
                           preflight=lambda: cookie_problem(cfg))
    sched.check_paths()
    return sched


def watch_forever(watch: Scheduler, every_minutes: int) -> None:
    """Watch rounds every ``every_minutes`` (start to start; a round that overruns is followed
    at once by the next) until ``watch.stopping``. Runs in a thread beside the hot-topic jobs."""
    period = every_minutes * 60.0
    next_at = time.monotonic()
    while not watch.stopping:
        now = time.monotonic()
        if now >= next_at:
            next_at = now + period
            watch.job()
        else:
            time.sleep(min(1.0, next_at - now))


def start_watching(watch: Scheduler, every_minutes: int) -> threading.Thread:
    log.info("watch rounds every %d minutes (lock %s, budget %.1f min)", every_minutes, watch.lock_file,
             watch.budget / 60)
    if watch.budget > every_minutes * 60:
        log.warning("watch.time_budget_minutes (%g) is longer than watch.every_minutes (%d): a slow "
                    "round delays the next one", watch.budget / 60, every_minutes)
    thread = threading.Thread(target=watch_forever, args=(watch, every_minutes), name="watch-rounds",
                              daemon=True)
    thread.start()
    return thread


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python Weibo_Spider/default_schedule.py",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run the hot_topics crawl on a schedule (schedule.times, or schedule.every_minutes,\n"
                    "in the config). Each run is a child `scrapy crawl hot_topics` with a time budget\n"
                    "(schedule.time_budget_minutes, then SIGTERM, SIGKILL after schedule.grace_seconds),\n"
                    "a log file in schedule.log_dir and a file lock (schedule.lock_file) so runs never\n"
                    "overlap. Every run, even a killed one, leaves a row in crawl_runs.\n\n"
                    "When [watch] lists posts or keywords, watch rounds (`scrapy crawl watch`) run\n"
                    "every watch.every_minutes beside the hot-topic crawls, with their own lock\n"
                    "(watch.lock_file) and budget (watch.time_budget_minutes): neither delays the other.",
        epilog=EXIT_HELP.replace("(scheduler only)", "").replace("(scheduler --once only)", "(--once)")
        + "\n\nWithout --once the daemon runs until SIGTERM or Ctrl-C and exits 0.")
    ap.add_argument("--config", help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--once", action="store_true",
                    help="run one crawl now and exit with the crawl's own exit status")
    ap.add_argument("--watch", action="store_true",
                    help="with --once: run one watch round instead of a hot-topic crawl")
    ap.add_argument("--db", metavar="URL", help="database URL (default: DATABASE_URL or database.url)")
    ap.add_argument("-s", "--set", action="append", default=[], metavar="KEY=VALUE",
                    help="Scrapy setting passed to every crawl, e.g. -s TOPIC_LIMIT=5 (repeatable)")
    return ap


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for s in a.set:
        if "=" not in s:
            print(f"error: -s expects KEY=VALUE, got {s!r}", file=sys.stderr)
            return EXIT_CONFIG
    cfg = load_or_exit(a.config)
    url = resolve_sqlite_url(a.db, Path.cwd()) if a.db else cfg.database.url
    try:
        pseudonymiser_from(cfg)  # refuse to schedule crawls that would refuse to start
        sched = Scheduler(str(Path(str(cfg.source)).resolve()), url, cfg.schedule.time_budget_minutes,
                          cfg.schedule.grace_seconds, cfg.schedule.lock_file, cfg.schedule.log_dir, a.set,
                          cfg.schedule.notify_command, tuple(cfg.schedule.notify_on),
                          preflight=lambda: cookie_problem(cfg))
        sched.check_paths()
        watch = watch_scheduler(cfg, url, a.set)
    except (ConfigError, db.SchemaError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_CONFIG
    if a.watch and (not a.once or watch is None):
        print("error: --watch runs one watch round with --once, and needs [watch] posts or keywords",
              file=sys.stderr)
        return EXIT_CONFIG
    stoppable = [sched] if watch is None else [sched, watch]

    def stop(signum: int, frame: object) -> None:
        for each in stoppable:
            each.stop(signum, frame)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if a.once:
        try:
            runner = watch if a.watch and watch else sched
            status = runner.run_once()
        except ConfigError as e:
            print(f"error: {e}", file=sys.stderr)
            return EXIT_CONFIG
        except sa.exc.SQLAlchemyError as e:
            print(f"error: database {db.mask(url)}: {db.short_error(e)}", file=sys.stderr)
            return exit_code("failed")
        return once_exit_code(status, runner.last_rc)
    thread = start_watching(watch, cfg.watch.every_minutes) if watch else None
    code = sched.forever(cfg.schedule.times, cfg.schedule.every_minutes)
    if thread is not None:
        thread.join()
    return code


if __name__ == "__main__":
    sys.exit(main())
