"""/v1/debate-batches: many examples → debate jobs on the queue, run by `w2s worker --kind debate`."""

from fastapi import APIRouter, Depends, HTTPException
from sqlalchemy import func, select

from debate import sample_specs
from service.api.deps import MetricsDep, SessionDep, SettingsDep, require_api_key
from service.api.limits import IdPath
from service.api.schemas import BatchProgress, DebateBatchCreate, DebateBatchPublic, spec_for
from service.store.db import utcnow
from service.store.debate_rows import add_example, content_id
from service.store.models import Job, Run
from service.store.runs import config_hash, debate_counts, refresh_run
from trainers.jobs.debate_shards import enqueue_debate_items

router = APIRouter(prefix="/v1/debate-batches", tags=["debate batches"], dependencies=[Depends(require_api_key)])


@router.post("", status_code=202, response_model=DebateBatchPublic)
def create_batch(
    body: DebateBatchCreate, session: SessionDep, settings: SettingsDep, metrics: MetricsDep
) -> DebateBatchPublic:
    """Store the examples, enqueue their debates in shards, return the batch id at once."""
    specs = [sample_specs(spec_for(body, example, settings.strong_model), body.n_samples) for example in body.examples]
    config = body.model_dump(mode="json")
    run = Run(kind="debate_batch", name=body.name, config=config, config_hash=config_hash(config))
    session.add(run)
    session.flush()
    items = []
    for position, (example, samples) in enumerate(zip(body.examples, specs, strict=True)):
        row = add_example(
            session,
            run_id=run.id,
            task=body.task,
            candidate_id="candidate",
            question=example.question,
            candidate=example.candidate_answer,
            context=example.context,
            label=example.label,
            source_id=example.source_id or f"{position}:{content_id(example.question, example.context)}",
        )
        items.extend((row.id, spec) for spec in samples)
    enqueue_debate_items(session, run.id, items, shard_size=body.shard_size, key_prefix=f"debate-batch:{run.id}")
    metrics.batch_debates.inc(len(items))
    return _public(session, run)


@router.get("/{batch_id}", response_model=DebateBatchPublic)
def get_batch(batch_id: IdPath, session: SessionDep) -> DebateBatchPublic:
    run = session.get(Run, batch_id)
    if run is None or run.kind != "debate_batch":
        raise HTTPException(404, f"no debate batch with id {batch_id}")
    return _public(session, run)


def _public(session, run: Run) -> DebateBatchPublic:  # noqa: ANN001
    progress = refresh_run(session, run)
    debates = debate_counts(session, run.id)
    done, failed = debates.get("succeeded", 0), debates.get("failed", 0)
    total = len(run.config["examples"]) * run.config["n_samples"]
    return DebateBatchPublic(
        id=run.id,
        name=run.name,
        status=progress.status,
        created_at=run.created_at,
        jobs=progress.jobs,
        errors=progress.errors,
        progress=BatchProgress(
            done=done, failed=failed, total=total, eta_s=_eta(session, run.id, done + failed, total)
        ),
    )


def _eta(session, run_id: int, finished: int, total: int) -> float | None:  # noqa: ANN001
    """Remaining debates at the rate since the first job of the batch started."""
    started = session.scalar(select(func.min(Job.started_at)).where(Job.run_id == run_id))
    if not finished or started is None or finished >= total:
        return None if finished < total else 0.0
    elapsed = (utcnow() - started).total_seconds()
    return round(elapsed / finished * (total - finished), 1)
