"""Length budgets: an example enters a run only if it fits every model the run trains on it.

An example's text is never cut (its candidate comes last; see `trainers.training.inputs`),
so an example too long for one model must be dropped at ingest. Otherwise that model's jobs
fail with `InputTooLong` after the debates and the weak models have already run. Ingest
counts each text with the model's own tokenizer, the way the training core encodes it:

* weak: special prefix + text <= weak.train.max_length - TRANSCRIPT_RESERVE (the rest is
  for the debate transcript, which is trimmed to fit);
* strong: special prefix + text + its prompt suffix (`prompt_suffix`) <= strong.train.max_length.

`budget_problems` is the part that needs no tokenizer. It runs when a config is submitted,
so a config whose budgets can never be met fails right away, not after the first jobs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from service.store.runs import job_results
from trainers.tasks import TaskExample, class_balance, format_example

# Tokens of the weak model's context kept free for the debate transcript: an example longer
# than max_length - TRANSCRIPT_RESERVE would leave (almost) no room for it, so it is dropped.
TRANSCRIPT_RESERVE = 64
# The strong model's LM head reads the logits of the task's two answer words after this suffix.
PROMPT_SUFFIX = "\nIs the proposed answer correct? Answer:"
# Before any tokenizer is loaded the suffix is counted at one token per UTF-8 byte, the most a
# byte-level tokenizer makes of it, plus one special prefix token and one token of text.
MIN_STRONG_LENGTH = len(PROMPT_SUFFIX.encode("utf-8")) + 2


def prompt_suffix(head: str) -> str:
    """What follows the example text for a strong head: the likelihood head scores the answer itself, so nothing."""
    return "" if head == "likelihood" else PROMPT_SUFFIX


def budget_problems(weak_max_length: int, strong_max_length: int, strong_head: str = "lm") -> list[str]:
    """What makes these budgets impossible to meet for every example, naming the config field."""
    problems = []
    if weak_max_length <= TRANSCRIPT_RESERVE:
        problems.append(
            f"weak.train.max_length={weak_max_length} leaves no room for the example text: "
            f"{TRANSCRIPT_RESERVE} tokens of it are kept for the debate transcript; set it above {TRANSCRIPT_RESERVE}"
        )
    if prompt_suffix(strong_head) and strong_max_length < MIN_STRONG_LENGTH:
        problems.append(
            f"strong.train.max_length={strong_max_length} may leave no room for the example text: the prompt "
            f"suffix {PROMPT_SUFFIX!r} can take up to {MIN_STRONG_LENGTH - 2} tokens and a special prefix 1; "
            f"set it to at least {MIN_STRONG_LENGTH}"
        )
    return problems


@dataclass(frozen=True)
class Budget:
    """One model's limit on the example text; `count` gives each text's tokens as that model's input counts them."""

    field: str  # the config field the limit comes from, as users write it
    limit: int
    count: Callable[[list[str]], list[int]]


def apply_budgets(
    examples: Sequence[TaskExample], budgets: Sequence[Budget]
) -> tuple[list[TaskExample], dict[str, Any]]:
    """The examples that fit every budget, and a summary of the dropped ones (see `dropped_note`).

    Each budget is counted over all examples, so the summary says how many each model alone
    would drop; an example over two budgets is dropped once.
    """
    texts = [format_example(example) for example in examples]
    over = {budget.field: [tokens > budget.limit for tokens in budget.count(texts)] for budget in budgets}
    dropped_flags = [any(flags) for flags in zip(*over.values(), strict=True)] if over else [False] * len(examples)
    kept = [example for example, drop in zip(examples, dropped_flags, strict=True) if not drop]
    dropped = [example for example, drop in zip(examples, dropped_flags, strict=True) if drop]
    return kept, {
        "examples": len(examples),
        "dropped": len(dropped),
        "too_long_for": {field: sum(flags) for field, flags in over.items()},
        "text_limits": {budget.field: budget.limit for budget in budgets},
        "kept_balance": class_balance(kept),
        "dropped_balance": class_balance(dropped),
    }


def dropped_note(summary: dict[str, Any]) -> str | None:
    """One line on the dropped examples and the class balance of kept vs dropped; None if none were dropped."""
    if not summary["dropped"]:
        return None
    reasons = ", ".join(
        f"{count} too long for {field} (text limit {summary['text_limits'][field]} tokens)"
        for field, count in summary["too_long_for"].items()
        if count
    )
    return (
        f"ingest dropped {summary['dropped']} of {summary['examples']} examples "
        f"({_percent(summary['dropped'] / summary['examples'])}) that do not fit a model's length budget: "
        f"{reasons}; positive class {_percent(summary['kept_balance']['positive_fraction'])} of the kept, "
        f"{_percent(summary['dropped_balance']['positive_fraction'])} of the dropped"
    )


def ingest_notes(session: Session, run_id: int) -> list[str]:
    """The run's note on dropped examples, once its ingest job has succeeded."""
    # Runs ingested before the budgets were counted have no "dropped" summary.
    summaries = [result["dropped"] for result in job_results(session, run_id, "ingest") if "dropped" in result]
    return [note for note in map(dropped_note, summaries) if note]


def _percent(fraction: float) -> str:
    return f"{100 * fraction:.1f}%"
