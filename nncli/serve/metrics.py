"""``GET /metrics``: Prometheus text through prometheus-client, one registry per app (so two
apps in one process, as tests make, count apart).

- ``nncli_requests_total{path, status}``: answered requests by path and HTTP status;
- ``nncli_request_seconds{path}``: latency histogram, from the first byte in to the last out;
- ``nncli_requests_in_flight``: requests begun and not yet answered;
- ``nncli_batch_rows``: real rows a round of forward passes carried (the micro-batches);
- ``nncli_forward_passes_total``: forward passes of exactly ``--max-batch`` rows;
- ``nncli_rows_total``: rows predicted.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
KNOWN_PATHS = ("/predict", "/generate", "/health", "/info", "/metrics", "/docs", "/openapi.json")


class Metrics:
    """The counters of one app."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, max_batch: int):
        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "nncli_requests", "Requests answered, by path and status.", ["path", "status"],
            registry=r,
        )  # fmt: skip
        self.latency = Histogram(
            "nncli_request_seconds", "Seconds from request to answer.", ["path"],
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.in_flight = Gauge("nncli_requests_in_flight", "Requests being answered.", registry=r)
        sizes = sorted({1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, max_batch})
        self.batch_rows = Histogram(
            "nncli_batch_rows", "Real rows in one round of forward passes.",
            buckets=[s for s in sizes if s <= max_batch], registry=r,
        )  # fmt: skip
        self.passes = Counter(
            "nncli_forward_passes", "Forward passes of --max-batch rows.", registry=r
        )
        self.rows = Counter("nncli_rows", "Rows predicted.", registry=r)
        self.children: dict[tuple[str, int], tuple[Any, Any]] = {}

    def answered(self, path: str, status: int, seconds: float) -> None:
        """One request answered: counted by path and status, its latency observed (each
        label set's children looked up once: ``labels`` costs more than the count)."""
        children = self.children.get((path, status))
        if children is None:
            children = (self.latency.labels(path), self.requests.labels(path, str(status)))
            self.children[(path, status)] = children
        children[0].observe(seconds)
        children[1].inc()

    def observe_round(self, rows: int, passes: int) -> None:
        """The batcher's report of one round: its real rows and its passes."""
        self.batch_rows.observe(rows)
        self.passes.inc(passes)
        self.rows.inc(rows)

    def text(self) -> bytes:
        return generate_latest(self.registry)


class Counted:
    """ASGI middleware: every HTTP request counted by path and status, timed, and held in the
    in-flight gauge while it runs. Paths outside the app's own are counted as ``other`` (a
    scanner's guesses do not grow the label set)."""

    def __init__(self, app: Any, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        path = path if path in KNOWN_PATHS else "other"
        status = {"code": 500}

        async def sent(message: dict) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        self.metrics.in_flight.inc()
        start = time.perf_counter()
        try:
            await self.app(scope, receive, sent)
        finally:
            self.metrics.in_flight.dec()
            self.metrics.answered(path, status["code"], time.perf_counter() - start)
