"""A pool of OpenAI-compatible replicas (vLLM) that debates are spread over, one replica per debate.

    async with ReplicaPool(["http://vllm-0:8000", "http://vllm-1:8000"]) as pool:
        outcomes = await run_debates(pool, specs, max_in_flight=pool.max_in_flight)

* **Replicas** are the configured base URLs; a URL whose host name resolves to several IPv4
  addresses (a headless Kubernetes Service) becomes one replica per address, re-resolved at
  every health check, so new pods join without a restart.
* **Health**: every `check_interval_s` each replica lists its models (GET /v1/models). A replica
  that fails a request or a check is taken out; one that answers again is put back, after
  `on_recovery(url)` (e.g. loading the finetuned adapters it lacks) has run and its models
  are listed again. A failing hook is retried at each check; meanwhile the replica serves
  only what it lists.
* **Affinity**: `pin()` gives one debate a client that sends all its turns to one replica (the
  one with the fewest debates), so the turns share that replica's prefix cache. If the replica
  dies mid-debate the rest of the debate moves to another one. `affinity=False` spreads each
  request round-robin instead (for measuring what affinity is worth).
* **Versions**: a request naming a model goes only to replicas that list it; if none lists it,
  to any healthy one, whose answer (`ModelNotFound`) says so, as a single server would.
* Each replica has its own in-flight limit (`max_in_flight_per_replica`).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from debate.client import RetryPolicy, StrongModelClient
from debate.errors import StrongModelError, StrongModelUnavailable
from debate.openai_types import ChatMessage, Completion

log = logging.getLogger(__name__)

DEFAULT_CHECK_INTERVAL_S = 5.0
PROBE_TIMEOUT_S = 30.0  # generous: a busy replica answers slowly, and a timed-out check takes it out
NO_PROBE_RETRY = RetryPolicy(max_retries=0)

RecoveryHook = Callable[[str], Awaitable[None]]


@dataclass(frozen=True)
class ReplicaState:
    """What /healthz and /metrics show of one replica."""

    url: str
    healthy: bool
    in_flight: int
    debates: int
    models: tuple[str, ...]
    error: str


class Replica:
    """One server: a client for debates, a quick client for health checks, and its counters."""

    def __init__(self, url: str, *, api_key: str | None, retry: RetryPolicy, max_in_flight: int) -> None:
        self.url = url
        self.client = StrongModelClient(url, api_key=api_key, retry=retry, max_connections=max_in_flight)
        self.probe = StrongModelClient(url, api_key=api_key, retry=NO_PROBE_RETRY, timeout=PROBE_TIMEOUT_S)
        self.slots = asyncio.Semaphore(max_in_flight)
        self.healthy = False
        self.synced = False  # the recovery hook has run since the replica last answered
        self.models: frozenset[str] = frozenset()
        self.error = "not checked yet"
        self.in_flight = 0
        self.debates = 0

    def state(self) -> ReplicaState:
        return ReplicaState(
            self.url, self.healthy, self.in_flight, self.debates, tuple(sorted(self.models)), self.error
        )

    async def aclose(self) -> None:
        await self.client.aclose()
        await self.probe.aclose()


class ReplicaPool:
    """Healthy replicas of one strong model, with debate affinity and per-replica in-flight limits."""

    def __init__(
        self,
        targets: Sequence[str],
        *,
        api_key: str | None = None,
        max_in_flight_per_replica: int = 64,
        affinity: bool = True,
        check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
        retry: RetryPolicy = RetryPolicy(),
        on_recovery: RecoveryHook | None = None,
    ) -> None:
        if not targets:
            raise ValueError("a replica pool needs at least one base URL (W2S_VLLM_BASE_URL or W2S_VLLM_BASE_URLS)")
        self.targets = list(targets)
        self.affinity = affinity
        self.check_interval_s = check_interval_s
        self.max_in_flight_per_replica = max_in_flight_per_replica
        self._api_key = api_key
        self._retry = retry
        self._on_recovery = on_recovery
        self._replicas: dict[str, Replica] = {}
        self._turn = itertools.count()
        self._checker: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ReplicaPool:
        await self.refresh()
        self._checker = asyncio.create_task(self._check_forever())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._checker is not None:
            self._checker.cancel()
            await asyncio.gather(self._checker, return_exceptions=True)
        await asyncio.gather(*(replica.aclose() for replica in self._replicas.values()))

    @property
    def base_url(self) -> str:
        """The configured targets, for messages (a pool of one reads as its one URL)."""
        return ", ".join(self.targets)

    @property
    def max_in_flight(self) -> int:
        """Requests the whole pool takes at once: each replica's limit, summed."""
        return self.max_in_flight_per_replica * max(1, len(self._replicas))

    def states(self) -> list[ReplicaState]:
        return [replica.state() for replica in self._replicas.values()]

    async def refresh(self) -> None:
        """Re-resolve the targets and check every replica now."""
        for url in await asyncio.to_thread(resolve_targets, self.targets):
            if url not in self._replicas:
                self._replicas[url] = Replica(
                    url, api_key=self._api_key, retry=self._retry, max_in_flight=self.max_in_flight_per_replica
                )
        await asyncio.gather(*(self._check(replica) for replica in self._replicas.values()))

    @contextlib.asynccontextmanager
    async def pin(self) -> AsyncIterator[PinnedClient]:
        """A client for one debate: all its requests go to one replica while that one is healthy."""
        pinned = PinnedClient(self)
        try:
            yield pinned
        finally:
            pinned.release()

    async def check_ready(self, model: str) -> None:
        """Raise unless a healthy replica generates one token of `model`."""
        async with self.pin() as client:
            await client.chat(model, [ChatMessage("user", "Ready?")], max_tokens=1, temperature=0)

    def choose(self, model: str) -> Replica:
        """A healthy replica for a request naming `model`: serving it if any does; fewest debates first."""
        healthy = [replica for replica in self._replicas.values() if replica.healthy]
        if not healthy:
            raise StrongModelUnavailable(
                f"no healthy strong-model replica among {self.base_url}: {self._errors()}; start the servers "
                "or fix W2S_VLLM_BASE_URL(S)",
                url=self.base_url,
            )
        serving = [replica for replica in healthy if model in replica.models] or healthy
        if not self.affinity:
            return serving[next(self._turn) % len(serving)]
        return min(serving, key=lambda replica: (replica.debates, replica.in_flight))

    def mark_down(self, replica: Replica, error: StrongModelError) -> None:
        if replica.healthy:
            log.warning("replica %s taken out of the pool: %s", replica.url, error)
        replica.healthy, replica.synced, replica.error = False, False, str(error)

    async def _check(self, replica: Replica) -> None:
        """List the replica's models; until it is synced (new, or back from a failure), run the hook first."""
        try:
            if not replica.synced:
                await replica.probe.list_models()  # only a replica that answers is worth syncing
                await self._sync(replica)
            models = await replica.probe.list_models()
        except StrongModelError as exc:
            self.mark_down(replica, exc)
            return
        if not replica.healthy:
            log.info("replica %s is in the pool, serving %s", replica.url, sorted(models))
        replica.models, replica.healthy = frozenset(models), True
        replica.error = "" if replica.synced else replica.error

    async def _sync(self, replica: Replica) -> None:
        """Run the recovery hook; a failure leaves the replica unsynced (retried next check), not out.

        It still takes debates naming the models it lists, so a version it failed to load
        goes to the replicas that have it.
        """
        try:
            if self._on_recovery is not None:
                await self._on_recovery(replica.url)
        except Exception as exc:  # noqa: BLE001 - whatever the hook raises, the pool keeps checking
            replica.error = f"sync failed: {type(exc).__name__}: {exc}"
            log.warning("replica %s: %s", replica.url, replica.error)
            return
        replica.synced = True

    async def _check_forever(self) -> None:
        while True:
            await asyncio.sleep(self.check_interval_s)
            await self.refresh()

    def _errors(self) -> str:
        return "; ".join(f"{replica.url}: {replica.error}" for replica in self._replicas.values()) or "none resolved"


class PinnedClient:
    """The `chat` of one debate, routed by its pool; fails over to another replica when its own goes down."""

    def __init__(self, pool: ReplicaPool) -> None:
        self.pool = pool
        self.replica: Replica | None = None

    async def chat(self, model: str, messages: Sequence[ChatMessage], **sampling: Any) -> Completion:
        while True:
            replica = self._replica(model)
            try:
                return await _send(replica, model, messages, sampling)
            except StrongModelUnavailable as exc:
                self.pool.mark_down(replica, exc)
                self.release()  # the next attempt picks another healthy replica, or raises if none is left

    def release(self) -> None:
        if self.replica is not None:
            self.replica.debates -= 1
            self.replica = None

    def _replica(self, model: str) -> Replica:
        current = self.replica
        if self.pool.affinity and current is not None and current.healthy and model in current.models:
            return current
        self.release()
        self.replica = self.pool.choose(model)
        self.replica.debates += 1
        return self.replica


async def _send(replica: Replica, model: str, messages: Sequence[ChatMessage], sampling: dict[str, Any]) -> Completion:
    async with replica.slots:
        replica.in_flight += 1
        try:
            return await replica.client.chat(model, messages, **sampling)
        finally:
            replica.in_flight -= 1


def resolve_targets(targets: Sequence[str]) -> list[str]:
    """The replica URLs of `targets`: each one itself, or one per address if its host has several."""
    urls: list[str] = []
    for target in targets:
        urls += [url for url in expand_url(target) if url not in urls]
    return urls


def expand_url(url: str) -> list[str]:
    """`url` with its host replaced by each of its IPv4 addresses, when it resolves to more than one.

    One address (or an IP literal, or a name that does not resolve now) keeps `url` as it is:
    a single server, including "localhost", stays exactly the URL configured.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    with contextlib.suppress(ValueError):
        ipaddress.ip_address(host)
        return [url]
    try:
        infos = socket.getaddrinfo(host, parts.port or 80, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError:
        return [url]
    addresses = sorted({str(info[4][0]) for info in infos})
    if len(addresses) < 2:
        return [url]
    port = f":{parts.port}" if parts.port else ""
    return [urlunsplit(parts._replace(netloc=f"{address}{port}")) for address in addresses]
