"""Fixtures for the LLM backends: tiny GLM checkpoints built offline, a fake OpenAI server for fault
injection, and llama.cpp's real server on a tiny GGUF written here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

# Nothing is ever downloaded from a model hub in these tests.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tests.worker_llm.fake_openai import FakeOpenAI  # noqa: E402


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """The tiny model gains nothing from threads, and on a busy CI machine they contend badly."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is pinned in requirements.txt
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_glm4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Glm4ForCausalLM (as GLM-4-9B-0414) with a GLM-4-shaped tokenizer."""
    from llm_worker.scoring.tiny_model import build_tiny_glm

    return build_tiny_glm(tmp_path_factory.mktemp("tiny") / "glm4", arch="glm4")


@pytest.fixture(scope="session")
def tiny_glm_split_ten(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GlmForCausalLM (as glm-4-9b-chat-hf) whose tokenizer spells "10" with two tokens."""
    from llm_worker.scoring.tiny_model import build_tiny_glm

    return build_tiny_glm(tmp_path_factory.mktemp("tiny") / "glm-split", arch="glm", split_ten=True)


@pytest.fixture(scope="session")
def tiny_glm_hf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny GlmForCausalLM with the glm-4-9b-chat-hf prompt format and the byte-level BPE."""
    from llm_worker.scoring.tiny_model import build_tiny_glm

    return build_tiny_glm(tmp_path_factory.mktemp("tiny") / "glm-hf", arch="glm", seed=1)


@pytest.fixture(scope="session")
def glm4_backend(tiny_glm4: Path):
    """The real transformers backend on CPU with the core rubric (shared: loading costs time)."""
    from llm_worker.scoring.backends.hf import TransformersBackend

    b = TransformersBackend(str(tiny_glm4), device="cpu", local_files_only=True)
    yield b
    b.close()


@pytest.fixture(scope="session")
def glm_hf_backend(tiny_glm_hf: Path):
    from llm_worker.scoring.backends.hf import TransformersBackend

    b = TransformersBackend(str(tiny_glm_hf), device="cpu", local_files_only=True)
    yield b
    b.close()


@pytest.fixture(params=["glm-4-0414", "glm-4-9b-chat-hf"])
def llm_backend(request: pytest.FixtureRequest):
    """The backend on each of the two GLM-4 prompt formats (both end with "<|assistant|>")."""
    return request.getfixturevalue("glm4_backend" if request.param == "glm-4-0414" else "glm_hf_backend")


@pytest.fixture
def fake_openai() -> Iterator[FakeOpenAI]:
    srv = FakeOpenAI()
    srv.base_url = srv.start()
    yield srv
    srv.stop()


def _llama_cpp_or_skip() -> None:
    """llama-cpp-python (requirements-dev.txt) must be installed; skip without it, fail under CI=true."""
    import importlib.util

    # Looked up, not imported: the server runs in its own process, the library stays out of this one.
    missing = [m for m in ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context",
                           "pydantic_settings") if importlib.util.find_spec(m) is None]
    if missing:
        why = (f"llama-cpp-python's server is not installed (no {', '.join(missing)}): "
               "pip install -r requirements-dev.txt (it builds from source, about 12 minutes)")
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="session")
def tiny_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Qwen2-architecture GGUF (tests/worker_llm/tiny_gguf.py), written once per session."""
    from tests.worker_llm.tiny_gguf import build_tiny_gguf

    _llama_cpp_or_skip()
    return build_tiny_gguf(tmp_path_factory.mktemp("gguf") / "tiny-qwen2.gguf")


@pytest.fixture(scope="session")
def llama_server(tiny_gguf: Path, tmp_path_factory: pytest.TempPathFactory):
    """llama-cpp-python's server on 127.0.0.1 serving the tiny GGUF, shared by the session."""
    from tests.worker_llm.llama_server import LlamaServer

    srv = LlamaServer(tiny_gguf, tmp_path_factory.mktemp("llama") / "server.log").start()
    yield srv
    srv.stop()
