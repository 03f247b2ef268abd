"""The chat template of a model served by llama.cpp, rendered here as its server renders it.

llama-cpp-python's server ignores ``continue_final_message``, so the openai backend's
likelihood method renders the prompt itself (from the ``tokenizer.chat_template`` inside
the served .gguf file, or from a Jinja file) and scores it through ``/v1/completions``.
The backend checks at start-up that the rendering equals the server's own.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from llm_worker.scoring.backends.base import PermanentBackendError


def load_chat_template(path: str) -> tuple[str, str, str]:
    """(template, bos text, eos text) from a GGUF file (``tokenizer.chat_template``, as
    llama.cpp's server reads it) or from a Jinja template file (bos and eos empty)."""
    if path.endswith(".gguf"):
        try:
            import gguf
        except ImportError:
            raise PermanentBackendError("openai.chat_template names a GGUF file, which needs the "
                                        "gguf package: pip install gguf") from None
        r = gguf.GGUFReader(path)

        def field(name: str) -> Any:
            f = r.fields.get(name)
            return None if f is None else f.contents()

        template = field("tokenizer.chat_template")
        if not isinstance(template, str):
            raise PermanentBackendError(f"openai.chat_template: {path} holds no tokenizer.chat_template")
        tokens = field("tokenizer.ggml.tokens") or []

        def text(key: str) -> str:
            i = field(key)
            return str(tokens[i]) if isinstance(i, int) and 0 <= i < len(tokens) else ""

        return template, text("tokenizer.ggml.bos_token_id"), text("tokenizer.ggml.eos_token_id")
    with open(path, encoding="utf-8") as f:
        return f.read(), "", ""


def _raise_exception(message: str) -> None:
    """The ``raise_exception`` that chat templates call to refuse a conversation."""
    import jinja2

    raise jinja2.TemplateError(message)


@functools.lru_cache(maxsize=8)
def _compiled(source: str) -> Any:
    """The template compiled once per text (the likelihood method renders 8-14 prompts per
    comment), in the sandboxed environment llama.cpp's Python server uses."""
    try:
        import jinja2.ext
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ImportError:
        raise PermanentBackendError("openai.chat_template needs the jinja2 package: "
                                    "pip install jinja2") from None
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[jinja2.ext.loopcontrols])
    env.filters["tojson"] = lambda x, **kw: json.dumps(x, ensure_ascii=False, **kw)
    try:
        return env.from_string(source)
    except jinja2.TemplateSyntaxError as e:
        raise ValueError(f"the template does not compile (line {e.lineno}): {e}") from None


def render_chat(template: tuple[str, str, str], messages: list[dict[str, str]]) -> str:
    """The prompt text of ``messages`` with the generation prompt, rendered as llama.cpp's
    Python server renders it (sandboxed Jinja, trim_blocks, lstrip_blocks).

    A template that does not compile, or that refuses the messages (its ``raise_exception``),
    raises ValueError; without jinja2, PermanentBackendError."""
    compiled = _compiled(template[0])
    import jinja2  # present: _compiled needed it

    try:
        return str(compiled.render(messages=messages, bos_token=template[1], eos_token=template[2],
                                   add_generation_prompt=True, raise_exception=_raise_exception))
    except jinja2.TemplateError as e:
        raise ValueError(f"the template refuses the messages: {type(e).__name__}: {e}") from None
