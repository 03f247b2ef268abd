"""HTML and JSON in weibo.cn's shapes, rendered from a corpus (see corpus.py).

The markup follows the structure the spider relies on (``div.c`` blocks with
``M_``/``C_`` ids, ``span.ctt``/``span.cc``/``span.ct``, ``input[name=mp]``);
the wording and layout are this project's own.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import quote

_TOKEN = re.compile(r"(\[[^\[\]\s]{1,8}\]|@[\w\u4e00-\u9fff]+|#[^#\s]+#)")


def nick_of(uid: str) -> str:
    """A made-up display name for a uid (never stored by the spider)."""
    return uid.split(":", 1)[1] if uid.startswith("custom:") else f"用户{uid[-4:]}"


def user_href(uid: str) -> str:
    return f"/{uid.split(':', 1)[1]}" if uid.startswith("custom:") else f"/u/{uid}"


def rich_text(text: str) -> str:
    """Escape a text and turn [表情] into images, @names and #topics# into links."""
    out = []
    for part in _TOKEN.split(text):
        if not part:
            continue
        if _TOKEN.fullmatch(part):
            if part.startswith("["):
                out.append(f'<img src="/face/{quote(part[1:-1])}.png" alt="{html.escape(part)}" />')
            elif part.startswith("@"):
                out.append(f'<a href="/n/{quote(part[1:])}">{html.escape(part)}</a>')
            else:
                out.append(f'<a href="/search/mblog?keyword={quote(part)}">{html.escape(part)}</a>')
        else:
            out.append(html.escape(part))
    return "".join(out)


def _page(title: str, body: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE html>\n<html><head>'
        '<meta http-equiv="Content-Type" content="text/html; charset=utf-8"/>'
        f"<title>{html.escape(title)}</title></head><body>"
        '<div class="n"><a href="/">首页</a>|<a href="/msg">消息</a>|<a href="/search">搜索</a></div>\n'
        f"{body}\n"
        '<div class="cd"><a href="#top">返回顶部</a></div>'
        '<div class="pm">设置 | 退出</div></body></html>'
    )


def _pager(base: str, page: int, pages: int) -> str:
    if pages <= 1:
        return ""
    links = []
    if page < pages:
        links.append(f'<a href="{base}&amp;page={page + 1}">下页</a>')
    if page > 1:
        links.append(f'<a href="{base}&amp;page={page - 1}">上页</a>')
    return (f'<div class="pa" id="pagelist"><form action="{base}" method="post"><div>'
            f'{"&nbsp;".join(links)}&nbsp;<input name="mp" type="hidden" value="{pages}" />'
            f'<input type="text" name="page" size="2" style="-wap-input-format: \'*N\'" />'
            f'<input type="submit" value="跳页" />&nbsp;{page}/{pages}页</div></form></div>')


def post_block(post: dict[str, Any], on_comment_page: bool = False) -> str:
    mid = post["mid"]
    head = (f'<div><a class="nk" href="{user_href(post["uid"])}">{html.escape(nick_of(post["uid"]))}</a>'
            f'<img src="/img/v.gif" alt="V" />\n  <span class="ctt">:{rich_text(post["text"])}</span>'
            "&nbsp;</div>")
    ct = (f'<span class="ct">{html.escape(post["created"])}&nbsp;来自{html.escape(post["source"])}'
          "</span>")
    if on_comment_page:
        return (f'<div class="c" id="M_">{head}<div>{ct}</div></div>\n<div class="c">'
                f'<a href="/repost/{mid}">转发[{post["reposts"]}]</a>&nbsp;'
                f'<span class="pms">&nbsp;评论[{post["comments"]}]&nbsp;</span>'
                f'<a href="/attitude/{mid}">赞[{post["likes"]}]</a></div>')
    return (f'<div class="c" id="M_{mid}">{head}\n<div>'
            f'<a href="/attitude/{mid}?rl=0">赞[{post["likes"]}]</a>&nbsp;'
            f'<a href="/repost/{mid}?rl=0">转发[{post["reposts"]}]</a>&nbsp;'
            f'<a href="/comment/{mid}?rl=0#cmtfrm" class="cc">评论[{post["comments"]}]</a>&nbsp;'
            f'<a href="/fav/addFav/{mid}">收藏</a>&nbsp;{ct}</div></div>\n<div class="s"></div>')


def comment_block(c: dict[str, Any]) -> str:
    reply = ""
    if c.get("reply_to"):
        nick = c["reply_to"]
        reply = f'回复<a href="/n/{quote(nick)}">@{html.escape(nick)}</a>:'
    return (f'<div class="c" id="C_{c["id"]}"><a href="{user_href(c["uid"])}">'
            f'{html.escape(nick_of(c["uid"]))}</a>:  <span class="ctt">{reply}{rich_text(c["text"])}</span>'
            f'&nbsp;<a href="/spam/?cid={c["id"]}">举报</a>&nbsp;'
            f'<span class="cc"><a href="/attitude/{c["id"]}">赞[{c["likes"]}]</a></span>&nbsp;'
            f'<span class="cc"><a href="/comment/reply/{c["id"]}">回复</a></span>&nbsp;'
            f'<span class="ct">{html.escape(c["created"])}&nbsp;来自{html.escape(c["source"])}</span></div>')


def hotsearch_json(corpus: dict[str, Any]) -> str:
    realtime = []
    for t in corpus["topics"]:
        entry: dict[str, Any] = {"word": t["word"], "note": t["word"], "num": t["num"], "rank": t["rank"]}
        if t.get("category"):
            entry["category"] = t["category"]
        if t.get("is_ad"):
            entry["is_ad"] = 1
        realtime.append(entry)
    return json.dumps({"ok": 1, "data": {"realtime": realtime}}, ensure_ascii=False)


def search_page(word: str, posts: list[dict[str, Any]], page: int, per_page: int,
                extra: str = "") -> str:
    pages = max(1, -(-len(posts) // per_page))
    chunk = posts[(page - 1) * per_page: page * per_page]
    if not chunk:
        body = f'<div class="c">抱歉，未找到“#{html.escape(word)}#”相关结果。</div>'
    else:
        body = extra + "\n".join(post_block(p) for p in chunk)
    base = f"/search/mblog?hideSearchFrame=&amp;keyword={quote('#' + word + '#')}"
    return _page("搜索结果", f'<div class="c">共{len(posts)}条</div>{body}{_pager(base, page, pages)}')


def comment_page(post: dict[str, Any], page: int, per_page: int, extra: str = "") -> str:
    comments = post["comments_list"]
    pages = max(1, -(-len(comments) // per_page))
    chunk = comments[(page - 1) * per_page: page * per_page]
    top = post_block(post, on_comment_page=True) if page == 1 else ""
    if not comments:
        body = '<div class="c">还没有人针对这条微博发表评论!</div>'
    else:
        body = extra + "\n".join(comment_block(c) for c in chunk)
    base = f"/comment/{post['mid']}?uid=0&amp;rl=0"
    return _page("评论列表", f"{top}{body}{_pager(base, page, pages)}")


def login_page() -> str:
    return _page("登录 - 新浪微博", '<div class="c">请先登录后再访问。</div><form action="/login" method="post">'
                 '<input type="text" name="mobile" /><input type="password" name="password" />'
                 '<input type="submit" value="登录" /></form>')


def gone_page() -> str:
    return _page("错误", '<div class="me">抱歉，此微博已被作者删除。</div>')


def malformed_page() -> str:
    return ('<html><body><div class="c"><div><a class="nk" href="/u/1">系统</a> '
            '<span class="ctt">服务繁忙 \x7f\ufffd\ufffd <b><i></div></body')


#: A broken post block (no author, no text) the malformed scenario puts on a page.
BROKEN_POST = '<div class="c" id="M_BrokenZ9"><div><span class="ct">刚刚</span></div></div>\n'
#: A comment block without text.
BROKEN_COMMENT = '<div class="c" id="C_4999999999"><a href="/u/9">x</a><span class="ct">刚刚</span></div>\n'
