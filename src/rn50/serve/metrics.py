"""Prometheus metrics of the server (prometheus-client, its own registry)."""

from __future__ import annotations

from prometheus_client import (CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge,
                               Histogram, generate_latest)

SECONDS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10)


class Metrics:
    CONTENT_TYPE = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter("rn50_requests", "requests by endpoint and HTTP status",
                                ["endpoint", "status"], registry=r)
        self.latency = Histogram("rn50_request_seconds", "request time, arrival to answer",
                                 buckets=SECONDS, registry=r)
        self.queue = Histogram("rn50_queue_seconds", "time a request waited for its batch",
                               buckets=SECONDS, registry=r)
        self.inference_time = Histogram("rn50_inference_seconds", "engine time per batch",
                                        buckets=SECONDS, registry=r)
        self.batch_size = Histogram("rn50_batch_size", "images per batch sent to an engine",
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.in_flight = Gauge("rn50_requests_in_flight", "requests being served", registry=r)
        self.rejections = Counter("rn50_rejected", "requests refused because the queue was "
                                  "full (429)", registry=r)
        self.restarts = Counter("rn50_worker_restarts", "engine workers restarted after they "
                                "died", registry=r)

    def started(self) -> None:
        self.in_flight.inc()

    def finished(self, endpoint: str, status: int, seconds: float) -> None:
        self.in_flight.dec()
        self.requests.labels(endpoint, str(status)).inc()
        self.latency.observe(seconds)

    def batch(self, size: int, waits: list[float]) -> None:
        self.batch_size.observe(size)
        for wait in waits:
            self.queue.observe(wait)

    def inference(self, seconds: float) -> None:
        self.inference_time.observe(seconds)

    def rejected(self) -> None:
        self.rejections.inc()

    def restarted(self) -> None:
        self.restarts.inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
