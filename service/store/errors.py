"""The exceptions of `service.store`, in one tree.

    StoreError
    ├── JobError                  the queue (service.store.jobs)
    │   ├── JobNotFound           no job with that id (or a depends_on that does not exist)
    │   └── JobLeaseLost          no longer this worker's job: re-queued after its lease expired, or ended
    │       └── JobCancelled      someone cancelled it while it ran
    ├── FileError                 uploaded training files (service.store.uploaded_files)
    │   ├── InvalidFile           not a training file; `line` is the first bad line
    │   ├── FileTooLarge          over the upload limit
    │   ├── FileNotFound          no file with that id
    │   └── FileInUse             a queued or running job trains or validates on it
    └── VersionError              model versions (service.store.model_versions)
        ├── InvalidServedName (a ValueError)  a served name vLLM and URLs cannot carry
        ├── ServedNameTaken       another version already has that served name
        ├── VersionNotFound       no model version with that id
        └── NoAdapter (also debate's AdapterRejected)  no saved adapter, or its directory holds none

Database driver errors (SQLAlchemy) are not wrapped: they are the caller's transaction's.
"""

from __future__ import annotations

from debate.errors import AdapterRejected


class StoreError(Exception):
    """Base class of every error raised on purpose by `service.store`."""


class JobError(StoreError):
    """Base class of queue errors."""


class JobNotFound(JobError):
    """No job with that id (or a `depends_on` names jobs that do not exist)."""


class JobLeaseLost(JobError):
    """The job is no longer this worker's: its lease expired and it was re-queued, or it ended."""


class JobCancelled(JobLeaseLost):
    """Someone cancelled the job while it ran; the worker should stop working on it."""


class FileError(StoreError):
    """Base class of file-store errors."""


class InvalidFile(FileError):
    """The upload is not a training file; `line` is the 1-based number of the first bad line."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class FileTooLarge(FileError):
    """The upload is over the configured limit."""


class FileNotFound(FileError):
    """No stored file with that id (or it was deleted)."""


class FileInUse(FileError):
    """A queued or running job trains or validates on the file."""


class VersionError(StoreError):
    """Base class of model-version errors."""


class InvalidServedName(VersionError, ValueError):
    """A served name with characters outside [A-Za-z0-9._-], or too long for the column."""


class ServedNameTaken(VersionError):
    """Another model version already uses the served name; names are never re-used."""


class VersionNotFound(VersionError):
    """No `model_versions` row has the id asked for."""


class NoAdapter(VersionError, AdapterRejected):
    """The version has no adapter to serve: no adapter_path, or no adapter_config.json in it.

    Also an AdapterRejected: it is what vLLM would answer, and callers that publish catch that one.
    """

    def __init__(self, message: str) -> None:
        super().__init__(message, url="")
