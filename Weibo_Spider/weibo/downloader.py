"""Scrapy's downloader, with CONCURRENT_REQUESTS_PER_DOMAIN enforced again (``DOWNLOADER`` setting).

Since Scrapy 2.14 (still so in 2.19.0), ``Downloader._process_queue`` hands each queued request
to ``_wait_for_download`` as a coroutine that the asyncio reactor (the default) starts only on
a later loop turn, while the request is marked as transferring only once it runs. The loop
``while slot.queue and slot.free_transfer_slots() > 0`` therefore sees a free slot every time
and starts the whole queue at once: with ``download_delay = 0`` a config saying
``concurrent_per_domain = 1`` sent up to CONCURRENT_REQUESTS requests to one site together.
Scrapy 2.13 (Deferreds, run at once) kept the limit. A ``download_delay`` above 0 hides the
bug, as the queue then starts one request per delay.

Here the request is marked as transferring the moment it is handed over, so the slot's count
is right before the next pass of that loop. ``tests/spider/test_politeness.py`` measures the
requests in flight at a slow local site, so a Scrapy upgrade that changes this code is caught.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any

from scrapy import Request
from scrapy.core.downloader import Downloader, Slot
from scrapy.http import Response
from twisted.internet.defer import Deferred


class PoliteDownloader(Downloader):
    """``Downloader`` whose per-slot concurrency holds under the asyncio reactor."""

    def _wait_for_download(self, slot: Slot, request: Request,
                           queue_dfd: Deferred[Response]) -> Coroutine[Any, Any, None]:
        # Counted now, not when the coroutine first runs; Scrapy's _download adds it again
        # (a set) and removes it when the answer is in, as before.
        slot.transferring.add(request)
        return super()._wait_for_download(slot, request, queue_dfd)
