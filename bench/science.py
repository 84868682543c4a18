"""The science on the built-in testbed, from nothing: pretrain the testbed's models, start vLLM, run.

    .venv/bin/python bench/science.py [--seeds 3] [--keep DIR]

One `w2s run` (the real command line, in a subprocess, fresh SQLite file and artifacts directory,
so the models are pretrained and vLLM started inside the timed run) of `configs/demo.yaml` — the
testbed with conditions no_debate and debate_ensemble (k = 2), strong losses xent and logconf and
the ceiling — over `--seeds` training seeds. Every figure is read back from the run's report, which averages over
seeds with 95% bootstrap intervals over seeds and test examples (see README, "Confidence
intervals"). The last line is one JSON object:

    {"seeds", "weak_acc", "ceiling_acc", "pgr_xent", "pgr_xent_ci_low", "pgr_logconf",
     "pgr_debate_ensemble", "pgr_no_debate", "weak_transcript_gain", "seconds"}

accuracies and PGRs as means over seeds; `weak_acc` is the no-debate weak supervisor;
`pgr_xent` / `pgr_logconf` are W2S on its labels; `pgr_debate_ensemble` and `pgr_no_debate`
compare the two supervisors under xent (so `pgr_no_debate` equals `pgr_xent`);
`weak_transcript_gain` is the debate ensemble's weak accuracy minus the no-debate one.
Targets: pgr_xent >= 0.3 with pgr_xent_ci_low > 0, pgr_logconf > pgr_xent, seconds <= 600 on 2 cores.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "configs" / "demo.yaml"


def config(seeds: int) -> dict:
    """The demo's config (one source of truth for the testbed's settings) with `seeds` training seeds."""
    return {**yaml.safe_load(DEMO.read_text()), "name": "bench-science", "seeds": seeds}


def run(workdir: Path, seeds: int) -> tuple[dict, float]:
    """`w2s run` of the config in `workdir`; (the report as JSON, seconds)."""
    path = workdir / "science.yaml"
    path.write_text(yaml.safe_dump(config(seeds)))
    env = {
        **os.environ,
        "W2S_DATABASE_URL": f"sqlite:///{workdir / 'w2s.db'}",
        "W2S_ARTIFACTS_DIR": str(workdir / "artifacts"),
        "W2S_VLLM_BASE_URL": "",
        "W2S_STRONG_MODEL_PATH": "",
    }
    # Empty: the testbed's own strong model, pretrained inside the timed run.
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "run", str(path)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    print(done.stdout[-4000:], flush=True)
    if done.returncode != 0:
        sys.exit(f"w2s run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    report = subprocess.run(
        [sys.executable, "-m", "service.cli", "report", "1", "--format", "json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(report.stdout), seconds


def summary(report: dict, seconds: float) -> dict:
    rows = {(row["condition"], row["loss"]): row for row in report["rows"]}

    def value(condition: str, loss: str, field: str, part: str = "value") -> float | None:
        estimate = rows[(condition, loss)][field]
        return None if estimate is None else round(estimate[part], 4)

    return {
        "seeds": rows[("no_debate", "xent")]["seeds"],
        "weak_acc": value("no_debate", "xent", "weak_accuracy"),
        "ceiling_acc": value("no_debate", "xent", "ceiling_accuracy"),
        "pgr_xent": value("no_debate", "xent", "pgr"),
        "pgr_xent_ci_low": value("no_debate", "xent", "pgr", "low"),
        "pgr_logconf": value("no_debate", "logconf", "pgr"),
        "pgr_debate_ensemble": value("debate_ensemble", "xent", "pgr"),
        "pgr_no_debate": value("no_debate", "xent", "pgr"),
        "weak_transcript_gain": round(
            value("debate_ensemble", "xent", "weak_accuracy") - value("no_debate", "xent", "weak_accuracy"), 4
        ),
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--keep", type=Path, help="run in this (empty) directory and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="w2s-science-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report, seconds = run(workdir, args.seeds)
    print(json.dumps(summary(report, seconds)))


if __name__ == "__main__":
    main()
