"""Fixtures of the spider tests: the small corpus served by a LocalSite, and a config for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from weibo.localsite import LocalSite, small_corpus

from tests.spider.helpers import write_config


@pytest.fixture
def site() -> Iterator[LocalSite]:
    with LocalSite(small_corpus()) as s:
        yield s


@pytest.fixture
def config(tmp_path: Path, site: LocalSite) -> Path:
    return write_config(tmp_path / "spider.toml", site)
