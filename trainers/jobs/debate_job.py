"""The `debate` job: run a shard of debates against the strong model and store each as it ends.

Resumable: debates already stored as succeeded are skipped, so a job re-run after a crash
or lease loss only does what is left. While the strong model is unreachable the job waits
(heartbeating) and retries instead of burning its attempts: nothing is lost when vLLM
restarts.
"""

import asyncio
import contextlib
import logging
import time
from typing import Any

from debate import (
    DebateFailure,
    DebateSpec,
    ModelNotFound,
    StrongModelClient,
    StrongModelUnavailable,
    stream_debates,
)
from service.store.debate_rows import find_debate, save_debate
from trainers.errors import PermanentJobError
from trainers.jobs.debate_shards import debate_items
from trainers.jobs.payloads import job_payload
from trainers.worker import Handler, JobContext

log = logging.getLogger(__name__)

MAX_UNAVAILABLE_WAIT_S = 30.0


def debate_handler(base_url: str, *, api_key: str | None = None, max_in_flight: int = 64,
                   unavailable_wait_s: float = 2.0) -> Handler:
    def handle(ctx: JobContext) -> dict[str, Any]:
        return asyncio.run(_run(ctx, base_url, api_key, max_in_flight, unavailable_wait_s))

    return handle


async def _run(ctx: JobContext, base_url: str, api_key: str | None, max_in_flight: int,
               wait_s: float) -> dict[str, Any]:
    payload = job_payload(ctx)
    with ctx.sessions() as session:
        items = debate_items(session, payload)
    run_id = payload.run_id
    statuses = _stored_statuses(ctx, items)
    counts = {"succeeded": statuses.count("succeeded"), "failed": statuses.count("failed")}
    pending = _unstored(items, statuses)
    ctx.report(counts["succeeded"] + counts["failed"], len(items), **counts)
    async with StrongModelClient(base_url, api_key=api_key) as client:
        while pending:
            try:
                await _stream(ctx, client, pending, run_id, counts, len(items), max_in_flight)
            except StrongModelUnavailable as exc:
                log.warning("job %s: strong model unavailable, retrying in %.0fs: %s", ctx.job.id, wait_s, exc)
                ctx.progress["waiting_for_strong_model"] = str(exc)
                await _sleep_checked(ctx, wait_s)
                wait_s = min(wait_s * 2, MAX_UNAVAILABLE_WAIT_S)
            except ModelNotFound as exc:
                raise PermanentJobError(str(exc)) from exc
            pending = _unstored(items, _stored_statuses(ctx, items))
    return counts


def _stored_statuses(ctx: JobContext, items: list[tuple[int, DebateSpec]]) -> list[str | None]:
    with ctx.sessions() as session:
        return [getattr(find_debate(session, example_id, spec), "status", None) for example_id, spec in items]


def _unstored(items: list[tuple[int, DebateSpec]], statuses: list[str | None]) -> list[tuple[int, DebateSpec]]:
    """Items with no stored outcome yet (a stored failure is final for its example)."""
    return [item for item, status in zip(items, statuses, strict=True) if status is None]


async def _stream(ctx: JobContext, client: StrongModelClient, pending: list[tuple[int, DebateSpec]],
                  run_id: int | None, counts: dict[str, int], total: int, max_in_flight: int) -> None:
    specs = [spec for _, spec in pending]
    async with contextlib.aclosing(stream_debates(client, specs, max_in_flight=max_in_flight)) as stream:
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
