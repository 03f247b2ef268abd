"""Build a tiny random GLM-4-family chat model and tokenizer, entirely offline.

Tests and benchmarks need the real transformers code path (AutoTokenizer,
AutoModelForCausalLM, chat template, KV cache) without downloading 18 GB of
GLM-4-9B. This writes a directory that loads exactly like a hub checkpoint:

* a random ``Glm4ForCausalLM`` (``arch="glm4"``, as THUDM/GLM-4-9B-0414) or
  ``GlmForCausalLM`` (``arch="glm"``, as THUDM/glm-4-9b-chat-hf), hidden size 64, 2 layers;
* a byte-level BPE tokenizer trained on the spot (``tokenizers``) with GLM-4's
  pre-tokenisation (``GLM4_SPLIT``: letter and CJK runs, digit groups of at most three,
  punctuation runs, newlines, spaces), GLM-4's special tokens, and merges learnt from
  the rubric prompt and sentences written here, so that words merge into multi-character
  tokens, every byte is encodable and "0".."10" are single tokens, as in GLM-4's
  151,329-token vocabulary. ``split_ten=True`` instead builds a character-level
  tokenizer that spells "10" with two tokens, to exercise the multi-token path;
* one of two chat templates written for this project from the two public GLM-4 prompt
  formats (``TEMPLATES``): both render ``[gMASK]<sop>`` and ``<|role|>`` + newline + content
  per message, and end the generation prompt with ``<|assistant|>`` and no newline.

The scores it gives are meaningless; it exists to test plumbing and measure cost.

    python -m llm_worker.scoring.tiny_model --out data/models/tiny-glm4
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

SPECIAL_TOKENS = ["<|endoftext|>", "[MASK]", "[gMASK]", "[sMASK]", "<sop>", "<eop>",
                  "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>", "<unk>"]

#: The prompt format of THUDM/glm-4-9b-chat-hf, written for this project: [gMASK]<sop>, then
#: "<|role|>\n" + content per message; the generation prompt is "<|assistant|>" alone (the
#: model writes the newline itself).
GLM4_CHAT_HF_TEMPLATE = (
    "[gMASK]<sop>"
    "{% for message in messages %}"
    "{% if message['role'] in ('system', 'user', 'assistant', 'observation') %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}"
    "{% endif %}"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

#: The prompt format of THUDM/GLM-4-9B-0414, written for this project: the same markers;
#: tool results are observation turns, an assistant turn's content is stripped, list
#: contents are joined text parts; the generation prompt is "<|assistant|>" alone.
GLM4_0414_TEMPLATE = (
    "{%- macro text(content) -%}"
    "{%- if content is string -%}{{ content }}"
    "{%- else -%}{%- for part in content if part['type'] == 'text' -%}{{ part['text'] }}{%- endfor -%}"
    "{%- endif -%}"
    "{%- endmacro -%}"
    "[gMASK]<sop>"
    "{%- for m in messages -%}"
    "{%- if m['role'] == 'system' -%}<|system|>\n{{ text(m['content']) }}"
    "{%- elif m['role'] == 'user' -%}<|user|>\n{{ text(m['content']) }}"
    "{%- elif m['role'] == 'assistant' -%}<|assistant|>\n{{ text(m['content']).strip() }}"
    "{%- elif m['role'] == 'tool' or m['role'] == 'observation' -%}<|observation|>\n{{ text(m['content']) }}"
    "{%- endif -%}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}<|assistant|>{%- endif -%}"
)

TEMPLATES = {"glm-4-9b-chat-hf": GLM4_CHAT_HF_TEMPLATE, "glm-4-0414": GLM4_0414_TEMPLATE}
#: The template each architecture's public checkpoint uses.
TEMPLATE_OF_ARCH = {"glm": "glm-4-9b-chat-hf", "glm4": "glm-4-0414"}
CHAT_TEMPLATE = GLM4_0414_TEMPLATE

#: GLM-4's pre-tokenisation (its tiktoken pattern): contractions, a letter run (CJK included)
#: with at most one leading non-letter, digit groups of at most three, punctuation runs,
#: newlines, spaces.
GLM4_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

#: Training sentences for the merges, written for this project (no dataset rows).
TRAINING_TEXT = (
    "今天终于把论文交上去了，开心！最近总是失眠，白天也没精神。谢谢救援队，大家都平安就好。",
    "喝了点酒才睡着，明天还要上班。感觉一切都没有意义，好累。支持！希望越来越好。",
    "已经连续一个月心情低落，什么都不想做。周末和朋友去爬山，风景很美。哈哈哈笑死我了",
    "I am fine, thanks. It's 2026 and we've got 100 comments, 12345 likes; ok?! (test) #topic#",
)
BPE_VOCAB = 2000


def _prompt_characters() -> set[str]:
    """Every character the rubric prompts can contain, so prompts tokenise one char per token."""
    from llm_worker.scoring import prompt
    from weibo_mh.rubric import EXTENDED_DIMENSIONS

    texts = [prompt.system_prompt(EXTENDED_DIMENSIONS), prompt.data_block("", ""),
             prompt.ANSWER_PREFIX,
             *(prompt.dimension_question(d) for d in EXTENDED_DIMENSIONS),
             *(m["content"] for m in prompt.json_messages("", "", EXTENDED_DIMENSIONS, strict=True,
                                                          problem="x", explain=True)),
             *(m["content"] for m in prompt.explain_messages("", "", EXTENDED_DIMENSIONS))]
    return set("".join(texts))


def build_tokenizer(split_ten: bool = False, template: str = "glm-4-0414"):
    """A PreTrainedTokenizerFast with GLM-4's special tokens and one of ``TEMPLATES``.

    Byte-level BPE with GLM-4's pre-tokenisation; ``split_ten=True``: the older
    character-level tokenizer whose "10" is two tokens.
    """
    from transformers import PreTrainedTokenizerFast

    if template not in TEMPLATES:
        raise ValueError(f"template must be one of {', '.join(TEMPLATES)}, not {template!r}")
    tok = _char_tokenizer() if split_ten else _bpe_tokenizer()
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        unk_token="<unk>", padding_side="left", chat_template=TEMPLATES[template],
        additional_special_tokens=SPECIAL_TOKENS[1:-1],
    )


def _bpe_tokenizer():
    """Byte-level BPE trained on the prompts and TRAINING_TEXT, split like GLM-4's tokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    from llm_worker.scoring import prompt
    from weibo_mh.rubric import EXTENDED_DIMENSIONS

    tok = Tokenizer(models.BPE(unk_token=None, byte_fallback=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(GLM4_SPLIT), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    texts = [prompt.system_prompt(EXTENDED_DIMENSIONS), prompt.data_block("热搜话题", "评论"),
             prompt.ANSWER_PREFIX, *(prompt.dimension_question(d) for d in EXTENDED_DIMENSIONS),
             *(m["content"] for m in prompt.json_messages("", "", EXTENDED_DIMENSIONS, strict=True,
                                                          problem="x", explain=True)),
             *(m["content"] for m in prompt.explain_messages("", "", EXTENDED_DIMENSIONS)),
             *TRAINING_TEXT,
             # "0".."10" as words of their own, often enough that "10" is learnt as one token
             " ".join(str(v) for v in range(11)) * 20]
    trainer = trainers.BpeTrainer(vocab_size=BPE_VOCAB, min_frequency=2, show_progress=False,
                                  special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    return tok


def _char_tokenizer():
    """Every prompt character a token, byte fallback for the rest, "10" spelt "1","0"."""
    from tokenizers import Tokenizer, decoders, models

    chars = sorted(_prompt_characters() | set(string.printable) | set("，。！？：；、“”‘’（）【】…—～"))
    vocab: dict[str, int] = {}
    for t in SPECIAL_TOKENS + [f"<0x{b:02X}>" for b in range(256)] + chars:
        vocab.setdefault(t, len(vocab))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[], unk_token="<unk>", byte_fallback=True))
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return tok


def build_tiny_glm(out_dir: str | Path, arch: str = "glm4", seed: int = 0, split_ten: bool = False,
                   hidden_size: int = 64, layers: int = 2, template: str | None = None) -> Path:
    """Write a tiny random GLM checkpoint + tokenizer to ``out_dir``; return the path.

    Loadable with ``AutoTokenizer.from_pretrained(path)`` and
    ``AutoModelForCausalLM.from_pretrained(path)`` (no remote code, nothing downloaded).
    ``template`` (one of ``TEMPLATES``) defaults to the one of ``arch``'s public checkpoint.
    """
    import torch
    import transformers
    from transformers import GenerationConfig

    classes = {"glm4": ("Glm4Config", "Glm4ForCausalLM"), "glm": ("GlmConfig", "GlmForCausalLM")}
    if arch not in classes:
        raise ValueError(f"arch must be glm4 or glm, not {arch!r}")
    Config, Model = (getattr(transformers, name) for name in classes[arch])  # noqa: N806

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    template = template or TEMPLATE_OF_ARCH.get(arch, "glm-4-0414")
    tokenizer = build_tokenizer(split_ten=split_ten, template=template)
    tokenizer.save_pretrained(out)
    ids = tokenizer.convert_tokens_to_ids
    eos = [ids("<|endoftext|>"), ids("<|user|>"), ids("<|observation|>")]
    heads = 4
    config = Config(
        vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
        num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=2,
        head_dim=hidden_size // heads, max_position_embeddings=8192,
        # Wider than the usual 0.02 so the random model's value distributions are peaked,
        # not flat: ties between levels would make equality tests fragile.
        initializer_range=0.2, pad_token_id=eos[0], eos_token_id=eos, bos_token_id=None,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = Model(config).eval()
    model.generation_config = GenerationConfig(eos_token_id=eos, pad_token_id=eos[0], do_sample=False)
    model.save_pretrained(out)
    (out / "TINY_MODEL.json").write_text(json.dumps(
        {"arch": arch, "seed": seed, "split_ten": split_ten, "template": template,
         "note": "random weights, for tests only"}),
        encoding="utf-8")
    return out


def build_tiny_bert(out_dir: str | Path, texts: list[str], seed: int = 0, hidden_size: int = 32,
                    layers: int = 2) -> Path:
    """Write a tiny random BERT encoder whose vocabulary is the characters of ``texts``.

    The stand-in for a pretrained Chinese encoder (m3e-small) in tests: it loads with
    ``AutoTokenizer`` / ``AutoModel`` from local files like a real checkpoint.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    chars = sorted({c for t in texts for c in t if not c.isspace()} | set(string.ascii_lowercase + string.digits))
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *chars]
    # ``vocab=`` (transformers 5 ignores the old ``vocab_file=`` and would map every character
    # to [UNK]); tests check that the characters come out as themselves.
    BertTokenizer(vocab={w: i for i, w in enumerate(vocab)}).save_pretrained(out)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden_size, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden_size, max_position_embeddings=256)
    torch.manual_seed(seed)
    BertModel(config).save_pretrained(out)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m llm_worker.scoring.tiny_model",
                                 description="Write a tiny random GLM-4-family model and tokenizer "
                                             "(offline; for tests and benchmarks, scores are meaningless).")
    ap.add_argument("--out", required=True, help="output directory")
    ap.add_argument("--arch", choices=("glm4", "glm"), default="glm4",
                    help="glm4: Glm4ForCausalLM (GLM-4-0414); glm: GlmForCausalLM (glm-4-9b-chat-hf)")
    ap.add_argument("--seed", type=int, default=0, help="weight initialisation seed")
    ap.add_argument("--split-ten", action="store_true", help='tokenise "10" as two tokens')
    ap.add_argument("--template", choices=sorted(TEMPLATES),
                    help="chat template (default: glm-4-0414 for glm4, glm-4-9b-chat-hf for glm)")
    a = ap.parse_args(argv)
    try:
        path = build_tiny_glm(a.out, arch=a.arch, seed=a.seed, split_ten=a.split_ten, template=a.template)
    except OSError as e:
        print(f"error: cannot write {a.out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote tiny {a.arch} model to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
