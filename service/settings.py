"""The one `Settings` object: every environment knob of debate-w2s, prefix `W2S_`.

Built by entry points (CLI, app factory, workers) and passed down; never at import time.
"""

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="W2S_", env_file=".env", extra="ignore")

    database_url: str = Field(
        "sqlite:///w2s.db",
        description="SQLAlchemy URL. Default: a SQLite file in the working directory. "
        "PostgreSQL: postgresql+psycopg://user:pass@host/db",
    )
    vllm_base_url: str = Field(
        "",
        description="Base URL of an OpenAI-compatible server (e.g. http://host:8000). "
        "Empty: the CLI starts a local vLLM on `strong_model_path`.",
    )
    vllm_base_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Several replicas of the strong model, comma-separated base URLs (wins over `vllm_base_url`). "
        "A URL whose host resolves to several addresses (a headless Kubernetes Service) is one replica per address.",
    )
    vllm_pool_affinity: bool = Field(
        True, description="Keep all turns of a debate on one replica (its prefix cache); false: round-robin requests."
    )
    vllm_health_interval_s: float = Field(
        5.0, gt=0, description="Seconds between health checks of each strong-model replica."
    )
    vllm_api_key: str = Field("", description="Bearer key the strong-model server expects, if any.")
    strong_model: str = Field("strong", description="Served model name of the strong model in vLLM.")
    strong_model_path: Path | None = Field(
        None,
        description="Checkpoint the local vLLM serves and strong jobs train. Empty: the built-in testbed's "
        "strong model (pretrained here on arithmetic facts, ~2 CPU-minutes once) under "
        "`artifacts_dir/models/testbed-strong`.",
    )
    vllm_max_model_len: int = Field(1024, description="--max-model-len for a locally started vLLM.")
    vllm_start_timeout_s: float = Field(600.0, description="How long to wait for a local vLLM to be ready.")
    artifacts_dir: Path = Field(Path("artifacts"), description="Where checkpoints, adapters and reports go.")
    max_upload_bytes: int = Field(
        100 * 1024 * 1024,
        gt=0,
        description="Largest training file POST /v1/files accepts (bytes); files go to `artifacts_dir/files`.",
    )
    tracking: Literal["none", "tensorboard"] = Field(
        "none",
        description="Experiment tracking: none (default), or tensorboard: event files of every training job's "
        "curves and each `w2s run`'s metrics under `tracking_dir`.",
    )
    tracking_dir: Path | None = Field(
        None,
        description="Where tracking writes (TensorBoard --logdir). Empty: `artifacts_dir/tensorboard`.",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer API keys, comma-separated. Empty: the API is open (local use only).",
    )
    vllm_port: int | None = Field(
        None,
        ge=1,
        le=65535,
        description="Port of the local vLLM that `w2s strong up` / `w2s serve` start; empty: a free one.",
    )
    data_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories (comma-separated) under which a run submitted over the API may read `data_dir`. "
        "Empty: `artifacts_dir/data`. The local CLI (`w2s run`) is not limited.",
    )
    model_roots: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="Directories (comma-separated) under which a run submitted over the API may name "
        "`weak.model` and `strong.checkpoint` (no hub ids). Empty: `artifacts_dir/models`.",
    )
    max_request_bytes: int = Field(
        16 * 1024 * 1024,
        gt=0,
        description="Largest request body (bytes) except uploads; more is a 413.",
    )
    max_string_chars: int = Field(
        100_000,
        gt=0,
        description="Longest string anywhere in a JSON body or query (characters); more is a 422.",
    )
    max_debate_tokens: int = Field(
        65_536,
        gt=0,
        description="Token budget of one POST /v1/debates: n_samples x turns x sampling.max_tokens; more is a 422.",
    )
    debate_timeout_s: float = Field(
        300.0,
        gt=0,
        description="How long one POST /v1/debates may run before it is stopped (504, nothing stored).",
    )
    health_cache_s: float = Field(
        10.0,
        ge=0,
        description="How long /healthz reuses its last strong-model check (no completion per call).",
    )

    @field_validator("strong_model_path", "tracking_dir", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        """`W2S_STRONG_MODEL_PATH=` means the default, not the current directory."""
        return None if value == "" else value

    @field_validator("api_keys", "data_roots", "model_roots", "vllm_base_urls", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    def allowed_data_roots(self) -> list[Path]:
        return [root.resolve() for root in self.data_roots or [self.artifacts_dir / "data"]]

    def allowed_model_roots(self) -> list[Path]:
        return [root.resolve() for root in self.model_roots or [self.artifacts_dir / "models"]]

    def tracking_path(self) -> Path:
        return self.tracking_dir or self.artifacts_dir / "tensorboard"

    def vllm_targets(self) -> list[str]:
        """The strong model's replicas as configured (empty: the CLI starts a local vLLM)."""
        return self.vllm_base_urls or ([self.vllm_base_url] if self.vllm_base_url else [])

    def strong_checkpoint(self) -> Path:
        """The checkpoint a local vLLM serves (explicit, or the testbed's strong model)."""
        return self.strong_model_path or self.artifacts_dir / "models" / "testbed-strong"
