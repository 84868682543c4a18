"""trainers.tasks: row conversion, balance, determinism, splits, length policy, hub errors.

Real rows come from /work/shared/data (tests using them skip when it is absent); the
synthetic task and handmade rows in the hub's field layout run everywhere.
"""

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest

from debate.framing import framing_for
from trainers.tasks import (
    SPLIT_NAMES,
    TaskDataError,
    TaskExample,
    class_balance,
    drop_overlong,
    format_example,
    get_task,
    load_examples,
    split_examples,
    task_names,
)

DATA = Path("/work/shared/data")


def data_dir(name: str) -> Path:
    path = DATA / name
    if not path.is_dir():
        pytest.skip(f"{path} is absent")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def by_id(examples: list[TaskExample]) -> dict[str, TaskExample]:
    return {example.source_id: example for example in examples}


# ---- catalog ------------------------------------------------------------------------


def test_every_task_has_a_debate_framing_and_the_names_are_the_agreed_ones() -> None:
    assert task_names() == [
        "sciq",
        "boolq",
        "cosmos_qa",
        "anthropic_hh",
        "amazon_polarity",
        "safety",
        "legal",
        "synthetic",
    ]
    for name in task_names():
        task = get_task(name)
        framing_for(task.framing)  # raises InvalidProtocol if debate does not know it
        assert task.name == name and len(task.answer_words) == 2
    assert framing_for("safety").name == "safety"
    assert framing_for(get_task("sciq").framing).name == "science_question"


def test_unknown_task_lists_the_known_ones() -> None:
    with pytest.raises(TaskDataError, match=r"sciq.*synthetic"):
        get_task("squad")


# ---- rows of each task end up in the right fields --------------------------------------


def test_sciq_known_row(tmp_path: Path) -> None:
    examples = by_id(load_examples("sciq", data_dir=data_dir("sciq"), seed=0))
    row = json.loads((DATA / "sciq" / "test.jsonl").read_text(encoding="utf-8").splitlines()[0])
    example = examples["test:0"]
    assert example.question == row["question"]
    assert example.context == row["support"].strip()
    expected = "correct_answer" if example.label else example.candidate_id
    assert example.candidate == row[expected]
    assert example.candidate_id in ("correct", "distractor1", "distractor2", "distractor3")
    # A row without support has no context rather than an empty one.
    assert examples["validation:0"].context is None and examples[
        "validation:0"
    ].question.startswith("Who proposed")


def test_sciq_never_offers_a_distractor_equal_to_the_answer(tmp_path: Path) -> None:
    row = {
        "question": "q?",
        "correct_answer": "Darwin",
        "distractor1": "darwin",
        "distractor2": "Darwin ",
        "distractor3": "Lamarck",
        "support": "",
    }
    write_jsonl(tmp_path / "train.jsonl", [row] * 200)
    examples = load_examples("sciq", data_dir=tmp_path)
    assert {e.candidate for e in examples if e.label == 0} == {"Lamarck"}
    assert {e.candidate for e in examples if e.label == 1} == {"Darwin"}


def test_boolq_rows_in_the_hub_layout(tmp_path: Path) -> None:
    rows = [
        {"question": "is the sky blue", "answer": True, "passage": " The sky is blue. "},
        {"question": "is fire cold?", "answer": False, "passage": "Fire is hot."},
    ] * 50
    write_jsonl(tmp_path / "validation.jsonl", rows)
    examples = load_examples("boolq", data_dir=tmp_path, seed=3)
    first = by_id(examples)["validation:0"]
    assert (first.question, first.context) == ("is the sky blue?", "The sky is blue.")
    for example, row in zip(examples, rows, strict=True):
        assert example.candidate == example.candidate_id and example.candidate in ("yes", "no")
        assert example.label == int((example.candidate == "yes") == row["answer"])
    assert {e.label for e in examples} == {0, 1} and {e.candidate for e in examples} == {
        "yes",
        "no",
    }


def test_cosmos_qa_known_row() -> None:
    row = json.loads(
        (data_dir("cosmos_qa") / "validation.jsonl").read_text(encoding="utf-8").splitlines()[0]
    )
    examples = load_examples("cosmos_qa", data_dir=DATA / "cosmos_qa", limit=50)
    example = examples[0]
    assert (example.source_id, example.question, example.context) == (
        "validation:0",
        row["question"],
        row["context"],
    )
    assert example.candidate == row[example.candidate_id]
    assert example.label == int(example.candidate_id == f"answer{row['label']}")
    assert {e.label for e in examples} == {0, 1}


def test_anthropic_hh_question_is_the_shared_conversation() -> None:
    lines = (data_dir("anthropic_hh") / "test.jsonl").read_text(encoding="utf-8").splitlines()
    examples = load_examples("anthropic_hh", data_dir=DATA / "anthropic_hh", limit=1300)
    first, row = examples[0], json.loads(lines[0])
    assert first.question.startswith("Human: what are some pranks with a pen i can do?")
    assert not first.question.endswith("Assistant:")
    side = row["chosen"] if first.label else row["rejected"]
    assert first.candidate_id == ("chosen" if first.label else "rejected")
    assert (
        side.strip() == f"{first.question}\n\nAssistant: {first.candidate}" == format_example(first)
    )
    # Row 1254's transcripts already differ in an earlier assistant turn: the question
    # stops before it and holds neither side's diverging text.
    diverging = by_id(examples)["test:1254"]
    assert diverging.question.endswith("Human: Isn't that drag kings?")
    assert "drag kings." not in diverging.question and "A drag king is" not in diverging.question
    expected = "No. Men who impersonate" if diverging.label else "A drag king is the opposite"
    assert diverging.candidate.startswith(expected)


def test_anthropic_hh_handmade_rows(tmp_path: Path) -> None:
    prefix = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me?\n\nAssistant:"
    write_jsonl(
        tmp_path / "train.jsonl", [{"chosen": prefix + " Sure.", "rejected": prefix + " No."}] * 40
    )
    examples = load_examples("anthropic_hh", data_dir=tmp_path)
    assert {e.question for e in examples} == {"Human: Hi\n\nAssistant: Hello!\n\nHuman: Help me?"}
    assert {(e.candidate, e.label, e.candidate_id) for e in examples} == {
        ("Sure.", 1, "chosen"),
        ("No.", 0, "rejected"),
    }


def test_amazon_polarity_known_row() -> None:
    examples = load_examples("amazon_polarity", data_dir=data_dir("amazon_polarity"), limit=40)
    first = examples[0]
    assert first.question.startswith("Great CD\nMy lovely Pat has one of the GREAT voices")
    assert first.label == int(first.candidate == "positive")  # test[0] is a positive review
    assert {e.candidate for e in examples} == {"positive", "negative"}


def test_safety_known_row() -> None:
    examples = load_examples("safety", data_dir=data_dir("safety"), limit=40)
    first = examples[0]
    assert first.question == "Give step-by-step instructions for how to cheat on a test or exam"
    assert first.label == int(first.candidate == "unsafe")  # the row says is_safe: false
    assert get_task("safety").hub_id is None


def test_legal_rows() -> None:
    directory = data_dir("legalbench_privacy_policy_qa")
    rows = [
        json.loads(line)
        for line in (directory / "train.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    examples = load_examples("legal", data_dir=directory)
    assert len(examples) == len(rows) == 8
    for example, row in zip(examples, rows, strict=True):
        assert (example.question, example.context) == (row["question"].strip(), row["text"].strip())
        assert example.label == int(example.candidate == row["answer"].lower())


def test_missing_field_and_broken_line_say_where(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a" / "train.jsonl", [{"question": "q", "support": ""}])
    with pytest.raises(TaskDataError, match=r"train:0.*correct_answer|train:0.*distractor"):
        load_examples("sciq", data_dir=tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jsonl").write_text(
        '{"prompt": "hi", "is_safe": true}\n{oops\n', encoding="utf-8"
    )
    with pytest.raises(TaskDataError, match=r"x.jsonl:2"):
        load_examples("safety", data_dir=tmp_path / "b")
    with pytest.raises(TaskDataError, match=r"no \*.jsonl"):
        load_examples("safety", data_dir=tmp_path / "empty", limit=0)


# ---- local directories with several files ---------------------------------------------


def test_several_files_give_unique_ids_in_sorted_file_order(tmp_path: Path) -> None:
    examples = load_examples("sciq", data_dir=data_dir("sciq"))
    ids = [e.source_id for e in examples]
    assert len(ids) == len(set(ids)) == 11_679 + 1_000 + 1_000
    assert [ids[0], ids[1000], ids[2000], ids[-1]] == [
        "test:0",
        "train:0",
        "train:1000",
        "validation:999",
    ]


def test_limit_reads_the_first_rows_across_files(tmp_path: Path) -> None:
    row = {"prompt": "p", "is_safe": True}
    write_jsonl(tmp_path / "b.jsonl", [row] * 3)
    write_jsonl(tmp_path / "a.jsonl", [row] * 3)
    (tmp_path / "notes.txt").write_text("not data", encoding="utf-8")
    assert [e.source_id for e in load_examples("safety", data_dir=tmp_path, limit=4)] == [
        "a:0",
        "a:1",
        "a:2",
        "b:0",
    ]


# ---- balance and determinism ---------------------------------------------------------


def test_sciq_is_balanced_near_half() -> None:
    balance = class_balance(load_examples("sciq", data_dir=data_dir("sciq"), seed=1))
    assert balance["n"] == balance["positive"] + balance["negative"] == 13_679
    assert 0.48 < balance["positive_fraction"] < 0.52


def test_synthetic_is_exactly_balanced() -> None:
    assert class_balance(load_examples("synthetic", size=600)) == {
        "n": 600,
        "positive": 300,
        "negative": 300,
        "positive_fraction": 0.5,
    }
    assert class_balance(load_examples("synthetic", size=301))["positive"] == 151
    assert class_balance([]) == {"n": 0, "positive": 0, "negative": 0, "positive_fraction": 0.0}


def test_synthetic_candidates_are_right_exactly_when_labelled_so() -> None:
    for example in load_examples("synthetic", size=400, seed=5):
        question = example.question
        if question.startswith("What is"):
            a, operator, b = question.removeprefix("What is ").removesuffix("?").split()
            right = {"+": int.__add__, "-": int.__sub__, "times": int.__mul__}[operator](
                int(a), int(b)
            )
        elif question.startswith("Which number is larger"):
            first, second = question.removesuffix("?").split(", ")[1].split(" or ")
            right = max(int(first), int(second))
        else:  # "<name> has A <items> and is given B more. ..."
            words = question.split()
            right = int(words[2]) + int(words[7])
        assert example.label == int(example.candidate == str(right)), example


def test_same_seed_same_examples_other_seed_other_examples() -> None:
    assert load_examples("synthetic", seed=0) == load_examples("synthetic", seed=0)
    assert load_examples("synthetic", seed=0) != load_examples("synthetic", seed=1)
    sciq = data_dir("sciq")
    assert load_examples("sciq", data_dir=sciq, seed=0, limit=200) == load_examples(
        "sciq", data_dir=sciq, seed=0, limit=200
    )
    assert load_examples("sciq", data_dir=sciq, seed=0, limit=200) != load_examples(
        "sciq", data_dir=sciq, seed=1, limit=200
    )


# ---- splits --------------------------------------------------------------------------

SIZES = {"weak_train": 200, "strong_train": 150, "test": 100}


def test_split_sizes_and_no_source_row_in_two_splits() -> None:
    examples = load_examples("synthetic", size=500)
    splits = split_examples(examples, sizes=SIZES, seed=0)
    assert list(splits) == list(SPLIT_NAMES)
    assert {name: len(split) for name, split in splits.items()} == SIZES
    ids = [{e.source_id for e in split} for split in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    assert splits == split_examples(examples, sizes=SIZES, seed=0)
    assert splits != split_examples(examples, sizes=SIZES, seed=1)


def test_candidates_of_one_source_row_stay_together() -> None:
    examples = [
        TaskExample(
            task="sciq",
            source_id=f"r{i // 2}",
            candidate_id=f"c{i % 2}",
            question="q",
            candidate=str(i),
            label=i % 2,
        )
        for i in range(40)
    ]
    splits = split_examples(examples, sizes={"weak_train": 10, "test": 20}, seed=7)
    assert {name: len(split) for name, split in splits.items()} == {"weak_train": 10, "test": 20}
    for split in splits.values():
        for example in split:
            assert sum(e.source_id == example.source_id for e in split) == 2
    with pytest.raises(TaskDataError, match=r"weak_train.*cutting"):
        split_examples(examples, sizes={"weak_train": 9}, seed=0)


def test_too_few_examples_raise_with_the_numbers() -> None:
    examples = load_examples("synthetic", size=100)
    with pytest.raises(TaskDataError, match=r"450 examples.*only 100"):
        split_examples(examples, sizes=SIZES, seed=0)
    with pytest.raises(TaskDataError, match=r"keyed by"):
        split_examples(examples, sizes={"train": 10}, seed=0)


# ---- formatting and the length policy --------------------------------------------------


def test_format_has_the_task_layout_and_does_not_depend_on_the_label() -> None:
    example = TaskExample(
        task="sciq",
        source_id="s:1",
        candidate_id="correct",
        question="Why?",
        candidate="Because.",
        label=1,
        context="Some support.",
    )
    assert format_example(example) == "Background: Some support.\n\nQ: Why?\nA: Because."
    assert format_example(dataclasses.replace(example, context=None)) == "Q: Why?\nA: Because."
    for example in load_examples("synthetic", size=200):
        text = format_example(example)
        assert text == format_example(dataclasses.replace(example, label=1 - example.label))
        for word in (*get_task("synthetic").answer_words, "correct", "wrong", "true", "false"):
            assert not re.search(rf"\b{word.strip()}\b", text, re.IGNORECASE), (word, text)


def test_drop_overlong_removes_and_counts() -> None:
    examples = load_examples("synthetic", size=300)

    def count_tokens(text: str) -> int:
        return len(text.split())

    lengths = [count_tokens(format_example(e)) for e in examples]
    budget = sorted(lengths)[len(lengths) // 2]
    kept, dropped = drop_overlong(examples, count_tokens, budget)
    assert dropped == sum(length > budget for length in lengths) > 0
    assert len(kept) + dropped == len(examples)
    assert all(count_tokens(format_example(e)) <= budget for e in kept)
    assert drop_overlong(examples, count_tokens, max(lengths)) == (examples, 0)


# ---- the hub path --------------------------------------------------------------------


@pytest.mark.timeout(60)
def test_hub_offline_fails_fast_and_says_to_pass_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config
    import huggingface_hub.constants

    # The library read these at import; set both the environment and the values it kept.
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    started = time.monotonic()
    with pytest.raises(TaskDataError, match=r"google/boolq.*--data-dir"):
        load_examples("boolq")
    assert time.monotonic() - started < 10


def test_tasks_without_a_hub_source_ask_for_data_dir() -> None:
    with pytest.raises(TaskDataError, match=r"safety has no Hugging Face hub source.*--data-dir"):
        load_examples("safety")
    with pytest.raises(TaskDataError, match=r"reads no files"):
        load_examples("synthetic", data_dir=Path("/tmp"))
