"""The one `Settings` object: every environment knob of debate-w2s, prefix `W2S_`.

Built by entry points (CLI, app factory, workers) and passed down; never at import time.
"""

from pathlib import Path
from typing import Annotated

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
        True, description="Keep all turns of a debate on one replica (its prefix cache); false: round-robin requests.")
    vllm_health_interval_s: float = Field(
        5.0, gt=0, description="Seconds between health checks of each strong-model replica.")
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
        100 * 1024 * 1024, gt=0,
        description="Largest training file POST /v1/files accepts (bytes); files go to `artifacts_dir/files`.",
    )
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Bearer API keys, comma-separated. Empty: the API is open (local use only).",
    )

    @field_validator("strong_model_path", mode="before")
    @classmethod
    def _empty_path_is_unset(cls, value: object) -> object:
        """`W2S_STRONG_MODEL_PATH=` means the default, not the current directory."""
        return None if value == "" else value

    @field_validator("api_keys", "vllm_base_urls", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [key.strip() for key in value.split(",") if key.strip()]
        return value

    def vllm_targets(self) -> list[str]:
        """The strong model's replicas as configured (empty: the CLI starts a local vLLM)."""
        return self.vllm_base_urls or ([self.vllm_base_url] if self.vllm_base_url else [])

    def strong_checkpoint(self) -> Path:
        """The checkpoint a local vLLM serves (explicit, or the testbed's strong model)."""
        return self.strong_model_path or self.artifacts_dir / "models" / "testbed-strong"
