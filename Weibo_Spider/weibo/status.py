"""Run statuses and the exit codes of ``scrapy crawl hot_topics`` and the scheduler."""

from __future__ import annotations

#: crawl_runs.status -> process exit code.
EXIT_CODES = {
    "ok": 0,
    "failed": 1,
    "login_required": 3,
    "rate_limited": 4,
    "timed_out": 5,
    # a cookie file that is missing, unreadable, empty or holds a line break: the crawl's own
    # code for it is the configuration error's; the status lets notify_on name it
    "bad_cookie": 2,
}
EXIT_CONFIG = 2   # bad configuration, no salt, old schema, bad arguments
EXIT_LOCKED = 6   # scheduler --once: another crawl holds the lock

#: Spider close reasons that are statuses of their own.
CLOSE_REASONS = {"login_required", "rate_limited"}

EXIT_HELP = """exit status:
  0  ok: the crawl finished
  1  failed: the crawl could not do its work (hot search failed or unusable, no topic
     could be searched on any source, nothing storable, rows lost to database errors:
     the run's error says which; a crash)
  2  configuration error: bad config, no salt, unreadable secret file, database URL
     or schema missing, old or misread; with the scheduler, a cookie file that is
     missing, unreadable or holds a line break is recorded as the run status bad_cookie
  3  login_required: a site refused its cookie (login wall or ok:-100); refresh it
  4  rate_limited: too many blocks (418/403/429/432, captcha) in a row; the crawl stopped
  5  timed_out: the time budget ran out (scheduler only)
  6  another crawl holds the lock (scheduler --once only)
Data stored before a stop is always kept."""


def exit_code(status: str | None) -> int:
    return EXIT_CODES.get(status or "failed", 1)


def status_for_close(reason: str, failure: str | None) -> str:
    """The crawl_runs status for a spider close reason (and a fatal failure, if any)."""
    if reason in CLOSE_REASONS:
        return reason
    if reason == "finished" and not failure:
        return "ok"
    return "failed"
