"""The generative run config: `kind: generative` in a YAML file, validated by pydantic with extra="forbid".

    config = load_generative_config(Path("configs/toxicity.yaml"))

Conditions, each scored on the test split by the task's scorer: `weak` (the weak model SFT-trained on
weak_train's reference targets), `w2s` (the strong model SFT-trained on the weak model's
strong_train outputs), `w2s_refined:<method>` (on those outputs after the strong model, served by
vLLM, refined them: `icl` or `intent`; Somerstep et al.), `ceiling` (on strong_train's references).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError, field_validator

from trainers.generative.tasks import get_generative_task
from trainers.hyperparameters import LoraSettings, RefineSettings
from trainers.pipeline.config import RunConfigError, _Strict, format_validation_error, three_splits
from trainers.scorers import ScorerSpec
from trainers.tasks import TaskDataError


class SftSettings(_Strict):
    epochs: float = Field(2.0, gt=0)
    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(16, ge=1)
    max_length: int = Field(128, ge=8, description="tokens of prompt + target; prompts are cut from the left")


class GenWeakSettings(_Strict):
    model: str | None = Field(None, description="Weak model checkpoint; None = the testbed's weak model")
    train: SftSettings = SftSettings()


class GenStrongSettings(_Strict):
    model: str | None = Field(None, description="Served name of the strong base in vLLM; None = W2S_STRONG_MODEL")
    checkpoint: str | None = Field(None, description="Its weights for training; None = W2S_STRONG_MODEL_PATH")
    lora: LoraSettings | None = LoraSettings()
    publish: bool = Field(
        True,
        description="Load each finetuned adapter into vLLM and generate the test outputs "
        "there (needs lora); false = generate in the worker",
    )
    train: SftSettings = SftSettings()


class GenerativeRunConfig(_Strict):
    kind: Literal["generative"]
    name: str = ""
    task: str
    data_dir: str | None = None
    limit: int | None = Field(None, ge=1)
    seed: int = 0
    splits: dict[str, int] = Field(default_factory=lambda: {"weak_train": 64, "strong_train": 64, "test": 64})
    weak: GenWeakSettings = GenWeakSettings()
    strong: GenStrongSettings = GenStrongSettings()
    refinement: RefineSettings = RefineSettings()
    max_new_tokens: int = Field(24, ge=1, description="tokens each generated output may have")
    scorer: ScorerSpec | None = Field(None, description="None = the task's default scorer")
    examples_in_report: int = Field(5, ge=0)

    @field_validator("task")
    @classmethod
    def _known_task(cls, task: str) -> str:
        try:
            get_generative_task(task)
        except TaskDataError as exc:
            raise ValueError(str(exc)) from exc
        return task

    @field_validator("splits")
    @classmethod
    def _three_splits(cls, splits: dict[str, int]) -> dict[str, int]:
        return three_splits(splits)

    @property
    def scorer_spec(self) -> ScorerSpec:
        return self.scorer or ScorerSpec(kind=get_generative_task(self.task).scorer)

    def conditions(self) -> list[str]:
        return ["weak", "w2s", *(f"w2s_refined:{method}" for method in self.refinement.methods), "ceiling"]


def is_generative(data: Any) -> bool:
    return isinstance(data, dict) and data.get("kind") == "generative"


def parse_generative_config(data: Any) -> GenerativeRunConfig:
    try:
        return GenerativeRunConfig.model_validate(data)
    except ValidationError as exc:
        raise RunConfigError(format_validation_error(exc)) from exc


def load_generative_config(path: Path) -> GenerativeRunConfig:
    try:
        return parse_generative_config(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as exc:
        raise RunConfigError(f"cannot read run config {path}: {exc}") from exc
