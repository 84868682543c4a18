"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from debate import ReplicaPool


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

    def watch(self, pool: ReplicaPool) -> None:
        """Export the strong model's replicas (health, in-flight requests, loaded models) at every scrape."""
        self.registry.register(ReplicaCollector(pool))

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path: /v1/debates/{debate_id}, bounded cardinality.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        self.latency.labels(request.method, route).observe(time.perf_counter() - started)
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        return response


class ReplicaCollector(Collector):
    """Gauges read from the pool when scraped: the pool's own state, not a copy that could go stale."""

    def __init__(self, pool: ReplicaPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        healthy = GaugeMetricFamily("w2s_vllm_replica_healthy", "1 if the replica is in the pool", labels=["replica"])
        in_flight = GaugeMetricFamily("w2s_vllm_replica_in_flight", "Requests in flight to the replica",
                                      labels=["replica"])
        debates = GaugeMetricFamily("w2s_vllm_replica_debates", "Debates pinned to the replica", labels=["replica"])
        models = GaugeMetricFamily("w2s_vllm_replica_model_loaded", "1 per model (base or adapter) the replica lists",
                                   labels=["replica", "model"])
        for state in self.pool.states():
            healthy.add_metric([state.url], float(state.healthy))
            in_flight.add_metric([state.url], state.in_flight)
            debates.add_metric([state.url], state.debates)
            for model in state.models:
                models.add_metric([state.url, model], 1.0)
        yield from (healthy, in_flight, debates, models)
