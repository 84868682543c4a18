"""The `refine_labels` job: the served strong model relabels one weak condition's strong_train examples
(`trainers.refine_labels`) and the strong model is then finetuned on those labels like on any weak labels.

Rows it writes, for a reader in SQL: the refined labels under a model `run<id>-refined-s<seed>-<c>-<method>`
(`labels`), the strong model's raw answers (`generations`) and, for intent-and-refine, one stated intent
per batch (`intents`), each answer linked to its batch's intent; and on split strong_train the accuracy of
the labels before and after refinement (`metrics` `s<seed>/labels:<c>` and `s<seed>/labels:<c>:refined_<method>`),
which says whether the rewrite corrected the supervision.
"""

from __future__ import annotations

from typing import Any

from trainers.classification_metrics import binary_metrics
from trainers.generative.rows import write_generations, write_intent
from trainers.generative.serving import complete_all
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import job_payload
from trainers.jobs.run_rows import (
    get_or_create_model,
    labelled,
    load_run,
    model_by_name,
    model_labels,
    run_examples,
    scores,
    write_labels,
    write_metrics,
)
from trainers.pipeline.plan import condition_model_name, refined_condition, refined_labels_name, seed_condition
from trainers.refine_labels import Claim, refine_claims
from trainers.worker import JobContext, PermanentJobError

SPLIT = "strong_train"


def refine_labels_handler(env: WorkerEnv):  # noqa: ANN201 - a trainers.worker.Handler
    def handle(ctx: JobContext) -> dict[str, Any]:
        payload = job_payload(ctx)
        run_id, seed, condition, method = payload.run_id, payload.seed, payload.condition, payload.method
        if not env.vllm_base_url:
            raise PermanentJobError("refinement asks the strong model served by vLLM: the worker has no vLLM URL")
        with ctx.sessions.begin() as session:
            run, config = load_run(session, run_id)
            if config.refinement is None:
                raise PermanentJobError(f"run {run_id}'s config has no refinement settings")
            strong_model = run.config["resolved"]["strong_model"]
            weak_id = model_by_name(session, condition_model_name(run_id, seed, condition)).id
            weak = model_labels(session, weak_id)
            examples = run_examples(session, run_id, SPLIT)
            missing = [e.id for e in examples if e.id not in weak]
            if missing:
                raise PermanentJobError(f"the weak labels of {condition} miss {len(missing)} {SPLIT} examples")
            claims = [Claim(e.id, e.question, e.candidate, weak[e.id]) for e in examples]
            model_id = get_or_create_model(
                session,
                refined_labels_name(run_id, seed, condition, method),
                role="strong",
                base=strong_model,
                run_id=run_id,
                condition=refined_condition(condition, method),
                member=None,
                seed=seed,
                checkpoint_path=None,
            ).id

        def complete(prompts: list[str], max_tokens: int, stop: list[str]) -> list[str]:
            ctx.check()
            return complete_all(
                env.vllm_base_url, strong_model, prompts, max_tokens=max_tokens, stop=stop, api_key=env.vllm_api_key
            )

        ctx.report(0, len(claims), stage="refining")
        refined = refine_claims(claims, method, config.refinement, complete)
        ids, gold = labelled(examples)
        before = binary_metrics(gold, [weak[i] for i in ids])
        after = binary_metrics(gold, [refined.labels[i] for i in ids])
        with ctx.sessions.begin() as session:
            intent_ids = [write_intent(session, run_id, model_id, i, text) for i, text in enumerate(refined.intents)]
            of_example = {example: intent_ids[index] for example, index in refined.intent_of.items()}
            write_generations(session, run_id, model_id, refined.answers, intents=of_example or None)
            write_labels(session, model_id, refined.labels)
            write_metrics(session, run_id, weak_id, seed_condition(seed, f"labels:{condition}"), scores(before), SPLIT)
            name = seed_condition(seed, f"labels:{refined_condition(condition, method)}")
            write_metrics(session, run_id, model_id, name, {**scores(after), "unparsed": refined.unparsed}, SPLIT)
        changed = sum((refined.labels[i] >= 0.5) != (weak[i] >= 0.5) for i in ids)
        return {
            "model_id": model_id,
            "examples": len(ids),
            "changed": changed,
            "unparsed": refined.unparsed,
            "intents": len(refined.intents),
            "accuracy_before": before["accuracy"],
            "accuracy_after": after["accuracy"],
        }

    return handle
