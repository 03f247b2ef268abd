"""Prometheus metrics for the worker: claimed, scored, failed counters and batch latency.

Each worker has its own registry, so that several workers (or tests) in one process
never clash; ``serve`` exposes it on ``/metrics`` when worker.metrics_port > 0.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Metrics:
    def __init__(self, scorer: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r, lbl = self.registry, ["scorer"]
        self.claimed = Counter("llm_worker_claimed", "Comments claimed from the queue", lbl,
                               registry=r).labels(scorer)
        self.scored = Counter("llm_worker_scored", "Comments scored and written back", lbl,
                              registry=r).labels(scorer)
        self.failed = Counter("llm_worker_failed", "Comments marked failed for good", lbl,
                              registry=r).labels(scorer)
        self.refused = Counter("llm_worker_refused", "Comments the server's content filter refused "
                               "(failed for good)", lbl, registry=r).labels(scorer)
        self.retried = Counter("llm_worker_retried", "Comments put back to pending after an error",
                               lbl, registry=r).labels(scorer)
        self.lost = Counter("llm_worker_lost", "Claims taken over by another worker before "
                            "write-back (nothing written)", lbl, registry=r).labels(scorer)
        self.lease_renewal_failures = Counter(
            "llm_worker_lease_renewal_failures", "Lease renewals that could not reach the database "
            "(tried again at the next beat)", lbl, registry=r).labels(scorer)
        self.batch_errors = Counter("llm_worker_batch_errors", "Batches the backend raised on",
                                    lbl, registry=r).labels(scorer)
        self.batch_seconds = Histogram("llm_worker_batch_seconds", "Backend time per batch",
                                       lbl, buckets=LATENCY_BUCKETS, registry=r).labels(scorer)
        self.comment_seconds = Histogram("llm_worker_comment_seconds",
                                         "Backend time per comment (batch time / batch size)",
                                         lbl, buckets=LATENCY_BUCKETS, registry=r).labels(scorer)
        self.queue = Gauge("llm_worker_queue_comments", "Comments in the queue by state (all "
                           "workers; refreshed every few seconds)", ["state"], registry=r)
        self.up = Gauge("llm_worker_up", "1 while the worker runs", lbl, registry=r).labels(scorer)
        self._server: Any = None

    def observe_batch(self, seconds: float, n: int) -> None:
        self.batch_seconds.observe(seconds)
        if n:
            for _ in range(n):
                self.comment_seconds.observe(seconds / n)

    def serve(self, host: str, port: int) -> None:
        """Start the /metrics HTTP server in a daemon thread."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        self.up.set(1)
        log.info("event=metrics url=http://%s:%d/metrics", host, port)

    def close(self) -> None:
        self.up.set(0)
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
