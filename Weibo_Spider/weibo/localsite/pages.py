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
                out.append(f'<span class="url-icon"><img src="/face/{quote(part[1:-1])}.png" '
                           f'alt="{html.escape(part)}" /></span>')
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


#: Texts longer than this show as an excerpt with a 全文 link on search pages.
EXCERPT = 80
#: The ``span.ct`` variants of real 2025 pages, in turn (see weibo.parsing.timesource).
CT_STYLES = ("client", "client_ip", "ip_only", "web", "client_trailing")


def ctt(text: str, lead: str = "") -> str:
    """``span.ctt`` as weibo.cn writes it: the span closes at the first emoji image and the
    text goes on after it (the parser must read on)."""
    body = rich_text(text)
    cut = body.find('<span class="url-icon">')
    if cut < 0:
        return f'<span class="ctt">{lead}{body}</span>'
    return f'<span class="ctt">{lead}{body[:cut]}</span>{body[cut:]}'


def ct(created: str, client: str | None, ip: str | None, style: str = "client") -> str:
    """``span.ct``: time, nbsp, then 网页 / 来自<client> / 来自来自<place> / 来自<client>来自<place>."""
    when = html.escape(created)
    client = client or ""
    if client == "网页" or style == "web":
        rest = "网页" + (f"来自{html.escape(ip)}" if ip else "")
    elif style == "ip_only" and ip:
        rest = f"来自来自{html.escape(ip)}"
    elif ip:
        rest = f"来自{html.escape(client)}来自{html.escape(ip)}"
    else:
        rest = f"来自{html.escape(client)}"
    pad = "&nbsp;&nbsp;" if style == "client_trailing" else ""
    return f'<span class="ct">{when}&nbsp;{rest}{pad}</span>'


def _counts_div(mid: str, post: dict[str, Any], bid: str) -> str:
    return (f'<a href="/attitude/{bid}?rl=0">赞[{post["likes"]}]</a>&nbsp;'
            f'<a href="/repost/{bid}?rl=0">转发[{post["reposts"]}]</a>&nbsp;'
            f'<a href="/comment/{bid}?rl=0#cmtfrm" class="cc">评论[{post["comments"]}]</a>&nbsp;'
            f'<a href="/fav/addFav/{bid}">收藏</a>&nbsp;')


def _retweet_head(post: dict[str, Any]) -> str:
    orig = post["retweet"]
    return (f'<span class="cmt">转发了&nbsp;<a href="{user_href(orig["uid"])}">@'
            f'{html.escape(nick_of(orig["uid"]))}</a>&nbsp;的微博:</span>'
            f'{ctt(orig["text"])}&nbsp;<span class="cmt">赞[{orig.get("likes", 0)}]</span>&nbsp;'
            f'<span class="cmt">原文转发[{orig.get("reposts", 0)}]</span>&nbsp;'
            f'<a href="/comment/{orig.get("bid", "Orig1")}" class="cc">原文评论[{orig.get("comments", 0)}]</a>')


def post_block(post: dict[str, Any], on_comment_page: bool = False, bid: str | None = None) -> str:
    """A post (or a retweet) in weibo.cn's search list, or at the top of its comment page."""
    mid = post["mid"]
    bid = bid or mid
    nk = (f'<a class="nk" href="{user_href(post["uid"])}">{html.escape(nick_of(post["uid"]))}</a>'
          '<img src="/img/v.gif" alt="V" />')
    time_span = ct(post["created"], post.get("source"), post.get("ip"))
    text = post["text"]
    excerpt = not on_comment_page and len(text) > EXCERPT
    shown = text[:EXCERPT] if excerpt else text
    more = f'&nbsp;<a href="/comment/{bid}?ckAll=1">全文</a>' if excerpt else ""
    if post.get("pictures"):   # weibo.cn 2020: the pictures link in brackets after the text
        more += f'&nbsp;[<a href="/mblog/picAll/{bid}?rl=1">组图共{post["pictures"]}张</a>]'
    if post.get("retweet"):
        first = f"<div>{nk}&nbsp;{_retweet_head(post)}</div>"
        reason = f'<span class="cmt">转发理由:</span>{rich_text(shown)}{more}&nbsp;&nbsp;'
    else:
        first = f"<div>{nk}\n  {ctt(shown, ':')}{more}&nbsp;</div>"
        reason = ""
    if on_comment_page:
        own = "" if not post.get("retweet") else f"<div>{reason}{time_span}</div>"
        if not post.get("retweet"):
            first = first.replace("&nbsp;</div>", f"&nbsp;</div><div>{time_span}</div>", 1)
        return (f'<div class="c" id="M_">{first}{own}</div>\n<div class="c"></div>\n<div>'
                f'<a href="/repost/{bid}">转发[{post["reposts"]}]</a>&nbsp;'
                f'<span class="pms">&nbsp;评论[{post["comments"]}]&nbsp;</span>'
                f'<a href="/attitude/{bid}">赞[{post["likes"]}]</a></div>')
    return (f'<div class="c" id="M_{bid}">{first}\n<div>{reason}{_counts_div(mid, post, bid)}'
            f'{time_span}</div></div>\n<div class="s"></div>')


def comment_block(c: dict[str, Any], hot: bool = False, n: int = 0) -> str:
    reply = ""
    if c.get("reply_to"):
        nick = c["reply_to"]
        reply = f'回复<a href="/n/{quote(nick)}">@{html.escape(nick)}</a>:'
    kt = '<span class="kt">[热门]</span>' if hot else ""
    style = c.get("ct_style") or CT_STYLES[n % len(CT_STYLES)]
    if hot:
        style = "web"
    if c.get("image_only"):
        text_html = f'<span class="ctt">{reply}<a href="/mblog/pic/{c["id"]}?rl=1">评论配图</a></span>'
    else:
        text_html = ctt(c["text"], reply)
    return (f'<div class="c" id="C_{c["id"]}">{kt}<a href="{user_href(c["uid"])}">'
            f'{html.escape(nick_of(c["uid"]))}</a>:  {text_html}'
            f'&nbsp;<a href="/spam/?cid={c["id"]}">举报</a>&nbsp;'
            f'<span class="cc"><a href="/attitude/{c["id"]}">赞[{c["likes"]}]</a></span>&nbsp;'
            f'<span class="cc"><a href="/comment/reply/{c["id"]}">回复</a></span>&nbsp;'
            f'{ct(c["created"], c.get("source"), c.get("ip"), style)}</div>')


def hot_comments(post: dict[str, Any]) -> list[dict[str, Any]]:
    """The post's hot comments: the ones flagged ``hot``, else its two most-liked (of 5+)."""
    cs = post["comments_list"]
    flagged = [c for c in cs if c.get("hot")]
    if flagged or "hot" in post:
        return flagged
    if len(cs) < 5:
        return []
    return sorted(cs, key=lambda c: -c["likes"])[:2]


def hotsearch_json(corpus: dict[str, Any]) -> str:
    """The list as weibo.com sends it: rank from 0, realpos from 1, word_scheme, badges, hotgov."""
    realtime = []
    for t in sorted(corpus["topics"], key=lambda t: t["rank"]):
        entry: dict[str, Any] = {"word": t["word"], "note": t["word"], "num": t["num"],
                                 "rank": t["rank"] - 1, "realpos": t["rank"],
                                 "word_scheme": t.get("word_scheme", f"#{t['word']}#"),
                                 "flag": 1, "topic_flag": 1}
        if t.get("category"):
            entry["category"] = t["category"]
        if t.get("label"):
            entry["label_name"] = t["label"]
        if t.get("is_ad"):
            entry["is_ad"] = 1
        realtime.append(entry)
    data: dict[str, Any] = {"realtime": realtime}
    gov = corpus.get("hotgov")
    if gov:
        data["hotgov"] = {"word": gov["word"], "note": gov["word"], "word_scheme": f"#{gov['word']}#",
                          "is_gov": 1, "name": gov["word"]}
    return json.dumps({"ok": 1, "data": data}, ensure_ascii=False)


def search_page(word: str, posts: list[dict[str, Any]], page: int, per_page: int,
                extra: str = "", bid_of: Any = None) -> str:
    pages = max(1, -(-len(posts) // per_page))
    chunk = posts[(page - 1) * per_page: page * per_page]
    if not chunk:
        body = f'<div class="c">抱歉，未找到“#{html.escape(word)}#”相关结果。</div>'
    else:
        body = extra + "\n".join(post_block(p, bid=bid_of(p["mid"]) if bid_of else None) for p in chunk)
    base = f"/search/mblog?hideSearchFrame=&amp;keyword={quote('#' + word + '#')}"
    return _page("搜索结果", f'<div class="c">共{len(posts)}条</div>{body}{_pager(base, page, pages)}')


def comment_page(post: dict[str, Any], page: int, per_page: int, extra: str = "",
                 bid: str | None = None) -> str:
    """Page ``page`` of a post's comments: page 1 has the post and the hot comments first.

    ``post["pages_shown"]`` (optional) is the page count the page claims (real pages can say
    100000); pages past the real ones repeat the last real page up to page 50, and page 51
    onwards says there are no comments, as weibo.cn does.
    """
    comments = post["comments_list"]
    real = max(1, -(-len(comments) // per_page))
    pages = int(post.get("pages_shown") or real)
    top = post_block(post, on_comment_page=True, bid=bid) if page == 1 else ""
    if page > 50 or not comments:
        body = '<div class="c">还没有人针对这条微博发表评论!</div>'
        pages = 1 if not comments else pages
    else:
        at = min(page, real)
        chunk = comments[(at - 1) * per_page: at * per_page]
        hot = hot_comments(post) if page == 1 else []
        hot_html = "".join(comment_block(c, hot=True) for c in hot)
        offset = (at - 1) * per_page
        body = extra + hot_html + "\n".join(comment_block(c, n=offset + i) for i, c in enumerate(chunk))
    base = f"/comment/{bid or post['mid']}?uid=0&amp;rl=0"
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


# --------------------------------------------------------------------------- s.weibo.com


def _sw_count(n: int, word: str) -> str:
    return str(n) if n else word


def sweibo_card(post: dict[str, Any], bid: str) -> str:
    """One ``div.card-wrap[@mid]`` of an s.weibo.com result page (a retweet has ``card-comment``)."""
    uid = post["uid"].split(":", 1)[1] if post["uid"].startswith("custom:") else post["uid"]
    nick = html.escape(nick_of(post["uid"]))
    text = post["text"]
    icon = '<i class="wbicon">\ue627</i>' if post.get("icon") else ""   # an icon-font glyph
    if len(text) > EXCERPT:
        paras = (f'<p class="txt" node-type="feed_list_content" nick-name="{nick}">'
                 f'{icon}{rich_text(text[:EXCERPT])}…<a href="javascript:void(0);" action-type="fl_unfold">展开'
                 f'<i class="wbicon">c</i></a></p>'
                 f'<p class="txt" node-type="feed_list_content_full" nick-name="{nick}" '
                 f'style="display: none">{icon}{rich_text(text)}<a href="javascript:void(0);" '
                 f'action-type="fl_fold">收起<i class="wbicon">d</i></a></p>')
    else:
        paras = f'<p class="txt" node-type="feed_list_content" nick-name="{nick}">{icon}{rich_text(text)}</p>'
    original = ""
    if post.get("retweet"):
        o = post["retweet"]
        original = (f'<div class="card-comment"><div node-type="feed_list_forwardContent">'
                    f'<a href="//weibo.com/{o["uid"]}" class="name">@{html.escape(nick_of(o["uid"]))}</a>'
                    f'<p class="txt" node-type="feed_list_content">{rich_text(o["text"])}</p></div>'
                    f'<div class="func"><ul class="act s-fr"><li><a action-type="feed_list_forward">'
                    f'转发 {o.get("reposts", 0)}</a></li><li><a action-type="feed_list_comment">评论 '
                    f'{o.get("comments", 0)}</a></li></ul><div class="from"><a href="//weibo.com/{o["uid"]}/'
                    f'{o.get("bid", "Orig1")}">11月01日 10:00</a></div></div></div>')
    client = post.get("source") or ""
    when = html.escape(post["created"])
    frm = "p" if post.get("layout") == "2018" else "div"   # the 2018 card keeps these in p.from
    return (f'<div class="card-wrap" action-type="feed_list_item" mid="{post["mid"]}">'
            f'<div class="card"><div class="card-feed"><div class="avator">'
            f'<a href="//weibo.com/{uid}?refer_flag=1001030103_"><img src="/img/a.png" /></a></div>'
            f'<div class="content" node-type="like"><div class="info"><div></div><div>'
            f'<a href="//weibo.com/{uid}?refer_flag=1001030103_" class="name" target="_blank" '
            f'nick-name="{nick}">{nick}</a></div></div>{paras}{original}'
            f'<{frm} class="from"><a href="//weibo.com/{uid}/{bid}?refer_flag=1001030103_" '
            f'target="_blank">\n   {when}  </a>&nbsp;来自 <a href="//app.weibo.com/t/feed/x" '
            f'rel="nofollow">{html.escape(client)}</a></{frm}></div></div>'
            f'<div class="card-act"><ul><li><a href="javascript:void(0);" action-type="feed_list_forward">'
            f'<i class="woo-font">f</i> {_sw_count(post["reposts"], "转发")}</a></li>'
            f'<li><a href="javascript:void(0);" action-type="feed_list_comment"><i class="woo-font">c</i> '
            f'{_sw_count(post["comments"], "评论")}</a></li>'
            f'<li><a href="javascript:void(0);" action-type="feed_list_like"><button>'
            f'<span class="woo-like-iconWrap"><i class="woo-like-icon"></i></span>'
            f'<span class="woo-like-count">{_sw_count(post["likes"], "赞")}</span></button></a></li>'
            f'</ul></div></div></div>')


#: An s.weibo.com card without text (the malformed scenario).
BROKEN_CARD = ('<div class="card-wrap" action-type="feed_list_item" mid="4999999999999999"><div class="card">'
               '<div class="content"><div class="from"><a href="//weibo.com/9/Broken1">刚刚</a></div>'
               '</div></div></div>\n')


def sweibo_page(word: str, posts: list[dict[str, Any]], page: int, per_page: int,
                base: str, bid_of: Any, extra: str = "") -> str:
    pages = max(1, -(-len(posts) // per_page))
    chunk = posts[(page - 1) * per_page: page * per_page]
    if not chunk:
        body = ('<div class="card card-no-result s-pt20b40"><p>抱歉，未找到“'
                f'{html.escape(word)}”相关结果。</p></div>')
        paging = ""
    else:
        body = extra + "\n".join(sweibo_card(p, bid_of(p["mid"])) for p in chunk)
        q = quote(word)
        items = "".join(f'<li><a href="{base}/weibo?q={q}&amp;page={n}">第{n}页</a></li>'
                        for n in range(1, pages + 1))
        nxt = f'<a class="next" href="{base}/weibo?q={q}&amp;page={page + 1}">下一页</a>' \
            if page < pages else ""
        paging = (f'<div class="m-page"><div><span class="list"><ul class="s-scroll">{items}</ul>'
                  f'</span>{nxt}</div></div>')
    return ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>微博搜索</title></head><body>'
            f'<div class="m-main"><div id="pl_feedlist_index">{body}</div>{paging}</div></body></html>')


# --------------------------------------------------------------------------- weibo.com JSON

_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def weibo_com_time(n: int) -> str:
    """A created_at in weibo.com's form (``Wed Oct 19 23:44:36 +0800 2022``), varied by ``n``."""
    from datetime import datetime, timedelta

    t = datetime(2026, 11, 24, 21, 0, 0) - timedelta(minutes=37 * n)
    return f"{_WEEKDAYS[t.weekday()]} {_MONTHS[t.month - 1]} {t:%d %H:%M:%S} +0800 {t.year}"


def json_comment(c: dict[str, Any], n: int, root: dict[str, Any] | None = None,
                 replies: int = 0) -> dict[str, Any]:
    uid = c["uid"].split(":", 1)[1] if c["uid"].startswith("custom:") else c["uid"]
    text = c["text"]
    if c.get("reply_to"):
        text = f"回复@{c['reply_to']}:{text}"
    out: dict[str, Any] = {
        "created_at": weibo_com_time(n), "id": int(c["id"]), "idstr": c["id"],
        "rootid": int(root["id"]) if root else int(c["id"]),
        "like_counts": c["likes"], "source": f"来自{c['ip']}" if c.get("ip") else "",
        "text": html.escape(text), "text_raw": "" if c.get("image_only") else text,
        "user": {"id": int(uid) if uid.isdigit() else 7_000_000_000 + n, "screen_name": nick_of(c["uid"])},
        "total_number": replies,
    }
    if c.get("image_only"):
        out["pic_infos"] = {"p1": {"url": "/img/p1.jpg"}}
    if replies:
        out["more_info"] = {"text": f"共{replies}条回复"}
    if root:
        out["reply_comment"] = {"id": int(root["id"]), "text": "", "user": {"id": 1}}
    return out


def threads(post: dict[str, Any]) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """First-level comments with their replies: a comment with ``reply_to`` answers the
    nearest first-level comment above it (weibo.cn shows them all flat)."""
    out: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
    for c in post["comments_list"]:
        if c.get("reply_to") and out:
            out[-1][1].append(c)
        else:
            out.append((c, []))
    return out


def build_comments_json(post: dict[str, Any], max_id: int, count: int) -> str:
    """First level: ``count`` threads from cursor ``max_id`` (an index + 1 here; 0 = start)."""
    th = threads(post)
    start = max(0, max_id - 1) if max_id else 0
    chunk = th[start:start + count]
    nxt = start + count + 1 if start + count < len(th) else 0
    data = [json_comment(c, start + i, replies=len(r)) for i, (c, r) in enumerate(chunk)]
    return json.dumps({"ok": 1, "data": data, "max_id": nxt, "total_number": len(post["comments_list"]),
                       "rootComment": [], "trendsText": ""}, ensure_ascii=False)


def build_replies_json(post: dict[str, Any], comment_id: str, max_id: int, count: int) -> str | None:
    for c, replies in threads(post):
        if c["id"] == comment_id:
            start = max(0, max_id - 1) if max_id else 0
            chunk = replies[start:start + count]
            nxt = start + count + 1 if start + count < len(replies) else 0
            data = [json_comment(r, start + i, root=c) for i, r in enumerate(chunk)]
            return json.dumps({"ok": 1, "data": data, "max_id": nxt, "total_number": len(replies)},
                              ensure_ascii=False)
    return None


def login_json() -> str:
    return json.dumps({"ok": -100, "url": "https://passport.weibo.com/sso/signin?entry=miniblog"})


# --------------------------------------------------------------------------- m.weibo.cn JSON

#: hotflow's cursor here: ``max_id`` = HOTFLOW_CURSOR + index of the next thread, with
#: ``max_id_type`` 1; a request that does not send both back is refused, as a check.
HOTFLOW_CURSOR = 138_000_000_000_000


def hotflow_comment(c: dict[str, Any], n: int, root: dict[str, Any] | None = None,
                    replies: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One comment as m.weibo.cn's hotflow sends it: HTML text, like_count, source = place."""
    uid = c["uid"].split(":", 1)[1] if c["uid"].startswith("custom:") else c["uid"]
    text = "" if c.get("image_only") else rich_text(c["text"])
    if c.get("reply_to"):
        text = f'回复<a href="/n/{quote(c["reply_to"])}">@{html.escape(c["reply_to"])}</a>:{text}'
    if c.get("image_only"):
        text += f'<a href="/mblog/pic/{c["id"]}" data-url="pic">评论配图</a>'
    out: dict[str, Any] = {
        "created_at": weibo_com_time(n), "id": c["id"], "rootid": root["id"] if root else c["id"],
        "floor_number": n + 1, "text": text, "disable_reply": 0,
        "user": {"id": int(uid) if uid.isdigit() else 7_000_000_000 + n,
                 "screen_name": nick_of(c["uid"]), "profile_image_url": "/img/u.png"},
        "mid": c["id"], "like_count": c["likes"], "source": f"来自{c['ip']}" if c.get("ip") else "",
        "comments": [hotflow_comment(r, n, root=c) for r in replies] if replies else False,
        "total_number": len(replies or []),
    }
    if root:
        out["reply_id"] = root["id"]
    if c.get("image_only"):
        out["pic"] = {"pid": f"p{c['id']}", "url": "/img/p1.jpg"}
    return out


def hotflow_json(post: dict[str, Any], max_id: int, max_id_type: int, count: int = 20) -> str:
    """A page of hotflow: ``count`` threads, each first-level comment with its replies inline;
    ``max_id`` 0 on the last page. No comments: an empty list, as for a post nobody answered."""
    th = threads(post)
    if max_id and (max_id < HOTFLOW_CURSOR or max_id_type != 1):
        return json.dumps({"ok": 0, "msg": "参数错误"}, ensure_ascii=False)
    start = max_id - HOTFLOW_CURSOR if max_id else 0
    chunk = th[start:start + count]
    more = start + count < len(th)
    data = [hotflow_comment(c, start + i, replies=r) for i, (c, r) in enumerate(chunk)]
    return json.dumps({"ok": 1, "data": {"data": data, "total_number": len(post["comments_list"]),
                                         "max_id": HOTFLOW_CURSOR + start + count if more else 0,
                                         "max_id_type": 1 if more else 0}}, ensure_ascii=False)


def hotflow_login_json() -> str:
    """hotflow without a login: ``ok`` 0 (MediaCrawler treats any ok 0 as an error answer)."""
    return json.dumps({"ok": 0, "msg": "请先登录", "url": "https://passport.weibo.cn/signin/login"},
                      ensure_ascii=False)
