"""What a pipeline worker needs from its machine: paths, the strong model's server, defaults.

Built by the CLI from `service.settings.Settings` (trainers must not import it) and handed
to the job handlers. Model paths left empty in a run config resolve here, per machine, to the
built-in testbed's models (`trainers.testbed`), pretrained on first use and cached.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from trainers.strong.launch import Launch
from trainers.testbed import STRONG, WEAK, ensure_testbed_model


@dataclass(frozen=True)
class WorkerEnv:
    artifacts_dir: Path
    strong_checkpoint: Path  # weights of the served strong base (W2S_STRONG_MODEL_PATH or the testbed's)
    strong_is_built_in: bool  # the testbed's strong model: pretrain it if it is missing
    vllm_base_urls: tuple[str, ...] = ()  # the strong model's replicas: debates go there, adapters are published
    # to each (() = do not publish)
    vllm_pool_affinity: bool = True  # all turns of a debate on one replica
    vllm_health_interval_s: float = 5.0  # seconds between health checks of each replica
    vllm_api_key: str | None = None
    launch: Launch = Launch()  # processes per strong job (torchrun when more than one)

    @property
    def vllm_base_url(self) -> str:
        """The first replica ("" for none): generative runs send their completions to one server."""
        return self.vllm_base_urls[0] if self.vllm_base_urls else ""

    def weak_model_path(self, configured: str | None) -> str:
        """The configured weak model, or the testbed's weak model (pretrained if missing)."""
        if configured:
            return configured
        return str(ensure_testbed_model(self.artifacts_dir / "models" / "testbed-weak", WEAK))

    def strong_model_path(self, configured: str | None) -> str:
        if configured:
            return configured
        if self.strong_is_built_in:
            ensure_testbed_model(self.strong_checkpoint, STRONG)
        return str(self.strong_checkpoint)

    def job_dir(self, job_id: int) -> Path:
        """Scratch space of one job (checkpoints): stable across the job's attempts."""
        return self.artifacts_dir / "jobs" / str(job_id)

    def run_dir(self, run_id: int) -> Path:
        return self.artifacts_dir / "runs" / str(run_id)
