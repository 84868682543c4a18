"""The `weak` job: train one weak member on `weak_train` ground truth (with its transcripts as
context), predict soft labels on every split, write `labels` + test `metrics`.

Resumable: the training loop checkpoints under the job's directory, so a killed worker's
job continues from its last checkpoint on the next attempt. Labels and metrics are upserts
(unique keys), so a retried job never duplicates rows.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from service.store.models import Example
from trainers.classification_metrics import binary_metrics
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import Member, job_payload
from trainers.jobs.progress import progress_reporter
from trainers.jobs.run_rows import (
    get_or_create_model,
    labelled,
    load_run,
    run_examples,
    scores,
    task_example,
    transcripts,
    write_labels,
    write_metrics,
)
from trainers.jobs.weak_inputs import weak_input
from trainers.pipeline.config import RunConfig
from trainers.pipeline.crossfit import CROSSFIT_FOLDS, cross_fit, crossfit_model_name
from trainers.pipeline.plan import weak_model_name
from trainers.tasks import format_example
from trainers.training import (
    ClassifierInput,
    held_out_evaluator,
    load_classifier,
    predict_proba,
    train_classifier,
)
from trainers.worker import JobContext


def weak_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        payload = job_payload(ctx)
        run_id, member = payload.run_id, payload.member
        with ctx.sessions() as session:
            _, config = load_run(session, run_id)
            examples = run_examples(session, run_id)
            turns = {} if member.context == "none" else transcripts(session, run_id, member.context, member.debate_seed)
        inputs = {
            example.id: weak_input(format_example(task_example(example)), turns.get(example.id), example.candidate)
            for example in examples
        }
        missing = sum(1 for example in examples if member.context != "none" and example.id not in turns)
        train = [example for example in examples if example.split == "weak_train"]
        model_path = env.weak_model_path(config.weak.model)
        model = load_classifier(model_path, head=config.weak.head)
        settings = config.weak.train
        test = [example for example in examples if example.split == "test"]
        ids, gold = labelled(test)
        result = train_classifier(
            model,
            [inputs[e.id] for e in train],
            [float(e.label) for e in train],
            settings.with_seed(member.train_seed),
            on_step=progress_reporter(ctx, "train"),
            checkpoint_dir=env.job_dir(ctx.job.id) / "checkpoint",
            evaluate=held_out_evaluator([inputs[i] for i in ids], gold, max_length=settings.max_length),
        )
        ctx.report(result.steps, result.steps, stage="predict")
        soft = _predict(model, examples, inputs, settings.max_length)
        out_dir = env.run_dir(run_id) / "models" / member.key
        model.save(out_dir)
        metrics = binary_metrics(gold, [soft[i] for i in ids])
        with ctx.sessions.begin() as session:
            row = get_or_create_model(
                session,
                weak_model_name(run_id, member),
                role="weak",
                base=model_path,
                run_id=run_id,
                condition=f"member:{member.key}",
                member=member.debate_seed,
                seed=member.train_seed,
                checkpoint_path=str(out_dir),
            )
            write_labels(session, row.id, soft)
            write_metrics(session, run_id, row.id, f"member:{member.key}", scores(metrics))
        if member.context == "none" and "market_making" in config.conditions:  # the naive member it reads
            _store_out_of_sample_predictions(ctx, env, run_id, config, member, train, inputs, soft)
        return {"model_id": row.id, "missing_transcripts": missing, "train": _train_summary(result), "test": metrics}

    return handle


def _store_out_of_sample_predictions(
    ctx: JobContext,
    env: WorkerEnv,
    run_id: int,
    config: RunConfig,
    member: Member,
    train: list[Example],
    inputs: dict[int, ClassifierInput],
    soft: dict[int, float],
) -> None:
    """What market-making reads to pick its side: the naive predictions, cross-fitted on weak_train.

    The naive model predicts weak_train from the very labels it learned; k fold models, each
    trained without its fold, predict it instead (see trainers.pipeline.crossfit).
    """
    settings, labels = config.weak.train, {example.id: float(example.label) for example in train}

    def fit_predict(train_ids: list[int], held_out: list[int], fold: int) -> dict[int, float]:
        model = load_classifier(env.weak_model_path(config.weak.model), head="linear")
        train_classifier(
            model,
            [inputs[i] for i in train_ids],
            [labels[i] for i in train_ids],
            settings.with_seed(member.train_seed),
            on_step=progress_reporter(ctx, f"cross-fit {fold + 1}/{CROSSFIT_FOLDS}"),
            checkpoint_dir=env.job_dir(ctx.job.id) / f"crossfit-{fold}",
        )
        probs = predict_proba(model, [inputs[i] for i in held_out], max_length=settings.max_length)
        return dict(zip(held_out, probs, strict=True))

    crossfit = cross_fit([example.id for example in train], CROSSFIT_FOLDS, member.train_seed, fit_predict)
    with ctx.sessions.begin() as session:
        row = get_or_create_model(
            session,
            crossfit_model_name(run_id, member),
            role="weak",
            base=env.weak_model_path(config.weak.model),
            run_id=run_id,
            condition=f"crossfit:{member.key}",
            member=member.debate_seed,
            seed=member.train_seed,
            checkpoint_path=None,
        )
        write_labels(session, row.id, {**soft, **crossfit})


def _predict(model, examples: list[Example], inputs: dict[int, ClassifierInput], max_length: int) -> dict[int, float]:  # noqa: ANN001
    probs = predict_proba(model, [inputs[example.id] for example in examples], max_length=max_length)
    return {example.id: prob for example, prob in zip(examples, probs, strict=True)}


def _train_summary(result) -> dict[str, Any]:  # noqa: ANN001 - trainers.training.TrainResult
    return {
        "steps": result.steps,
        "final_loss": result.final_loss,
        "examples": result.examples,
        "tokens": result.tokens,
        "seconds": round(result.seconds, 2),
        "resumed_from_step": result.resumed_from_step,
        "trim": asdict(result.trim),
    }
