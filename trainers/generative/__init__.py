"""Generative weak-to-strong: (prompt, target) tasks, SFT on target tokens, refinement through vLLM.

    examples = load_generative_examples("testbed_qa", data_dir=None, seed=0, limit=None)
    rows = [encode_pair(tokenizer, ex.prompt, ex.target, max_length=64) for ex in examples]
    losses = sft_train(model, tokenizer, rows, SftConfig(epochs=2))

Ye et al. 2024 (toxicity: the weak model's continuations become the strong model's targets) and
Somerstep, Maia Polo et al. 2024 (refinement: the strong model rewrites the weak targets first).
"""

from trainers.generative.tasks import (
    GENERATIVE_TASKS,
    GenerativeExample,
    GenerativeTask,
    get_generative_task,
    load_generative_examples,
    split_generative,
)

__all__ = [
    "GENERATIVE_TASKS",
    "GenerativeExample",
    "GenerativeTask",
    "get_generative_task",
    "load_generative_examples",
    "split_generative",
]
