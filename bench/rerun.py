"""Re-running a config reuses its finished steps: time `w2s run CONFIG` twice in a fresh directory.

    .venv/bin/python bench/rerun.py [--config configs/demo.yaml]

Both runs are the real command line in a subprocess with its own SQLite file and artifacts
directory (first: local vLLM start-up, debates, training, report; second: the same config
again, which finds its run finished and prints the table). The last line is one JSON object
{"first_s", "rerun_s", "ratio"} (target ratio <= 0.1).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed_run(config: Path, workdir: Path) -> float:
    env = {
        **os.environ,
        "W2S_DATABASE_URL": f"sqlite:///{workdir / 'w2s.db'}",
        "W2S_ARTIFACTS_DIR": str(workdir / "artifacts"),
        "W2S_VLLM_BASE_URL": "",
    }
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "service.cli", "run", str(config)], cwd=ROOT, env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"w2s run failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "demo.yaml")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="w2s-rerun-") as tmp:
        first = timed_run(args.config.resolve(), Path(tmp))
        print(f"first run: {first:.1f}s", flush=True)
        rerun = timed_run(args.config.resolve(), Path(tmp))
        print(f"re-run:    {rerun:.1f}s", flush=True)
    print(json.dumps({"first_s": round(first, 2), "rerun_s": round(rerun, 2), "ratio": round(rerun / first, 4)}))


if __name__ == "__main__":
    main()
