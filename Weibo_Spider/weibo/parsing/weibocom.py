"""The weibo.com comment JSON: ``/ajax/statuses/buildComments`` (first level and replies).

Shape as nghuyong/WeiboSpider master ``weibospider/spiders/comment.py`` reads it (2025):
``{data: [comment…], max_id, total_number}``; a comment has ``id``, ``created_at``
(``Wed Oct 19 23:44:36 +0800 2022``), ``like_counts``, ``source`` (the IP location,
``来自河南``), ``text_raw``, ``user{id, …}``, ``rootid``, ``reply_comment{id, …}``,
``total_number`` / ``more_info`` when it has replies and ``comments`` (a few replies
inline). Replies: the same endpoint with the comment's id, ``is_mix=1&fetch_level=1``.
Without a login it answers ``{"ok": -100, "url": "https://passport.weibo.com/…"}``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from weibo.parsing.common import (
    Comment,
    CommentPage,
    comment_threads,
    mask_mentions,
    normalise_text,
)
from weibo_mh.db import SHANGHAI

_REPLY = re.compile(r"^回复\s*@([^:：\s]+)\s*[:：]\s*")
IP_PREFIX = re.compile(r"^(?:来自|IP属地[:：]?)\s*")


def is_login_json(text: str) -> bool:
    """``{"ok": -100, …}``: weibo.com wants a login."""
    head = text.lstrip()[:200]
    if not head.startswith("{") or "-100" not in head:
        return False
    try:
        return json.loads(text).get("ok") == -100
    except (ValueError, AttributeError):
        return False


def parse_created(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%a %b %d %H:%M:%S %z %Y").astimezone(SHANGHAI)
    except ValueError:
        return None


def json_id(value: Any) -> str | None:
    """A numeric id from JSON (a number or a string of digits); None for anything else."""
    s = str(value).strip() if value not in (None, "", 0) else ""
    return s if s.isdigit() else None


def parse_json_comment(c: dict[str, Any], mid: str) -> Comment:
    cid = json_id(c.get("id") or c.get("idstr"))
    text = normalise_text(str(c.get("text_raw") or ""))
    nick = None
    m = _REPLY.match(text)
    if m:
        nick, text = m.group(1), text[m.end():]
    pictures = bool(c.get("pic_infos") or c.get("url_struct") or c.get("pic"))
    text = mask_mentions(text).strip()
    user: dict[str, Any] = c["user"] if isinstance(c.get("user"), dict) else {}
    uid = json_id(user.get("id") or user.get("idstr"))
    root = json_id(c.get("rootid") or c.get("rootidstr"))
    reply: dict[str, Any] = c["reply_comment"] if isinstance(c.get("reply_comment"), dict) else {}
    reply_id = json_id(reply.get("id") or reply.get("idstr"))
    is_reply = bool(root and root != cid)
    place = normalise_text(IP_PREFIX.sub("", str(c.get("source") or ""))) or None
    try:
        likes = int(c.get("like_counts") or c.get("like_count") or 0)
    except (TypeError, ValueError):
        likes = 0
    try:
        replies = int(c.get("total_number") or 0)
    except (TypeError, ValueError):
        replies = 0
    if not replies and c.get("more_info"):
        replies = 1
    return Comment(id=cid, mid=mid, author_key=f"u:{uid}" if uid else None, text=text or None,
                   reply_to_nick=nick, likes=likes, created_at=parse_created(c.get("created_at")),
                   created_raw=str(c.get("created_at") or ""), ip_location=place,
                   root_id=root if is_reply else None,
                   reply_to_id=(reply_id or root) if is_reply else None,
                   image_only=pictures and not text, replies=replies)


def parse_build_comments(text: str, mid: str) -> CommentPage:
    """One page of buildComments: comments (and inline replies), ``max_id`` and ``total``."""
    if is_login_json(text):
        return CommentPage(kind="login_wall", mid=mid)
    try:
        data = json.loads(text)
        rows = data["data"]
    except (ValueError, KeyError, TypeError):
        return CommentPage(kind="malformed", mid=mid)
    if not isinstance(rows, list):
        return CommentPage(kind="malformed", mid=mid)
    comments = comment_threads(rows, lambda c, _parent: parse_json_comment(c, mid))
    try:
        max_id = int(data.get("max_id") or 0)
        total = int(data.get("total_number") or 0)
    except (TypeError, ValueError):
        max_id, total = 0, 0
    return CommentPage(kind="ok", mid=mid, comments=comments, max_id=max_id, total=total,
                       notice=not rows)
