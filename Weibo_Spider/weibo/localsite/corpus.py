"""The corpus format of the local site, and the small corpus the tests use.

A corpus is a plain dict; the site renders weibo.cn-shaped pages from it::

    {"topics": [                      # the hot-search list, in any order
        {"word": str,                 # the hot-search word (also the #topic# of its posts)
         "num": int,                  # heat
         "rank": int,                 # position in the list (1 = top)
         "category": str | None,      # e.g. "社会"; None for none
         "is_ad": bool,               # ads are served but the spider skips them
         "posts": [                   # search results for #word#, 10 per page
            {"mid": str,              # post id, letters and digits
             "uid": str,              # digits ("1234567") or "custom:<name>" for a /<name> link
             "text": str,             # may hold emoji, [表情] codes, @mentions, #topics#, & < >
             "created": str,          # a weibo.cn time string: "今天 08:30", "11月20日 12:00",
                                      # "2026-11-20 12:00:00", "5分钟前", "刚刚", "昨天 23:10"
             "reposts": int, "comments": int, "likes": int,
             "source": str,           # "iPhone客户端" etc.
             "comments_list": [       # comment pages, 10 per page, in display order
                {"id": str,           # comment id, digits
                 "uid": str,          # as for posts
                 "text": str,
                 "reply_to": str | None,   # nickname replied to ("回复@nick:" is prepended)
                 "likes": int,
                 "created": str,
                 "source": str,       # the client; "网页" for the web
                 "ip": str | None,    # optional: the IP location (IP属地), e.g. "河南"
                 "hot": bool,         # optional: listed first among the hot comments
                 "image_only": bool,  # optional: a picture (评论配图) and no words
                 "ct_style": str}],   # optional: client, client_ip, ip_only, web, client_trailing
             "ip": str | None,        # optional, as for comments
             "retweet": {"uid", "text", "reposts", "comments", "likes"} | None,
                                      # optional: the post retweets this original; "text"
                                      # above is then the retweeter's own words (转发理由)
             "pages_shown": int}]}]}  # optional: the page count the comment pages claim
                                      # (e.g. 100000; pages past the real ones repeat)
    # optional: "hotgov": {"word": str, "posts": [...]}   the pinned government entry
    # optional: "watch": [post, ...]   posts in no topic (served by mid or bid), for watch lists
    # optional per topic: "label" (badge 热/新/沸/爆), "word_scheme" (default "#word#")

A post may appear under several topics: give the same dict (or an equal one
with the same ``mid``) in each topic's ``posts``. Nicknames shown on the pages
are made up by the site from the uid. All texts here are written for this
project.
"""

from __future__ import annotations

from typing import Any

Corpus = dict[str, Any]

_POST_TEXTS = [
    "最近总是凌晨三点才睡着，白天上班整个人都是飘的😭 有没有人一样？",
    "试了睡前不看手机，第三天终于十二点前睡着了，分享给大家🙏",
    "每天醒来都觉得好累，不想说话，也不想见人。",
    "医生说是焦虑引起的失眠，开始吃药了，希望会好起来。",
    "褪黑素到底有没有用？ & 吃多了会不会有依赖 <疑问>",
    "睡不着的时候我就听雨声，[心] 推荐给同样失眠的朋友",
    "连续一周只睡四个小时，感觉自己快撑不住了……",
    "跟 @小林同学 聊了一晚上，心里轻松多了，谢谢你",
    "运动真的有帮助，晚饭后散步半小时，睡眠好了很多",
    "又是一个睁眼到天亮的夜晚，窗外的鸟都开始叫了",
    "   多余的空格   和\n换行   也要能处理  ",
    "今天去做了心理咨询，第一次说出那些话，哭了很久但很值得",
]

_COMMENT_TEXTS = [
    "抱抱你，会好起来的🙏",
    "我也是这样，白天特别困",
    "建议去看看医生，别硬扛",
    "哈哈哈同款熊猫眼[笑cry]",
    "真的很需要有人陪着说说话",
    "有时候觉得活着好累，不知道坚持是为了什么",
    "试试冥想，我坚持了一个月有效果",
    "加油！你已经做得很好了 💪",
    "别熬了，身体最重要 & 心情也是",
    "这条说出了我的心声😭😭",
    "可以拨打心理援助热线，有人会认真听你说",
    "昨晚也是三点才睡，今天又要早起",
]

_PLACES = ["河南", "广东", "上海", "四川", "海外"]

_TIMES = ["刚刚", "5分钟前", "今天 08:30", "昨天 23:10", "11月20日 12:00", "2026-11-20 12:00:00",
          "2025年12月31日 23:59", "30分钟前"]


def _comments(post_no: int, n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        out.append({
            "id": f"49{post_no:03d}{i:04d}",
            "uid": f"{7000000 + (post_no * 37 + i) % 50}" if i % 7 else f"custom:reader_{i % 5}",
            "text": _COMMENT_TEXTS[(post_no + i) % len(_COMMENT_TEXTS)] + ("" if i < 12 else f" 第{i}楼"),
            "reply_to": f"读者{(i + 3) % 9}" if i % 4 == 3 else None,
            "likes": (i * 3) % 17,
            "created": _TIMES[(post_no + i) % len(_TIMES)],
            "source": "iPhone客户端" if i % 2 else "Android",
            "ip": _PLACES[(post_no + i) % len(_PLACES)] if i % 3 else None,
        })
    return out


def post_mid(no: int) -> str:
    """The numeric mid of test post ``no`` (weibo.cn shows its base-62 bid)."""
    return str(5_100_000_000_000_000 + no)


def _post(no: int, n_comments: int, comments_shown: int | None = None) -> dict[str, Any]:
    shown = n_comments if comments_shown is None else comments_shown
    return {
        "mid": post_mid(no),
        "uid": f"{5000000 + no}" if no % 5 else f"custom:sleepless_{no}",
        "text": _POST_TEXTS[no % len(_POST_TEXTS)] + f" #{no}",
        "created": _TIMES[no % len(_TIMES)],
        "reposts": no * 2,
        "comments": shown,
        "likes": no * 10 + 1,
        "source": "微博 weibo.com" if no % 3 else "HUAWEI Mate",
        "comments_list": _comments(no, n_comments),
        "ip": _PLACES[no % len(_PLACES)] if no % 2 else None,
    }


def small_corpus() -> Corpus:
    """Four topics (one ad), 15 posts, one of them in two topics, 43 comments over 1–3 pages each.

    Topic 1 has 12 posts (two search pages); post 1 has 23 comments (three
    comment pages) and also appears under topic 2; topic 3 has no results.
    """
    p = {no: _post(no, n) for no, n in [(1, 23), (2, 2), (3, 0), (4, 0), (5, 1), (6, 0), (7, 0),
                                         (8, 0), (9, 0), (10, 0), (11, 0), (12, 0), (13, 12),
                                         (14, 0), (15, 5)]}
    # post 13 is a retweet: its text and counts are its own, the original's are shown first
    p[13]["retweet"] = {"uid": "5000999", "text": "原帖：今晚一起早点睡，互相监督", "reposts": 4321,
                        "comments": 876, "likes": 9999}
    return {"topics": [
        {"word": "春天总是睡不好", "num": 1_204_331, "rank": 1, "category": "健康", "is_ad": False,
         "posts": [p[i] for i in range(1, 13)]},
        {"word": "新款耳机首发", "num": 990_000, "rank": 2, "category": None, "is_ad": True,
         "posts": [_post(90, 1)]},
        {"word": "考研人的深夜", "num": 873_002, "rank": 2, "category": "教育", "is_ad": False,
         "posts": [p[13], p[14], p[1]]},
        {"word": "周末一个人去看海", "num": 410_567, "rank": 3, "category": None, "is_ad": False,
         "posts": []},
        {"word": "深夜食堂的温暖", "num": 120_000, "rank": 4, "category": "美食", "is_ad": False,
         "posts": [p[15]]},
    ]}


#: The mid of the tree-hole post ``watch_corpus`` serves (weibo.cn shows its bid).
TREE_HOLE_MID = post_mid(700)

_TREE_HOLE_TEXTS = [
    "又来这里坐一会儿，这里的人都懂",
    "今天也熬过来了，给自己记一笔",
    "看到大家还在，心里好受一点",
    "明天要去复诊，有点怕",
    "有人陪着说说话就好",
]


def tree_hole_post(n_comments: int = 25) -> dict[str, Any]:
    """A post outside the hot topics whose comment section people keep writing in (a tree hole)."""
    comments = _comments(700, n_comments)
    for i, c in enumerate(comments):
        c["text"] = _TREE_HOLE_TEXTS[i % len(_TREE_HOLE_TEXTS)] + f" （{i}）"
        c["hot"] = False
    return dict(_post(700, 0), mid=TREE_HOLE_MID, text="想找个地方说说话，就写在这里吧。",
                comments=n_comments, comments_list=comments)


def watch_corpus(n_comments: int = 25) -> Corpus:
    """The small corpus plus one watched tree-hole post (``TREE_HOLE_MID``, in no hot topic)."""
    return dict(small_corpus(), watch=[tree_hole_post(n_comments)])


def scale_corpus(topics: int = 5, posts_per_topic: int = 30, comments_per_post: int = 25) -> Corpus:
    """A larger generated corpus for benchmarks and the two-process test."""
    out = []
    no = 100
    for t in range(topics):
        posts = []
        for _ in range(posts_per_topic):
            no += 1
            posts.append(_post(no, comments_per_post))
        out.append({"word": f"测试话题{t + 1}号", "num": 1_000_000 - t * 1000, "rank": t + 1,
                    "category": "测试", "is_ad": False, "posts": posts})
    return {"topics": out}


def crawlable(corpus: Corpus, topic_limit: int = 20) -> list[dict[str, Any]]:
    """The topics a crawl takes: non-ads, by rank, the first ``topic_limit``."""
    topics = [t for t in corpus["topics"] if not t.get("is_ad")]
    return sorted(topics, key=lambda t: t["rank"])[:topic_limit]


def expected_counts(corpus: Corpus, topic_limit: int = 20, max_post_pages: int = 3,
                    max_comment_pages: int = 50, per_page: int = 10, search_sources: int = 2) -> dict[str, int]:
    """Rows a complete weibo.cn-comments crawl stores, and pages it fetches.

    A topic without posts is searched on every source in turn (``search_sources``).
    """
    topics = crawlable(corpus, topic_limit)
    posts: dict[str, dict[str, Any]] = {}
    links = set()
    pages = 1  # the hot-search JSON
    for t in topics:
        if not t["posts"]:
            pages += search_sources - 1
        shown = t["posts"][:max_post_pages * per_page]
        pages += max(1, min(max_post_pages, -(-len(t["posts"]) // per_page)))
        for post in shown:
            posts[post["mid"]] = post
            links.add((post["mid"], t["word"]))
    comments = 0
    for post in posts.values():
        if post["comments"] > 0:
            n_pages = min(max_comment_pages, max(1, -(-len(post["comments_list"]) // per_page)))
            pages += n_pages
            comments += min(len(post["comments_list"]), n_pages * per_page)
    return {"topics": len(topics), "posts": len(posts), "post_topics": len(links),
            "comments": comments, "pages": pages}
