"""The m.weibo.cn comment JSON: ``GET /comments/hotflow?id=<mid>&mid=<mid>&max_id_type=0``.

Shape as dataabc/weibo-crawler (``weibo.py``, commit 93cd292, 2026-06) and
NanmiCoder/MediaCrawler (``media_platform/weibo/client.py``, commit 0024ce6) read it:

- ``{"ok": 1, "data": {"data": [comment…], "max_id": N, "max_id_type": T, "total_number": N}}``;
  the next page is the same URL with ``&max_id=N&max_id_type=T`` taken from the answer, and
  ``max_id`` 0 is the last page;
- a comment has ``id``, ``created_at`` (``Sat Nov 21 20:15:00 +0800 2026``), ``like_count``,
  ``source`` (the IP location, ``来自河南``), ``text`` (HTML: emoji as ``<img alt="[心]">``,
  mentions as links, a reply starting ``回复<a>@nick</a>:``), ``user{id, …}`` and, when it
  has replies, ``comments`` (a few of them inline, or ``false``) and ``total_number``;
- ``ok`` 0 is an error answer (MediaCrawler raises on it): without a login it is the login
  wall; a post without comments answers with an empty ``data`` list, or (*unconfirmed*) with
  ``ok`` 0 and a message inviting the first comment, so both are read as "no comments"; an
  ``ok`` 0 whose message says the post is gone (*unconfirmed*) is "gone", not a wall.
"""

from __future__ import annotations

import json
import re
from typing import Any

from weibo.parsing.common import (
    MENTION,
    Comment,
    CommentPage,
    comment_threads,
    normalise_text,
    selector,
    text_of,
)
from weibo.parsing.weibocom import IP_PREFIX, json_id, parse_created

_REPLY = re.compile(r"^回复\s*@[^:：\s]*\s*[:：]\s*")
#: What an ``ok: 0`` answer says when the post simply has no comments (not a login wall).
_NO_COMMENTS = ("还没有人评论", "快来发表你的评论", "暂无评论", "还没有评论")
#: ... and when the post is gone (deleted or hidden): skipped, not a login wall.
_GONE = ("不存在", "已被删除", "已删除", "暂时无法查看", "无权查看")


def _int(value: Any) -> int:
    try:
        return max(0, int(value or 0))
    except (TypeError, ValueError):
        return 0


def html_text(markup: str) -> tuple[str, str | None, bool]:
    """(text, nickname replied to, had a picture) of a comment's HTML ``text``."""
    if not markup:
        return "", None, False
    root = selector(f"<div>{markup}</div>").xpath("//body/div")
    if not root:
        return normalise_text(markup), None, False
    el = root[0].root
    nick = None
    first = el.find("a")
    if normalise_text(el.text).startswith("回复") and first is not None:
        label = normalise_text("".join(first.itertext()))
        nick = label[1:] or None if label.startswith("@") else None
    pictures: list[bool] = []
    text = text_of(el, pictures)
    m = _REPLY.match(text)
    if m:
        text = text[m.end():]
    return text.strip(), nick if nick != MENTION[1:] else None, bool(pictures)


def parse_hotflow_comment(c: dict[str, Any], mid: str, root: str | None = None) -> Comment:
    """One comment; ``root``: the first-level comment it was nested under."""
    cid = json_id(c.get("id") or c.get("idstr"))
    text, nick, pictured = html_text(str(c.get("text") or ""))
    pictured = pictured or bool(c.get("pic"))
    user: dict[str, Any] = c["user"] if isinstance(c.get("user"), dict) else {}
    uid = json_id(user.get("id") or user.get("idstr"))
    root_id = root or json_id(c.get("rootid"))
    is_reply = bool(root_id and root_id != cid)
    reply_id = json_id(c.get("reply_id")) or root_id
    place = normalise_text(IP_PREFIX.sub("", str(c.get("source") or ""))) or None
    nested: list[Any] = c["comments"] if isinstance(c.get("comments"), list) else []
    return Comment(id=cid, mid=mid, author_key=f"u:{uid}" if uid else None, text=text or None,
                   reply_to_nick=nick, likes=_int(c.get("like_count") or c.get("like_counts")),
                   created_at=parse_created(c.get("created_at")),
                   created_raw=str(c.get("created_at") or ""), ip_location=place,
                   root_id=root_id if is_reply else None,
                   reply_to_id=reply_id if is_reply else None, image_only=pictured and not text,
                   replies=_int(c.get("total_number")) or len(nested))


def is_hotflow_login(data: Any) -> bool:
    """An ``ok`` 0 (or -100) answer that is not the "no comments" message: a login wall."""
    if not isinstance(data, dict) or data.get("ok") not in (0, -100, "0", "-100"):
        return False
    msg = str(data.get("msg") or "")
    return "登录" in msg or not any(s in msg for s in _NO_COMMENTS + _GONE)


def parse_hotflow(text: str, mid: str) -> CommentPage:
    """One page of hotflow: first-level comments and their inline replies, the cursor
    (``max_id``, 0 on the last page, and ``max_id_type``), ``notice`` when there are none."""
    try:
        data = json.loads(text)
    except ValueError:
        return CommentPage(kind="malformed", mid=mid)
    if is_hotflow_login(data):
        return CommentPage(kind="login_wall", mid=mid)
    if not isinstance(data, dict):
        return CommentPage(kind="malformed", mid=mid)
    if data.get("ok") in (0, "0"):   # the "no comments" or "post gone" answer
        gone = any(s in str(data.get("msg") or "") for s in _GONE)
        return CommentPage(kind="gone", mid=mid) if gone else CommentPage(kind="ok", mid=mid, notice=True)
    body = data.get("data")
    if body is None or body == [] or body == {}:
        return CommentPage(kind="ok", mid=mid, notice=True)
    rows = body.get("data") if isinstance(body, dict) else None
    if rows is None and isinstance(body, dict) and not body.get("max_id"):
        return CommentPage(kind="ok", mid=mid, notice=True)
    if not isinstance(rows, list):
        return CommentPage(kind="malformed", mid=mid)
    comments = comment_threads(rows, lambda c, parent: parse_hotflow_comment(c, mid, root=parent))
    max_id, max_id_type = hotflow_cursor(body)
    return CommentPage(kind="ok", mid=mid, comments=comments, max_id=max_id,
                       max_id_type=max_id_type, total=_int(body.get("total_number")), notice=not rows)


def hotflow_cursor(body: Any) -> tuple[int, int]:
    """(max_id, max_id_type) of a hotflow ``data`` object; (0, 0) when absent."""
    if not isinstance(body, dict):
        return 0, 0
    return _int(body.get("max_id")), _int(body.get("max_id_type"))

