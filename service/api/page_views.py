"""What the browser pages show, read from the database: runs, one run, a filtered page of debates, one debate.

Plain values for the templates (templates/*.html); the routes are in pages.py.
"""

import math
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from markupsafe import Markup, escape
from pydantic import BaseModel, Field, model_validator
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session, selectinload

from service.api.limits import MAX_ID
from service.store.models import DEBATE_STATUSES, Debate, Example, Label, Model, Run
from service.store.runs import StageProgress, refresh_run, run_stages
from trainers.jobs.payloads import JOB_KINDS
from trainers.pipeline.budgets import ingest_notes
from trainers.runs import run_report_table

PER_PAGE = 25
QUOTE_TAGS = re.compile(r"<(v_quote|u_quote|quote)>(.*?)</\1>", re.DOTALL | re.IGNORECASE)
QUOTE_CLASSES = {"v_quote": "quote verified", "u_quote": "quote unverified", "quote": "quote"}
QUOTE_TITLES = {"v_quote": "found in the passage", "u_quote": "NOT found in the passage", "quote": "not checked"}


@dataclass(frozen=True)
class Paging:
    """Page `page` (1-based) of `total` rows, PER_PAGE a page."""

    page: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / PER_PAGE))

    @property
    def offset(self) -> int:
        return (self.page - 1) * PER_PAGE

    @property
    def last_shown(self) -> int:
        return min(self.total, self.offset + PER_PAGE)


def highlight_quotes(content: str) -> Markup:
    """Turn text, escaped, with each quote a <mark>: verified, unverified, or not checked."""
    parts, start = [], 0
    for match in QUOTE_TAGS.finditer(content):
        tag = match.group(1).lower()
        parts += [
            escape(content[start : match.start()]),
            Markup('<mark class="{}" title="quote {}">{}</mark>').format(
                QUOTE_CLASSES[tag], QUOTE_TITLES[tag], match.group(2)
            ),
        ]
        start = match.end()
    parts.append(escape(content[start:]))
    return Markup("").join(parts)


@dataclass(frozen=True)
class RunSummary:
    run: Run
    task: str | None
    stages: list[StageProgress]
    debates: int


def list_runs(session: Session, page: int) -> tuple[list[RunSummary], Paging]:
    """Experiment runs, newest first, with their stages' progress."""
    experiments = select(Run).where(Run.kind == "experiment")
    paging = Paging(page, _count(session, experiments))
    runs = session.scalars(experiments.order_by(Run.id.desc()).offset(paging.offset).limit(PER_PAGE)).all()
    counts = dict(
        session.execute(
            select(Debate.run_id, func.count()).where(Debate.run_id.in_([r.id for r in runs])).group_by(Debate.run_id)
        ).all()
    )
    return [_summary(session, run, counts.get(run.id, 0)) for run in runs], paging


def _summary(session: Session, run: Run, debates: int) -> RunSummary:
    refresh_run(session, run)
    return RunSummary(run, run.config.get("task"), run_stages(session, run.id, JOB_KINDS), debates)


@dataclass(frozen=True)
class RunDetail:
    summary: RunSummary
    notes: list[str]
    table_headers: list[str]
    table_rows: list[list[str]]
    report_notes: list[str]


def run_detail(session: Session, run_id: int) -> RunDetail | None:
    run = session.get(Run, run_id)
    if run is None or run.kind != "experiment":
        return None
    debates = session.scalar(select(func.count()).where(Debate.run_id == run.id)) or 0
    headers, rows, notes = run_report_table(session, run.id)
    return RunDetail(_summary(session, run, debates), ingest_notes(session, run.id), headers, rows, notes)


class DebateFilters(BaseModel):
    """The debate list's form; an empty field means 'any'."""

    run_id: int | None = Field(None, ge=1, le=MAX_ID)
    protocol: str | None = None
    status: str | None = None
    model: str | None = None
    seed: int | None = Field(None, ge=0, le=MAX_ID)
    q: str | None = Field(None, max_length=200, description="Text the question contains.")
    page: int = Field(1, ge=1, le=MAX_ID)

    @model_validator(mode="before")
    @classmethod
    def _blank_is_any(cls, data: Any) -> Any:
        return {key: value for key, value in data.items() if value != ""} if isinstance(data, dict) else data

    def apply(self, query: Select) -> Select:
        for column, value in (
            (Debate.run_id, self.run_id),
            (Debate.protocol, self.protocol),
            (Debate.status, self.status),
            (Debate.model, self.model),
            (Debate.seed, self.seed),
        ):
            if value is not None:
                query = query.where(column == value)
        if self.q:
            query = query.where(Example.question.icontains(self.q, autoescape=True))
        return query

    def query_string(self, page: int) -> str:
        """The filters (non-empty ones) with another page number, for the paging links."""
        return urlencode({**self.model_dump(exclude_none=True), "page": page})


@dataclass(frozen=True)
class DebateRow:
    debate: Debate
    question: str
    candidate: str
    label: int | None


@dataclass(frozen=True)
class FilterChoices:
    protocols: list[str]
    statuses: tuple[str, ...]
    models: list[str]


def list_debates(session: Session, filters: DebateFilters) -> tuple[list[DebateRow], Paging, FilterChoices]:
    """A page of debates (id order) with their example's question, and the values the filters can take."""
    matching = filters.apply(
        select(Debate, Example.question, Example.candidate, Example.label).join(
            Example, Example.id == Debate.example_id
        )
    )
    paging = Paging(filters.page, _count(session, matching))
    rows = session.execute(matching.order_by(Debate.id).offset(paging.offset).limit(PER_PAGE)).all()
    choices = FilterChoices(_distinct(session, Debate.protocol), DEBATE_STATUSES, _distinct(session, Debate.model))
    return [DebateRow(*row) for row in rows], paging, choices


@dataclass(frozen=True)
class WeakLabel:
    model: str
    soft_label: float
    hard_label: int


@dataclass(frozen=True)
class DebateDetail:
    debate: Debate
    example: Example
    weak_labels: list[WeakLabel]


def debate_detail(session: Session, debate_id: int) -> DebateDetail | None:
    debate = session.get(Debate, debate_id, options=[selectinload(Debate.turns)])
    if debate is None:
        return None
    return DebateDetail(debate, session.get(Example, debate.example_id), weak_labels(session, debate))


def weak_labels(session: Session, debate: Debate) -> list[WeakLabel]:
    """The labels the run's weak members that read this transcript (same protocol and debate seed) gave its
    example; member model conditions are `member:s<seed>-<protocol>-d<debate seed>-t<train seed>`."""
    if debate.run_id is None:
        return []
    rows = session.execute(
        select(Model.name, Label.soft_label, Label.hard_label)
        .join(Label, Label.model_id == Model.id)
        .where(
            Label.example_id == debate.example_id,
            Model.run_id == debate.run_id,
            Model.role == "weak",
            Model.condition.like(f"member:%-{debate.protocol}-d{debate.seed}-t%"),
        )
        .order_by(Model.name)
    )
    return [WeakLabel(*row) for row in rows]


def _count(session: Session, query: Select) -> int:
    return session.scalar(select(func.count()).select_from(query.order_by(None).subquery())) or 0


def _distinct(session: Session, column: Any) -> list[str]:
    return list(session.scalars(select(column).distinct().order_by(column)))
