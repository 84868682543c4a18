"""`compile`: the model's forward and backward compiled by torch.compile train like the plain path, and resume exactly.

Inductor compiles the tiny model in about 30 s on a 2-core CPU (its on-disk cache makes later compiles of
the same graph shorter); each compiled run below compiles once, its shapes dynamic.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

# one_thread: test_training's autouse fixture, imported so that it applies here too
from tests.trainers.test_training import changed, fast_config, keyword_set, one_thread, snapshot  # noqa: F401
from trainers.training import Classifier, LoraSettings, StepInfo, TrainResult, load_classifier, train_classifier

pytestmark = pytest.mark.slow


def train(model_dir: Path, *, compile: bool, dropout: float, **kwargs: object) -> tuple[Classifier, TrainResult]:
    """LoRA + linear head over 12 steps of batches of different padded lengths (micro-batches of two sizes)."""
    model = load_classifier(model_dir, head="linear", lora=LoraSettings(r=4, dropout=dropout), seed=0)
    inputs, targets = keyword_set(42, seed=0)
    config = fast_config(epochs=2, batch_size=8, micro_batch_size=4, checkpoint_every=2, compile=compile)
    return model, train_classifier(model, inputs, targets, config, **kwargs)


def test_compiled_run_gives_the_plain_losses_and_weights(tiny_model_dir: Path) -> None:
    plain, expected = train(tiny_model_dir, compile=False, dropout=0.0)
    compiled, result = train(tiny_model_dir, compile=True, dropout=0.0)
    assert result.losses == pytest.approx(expected.losses, rel=1e-4, abs=1e-6)
    weights = dict(compiled.named_parameters())
    for name, before in snapshot(plain).items():
        assert torch.allclose(weights[name], before, rtol=1e-4, atol=1e-6), name
    trained = changed(
        snapshot(load_classifier(tiny_model_dir, head="linear", lora=LoraSettings(r=4), seed=0)), compiled
    )
    assert trained  # the comparison is of trained weights, not of two untouched copies


def test_compiled_run_killed_and_resumed_ends_with_the_same_weights(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Dropout too: the compiled graph draws its own random numbers, reseeded every step like the plain ones."""
    uninterrupted, expected = train(tiny_model_dir, compile=True, dropout=0.1)

    def cancel_at_step_5(info: StepInfo) -> None:
        if info.step == 5:
            raise KeyboardInterrupt("job cancelled")

    with pytest.raises(KeyboardInterrupt):
        train(tiny_model_dir, compile=True, dropout=0.1, on_step=cancel_at_step_5, checkpoint_dir=tmp_path)
    resumed, result = train(tiny_model_dir, compile=True, dropout=0.1, checkpoint_dir=tmp_path)
    assert result.resumed_from_step == 4 and result.steps == expected.steps == 12
    assert result.losses == expected.losses
    assert changed(snapshot(uninterrupted), resumed) == set()
