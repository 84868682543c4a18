"""The generative run config: `kind: generative` in a YAML file, validated by pydantic with extra="forbid".

    config = load_any_run_config(Path("configs/toxicity.yaml"))   # trainers.runs: either kind of run

Conditions, each scored on the test split by the task's scorer: `weak` (the weak model SFT-trained on
weak_train's reference targets), `w2s` (the strong model SFT-trained on the weak model's
strong_train outputs), `w2s_refined:<method>` (on those outputs after the strong model, served by
vLLM, refined them: `icl` or `intent`; Somerstep et al.), `ceiling` (on strong_train's references).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from trainers.generative.tasks import get_generative_task
from trainers.hyperparameters import LoraSettings, RefineSettings, Seeds, SftSettings
from trainers.pipeline.config import RunConfigError, Splits, _Strict, format_validation_error
from trainers.scorers import ScorerSpec
from trainers.tasks import TaskDataError

# What SFT trains with when a config leaves a field of `train:` out (trainers.hyperparameters.SftSettings
# defines the fields; its own defaults are the classifier's).
SFT_DEFAULTS: dict[str, Any] = {"lr": 1e-3, "batch_size": 16, "max_length": 128}


def _with_sft_defaults(train: Any) -> Any:
    """A `train:` mapping gets the generative defaults for the fields it leaves out."""
    return {**SFT_DEFAULTS, **train} if isinstance(train, dict) else train


class GenWeakSettings(_Strict):
    model: str | None = Field(None, description="Weak model checkpoint; None = the testbed's weak model")
    train: SftSettings = SftSettings(**SFT_DEFAULTS)

    train_defaults = field_validator("train", mode="before")(_with_sft_defaults)


class GenStrongSettings(_Strict):
    model: str | None = Field(None, description="Served name of the strong base in vLLM; None = W2S_STRONG_MODEL")
    checkpoint: str | None = Field(None, description="Its weights for training; None = W2S_STRONG_MODEL_PATH")
    lora: LoraSettings | None = LoraSettings()
    publish: bool = Field(
        True,
        description="Load each finetuned adapter into vLLM and generate the test outputs "
        "there (needs lora); false = generate in the worker",
    )
    train: SftSettings = SftSettings(**SFT_DEFAULTS)

    train_defaults = field_validator("train", mode="before")(_with_sft_defaults)


class GenerativeRunConfig(_Strict):
    kind: Literal["generative"]
    name: str = ""
    task: str
    data_dir: str | None = None
    limit: int | None = Field(None, ge=1)
    seed: int = Field(0, description="Draws the examples and their splits (the same for every training seed)")
    seeds: Seeds = Field(
        (0,),
        description="Training seeds: a list, or a count n meaning 0..n-1. Each seed gets its own weak SFT, "
        "refinement and strong models; the report averages over seeds and bootstraps over seeds and test examples",
        exclude_if=lambda seeds: seeds == (0,),
    )  # a single-seed config keeps the stored shape and hash it had before `seeds`
    splits: Splits = Field(default_factory=lambda: {"weak_train": 64, "strong_train": 64, "test": 64})
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


def stored_generative_config(stored: dict[str, Any]) -> GenerativeRunConfig:
    """The config of a run row (`runs.config`: the config plus what was resolved at submission)."""
    return GenerativeRunConfig.model_validate({key: value for key, value in stored.items() if key != "resolved"})
