"""The backend registry: a name from the config or the command line -> a scorer.

Backends are imported only when asked for, so that the CPU scorers never pay for
importing torch or transformers, and a missing optional dependency only matters
to the backend that needs it.
"""

from __future__ import annotations

import importlib
from typing import Any

from llm_worker.scoring.backends.base import Backend
from weibo_mh.config import Config, ConfigError

#: name -> "module:Class". Every class has ``from_config(cls, cfg, **overrides)``.
REGISTRY: dict[str, str] = {
    "lexicon": "llm_worker.scoring.backends.lexicon:LexiconBackend",
    "classifier": "llm_worker.scoring.backends.classifier:ClassifierBackend",
    "transformers": "llm_worker.scoring.backends.hf:TransformersBackend",
    "openai": "llm_worker.scoring.backends.openai_compat:OpenAIBackend",
    "null": "llm_worker.scoring.backends.null:NullBackend",
}


def backend_class(name: str) -> Any:
    """The class registered under ``name``; ConfigError for an unknown or unavailable one."""
    try:
        target = REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown backend {name!r} (known: {', '.join(REGISTRY)})") from None
    module_name, _, cls_name = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ConfigError(f"backend {name!r} is not available: {e}") from None
    try:
        return getattr(module, cls_name)
    except AttributeError:
        raise ConfigError(f"backend {name!r}: {module_name} has no {cls_name}") from None


def make_backend(name: str, cfg: Config, **overrides: Any) -> Backend:
    """Build the backend ``name`` from the config; ``overrides`` are command-line settings
    (model=..., explain=True, dimensions=...). Overrides set to None are left out."""
    cls = backend_class(name)
    return cls.from_config(cfg, **{k: v for k, v in overrides.items() if v is not None})
