"""Prometheus metrics of the HTTP service, and the middleware that records them.

Per request: a count by route, method, status and API key *name* (never the key), and
a latency histogram by route, method and status. Routes are the API's fixed paths (any
other path is ``other``), so no label grows with what clients send. Per message: how
many each route screened, accepted or rejected.

With several server processes (``screening serve --workers N``) prometheus-client runs
in multiprocess mode: each process writes to ``PROMETHEUS_MULTIPROC_DIR`` and whichever
process answers ``/metrics`` sums them all.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ROUTES", "HttpMetrics", "MetricsMiddleware", "exposition"]

log = logging.getLogger("screening.service.access")

#: The paths that get a label of their own.
ROUTES = frozenset({"/v1/screen", "/v1/messages", "/v1/reports", "/healthz", "/readyz",
                    "/metrics", "/openapi.json", "/docs"})  # fmt: skip
#: Synchronous screening answers in milliseconds; an ingest under backpressure can wait.
_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25,
            0.5, 1, 2.5, 5, 10)  # fmt: skip


class HttpMetrics:
    """The service's metrics on ``registry``."""

    def __init__(self, registry: CollectorRegistry):
        self.registry = registry
        self.requests = Counter(
            "screening_http_requests",
            "HTTP requests, by route, method, status and API key name ('-': none).",
            ["route", "method", "status", "key"],
            registry=registry,
        )
        self.latency = Histogram(
            "screening_http_request_duration_seconds",
            "Time from the request's start to the end of its response, by route, method "
            "and status.",
            ["route", "method", "status"],
            buckets=_BUCKETS,
            registry=registry,
        )
        self.messages = Counter(
            "screening_http_messages",
            "Chat messages in requests, by route and outcome (screened, accepted, rejected).",
            ["route", "outcome"],
            registry=registry,
        )
        self._children: dict[tuple[str, ...], tuple[Any, Any]] = {}

    def observe(self, route: str, method: str, status: int, key: str, seconds: float) -> None:
        labels = (route, method, str(status), key)
        children = self._children.get(labels)
        if children is None:  # label lookups cost more than the increments: cache them
            children = (self.requests.labels(*labels), self.latency.labels(*labels[:3]))
            self._children[labels] = children
        children[0].inc()
        children[1].observe(seconds)

    def count_messages(self, route: str, outcomes: Iterable[tuple[str, int]]) -> None:
        for outcome, n in outcomes:
            if n:
                self.messages.labels(route, outcome).inc(n)


def exposition(registry: CollectorRegistry) -> bytes:
    """The text format of ``registry`` — or, in multiprocess mode, of every process."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        from prometheus_client import multiprocess

        combined = CollectorRegistry()
        multiprocess.MultiProcessCollector(combined, path=directory)
        return generate_latest(combined)
    return generate_latest(registry)


class MetricsMiddleware:
    """Pure ASGI (no per-request task or body buffering): times each HTTP request, reads
    its status from the response start and the key name the auth step left in
    ``scope["state"]``, and writes the access log line when ``access_log`` is on."""

    def __init__(self, app: ASGIApp, metrics: HttpMetrics, access_log: bool = True):
        self.app = app
        self.metrics = metrics
        self.access_log = access_log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - started
            path = scope["path"]
            route = path if path in ROUTES else ("/docs" if path.startswith("/docs/") else "other")
            key = scope.get("state", {}).get("api_key") or "-"
            self.metrics.observe(route, scope["method"], status, key, seconds)
            if self.access_log:
                log.info("%s %s %d key=%s %.1fms", scope["method"], route, status, key,
                         seconds * 1000)  # fmt: skip
