"""Every training option is reachable from a run config and from the fine-tuning API, down to what the
training core builds (TrainConfig, LoraSettings, the loss). A new option fails here until both reach it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.support.training_options import LOGCONF, LORA, PRODUCT, TRAIN
from trainers.hyperparameters import (
    USER_TRAIN_DEFAULTS,
    LogconfSettings,
    LoraSettings,
    ProductSettings,
    StrongSettings,
    TrainConfig,
    TrainSettings,
)
from trainers.jobs.env import WorkerEnv
from trainers.jobs.payloads import FineTuneHyperparameters
from trainers.jobs.strong_job import StrongJob, fit_spec
from trainers.losses import make_loss
from trainers.pipeline import parse_run_config
from trainers.training import ClassifierInput

CHANGED: list[tuple[type[BaseModel], dict[str, Any]]] = [
    (TrainSettings, TRAIN),
    (LoraSettings, LORA),
    (LogconfSettings, LOGCONF),
    (ProductSettings, PRODUCT),
]


@pytest.mark.parametrize(("model", "values"), CHANGED, ids=lambda item: getattr(item, "__name__", ""))
def test_the_table_changes_every_option(model: type[BaseModel], values: dict[str, Any]) -> None:
    assert set(values) == set(model.model_fields)
    assert all(values[name] != field.default for name, field in model.model_fields.items())


def _core(settings: StrongSettings, loss: str, tmp_path: Path) -> tuple[dict, dict, Any]:
    """What the strong job hands the training core for `settings` (train config, LoRA, loss), built by the core."""
    job = StrongJob(
        condition="c",
        settings=settings,
        loss=loss,
        seed=5,
        answer_words=(" No", " Yes"),
        train=[(ClassifierInput("a"), 1.0)],
        evaluate=[],
        run_id=None,
    )
    env = WorkerEnv(artifacts_dir=tmp_path, strong_checkpoint=tmp_path / "strong", strong_is_built_in=False)
    spec = fit_spec(job, env, tmp_path / "checkpoint", tmp_path / "out")
    lora = LoraSettings(**spec.lora).model_dump()
    return TrainConfig(**spec.train).model_dump(), lora, make_loss(spec.loss, **spec.loss_params)


def test_a_run_config_reaches_every_option(tmp_path: Path) -> None:
    config = parse_run_config(
        {
            "task": "synthetic",
            "weak": {"train": TRAIN},
            "strong": {
                "train": TRAIN,
                "lora": LORA,
                "logconf": LOGCONF,
                "product": PRODUCT,
                "losses": ["logconf", "product"],
            },
        }
    )
    assert config.weak.train.with_seed(5).model_dump() == {**TRAIN, "seed": 5}
    for loss, expected in (("logconf", make_loss("logconf", **LOGCONF)), ("product", make_loss("product", **PRODUCT))):
        train, lora, built = _core(config.strong, loss, tmp_path)
        assert (train, lora, built) == ({**TRAIN, "seed": 5}, LORA, expected)


def test_the_fine_tuning_api_reaches_every_option(tmp_path: Path) -> None:
    """The API's own names for three of them (OpenAI's), the `train`, `lora`, `logconf`, `product` extensions
    for the rest; the body -> hyperparameters mapping is tested over HTTP in tests/service/test_api_fine_tuning.py."""
    named = {"epochs", "batch_size", "lr", "eval_every"}
    hyperparameters = FineTuneHyperparameters(
        n_epochs=3,
        batch_size=8,
        learning_rate_multiplier=0.2,
        eval_every=3,
        loss="product",
        lora=LORA,
        train={name: value for name, value in TRAIN.items() if name not in named},
        logconf=LOGCONF,
        product=PRODUCT,
    )
    settings = hyperparameters.strong_settings(publish=True)
    for loss, expected in (("logconf", make_loss("logconf", **LOGCONF)), ("product", make_loss("product", **PRODUCT))):
        train, lora, built = _core(settings, loss, tmp_path)
        assert (train, lora, built) == ({**TRAIN, "seed": 5}, LORA, expected)


def test_user_facing_defaults_stay_as_they_were() -> None:
    """The run config's and the API's training defaults differ from the core's; results must not change."""
    assert TrainSettings().lr == 1e-4 and TrainSettings().batch_size == 32
    config = parse_run_config({"task": "synthetic"})
    assert (config.weak.train.lr, config.weak.train.batch_size) == (5e-4, 16) == tuple(USER_TRAIN_DEFAULTS.values())
    assert (config.strong.train.lr, config.strong.train.batch_size) == (1e-3, 16)  # strong.train left out
    partial = parse_run_config({"task": "synthetic", "strong": {"train": {"epochs": 1}}})
    assert (partial.strong.train.lr, partial.strong.train.batch_size) == (5e-4, 16)
    api = FineTuneHyperparameters().strong_settings(publish=True)
    assert (api.train.lr, api.train.batch_size, api.train.epochs) == (1e-3, 16, 2.0)
    assert config.strong.logconf == LogconfSettings(alpha_max=0.5, warmup_frac=0.2)


def test_run_configs_stored_before_logconf_existed_still_load() -> None:
    config = parse_run_config({"task": "synthetic", "strong": {"alpha_max": 0.75}})
    assert config.strong.logconf.alpha_max == 0.75
    assert parse_run_config(config.model_dump(mode="json")) == config
