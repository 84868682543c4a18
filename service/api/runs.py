"""/v1/runs: submit a run config (its DAG of jobs goes on the queue), follow it, cancel it, read its report.
/v1/jobs/{id}: one job, and retrying a failed one (the run continues from there).
"""

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, HTTPException, Query, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, PlainTextResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select

from service.api.deps import SessionDep, SettingsDep, require_api_key
from service.api.limits import IdPath, IdQuery
from service.api.schemas import UtcDatetime
from service.api.server_paths import check_run_paths
from service.settings import Settings
from service.store.errors import JobError
from service.store.jobs import retry_job
from service.store.models import Job, Run
from service.store.runs import StageProgress, cancel_run, refresh_run, run_stages
from trainers.jobs.payloads import JOB_KINDS
from trainers.pipeline.budgets import ingest_notes
from trainers.runs import AnyRunConfig, run_report_json, run_report_markdown, submit_any_run, validate_any_run_config

router = APIRouter(tags=["runs"], dependencies=[Depends(require_api_key)])
RUN_BODY = (
    "A run config, as the YAML files under configs/ hold it: a classification experiment (the fields of "
    "trainers.pipeline.RunConfig), or with `kind: generative` a generative one (trainers.generative.config)."
)


class RunPublic(BaseModel):
    id: int
    name: str
    status: str
    config_hash: str
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    stages: list[StageProgress]
    notes: list[str]  # e.g. how many examples ingest dropped for a model's length budget
    config: dict[str, Any]


class JobPublic(BaseModel):
    id: int
    kind: str
    status: str
    run_id: int | None
    attempts: int
    max_attempts: int
    payload: dict[str, Any]
    progress: dict[str, Any] | None
    result: dict[str, Any] | None
    error: str | None


@router.post("/v1/runs", response_model=RunPublic, status_code=201)
def create_run(
    body: Annotated[dict[str, Any], Body(description=RUN_BODY)],
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> RunPublic:
    """Create the run and its jobs; the same config again resumes that run (200) instead.

    Paths and models it names must lie under the operator's W2S_DATA_ROOTS / W2S_MODEL_ROOTS.
    """
    config = _run_config(body)
    check_run_paths(config, settings)
    run, created = submit_any_run(session, config, strong_model=config.strong.model or settings.strong_model)
    if not created:
        response.status_code = 200
    return _public(session, run)


@router.get("/v1/runs", response_model=list[RunPublic])
def list_runs(session: SessionDep, limit: int = Query(20, ge=1, le=200), before: IdQuery = None) -> list[RunPublic]:
    """Experiment runs, newest first; `before` = the last id of the previous page."""
    query = select(Run).where(Run.kind == "experiment").order_by(Run.id.desc()).limit(limit)
    if before is not None:
        query = query.where(Run.id < before)
    return [_public(session, run) for run in session.scalars(query)]


@router.get("/v1/runs/{run_id}", response_model=RunPublic)
def get_run(run_id: IdPath, session: SessionDep) -> RunPublic:
    return _public(session, _run(session, run_id))


@router.post("/v1/runs/{run_id}/cancel", response_model=RunPublic)
def cancel(run_id: IdPath, session: SessionDep) -> RunPublic:
    run = _run(session, run_id)
    cancel_run(session, run)
    return _public(session, run)


@router.get("/v1/runs/{run_id}/report")
def get_report(run_id: IdPath, session: SessionDep, format: str = Query("json", pattern="^(json|markdown)$")) -> Any:
    """The results table, as JSON or Markdown: for a classification run Lang et al.'s Table 2 shape from the
    metrics rows; for a generative run the mean score per condition over seeds with intervals and PGR."""
    run = _run(session, run_id)
    if format == "markdown":
        return PlainTextResponse(run_report_markdown(session, run.id), media_type="text/markdown")
    return run_report_json(session, run.id)


@router.get("/v1/runs/{run_id}/report.png")
def get_report_png(run_id: IdPath, session: SessionDep, settings: SettingsDep) -> FileResponse:
    """The PGR bar chart the run's report job wrote."""
    path = report_chart_path(settings, _run(session, run_id).id)
    if not path.is_file():
        raise HTTPException(404, f"run {run_id} has no report chart yet: its report job has not succeeded")
    return FileResponse(path, media_type="image/png")


def report_chart_path(settings: Settings, run_id: int) -> Path:
    """Where the run's report job writes its chart."""
    return settings.artifacts_dir / "runs" / str(run_id) / "pgr.png"


@router.get("/v1/jobs/{job_id}", response_model=JobPublic)
def get_job(job_id: IdPath, session: SessionDep) -> JobPublic:
    return JobPublic.model_validate(_job(session, job_id), from_attributes=True)


@router.post("/v1/jobs/{job_id}/retry", response_model=JobPublic)
def retry(job_id: IdPath, session: SessionDep) -> JobPublic:
    """Put a failed or cancelled job back in the queue; its dependents then run as usual."""
    _job(session, job_id)
    try:
        job = retry_job(session, job_id)
    except JobError as exc:
        raise HTTPException(409, str(exc)) from exc
    if job.run_id is not None:
        refresh_run(session, session.get(Run, job.run_id))
    return JobPublic.model_validate(job, from_attributes=True)


def _run_config(body: dict[str, Any]) -> AnyRunConfig:
    """The body as the config of its `kind`; a 422 naming each bad field (`body.weak.train.lr`) if it is not one."""
    try:
        return validate_any_run_config(body)
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]) from exc


def _run(session, run_id: int) -> Run:  # noqa: ANN001
    run = session.get(Run, run_id)
    if run is None or run.kind != "experiment":
        raise HTTPException(404, f"no run with id {run_id}")
    return run


def _job(session, job_id: int) -> Job:  # noqa: ANN001
    job = session.get(Job, job_id)
    if job is None:
        raise HTTPException(404, f"no job with id {job_id}")
    return job


def _public(session, run: Run) -> RunPublic:  # noqa: ANN001
    refresh_run(session, run)
    stages = run_stages(session, run.id, JOB_KINDS)
    return RunPublic(
        id=run.id,
        name=run.name,
        status=run.status,
        config_hash=run.config_hash,
        created_at=run.created_at,
        finished_at=run.finished_at,
        stages=stages,
        notes=ingest_notes(session, run.id),
        config=run.config,
    )
