"""The hot-search list: ``GET https://weibo.com/ajax/side/hotSearch`` (JSON).

Shape (matched against Eurkon/api, Doubeecat/weibo_hotboard and imsyy/DailyHotApi,
2025): ``data.realtime[]`` entries with ``word``, ``word_scheme`` (the search keyword:
``#word#`` for a real topic, the plain word otherwise), ``num`` (heat), ``rank``,
``realpos``, ``label_name`` (a badge such as 热/新/沸/爆, not a category), ``is_ad``;
``category`` on some entries only; a pinned government entry in ``data.hotgov``.
``rank`` may count from 0 while ``realpos`` counts from 1, so ``realpos`` wins.
"""

from __future__ import annotations

import json
from typing import Any

from weibo.parsing.common import MalformedPage, Topic, normalise_text


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: a float heat of 1e400 is inf
        return default


def _topic(e: dict[str, Any], pos: int, pinned: bool = False) -> Topic | None:
    raw = e.get("word") or e.get("note") or ""
    # A word that is not text (a number, a list) is passed on as it is, for the pipeline to
    # drop with a counted reason, never stored as its Python repr.
    word = normalise_text(raw).strip("#").strip() if isinstance(raw, str) else raw
    if not word:
        return None
    rank = _int(e.get("realpos"), -1)
    if rank < 0:
        rank = _int(e.get("rank"), pos)  # no realpos: take rank as it is
    if pinned:
        rank = 0
    heat = _int(e.get("num") or e.get("raw_hot") or 0, 0)
    category = normalise_text(str(e.get("category") or ""))[:64] or None
    label = normalise_text(str(e.get("label_name") or e.get("icon_desc") or ""))[:16] or None
    scheme = normalise_text(str(e.get("word_scheme") or ""))
    return Topic(word=word, rank=rank, heat=heat, category=category, label=label,
                 search_word=scheme or word, pinned=pinned)


def parse_hotsearch(text: str, limit: int) -> list[Topic]:
    """The pinned entry (if any), then the top ``limit`` non-ad topics by position."""
    try:
        data = json.loads(text)
        body = data["data"]
        entries = body["realtime"]
    except (ValueError, KeyError, TypeError):
        raise MalformedPage("hot-search answer is not JSON with data.realtime") from None
    if not isinstance(entries, list):
        raise MalformedPage("hot-search data.realtime is not a list")
    topics: list[Topic] = []
    for pos, e in enumerate(entries, start=1):
        if not isinstance(e, dict) or e.get("is_ad") or e.get("ad_type") or e.get("promotion"):
            continue
        t = _topic(e, pos)
        if t:
            topics.append(t)
    topics.sort(key=lambda t: t.rank)
    topics = topics[:limit]
    gov = body.get("hotgov") if isinstance(body, dict) else None
    govs = gov if isinstance(gov, list) else [gov] if isinstance(gov, dict) else []
    pinned = [t for t in (_topic(g, 0, pinned=True) for g in govs if isinstance(g, dict)) if t]
    words = {t.word for t in topics if isinstance(t.word, str)}  # a bad word is dropped later
    return [t for t in pinned if not isinstance(t.word, str) or t.word not in words] + topics
