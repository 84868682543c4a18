"""The logic behind /v1/files and /v1/fine_tuning/jobs: requests → rows, rows → OpenAI objects.

A fine-tuning job is a row of `jobs` with kind "strong" whose payload is a
`trainers.jobs.payloads.FineTunePayload`, the shape the strong trainer reads.

Its result may carry "fine_tuned_model", "trained_tokens" and "hyperparameters" (the values
"auto" resolved to); its log is `job_events`. The job is deliberately not attached to the run
of `labels-<id>` (jobs.run_id): a user's finetune must not change that run's status.
A run's own strong jobs share the kind (and the id numbering) but not the payload: only jobs with
condition "fine_tune" are fine-tuning jobs, the others are listed nowhere here and 404 by id.
"""

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from service.api.errors import ApiError
from service.api.fine_tuning_schemas import (
    MAX_SEED,
    FilePublic,
    FineTuningErrorPublic,
    FineTuningJobCheckpointPublic,
    FineTuningJobCreate,
    FineTuningJobEventPublic,
    FineTuningJobPublic,
    HyperparametersPublic,
    MethodPublic,
)
from service.api.limits import MAX_ID
from service.store.db import utcnow
from service.store.errors import FileNotFound
from service.store.events import add_event, first_events, list_events
from service.store.jobs import TERMINAL, cancel_job
from service.store.models import Example, File, Job, JobEvent, Label, Model, ModelVersion
from service.store.uploaded_files import get_file
from trainers.errors import InvalidPayload
from trainers.jobs.payloads import (
    FINE_TUNE,
    FileSource,
    FineTuneHyperparameters,
    FineTunePayload,
    LabelsModelSource,
    enqueue,
    parse_payload,
)

JOB_KIND = "strong"
CREATED_MESSAGE = "Created fine-tuning job"
HYPERPARAMETER_NAMES = ("n_epochs", "batch_size", "learning_rate_multiplier")


def parse_id(public_id: str, prefix: str) -> int | None:
    """`file-12` → 12 for prefix "file-"; None when the id is not of that form or past any id."""
    match = re.fullmatch(re.escape(prefix) + r"([0-9]{1,18})", public_id)
    return int(match.group(1)) if match and int(match.group(1)) <= MAX_ID else None


def unix(moment: datetime | None) -> int | None:
    """Unix seconds of a naive-UTC column value."""
    return None if moment is None else int(moment.replace(tzinfo=UTC).timestamp())


def public_file(row: File) -> FilePublic:
    return FilePublic(
        id=f"file-{row.id}",
        bytes=row.bytes,
        created_at=unix(row.created_at),
        filename=row.filename,
        purpose=row.purpose,
        lines=row.lines,
    )


def create_fine_tuning_job(session: Session, body: FineTuningJobCreate, strong_model: str) -> Job:
    """Check what the body names (model, files, labels), enqueue the job and log its creation."""
    parent = _parent_version(session, body, strong_model)
    train, run_id = _training_source(session, body.training_file)
    validation = body.validation_file and _file_source(session, body.validation_file, "validation_file")
    hyperparameters = FineTuneHyperparameters(
        **body.resolved_hyperparameters().model_dump(),
        loss=body.loss,
        head=body.head,
        lora=body.lora,
        seed=secrets.randbelow(MAX_SEED + 1) if body.seed is None else body.seed,
        eval_every=body.eval_every,
        train=body.train_options(),
        logconf=body.logconf,
        product=body.product,
    )
    try:
        payload = FineTunePayload(
            run_id=run_id,
            base_model=body.model,
            train=train,
            validation=validation,
            parent_version_id=parent,
            hyperparameters=hyperparameters,
            publish=body.publish,
            suffix=body.suffix,
        )
    except ValidationError as exc:  # settings that are valid one by one but not together (publish a linear head)
        raise ApiError(
            422, f"these settings cannot train a strong model: {exc.errors()[0]['msg']}", "invalid_request", "body"
        ) from exc
    job = enqueue(session, payload)
    add_event(session, job.id, CREATED_MESSAGE, data={"metadata": body.metadata} if body.metadata else None)
    return job


def _parent_version(session: Session, body: FineTuningJobCreate, strong_model: str) -> int | None:
    """None to fine-tune the strong base; the id of the published version `body.model` names otherwise.

    Fine-tuning a version continues training its LoRA adapter (with the adapter's own LoRA settings),
    so the body must ask for what that is: the lm head with LoRA.
    """
    if body.model == strong_model:
        return None
    version = session.scalar(select(ModelVersion).where(ModelVersion.served_name == body.model))
    if version is None:
        raise ApiError(
            404,
            f"model {body.model!r} not found: fine-tune the strong model {strong_model!r} or a "
            "served name from model_versions",
            "model_not_found",
            "body.model",
        )
    if version.adapter_path is None:
        raise ApiError(
            422, f"model {body.model!r} has no saved adapter to continue training from", "invalid_request", "body.model"
        )
    if body.head != "lm" or body.lora is None:
        field = "body.head" if body.head != "lm" else "body.lora"
        raise ApiError(
            422,
            f"fine-tuning {body.model!r} continues its LoRA adapter: use head 'lm' with lora "
            "(the adapter's own LoRA settings are kept), or fine-tune the strong model "
            f"{strong_model!r} instead",
            "invalid_request",
            field,
        )
    return version.id


def _training_source(session: Session, training_file: str) -> tuple[FileSource | LabelsModelSource, int | None]:
    """(the uploaded file, None) or (the weak model's labels, the weak model's run id)."""
    if training_file.startswith("file-"):
        return _file_source(session, training_file, "training_file"), None
    model_id = parse_id(training_file, "labels-")
    model = session.get(Model, model_id)
    if model is None or model.role != "weak":
        raise ApiError(
            404, f"training_file {training_file!r}: no weak model with id {model_id}", "not_found", "body.training_file"
        )
    if model.run_id is None or not _strong_train_label_count(session, model):
        raise ApiError(
            422,
            f"training_file {training_file!r}: weak model {model_id} has no labels on its run's "
            "strong_train examples yet (its weak_train job must finish first)",
            "invalid_request",
            "body.training_file",
        )
    return LabelsModelSource(labels_model_id=model.id), model.run_id


def _strong_train_label_count(session: Session, model: Model) -> int:
    return (
        session.scalar(
            select(func.count(Label.id))
            .join(Example, Example.id == Label.example_id)
            .where(Label.model_id == model.id, Example.run_id == model.run_id, Example.split == "strong_train")
        )
        or 0
    )


def _file_source(session: Session, public_id: str, field: str) -> FileSource:
    file_id = parse_id(public_id, "file-")
    try:
        get_file(session, file_id, share=True)  # held until commit: a concurrent delete waits, then sees us
    except FileNotFound:
        raise ApiError(
            404,
            f"{field} {public_id!r} not found: upload it first with POST /v1/files (purpose 'fine-tune')",
            "not_found",
            f"body.{field}",
        ) from None
    return FileSource(file_id=file_id)


def get_fine_tuning_job(session: Session, public_id: str, *, lock: bool = False) -> Job:
    job_id = parse_id(public_id, "ftjob-")
    job = None if job_id is None else session.get(Job, job_id, with_for_update=lock or None)
    if job is None or job.kind != JOB_KIND or job.payload.get("condition") != FINE_TUNE:
        raise ApiError(404, f"no fine-tuning job with id {public_id!r}", "not_found", "fine_tuning_job_id")
    return job


def list_fine_tuning_jobs(session: Session, after: str | None, limit: int) -> tuple[list[Job], bool]:
    """Newest first; `after` is the last id of the previous page. Returns (page, has_more)."""
    query = (
        select(Job)
        .where(Job.kind == JOB_KIND, Job.payload["condition"].as_string() == FINE_TUNE)
        .order_by(Job.id.desc())
        .limit(limit + 1)
    )
    if after is not None:
        query = query.where(Job.id < _cursor(after, "ftjob-"))
    rows = list(session.scalars(query))
    return rows[:limit], len(rows) > limit


def _cursor(after: str, prefix: str) -> int:
    value = parse_id(after, prefix)
    if value is None:
        raise ApiError(
            422,
            f"after must be an id like '{prefix}12' (the last id of the previous page); got {after!r}",
            "invalid_request",
            "query.after",
        )
    return value


def cancel_fine_tuning_job(session: Session, public_id: str) -> Job:
    """Cancel a queued or running job (its worker stops at the next heartbeat)."""
    job = get_fine_tuning_job(session, public_id, lock=True)  # no race with a worker finishing it
    if job.status in TERMINAL:
        raise ApiError(
            400,
            f"fine-tuning job {public_id} already {job.status}; only queued or running jobs can be cancelled",
            "invalid_request",
            "fine_tuning_job_id",
        )
    cancel_job(session, job.id)
    add_event(session, job.id, "Fine-tuning job cancelled")
    return job


def public_jobs(session: Session, jobs: Sequence[Job]) -> list[FineTuningJobPublic]:
    """OpenAI objects of `jobs`, with the metadata kept on each one's creation event."""
    created = first_events(session, [job.id for job in jobs])
    return [public_job(job, created.get(job.id)) for job in jobs]


def public_job(job: Job, created: JobEvent | None) -> FineTuningJobPublic:
    payload, result = _payload(job), job.result or {}
    resolved = payload.hyperparameters.model_dump(mode="json") if payload else {}
    hyperparameters = {**resolved, **result.get("hyperparameters", {})}
    echoed = HyperparametersPublic(**{name: hyperparameters.get(name, "auto") for name in HYPERPARAMETER_NAMES})
    return FineTuningJobPublic(
        id=f"ftjob-{job.id}",
        created_at=unix(job.created_at),
        error=_error(job),
        fine_tuned_model=result.get("fine_tuned_model"),
        finished_at=unix(job.finished_at),
        hyperparameters=echoed,
        model=payload.base_model if payload else "",
        seed=hyperparameters.get("seed"),
        status=job.status,
        trained_tokens=result.get("trained_tokens"),
        training_file=payload.train.public_name() if payload else "",
        validation_file=payload.validation.public_name() if payload and payload.validation else None,
        estimated_finish=_estimated_finish(job),
        metadata=(created.data or {}).get("metadata") if created else None,
        method=MethodPublic(supervised={"hyperparameters": echoed}),
        suffix=payload and payload.suffix,
        loss=hyperparameters.get("loss"),
        head=hyperparameters.get("head"),
        lora=hyperparameters.get("lora"),
        publish=payload and payload.publish,
        progress=job.progress,
    )


def _payload(job: Job) -> FineTunePayload | None:
    """The job's fine-tuning payload; None for a row that does not parse as one (its job fails when claimed)."""
    try:
        payload = parse_payload(JOB_KIND, job.payload)
    except InvalidPayload:
        return None
    return payload if isinstance(payload, FineTunePayload) else None


def _error(job: Job) -> FineTuningErrorPublic | None:
    """The first line of the job's last error; code = the exception type when there is one."""
    if job.status != "failed" or not job.error:
        return None
    first_line = job.error.splitlines()[0]
    name = first_line.split(":", 1)[0]
    return FineTuningErrorPublic(code=name if name.isidentifier() else "job_failed", message=first_line)


def _estimated_finish(job: Job) -> int | None:
    eta_s = (job.progress or {}).get("eta_s")
    if job.status != "running" or not isinstance(eta_s, int | float):
        return None
    return unix((job.heartbeat_at or utcnow()) + timedelta(seconds=eta_s))


def list_job_events(session: Session, job: Job, after: str | None, limit: int) -> tuple[list[JobEvent], bool]:
    """The job's events newest first; `after` is the last id of the previous page."""
    after_id = None if after is None else _cursor(after, "ftevent-")
    rows = list(list_events(session, job.id, after_id=after_id, limit=limit + 1))
    return rows[:limit], len(rows) > limit


def public_event(event: JobEvent) -> FineTuningJobEventPublic:
    """`warning` is OpenAI's `warn`; events whose data has a `step` are metrics."""
    return FineTuningJobEventPublic(
        id=f"ftevent-{event.id}",
        created_at=unix(event.created_at),
        level="warn" if event.level == "warning" else event.level,
        message=event.message,
        data=event.data,
        type="metrics" if event.data and "step" in event.data else "message",
    )


def job_checkpoints(job: Job) -> list[FineTuningJobCheckpointPublic]:
    """A succeeded job's servable checkpoint: its published adapter. (Intermediate training checkpoints
    only let a retried job resume; vLLM never serves them, so they are not listed.)"""
    result = job.result or {}
    if job.status != "succeeded" or not result.get("fine_tuned_model"):
        return []
    scores = {f"full_valid_{name}": value for name, value in (result.get("metrics") or {}).items()}
    return [
        FineTuningJobCheckpointPublic(
            id=f"ftckpt-{job.id}",
            created_at=unix(job.finished_at),
            fine_tuned_model_checkpoint=result["fine_tuned_model"],
            fine_tuning_job_id=f"ftjob-{job.id}",
            step_number=result.get("steps") or 0,
            metrics={"step": result.get("steps"), "train_loss": result.get("final_loss"), **scores},
        )
    ]
