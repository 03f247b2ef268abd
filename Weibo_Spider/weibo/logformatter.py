"""Log lines that never carry item contents: items hold user ids (before hashing) and texts."""

from __future__ import annotations

import logging
from typing import Any

from scrapy import logformatter


class PrivateLogFormatter(logformatter.LogFormatter):
    def dropped(self, item: Any, exception: BaseException, response: Any,  # type: ignore[override]
                spider: Any = None) -> dict:
        return {"level": logging.WARNING, "msg": "Dropped %(kind)s: %(exception)s",
                "args": {"kind": type(item).__name__, "exception": exception}}

    def scraped(self, item: Any, response: Any, spider: Any = None) -> dict:  # type: ignore[override]
        src = getattr(response, "url", response)
        return {"level": logging.DEBUG, "msg": "Scraped %(kind)s from %(src)s",
                "args": {"kind": type(item).__name__, "src": src}}
