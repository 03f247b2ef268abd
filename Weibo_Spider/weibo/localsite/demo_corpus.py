"""The demo site's content: hot topics, posts and a few hundred comments written for this project.

Every sentence here was written for the demo; none comes from a real user or a
labelled data set. The comments span the whole range of the rubric (cheerful,
neutral, low mood, drinking to cope, wishes to die, concrete plans) so that the
demo's charts and alert table have something to show. Generation is seeded, so
every run serves the same pages.
"""

from __future__ import annotations

import random
from typing import Any

TOPICS: list[tuple[str, str, int]] = [
    ("考研成绩公布", "教育", 4_812_330),
    ("年轻人为什么总是失眠", "健康", 3_905_120),
    ("冬至吃饺子还是汤圆", "美食", 3_311_004),
    ("打工人的周一", "社会", 2_870_455),
    ("毕业三年后的我们", "情感", 2_416_778),
    ("城市夜跑打卡", "运动", 1_998_310),
    ("如何走出失恋", "情感", 1_754_092),
    ("家里的猫又胖了", "萌宠", 1_520_660),
    ("年底裁员潮", "财经", 1_377_215),
    ("凌晨三点的朋友圈", "情感", 1_102_948),
    ("新款手机发布会", "科技", 990_004),
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

# Comments by the kind of signal they carry; each list was written for the demo.
POSITIVE = [
    "太开心了，终于上岸了！谢谢一路陪我的朋友们",
    "今天阳光很好，心情也跟着好起来了",
    "和家人一起包饺子，好幸福呀",
    "跑完步整个人都轻松了，推荐大家试试",
    "我家猫也是，胖得很可爱哈哈哈",
    "感谢评论区的温暖，我会继续加油的",
    "刚刚收到录取通知，激动得说不出话",
    "周末去爬山，风景美极了，充满了能量",
    "新工作很顺利，同事们都很友好",
    "汤圆派来报到！甜甜的很满足",
]
NEUTRAL = [
    "请问分数线什么时候出？",
    "我一般十二点睡，七点起",
    "这款手机的价格是多少",
    "北方人，当然吃饺子",
    "失业保险要带哪些材料？",
    "打卡，今天三公里",
    "坐标上海，这边下雨了",
    "收藏了，回头慢慢看",
    "有没有一起备考的，可以互相监督",
    "路过，看看大家怎么说",
]
LOW_MOOD = [
    "最近总是提不起劲，做什么都没意思",
    "又失眠了，脑子停不下来，好累",
    "分数出来了，考得很差，有点难过",
    "被裁了，不知道接下来怎么办，很焦虑",
    "每天都很疲惫，感觉自己一事无成",
    "好久没有真正开心过了，每天都在硬撑",
    "一个人在出租屋里哭了一晚上",
    "食欲很差，一整天只吃了一顿饭",
    "连续好几个月情绪低落，对什么都失去兴趣",
    "我觉得自己很没用，拖累了身边所有人",
]
SUBSTANCE = [
    "睡不着就喝酒，现在每晚不喝两瓶就不行",
    "压力太大，一天要抽两包烟",
    "最近安眠药越吃越多，医生开的量已经不够了",
    "喝醉了才能暂时忘掉这些烦心事",
    "戒酒第三天，手一直在抖，特别难受",
    "下班就靠啤酒续命了",
]
SUFFERING = [
    "活着真的好累，可我还得撑下去",
    "每天醒来都觉得很痛苦，不知道意义在哪",
    "有时候觉得活着没什么意思，但还是会好好吃饭",
]
WISH_TO_DIE = [
    "真的不想活了，太累了",
    "有时候想，要是睡着了再也不醒来就好了",
    "好想消失，想离开这个世界",
    "我真的很想死，没有人在乎我",
]
PLAN = [
    "药已经攒够了，就差找个合适的日子",
    "我已经想好怎么结束了，这周末就去江边",
    "遗书写好了，放在抽屉里，明天就走",
    "今晚就从楼顶跳下去，再见了大家",
]
NEGATED = [
    "以前想过死，现在不想死了，想好好活",
    "不要想不开啊，抱抱你，会好起来的",
    "我不会放弃的，明天又是新的一天",
]
SUPPORT = [
    "抱抱楼上，需要的话可以拨打心理援助热线",
    "你不是一个人，我们都在",
    "难过的时候记得找人说说话",
]
EMOJI = ["", "", "", "😭", "😔", "🙏", "😊", "❤️", "🥲", "😂", "[泪]", "[抱抱]"]
NICKS = ["小鱼干", "晚风", "橘子汽水", "不睡觉的猫", "北方的雪", "夜跑的人"]
SOURCES = ["iPhone客户端", "Android", "微博 weibo.com", "HUAWEI Mate", "小米手机"]
TIMES = ["刚刚", "3分钟前", "25分钟前", "今天 08:30", "今天 01:15", "11月23日 22:10", "11月22日 03:40",
         "11月20日 12:00", "2026-11-18 21:05:33", "2026-11-15 09:12:00"]

# How often each kind appears under each topic mood (weights).
_MIX_CALM = [("pos", 5), ("neu", 6), ("low", 2), ("sub", 1), ("supp", 1), ("neg", 1)]
_MIX_HEAVY = [("pos", 1), ("neu", 2), ("low", 5), ("sub", 2), ("suf", 3), ("wish", 2), ("plan", 1),
              ("neg", 2), ("supp", 2)]
_HEAVY = {"年轻人为什么总是失眠", "如何走出失恋", "年底裁员潮", "凌晨三点的朋友圈", "考研成绩公布"}
_POOLS = {"pos": POSITIVE, "neu": NEUTRAL, "low": LOW_MOOD, "sub": SUBSTANCE, "suf": SUFFERING,
          "wish": WISH_TO_DIE, "plan": PLAN, "neg": NEGATED, "supp": SUPPORT}


def _pick_kind(rng: random.Random, mix: list[tuple[str, int]]) -> str:
    kinds, weights = zip(*mix, strict=True)
    return rng.choices(kinds, weights=weights)[0]


def build_corpus(seed: int = 2026, comments_per_post: int = 22) -> dict[str, Any]:
    """The demo corpus in the local site's format (see ``weibo.localsite.corpus``)."""
    rng = random.Random(seed)
    topics: list[dict[str, Any]] = []
    mid = 5_000_000_000_000_000
    cid = 4_900_000_000_000_000
    for rank, (word, category, heat) in enumerate(TOPICS, start=1):
        mix = _MIX_HEAVY if word in _HEAVY else _MIX_CALM
        posts = []
        for p_i, text in enumerate(POSTS[word]):
            mid += 7919
            comments = []
            n = comments_per_post + rng.randint(-4, 6)
            for _ in range(n):
                cid += 104_729
                kind = _pick_kind(rng, mix)
                body = rng.choice(_POOLS[kind]) + rng.choice(EMOJI)
                reply_to = rng.choice(NICKS) if rng.random() < 0.2 else None
                comments.append({
                    "id": str(cid), "uid": str(rng.randint(1_000_000_000, 7_999_999_999)),
                    "text": body, "reply_to": reply_to, "likes": rng.choice([0, 0, 0, 1, 2, 5, 13, 88]),
                    "created": rng.choice(TIMES), "source": rng.choice(SOURCES)})
            posts.append({
                "mid": str(mid), "uid": f"custom:demo_media_{rank}_{p_i}" if p_i else str(1_800_000_000 + rank),
                "text": text, "created": rng.choice(TIMES[3:]), "reposts": rng.randint(0, 3000),
                "comments": len(comments), "likes": rng.randint(10, 90_000),
                "source": rng.choice(SOURCES), "comments_list": comments})
        topics.append({"word": word, "num": heat, "rank": rank, "category": category,
                       "is_ad": False, "posts": posts})
    # One advertisement in the list, which the spider must skip.
    topics.insert(3, {"word": "某品牌双十二大促", "num": 5_000_000, "rank": 0, "category": "广告",
                      "is_ad": True, "posts": []})
    return {"topics": topics}


if __name__ == "__main__":
    c = build_corpus()
    n_posts = sum(len(t["posts"]) for t in c["topics"])
    n_comments = sum(len(p["comments_list"]) for t in c["topics"] for p in t["posts"])
    print(f"{len(c['topics'])} topics, {n_posts} posts, {n_comments} comments")
