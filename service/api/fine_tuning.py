"""/v1/fine_tuning/jobs (OpenAI-compatible): finetune the strong model on weak labels, on the queue.

Works with the `openai` client pointed at this service (`base_url=<service>/v1`); the logic is in
fine_tuning_serving.py, the bodies in fine_tuning_schemas.py. Jobs run on `w2s worker --kind strong`.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from service.api.deps import SessionDep, SettingsDep, require_api_key
from service.api.fine_tuning_schemas import (
    FineTuningJobCheckpointPublic,
    FineTuningJobCreate,
    FineTuningJobEventPublic,
    FineTuningJobPublic,
    ListPage,
)
from service.api.fine_tuning_serving import (
    cancel_fine_tuning_job,
    create_fine_tuning_job,
    get_fine_tuning_job,
    job_checkpoints,
    list_fine_tuning_jobs,
    list_job_events,
    public_event,
    public_jobs,
)

router = APIRouter(prefix="/v1/fine_tuning/jobs", tags=["fine-tuning"], dependencies=[Depends(require_api_key)])

Limit = Annotated[int, Query(ge=1, le=100)]


@router.post("", response_model=FineTuningJobPublic)
def create_job(body: FineTuningJobCreate, session: SessionDep, settings: SettingsDep) -> FineTuningJobPublic:
    """Queue a finetune of `model` on `training_file` ('file-<n>' or 'labels-<weak model id>')."""
    job = create_fine_tuning_job(session, body, settings.strong_model)
    return public_jobs(session, [job])[0]


@router.get("", response_model=ListPage[FineTuningJobPublic])
def list_jobs(session: SessionDep, after: str | None = None, limit: Limit = 20) -> ListPage[FineTuningJobPublic]:
    """Newest first; pass the last id as `after` for the next page."""
    jobs, has_more = list_fine_tuning_jobs(session, after, limit)
    data = public_jobs(session, jobs)
    return ListPage[FineTuningJobPublic](
        data=data, has_more=has_more, first_id=data[0].id if data else None, last_id=data[-1].id if data else None
    )


@router.get("/{fine_tuning_job_id}", response_model=FineTuningJobPublic)
def retrieve_job(fine_tuning_job_id: str, session: SessionDep) -> FineTuningJobPublic:
    return public_jobs(session, [get_fine_tuning_job(session, fine_tuning_job_id)])[0]


@router.post("/{fine_tuning_job_id}/cancel", response_model=FineTuningJobPublic)
def cancel_job(fine_tuning_job_id: str, session: SessionDep) -> FineTuningJobPublic:
    """Cancel a queued or running job; 400 if it already finished."""
    return public_jobs(session, [cancel_fine_tuning_job(session, fine_tuning_job_id)])[0]


@router.get("/{fine_tuning_job_id}/events", response_model=ListPage[FineTuningJobEventPublic])
def list_events(
    fine_tuning_job_id: str, session: SessionDep, after: str | None = None, limit: Limit = 20
) -> ListPage[FineTuningJobEventPublic]:
    """The job's log, newest first; pass the last id as `after` for older events."""
    events, has_more = list_job_events(session, get_fine_tuning_job(session, fine_tuning_job_id), after, limit)
    data = [public_event(event) for event in events]
    return ListPage[FineTuningJobEventPublic](
        data=data, has_more=has_more, first_id=data[0].id if data else None, last_id=data[-1].id if data else None
    )


@router.get("/{fine_tuning_job_id}/checkpoints", response_model=ListPage[FineTuningJobCheckpointPublic])
def list_checkpoints(fine_tuning_job_id: str, session: SessionDep) -> ListPage[FineTuningJobCheckpointPublic]:
    """The published adapter of a succeeded job (empty before, or when it was not published)."""
    data = job_checkpoints(get_fine_tuning_job(session, fine_tuning_job_id))
    return ListPage[FineTuningJobCheckpointPublic](data=data, has_more=False)
