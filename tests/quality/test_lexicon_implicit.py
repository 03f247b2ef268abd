"""The lexicon on implicit risk: the project's own implicit and look-alike sentences (written first).

tests/quality/data/implicit_risk.tsv was committed before the cue lists were widened (df2119b);
lexicon:v1 then read 5 of its 36 implicit sentences as high risk and 31 of its 32 look-alikes as low.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llm_worker.scoring.backends.lexicon import analyse
from weibo_mh.rubric import HIGH_RISK_LEVEL

DATA = Path(__file__).parent / "data" / "implicit_risk.tsv"
ROWS = [line.split("\t") for line in DATA.read_text(encoding="utf-8").splitlines()
        if line and not line.startswith("#")][1:]
#: Still missed, and why: "等他们睡着" has a third person and no first person, and the rule that
#: reads such a text as someone else's wins (it keeps the news and reports low).
KNOWN_MISSES = {"刀片藏在枕头下面，等他们睡着"}


def test_the_set_is_what_the_issue_asks_for():
    assert len(ROWS) >= 60
    assert {k for _, _, k in ROWS} == {"implicit", "lookalike"}
    assert all(e == ("high" if k == "implicit" else "low") for _, e, k in ROWS)


@pytest.mark.parametrize("text", [t for t, _, k in ROWS if k == "lookalike"])
def test_look_alikes_stay_low(text):
    assert analyse(text).scores["suicide_risk"].value < HIGH_RISK_LEVEL, analyse(text).cues["suicide_risk"]


@pytest.mark.parametrize("text", [
    pytest.param(t, marks=pytest.mark.xfail(strict=True, reason="third person, no first person"))
    if t in KNOWN_MISSES else t for t, _, k in ROWS if k == "implicit"])
def test_implicit_risk_is_high(text):
    assert analyse(text).scores["suicide_risk"].value >= HIGH_RISK_LEVEL, analyse(text).cues["suicide_risk"]


def test_everyday_context_switches_off_only_the_implicit_rules():
    assert analyse("周末去河边钓鱼").scores["suicide_risk"].value < HIGH_RISK_LEVEL
    # An explicit attempt stays an attempt among everyday words.
    assert analyse("我已经吃了一瓶安眠药，永别了，医生救不了我").scores["suicide_risk"].value >= 9
