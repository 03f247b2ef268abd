"""The four scales of ../shared/SCALES.md (rubric 2026-11-a), in Chinese and English, for annotators.

The English follows SCALES.md; the Chinese is this project's translation of it. Levels
without their own description lie between the anchors around them.
"""

from __future__ import annotations

from dataclasses import dataclass

from weibo_mh.rubric import CORE_DIMENSIONS, RUBRIC_VERSION


@dataclass(frozen=True)
class Scale:
    dimension: str
    zh: str
    en: str
    question_zh: str
    question_en: str
    #: level -> (Chinese, English)
    levels: dict[int, tuple[str, str]]


SCALES: dict[str, Scale] = {
    "positivity": Scale(
        "positivity", "情绪正负", "Positivity",
        "评论整体的情绪效价（不是话题的）。", "The overall emotional valence of the comment, not of the topic.",
        {0: ("非常负面（绝望、愤怒、悲痛）", "very negative (despair, rage, grief)"),
         5: ("中性或混合", "neutral or mixed"),
         10: ("非常正面（喜悦、感激、爱）", "very positive (joy, gratitude, love)")}),
    "mood_disorder": Scale(
        "mood_disorder", "心境障碍迹象", "Mood disorder",
        "文本中符合心境（情感）障碍（ICD-10 F30–F39）的迹象有多强：持续低落、快感缺失、无望、"
        "无价值感或内疚；睡眠或食欲紊乱、疲乏；躁狂性高涨。",
        "How strongly the text shows signs that fit mood (affective) disorders, ICD-10 F30–F39: "
        "persistent low mood, anhedonia, hopelessness, worthlessness or guilt; sleep or appetite "
        "disturbance, fatigue; manic elevation.",
        {0: ("没有", "none"),
         3: ("一时的情绪低落", "a passing low mood"),
         6: ("描述了多种持续的症状", "several symptoms described as lasting"),
         10: ("严重、明确、持续的发作", "a severe, explicit, lasting episode")}),
    "substance_use": Scale(
        "substance_use", "物质使用", "Substance use",
        "文本中精神活性物质的使用或其危害（ICD-10 F10–F19）有多强：酒精、阿片类、大麻、镇静催眠药"
        "（包括超出医嘱服用安眠药）、可卡因、其他兴奋剂、致幻剂、烟草和溶剂。",
        "How strongly the text shows use of psychoactive substances, or harm from them, ICD-10 "
        "F10–F19: alcohol, opioids, cannabis, sedatives or hypnotics (including sleeping pills "
        "taken beyond prescription), cocaine, other stimulants, hallucinogens, tobacco, solvents.",
        {0: ("没有", "none"),
         3: ("随口提到自己在用", "casual mention of one's own use"),
         6: ("大量或经常使用，或用来应对", "heavy or regular use, or use for coping"),
         10: ("描述了依赖、过量或戒断", "dependence, overdose or withdrawal described")}),
    "suicide_risk": Scale(
        "suicide_risk", "自杀风险", "Suicide risk",
        "SOS-1K 分级：求死愿望有多强、是否提到方法、时间有多紧迫。6 级及以上为高风险。",
        "The SOS-1K scale: how strongly a wish to die is expressed, whether a method is named, "
        "how urgent the timing is. Level 6 and above is high risk.",
        {0: ("没有对活着的痛苦的表达：至多是日常的负面情绪",
             "No expression of suffering about being alive: everyday negative feelings at most"),
         1: ("轻度表达活着的痛苦，没有求死愿望", "Mild expressions of suffering about being alive, no wish to die"),
         2: ("中度痛苦，没有求死愿望", "Moderate suffering, no wish to die"),
         3: ("强烈痛苦，没有求死愿望", "Strong suffering, no wish to die"),
         4: ("表达了求死愿望，没有方法也没有计划", "A wish to die is expressed, with no method and no plan"),
         5: ("强烈的求死愿望；方法不明或未提及", "A strong wish to die; the method is unknown or not mentioned"),
         6: ("正在计划自杀；日期未知", "Suicide is being planned; no date is known"),
         7: ("方法已定；日期未定", "The method is decided; the date is not"),
         8: ("有计划，日期大致确定", "A plan exists, and the date is roughly set"),
         9: ("方法已定，可能几天内行动", "The method is decided, and acting is likely within days"),
         10: ("可能正在实施", "An attempt may be under way now")}),
}

ORDER: tuple[str, ...] = CORE_DIMENSIONS
VERSION = RUBRIC_VERSION

CAUTION_EN = ("These are research signals about text, not diagnoses of people. A high score means the "
              "words of a comment resemble the scale's description, not that its author is at risk (or "
              "safe). Follow your team's protocol and pass on crisis resources.")
CAUTION_ZH = "这些是关于文本的研究信号，不是对人的诊断。请遵循团队的规程，并转达危机干预资源。"
