"""concurrent_per_domain is a promise to the site: never more requests in flight at once.

Scrapy 2.14 to 2.19.0 start a slot's whole queue at once under the asyncio reactor when
DOWNLOAD_DELAY is 0 (see weibo/downloader.py); the local site counts the GETs it is answering
at the same moment, so any such overrun shows here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from weibo.localsite import LocalSite, expected_counts, small_corpus

from tests.spider.helpers import run_crawl, write_config

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("per_domain", [1, 3])
def test_concurrent_per_domain_caps_the_requests_in_flight(per_domain: int, sqlite_url: str,
                                                           tmp_path: Path) -> None:
    # every answer takes 0.1 s, and no download_delay spaces the requests out
    with LocalSite(small_corpus(), delay=0.1) as site:
        config = write_config(tmp_path / "c.toml", site, f"concurrent_per_domain = {per_domain}")
        crawl = run_crawl(config, sqlite_url)
    assert crawl.returncode == 0, crawl.output
    assert site.page_hits() == expected_counts(small_corpus())["pages"]
    if per_domain == 1:
        assert site.peak_in_flight == 1
    else:   # the limit is not a global lock: four topic searches are there to run side by side
        assert 1 < site.peak_in_flight <= per_domain
