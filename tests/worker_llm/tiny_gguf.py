"""A tiny Qwen2-architecture GGUF written at test time, for llama.cpp's own server.

llama-cpp-python's OpenAI-compatible server (``python -m llama_cpp.server``) is the peer in
the tests: its request handling, chat template rendering, tokenizer, logprobs and grammars
are real; the weights are not. The file holds:

* ``qwen2`` hyper-parameters (hidden size 64, 2 layers, 4 query heads, 2 KV heads);
* a byte-level BPE tokenizer (``tokenizer.ggml.model = gpt2``, pre-tokeniser ``qwen2``,
  which keeps every digit a token of its own, as Qwen's does): the 256 byte symbols, ChatML's
  special tokens, and merges that make every CJK character of the rubric prompt one token, so
  a prompt is about a thousand tokens. "10" is two tokens ("1", "0");
* a ChatML chat template written here;
* weights that are random except for two planted habits that make the right answer known:
  after "：" the model says "1" and after "1" it says "0". So the likelihood prompt, which
  ends in "分数：", is answered "10": a scorer reading only the first token says 1, and a
  prompt that does not end in "分数：" gives a spread-out answer.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECIALS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")

#: ChatML, as Qwen2.5 writes its turns (written for this project).
CHATML = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

N_EMBD, N_FF, N_LAYER, N_HEAD, N_HEAD_KV = 64, 128, 2, 4, 2
#: How strongly the planted habits speak (logit gap after the final RMS norm, about 8x this).
HABIT = 1.5


def byte_symbols() -> dict[int, str]:
    """GPT-2's printable stand-in for every byte (the byte-level BPE alphabet)."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    chars, n = list(keep), 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(keep, chars, strict=True)}


def corpus_chars() -> list[str]:
    """Every CJK character (and full-width sign) the prompts use, in a stable order."""
    from llm_worker.scoring import prompt
    from weibo_mh.rubric import EXTENDED_DIMENSIONS

    text = prompt.system_prompt(EXTENDED_DIMENSIONS) + prompt.ANSWER_PREFIX
    text += prompt.data_block("话题", "评论") + "".join(prompt.dimension_question(d) for d in EXTENDED_DIMENSIONS)
    text += "".join(m["content"] for m in prompt.json_messages("话题", "评论", EXTENDED_DIMENSIONS, strict=True))
    text += "今天又失眠了好累不想说话谢谢大家开心的一天加油"
    return sorted({c for c in text if len(c.encode()) > 1})


def build_tiny_gguf(path: Path, seed: int = 0) -> Path:
    """Write the model to ``path`` (a .gguf file) and return it."""
    import gguf

    sym = byte_symbols()
    tokens = [sym[b] for b in range(256)]
    merges: list[str] = []
    for ch in corpus_chars():
        parts = [sym[b] for b in ch.encode()]
        while len(parts) > 1:  # left to right: (b1 b2) then (b1b2 b3)
            merged = parts[0] + parts[1]
            if merged not in tokens:
                tokens.append(merged)
                merges.append(f"{parts[0]} {parts[1]}")
            parts = [merged, *parts[2:]]
    n_normal = len(tokens)
    tokens += list(SPECIALS)
    types = [gguf.TokenType.NORMAL] * n_normal + [gguf.TokenType.CONTROL] * len(SPECIALS)
    vocab = len(tokens)
    eos = tokens.index("<|im_end|>")

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), "qwen2")
    w.add_name("tiny-qwen2-test")
    w.add_context_length(8192)
    w.add_embedding_length(N_EMBD)
    w.add_block_count(N_LAYER)
    w.add_feed_forward_length(N_FF)
    w.add_head_count(N_HEAD)
    w.add_head_count_kv(N_HEAD_KV)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(10000.0)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2")
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(merges)
    w.add_bos_token_id(tokens.index("<|endoftext|>"))
    w.add_eos_token_id(eos)
    w.add_pad_token_id(tokens.index("<|endoftext|>"))
    w.add_add_bos_token(False)
    w.add_chat_template(CHATML)

    rng = np.random.default_rng(seed)
    head = N_EMBD // N_HEAD

    def rand(*shape: int) -> np.ndarray:
        return (rng.standard_normal(shape) * 0.02).astype(np.float32)

    colon, one, zero = tokens.index(sym[0xEF] + sym[0xBC] + sym[0x9A]), tokens.index("1"), tokens.index("0")
    embd = rand(vocab, N_EMBD)
    out = rand(vocab, N_EMBD)
    # Two directions of their own for "：" and "1"; nothing else uses them.
    embd[:, :2] = 0.0
    out[:, :2] = 0.0
    embd[colon] = 0.0
    embd[colon, 0] = 1.0
    embd[one] = 0.0
    embd[one, 1] = 1.0
    out[one, 0] = HABIT   # after "：" say "1"
    out[zero, 1] = HABIT  # after "1" say "0"
    w.add_tensor("token_embd.weight", embd)
    w.add_tensor("output.weight", out)
    w.add_tensor("output_norm.weight", np.ones(N_EMBD, dtype=np.float32))
    for i in range(N_LAYER):
        p = f"blk.{i}."
        w.add_tensor(p + "attn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "ffn_norm.weight", np.ones(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "attn_q.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(p + "attn_k.weight", rand(N_HEAD_KV * head, N_EMBD))
        w.add_tensor(p + "attn_v.weight", rand(N_HEAD_KV * head, N_EMBD))
        w.add_tensor(p + "attn_q.bias", np.zeros(N_EMBD, dtype=np.float32))
        w.add_tensor(p + "attn_k.bias", np.zeros(N_HEAD_KV * head, dtype=np.float32))
        w.add_tensor(p + "attn_v.bias", np.zeros(N_HEAD_KV * head, dtype=np.float32))
        w.add_tensor(p + "attn_output.weight", rand(N_EMBD, N_EMBD))
        w.add_tensor(p + "ffn_gate.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_up.weight", rand(N_FF, N_EMBD))
        w.add_tensor(p + "ffn_down.weight", rand(N_EMBD, N_FF))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def to_transformers(gguf_path: Path, out: Path) -> Path:
    """The same model as a transformers checkpoint directory (transformers reads GGUF itself),
    so that the transformers backend and llama.cpp can be compared on identical weights."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    loaded = AutoModelForCausalLM.from_pretrained(str(gguf_path.parent), gguf_file=gguf_path.name)
    cfg = loaded.config
    if hasattr(cfg, "quantization_config"):  # a GGUF-loaded model refuses save_pretrained; a plain copy does not
        del cfg.quantization_config
    model = AutoModelForCausalLM.from_config(cfg)
    model.load_state_dict(loaded.state_dict())
    tok.save_pretrained(out)
    model.save_pretrained(out)
    return out
