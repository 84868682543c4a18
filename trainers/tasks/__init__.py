"""Binary-classification tasks (Burns et al. 2023): load, split and format examples.

    from trainers.tasks import load_examples, split_examples, format_example
    examples = load_examples("sciq", data_dir=Path("data/sciq"), seed=0)
    sizes = {"weak_train": 500, "strong_train": 500, "test": 200}
    splits = split_examples(examples, sizes=sizes, seed=0)

Each example asks whether ONE candidate answer is right (label 1) or not (label 0); for
label-only tasks (boolq, amazon_polarity, safety, legal) the candidate is the positive class,
so the label is the example's own class.
"""

from trainers.tasks.catalog import get_task, task_names
from trainers.tasks.formatting import format_example
from trainers.tasks.loading import load_examples
from trainers.tasks.schema import Task, TaskDataError, TaskExample
from trainers.tasks.splits import SPLIT_NAMES, class_balance, split_examples

__all__ = [
    "SPLIT_NAMES",
    "Task",
    "TaskDataError",
    "TaskExample",
    "class_balance",
    "format_example",
    "get_task",
    "load_examples",
    "split_examples",
    "task_names",
]
