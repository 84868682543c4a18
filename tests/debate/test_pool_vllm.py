"""A pool of two real vLLM servers (tiny model, CPU, loopback): affinity, adapters everywhere, failover, recovery.

Run: .venv/bin/python -m pytest tests/debate/test_pool_vllm.py
(starts two servers for the module, and restarts one: ~3-5 min on 2 busy CPU cores).

Which server ran which turn is read from the servers' own request logs (`--enable-log-requests`
logs each request's sampling params, whose seed names the debate and the turn).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from debate import (
    DebateResult,
    DebateSpec,
    ReplicaPool,
    RetryPolicy,
    SamplingParams,
    request_seed,
    run_debates,
    stream_debates,
)
from service.local_vllm import LocalVLLM, find_free_port
from service.settings import Settings
from service.store import Model, make_engine, make_session_factory
from service.store.migrate import upgrade
from service.store.replica_adapters import loaded_by_replica
from tests.support.api_server import running_api
from tests.support.vllm_fixtures import start_test_vllm
from trainers.strong import register_version
from trainers.strong.replicas import publish_everywhere, sync_replica

pytestmark = pytest.mark.vllm

TURNS = 3
LOG_REQUESTS = ("--enable-log-requests",)


@pytest.fixture(scope="module")
def servers(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[LocalVLLM]]:
    """Two servers started side by side; a test may replace one (the list is torn down as it ends)."""
    with ThreadPoolExecutor(2) as starting:
        started = list(
            starting.map(lambda _: start_test_vllm(tiny_model_dir, tmp_path_factory, extra_args=LOG_REQUESTS), range(2))
        )
    yield started
    for server in started:
        server.stop()


@pytest.fixture(scope="module")
def sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    url = f"sqlite:///{tmp_path_factory.mktemp('pool-db') / 'w2s.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_session_factory(engine)
    engine.dispose()


def _specs(first_seed: int, count: int, model: str = "strong", max_tokens: int = 8) -> list[DebateSpec]:
    return [
        DebateSpec(
            question=f"Question {seed}: what do plants take in?",
            candidate_answer="Carbon dioxide",
            model=model,
            seed=seed,
            sampling=SamplingParams(max_tokens=max_tokens),
        )
        for seed in range(first_seed, first_seed + count)
    ]


def _turn_servers(servers: list[LocalVLLM], debate_seed: int) -> list[set[int]]:
    """For each turn of the debate, the servers whose request log has its seed."""
    logs = [server.log_path.read_text(errors="replace") for server in servers]
    return [
        {index for index, log in enumerate(logs) if f"seed={request_seed(debate_seed, turn)}," in log}
        for turn in range(TURNS)
    ]


def _debates(pool_targets: list[str], specs: list[DebateSpec], **options: object) -> list[object]:
    async def go() -> list[object]:
        async with ReplicaPool(pool_targets, max_in_flight_per_replica=4, **options) as pool:
            return await run_debates(pool, specs, max_in_flight=pool.max_in_flight)

    return asyncio.run(go())


def _urls(servers: list[LocalVLLM]) -> list[str]:
    return [server.base_url for server in servers]


def test_debates_spread_over_both_servers_with_each_debate_on_one(servers: list[LocalVLLM]) -> None:
    specs = _specs(1000, 16)
    outcomes = _debates(_urls(servers), specs)
    assert all(isinstance(outcome, DebateResult) for outcome in outcomes)
    placements = {spec.seed: _turn_servers(servers, spec.seed) for spec in specs}
    homes = {seed: turns[0] for seed, turns in placements.items()}
    assert all(len(home) == 1 and turns == [home] * TURNS for home, turns in zip(homes.values(), placements.values()))
    assert {index for home in homes.values() for index in home} == {0, 1}  # both servers took debates

    # The same check catches a pool that spreads turns: round-robin splits debates across servers.
    spread = _specs(2000, 8)
    _debates(_urls(servers), spread, affinity=False)
    assert any(len(set().union(*_turn_servers(servers, spec.seed))) == 2 for spec in spread)


def test_pool_with_a_dead_url_still_works(servers: list[LocalVLLM]) -> None:
    dead = f"http://127.0.0.1:{find_free_port()}"

    async def go() -> tuple[list[object], dict[str, bool]]:
        async with ReplicaPool([dead, servers[0].base_url]) as pool:
            outcomes = await run_debates(pool, _specs(3000, 4))
            return outcomes, {state.url: state.healthy for state in pool.states()}

    outcomes, health = asyncio.run(go())
    assert all(isinstance(outcome, DebateResult) for outcome in outcomes) and len(outcomes) == 4
    assert health == {dead: False, servers[0].base_url: True}


def test_published_version_is_listed_by_both_and_recorded_per_replica(
    servers: list[LocalVLLM], sessions: sessionmaker[Session], lora_dir: Path
) -> None:
    version_id = _register(sessions, lora_dir)
    published = publish_everywhere(sessions, version_id, _urls(servers))
    assert all(published.served_name in _listed(server) for server in servers)
    assert _recorded(sessions) == {(url, published.served_name) for url in _urls(servers)}


def test_healthz_and_metrics_show_each_replica(servers: list[LocalVLLM], tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'api.db'}"
    upgrade(url)
    settings = Settings(_env_file=None, database_url=url, vllm_base_urls=_urls(servers), api_keys=["key"])
    with running_api(settings) as api_url, httpx.Client(base_url=api_url, timeout=60) as api:
        health = api.get("/healthz", headers={"Authorization": "Bearer key"}).json()["checks"]["strong_model"]
        anonymous = api.get("/healthz").json()
        metrics = api.get("/metrics").text
    assert [(r["url"], r["healthy"], r["in_flight"]) for r in health["replicas"]] == [
        (server.base_url, True, 0) for server in servers
    ]
    assert all("pool-strong-v1" in replica["models"] for replica in health["replicas"])  # published above
    assert health["ok"] is True and anonymous == {"status": "ok"}  # nothing internal without a key
    for server in servers:
        assert f'w2s_vllm_replica_healthy{{replica="{server.base_url}"}} 1.0' in metrics
        assert f'w2s_vllm_replica_model_loaded{{model="pool-strong-v1",replica="{server.base_url}"}} 1.0' in metrics


def test_killed_server_debates_finish_on_the_other_and_its_restart_gets_the_adapters_first(
    servers: list[LocalVLLM],
    sessions: sessionmaker[Session],
    tiny_model_dir: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    served = "pool-strong-v1"  # published by the test above
    batch, after = _specs(4000, 24, model=served, max_tokens=24), _specs(5000, 12, model=served)
    port = int(servers[1].base_url.rsplit(":", 1)[1])

    def restart() -> LocalVLLM:
        servers[1] = start_test_vllm(tiny_model_dir, tmp_path_factory, port=port, extra_args=LOG_REQUESTS)
        return servers[1]

    positions, results, outcomes = asyncio.run(_kill_then_restart(servers, sessions, batch, after, restart))
    assert sorted(positions) == list(range(len(batch)))  # every debate exactly once: none lost, none twice
    assert all(isinstance(result, DebateResult) and len(result.turns) == TURNS for result in results)
    assert all(isinstance(outcome, DebateResult) for outcome in outcomes)
    restarted_turns = [spec.seed for spec in after if _turn_servers(servers, spec.seed)[0] == {1}]
    assert restarted_turns  # the restarted server took debates naming the adapter ...
    log = servers[1].log_path.read_text(errors="replace")
    first_debate = min(log.index(f"seed={request_seed(seed, 0)},") for seed in restarted_turns)
    assert log.index("POST /v1/load_lora_adapter") < first_debate  # ... after it was given the adapter
    assert (servers[1].base_url, served) in _recorded(sessions)


async def _kill_then_restart(
    servers: list[LocalVLLM],
    sessions: sessionmaker[Session],
    batch: list[DebateSpec],
    after: list[DebateSpec],
    restart: Callable[[], LocalVLLM],
) -> tuple[list[int], ...]:
    """One long-lived pool: a batch during which server 1 is SIGKILLed; restart it; a batch after it is back."""
    async with _syncing_pool(_urls(servers), sessions) as pool:
        positions, results = await _stream_killing(pool, servers[1], batch)
        assert not _health(pool)[servers[1].base_url]
        await asyncio.to_thread(restart)
        await _until_healthy(pool, servers[1].base_url)
        outcomes = await run_debates(pool, after, max_in_flight=pool.max_in_flight)
    return positions, results, outcomes


async def _stream_killing(pool: ReplicaPool, victim: LocalVLLM, specs: list[DebateSpec]) -> tuple[list[int], list]:
    positions: list[int] = []
    results: list[object] = []
    async with contextlib.aclosing(stream_debates(pool, specs, max_in_flight=pool.max_in_flight)) as stream:
        async for position, outcome in stream:
            positions.append(position)
            results.append(outcome)
            if len(positions) == 4:
                os.killpg(victim.process.pid, signal.SIGKILL)
    return positions, results


def _syncing_pool(urls: list[str], sessions: sessionmaker[Session]) -> ReplicaPool:
    async def sync(url: str) -> None:
        await asyncio.to_thread(sync_replica, sessions, url)

    return ReplicaPool(
        urls,
        max_in_flight_per_replica=4,
        check_interval_s=1.0,
        on_recovery=sync,
        retry=RetryPolicy(max_retries=1, backoff_base_s=0.2),
    )


async def _until_healthy(pool: ReplicaPool, url: str, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not _health(pool)[url]:
        assert time.monotonic() < deadline, f"{url} did not come back into the pool: {pool.states()}"
        await asyncio.sleep(0.5)


def _health(pool: ReplicaPool) -> dict[str, bool]:
    return {state.url: state.healthy for state in pool.states()}


def _register(sessions: sessionmaker[Session], adapter: Path) -> int:
    with sessions.begin() as session:
        model = Model(name="pool-strong", role="strong", base="tiny", condition="w2s", seed=0)
        session.add(model)
        return register_version(session, model, adapter).id


def _listed(server: LocalVLLM) -> set[str]:
    return {card["id"] for card in httpx.get(f"{server.base_url}/v1/models", timeout=30).json()["data"]}


def _recorded(sessions: sessionmaker[Session]) -> set[tuple[str, str]]:
    with sessions() as session:
        return {(url, name) for url, names in loaded_by_replica(session).items() for name in names}
