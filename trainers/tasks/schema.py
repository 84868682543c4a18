"""The value types of the tasks package: one binary example, one task, the error.

Every task becomes the same shape (Burns et al. 2023): a question, ONE candidate answer,
and a 0/1 label saying whether that candidate is right. In label-only tasks the candidate is
always the positive class ("yes", "positive", ...), so the label is the example's class.
The weak and strong models, the debaters and the database all see only this shape, never a
dataset's own fields.
"""

from __future__ import annotations

from dataclasses import dataclass

from trainers.errors import TaskDataError

# Database column widths (examples.source_id / examples.candidate_id); checked here so a
# bad id fails at ingest with its task and row, not as an opaque SQL error later.
MAX_SOURCE_ID_CHARS = 128
MAX_CANDIDATE_ID_CHARS = 64


@dataclass(frozen=True)
class TaskExample:
    """One binary example: is `candidate` the right answer to `question`?"""

    task: str
    source_id: str  # unique within the task; all candidates of one source row share it
    candidate_id: str  # which candidate this is: "correct", "distractor2", "chosen", "yes", ...
    question: str
    candidate: str
    label: int  # 1 = the candidate is correct, 0 = it is not
    context: str | None = None  # passage / support / clause, when the task has one

    def __post_init__(self) -> None:
        if self.label not in (0, 1):
            raise TaskDataError(f"{self.task} {self.source_id}: label must be 0 or 1, got {self.label!r}")
        if not self.source_id or len(self.source_id) > MAX_SOURCE_ID_CHARS:
            raise TaskDataError(
                f"{self.task}: source_id {self.source_id!r} must have 1 to {MAX_SOURCE_ID_CHARS} characters"
            )
        if not self.candidate_id or len(self.candidate_id) > MAX_CANDIDATE_ID_CHARS:
            raise TaskDataError(
                f"{self.task} {self.source_id}: candidate_id {self.candidate_id!r} must have "
                f"1 to {MAX_CANDIDATE_ID_CHARS} characters"
            )


@dataclass(frozen=True)
class Task:
    """What the rest of the project needs to know about a task, besides its examples."""

    name: str
    framing: str  # accepted by debate.framing.framing_for
    answer_words: tuple[str, str]  # (word for "incorrect", word for "correct") read by an LM head
    hub_id: str | None  # Hugging Face dataset id; None when the task has no hub source
    has_passage: bool  # debaters' quotes can be checked against `TaskExample.context`
    hub_config: str | None = None  # the dataset's config name on the hub, when it needs one
