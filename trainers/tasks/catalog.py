"""The known tasks: name -> Task (framing, answer words, hub source)."""

from __future__ import annotations

from trainers.tasks.schema import Task, TaskDataError

# The LM head reads the next-token logits of these words after the example; every task is
# phrased as "is this candidate right?" (for label-only tasks the candidate is the positive
# class, so " Yes" means that class), so yes/no fits them all.
YES_NO = (" No", " Yes")

TASKS: dict[str, Task] = {
    task.name: task
    for task in (
        # Burns et al.'s format: question and answer only.
        Task("sciq", framing="sciq", answer_words=YES_NO, hub_id="allenai/sciq", has_passage=False),
        # An explicit variant, not the paper's: the support passage as context. The correct
        # answer is verbatim in it for most rows, so the task becomes largely string matching.
        Task("sciq_support", framing="sciq", answer_words=YES_NO, hub_id="allenai/sciq", has_passage=True),
        Task("boolq", framing="boolq", answer_words=YES_NO, hub_id="google/boolq", has_passage=True),
        Task(
            "cosmos_qa",
            framing="cosmos_qa",
            answer_words=YES_NO,
            hub_id="allenai/cosmos_qa",
            has_passage=True,
        ),
        # The conversation is the question, not a context, so there is nothing to quote from.
        Task(
            "anthropic_hh",
            framing="anthropic_hh",
            answer_words=YES_NO,
            hub_id="Anthropic/hh-rlhf",
            has_passage=False,
        ),
        Task(
            "amazon_polarity",
            framing="amazon_polarity",
            answer_words=YES_NO,
            hub_id="fancyzhx/amazon_polarity",
            has_passage=False,
        ),
        # WTS ships safety.csv in its repository only; there is no hub copy.
        Task("safety", framing="safety", answer_words=YES_NO, hub_id=None, has_passage=False),
        Task(
            "legal",
            framing="legal",
            answer_words=YES_NO,
            hub_id="nguha/legalbench",
            has_passage=True,
            hub_config="privacy_policy_qa",
        ),
        Task("synthetic", framing="synthetic", answer_words=YES_NO, hub_id=None, has_passage=False),
        # The built-in latent-knowledge testbed (trainers.tasks.testbed): claims in the format the
        # testbed models were pretrained on, debated by the strong model computing the answer.
        Task("testbed", framing="arithmetic", answer_words=YES_NO, hub_id=None, has_passage=False),
    )
}


def task_names() -> list[str]:
    """Every task name, in a stable order (the order above)."""
    return list(TASKS)


def get_task(name: str) -> Task:
    """The task called `name`; TaskDataError listing the known names otherwise."""
    if name not in TASKS:
        raise TaskDataError(f"unknown task {name!r}; known tasks: {', '.join(TASKS)}")
    return TASKS[name]
