"""/v1/debates: run debates synchronously, read them, page through them, export them.

A synchronous request is bounded: its token budget (W2S_MAX_DEBATE_TOKENS) is checked first, and its
debates are stopped, with nothing stored, when the client disconnects (no one would read them) or after
W2S_DEBATE_TIMEOUT_S.
"""

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from debate import ContextTooLong, DebateFailure, DebateOutcome, run_debates, sample_specs
from service.api.deps import ClientDep, MetricsDep, SessionDep, SettingsDep, require_api_key
from service.api.errors import ApiError
from service.api.limits import IdCursor, IdPath, IdQuery
from service.api.schemas import (
    DebateCreate,
    DebateList,
    DebatePublic,
    DebateWithExample,
    ExamplePublic,
    TurnPublic,
    spec_for,
)
from service.store.debate_rows import add_example, content_id, save_debate
from service.store.models import Debate, Example

router = APIRouter(prefix="/v1/debates", tags=["debates"], dependencies=[Depends(require_api_key)])

EXPORT_CHUNK = 500
T = TypeVar("T")


@router.post("", status_code=201, response_model=DebateList)
async def create_debates(
    body: DebateCreate, request: Request, client: ClientDep, settings: SettingsDep, metrics: MetricsDep
) -> DebateList:
    """Run one debate (or `n_samples`) on the strong model now, store it and return it."""
    _check_budget(body, settings.max_debate_tokens)
    specs = sample_specs(spec_for(body, body, settings.strong_model), body.n_samples)
    outcomes = await _while_client_waits(request, run_debates(client, specs), settings.debate_timeout_s)
    too_long = [o for o in outcomes if isinstance(o, DebateFailure) and o.error_type == ContextTooLong.__name__]
    if too_long and not too_long[0].turns:  # the example alone does not fit: reject, store nothing
        raise ContextTooLong(too_long[0].message, url=client.base_url)
    debates = await run_in_threadpool(_store, request.app.state.sessions, body, outcomes)
    for outcome in outcomes:
        status = "failed" if isinstance(outcome, DebateFailure) else "succeeded"
        metrics.debates.labels(outcome.spec.protocol, status).inc()
        metrics.tokens.labels("prompt").inc(sum(t.prompt_tokens for t in outcome.turns))
        metrics.tokens.labels("completion").inc(sum(t.completion_tokens for t in outcome.turns))
    return DebateList(data=debates)


def _check_budget(body: DebateCreate, max_tokens: int) -> None:
    asked = body.n_samples * body.turns * body.sampling.max_tokens
    if asked > max_tokens:
        raise ApiError(
            422,
            f"n_samples x turns x sampling.max_tokens = {asked} tokens, over this server's limit of "
            f"{max_tokens} per request (W2S_MAX_DEBATE_TOKENS); use /v1/debate-batches for more",
            "invalid_request",
            "body.n_samples",
        )


async def _while_client_waits(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """`work`'s result; cancelled (its requests to vLLM closed) if the client leaves or the timeout passes."""
    task, gone = asyncio.ensure_future(work), asyncio.ensure_future(_disconnect(request))
    try:
        done, _ = await asyncio.wait({task, gone}, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for pending in (task, gone):
            pending.cancel()
    if task in done:
        return task.result()
    if gone in done:
        raise ApiError(
            499, "the client closed the request; its debates were stopped and not stored", "client_closed_request"
        )
    raise ApiError(
        504,
        f"the debates took longer than {timeout_s:g} s (W2S_DEBATE_TIMEOUT_S) and were stopped; "
        "nothing was stored. Ask for fewer turns or tokens, or use /v1/debate-batches",
        "timeout",
    )


async def _disconnect(request: Request) -> None:
    """Returns when the client has gone. The body is read by now, so the next message is the disconnect
    (`request.is_disconnected()` misses it behind `@app.middleware` layers, which lose an instant receive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _store(sessions, body: DebateCreate, outcomes: list[DebateOutcome]) -> list[DebatePublic]:  # noqa: ANN001
    with sessions.begin() as session:
        example = add_example(
            session,
            run_id=None,
            task=body.task,
            candidate_id="candidate",
            question=body.question,
            candidate=body.candidate_answer,
            context=body.context,
            label=body.label,
            source_id=body.source_id or content_id(body.task, body.question, body.context, body.candidate_answer),
        )
        debates = [save_debate(session, example.id, outcome) for outcome in outcomes]
        return [_public(debate, True) for debate in debates]


def _filtered(
    run_id: int | None, batch_id: int | None, protocol: str | None, model: str | None, status: str | None
) -> Select:
    query = select(Debate).order_by(Debate.id)
    for column, value in (
        (Debate.run_id, run_id),
        (Debate.run_id, batch_id),
        (Debate.protocol, protocol),
        (Debate.model, model),
        (Debate.status, status),
    ):
        if value is not None:
            query = query.where(column == value)
    return query


class DebateFilters:
    def __init__(
        self,
        run_id: IdQuery = None,
        batch_id: IdQuery = None,
        protocol: str | None = None,
        model: str | None = None,
        status: str | None = None,
    ) -> None:
        self.query = _filtered(run_id, batch_id, protocol, model, status)


FiltersDep = Annotated[DebateFilters, Depends()]


@router.get("", response_model=DebateList)
def list_debates(
    session: SessionDep,
    filters: FiltersDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    cursor: IdCursor = None,
    include_turns: bool = False,
) -> DebateList:
    """Debates in id order, `limit` per page; follow `next_cursor`."""
    query = filters.query.limit(limit + 1)
    if cursor:  # empty = first page
        query = query.where(Debate.id > int(cursor))
    if include_turns:
        query = query.options(selectinload(Debate.turns))
    rows = session.scalars(query).all()
    page = [_public(row, include_turns) for row in rows[:limit]]
    return DebateList(data=page, next_cursor=str(rows[limit - 1].id) if len(rows) > limit else None)


@router.get("/export.jsonl", response_class=StreamingResponse)
def export_debates(request: Request, filters: FiltersDep) -> StreamingResponse:
    """Every matching debate with its example and turns, one JSON object per line, streamed."""
    return StreamingResponse(
        _export_lines(request.app.state.sessions, filters.query), media_type="application/x-ndjson"
    )


def _export_lines(sessions, query: Select) -> Iterator[str]:  # noqa: ANN001
    last_id = 0
    while True:
        with sessions() as session:
            rows = session.scalars(
                query.where(Debate.id > last_id).limit(EXPORT_CHUNK).options(selectinload(Debate.turns))
            ).all()
            if not rows:
                return
            examples = session.scalars(select(Example).where(Example.id.in_({row.example_id for row in rows})))
            by_id = {example.id: example for example in examples}
            for row in rows:
                yield _with_example(row, by_id[row.example_id]).model_dump_json() + "\n"
            last_id = rows[-1].id


@router.get("/{debate_id}", response_model=DebateWithExample)
def get_debate(debate_id: IdPath, session: SessionDep) -> DebateWithExample:
    debate = session.get(Debate, debate_id, options=[selectinload(Debate.turns)])
    if debate is None:
        raise HTTPException(404, f"no debate with id {debate_id}")
    return _with_example(debate, session.get(Example, debate.example_id))


def _with_example(debate: Debate, example: Example) -> DebateWithExample:
    return DebateWithExample(**_public(debate, True).__dict__, example=ExamplePublic.model_validate(example))


def _public(debate: Debate, with_turns: bool) -> DebatePublic:
    """Turns only when asked for (and loaded): a list page should not pull every transcript."""
    columns = {name: getattr(debate, name) for name in DebatePublic.model_fields if name != "turns"}
    turns = [TurnPublic.model_validate(turn) for turn in debate.turns] if with_turns else None
    return DebatePublic(**columns, turns=turns)
