"""The `debate` job: run a shard of debates against the strong model and store each as it ends.

Resumable: debates already stored as succeeded are skipped, so a job re-run after a crash
or lease loss only does what is left. While the strong model is unreachable the job waits
(heartbeating) and retries instead of burning its attempts: nothing is lost when vLLM
restarts.

The strong model is a `debate.ReplicaPool` (one URL is a pool of one): each debate runs on one
replica; a replica that dies is left for the others, and one that comes back is first given
the published adapters it lacks (`trainers.strong.replicas.sync_replica`).
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from debate import (
    DebateFailure,
    DebateSpec,
    ModelNotFound,
    ReplicaPool,
    StrongModelUnavailable,
    stream_debates,
)
from debate.pool import DEFAULT_CHECK_INTERVAL_S
from service.store.debate_rows import find_debate, save_debate
from trainers.errors import PermanentJobError
from trainers.jobs.debate_shards import debate_items
from trainers.jobs.payloads import job_payload
from trainers.strong.replicas import sync_replica
from trainers.worker import Handler, JobContext

log = logging.getLogger(__name__)

MAX_UNAVAILABLE_WAIT_S = 30.0


@dataclass(frozen=True)
class PoolOptions:
    targets: tuple[str, ...]  # base URLs of the strong model's replicas (one: a pool of one)
    api_key: str | None = None
    max_in_flight: int = 64  # requests in flight per replica
    affinity: bool = True  # all turns of a debate on one replica
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S


def debate_handler(
    targets: str | Sequence[str],
    *,
    api_key: str | None = None,
    max_in_flight: int = 64,
    unavailable_wait_s: float = 2.0,
    affinity: bool = True,
    check_interval_s: float = DEFAULT_CHECK_INTERVAL_S,
) -> Handler:
    """Debate jobs against the replicas `targets` (a base URL or several); `max_in_flight` is per replica."""
    options = PoolOptions(
        (targets,) if isinstance(targets, str) else tuple(targets), api_key, max_in_flight, affinity, check_interval_s
    )

    def handle(ctx: JobContext) -> dict[str, Any]:
        return asyncio.run(_run(ctx, options, unavailable_wait_s))

    return handle


async def _run(ctx: JobContext, options: PoolOptions, wait_s: float) -> dict[str, Any]:
    payload = job_payload(ctx)
    with ctx.sessions() as session:
        items = debate_items(session, payload)
    run_id = payload.run_id
    statuses = _stored_statuses(ctx, items)
    counts = {"succeeded": statuses.count("succeeded"), "failed": statuses.count("failed")}
    pending = _unstored(items, statuses)
    ctx.report(counts["succeeded"] + counts["failed"], len(items), **counts)
    async with _pool(ctx, options) as pool:
        while pending:
            try:
                await _stream(ctx, pool, pending, run_id, counts, len(items))
            except StrongModelUnavailable as exc:
                log.warning("job %s: strong model unavailable, retrying in %.0fs: %s", ctx.job.id, wait_s, exc)
                ctx.progress["waiting_for_strong_model"] = str(exc)
                await _sleep_checked(ctx, wait_s)
                await pool.refresh()  # not only at the next periodic check: a replica back now is used now
                wait_s = min(wait_s * 2, MAX_UNAVAILABLE_WAIT_S)
            except ModelNotFound as exc:
                raise PermanentJobError(str(exc)) from exc
            pending = _unstored(items, _stored_statuses(ctx, items))
    return counts


def _pool(ctx: JobContext, options: PoolOptions) -> ReplicaPool:
    """The replicas, each brought up to date with this database's published versions before it serves."""

    async def sync(url: str) -> None:
        await asyncio.to_thread(sync_replica, ctx.sessions, url, api_key=options.api_key)

    return ReplicaPool(
        options.targets,
        api_key=options.api_key,
        max_in_flight_per_replica=options.max_in_flight,
        affinity=options.affinity,
        check_interval_s=options.check_interval_s,
        on_recovery=sync,
    )


def _stored_statuses(ctx: JobContext, items: list[tuple[int, DebateSpec]]) -> list[str | None]:
    with ctx.sessions() as session:
        return [getattr(find_debate(session, example_id, spec), "status", None) for example_id, spec in items]


def _unstored(items: list[tuple[int, DebateSpec]], statuses: list[str | None]) -> list[tuple[int, DebateSpec]]:
    """Items with no stored outcome yet (a stored failure is final for its example)."""
    return [item for item, status in zip(items, statuses, strict=True) if status is None]


async def _stream(
    ctx: JobContext,
    pool: ReplicaPool,
    pending: list[tuple[int, DebateSpec]],
    run_id: int | None,
    counts: dict[str, int],
    total: int,
) -> None:
    specs = [spec for _, spec in pending]
    async with contextlib.aclosing(stream_debates(pool, specs, max_in_flight=pool.max_in_flight)) as stream:
        async for position, outcome in stream:
            ctx.check()
            with ctx.sessions.begin() as session:
                save_debate(session, pending[position][0], outcome, run_id=run_id)
            counts["failed" if isinstance(outcome, DebateFailure) else "succeeded"] += 1
            ctx.report(counts["succeeded"] + counts["failed"], total, **counts)


async def _sleep_checked(ctx: JobContext, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        ctx.check()
        await asyncio.sleep(min(0.5, left))
