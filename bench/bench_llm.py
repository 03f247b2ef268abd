"""LLM scoring cost with the tiny random GLM-4, measured side by side in one run.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_llm.py [--comments 64] [--rounds 3] [--model DIR]

Compares, on the same comments and the same model:
1. likelihood scoring (the transformers backend: prefix once, one short pass per
   dimension) against free JSON generation of all dimensions (what a generative
   scorer must do: prefill, then one decode step per output token);
2. likelihood scoring with the shared prefix against re-running the full prompt
   for every dimension (what prefix sharing saves);
3. batch 1 against batch 16.
Reports forward passes and milliseconds per comment, and the ratios. The
model is random, so only costs are meaningful. It also prints the prompt sizes
used for the on-paper GLM-4-9B / H100 estimate in BENCHMARKS.md.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_llm.py --answer-mass [--comments 64]

instead prints the distribution of the answer mass (the probability the model puts
on "0".."10" together after "分数：") of the tiny models in both GLM-4 prompt
formats, and the share below worker.answer_mass_floor: it shows the stored field
working, and says nothing about quality (the weights are random). No timings.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/bench_llm.py --split-values [--comments 64] [--rounds 3]

instead measures, on the tiny model whose tokenizer spells "10" in two tokens (as Qwen's
does), each dimension's question run once with one short pass over "1" on its cache
against the question run again with each of the eleven values and the end-of-turn token
(the transformers backend before issue 25), side by side in one run.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Short comments written for this benchmark (no dataset rows), cycled with variations.
SENTENCES = [
    "今天终于把论文交上去了，开心！", "最近总是失眠，白天也没精神。", "这个话题好无聊，不想看了。",
    "谢谢救援队，大家都平安就好。", "喝了点酒才睡着，明天还要上班。", "感觉一切都没有意义，好累。",
    "哈哈哈笑死我了", "支持！希望越来越好。", "为什么总是我遇到这种事，烦死了。",
    "周末和朋友去爬山，风景很美。", "已经连续一个月心情低落，什么都不想做。", "😂😂😂",
]
#: A typical answer of a JSON scorer; GLM-4's tokenizer needs about 30 tokens for it.
JSON_ANSWER_TOKENS = 30


def comments(n: int):
    from llm_worker.scoring.backends.base import ScoreInput

    return [ScoreInput(f"热搜话题{i % 7}", SENTENCES[i % len(SENTENCES)] + ("，" + SENTENCES[(i * 5) % len(SENTENCES)]) * (i % 3))
            for i in range(n)]


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def run_likelihood(b, items, batch: int) -> None:
    for i in range(0, len(items), batch):
        b.score_batch(items[i:i + batch])


def run_no_sharing(b, items, batch: int) -> None:
    """Every dimension's full prompt run from scratch (no prefix cache)."""
    import torch

    from llm_worker.scoring import prompt

    value_ids = torch.tensor([ids[0] for ids in b._value_ids])
    with torch.inference_mode():
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            for dim in b.dimensions:
                seqs = [b.tokenizer.encode(b._render(prompt.likelihood_messages(it.topic, it.text, dim, b.dimensions))
                                           + prompt.ANSWER_PREFIX, add_special_tokens=False) for it in chunk]
                b.tokens_in += sum(map(len, seqs))
                ids, mask = b._left_pad(seqs)
                pos = (mask.cumsum(-1) - 1).clamp(min=0)
                b.forward_passes += 1
                logits = b.model(input_ids=ids, attention_mask=mask, position_ids=pos, logits_to_keep=1).logits
                torch.softmax(logits[:, -1, value_ids], dim=-1).max(dim=-1)


def run_json_generation(b, items, batch: int) -> None:
    """Greedy generation of a JSON answer of JSON_ANSWER_TOKENS tokens (forced length: the model is random)."""
    import torch

    from llm_worker.scoring import prompt

    with torch.inference_mode():
        for i in range(0, len(items), batch):
            chunk = items[i:i + batch]
            # the system prompt's KV cache is reused here too, as vLLM's prefix cache would
            rests = [b.after_head(prompt.json_messages(it.topic, it.text, b.dimensions)) for it in chunk]
            b.tokens_in += sum(map(len, rests))
            b.generate_after_head(rests, JSON_ANSWER_TOKENS, JSON_ANSWER_TOKENS)
            b.tokens_in += JSON_ANSWER_TOKENS * len(chunk)


def bench_openai_client(n: int) -> dict[int, float]:
    """Comments/s of the openai backend against the fake server (no model time): the client's ceiling."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from llm_worker.scoring.backends.openai_compat import OpenAIBackend
    from tests.worker_llm.fake_openai import FakeOpenAI

    srv = FakeOpenAI()
    url = srv.start()
    items = comments(n)
    out: dict[int, float] = {}
    try:
        for conc in (1, 8):
            b = OpenAIBackend(url, "fake", concurrency=conc, backoff=0.01)
            b.score_batch(items[:8])  # warm-up: connections
            t = timed(lambda b=b: b.score_batch(items))
            out[conc] = n / t
            b.close()
    finally:
        srv.stop()
    return out


def answer_mass_report(n: int) -> None:
    """Quantiles of the answer mass of the tiny random models (both formats), per dimension and overall."""
    import statistics

    from llm_worker.scoring.backends.hf import TransformersBackend
    from llm_worker.scoring.tiny_model import build_tiny_glm
    from weibo_mh.config import load_config

    floor = load_config().worker.answer_mass_floor
    items = comments(n)
    print(f"# bench_llm --answer-mass: {n} comments x 4 dimensions per model; random weights, so the "
          f"figures show that the field works and mean nothing about quality")
    print(f"| model (prompt format) | vocabulary | min | 10 % | median | 90 % | max | below the floor {floor:g} |")
    print("|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, label in (("glm4", "Glm4ForCausalLM (GLM-4-0414)"), ("glm", "GlmForCausalLM (glm-4-9b-chat-hf)")):
            b = TransformersBackend(str(build_tiny_glm(Path(tmp) / arch, arch=arch)), device="cpu",
                                    local_files_only=True, answer_mass_floor=floor)
            masses = [m for i in range(0, n, 16) for row in b.answer_masses(items[i:i + 16]) for m in row.values()]
            q = statistics.quantiles(masses, n=10)
            below = sum(m < floor for m in masses) / len(masses)
            print(f"| {label} | {len(b.tokenizer)} BPE | {min(masses):.4f} | {q[0]:.4f} | "
                  f"{statistics.median(masses):.4f} | {q[-1]:.4f} | {max(masses):.4f} | {100 * below:.0f} % |")
            b.close()


def split_values_report(n: int, rounds: int) -> None:
    """Question once + values on its cache vs the question again per value (two-token "10")."""
    from llm_worker.scoring.backends.hf import TransformersBackend
    from llm_worker.scoring.tiny_model import build_tiny_glm

    items = comments(n)
    with tempfile.TemporaryDirectory() as tmp:
        b = TransformersBackend(str(build_tiny_glm(Path(tmp) / "split", arch="glm", split_ten=True)),
                                device="cpu", local_files_only=True)
        assert not b.single_token_values
        cases = {"question once, then one short pass over \"1\"": True,
                 "question again with every value (before)": False}
        run_likelihood(b, items[:16], 16)  # warm-up
        best: dict[str, float] = {}
        passes: dict[str, int] = {}
        tokens: dict[str, int] = {}
        for r in range(rounds):
            for name, share in cases.items():  # interleaved, so machine load hits both alike
                b.share_suffix = share
                b.forward_passes = b.tokens_in = 0
                t = timed(lambda: run_likelihood(b, items, 16))
                passes[name], tokens[name] = b.forward_passes, b.tokens_in
                best[name] = min(best.get(name, t), t)
            print(f"round {r + 1}/{rounds} done", file=sys.stderr)
        import torch

        print(f"# bench_llm --split-values: tiny random GlmForCausalLM, character-level tokenizer (\"10\" is "
              f"two tokens), {n} comments, {len(b.dimensions)} dimensions, batch 16, best of {rounds} rounds")
        print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
              f"{torch.get_num_threads()} threads, {os.cpu_count()} cores")
        print("| method | forward passes / batch | token positions run / comment | ms / comment |")
        print("|---|---|---|---|")
        for name in cases:
            print(f"| {name} | {passes[name] / (n / 16):.1f} | {tokens[name] / n:.0f} | "
                  f"{1000 * best[name] / n:.2f} |")
        once, again = best[list(cases)[0]], best[list(cases)[1]]
        print()
        print(f"before / now (token positions): {tokens[list(cases)[1]] / tokens[list(cases)[0]]:.2f}x")
        print(f"before / now (time): {again / once:.2f}x")
        b.close()


def prompt_sizes() -> dict[str, int]:
    from llm_worker.scoring import prompt
    from weibo_mh.rubric import CORE_DIMENSIONS

    sysp = prompt.system_prompt(CORE_DIMENSIONS)
    block = prompt.data_block("某个热搜话题标题", "")
    ask = prompt.json_messages("", "", CORE_DIMENSIONS)[1]["content"][len(prompt.data_block("", "")):]
    q = prompt.dimension_question("suicide_risk")
    return {"system_chars": len(sysp), "data_block_chars_without_comment": len(block),
            "json_instruction_chars": len(ask), "dimension_question_chars": len(q)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--comments", type=int, default=64, help="comments per measurement (default 64)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds; the best time of each is kept")
    ap.add_argument("--model", help="model directory (default: build the tiny GLM-4 in a temp dir)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch CPU threads (default 1: stable ratios on a shared machine)")
    ap.add_argument("--answer-mass", action="store_true",
                    help="only print the answer-mass distribution of the tiny models (no timings)")
    ap.add_argument("--split-values", action="store_true",
                    help="only compare the question run once against once per value, on a tokenizer "
                         "that spells 10 in two tokens")
    a = ap.parse_args(argv)
    if a.comments < 16 or a.rounds < 1:
        print("error: --comments must be >= 16 and --rounds >= 1", file=sys.stderr)
        return 2

    import torch

    if a.answer_mass:
        torch.set_num_threads(max(1, a.threads))
        answer_mass_report(a.comments)
        return 0
    if a.split_values:
        torch.set_num_threads(max(1, a.threads))
        split_values_report(a.comments, a.rounds)
        return 0

    from llm_worker.scoring.backends.hf import TransformersBackend
    from llm_worker.scoring.tiny_model import build_tiny_glm

    torch.set_num_threads(max(1, a.threads))
    tmp = tempfile.TemporaryDirectory()
    model = a.model or str(build_tiny_glm(Path(tmp.name) / "tiny-glm4"))
    b = TransformersBackend(model, device="cpu", local_files_only=True)
    items = comments(a.comments)
    cases = {
        "likelihood, batch 16": lambda: run_likelihood(b, items, 16),
        "likelihood, batch 1": lambda: run_likelihood(b, items, 1),
        "likelihood without prefix sharing, batch 16": lambda: run_no_sharing(b, items, 16),
        "free JSON generation, batch 16": lambda: run_json_generation(b, items, 16),
    }
    run_likelihood(b, items[:16], 16)  # warm-up
    best: dict[str, float] = {}
    passes: dict[str, int] = {}
    tokens: dict[str, int] = {}
    for r in range(a.rounds):
        for name, fn in cases.items():  # interleaved, so machine load hits every case alike
            b.forward_passes = b.tokens_in = 0
            t = timed(fn)
            passes[name] = b.forward_passes
            tokens[name] = b.tokens_in
            best[name] = min(best.get(name, t), t)
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr)

    n = len(items)
    print(f"# bench_llm: tiny random GLM-4 (hidden 64, 2 layers, byte-level BPE vocab {len(b.tokenizer)}), "
          f"{n} comments, {len(b.dimensions)} dimensions, best of {a.rounds} rounds")
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cores")
    print("| method | forward passes / batch | token positions run / comment | ms / comment |")
    print("|---|---|---|---|")
    for name in cases:
        per_batch = passes[name] / (n if "batch 1" in name and "16" not in name else n / 16)
        print(f"| {name} | {per_batch:.1f} | {tokens[name] / n:.0f} | {1000 * best[name] / n:.2f} |")
    lk, js = best["likelihood, batch 16"], best["free JSON generation, batch 16"]
    print()
    print(f"free JSON generation / likelihood (time, batch 16): {js / lk:.2f}x")
    print(f"free JSON generation / likelihood (forward passes): "
          f"{passes['free JSON generation, batch 16'] / passes['likelihood, batch 16']:.2f}x")
    print(f"no prefix sharing / prefix sharing (token positions): "
          f"{tokens['likelihood without prefix sharing, batch 16'] / tokens['likelihood, batch 16']:.2f}x")
    print(f"no prefix sharing / prefix sharing (time, batch 16): "
          f"{best['likelihood without prefix sharing, batch 16'] / lk:.2f}x")
    print(f"batch 1 / batch 16 (time per comment): {best['likelihood, batch 1'] / lk:.2f}x")
    client = bench_openai_client(4 * n)
    print(f"openai backend against the fake server (HTTP + JSON + validation, no model time; server in "
          f"the same process): {client[1]:.0f} comments/s at concurrency 1, {client[8]:.0f} at 8")
    print()
    print("prompt sizes (characters):", prompt_sizes())
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
