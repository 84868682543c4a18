"""Job handlers of generative runs (`trainers.generative.plan`): ingest, weak SFT + generation, refinement
through vLLM, strong SFT + test generation, report.

Every text lands as a `generations` row, one per (model, example), written chunk by chunk in short
transactions: a job killed half-way and run again generates only what is missing.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from service.store.debate_rows import add_example
from service.store.models import Example, Run
from trainers.generative.config import GenerativeRunConfig, stored_generative_config
from trainers.generative.plan import REFERENCE, generative_model_name, refiner_model_name
from trainers.generative.refine import Pair, batches, infer_intents, refine_icl, refine_with_intents
from trainers.generative.rows import generated_texts, split_examples_of, write_generations, write_intent
from trainers.generative.serving import complete_all
from trainers.generative.tasks import load_generative_examples, split_generative
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import job_payload
from trainers.jobs.run_rows import get_or_create_model, model_by_name
from trainers.tasks import TaskDataError
from trainers.worker import JobContext, PermanentJobError

CHUNK = 32  # generations per transaction (and per progress report)
TRAINED_MARKER = "trained.json"


def load_generative_run(session: Session, run_id: int) -> tuple[Run, GenerativeRunConfig]:
    run = session.get(Run, run_id)
    if run is None:
        raise PermanentJobError(f"run {run_id} does not exist (deleted?)")
    return run, stored_generative_config(run.config)


def _setup(ctx: JobContext) -> tuple[int, GenerativeRunConfig, str]:
    """(run id, config, served name of the strong base)."""
    run_id = job_payload(ctx).run_id
    with ctx.sessions() as session:
        run, config = load_generative_run(session, run_id)
        return run_id, config, run.config["resolved"]["strong_model"]


def gen_ingest_handler(_env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        run_id, config, _ = _setup(ctx)
        try:
            data_dir = Path(config.data_dir) if config.data_dir else None
            examples = load_generative_examples(config.task, data_dir=data_dir, seed=config.seed, limit=config.limit)
            splits = split_generative(examples, config.splits, config.seed)
        except TaskDataError as exc:
            raise PermanentJobError(str(exc)) from exc
        with ctx.sessions.begin() as session:
            for split, rows in splits.items():
                for example in rows:
                    add_example(
                        session,
                        run_id=run_id,
                        task=example.task,
                        source_id=example.source_id,
                        candidate_id=REFERENCE,
                        question=example.prompt,
                        candidate=example.target,
                        split=split,
                    )
        return {"splits": {name: len(rows) for name, rows in splits.items()}}

    return handle


def _train_or_resume(
    ctx: JobContext,
    base: str,
    pairs: list[tuple[str, str]],
    config: GenerativeRunConfig,
    *,
    strong: bool,
    seed: int,
    out_dir: Path,
) -> tuple[Any, Any]:
    """The model SFT-trained on `pairs` with training seed `seed` (LoRA init and data order), saved in
    `out_dir`; a resumed job loads it instead of training again."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from trainers.generative.sft import SftConfig, encode_pair, sft_train

    if (out_dir / TRAINED_MARKER).exists():
        return _load_trained(out_dir, base, strong=strong), AutoTokenizer.from_pretrained(base)
    settings = (config.strong if strong else config.weak).train
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base)
    torch.manual_seed(seed)
    if strong and config.strong.lora is not None:
        model = _with_lora(model, config)
    rows = [encode_pair(tokenizer, prompt, target, max_length=settings.max_length) for prompt, target in pairs]
    sft = SftConfig(**settings.model_dump(), seed=seed)

    def on_step(step: int, total: int, loss: float) -> None:
        ctx.report(step, total, stage="training", loss=loss)
        ctx.check()

    losses = sft_train(model, tokenizer, rows, sft, on_step)
    model.save_pretrained(out_dir)
    (out_dir / TRAINED_MARKER).write_text(f'{{"first_loss": {losses[0]}, "last_loss": {losses[-1]}}}')
    return model, tokenizer


def _with_lora(model: Any, config: GenerativeRunConfig) -> Any:
    from peft import LoraConfig, get_peft_model

    lora = config.strong.lora
    return get_peft_model(
        model,
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            task_type="CAUSAL_LM",
        ),
    )


def _load_trained(out_dir: Path, base: str, *, strong: bool) -> Any:
    from transformers import AutoModelForCausalLM

    if strong and (out_dir / "adapter_config.json").exists():
        from peft import PeftModel

        return PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), out_dir).eval()
    return AutoModelForCausalLM.from_pretrained(out_dir).eval()


def _generate_missing(ctx: JobContext, run_id: int, model_id: int, examples: list[Example], generate) -> int:  # noqa: ANN001 - Callable[[list[str]], list[str]]
    """Generate for the examples without a row yet, CHUNK at a time, each chunk committed; how many were new."""
    with ctx.sessions() as session:
        done = set(generated_texts(session, model_id))
    todo = [example for example in examples if example.id not in done]
    for start in range(0, len(todo), CHUNK):
        ctx.check()
        chunk = todo[start : start + CHUNK]
        texts = generate([example.question for example in chunk])
        with ctx.sessions.begin() as session:
            write_generations(session, run_id, model_id, {e.id: t for e, t in zip(chunk, texts, strict=True)})
        ctx.report(len(done) + start + len(chunk), len(examples), stage="generating")
    return len(todo)


def gen_weak_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        from trainers.generative.sft import generate

        run_id, config, _ = _setup(ctx)
        seed = job_payload(ctx).seed
        base = env.weak_model_path(config.weak.model)
        with ctx.sessions.begin() as session:
            train = [(e.question, e.candidate) for e in split_examples_of(session, run_id, "weak_train")]
            targets = split_examples_of(session, run_id, "strong_train") + split_examples_of(session, run_id, "test")
            model_id = get_or_create_model(
                session,
                generative_model_name(run_id, "weak", seed),
                role="weak",
                base=base,
                run_id=run_id,
                condition="weak",
                seed=seed,
            ).id
        model, tokenizer = _train_or_resume(
            ctx, base, train, config, strong=False, seed=seed, out_dir=env.job_dir(ctx.job.id) / "weak"
        )
        new = _generate_missing(
            ctx, run_id, model_id, targets, partial(generate, model, tokenizer, max_new_tokens=config.max_new_tokens)
        )
        return {"model_id": model_id, "generated": new, "examples": len(targets)}

    return handle


def gen_refine_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        run_id, config, strong_model = _setup(ctx)
        payload = job_payload(ctx)
        method, seed = payload.method, payload.seed
        if not env.vllm_base_url:
            raise PermanentJobError("refinement asks the strong model served by vLLM: the worker has no vLLM URL")
        settings = config.refinement
        with ctx.sessions.begin() as session:
            weak = generated_texts(session, model_by_name(session, generative_model_name(run_id, "weak", seed)).id)
            train = split_examples_of(session, run_id, "strong_train")
            pairs = [Pair(e.id, e.question, weak[e.id].text) for e in train]
            refiner_id = get_or_create_model(
                session,
                refiner_model_name(run_id, method, seed),
                role="strong",
                base=strong_model,
                run_id=run_id,
                condition=f"refine:{method}",
                seed=seed,
            ).id

        def complete(prompts: list[str], max_tokens: int, stop: list[str]) -> list[str]:
            return complete_all(
                env.vllm_base_url, strong_model, prompts, max_tokens=max_tokens, stop=stop, api_key=env.vllm_api_key
            )

        common = {"style": settings.prompt_style, "complete": complete}
        if method == "icl":
            refined = refine_icl(pairs, batch_size=settings.batch_size, max_tokens=config.max_new_tokens, **common)
            with ctx.sessions.begin() as session:
                write_generations(session, run_id, refiner_id, refined)
            return {"model_id": refiner_id, "refined": len(refined)}
        groups = batches(pairs, settings.batch_size)
        intents = infer_intents(groups, max_tokens=settings.intent_tokens, **common)
        refined = refine_with_intents(groups, intents, max_tokens=config.max_new_tokens, **common)
        with ctx.sessions.begin() as session:
            ids = [write_intent(session, run_id, refiner_id, index, text) for index, text in enumerate(intents)]
            of_example = {pair.example_id: ids[index] for index, group in enumerate(groups) for pair in group}
            write_generations(session, run_id, refiner_id, refined, intents=of_example)
        return {"model_id": refiner_id, "refined": len(refined), "intents": len(intents)}

    return handle


def gen_strong_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        run_id, config, _ = _setup(ctx)
        payload = job_payload(ctx)
        condition, source, seed = payload.condition, payload.source, payload.seed
        base = env.strong_model_path(config.strong.checkpoint)
        out_dir = env.job_dir(ctx.job.id) / "strong"
        with ctx.sessions.begin() as session:
            pairs = _training_pairs(session, run_id, source)
            test = split_examples_of(session, run_id, "test")
            model_id = get_or_create_model(
                session,
                generative_model_name(run_id, condition, seed),
                role="strong",
                base=base,
                run_id=run_id,
                condition=condition,
                seed=seed,
                checkpoint_path=str(out_dir),
            ).id
        model, tokenizer = _train_or_resume(ctx, base, pairs, config, strong=True, seed=seed, out_dir=out_dir)
        generate, served = _strong_generator(ctx, env, config, model_id, (model, tokenizer), out_dir)
        new = _generate_missing(ctx, run_id, model_id, test, generate)
        return {
            "model_id": model_id,
            "trained_on": len(pairs),
            "targets_sha256": targets_digest(pairs),
            "generated": new,
            "served_name": served,
        }

    return handle


def _training_pairs(session: Session, run_id: int, source: str) -> list[tuple[str, str]]:
    """(prompt, target) of every strong_train example: its reference, or what model `source` wrote for it."""
    examples = split_examples_of(session, run_id, "strong_train")
    if source == REFERENCE:
        return [(e.question, e.candidate) for e in examples]
    texts = generated_texts(session, model_by_name(session, source).id)
    missing = [e.id for e in examples if e.id not in texts]
    if missing:
        raise PermanentJobError(f"{source} wrote no target for {len(missing)} strong_train examples; re-run its job")
    return [(e.question, texts[e.id].text) for e in examples]


def targets_digest(pairs: list[tuple[str, str]]) -> str:
    """A fingerprint of what a model was trained on: the targets in example order."""
    return hashlib.sha256(json.dumps([target for _, target in pairs]).encode()).hexdigest()


def _strong_generator(
    ctx: JobContext,
    env: WorkerEnv,
    config: GenerativeRunConfig,
    model_id: int,
    trained: tuple[Any, Any],
    adapter_dir: Path,
) -> tuple[Callable[..., list[str]], str | None]:
    """Through vLLM when the adapter is published (as the classification pipeline serves its strong models),
    else in the worker."""
    from trainers.generative.sft import generate

    if not (config.strong.publish and config.strong.lora is not None and env.vllm_base_url):
        return partial(generate, *trained, max_new_tokens=config.max_new_tokens), None
    served = _published_name(ctx, env, model_id, adapter_dir)
    return partial(
        complete_all, env.vllm_base_url, served, max_tokens=config.max_new_tokens, api_key=env.vllm_api_key
    ), served


def _published_name(ctx: JobContext, env: WorkerEnv, model_id: int, adapter_dir: Path) -> str:
    """Register the adapter as a version of the model (once per adapter directory) and load it into vLLM."""
    from sqlalchemy import select

    from service.store.model_versions import register_version
    from service.store.models import Model, ModelVersion
    from trainers.strong.replicas import publish_everywhere

    with ctx.sessions.begin() as session:
        version = session.scalars(
            select(ModelVersion).where(
                ModelVersion.model_id == model_id, ModelVersion.adapter_path == str(adapter_dir.resolve())
            )
        ).first()
        if version is None:
            version = register_version(session, session.get(Model, model_id), adapter_dir)
        version_id, served = version.id, version.served_name
    publish_everywhere(ctx.sessions, version_id, env.vllm_base_urls, api_key=env.vllm_api_key)
    return served


def gen_report_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        from trainers.generative.report import (
            build_generative_report,
            generative_markdown,
            score_run,
            write_generative_metrics,
            write_scorer_quality,
        )
        from trainers.scorers import ScorerError

        run_id, config, _ = _setup(ctx)
        ctx.report(0, 1, stage="scoring")
        try:
            quality = score_run(ctx.sessions, run_id, config)
        except ScorerError as exc:
            raise PermanentJobError(str(exc)) from exc
        with ctx.sessions.begin() as session:
            write_scorer_quality(session, run_id, quality)
            report = build_generative_report(session, run_id, config)
            write_generative_metrics(session, run_id, report)
        out = env.run_dir(run_id)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.md").write_text(generative_markdown(report))
        (out / "report.json").write_text(report.model_dump_json(indent=2))
        return {
            "files": {"markdown": str(out / "report.md"), "json": str(out / "report.json")},
            "report": report.model_dump(mode="json", exclude={"examples"}),
        }

    return handle
