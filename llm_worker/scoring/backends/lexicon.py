"""The embedded CPU scorer: cue lists, negation and degree, graded rules. No weights.

Deterministic and fast (thousands of comments per second on one core), so that the
demo and a laptop can score without a GPU. It is a baseline, not a clinician: it
reads words, not meaning. Confidences here are a heuristic strength of evidence
(how many cues agree), not calibrated probabilities.

For the extended rubric, f10_f19 copies substance_use and f30_f39 copies
mood_disorder; the other ICD-10 blocks come from small cue lists (0 with a low
confidence when no cue is present). That is crude on purpose and documented.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from llm_worker.scoring.backends.base import DimensionScore, ScoreInput, ScoreResult
from llm_worker.scoring.lexicons import Hit, contains_any, matcher, modifiers
from weibo_mh.rubric import CORE_DIMENSIONS, EXTENDED_DIMENSIONS, ICD10_BLOCKS

VERSION = "v3"  # v3 (2026-12-06): mood and substance cues and rules (issue 24); suicide risk as v2
# v2 (2026-12-01): implicit-risk cues, company, deadlines, weighed methods

#: Single-character or vague method words count only next to another suicide cue.
_WEAK_METHOD = frozenset({"割", "药", "吊", "跳", "炭", "绳子", "窗户", "高楼", "河里", "海里", "吃药",
                          "药片", "安定", "过量", "跳了", "动脉", "刀片", "楼顶", "天台", "几楼",
                          "跳下", "一刀", "划刀", "手术刀", "买把刀", "阳台", "边缘"})
#: Generic planning words that mean planning only next to a wish or a method.
_STRONG_PLAN = frozenset({"计划", "准备好", "打算", "决定", "想好了", "遗书", "遗言", "后事", "交代好",
                          "囤药", "存药", "攒药", "买好", "选好", "安排好", "写好", "下定决心", "另一条路"})
#: Preparations that mean planning on their own, with no wish or method named.
_SELF_PLAN = frozenset({"遗书", "遗言", "后事", "交代好", "囤药", "存药", "攒药"})
#: Past attempts that need no other cue to be read as the writer's own.
_SELF_ATTEMPT = frozenset({"自杀过", "没死成", "死不成", "自杀未遂", "洗胃", "割过", "跳过楼", "吃过安眠药",
                           "吞过", "刚刚跳", "刚刚割", "刚才割", "刚刚就想跳"})
#: Company cues that say "dying together" only next to another suicide cue ("一起吗" is also an invitation to lunch).
_WEAK_COMPANY = frozenset({"一起吗", "一起？", "一起?", "一起走", "病友", "组队", "找个伴", "结伴", "要一起", "喊我一起",
                           "拉我进", "组团", "建个群", "结个伴", "一起离开", "相约", "有没有人一起", "一起结伴"})
#: Attempt cues that are also everyday phrases ("我走了", "再见"): they need another suicide cue.
_WEAK_ATTEMPT = frozenset({"已经吃了", "已经吞了", "在桥上", "去跳了", "我走了", "永别了", "再见了", "永别",
                           "来不及了", "药效", "发出去", "最后的话", "最后一条", "再见", "去死了", "要走了"})
#: Words of togetherness: next to a wish to die they are looking for company (SOS-1K's 6).
_TOGETHER = ("一起", "约", "陪我", "陪着我", "作伴", "同路", "结伴")
#: Company words that say leaving together, and the words of a call for others ("有人…吗", "私信"):
#: together they are a search for company even with no wish named ("一起走" alone is a walk).
_LEAVE_TOGETHER = frozenset({"一起走", "一起离开", "病友", "带我一起", "一起上路"})
_RECRUIT = ("有人", "有没有", "谁愿意", "愿意", "私信", "仅限", "报名", "征", "带上我", "带我", "有谁")
#: Saying one does not dare (不敢割腕) or still did not (却没有跳下去) says the method was weighed.
_WEIGHED = ("不敢", "没勇气", "没有勇气", "没胆", "却没有", "却没")
_NEAR_TIME = frozenset({"今天", "今晚", "今夜", "马上", "立刻", "立马", "现在就", "一会儿", "待会", "今早",
                        "明天", "明晚", "明早"})
#: A weak farewell that means going somewhere, not leaving: it counts only next to a place.
_GO = frozenset({"就去"})
#: Negative cues are the more frequent in comments; positive ones weigh a little more.
POSITIVE_BOOST = 1.2
_WEAK_TIME = frozenset({"号", "月", "岁", "晚上", "那天", "等到", "就能"})


@dataclass
class Analysis:
    """What the lexicon found in one comment: the scores and the cues behind them."""

    scores: dict[str, DimensionScore]
    cues: dict[str, list[str]]


def _live(hits: list[Hit]) -> list[Hit]:
    return [h for h in hits if not h.negated and h.category != "noise"]


def _conf(n_cues: int, base: float = 0.35) -> float:
    return round(min(0.9, base + 0.15 * n_cues), 3)


def _implicit(by: dict[str, list[Hit]], any_method: bool, plan: bool, timing: bool, near: bool) -> int:
    # ``plan``: any planning word is present ("就走", "写好"), not the stricter plan of grade_suicide.
    """The level of risk said indirectly: a farewell, a place, a stockpile (0 when none).

    - a strong farewell ("不用惦记我", "再见了这个世界") is a plan on its own: 6, with a near time 8;
    - weak farewells ("不回来了", "东西都送人") need company: two different ones, or one with a time
      and a planning word ("就走"): 6;
    - a place ("江边", "那座桥") with a weak farewell, a strong farewell or a strong planning word is
      a decided method with a plan: 7, with a near time 8;
    - a weak farewell with a method (even a weak one: "天台", "窗户"): 7;
    - a stockpile ("攒够", "挂好了", "封好了") with a method (even a weak one: "药", "绳子"): 7.
    Everyday context ("营业", "新公司", "回来", "医生" …) switches these rules off.
    """
    if "everyday" in by:
        return 0
    strong = {h.word for h in by.get("farewell", [])}
    weak = {h.word for h in by.get("farewell_weak", [])}
    leaving = weak - _GO
    places = by.get("place", [])
    plan_words = {h.word for h in by.get("plan", [])}
    strong_plan = bool(plan_words & _STRONG_PLAN) or bool(plan_words & {"就走"})
    level = 0
    if strong:
        level = 8 if near or (timing and plan) else 6
    if len(leaving) >= 2 or (leaving and timing and plan):
        level = max(level, 8 if near and plan else 6)
    if places and (weak or strong or strong_plan):
        level = max(level, 8 if near and (weak or strong) else 7)
    if leaving and any_method:
        level = max(level, 8 if near else 7)
    if "stockpile" in by and any_method:
        level = max(level, 7)
    return level


def grade_suicide(text: str, hits: list[Hit]) -> tuple[int, float, list[str]]:
    """The SOS-1K level suggested by the cues, with a heuristic confidence and the cues used."""
    mods = modifiers()
    live = _live(hits) + [h for h in hits if h.negated and h.category == "method"
                          and any(w in text[max(0, h.start - 4):h.start] for w in _WEIGHED)]
    by: dict[str, list[Hit]] = {}
    for h in live:
        by.setdefault(h.category, []).append(h)
    has = by.__contains__
    wish = has("wish") or has("wish_strong")
    strong_wish = has("wish_strong") or any(h.degree > 1 for h in by.get("wish", []))
    inquiry = has("method_inquiry")
    methods = [h for h in by.get("method", []) if h.word not in _WEAK_METHOD]
    weak_methods = [h for h in by.get("method", []) if h.word in _WEAK_METHOD]
    strong_company = any(h.word not in _WEAK_COMPANY for h in by.get("company", []))
    strong_attempt = any(h.word not in _WEAK_ATTEMPT for h in by.get("attempt_now", []))
    context = wish or inquiry or bool(methods) or has("attempt_past") or strong_company or strong_attempt
    company = (strong_company or (has("company") and (context or bool(weak_methods)))
               or ((wish or inquiry) and contains_any(text, _TOGETHER))
               or (any(h.word in _LEAVE_TOGETHER for h in by.get("company", [])) and contains_any(text, _RECRUIT)))
    suicidal = context or company
    method = bool(methods) or (bool(weak_methods) and suicidal) or inquiry
    plans = by.get("plan", [])
    self_plan = any(h.word in _SELF_PLAN for h in plans)
    plan = self_plan or (any(h.word in _STRONG_PLAN for h in plans) and (wish or method)) or (
        bool(plans) and method)
    self_attempt = any(h.word in _SELF_ATTEMPT for h in by.get("attempt_past", []))
    times = by.get("timing", [])
    near = any(h.word in _NEAR_TIME for h in times)
    dated = any(h.word not in _WEAK_TIME and h.word not in _NEAR_TIME for h in times)
    timing = near or any(h.word not in _WEAK_TIME for h in times) or (bool(times) and plan)

    level = _implicit(by, method or bool(weak_methods), bool(plans), timing, near)
    if strong_attempt or (has("attempt_now") and (suicidal or plan)):
        level = 10
    elif self_attempt or (has("attempt_past") and (method or wish)):
        level = 9
    elif method and near and (wish or plan or company):
        level = 9
    elif (plan and method and timing) or (plan and wish and near):
        level = 8
    elif method and (wish or plan or company or inquiry or has("attempt_past")):
        level = 7
    elif method and has("everyday") and not (wish or inquiry or company or has("attempt_past") or plans or level):
        level = 2  # a prescription, a hobby: 安眠药 that a doctor prescribed
    elif method:
        level = max(level, 6)
    elif company or self_plan or (plan and wish) or (wish and dated):
        level = 6
    elif strong_wish:
        level = 5
    elif wish:
        level = 4
    elif level:  # an implicit plan (farewell, place, stockpile) and nothing stronger
        pass
    elif has("existential"):
        level = 3
    elif has("suffering_strong"):
        level = 3 if len(by["suffering_strong"]) + len(by.get("suffering", [])) >= 3 else 2
    elif has("suffering"):
        level = 2 if len(by["suffering"]) >= 2 or any(h.degree > 1 for h in by["suffering"]) else 1
    else:
        level = 0

    # Someone else's suicide, the news, a hypothetical or a plea to live: not the writer's risk.
    first = contains_any(text, mods.first_person)
    other = contains_any(text, mods.third_person)
    if level >= 4 and contains_any(text, mods.discourage) and not has("attempt_now"):
        level = min(level, 3)
    elif level >= 4 and other and not first and not (company or inquiry or has("farewell")):
        level = min(level, 3)
    elif level >= 6 and contains_any(text, mods.hypothetical) and not first:
        level -= 2
    used = [h.word for h in live if h.category not in ("timing",) or level >= 8]
    return level, _conf(len(used)), used


def grade_sentiment(hits: list[Hit], suicide_level: int, mood_value: int) -> tuple[int, float, list[str]]:
    """Valence 0-10 around 5: negation flips a cue's sign at half strength; degree scales it."""
    s = 0.0
    used = []
    for h in hits:
        positive = h.category.startswith("positive")
        w = h.weight * h.degree
        if not h.negated:
            s += POSITIVE_BOOST * w if positive else -w
        elif positive:
            s -= 0.5 * w  # 不开心 is negative; 不难过 counts as nothing, not as joy

        used.append(("不" if h.negated else "") + h.word)
    if suicide_level >= 4:
        s -= 1.0 + 0.3 * (suicide_level - 4)
    elif mood_value >= 3:
        s -= 0.5
    # Many cues in a long comment should not all saturate at 0 or 10: damp by sqrt(count).
    value = int(round(5 + 5 * math.tanh(s / max(1.0, len(used)) ** 0.5 / 1.2)))
    return max(0, min(10, value)), _conf(len(used), 0.3), used


#: A single symptom family this light (a low mood, a bad night), said once, is a passing mood.
_PASSING_WEIGHT = 2.5


def grade_mood(hits: list[Hit], suicide_level: int) -> tuple[int, float, list[str]]:
    """Distinct symptom families add up; lasting symptoms and a wish to die add more.

    A passing low mood (one light family, nothing lasting), someone else's mood (a song, a drama, a
    novel, awareness of the illness: the ``fiction`` cues) and 抑郁 said loosely about a trifle
    (``loose``) score 2 at most, unless the suicide-risk cues say the writer is at risk."""
    live = _live(hits)
    fam: dict[str, float] = {}
    for h in live:
        fam[h.category] = max(fam.get(h.category, 0.0), h.weight * min(h.degree, 1.25))
    duration = max(fam.pop("duration", 0.0), fam.pop("duration_short", 0.0))
    fiction = fam.pop("fiction", None) is not None
    total = sum(fam.values())
    if fam and duration:
        total += duration if len(fam) >= 2 else 0.75 * duration
    if suicide_level >= 4:
        total += 3
    elif suicide_level >= 2 and len(fam) >= 2:
        total += 1
    value = max(0, min(10, int(round(total))))
    passing = len(fam) <= 1 and not duration and max(fam.values(), default=0.0) <= _PASSING_WEIGHT
    if suicide_level < 4 and (fiction or passing or ("loose" in fam and not duration)):
        value = min(value, 2)
    return value, _conf(len(live)), [h.word for h in live]


#: Substance cues that name a medicine: next to a suicide plan they are the method, not use.
_MEDICINE = frozenset({"安眠药", "安定", "镇静剂", "吃药"})
#: Quitting long ago (戒烟十年了) is no sign of use.
_QUIT_LONG_AGO = re.compile(r"戒[烟酒毒][^，,。.！!？?]{0,3}年")


def grade_substance(text: str, hits: list[Hit], suicide_level: int = 0) -> tuple[int, float, list[str]]:
    """The level of substance use: the strongest cue, a little more for several.

    Generic cues (上瘾, 大量) and the weight-0 contexts count only next to a named substance.
    Use next to coping or regularity is heavy use (6). A scene (a film, a toast) keeps the level
    at 2 and an advertisement at 1, unless heavy use or dependence is named; quitting long ago
    is 1; medicines next to a suicide plan are the suicide scale's, not this one's (1)."""
    live = _live(hits)
    named = [h for h in live if h.category in ("use", "heavy", "dependence")]
    if not named:
        return 0, _conf(0, 0.5), []
    cats = {h.category for h in live}
    counted = [h for h in live if h.weight > 0]
    value = int(min(10, max(h.weight for h in counted) + min(2, len({h.word for h in counted}) - 1)))
    strong = cats & {"heavy", "heavy_generic", "dependence", "dependence_generic"}
    if not strong and cats & {"coping", "often"}:
        value = max(value, 6)
    if not strong - {"dependence"} and _QUIT_LONG_AGO.search(text):
        value = 1
    elif "advert" in cats:
        value = min(value, 1)
    elif "scene" in cats and not strong:
        value = min(value, 2)
    elif suicide_level >= 6 and not strong and not cats & {"coping", "often"} \
            and all(h.word in _MEDICINE for h in named):
        value = min(value, 1)
    return value, _conf(len(counted)), [h.word for h in counted]


def grade_block(hits: list[Hit], block: str) -> tuple[int, float, list[str]]:
    live = [h for h in _live(hits) if h.category == block]
    if not live:
        return 0, 0.2, []
    value = int(min(10, max(h.weight for h in live) + len(live) - 1))
    return value, _conf(len(live), 0.2), [h.word for h in live]


def analyse(text: str, extended: bool = False) -> Analysis:
    """Score one text on the core dimensions (and the ICD-10 blocks when ``extended``)."""
    t = (text or "").lower()
    s_hits = matcher("suicide").find(t)
    level, s_conf, s_used = grade_suicide(t, s_hits)
    mood, m_conf, m_used = grade_mood(matcher("mood").find(t), level)
    subst, u_conf, u_used = grade_substance(t, matcher("substance").find(t), level)
    pos, p_conf, p_used = grade_sentiment(matcher("sentiment").find(t), level, mood)
    scores = {
        "positivity": DimensionScore(pos, p_conf),
        "mood_disorder": DimensionScore(mood, m_conf),
        "substance_use": DimensionScore(subst, u_conf),
        "suicide_risk": DimensionScore(level, s_conf),
    }
    cues = {"suicide_risk": s_used, "mood_disorder": m_used, "substance_use": u_used, "positivity": p_used}
    if extended:
        icd = matcher("icd10").find(t)
        for block in ICD10_BLOCKS:
            if block == "f10_f19":
                scores[block] = DimensionScore(subst, u_conf)
            elif block == "f30_f39":
                scores[block] = DimensionScore(mood, m_conf)
            else:
                v, c, used = grade_block(icd, block)
                scores[block] = DimensionScore(v, c)
                cues[block] = used
    return Analysis(scores, cues)


class LexiconBackend:
    """``lexicon:v3``: the default scorer of the worker (see module docstring)."""

    def __init__(self, dimensions: tuple[str, ...] = CORE_DIMENSIONS, max_chars: int = 512,
                 explain: bool = False) -> None:
        unknown = [d for d in dimensions if d not in EXTENDED_DIMENSIONS]
        if unknown:
            raise ValueError(f"lexicon backend cannot score {', '.join(unknown)}")
        self.name = f"lexicon:{VERSION}"
        self.dimensions = tuple(dimensions)
        self.max_chars = max_chars
        self.explain = explain
        self._extended = any(d not in CORE_DIMENSIONS for d in self.dimensions)
        for domain in ("suicide", "mood", "substance", "sentiment", "icd10"):
            matcher(domain)  # load and compile once, up front

    def sources(self) -> dict[str, str]:
        return {"*": "lexicon (hand-written cue lists in llm_worker/scoring/lexicons, untrained)"}

    @classmethod
    def from_config(cls, cfg, **overrides) -> LexiconBackend:
        from weibo_mh.rubric import dimensions_for

        dims = overrides.pop("dimensions", None) or dimensions_for(cfg.worker.rubric)
        max_chars = overrides.pop("max_chars", None) or cfg.worker.max_chars
        explain = bool(overrides.pop("explain", False))
        return cls(dimensions=tuple(dims), max_chars=max_chars, explain=explain)

    def score_one(self, item: ScoreInput) -> ScoreResult:
        text = item.text if isinstance(item.text, str) else ""
        truncated = self.max_chars > 0 and len(text) > self.max_chars
        if truncated:
            text = text[: self.max_chars]
        a = analyse(text, extended=self._extended)
        scores = {d: a.scores[d] for d in self.dimensions}
        if self.explain:
            for d, s in scores.items():
                used = a.cues.get(d) or []
                s.rationale = ("cues: " + "、".join(used[:8])) if used else "no cue found"
        return ScoreResult(scores=scores, truncated=truncated)

    def score_batch(self, items: list[ScoreInput]) -> list[ScoreResult]:
        out = []
        for item in items:
            try:
                out.append(self.score_one(item))
            except Exception as e:  # noqa: BLE001 - one bad item must not sink the batch
                out.append(ScoreResult(error=f"lexicon: {type(e).__name__}: {e}"))
        return out

    def close(self) -> None:
        pass
