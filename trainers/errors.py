"""The exceptions of the `trainers` package, in one tree.

    TrainersError
    ├── PermanentJobError                 a job failure retrying cannot fix: the worker fails the job at once
    │   └── InvalidPayload                the job row's payload does not parse as its kind's payload
    ├── WorkerStopping                    `ctx.check()` once the worker is asked to stop: the job goes back queued
    ├── RunConfigError (a ValueError)     a run config that does not validate; names every bad field
    ├── TaskDataError                     a task's data is missing, unreadable or not in the expected fields
    ├── TrainingError                     the training core refused or stopped
    │   ├── InputTooLong (a ValueError)   an input without its context already exceeds max_length
    │   ├── CheckpointMismatch (a ValueError)  the checkpoint dir holds another run's checkpoint
    │   ├── TrainingStopped (a RuntimeError)   the other ranks, after rank 0's on_step raised
    │   └── LaunchFailed (a RuntimeError)      torchrun's ranks exited with an error
    └── PublishError                      registering or publishing an adapter failed (trainers.strong.publish)
        └── RepublishIncomplete           republish_all loaded some adapters, not all

Errors of the packages below are theirs: `debate.errors` (the strong model's server, including
its admin endpoints: `VLLMUnreachable`, `LoRAUpdatingDisabled`, `AdapterRejected`) and
`service.store.errors` (the queue, files, model versions). The worker maps any exception to a
job failure; only PermanentJobError skips the retries.
"""

from __future__ import annotations


class TrainersError(Exception):
    """Base class of every error raised on purpose by the `trainers` package."""


class PermanentJobError(TrainersError):
    """A failure that retrying cannot fix (bad payload, missing data): fail the job at once."""


class InvalidPayload(PermanentJobError):
    """A job row's payload does not parse as its kind's payload (written by other code, or by hand)."""


class WorkerStopping(TrainersError):
    """Raised by `ctx.check()` once the worker is asked to stop: the job goes back to the queue."""


class RunConfigError(TrainersError, ValueError):
    """The config is invalid; the message names every bad field as a dotted path."""


class TaskDataError(TrainersError):
    """The task's data is missing, unreadable or not in the expected fields.

    The message names the task, the row when there is one, and what to do about it.
    """


class TrainingError(TrainersError):
    """The training core refused its inputs or stopped."""


class InputTooLong(TrainingError, ValueError):
    """An input's text plus prompt suffix alone exceed `max_length`; only the context may be trimmed."""


class CheckpointMismatch(TrainingError, ValueError):
    """The checkpoint dir holds a checkpoint of a different run (other config, data or model)."""


class TrainingStopped(TrainingError, RuntimeError):
    """Raised on the other ranks when rank 0's `on_step` raised (e.g. the job was cancelled)."""


class LaunchFailed(TrainingError, RuntimeError):
    """The torchrun ranks exited with an error; the message ends with their log's last lines."""


class PublishError(TrainersError):
    """Registering or publishing a model version's adapter failed."""


class RepublishIncomplete(PublishError):
    """`republish_all` loaded `loaded` but not the adapters named in `failures`."""

    def __init__(self, message: str, *, loaded: list[str], failures: dict[str, str]) -> None:
        super().__init__(message)
        self.loaded = loaded
        self.failures = failures
