"""The scoring rubric: dimensions, their scales and the version stored with every score.

The scales themselves are defined in ../shared/SCALES.md; RUBRIC_VERSION names that
text's version, so that scores made under a different rubric are never mixed up.
"""

from __future__ import annotations

RUBRIC_VERSION = "2026-11-a"

#: The four core dimensions, every one an integer 0–10.
CORE_DIMENSIONS: tuple[str, ...] = ("positivity", "mood_disorder", "substance_use", "suicide_risk")

#: The seed system's ICD-10 chapter-F blocks (optional extended rubric).
ICD10_BLOCKS: dict[str, str] = {
    "f00_f09": "器质性（包括症状性）精神障碍",
    "f10_f19": "使用精神活性物质所致的精神和行为障碍",
    "f20_f29": "精神分裂症、分裂型障碍和妄想性障碍",
    "f30_f39": "心境（情感）障碍",
    "f40_f48": "神经症性、应激相关的及躯体形式障碍",
    "f50_f59": "伴有生理紊乱及躯体因素的行为综合征",
    "f60_f69": "成人人格与行为障碍",
    "f70_f79": "精神发育迟滞",
    "f80_f89": "心理发育障碍",
    "f90_f98": "通常起病于童年与少年期的行为与情绪障碍",
}

EXTENDED_DIMENSIONS: tuple[str, ...] = CORE_DIMENSIONS + tuple(ICD10_BLOCKS)

#: The dimension alerts, risk_scores and the agreement charts are about.
SUICIDE_RISK = "suicide_risk"

#: From ../shared/SCALES.md ("A caution that belongs in the product"): under every alert table
#: and in every notification's footer.
CAUTION = ("These are research signals about text, not diagnoses of people. A high score means "
           "the words of a comment resemble the scale's description, not that its author is at risk "
           "(or safe). Anyone shown these comments should follow their team's protocol and pass on "
           "crisis resources.")

#: High risk on the SOS-1K binary task: level >= 6.
HIGH_RISK_LEVEL = 6
LEVELS = tuple(range(11))


def dimensions_for(rubric: str) -> tuple[str, ...]:
    if rubric == "core":
        return CORE_DIMENSIONS
    if rubric == "extended":
        return EXTENDED_DIMENSIONS
    raise ValueError(f"unknown rubric {rubric!r} (core or extended)")
