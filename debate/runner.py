"""Run many debates at once against the strong model.

Each debate advances as soon as its own previous turn returns; there is no barrier
across the batch. A semaphore bounds the requests in flight (vLLM's continuous batching
pays only while many requests run together, and past its sweet spot the server's own CPU
work eats the gain: ~64 on a 2-core CPU vLLM, more on a GPU).

    async with StrongModelClient(url) as client:
        outcomes = await run_debates(client, specs, max_in_flight=64)

`client` may also be a `debate.pool.ReplicaPool`: each debate then runs on one replica of it
(`ReplicaPool.pin`), so its turns share that replica's prefix cache.

Errors about one example (`ContextTooLong`, `StrongModelBadResponse`) become a
`DebateFailure` in the results; errors about the server (`StrongModelUnavailable`,
`ModelNotFound`) stop the whole batch, since every other debate would fail the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncGenerator, Sequence

from debate.client import StrongModelClient
from debate.errors import ContextTooLong, StrongModelBadResponse
from debate.pool import PinnedClient, ReplicaPool
from debate.protocol import TurnRequest, finish_turn, next_turns
from debate.spec import DebateSpec
from debate.transcript import DebateFailure, DebateOutcome, DebateResult, Turn

DEFAULT_MAX_IN_FLIGHT = 64

StrongModel = StrongModelClient | ReplicaPool
ChatClient = StrongModelClient | PinnedClient


async def run_debate(client: StrongModel, spec: DebateSpec) -> DebateResult:
    """One debate, start to finish; raises the client's `StrongModelError`s."""
    # One debate never has more than a simultaneous round (two speeches) in flight.
    async with _debate_client(client) as debate_client:
        return await _timed_play(debate_client, spec, asyncio.Semaphore(2), [])


async def run_debates(
    client: StrongModel,
    specs: Sequence[DebateSpec],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> list[DebateOutcome]:
    """Outcomes of all `specs`, in the order of `specs`."""
    outcomes: list[DebateOutcome | None] = [None] * len(specs)
    async with contextlib.aclosing(stream_debates(client, specs, max_in_flight=max_in_flight)) as stream:
        async for position, outcome in stream:
            outcomes[position] = outcome
    return [outcome for outcome in outcomes if outcome is not None]


async def stream_debates(
    client: StrongModel,
    specs: Sequence[DebateSpec],
    *,
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
) -> AsyncGenerator[tuple[int, DebateOutcome], None]:
    """(position in `specs`, outcome) as each debate finishes, for writing rows early.

    Use under `contextlib.aclosing` so leaving the loop early cancels the rest.
    """
    if max_in_flight < 1:
        raise ValueError(f"max_in_flight must be >= 1, got {max_in_flight}")
    requests = asyncio.Semaphore(max_in_flight)
    # Admitting only as many debates as there are request slots makes the batch go
    # depth-first: started debates finish before new ones begin, so each debate's
    # prefix is still in vLLM's cache at its next turn and results arrive steadily,
    # instead of every debate's first turn queueing ahead of anyone's second.
    admission = asyncio.Semaphore(max_in_flight)

    async def one(position: int, spec: DebateSpec) -> tuple[int, DebateOutcome]:
        async with admission, _debate_client(client) as debate_client:
            return position, await _outcome(debate_client, spec, requests)

    tasks = [asyncio.create_task(one(position, spec)) for position, spec in enumerate(specs)]
    try:
        for finished in asyncio.as_completed(tasks):
            yield await finished
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _debate_client(client: StrongModel) -> contextlib.AbstractAsyncContextManager[ChatClient]:
    """What one debate talks to: the client itself, or a replica of the pool pinned for the debate."""
    if isinstance(client, ReplicaPool):
        return client.pin()
    return contextlib.nullcontext(client)


async def _outcome(client: ChatClient, spec: DebateSpec, requests: asyncio.Semaphore) -> DebateOutcome:
    turns: list[Turn] = []
    try:
        return await _timed_play(client, spec, requests, turns)
    except (ContextTooLong, StrongModelBadResponse) as exc:
        return DebateFailure(spec=spec, turns=tuple(turns), error_type=type(exc).__name__, message=str(exc))


async def _timed_play(
    client: ChatClient,
    spec: DebateSpec,
    requests: asyncio.Semaphore,
    turns: list[Turn],
) -> DebateResult:
    started = time.perf_counter()
    await _play(client, spec, requests, turns)
    return DebateResult(spec=spec, turns=tuple(turns), latency_s=time.perf_counter() - started)


async def _play(
    client: ChatClient,
    spec: DebateSpec,
    requests: asyncio.Semaphore,
    turns: list[Turn],
) -> None:
    """Append turns until the protocol is done; `turns` keeps what finished on error."""
    while pending := next_turns(spec, turns):
        turns.extend(await asyncio.gather(*(_speak(client, spec, request, requests) for request in pending)))


async def _speak(
    client: ChatClient,
    spec: DebateSpec,
    request: TurnRequest,
    requests: asyncio.Semaphore,
) -> Turn:
    async with requests:
        started = time.perf_counter()
        completion = await client.chat(
            spec.model,
            request.messages,
            temperature=spec.sampling.temperature,
            top_p=spec.sampling.top_p,
            max_tokens=spec.sampling.max_tokens,
            seed=request.seed,
        )
        latency_s = time.perf_counter() - started
    choice = completion.choices[0]
    return finish_turn(
        spec,
        request,
        choice.text,
        prompt_tokens=completion.usage.prompt_tokens,
        completion_tokens=completion.usage.completion_tokens,
        finish_reason=choice.finish_reason,
        latency_s=latency_s,
    )
