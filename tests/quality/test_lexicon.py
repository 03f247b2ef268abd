"""The lexicon backend on sentences written for these tests: each cue family, negation,
degree, odd inputs, and determinism. Levels follow the SOS-1K scale in SCALES.md."""

from __future__ import annotations

import pytest

from llm_worker.scoring.backends.base import Backend, ScoreInput, validate_result
from llm_worker.scoring.backends.lexicon import LexiconBackend, analyse
from weibo_mh.config import load_config
from weibo_mh.rubric import CORE_DIMENSIONS, EXTENDED_DIMENSIONS, HIGH_RISK_LEVEL


def level(text: str) -> int:
    return analyse(text).scores["suicide_risk"].value


def score(text: str, dim: str) -> int:
    return analyse(text).scores[dim].value


# --- suicide risk -------------------------------------------------------------------------

def test_an_everyday_sentence_has_no_risk():
    assert level("今天的晚饭是番茄炒蛋，味道还行") == 0


def test_suffering_without_a_wish_to_die_is_low():
    assert 1 <= level("最近好累，工作压得我喘不过气") <= 3


def test_a_wish_to_die_is_four_or_five():
    assert level("我想死") in (4, 5)
    assert level("我真的好想死，每天都想死") == 5


def test_negation_removes_the_wish():
    assert level("我现在不想死了，想好好过日子") < 4


def test_idioms_with_death_are_not_suicide_cues():
    assert level("这个段子笑死我了") == 0
    assert level("今天热死了，空调坏了") == 0


def test_a_named_method_is_high_risk():
    assert level("我想去跳楼") >= HIGH_RISK_LEVEL


def test_looking_for_company_counts_as_planning():
    assert level("有没有人一起死，我们约个时间") >= HIGH_RISK_LEVEL


def test_method_and_a_near_date_is_nine():
    assert level("我已经决定了，今晚就去烧炭") >= 8


def test_an_attempt_under_way_is_ten():
    assert level("我已经吃了一瓶安眠药，永别了") == 10


def test_a_suicide_letter_alone_is_planning():
    assert level("我的遗书已经写好了") >= HIGH_RISK_LEVEL


def test_someone_elses_suicide_in_the_news_is_not_the_writers_risk():
    assert level("新闻说有个男生跳楼了，太可惜了") < HIGH_RISK_LEVEL


def test_a_plea_to_live_is_not_high_risk():
    assert level("千万不要自杀，好好活着，大家都爱你") < 4


# --- positivity ---------------------------------------------------------------------------

def test_positive_and_negative_texts_fall_on_either_side_of_neutral():
    assert score("今天真开心，谢谢大家的祝福[哈哈]", "positivity") > 5
    assert score("好难过，又被骂了，委屈[泪]", "positivity") < 5
    assert score("明天下午三点开会", "positivity") == 5


def test_negated_joy_is_negative():
    assert score("我不开心", "positivity") < 5


def test_degree_words_strengthen_and_soften():
    strong = score("我非常难过", "positivity")
    weak = score("我有点难过", "positivity")
    assert strong < weak < 5


# --- mood and substance -------------------------------------------------------------------

def test_a_passing_low_mood_scores_lower_than_lasting_symptoms():
    passing = score("今天有点郁闷", "mood_disorder")
    lasting = score("半年了一直失眠，吃不下饭，对什么都提不起兴趣，觉得自己没用", "mood_disorder")
    assert 0 < passing < lasting
    assert lasting >= 6


def test_no_mood_signs_score_zero():
    assert score("周末去公园放风筝", "mood_disorder") == 0


def test_substance_use_levels():
    assert score("周末和朋友喝了点啤酒", "substance_use") in (3, 4, 5)
    assert score("每天都借酒消愁，喝到断片", "substance_use") >= 6
    assert score("戒不掉了，一天不喝手就抖，已经上瘾", "substance_use") == 10
    assert score("我从来不喝酒", "substance_use") == 0


# --- the backend interface ----------------------------------------------------------------

@pytest.fixture
def backend() -> LexiconBackend:
    return LexiconBackend()


def test_backend_follows_the_protocol(backend):
    assert isinstance(backend, Backend)
    assert backend.name == "lexicon:v3"
    assert backend.dimensions == CORE_DIMENSIONS


@pytest.mark.parametrize("text", ["", "   ", "😂😂😂", "[哈哈][哈哈]", "？？？", "\x00\x01", "a" * 3])
def test_odd_texts_are_scored_not_crashed_on(backend, text):
    (result,) = backend.score_batch([ScoreInput("话题", text)])
    assert result.ok and validate_result(result, CORE_DIMENSIONS) is result


def test_a_very_long_text_is_truncated_and_says_so(backend):
    (result,) = backend.score_batch([ScoreInput("话题", "我今天很开心。" * 2000)])
    assert result.ok and result.truncated
    assert result.scores["positivity"].value > 5


def test_a_bad_item_does_not_sink_the_batch(backend):
    results = backend.score_batch([ScoreInput("t", "我想死"), ScoreInput("t", None),
                                   ScoreInput("t", "开心")])
    assert [r.ok for r in results] == [True, True, True]


def test_scores_are_deterministic(backend):
    items = [ScoreInput("话题", t) for t in ("我想死", "好开心", "喝醉了", "失眠一个月了")]
    first = [{d: s.value for d, s in r.scores.items()} for r in backend.score_batch(items)]
    second = [{d: s.value for d, s in r.scores.items()} for r in LexiconBackend().score_batch(items)]
    assert first == second


def test_every_score_has_a_confidence_between_zero_and_one(backend):
    (result,) = backend.score_batch([ScoreInput("话题", "我好想死，已经失眠半年")])
    for s in result.scores.values():
        assert 0.0 <= s.confidence <= 1.0


def test_extended_rubric_scores_every_icd10_block():
    b = LexiconBackend(dimensions=EXTENDED_DIMENSIONS)
    (result,) = b.score_batch([ScoreInput("话题", "最近总是幻听，还有严重的焦虑，天天喝酒")])
    assert validate_result(result, EXTENDED_DIMENSIONS) is result
    assert result.scores["f20_f29"].value > 0
    assert result.scores["f40_f48"].value > 0
    assert result.scores["f10_f19"].value == result.scores["substance_use"].value
    assert result.scores["f70_f79"].value == 0


def test_explain_names_the_cues():
    b = LexiconBackend(explain=True)
    (result,) = b.score_batch([ScoreInput("话题", "我想去跳楼")])
    assert "跳楼" in result.scores["suicide_risk"].rationale


def test_from_config_reads_the_rubric_and_the_budget():
    cfg = load_config()
    b = LexiconBackend.from_config(cfg, dimensions=EXTENDED_DIMENSIONS, model="ignored")
    assert b.dimensions == EXTENDED_DIMENSIONS
    assert b.max_chars == cfg.worker.max_chars


def test_the_registry_builds_it():
    from llm_worker.scoring.backends import make_backend

    b = make_backend("lexicon", load_config())
    assert b.name == "lexicon:v3"


@pytest.mark.parametrize("text", [
    "周末去爬山，一起吗", "去药店买药", "天台的风景很好", "我决定明天去旅游", "考试要死了",
    "病友们大家好", "我今天就要走了，回老家", "死亡笔记真好看", "割草机坏了", "这部剧太虐了，哭死",
])
def test_everyday_sentences_with_risky_words_are_not_high_risk(text):
    assert level(text) < HIGH_RISK_LEVEL


def test_ambiguous_farewells_count_next_to_a_wish():
    assert level("再见了，我想死") == 10
    assert level("再见了，明天见") < 4


@pytest.mark.parametrize("text", [
    "我想死，有人约吗",             # a wish next to a word of togetherness: looking for company
    "有谁愿意带我一起走",           # leaving together, with a call for others
    "等还完钱我就想死",             # a wish tied to a deadline
    "听说烧炭不会痛",               # hearsay about a method is how a method is researched
    "不敢割腕，怕被骂",             # not daring still says the method was weighed
    "有没有快一点的死法",           # 有没有 asks; it does not negate
])
def test_company_deadlines_and_weighed_methods_are_high_risk(text):
    assert level(text) >= HIGH_RISK_LEVEL


@pytest.mark.parametrize("text", [
    "有人一起走走吗，去公园散步", "有没有人一起吃火锅", "明天一起走吗，去上班",
    "我没有跳楼，只是去楼顶看风景", "我不想死，我们一起加油",
])
def test_everyday_togetherness_and_denials_stay_low(text):
    assert level(text) < HIGH_RISK_LEVEL
