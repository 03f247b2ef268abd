"""The time span and topic filter that every analysis query and chart shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta


@dataclass
class Window:
    """Which comments a script looks at: a time span and an optional topic filter."""

    since: datetime | None = None
    until: datetime | None = None
    topic: str | None = None

    def describe(self) -> str:
        a = self.since.strftime("%Y-%m-%d %H:%M") if self.since else "start"
        if self.until is None:
            b = "now"
        elif self.until.time() == datetime.min.time():  # --until DAY: through the end of DAY
            b = f"end of {self.until - timedelta(days=1):%Y-%m-%d}"
        else:
            b = self.until.strftime("%Y-%m-%d %H:%M")
        s = f"{a} to {b} (Asia/Shanghai)"
        return s + (f", topics containing {self.topic!r}" if self.topic else "")
