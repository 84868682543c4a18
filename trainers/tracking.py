"""Optional experiment tracking: every training job's curves and a run's final metrics as
TensorBoard event files, for people who already read runs in TensorBoard. Off by default.

    W2S_TRACKING=tensorboard w2s run configs/demo.yaml      # events under ARTIFACTS/tensorboard
    tensorboard --logdir artifacts/tensorboard

One directory per run (`run<N>`; `jobs` for jobs of no run, such as fine-tuning API jobs); tags
`<kind>/job<id>/<name>` for the step-by-step values a training job reports (loss, learning
rate, held-out metrics) and `metrics/<condition>/<name>` for the run's results (TensorBoard writes
":" in a condition as "_"). `NullTracker` is the do-nothing stand-in the workers use when
tracking is off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from service.store.jobs import ClaimedJob

log = logging.getLogger(__name__)


class Tracker(Protocol):
    def log_progress(self, job: ClaimedJob, progress: Mapping[str, Any]) -> None: ...

    def log_metrics(self, run_id: int, metrics: Mapping[str, float]) -> None: ...

    def close(self) -> None: ...


class NullTracker:
    """Tracking off: nothing is written."""

    def log_progress(self, job: ClaimedJob, progress: Mapping[str, Any]) -> None:
        pass

    def log_metrics(self, run_id: int, metrics: Mapping[str, float]) -> None:
        pass

    def close(self) -> None:
        pass


class TensorBoardTracker:
    """Writes event files under `log_dir`; safe to share between worker threads."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._writers: dict[str, Any] = {}
        self._lock = threading.Lock()

    def log_progress(self, job: ClaimedJob, progress: Mapping[str, Any]) -> None:
        """A training step's scalars (progress that carries a loss), at step = `done`."""
        if not isinstance(progress.get("loss"), int | float):
            return
        scalars = {name: progress[name] for name in ("loss", "lr") if isinstance(progress.get(name), int | float)}
        evaluation = progress.get("evaluation") or {}
        scalars |= {f"valid_{name}": value for name, value in evaluation.items() if isinstance(value, int | float)}
        run = f"run{job.run_id}" if job.run_id is not None else "jobs"
        self._write(
            run,
            {f"{job.kind}/job{job.id}/{name}": value for name, value in scalars.items()},
            int(progress.get("done") or 0),
        )

    def log_metrics(self, run_id: int, metrics: Mapping[str, float]) -> None:
        self._write(f"run{run_id}", {f"metrics/{name}": value for name, value in metrics.items()}, 0)

    def close(self) -> None:
        with self._lock:
            for writer in self._writers.values():
                writer.close()
            self._writers.clear()

    def _write(self, run: str, scalars: Mapping[str, float], step: int) -> None:
        # A lost curve point must never fail the training job that reported it.
        try:
            with self._lock:
                writer = self._writers.get(run) or self._open(run)
                for tag, value in scalars.items():
                    writer.add_scalar(tag, value, step)
                writer.flush()
        except Exception:  # noqa: BLE001
            log.exception("could not write TensorBoard scalars to %s", self.log_dir / run)

    def _open(self, run: str) -> Any:  # noqa: ANN401 - tensorboardX.SummaryWriter, imported on first use
        from tensorboardX import SummaryWriter

        self._writers[run] = SummaryWriter(str(self.log_dir / run))
        return self._writers[run]


def make_tracker(kind: str, log_dir: Path) -> Tracker:
    """The tracker a setting names: "none" (default) or "tensorboard"."""
    return TensorBoardTracker(log_dir) if kind == "tensorboard" else NullTracker()
