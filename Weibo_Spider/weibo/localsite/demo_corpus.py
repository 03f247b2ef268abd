"""The demo site's content: two weeks of hot topics, posts and comments written for this project.

Every sentence here was written for the demo; none comes from a real user or a
labelled data set. The comments span the whole range of the rubric (cheerful,
neutral, low mood, drinking to cope, wishes to die, concrete plans) so that the
demo's charts and alert table have something to show.

What makes it look like Weibo rather than a fixture:

- **Time.** Comment and post times are relative to the moment the corpus is built
  (the site starts right before the crawl), spread over the last 14 days, with a
  daily rhythm (each topic rises to its peak day and fades) and an hourly one
  (quiet before dawn, busy at lunch and late in the evening). They are served as
  weibo.cn writes them: "刚刚", "12分钟前", "今天 21:40", "11月23日 08:15".
- **High-risk texts.** At least 20 distinct texts across suicide-risk levels 5-10,
  each used once, so the alert table shows 20 different comments, not one sentence
  with different emoji. Everyday texts repeat, as they do on Weibo.
- **Topic heat** follows each topic's curve: the hot-search list served now, and a
  history of earlier hot-search snapshots (``write_history``) that the demo stores
  as crawl runs marked ``demo-history``, so the heat chart has rises and falls.
- **Known levels.** The demo wrote every text, so it knows each one's intended level
  on the four scales (``intended_levels``). ``store_labels`` writes them as human labels of
  annotator ``demo`` (scorer ``human:demo``), through the same path as any human
  label (``weibo_mh.rollups.write_human_labels``), so the report's agreement chart
  compares the lexicon with them.

Ids and texts come from a seeded generator and do not depend on the time, so a
re-run serves the same comments and duplicates nothing.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
from datetime import datetime, timedelta, timezone
from typing import Any

SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
DAYS = 14
ANNOTATOR = "demo"
HISTORY_HOST = "demo-history"
#: Levels: (positivity, mood_disorder, substance_use, suicide_risk).
Levels = tuple[int, int, int, int]
DIMENSIONS = ("positivity", "mood_disorder", "substance_use", "suicide_risk")

# (word, category, peak heat, peak day in days ago, spread in days)
TOPICS: list[tuple[str, str, int, float, float]] = [
    ("考研成绩公布", "教育", 4_812_330, 2.0, 1.6),
    ("年轻人为什么总是失眠", "健康", 3_905_120, 6.0, 3.0),
    ("冬至吃饺子还是汤圆", "美食", 3_311_004, 0.5, 1.2),
    ("打工人的周一", "社会", 2_870_455, 8.0, 2.5),
    ("毕业三年后的我们", "情感", 2_416_778, 11.0, 2.0),
    ("城市夜跑打卡", "运动", 1_998_310, 4.0, 4.0),
    ("如何走出失恋", "情感", 1_754_092, 9.5, 2.2),
    ("家里的猫又胖了", "萌宠", 1_520_660, 12.5, 1.5),
    ("年底裁员潮", "财经", 1_377_215, 3.5, 2.0),
    ("凌晨三点的朋友圈", "情感", 1_102_948, 1.0, 5.0),
    ("新款手机发布会", "科技", 990_004, 6.5, 1.0),
]

POSTS: dict[str, list[str]] = {
    "考研成绩公布": ["#考研成绩公布# 今天查分的同学们，不管结果如何，都辛苦了。",
                  "#考研成绩公布# 分数线还没出，大家先别慌，评论区说说你的情况。"],
    "年轻人为什么总是失眠": ["#年轻人为什么总是失眠# 你昨晚几点睡的？睡前都在做什么？",
                      "#年轻人为什么总是失眠# 医生建议：睡前一小时放下手机。"],
    "冬至吃饺子还是汤圆": ["#冬至吃饺子还是汤圆# 北方饺子南方汤圆，你站哪边？"],
    "打工人的周一": ["#打工人的周一# 闹钟响了三次才起床，地铁又挤不上去。",
                 "#打工人的周一# 周一的你，是什么状态？"],
    "毕业三年后的我们": ["#毕业三年后的我们# 当年说好常联系的人，现在还联系吗？"],
    "城市夜跑打卡": ["#城市夜跑打卡# 今晚江边五公里，风很大但很舒服。"],
    "如何走出失恋": ["#如何走出失恋# 分开以后，你用了多久才放下？",
                 "#如何走出失恋# 心理咨询师的五个建议，收藏慢慢看。"],
    "家里的猫又胖了": ["#家里的猫又胖了# 减肥计划第一天就失败了，它偷吃了我的面包。"],
    "年底裁员潮": ["#年底裁员潮# 公司今天宣布部门解散，大家还好吗？",
               "#年底裁员潮# 被裁以后怎么申请失业保险？一篇讲清楚。"],
    "凌晨三点的朋友圈": ["#凌晨三点的朋友圈# 这个时间还醒着的人，都在想什么？",
                   "#凌晨三点的朋友圈# 睡不着的人来评论区坐一坐。"],
    "新款手机发布会": ["#新款手机发布会# 续航提升百分之二十，你会换吗？"],
}

# Everyday comments, by kind, each with its intended levels (pos, mood, subst, risk).
POSITIVE: list[tuple[str, Levels]] = [
    ("太开心了，终于上岸了！谢谢一路陪我的朋友们", (9, 0, 0, 0)),
    ("今天阳光很好，心情也跟着好起来了", (8, 0, 0, 0)),
    ("和家人一起包饺子，好幸福呀", (9, 0, 0, 0)),
    ("跑完步整个人都轻松了，推荐大家试试", (8, 0, 0, 0)),
    ("我家猫也是，胖得很可爱哈哈哈", (8, 0, 0, 0)),
    ("感谢评论区的温暖，我会继续加油的", (8, 1, 0, 0)),
    ("刚刚收到录取通知，激动得说不出话", (10, 0, 0, 0)),
    ("周末去爬山，风景美极了，充满了能量", (9, 0, 0, 0)),
    ("新工作很顺利，同事们都很友好", (8, 0, 0, 0)),
    ("汤圆派来报到！甜甜的很满足", (8, 0, 0, 0)),
]
NEUTRAL: list[tuple[str, Levels]] = [
    ("请问分数线什么时候出？", (5, 0, 0, 0)),
    ("我一般十二点睡，七点起", (5, 0, 0, 0)),
    ("这款手机的价格是多少", (5, 0, 0, 0)),
    ("北方人，当然吃饺子", (6, 0, 0, 0)),
    ("失业保险要带哪些材料？", (4, 0, 0, 0)),
    ("打卡，今天三公里", (6, 0, 0, 0)),
    ("坐标上海，这边下雨了", (5, 0, 0, 0)),
    ("收藏了，回头慢慢看", (5, 0, 0, 0)),
    ("有没有一起备考的，可以互相监督", (6, 0, 0, 0)),
    ("路过，看看大家怎么说", (5, 0, 0, 0)),
]
LOW_MOOD: list[tuple[str, Levels]] = [
    ("最近总是提不起劲，做什么都没意思", (2, 6, 0, 1)),
    ("又失眠了，脑子停不下来，好累", (2, 4, 0, 1)),
    ("分数出来了，考得很差，有点难过", (2, 3, 0, 0)),
    ("被裁了，不知道接下来怎么办，很焦虑", (2, 4, 0, 1)),
    ("每天都很疲惫，感觉自己一事无成", (2, 6, 0, 1)),
    ("好久没有真正开心过了，每天都在硬撑", (1, 7, 0, 2)),
    ("一个人在出租屋里哭了一晚上", (1, 5, 0, 1)),
    ("食欲很差，一整天只吃了一顿饭", (3, 4, 0, 0)),
    ("连续好几个月情绪低落，对什么都失去兴趣", (1, 8, 0, 2)),
    ("我觉得自己很没用，拖累了身边所有人", (1, 7, 0, 2)),
]
SUBSTANCE: list[tuple[str, Levels]] = [
    ("睡不着就喝酒，现在每晚不喝两瓶就不行", (2, 4, 8, 1)),
    ("压力太大，一天要抽两包烟", (3, 3, 6, 0)),
    ("最近安眠药越吃越多，医生开的量已经不够了", (2, 5, 8, 1)),
    ("喝醉了才能暂时忘掉这些烦心事", (2, 4, 6, 1)),
    ("戒酒第三天，手一直在抖，特别难受", (2, 3, 9, 0)),
    ("下班就靠啤酒续命了", (4, 2, 4, 0)),
]
SUFFERING: list[tuple[str, Levels]] = [
    ("活着真的好累，可我还得撑下去", (1, 7, 0, 3)),
    ("每天醒来都觉得很痛苦，不知道意义在哪", (1, 7, 0, 3)),
    ("有时候觉得活着没什么意思，但还是会好好吃饭", (2, 5, 0, 2)),
]
NEGATED: list[tuple[str, Levels]] = [
    ("以前想过死，现在不想死了，想好好活", (6, 2, 0, 1)),
    ("不要想不开啊，抱抱你，会好起来的", (7, 0, 0, 0)),
    ("我不会放弃的，明天又是新的一天", (7, 1, 0, 0)),
]
SUPPORT: list[tuple[str, Levels]] = [
    ("抱抱楼上，需要的话可以拨打心理援助热线", (7, 0, 0, 0)),
    ("你不是一个人，我们都在", (8, 0, 0, 0)),
    ("难过的时候记得找人说说话", (7, 0, 0, 0)),
]
#: High-risk comments, levels 5-10 of the SOS-1K scale; each appears exactly once.
HIGH_RISK: list[tuple[str, Levels]] = [
    ("每天都在想，如果我不在了是不是大家都会轻松一点", (1, 8, 0, 5)),
    ("真的撑不下去了，好想就这样消失，再也不用醒来", (0, 8, 0, 5)),
    ("活着对我来说只剩下折磨，我是真的不想活了", (0, 9, 0, 5)),
    ("没有人需要我，我只想彻底结束这一切", (0, 8, 0, 5)),
    ("最近一直在查怎样才能走得不痛苦", (1, 8, 0, 6)),
    ("我在想用什么办法离开比较好，还没想好什么时候", (1, 8, 0, 6)),
    ("开始偷偷整理自己的东西，想好了要离开，只是还没定哪天", (1, 8, 0, 6)),
    ("已经在计划怎么结束自己了，只是还下不了决心", (0, 9, 0, 6)),
    ("我想好了，就从学校那栋楼上跳下去，只是还没想好哪天", (0, 9, 0, 7)),
    ("安眠药我已经攒了一整瓶，等哪天撑不住了就全吃了", (0, 9, 3, 7)),
    ("我决定了用烧炭，东西都买好放在床底下了", (0, 9, 0, 7)),
    ("江边那座桥我去看过好几次了，到时候就从那里跳下去", (0, 8, 0, 7)),
    ("等考完最后一门，下个月初我就去跳桥自杀", (0, 8, 0, 8)),
    ("过完这个生日就去死，方法我早就想好了", (0, 9, 0, 8)),
    ("年底前我会把事情都交代好，然后吃药结束", (0, 9, 2, 8)),
    ("下周末家里没人，我打算那时候自杀", (0, 8, 0, 8)),
    ("药已经准备好了，这两天就全吃掉去死，谢谢你们陪过我", (0, 9, 2, 9)),
    ("遗书写好了压在枕头下面，后天就去江边", (0, 9, 0, 9)),
    ("明晚等室友睡了我就从阳台跳下去", (0, 9, 0, 9)),
    ("绳子已经挂好了，就这几天上吊，别找我", (0, 9, 0, 9)),
    ("一整瓶药已经吃下去了，现在手脚发麻，我快死了，对不起大家", (0, 9, 3, 10)),
    ("我现在就站在天台边上，风好大，再见了", (0, 9, 0, 10)),
    ("炭已经点上了，门窗都封好了，马上就能死了，最后说一声再见", (0, 9, 0, 10)),
    ("刚刚割了手腕，血止不住，我不想再坚持了", (0, 9, 0, 10)),
]
EMOJI = ["", "", "", "", "😭", "😔", "🙏", "😊", "❤️", "🥲", "😂", "[泪]", "[抱抱]"]
NICKS = ["小鱼干", "晚风", "橘子汽水", "不睡觉的猫", "北方的雪", "夜跑的人"]
SOURCES = ["iPhone客户端", "Android", "微博 weibo.com", "HUAWEI Mate", "小米手机"]
#: Relative activity per hour of the day (Asia/Shanghai): quiet before dawn, busy at
#: lunch and late in the evening, with a night-owl tail after midnight.
HOURS = [6, 4, 3, 2, 1, 1, 2, 4, 7, 8, 8, 9, 12, 11, 8, 7, 7, 8, 10, 12, 14, 16, 15, 11]

_MIX_CALM = [("pos", 5), ("neu", 6), ("low", 2), ("sub", 1), ("supp", 1), ("neg", 1)]
_MIX_HEAVY = [("pos", 1), ("neu", 2), ("low", 5), ("sub", 2), ("suf", 3), ("neg", 2), ("supp", 2)]
_HEAVY = ["凌晨三点的朋友圈", "年轻人为什么总是失眠", "如何走出失恋", "年底裁员潮", "考研成绩公布"]
_POOLS = {"pos": POSITIVE, "neu": NEUTRAL, "low": LOW_MOOD, "sub": SUBSTANCE, "suf": SUFFERING,
          "neg": NEGATED, "supp": SUPPORT}


def _pick_kind(rng: random.Random, mix: list[tuple[str, int]]) -> str:
    kinds, weights = zip(*mix, strict=True)
    return rng.choices(kinds, weights=weights)[0]


def shanghai_now() -> datetime:
    return datetime.now(SHANGHAI).replace(tzinfo=None, microsecond=0)


def weibo_time(t: datetime, now: datetime) -> str:
    """``t`` as weibo.cn prints it when the page is served at ``now``."""
    delta = now - t
    if delta < timedelta(minutes=1):
        return "刚刚"
    if delta < timedelta(hours=1):
        return f"{int(delta.total_seconds() // 60)}分钟前"
    if t.date() == now.date():
        return f"今天 {t:%H:%M}"
    if t.year == now.year:
        return f"{t.month:02d}月{t.day:02d}日 {t:%H:%M}"
    return f"{t:%Y-%m-%d %H:%M:%S}"


def activity(days_ago: float, peak: float, spread: float) -> float:
    """How hot a topic is ``days_ago`` days back: a bump around its peak day, never quite zero."""
    return 0.06 + math.exp(-((days_ago - peak) ** 2) / (2 * spread ** 2))


def _comment_time(rng: random.Random, now: datetime, peak: float, spread: float) -> datetime:
    days = list(range(DAYS))
    day = rng.choices(days, weights=[activity(d + 0.5, peak, spread) for d in days])[0]
    hour = rng.choices(range(24), weights=HOURS)[0]
    t = (now - timedelta(days=day)).replace(hour=hour, minute=rng.randrange(60), second=rng.randrange(60))
    while t > now:  # later today than now: the same hour yesterday
        t -= timedelta(days=1)
    return t


def build_corpus(seed: int = 2026, comments_per_post: int = 34, now: datetime | None = None) -> dict[str, Any]:
    """The demo corpus in the local site's format (see ``weibo.localsite.corpus``).

    Each comment also carries ``levels`` (its intended levels, see ``DIMENSIONS``),
    which the pages never show.
    """
    now = now or shanghai_now()
    rng = random.Random(seed)           # ids, texts, counts: the same on every run
    trng = random.Random(seed + 1)      # times: the same shape, relative to ``now``
    high = list(HIGH_RISK)
    random.Random(seed + 2).shuffle(high)
    heavy_posts = sum(len(POSTS[w]) for w in _HEAVY)
    topics: list[dict[str, Any]] = []
    mid = 5_000_000_000_000_000
    cid = 4_900_000_000_000_000
    for word, category, heat, peak, spread in TOPICS:
        mix = _MIX_HEAVY if word in _HEAVY else _MIX_CALM
        posts = []
        for p_i, text in enumerate(POSTS[word]):
            mid += 7919
            # the high-risk texts are dealt out over the heavy topics' posts, once each
            share = []
            if word in _HEAVY:
                k = sum(len(POSTS[w]) for w in _HEAVY[:_HEAVY.index(word)]) + p_i
                share = high[k * len(high) // heavy_posts:(k + 1) * len(high) // heavy_posts]
            n = comments_per_post + rng.randint(-6, 8) + (8 if word in _HEAVY else 0)
            slots = set(rng.sample(range(n), len(share)))
            comments = []
            times = sorted((_comment_time(trng, now, peak, spread) for _ in range(n)), reverse=True)
            for i in range(n):
                cid += 104_729
                if i in slots:
                    body, levels = share.pop()
                else:
                    kind = _pick_kind(rng, mix)
                    body, levels = rng.choice(_POOLS[kind])
                    body += rng.choice(EMOJI)
                reply_to = rng.choice(NICKS) if rng.random() < 0.2 else None
                comments.append({
                    "id": str(cid), "uid": str(rng.randint(1_000_000_000, 7_999_999_999)),
                    "text": body, "reply_to": reply_to, "likes": rng.choice([0, 0, 0, 1, 2, 5, 13, 88]),
                    "created": weibo_time(times[i], now), "source": rng.choice(SOURCES),
                    "levels": levels})
            first = min(times) - timedelta(hours=1 + trng.randrange(6)) if times else now
            posts.append({
                "mid": str(mid), "uid": f"custom:demo_media_{word}_{p_i}" if p_i else str(1_800_000_000 + len(topics)),
                "text": text, "created": weibo_time(first, now), "reposts": rng.randint(0, 3000),
                "comments": len(comments), "likes": rng.randint(10, 90_000),
                "source": rng.choice(SOURCES), "comments_list": comments})
        topics.append({"word": word, "num": int(heat * activity(0, peak, spread)), "rank": 0,
                       "category": category, "is_ad": False, "posts": posts})
    for rank, t in enumerate(sorted(topics, key=lambda t: -t["num"]), start=1):
        t["rank"] = rank
    topics.sort(key=lambda t: t["rank"])
    # One advertisement in the list, which the spider must skip.
    topics.insert(3, {"word": "某品牌双十二大促", "num": 5_000_000, "rank": 0, "category": "广告",
                      "is_ad": True, "posts": []})
    return {"topics": topics}


def intended_levels(corpus: dict[str, Any]) -> dict[str, Levels]:
    """comment id -> intended (positivity, mood_disorder, substance_use, suicide_risk)."""
    return {c["id"]: tuple(c["levels"]) for t in corpus["topics"] for p in t["posts"]
            for c in p["comments_list"]}


def heat_history(now: datetime, every_hours: int = 12) -> list[tuple[datetime, list[tuple[str, int, int]]]]:
    """Earlier hot-search lists: (time, [(word, rank, heat)]) every ``every_hours`` over 14 days."""
    out = []
    steps = DAYS * 24 // every_hours
    for s in range(steps, 0, -1):
        at = now - timedelta(hours=s * every_hours)
        days_ago = s * every_hours / 24
        heats = [(w, int(h * activity(days_ago, peak, spread))) for w, _, h, peak, spread in TOPICS]
        ranked = sorted(heats, key=lambda x: -x[1])
        out.append((at, [(w, r, h) for r, (w, h) in enumerate(ranked, start=1)]))
    return out


# --------------------------------------------------------------------------- the demo's database step


def store_labels(conn: Any, corpus: dict[str, Any]) -> int:
    """The corpus's intended levels as human labels (``human:demo``) of the comments crawled."""
    import sqlalchemy as sa

    from weibo_mh import db, rollups
    from weibo_mh.rubric import RUBRIC_VERSION

    want = intended_levels(corpus)
    have = set(conn.execute(sa.select(db.comments.c.id).where(db.comments.c.id.in_(list(want)))).scalars())
    labels = [(cid, dim, lv[k]) for cid, lv in want.items() if cid in have
              for k, dim in enumerate(DIMENSIONS)]
    return rollups.write_human_labels(conn, ANNOTATOR, labels, RUBRIC_VERSION)


def write_history(conn: Any, now: datetime) -> int:
    """Store earlier hot-search snapshots as crawl runs marked ``demo-history`` (once)."""
    import sqlalchemy as sa

    from weibo_mh import db

    runs = db.crawl_runs
    if conn.execute(sa.select(runs.c.id).where(runs.c.host == HISTORY_HOST).limit(1)).first():
        return 0
    topic_ids = dict(conn.execute(sa.select(db.topics.c.word, db.topics.c.id)).all())
    n = 0
    for at, ranked in heat_history(now):
        run_id = conn.execute(runs.insert().values(
            started_at=at, finished_at=at, status="ok", host=HISTORY_HOST, topics=len(ranked),
            stats='{"note": "hot-search history written by the demo, not crawled"}')).inserted_primary_key[0]
        rows = [{"crawl_run_id": run_id, "topic_id": topic_ids[w], "rank": r, "heat": h, "seen_at": at}
                for w, r, h in ranked if w in topic_ids]
        if rows:
            conn.execute(db.topic_snapshots.insert(), rows)
            n += len(rows)
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m weibo.localsite.demo_corpus",
        description="Without a command: print the demo corpus's size. 'label': after the demo's crawl, "
                    "store the corpus's intended levels as human labels (scorer human:demo) and the "
                    "demo's earlier hot-search snapshots (crawl runs marked demo-history). Idempotent.")
    ap.add_argument("command", nargs="?", choices=("label",))
    ap.add_argument("--config", help="TOML config (default: $WEIBO_MH_CONFIG or configs/default.toml)")
    ap.add_argument("--db", help="database URL (default: the config's database.url)")
    a = ap.parse_args(argv)
    corpus = build_corpus()
    if a.command is None:
        n_posts = sum(len(t["posts"]) for t in corpus["topics"])
        n_comments = sum(len(p["comments_list"]) for t in corpus["topics"] for p in t["posts"])
        print(f"{len(corpus['topics'])} topics, {n_posts} posts, {n_comments} comments, "
              f"{len(HIGH_RISK)} distinct high-risk texts")
        return 0
    from weibo_mh import db
    from weibo_mh.config import load_or_exit

    url = a.db or load_or_exit(a.config).database.url
    try:
        engine = db.open_checked(url)
    except db.SchemaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with engine.connect() as conn:
        conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            n_labels = store_labels(conn, corpus)
            n_snaps = write_history(conn, shanghai_now())
    engine.dispose()
    print(f"demo: {n_labels} human:demo labels stored; {n_snaps} earlier hot-search snapshots written"
          + ("" if n_snaps else " (already there)"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
