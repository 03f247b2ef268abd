"""Scale-out: crawlers on several machines share one request queue and dupe filter in Redis.

This wraps scrapy-redis's Scheduler (0.9.1, checked against Scrapy 2.19) with what a
*finite* crawl run needs and scrapy-redis leaves open:

- keys come from REDIS_KEY_PREFIX (``<prefix>:hot_topics:requests`` / ``:dupefilter``),
  so ``-s REDIS_KEY_PREFIX=…`` separates independent crawls;
- a crawler whose own work is done waits (REDIS_IDLE_SECONDS) while the shared queue
  has requests or other crawlers were active recently, instead of closing at once;
- scrapy-redis would flush the shared queue when the *first* crawler closes
  (SCHEDULER_PERSIST=False) or keep the dupe filter for ever (True), which would
  make the next run skip every page. Here the last live crawler out deletes the keys,
  and the first crawler in clears keys left behind by a crashed run.

Workers register in a hash ``<prefix>:hot_topics:workers`` with a heartbeat.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.exceptions import DontCloseSpider
from scrapy.settings import Settings
from scrapy.utils.misc import load_object
from scrapy_redis.scheduler import Scheduler

log = logging.getLogger(__name__)

HEARTBEAT_STALE = 120.0  # seconds after which a silent worker counts as gone


class SharedScheduler(Scheduler):
    @classmethod
    def from_crawler(cls, crawler: Crawler) -> SharedScheduler:
        s = Settings(crawler.settings.copy_to_dict())  # the crawler's settings are frozen
        prefix = s.get("REDIS_KEY_PREFIX").rstrip(":")
        s.set("SCHEDULER_QUEUE_KEY", f"{prefix}:%(spider)s:requests")
        s.set("SCHEDULER_DUPEFILTER_KEY", f"{prefix}:%(spider)s:dupefilter")
        instance = cls.from_settings(s)
        instance.stats = crawler.stats
        instance.crawler = crawler
        instance.prefix = prefix
        instance.idle_seconds = crawler.settings.getfloat("REDIS_IDLE_SECONDS")
        instance.worker = f"{socket.gethostname()}:{os.getpid()}:{time.time():.3f}"
        crawler.signals.connect(instance.on_idle, signal=signals.spider_idle)
        return instance

    def _key(self, name: str) -> str:
        return f"{self.prefix}:{self.spider.name}:{name}"

    def _live_workers(self) -> list[str]:
        now = time.time()
        beats = self.server.hgetall(self._key("workers"))
        return [w.decode() if isinstance(w, bytes) else w for w, t in beats.items()
                if now - float(t) < HEARTBEAT_STALE]

    def _beat(self) -> None:
        self.server.hset(self._key("workers"), self.worker, time.time())

    def _touch(self) -> None:
        self.server.set(self._key("activity"), time.time())

    # open, enqueue_request and next_request follow scrapy-redis 0.9.1 but without the
    # calls Scrapy 2.19 deprecates (Spider.log, a spider argument to the stats collector)

    def open(self, spider: Any) -> None:
        self.spider = spider
        if not [w for w in self._live_workers() if w != self.worker]:
            stale = [self.queue_key % {"spider": spider.name}, self.dupefilter_key % {"spider": spider.name}]
            if self.server.delete(*stale):
                log.info("cleared shared Redis keys left by an earlier run (%s)", ", ".join(stale))
        self._beat()
        self._touch()
        self.queue = load_object(self.queue_cls)(server=self.server, spider=spider,
                                                 key=self.queue_key % {"spider": spider.name},
                                                 serializer=self.serializer)
        if not self.df:  # type: ignore[has-type]  # set by scrapy-redis's __init__
            self.df = load_object(self.dupefilter_cls).from_spider(spider)
        if self.flush_on_start:
            self.flush()
        log.info("shared scheduler on Redis, keys %s:%s:*, worker %s; %d live workers, %d requests queued",
                 self.prefix, spider.name, self.worker, len(self._live_workers()), len(self.queue))

    def enqueue_request(self, request: Any) -> bool:
        if not request.dont_filter and self.df.request_seen(request):
            self.df.log(request, self.spider)
            return False
        if self.stats:
            self.stats.inc_value("scheduler/enqueued/redis")
        self.queue.push(request)
        self._touch()
        return True

    def next_request(self) -> Any:
        request = self.queue.pop(self.idle_before_close)
        if request is not None:
            if self.stats:
                self.stats.inc_value("scheduler/dequeued/redis")
            self._touch()
        return request

    def on_idle(self, spider: Any) -> None:
        """Keep this crawler alive while shared work may still appear."""
        if getattr(spider, "close_reason", None):
            return
        self._beat()
        if len(self.queue):
            raise DontCloseSpider
        last = float(self.server.get(self._key("activity")) or 0)
        if time.time() - last < self.idle_seconds:
            raise DontCloseSpider

    def close(self, reason: str) -> None:
        self.server.hdel(self._key("workers"), self.worker)
        others = self._live_workers()
        if not others:
            keys = [self.queue_key % {"spider": self.spider.name},
                    self.dupefilter_key % {"spider": self.spider.name},
                    self._key("activity"), self._key("workers")]
            self.server.delete(*keys)
            log.info("last crawler out: cleared the shared queue and dupe filter")
        else:
            log.info("closing; %d other crawler(s) still working on the shared queue", len(others))
