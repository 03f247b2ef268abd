"""Build a tiny random GLM-4-family chat model and tokenizer, entirely offline.

Tests and benchmarks need the real transformers code path (AutoTokenizer,
AutoModelForCausalLM, chat template, KV cache) without downloading 18 GB of
GLM-4-9B. This writes a directory that loads exactly like a hub checkpoint:

* a random ``Glm4ForCausalLM`` (``arch="glm4"``, as THUDM/GLM-4-9B-0414) or
  ``GlmForCausalLM`` (``arch="glm"``, as THUDM/glm-4-9b-chat-hf), hidden size 64, 2 layers;
* a character-level BPE tokenizer made with the ``tokenizers`` library: every
  character of the rubric prompt, printable ASCII and digits are tokens, "10" is one
  token (like GLM-4's tokenizer; ``split_ten=True`` makes it two, to exercise the
  multi-token path), anything else (other CJK, emoji) falls back to byte tokens;
* GLM-4's special tokens and a chat template shaped like GLM-4's.

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

#: Shaped like GLM-4's template: [gMASK]<sop>, then <|role|>\ncontent per message.
CHAT_TEMPLATE = (
    "[gMASK]<sop>"
    "{% for message in messages %}<|{{ message['role'] }}|>\n{{ message['content'] }}{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


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


def build_tokenizer(split_ten: bool = False):
    """A PreTrainedTokenizerFast with byte fallback, GLM-4 special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    chars = sorted(_prompt_characters() | set(string.printable) | set("，。！？：；、“”‘’（）【】…—～"))
    vocab: dict[str, int] = {}
    for tok in SPECIAL_TOKENS + [f"<0x{b:02X}>" for b in range(256)] + chars:
        vocab.setdefault(tok, len(vocab))
    merges: list[tuple[str, str]] = []
    if not split_ten:
        vocab["10"] = len(vocab)
        merges.append(("1", "0"))
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tok.add_special_tokens(SPECIAL_TOKENS)
    tok.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse()])
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
        unk_token="<unk>", padding_side="left", chat_template=CHAT_TEMPLATE,
        additional_special_tokens=SPECIAL_TOKENS[1:-1],
    )


def build_tiny_glm(out_dir: str | Path, arch: str = "glm4", seed: int = 0, split_ten: bool = False,
                   hidden_size: int = 64, layers: int = 2) -> Path:
    """Write a tiny random GLM checkpoint + tokenizer to ``out_dir``; return the path.

    Loadable with ``AutoTokenizer.from_pretrained(path)`` and
    ``AutoModelForCausalLM.from_pretrained(path)`` (no remote code, nothing downloaded).
    """
    import torch
    from transformers import GenerationConfig

    if arch == "glm4":
        from transformers import Glm4Config as Config
        from transformers import Glm4ForCausalLM as Model
    elif arch == "glm":
        from transformers import GlmConfig as Config
        from transformers import GlmForCausalLM as Model
    else:
        raise ValueError(f"arch must be glm4 or glm, not {arch!r}")

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = build_tokenizer(split_ten=split_ten)
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
        {"arch": arch, "seed": seed, "split_ten": split_ten, "note": "random weights, for tests only"}),
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
    a = ap.parse_args(argv)
    try:
        path = build_tiny_glm(a.out, arch=a.arch, seed=a.seed, split_ten=a.split_ten)
    except OSError as e:
        print(f"error: cannot write {a.out}: {e.strerror}", file=sys.stderr)
        return 2
    print(f"wrote tiny {a.arch} model to {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
