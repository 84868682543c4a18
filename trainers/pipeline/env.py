"""What a pipeline worker needs from its machine: paths, the strong model's server, defaults.

Built by the CLI from `service.settings.Settings` (trainers must not import it) and handed
to the job handlers. Model paths left empty in a run config resolve here, per machine: the
tiny factory models are byte-identical wherever they are built.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainers.strong.launch import Launch
from trainers.tiny_model import ensure_tiny_model

# The demo's weak model is smaller than its strong one (same tokenizer: it depends only on vocab).
TINY_WEAK = {"layers": 2, "hidden": 64, "heads": 2}


@dataclass(frozen=True)
class WorkerEnv:
    artifacts_dir: Path
    strong_checkpoint: Path            # weights of the served strong base (W2S_STRONG_MODEL_PATH or the tiny default)
    strong_is_tiny: bool               # build the tiny strong model if it is missing
    vllm_base_url: str = ""            # where to publish adapters ("" = do not publish)
    vllm_api_key: str | None = None
    launch: Launch = Launch()          # processes per strong job (torchrun when more than one)

    def weak_model_path(self, configured: str | None) -> str:
        """The configured weak model, or the tiny factory weak model (built if missing)."""
        if configured:
            return configured
        return str(ensure_tiny_model(self.artifacts_dir / "models" / "tiny-weak", **TINY_WEAK))

    def strong_model_path(self, configured: str | None) -> str:
        if configured:
            return configured
        if self.strong_is_tiny:
            ensure_tiny_model(self.strong_checkpoint)
        return str(self.strong_checkpoint)

    def job_dir(self, job_id: int) -> Path:
        """Scratch space of one job (checkpoints): stable across the job's attempts."""
        return self.artifacts_dir / "jobs" / str(job_id)

    def run_dir(self, run_id: int) -> Path:
        return self.artifacts_dir / "runs" / str(run_id)
