"""The openai backend against a real llama.cpp server: llama-cpp-python 0.3.36's
``python -m llama_cpp.server`` serving a tiny GGUF the tests write (tests/worker_llm/tiny_gguf.py).

The model's weights are random except for two planted habits: after "：" it says "1", after
"1" it says "0". So the right likelihood answer after "分数：" is 10, which Qwen-style
tokenizers spell in two tokens; a scorer reading one token says 1.
"""

from __future__ import annotations

import logging
import math

import pytest

from llm_worker.scoring.backends.base import PermanentBackendError, ScoreInput
from llm_worker.scoring.backends.openai_answers import level_from_top_logprobs
from llm_worker.scoring.backends.openai_compat import OpenAIBackend
from tests.worker_llm.llama_server import ALIAS
from weibo_mh.rubric import CORE_DIMENSIONS

ITEMS = [ScoreInput("话题", "今天又失眠了，好累。"), ScoreInput("话题", "谢谢大家，开心的一天！")]


def backend(srv, **kw) -> OpenAIBackend:
    kw.setdefault("model", "")
    return OpenAIBackend(srv.base_url, concurrency=1, backoff=0.01, max_retries=1, **kw)


def test_the_model_is_asked_for_and_named(llama_server):
    b = backend(llama_server)
    b.prepare()
    assert b.model == ALIAS and b.name == f"openai:{ALIAS}:json"
    assert backend(llama_server, model=ALIAS, method="likelihood", chat_template=str(llama_server.model)).name \
        == f"openai:{ALIAS}:likelihood"


def test_a_model_the_server_does_not_serve_stops_with_one_clear_line(llama_server):
    b = backend(llama_server, model="THUDM/glm-4-9b-chat-hf")
    with pytest.raises(PermanentBackendError) as e:
        b.prepare()
    msg = str(e.value)
    assert "\n" not in msg and "'THUDM/glm-4-9b-chat-hf'" in msg and f"'{ALIAS}'" in msg and "openai.model" in msg


def test_json_mode_finds_the_guide_llama_cpp_honours_and_says_so_once(llama_server, caplog):
    b = backend(llama_server)
    with caplog.at_level(logging.INFO):
        b.prepare()
        results = b.score_batch(ITEMS)
    text = caplog.text
    # structured_outputs and guided_json are ignored with HTTP 200: never claimed to be in force
    assert "in force: json_object" in text
    assert "in force: structured_outputs" not in text and "in force: guided_json" not in text
    assert "accepts" not in text
    # response_format json_schema is answered with HTTP 500 naming the field: dropped, body logged once
    assert text.count("Input should be 'text' or 'json_object'") == 1
    assert b.guides[0] == "json_object"
    for r in results:
        assert r.ok, r.error
        assert set(r.scores) == set(CORE_DIMENSIONS)
        # top_logprobs is sent, so llama-cpp-python returns logprobs and confidences exist
        assert all(0 < s.confidence <= 1 for s in r.scores.values())


def test_likelihood_scores_a_two_token_level_as_a_token_sequence(llama_server):
    b = backend(llama_server, method="likelihood", chat_template=str(llama_server.model))
    b.prepare()
    assert b.route == "completions" and b.spelling[10] == ("1", "0") and b.spelling[1] == ("1",)
    [r] = b.score_batch(ITEMS[:1])
    assert r.ok, r.error
    for s in r.scores.values():
        assert s.value == 10 and s.confidence > 0.9 and s.answer_mass > 0.9
    # reading only the first answer token, as before, would have said 1
    root, _ = b._next_tokens(ITEMS[0], "substance_use", "")
    first_only = level_from_top_logprobs("", [{"top_logprobs": [
        {"token": t, "logprob": math.log(p)} for t, p in root]}])
    assert first_only.value == 1


def test_likelihood_without_a_way_to_prefill_is_refused_with_one_clear_line(llama_server):
    b = backend(llama_server, method="likelihood")
    with pytest.raises(PermanentBackendError) as e:
        b.prepare()
    msg = str(e.value)
    assert "\n" not in msg
    assert llama_server.base_url in msg and "continue_final_message" in msg
    assert 'openai.method = "json"' in msg and "openai.chat_template" in msg


def test_a_chat_template_that_is_not_the_servers_is_refused(llama_server, tmp_path):
    other = tmp_path / "other.jinja"
    other.write_text("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                     "{% endfor %}<|im_start|>assistant\n分析：", encoding="utf-8")
    b = backend(llama_server, method="likelihood", chat_template=str(other))
    with pytest.raises(PermanentBackendError, match="does not render the prompt the server renders"):
        b.prepare()


def test_llama_cpp_and_the_transformers_backend_agree_on_the_same_model(llama_server, tmp_path):
    """The issue's first finding, inverted: the same weights through the transformers backend and
    through llama.cpp's server give the same levels, confidences and answer masses."""
    from llm_worker.scoring.backends.hf import TransformersBackend
    from tests.worker_llm.tiny_gguf import to_transformers

    hf = TransformersBackend(str(to_transformers(llama_server.model, tmp_path / "hf")), device="cpu",
                             local_files_only=True)
    assert not hf.single_token_values  # "10" is two tokens here too
    ll = backend(llama_server, method="likelihood", chat_template=str(llama_server.model))
    ll.prepare()
    for a, b in zip(hf.score_batch(ITEMS), ll.score_batch(ITEMS), strict=True):
        assert a.ok and b.ok, (a.error, b.error)
        for d in CORE_DIMENSIONS:
            x, y = a.scores[d], b.scores[d]
            assert x.value == y.value == 10
            assert math.isclose(x.confidence, y.confidence, abs_tol=1e-3)
            assert math.isclose(x.answer_mass, y.answer_mass, abs_tol=1e-3)
    hf.close()
