"""The openai backend's start-up checks and likelihood arithmetic, on the fake server (fault injection)."""

from __future__ import annotations

import logging
import math

import pytest

from llm_worker.scoring.backends.base import PermanentBackendError, ScoreInput
from llm_worker.scoring.backends.openai_compat import InvalidAnswer, OpenAIBackend, level_scores
from weibo_mh.rubric import LEVELS

ONE_TOKEN = {v: (str(v),) for v in LEVELS}
SPLIT_TEN = {**ONE_TOKEN, 10: ("1", "0")}


def backend(srv, **kw) -> OpenAIBackend:
    kw.setdefault("model", "fake-glm")
    return OpenAIBackend(srv.base_url, concurrency=1, backoff=0.01, max_retries=0, **kw)


def test_ten_is_the_first_token_one_followed_by_zero():
    root = [("1", 0.8), ("7", 0.1), ("分", 0.1)]
    after = {"1": [("0", 0.75), ("\n", 0.2), ("2", 0.05)]}
    s = level_scores(root, after, SPLIT_TEN)
    assert s.value == 10
    mass = {10: 0.8 * 0.75, 1: 0.8 * (1 - 0.75 - 0.05), 7: 0.1}
    assert math.isclose(s.answer_mass, sum(mass.values()))
    assert math.isclose(s.confidence, mass[10] / sum(mass.values()))
    # with one-token levels the same numbers read 1
    assert level_scores(root, {}, ONE_TOKEN).value == 1
    with pytest.raises(InvalidAnswer):
        level_scores([("分", 1.0)], {"1": []}, SPLIT_TEN)


def test_json_mode_sends_top_logprobs(fake_openai):
    b = backend(fake_openai)
    b.score_batch([ScoreInput("t", "今天很好")])
    body = fake_openai.requests[-1]
    assert body["logprobs"] is True and body["top_logprobs"] == 1


def test_a_5xx_naming_a_guide_drops_it_and_logs_the_body_once(fake_openai, caplog):
    fake_openai.guides = {"guided_json"}
    fake_openai.unguided = "garbage"
    # as llama-cpp-python answers a field it cannot parse: HTTP 500 with a body naming it
    fake_openai.field_errors = {"structured_outputs": (500, "Extra inputs are not permitted: structured_outputs")}
    b = backend(fake_openai)
    with caplog.at_level(logging.INFO):
        b.prepare()
    assert caplog.text.count("Extra inputs are not permitted: structured_outputs") == 1
    assert "in force: guided_json" in caplog.text
    assert "in force: response_format" not in caplog.text and "in force: json_object" not in caplog.text


def test_a_server_ignoring_every_guide_is_never_said_to_guide(fake_openai, caplog):
    fake_openai.guides = set()
    b = backend(fake_openai)
    with caplog.at_level(logging.INFO):
        b.prepare()
    assert "guided output in force: none" in caplog.text and b.guides == []


def test_likelihood_checks_that_continue_final_message_is_honoured(fake_openai):
    fake_openai.tokenize = True
    b = backend(fake_openai, method="likelihood")
    b.prepare()
    assert b.route == "chat" and b.value_token_ids == tuple(range(1000, 1011))
    assert b.score_batch([ScoreInput("t", "今天很好")])[0].ok
    fake_openai.continue_final = False  # as llama-cpp-python: the field is ignored with HTTP 200
    with pytest.raises(PermanentBackendError, match="ignores continue_final_message"):
        backend(fake_openai, method="likelihood").prepare()


def test_likelihood_without_a_tokenizer_endpoint_is_refused(fake_openai):
    with pytest.raises(PermanentBackendError) as e:
        backend(fake_openai, method="likelihood").prepare()
    assert "tokenizer endpoint" in str(e.value) and 'openai.method = "json"' in str(e.value)


def test_the_only_model_is_taken_when_none_is_configured(fake_openai):
    fake_openai.models = {"glm-4-9b-0414"}
    b = backend(fake_openai, model="")
    b.prepare()
    assert b.name == "openai:glm-4-9b-0414:json"
    fake_openai.models = {"a", "b"}
    with pytest.raises(PermanentBackendError, match="set openai.model to one of them"):
        backend(fake_openai, model="").prepare()
