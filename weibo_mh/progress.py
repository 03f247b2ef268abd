"""What a running worker tells the person or the log watching it.

On a terminal: one line, rewritten in place, with claimed/scored/failed counts and
comments per second. Otherwise (systemd, a pipe): a ``key=value`` log line now and
then, which journald and log shippers can parse. Both end with a summary line.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

log = logging.getLogger("llm_worker")


def rate_text(per_second: float) -> str:
    """A rate with two significant figures (0.012, 0.5, 3.4, 57, 1234): slow rates are not 0.0."""
    if per_second >= 10:
        return f"{per_second:.0f}"
    return f"{per_second:.2g}" if per_second > 0 else "0"


@dataclass
class Stats:
    claimed: int = 0
    scored: int = 0
    failed: int = 0
    retried: int = 0
    lost: int = 0
    released: int = 0
    batches: int = 0
    batch_errors: int = 0
    #: Comments waiting in the whole queue (all workers), refreshed now and then; -1: unknown.
    pending: int = -1
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    @property
    def rate(self) -> float:
        """Comments written back (scored or failed) per second."""
        e = self.elapsed
        return (self.scored + self.failed) / e if e > 0 else 0.0

    def kv(self) -> str:
        return (f"claimed={self.claimed} scored={self.scored} failed={self.failed} "
                f"retried={self.retried} lost={self.lost} released={self.released} "
                f"batches={self.batches} batch_errors={self.batch_errors} "
                f"pending={self.pending} elapsed={self.elapsed:.1f}s rate={rate_text(self.rate)}/s")


class Progress:
    def __init__(self, stream: TextIO | None = None, tty: bool | None = None,
                 log_every: float = 30.0, tty_every: float = 0.25) -> None:
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.every = tty_every if self.tty else log_every
        self._last = 0.0
        self._drawn = False

    def update(self, stats: Stats, force: bool = False) -> None:
        t = time.monotonic()
        if not force and t - self._last < self.every:
            return
        self._last = t
        if self.tty:
            line = (f"claimed {stats.claimed}  scored {stats.scored}  failed {stats.failed}  "
                    f"retried {stats.retried}  {rate_text(stats.rate)} comments/s"
                    + (f"  ({stats.pending} waiting)" if stats.pending >= 0 else ""))
            self.stream.write("\r\x1b[K" + line)
            self.stream.flush()
            self._drawn = True
        else:
            log.info("event=progress %s", stats.kv())

    def clear(self) -> None:
        """End the in-place line before a log line is printed over it."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()
            self._drawn = False

    def finish(self, stats: Stats) -> None:
        if self.tty:
            self.update(stats, force=True)
            self.clear()
        log.info("event=summary %s", stats.kv())
