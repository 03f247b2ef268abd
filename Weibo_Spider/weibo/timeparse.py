"""weibo.cn time strings -> timezone-aware Asia/Shanghai datetimes.

weibo.cn shows times relative to the moment the page was served ("5分钟前",
"今天 08:30"), so every string is read against the crawl time, never the
time the row is written. A year-less date that would lie in the future is
taken from the previous year (a crawl on 2 January sees "12月31日 23:50").
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from weibo_mh.db import SHANGHAI

_SPACES = re.compile(r"[\s\u00a0\u3000]+")
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^刚刚$"), "now"),
    (re.compile(r"^(\d+)\s*秒(?:钟)?前$"), "seconds"),
    (re.compile(r"^(\d+)\s*分钟前$"), "minutes"),
    (re.compile(r"^(\d+)\s*小时前$"), "hours"),
    (re.compile(r"^今天\s*(\d{1,2}):(\d{2})(?::(\d{2}))?$"), "today"),
    (re.compile(r"^昨天\s*(\d{1,2}):(\d{2})(?::(\d{2}))?$"), "yesterday"),
    (re.compile(r"^(\d{4})年(\d{1,2})月(\d{1,2})日\s*(?:(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"), "ymd"),
    (re.compile(r"^(\d{1,2})月(\d{1,2})日\s*(?:(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"), "md"),
    (re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})(?:\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"), "ymd"),
    (re.compile(r"^(\d{1,2})-(\d{1,2})(?:\s*(\d{1,2}):(\d{2})(?::(\d{2}))?)?$"), "md"),
]


def shanghai(dt: datetime) -> datetime:
    """An aware datetime in Asia/Shanghai (naive input is taken as Shanghai wall-clock time)."""
    return dt.replace(tzinfo=SHANGHAI) if dt.tzinfo is None else dt.astimezone(SHANGHAI)


def parse_weibo_time(text: str | None, crawl_time: datetime) -> datetime | None:
    """Parse one weibo.cn time string; None when it is empty or not a known form."""
    if not text:
        return None
    s = _SPACES.sub(" ", text).strip()
    now = shanghai(crawl_time).replace(microsecond=0)
    for pattern, kind in _PATTERNS:
        m = pattern.match(s)
        if not m:
            continue
        g = [int(x) if x is not None else None for x in m.groups()]
        try:
            return _build(kind, g, now)
        except ValueError:  # 13月40日 and the like
            return None
    return None


def _build(kind: str, g: list[int | None], now: datetime) -> datetime:
    if kind == "now":
        return now
    if kind == "seconds":
        return now - timedelta(seconds=g[0] or 0)
    if kind == "minutes":
        return now - timedelta(minutes=g[0] or 0)
    if kind == "hours":
        return now - timedelta(hours=g[0] or 0)
    if kind in ("today", "yesterday"):
        day = now if kind == "today" else now - timedelta(days=1)
        return day.replace(hour=g[0] or 0, minute=g[1] or 0, second=g[2] or 0)
    if kind == "ymd":
        y, mo, d, h, mi, sec = g
        return datetime(y or 0, mo or 0, d or 0, h or 0, mi or 0, sec or 0, tzinfo=SHANGHAI)
    # month and day without a year: this year, unless that is more than a day ahead
    mo, d, h, mi, sec = g
    dt = datetime(now.year, mo or 0, d or 0, h or 0, mi or 0, sec or 0, tzinfo=SHANGHAI)
    if dt > now + timedelta(days=1):
        dt = dt.replace(year=now.year - 1)
    return dt


def split_time_source(text: str | None) -> tuple[str, str | None]:
    """'今天 08:30 来自iPhone客户端' -> ('今天 08:30', 'iPhone客户端')."""
    s = _SPACES.sub(" ", text or "").strip()
    if "来自" in s:
        when, _, source = s.partition("来自")
        return when.strip(), (source.strip() or None)
    return s, None
