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
    #: Leave out scores flagged uncertain (answer mass below worker.answer_mass_floor).
    exclude_uncertain: bool = False

    def describe(self) -> str:
        a = self.since.strftime("%Y-%m-%d %H:%M") if self.since else "start"
        if self.until is None:
            b = "now"
        elif self.until.time() == datetime.min.time():  # --until DAY: through the end of DAY
            b = f"end of {self.until - timedelta(days=1):%Y-%m-%d}"
        else:
            b = self.until.strftime("%Y-%m-%d %H:%M")
        s = f"{a} to {b} (Asia/Shanghai)"
        s += f", topics containing {self.topic!r}" if self.topic else ""
        return s + (", uncertain scores left out" if self.exclude_uncertain else "")
