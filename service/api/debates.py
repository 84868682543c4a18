"""/v1/debates: run debates synchronously, read them, page through them, export them."""

from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from sqlalchemy import Select, select
from sqlalchemy.orm import selectinload

from debate import ContextTooLong, DebateFailure, DebateOutcome, run_debates, sample_specs
from service.api.deps import ClientDep, MetricsDep, SessionDep, SettingsDep, require_api_key
from service.api.schemas import DebateCreate, DebateList, DebatePublic, DebateWithExample, ExamplePublic, TurnPublic, spec_for
from service.store.debate_rows import add_example, content_id, save_debate
from service.store.models import Debate, Example

router = APIRouter(prefix="/v1/debates", tags=["debates"], dependencies=[Depends(require_api_key)])

EXPORT_CHUNK = 500


@router.post("", status_code=201, response_model=DebateList)
async def create_debates(body: DebateCreate, request: Request, client: ClientDep, settings: SettingsDep,
                         metrics: MetricsDep) -> DebateList:
    """Run one debate (or `n_samples`) on the strong model now, store it and return it."""
    specs = sample_specs(spec_for(body, body, settings.strong_model), body.n_samples)
    outcomes = await run_debates(client, specs)
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


def _store(sessions, body: DebateCreate, outcomes: list[DebateOutcome]) -> list[DebatePublic]:  # noqa: ANN001
    with sessions.begin() as session:
        example = add_example(
            session, run_id=None, task=body.task, candidate_id="candidate", question=body.question,
            candidate=body.candidate_answer, context=body.context, label=body.label,
            source_id=body.source_id or content_id(body.task, body.question, body.context, body.candidate_answer),
        )
        debates = [save_debate(session, example.id, outcome) for outcome in outcomes]
        return [_public(debate, True) for debate in debates]


def _filtered(run_id: int | None, batch_id: int | None, protocol: str | None, model: str | None,
              status: str | None) -> Select:
    query = select(Debate).order_by(Debate.id)
    for column, value in ((Debate.run_id, run_id), (Debate.run_id, batch_id), (Debate.protocol, protocol),
                          (Debate.model, model), (Debate.status, status)):
        if value is not None:
            query = query.where(column == value)
    return query


class DebateFilters:
    def __init__(self, run_id: int | None = None, batch_id: int | None = None, protocol: str | None = None,
                 model: str | None = None, status: str | None = None) -> None:
        self.query = _filtered(run_id, batch_id, protocol, model, status)


FiltersDep = Annotated[DebateFilters, Depends()]


@router.get("", response_model=DebateList)
def list_debates(session: SessionDep, filters: FiltersDep, limit: Annotated[int, Query(ge=1, le=500)] = 50,
                 cursor: Annotated[str | None, Query(pattern=r"^\d*$", description="next_cursor of the previous page")] = None,
                 include_turns: bool = False) -> DebateList:
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
    return StreamingResponse(_export_lines(request.app.state.sessions, filters.query),
                             media_type="application/x-ndjson")


def _export_lines(sessions, query: Select) -> Iterator[str]:  # noqa: ANN001
    last_id = 0
    while True:
        with sessions() as session:
            rows = session.scalars(query.where(Debate.id > last_id).limit(EXPORT_CHUNK)
                                   .options(selectinload(Debate.turns))).all()
            if not rows:
                return
            examples = session.scalars(select(Example).where(Example.id.in_({row.example_id for row in rows})))
            by_id = {example.id: example for example in examples}
            for row in rows:
                yield _with_example(row, by_id[row.example_id]).model_dump_json() + "\n"
            last_id = rows[-1].id


@router.get("/{debate_id}", response_model=DebateWithExample)
def get_debate(debate_id: int, session: SessionDep) -> DebateWithExample:
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
