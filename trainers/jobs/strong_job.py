"""The `strong` job: finetune the strong model on weak labels (or ground truth), evaluate it, and
publish its LoRA adapter to vLLM under a new served name.

Two sources of work share this handler:
* a run's step (`trainers.pipeline.plan`): train on the run's `strong_train` examples with the
  labels of a weak condition model (`labels_model_name`) or ground truth, evaluate on `test`,
  settings from the run config;
* a fine-tuning job from the OpenAI-compatible API: train on an uploaded file
  (`{"prompt", "label"}` lines) or a weak model's labels (`labels_model_id`), settings from
  the job's `hyperparameters`.
The strong model reads the plain example (no transcript): the debate helps the weak supervisor only.
"""

from __future__ import annotations

import functools
import logging
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from debate.errors import VLLMUnreachable
from service.store.db import utcnow
from service.store.model_versions import default_served_name, register_version
from service.store.models import Example, Job, Model, ModelVersion
from service.store.uploaded_files import read_file_rows
from trainers.classification_metrics import binary_metrics
from trainers.hyperparameters import StrongSettings
from trainers.jobs.debate_job import MAX_UNAVAILABLE_WAIT_S
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import (
    BASE_LR,
    FINE_TUNE,
    FileSource,
    FineTunePayload,
    GroundTruthSource,
    LabelsModelNameSource,
    RunStrongPayload,
    SplitSource,
    TrainSource,
    job_payload,
)
from trainers.jobs.progress import progress_reporter
from trainers.jobs.run_rows import (
    get_or_create_model,
    load_run,
    model_by_name,
    model_labels,
    run_examples,
    scores,
    task_example,
    write_labels,
    write_metrics,
)
from trainers.pipeline.budgets import prompt_suffix
from trainers.pipeline.plan import strong_model_name
from trainers.strong.fit import FitSpec, fit
from trainers.strong.launch import join, launch_tag, run_distributed
from trainers.strong.replicas import publish_everywhere
from trainers.tasks import format_example, get_task
from trainers.training import ClassifierInput
from trainers.training.classifier import SPEC_FILE, ClassifierSpec
from trainers.worker import JobContext, PermanentJobError

DEFAULT_ANSWER_WORDS = (" No", " Yes")

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StrongJob:
    """Everything the training needs, resolved from the payload (and the run config)."""

    condition: str
    settings: StrongSettings
    loss: str
    seed: int
    answer_words: tuple[str, str]
    train: list[tuple[ClassifierInput, float]]
    evaluate: list[tuple[ClassifierInput, int, int | None]]  # (input, gold label, example id or None)
    run_id: int | None
    parent_version_id: int | None = None  # fine-tuning a published version: continue its adapter
    parent_adapter: str | None = None
    parent_base: str | None = None  # the base the parent adapter was trained on


def strong_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        payload = job_payload(ctx)
        with ctx.sessions() as session:
            job = resolve_job(session, payload)
        return train_and_publish(ctx, env, job)

    return handle


def resolve_job(session: Session, payload: FineTunePayload | RunStrongPayload) -> StrongJob:
    """A run step takes its settings from the run config; an API fine-tune from its hyperparameters."""
    if isinstance(payload, FineTunePayload):
        parent = _parent(session, payload.parent_version_id)
        return StrongJob(
            condition=FINE_TUNE,
            settings=payload.settings(),
            loss=payload.hyperparameters.loss,
            seed=payload.hyperparameters.seed,
            answer_words=parent.answer_words if parent else DEFAULT_ANSWER_WORDS,
            train=_train_rows(session, payload.train, None),
            evaluate=_eval_rows(session, payload.validation, None),
            run_id=None,
            parent_version_id=payload.parent_version_id,
            parent_adapter=parent and parent.adapter,
            parent_base=parent and parent.base,
        )
    config = load_run(session, payload.run_id)[1]
    return StrongJob(
        condition=payload.condition,
        settings=config.strong,
        loss=payload.loss,
        seed=payload.seed,
        answer_words=get_task(config.task).answer_words,
        train=_train_rows(session, payload.train, payload.run_id),
        evaluate=_eval_rows(session, payload.validation, payload.run_id),
        run_id=payload.run_id,
    )


@dataclass(frozen=True)
class _Parent:
    adapter: str
    base: str
    answer_words: tuple[str, str]


def _parent(session: Session, version_id: int | None) -> _Parent | None:
    """The saved adapter of the published version a fine-tuning job continues (None: start from the base)."""
    if version_id is None:
        return None
    version = session.get(ModelVersion, version_id)
    if version is None or not version.adapter_path:
        raise PermanentJobError(f"model version {version_id} has no saved adapter to continue from")
    try:
        spec = ClassifierSpec.from_json((Path(version.adapter_path) / SPEC_FILE).read_text())
    except (OSError, ValueError) as exc:
        raise PermanentJobError(
            f"cannot read the classifier saved with version {version.served_name!r} at {version.adapter_path}: {exc}"
        ) from exc
    if spec.head != "lm" or spec.lora is None:
        raise PermanentJobError(
            f"version {version.served_name!r} is not an lm-head LoRA adapter ({spec.head}, "
            f"lora={spec.lora is not None}); only those can be continued"
        )
    return _Parent(version.adapter_path, spec.base_model, spec.answer_words)


def _train_rows(session: Session, source: TrainSource, run_id: int | None) -> list[tuple[ClassifierInput, float]]:
    if isinstance(source, FileSource):
        return [
            (ClassifierInput(text=row["prompt"]), float(row["label"]))
            for row in read_file_rows(session, source.file_id)
        ]
    if isinstance(source, GroundTruthSource):
        rows = [(_input(example), float(example.label)) for example in run_examples(session, run_id, "strong_train")]
    else:
        model = (
            model_by_name(session, source.labels_model_name)
            if isinstance(source, LabelsModelNameSource)
            else _model(session, source.labels_model_id)
        )
        labels = model_labels(session, model.id)
        examples = run_examples(session, model.run_id, "strong_train") if model.run_id else []
        rows = [(_input(example), labels[example.id]) for example in examples if example.id in labels]
    if not rows:
        raise PermanentJobError(f"no training examples for {source.public_name()} (no labelled strong_train examples)")
    return rows


def _eval_rows(
    session: Session, source: FileSource | SplitSource | None, run_id: int | None
) -> list[tuple[ClassifierInput, int, int | None]]:
    if source is None:
        return []
    if isinstance(source, FileSource):
        return [
            (ClassifierInput(text=row["prompt"]), int(float(row["label"]) >= 0.5), None)
            for row in read_file_rows(session, source.file_id)
        ]
    return [
        (_input(example), int(example.label), example.id) for example in run_examples(session, run_id, source.split)
    ]


def _input(example: Example) -> ClassifierInput:
    return ClassifierInput(text=format_example(task_example(example)), answer=example.candidate)


def _model(session: Session, model_id: int) -> Model:
    model = session.get(Model, model_id)
    if model is None:
        raise PermanentJobError(f"model {model_id} does not exist")
    return model


def train_and_publish(ctx: JobContext, env: WorkerEnv, job: StrongJob) -> dict[str, Any]:
    settings = job.settings
    name = strong_model_name(job.run_id, job.condition) if job.run_id is not None else f"ft-job{ctx.job.id}"
    out_dir = (env.run_dir(job.run_id) if job.run_id is not None else env.artifacts_dir / "fine_tunes") / name
    spec = fit_spec(job, env, env.job_dir(ctx.job.id) / "checkpoint", out_dir)
    on_step = progress_reporter(ctx, "train")
    if env.launch.distributed:
        ctx.event(
            f"Training on {env.launch.nproc_per_node * env.launch.nnodes} processes "
            f"({env.launch.nnodes} node(s) x {env.launch.nproc_per_node}, {env.launch.sharding.upper()})"
        )
        outcome = run_distributed(
            spec,
            env.launch,
            launch_dir(env, ctx.job.id),
            on_step=on_step,
            check=ctx.check,
            tag=f"job {ctx.job.id} launch {secrets.token_hex(4)}",
        )
    else:
        outcome = fit(spec, on_step)
    ctx.report(outcome.steps, outcome.steps, stage="evaluate")
    metrics = binary_metrics([row[1] for row in job.evaluate], outcome.probs) if job.evaluate else {}
    with ctx.sessions.begin() as session:
        row = get_or_create_model(
            session,
            name,
            role="strong",
            base=spec.base,
            run_id=job.run_id,
            condition=job.condition,
            member=None,
            seed=job.seed,
            checkpoint_path=str(out_dir),
        )
        write_labels(
            session,
            row.id,
            {ex_id: p for (_, _, ex_id), p in zip(job.evaluate, outcome.probs, strict=True) if ex_id is not None},
        )
        write_metrics(session, job.run_id, row.id, job.condition, scores(metrics))
        version = _register(session, row, out_dir, settings, env, job.parent_version_id)
    served = publish_waiting(ctx, env, version) if version is not None else None
    return {
        "model_id": row.id,
        "fine_tuned_model": served,
        "trained_tokens": outcome.tokens,
        "metrics": metrics,
        "steps": outcome.steps,
        "final_loss": outcome.final_loss,
        "resumed_from_step": outcome.resumed_from_step,
        "evaluations": outcome.evaluations,
        "processes": env.launch.nproc_per_node * env.launch.nnodes,
        "hyperparameters": {
            "n_epochs": settings.train.epochs,
            "batch_size": settings.train.batch_size,
            "learning_rate_multiplier": settings.train.lr / BASE_LR,
        },
    }


def fit_spec(job: StrongJob, env: WorkerEnv, checkpoint_dir: Path, out_dir: Path) -> FitSpec:
    """The training half of the job, as the JSON `fit` (or each torchrun rank) reads."""
    settings = job.settings
    return FitSpec(
        base=job.parent_base or env.strong_model_path(settings.checkpoint),
        head=settings.head,
        answer_words=job.answer_words,
        lora=settings.lora.model_dump() if settings.lora else None,
        train=settings.train.with_seed(job.seed).model_dump(),
        loss=job.loss,
        loss_params=settings.loss_params(job.loss),
        prompt_suffix=prompt_suffix(settings.head),
        train_inputs=[row[0] for row in job.train],
        train_targets=[row[1] for row in job.train],
        eval_inputs=[row[0] for row in job.evaluate],
        eval_gold=[row[1] for row in job.evaluate],
        checkpoint_dir=str(checkpoint_dir),
        out_dir=str(out_dir),
        seed=job.seed,
        init_adapter=job.parent_adapter,
        sharding=env.launch.sharding,
    )


def _register(
    session: Session, row: Model, out_dir: Path, settings: StrongSettings, env: WorkerEnv, parent_id: int | None
) -> int | None:
    """A model_versions row for a servable adapter (LM head + LoRA) when publishing is on."""
    if not (settings.publish and settings.head == "lm" and settings.lora and env.vllm_base_urls):
        return None
    # A retried job re-uses the version its earlier attempt registered for the same adapter dir.
    earlier = session.scalars(
        select(ModelVersion).where(ModelVersion.model_id == row.id, ModelVersion.adapter_path == str(out_dir.resolve()))
    ).first()
    if earlier is not None:
        return earlier.id
    # A random tag keeps served names unique across databases that share one vLLM (two runs
    # "1" in two databases would otherwise both publish "run1-...-v1" with different adapters).
    version = session.scalar(select(func.count()).where(ModelVersion.model_id == row.id)) + 1
    served = default_served_name(f"{row.name}-{secrets.token_hex(3)}", version)
    return register_version(session, row, out_dir, served_name=served, parent_id=parent_id).id


def publish_waiting(ctx: JobContext, env: WorkerEnv, version_id: int, wait_s: float = 2.0) -> str:
    """Publish the version; while vLLM is unreachable, wait (heartbeating) and try again, as debate jobs do:
    the trained adapter is kept and no attempt is spent. A cancel or a worker stop ends the wait."""
    ctx.report(1, 1, stage="publish")
    while True:
        try:
            return publish_everywhere(
                ctx.sessions, version_id, env.vllm_base_urls, api_key=env.vllm_api_key
            ).served_name
        except VLLMUnreachable as exc:
            log.warning("job %s: vLLM unreachable for publishing, retrying in %.0fs: %s", ctx.job.id, wait_s, exc)
            ctx.progress["waiting_for_strong_model"] = str(exc)
            ctx.sleep(wait_s)
            wait_s = min(wait_s * 2, MAX_UNAVAILABLE_WAIT_S)


def launch_dir(env: WorkerEnv, job_id: int) -> Path:
    return env.job_dir(job_id) / "launch"


def follow_strong_jobs(
    sessions: sessionmaker[Session], env: WorkerEnv, stop: threading.Event, poll_s: float = 1.0
) -> int:
    """A machine with node_rank > 0: join each running strong job's launch by node 0, one at a time.

    Only jobs whose lease is alive are joined, and a joined launch is left (its ranks killed) once
    its lease runs out or the job is launched again: a launch whose node 0 died never starts, and
    waiting for it would keep this machine from the next one. Returns the number of launches
    joined once `stop` is set (a launch in progress is finished first).
    """
    joined: set[str] = set()

    def launch_of(job_id: int) -> str | None:
        return launch_tag(env.launch, launch_dir(env, job_id))

    def wanted(job_id: int, tag: str) -> bool:
        live = _live_strong_jobs(sessions, env)
        return launch_of(job_id) == tag and (live is None or job_id in live)  # a DB hiccup is no reason to leave

    while not stop.is_set():
        for job_id in _live_strong_jobs(sessions, env) or []:
            tag = launch_of(job_id)
            if tag is not None and tag not in joined:
                joined.add(tag)
                log.info("node %d joins %s", env.launch.node_rank, tag)
                code = join(
                    env.launch,
                    launch_dir(env, job_id),
                    tag,
                    poll_s=poll_s,
                    wanted=functools.partial(wanted, job_id, tag),
                )
                log.info(
                    "%s: node %d's ranks %s",
                    tag,
                    env.launch.node_rank,
                    "left it (node 0 is gone)" if code is None else f"exited with {code}",
                )
        stop.wait(poll_s)
    return len(joined)


def _live_strong_jobs(sessions: sessionmaker[Session], env: WorkerEnv) -> list[int] | None:
    """Running strong jobs whose worker still renews the lease; None when the database could not say."""
    try:
        with sessions() as session:
            return list(
                session.scalars(
                    select(Job.id).where(Job.kind == "strong", Job.status == "running", Job.lease_expires_at > utcnow())
                )
            )
    except Exception:  # noqa: BLE001 - a DB hiccup must not end the follower
        log.exception("node %d could not list running strong jobs", env.launch.node_rank)
        return None
