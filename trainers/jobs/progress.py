"""A training run's progress on its job row: step, loss, ETA and the last held-out evaluation."""

from __future__ import annotations

from typing import Any

from trainers.training import StepInfo
from trainers.worker import JobContext


def progress_reporter(ctx: JobContext, stage: str):  # noqa: ANN201 - Callable[[StepInfo], None]
    """on_step callback: progress (step, loss, ETA, last evaluation) on the job row; each evaluation
    also as a metrics event of the job; stops if the job was cancelled."""
    last: dict[str, Any] = {}

    def on_step(info: StepInfo) -> None:
        if info.evaluation is not None:
            last.update(step=info.step, **info.evaluation)
            shown = ", ".join(
                f"{name}={value:.4f}" for name, value in info.evaluation.items() if isinstance(value, float)
            )
            ctx.event(
                f"Step {info.step}/{info.total_steps}: training loss={info.loss:.4f}, held-out {shown}",
                step=info.step,
                train_loss=info.loss,
                **{f"valid_{k}": v for k, v in info.evaluation.items()},
            )
        ctx.report(
            info.step,
            info.total_steps,
            stage=stage,
            epoch=round(info.epoch, 3),
            loss=round(info.loss, 5),
            lr=info.lr,
            **({"evaluation": dict(last)} if last else {}),
        )
        ctx.check()

    return on_step
