"""Generative W2S at small sizes on a CPU: one toxicity run and one refinement run, end to end.

    .venv/bin/python bench/generative.py --data-dir /path/to/real_toxicity_prompts [--keep DIR]

Pretrains the testbed's models, starts vLLM (the strong testbed model, LoRA on), and runs
`configs/toxicity.yaml` and `configs/refinement_testbed.yaml` through the job queue with in-process
workers on a fresh SQLite file. Every number is read back from the runs' `metrics` rows. The last line
is one JSON object:

    {"toxicity": {"weak", "w2s", "w2s_refined", "ceiling", "pgr"},
     "refinement": {"weak", "w2s", "w2s_refined", "ceiling", "pgr", "pgr_refined"},
     "scorer_auroc", "seconds"}

`w2s_refined` is the intent-and-refine condition (the ICL one is in the report). Each score is the mean over
the config's seeds and test examples; `<key>_ci` next to it is its 95% interval (paired bootstrap over seeds and
test examples), and `pgr` is null when undefined (the ceiling does not beat weak significantly). Targets:
scorer_auroc >= 0.8, seconds <= 900 on 2 cores. Whether refinement beats plain W2S is measured, not targeted.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path[0] = str(ROOT)  # the repo instead of bench/, whose queue.py would shadow the stdlib queue torch imports

from service.local_vllm import start_local_vllm  # noqa: E402
from service.store import Job, Metric, make_engine, make_session_factory, migrate  # noqa: E402
from trainers.generative.plan import GENERATIVE_JOB_KINDS  # noqa: E402
from trainers.jobs import pipeline_handlers  # noqa: E402
from trainers.jobs.env import WorkerEnv  # noqa: E402
from trainers.runs import load_any_run_config, submit_any_run  # noqa: E402
from trainers.testbed import STRONG, ensure_testbed_model  # noqa: E402
from trainers.worker import Worker  # noqa: E402

REFINED = "w2s_refined:intent"


def run_config(path: Path, env: WorkerEnv, sessions, data_dir: Path | None = None) -> int:  # noqa: ANN001
    config = load_any_run_config(path, data_dir=str(data_dir) if data_dir else None)
    with sessions.begin() as session:
        run, _ = submit_any_run(session, config, strong_model="strong")
        run_id = run.id
    handlers = pipeline_handlers(env)
    Worker(sessions, {kind: handlers[kind] for kind in GENERATIVE_JOB_KINDS}).run(exit_when_idle=True)
    with sessions() as session:
        failed = session.scalars(select(Job).where(Job.run_id == run_id, Job.status != "succeeded")).all()
        if failed:
            raise SystemExit("\n".join(f"job {job.id} {job.kind} {job.status}: {job.error}" for job in failed))
    return run_id


def metrics(sessions, run_id: int) -> dict[tuple[str, str], float | None]:  # noqa: ANN001
    with sessions() as session:
        rows = session.scalars(select(Metric).where(Metric.run_id == run_id))
        return {(row.condition, row.name): row.value for row in rows}


CONDITIONS = (("weak", "weak"), ("w2s", "w2s"), ("w2s_refined", REFINED), ("ceiling", "ceiling"))


def summary(values: dict, *, refined_pgr: bool) -> dict:
    """The issue's keys (means over seeds and test examples) plus `<key>_ci`: [low, high] 95% intervals."""
    out: dict[str, Any] = {}
    for name, condition in CONDITIONS:
        out[name] = values[(f"gen/{condition}", "mean_score")]
        out[f"{name}_ci"] = [values[(f"gen/{condition}", "ci_low")], values[(f"gen/{condition}", "ci_high")]]
    pgrs = [("pgr", "w2s"), *([("pgr_refined", REFINED)] if refined_pgr else [])]
    for name, condition in pgrs:
        out[name] = values[(f"gen/{condition}", "pgr")]  # null: undefined, the ceiling does not beat weak
        out[f"{name}_ci"] = [values[(f"gen/{condition}", "pgr_ci_low")], values[(f"gen/{condition}", "pgr_ci_high")]]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="the real_toxicity_prompts directory")
    parser.add_argument("--keep", type=Path, help="work here (kept) instead of a temporary directory")
    args = parser.parse_args()
    started = time.monotonic()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-generative-"))
    strong = ensure_testbed_model(work / "models" / "testbed-strong", STRONG)
    url = f"sqlite:///{work / 'w2s.db'}"
    migrate.upgrade(url)
    sessions = make_session_factory(make_engine(url))
    with start_local_vllm(strong, served_name="strong", enable_lora=True, log_path=work / "vllm.log") as server:
        env = WorkerEnv(
            artifacts_dir=work, strong_checkpoint=strong, strong_is_built_in=True, vllm_base_urls=(server.base_url,)
        )
        toxicity = run_config(ROOT / "configs" / "toxicity.yaml", env, sessions, data_dir=args.data_dir)
        refinement = run_config(ROOT / "configs" / "refinement_testbed.yaml", env, sessions)
    tox, ref = metrics(sessions, toxicity), metrics(sessions, refinement)
    for run_id in (toxicity, refinement):
        print((work / "runs" / str(run_id) / "report.md").read_text())
    print(
        json.dumps(
            {
                "toxicity": summary(tox, refined_pgr=False),
                "refinement": summary(ref, refined_pgr=True),
                "scorer_auroc": tox[("scorer", "heldout_auroc")],
                "seconds": round(time.monotonic() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
