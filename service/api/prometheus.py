"""Prometheus metrics of one app (its own registry, so several apps can live in one process)."""

import time
from collections.abc import Awaitable, Callable, Iterator

from fastapi import Request, Response
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy.orm import Session, sessionmaker

from debate import ReplicaPool
from service.store.stats import QueueStats, queue_stats


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "w2s_http_requests_total", "HTTP requests", ["method", "route", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "w2s_http_request_duration_seconds", "HTTP request latency", ["method", "route"], registry=self.registry
        )
        self.debates = Counter(
            "w2s_debates_total", "Debates run by the API", ["protocol", "status"], registry=self.registry
        )
        self.tokens = Counter(
            "w2s_debate_tokens_total", "Strong-model tokens used by API debates", ["kind"], registry=self.registry
        )
        self.batch_debates = Counter(
            "w2s_batch_debates_enqueued_total", "Debates enqueued in batches", registry=self.registry
        )

    def watch(self, sessions: sessionmaker[Session]) -> None:
        """Also export the deployment's queue, workers, debates and training, read from the database."""
        self.registry.register(QueueCollector(sessions))

    def watch_pool(self, pool: ReplicaPool) -> None:
        """Also export the strong model's replicas (health, in-flight requests, loaded models) at every scrape."""
        self.registry.register(ReplicaCollector(pool))

    async def middleware(self, request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        # The route template, not the raw path: /v1/debates/{debate_id}, bounded cardinality.
        route = getattr(request.scope.get("route"), "path", "unmatched")
        self.latency.labels(request.method, route).observe(time.perf_counter() - started)
        self.requests.labels(request.method, route, str(response.status_code)).inc()
        return response


class QueueCollector(Collector):
    """Jobs by kind and status, queue age, worker heartbeats, debates and tokens (Prometheus takes
    their rate), and the step and loss of running training jobs: one database read per scrape."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def collect(self) -> Iterator[Metric]:
        with self.sessions() as session:
            stats = queue_stats(session)
        yield from _job_metrics(stats)
        yield from _debate_metrics(stats)

    def describe(self) -> list[Metric]:
        return []  # metrics depend on the rows: nothing to check at registration


def _job_metrics(stats: QueueStats) -> Iterator[Metric]:
    jobs = GaugeMetricFamily("w2s_jobs", "Jobs in the queue by kind and status", labels=["kind", "status"])
    for (kind, status), count in sorted(stats.jobs.items()):
        jobs.add_metric([kind, status], count)
    age = GaugeMetricFamily(
        "w2s_queue_oldest_age_seconds", "Age of the oldest queued job of each kind", labels=["kind"]
    )
    for kind, seconds in sorted(stats.oldest_queued_age_s.items()):
        age.add_metric([kind], seconds)
    heartbeat = GaugeMetricFamily(
        "w2s_worker_heartbeat_age_seconds",
        "Seconds since each running job's worker last heartbeated",
        labels=["worker", "kind"],
    )
    step = GaugeMetricFamily(
        "w2s_training_step", "Optimizer steps so far of each running training job", labels=["job", "kind"]
    )
    loss = GaugeMetricFamily(
        "w2s_training_loss", "Last reported loss of each running training job", labels=["job", "kind"]
    )
    for job in stats.running:
        heartbeat.add_metric([job.worker, job.kind], job.heartbeat_age_s)
        if job.step is not None:
            step.add_metric([str(job.id), job.kind], job.step)
            loss.add_metric([str(job.id), job.kind], job.loss)
    yield from (jobs, age, heartbeat, step, loss)


def _debate_metrics(stats: QueueStats) -> Iterator[Metric]:
    debates = CounterMetricFamily(
        "w2s_debates_stored", "Debates in the database by status (rate: debates/s)", labels=["status"]
    )
    for status, count in sorted(stats.debates.items()):
        debates.add_metric([status], count)
    tokens = CounterMetricFamily(
        "w2s_debate_tokens_stored", "Strong-model tokens of stored debates (rate: tokens/s)", labels=["kind"]
    )
    for kind, count in sorted(stats.debate_tokens.items()):
        tokens.add_metric([kind], count)
    yield from (debates, tokens)


class ReplicaCollector(Collector):
    """Gauges read from the pool when scraped: the pool's own state, not a copy that could go stale."""

    def __init__(self, pool: ReplicaPool) -> None:
        self.pool = pool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        healthy = GaugeMetricFamily("w2s_vllm_replica_healthy", "1 if the replica is in the pool", labels=["replica"])
        in_flight = GaugeMetricFamily(
            "w2s_vllm_replica_in_flight", "Requests in flight to the replica", labels=["replica"]
        )
        debates = GaugeMetricFamily("w2s_vllm_replica_debates", "Debates pinned to the replica", labels=["replica"])
        models = GaugeMetricFamily(
            "w2s_vllm_replica_model_loaded",
            "1 per model (base or adapter) the replica lists",
            labels=["replica", "model"],
        )
        for state in self.pool.states():
            healthy.add_metric([state.url], float(state.healthy))
            in_flight.add_metric([state.url], state.in_flight)
            debates.add_metric([state.url], state.debates)
            for model in state.models:
                models.add_metric([state.url, model], 1.0)
        yield from (healthy, in_flight, debates, models)
