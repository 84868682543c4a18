"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("w2s_http_requests_total", "HTTP requests", ["method", "route", "status"],
                                registry=self.registry)
        self.latency = Histogram("w2s_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "route"], registry=self.registry)
        self.debates = Counter("w2s_debates_total", "Debates run by the API", ["protocol", "status"],
                               registry=self.registry)
        self.tokens = Counter("w2s_debate_tokens_total", "Strong-model tokens used by API debates", ["kind"],
                              registry=self.registry)
        self.batch_debates = Counter("w2s_batch_debates_enqueued_total", "Debates enqueued in batches",
                                     registry=self.registry)

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path: /v1/debates/{debate_id}, bounded cardinality.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        self.latency.labels(request.method, route).observe(time.perf_counter() - started)
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        return response
