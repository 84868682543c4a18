"""Chat-format training lines (`{"messages": [...]}`, what OpenAI's fine-tuning API takes) as classifier examples.

Every job here trains a binary classifier, so a conversation becomes one `{"prompt", "label"}` example:

* the target is the **last** message, which must be from the assistant;
* the prompt is the content of every message before it (system, user and earlier assistant turns, in order),
  joined by blank lines;
* the target's content is the label: "Yes" / "True" / "Correct" / "1" → 1.0, "No" / "False" / "Incorrect" /
  "0" → 0.0 (case and a trailing period ignored), or a probability written as a number in [0, 1] (a soft label).

Other keys of the line (e.g. an id) are kept, as for `{"prompt", "label"}` lines.
"""

from typing import Any

ROLES = ("system", "user", "assistant")
POSITIVE = ("yes", "true", "correct", "1")
NEGATIVE = ("no", "false", "incorrect", "0")
LABEL_HELP = (
    "'Yes' or 'No' (also true/false, correct/incorrect, 1/0) or a probability in [0, 1] that the candidate is correct"
)


def chat_problem(example: dict[str, Any]) -> str | None:
    """What is wrong with a chat-format line, or None."""
    messages = example["messages"]
    if not isinstance(messages, list) or len(messages) < 2:
        return '"messages" must be a list of at least two messages (the prompt, then the assistant\'s label)'
    for number, message in enumerate(messages, start=1):
        problem = _message_problem(message)
        if problem:
            return f"message {number}: {problem}"
    if messages[-1]["role"] != "assistant":
        return "the last message must be the assistant's answer (the label to train on)"
    if chat_label(messages[-1]["content"]) is None:
        return f"the last assistant message must be {LABEL_HELP}; got {messages[-1]['content']!r}"
    return None


def _message_problem(message: Any) -> str | None:
    if not isinstance(message, dict) or message.get("role") not in ROLES:
        return f'expected {{"role": one of {", ".join(ROLES)}, "content": str}}'
    if not isinstance(message.get("content"), str) or not message["content"].strip():
        return '"content" must be a non-empty string'
    return None


def chat_label(answer: str) -> float | None:
    """The label an assistant answer stands for (see the module docstring); None if it is none."""
    word = answer.strip().rstrip(".").strip().casefold()
    if word in POSITIVE:
        return 1.0
    if word in NEGATIVE:
        return 0.0
    try:
        value = float(word)
    except ValueError:
        return None
    return value if 0 <= value <= 1 else None


def chat_to_example(example: dict[str, Any]) -> dict[str, Any]:
    """A validated chat line as `{"prompt", "label", ...its other keys}`."""
    *context, target = example["messages"]
    rest = {key: value for key, value in example.items() if key != "messages"}
    return {
        **rest,
        "prompt": "\n\n".join(message["content"] for message in context),
        "label": chat_label(target["content"]),
    }
