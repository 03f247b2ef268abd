"""A hostile hot-search endpoint on top of LocalSite, for the reliability tests.

``HostileSite(corpus, mode)`` serves weibo.cn pages exactly as LocalSite does, but its
hot-search answer is one of:

- ``bad_entries``: the corpus topics plus entries that once cost a whole run: a lone
  surrogate, NUL, ANSI escapes and an RLO in the word, a word that is not text, words of
  200 and 500 characters, heats of 10^30, 1e400 and -5;
- ``only_bad``: only entries no database can take (the list has topics, none storable);
- ``redirect_loop``: a 302 to itself, forever;
- ``gzip_bomb``: ``bomb_bytes`` of zeros, gzip-compressed (a few KiB on the wire);
- ``oversize``: a plain body of ``bomb_bytes`` bytes with its Content-Length;
- ``nested_json``: ``[`` nested 100,000 deep (RecursionError in json.loads).
"""

from __future__ import annotations

import gzip
from typing import Any

from weibo.localsite import pages
from weibo.localsite.corpus import Corpus
from weibo.localsite.server import LocalSite

MODES = ("bad_entries", "only_bad", "redirect_loop", "gzip_bomb", "oversize", "nested_json")
HOTSEARCH = "/ajax/side/hotSearch"

#: (raw JSON of one data.realtime entry, what the spider must do with it)
BAD_ENTRIES: list[tuple[str, str]] = [
    ('{"word": "半个\\ud800表情", "num": 10, "rank": 90}', "stored, surrogate replaced"),
    ('{"word": "空\\u0000字符", "num": 10, "rank": 91}', "stored, NUL removed"),
    ('{"word": "\\u001b[31m红色\\u001b[0m话题", "num": 10, "rank": 92}', "stored, ANSI removed"),
    ('{"word": "反向\\u202e文字", "num": 10, "rank": 93}', "stored as typed (shown visibly in reports)"),
    ('{"word": 12345, "num": 10, "rank": 94}', "dropped: topic_word_not_text"),
    ('{"word": ["列表"], "num": 10, "rank": 95}', "dropped: topic_word_not_text"),
    ('{"word": "' + "长" * 200 + '", "num": 10, "rank": 96}', "dropped: topic_word_too_long"),
    ('{"word": "' + "长" * 500 + '", "num": 10, "rank": 97}', "dropped: topic_word_too_long"),
    ('{"word": "热度爆表", "num": 1000000000000000000000000000000, "rank": 98}', "stored, heat clamped"),
    ('{"word": "热度无穷", "num": 1e400, "rank": 99}', "stored, heat 0"),
    ('{"word": "热度为负", "num": -5, "rank": 100}', "stored, heat clamped to 0"),
]
#: The cleaned words of the entries that are stored.
STORED_WORDS = ["半个\ufffd表情", "空 字符", "红色话题", "反向\u202e文字", "热度爆表", "热度无穷", "热度为负"]
DROPPED = {"topic_word_not_text": 2, "topic_word_too_long": 2}


class HostileSite(LocalSite):
    def __init__(self, corpus: Corpus, mode: str, bomb_bytes: int = 8 * 1024 * 1024,
                 **kw: Any) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; one of {', '.join(MODES)}")
        super().__init__(corpus, **kw)
        self.mode = mode
        self.bomb_bytes = bomb_bytes

    def answer(self, target: str) -> tuple[int, dict[str, str], bytes]:
        if not target.startswith(HOTSEARCH):
            return super().answer(target)
        with self._lock:
            self.hits[target] += 1
        json_type = {"Content-Type": "application/json; charset=utf-8"}
        if self.mode == "redirect_loop":
            return 302, {"Location": HOTSEARCH + "?again=1" if "again" not in target else HOTSEARCH}, b""
        if self.mode == "gzip_bomb":
            return 200, dict(json_type, **{"Content-Encoding": "gzip"}), \
                gzip.compress(b"0" * self.bomb_bytes, compresslevel=9)
        if self.mode == "oversize":
            return 200, json_type, b" " * self.bomb_bytes
        if self.mode == "nested_json":
            depth = 100_000
            return 200, json_type, b"[" * depth + b"]" * depth
        good = pages.hotsearch_json(self.corpus)
        bad = ", ".join(raw for raw, what in BAD_ENTRIES
                        if self.mode == "bad_entries" or what.startswith("dropped"))
        if self.mode == "only_bad":
            body = '{"ok": 1, "data": {"realtime": [' + bad + "]}}"
        else:
            body = good.replace('"realtime": [', '"realtime": [' + bad + ", ", 1)
        return 200, json_type, body.encode("utf-8")
