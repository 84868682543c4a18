"""trainers.tasks: row conversion, balance, determinism, splits, formatting, hub errors.

Real rows come from /work/shared/data (tests using them skip when it is absent); the
synthetic task and handmade rows in the hub's field layout run everywhere.
"""

import dataclasses
import json
import re
import time
from pathlib import Path

import pytest

from debate import DebateSpec
from debate.framing import framing_for
from debate.protocol import next_turns, schedule
from trainers.tasks import (
    SPLIT_NAMES,
    TaskDataError,
    TaskExample,
    class_balance,
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
        "sciq_support",
        "boolq",
        "cosmos_qa",
        "anthropic_hh",
        "amazon_polarity",
        "safety",
        "legal",
        "synthetic",
        "testbed",
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


# ---- rows of each task end up as the reference code builds them ------------------------
# Expectations are written from the rules of openai/weak-to-strong's datasets.py (and WTS for
# safety / legal), not from our converters: text, label and candidate per row.


def read_rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_sciq_is_question_and_answer_without_the_support_passage() -> None:
    rows = read_rows(data_dir("sciq") / "test.jsonl")
    examples = load_examples("sciq", data_dir=DATA / "sciq", seed=0, limit=len(rows))
    assert len(examples) == len(rows) == 1000
    for example, row in zip(examples, rows, strict=True):
        correct = row["correct_answer"]
        distractors = {row["distractor1"], row["distractor2"], row["distractor3"]} - {correct}
        if example.label:
            assert example.candidate == correct
        else:
            assert example.candidate in distractors
        assert format_example(example) == f"Q: {row['question']} A: {example.candidate}"
        assert example.context is None
    assert 0.45 < sum(e.label for e in examples) / len(examples) < 0.55
    assert {e.candidate_id for e in examples} == {"correct", "distractor1", "distractor2", "distractor3"}


def test_sciq_support_is_the_same_example_with_the_passage_first() -> None:
    plain = load_examples("sciq", data_dir=data_dir("sciq"), seed=4, limit=300)
    supported = load_examples("sciq_support", data_dir=DATA / "sciq", seed=4, limit=300)
    rows = read_rows(DATA / "sciq" / "test.jsonl")[:300]
    for bare, with_support, row in zip(plain, supported, rows, strict=True):
        assert (with_support.candidate, with_support.label) == (bare.candidate, bare.label)
        expected = f"Q: {row['question']} A: {bare.candidate}"
        if row["support"]:
            expected = f"Background: {row['support']}\n\n{expected}"
        assert format_example(with_support) == expected
    assert get_task("sciq_support").has_passage and not get_task("sciq").has_passage


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


def boolq_rows(count: int, yes_rate: float) -> list[dict]:
    """BoolQ's own fields; the first round(count * yes_rate) rows answer yes."""
    yes = round(count * yes_rate)
    return [
        {
            "question": f"is statement {i} true",
            "title": f"Title {i}",
            "answer": i < yes,
            "passage": f"Passage {i} says statement {i} is {'true' if i < yes else 'false'}.",
        }
        for i in range(count)
    ]


def test_boolq_is_passage_and_question_labelled_with_the_datasets_answer(tmp_path: Path) -> None:
    rows = boolq_rows(192, 0.62)
    write_jsonl(tmp_path / "validation.jsonl", rows)
    examples = load_examples("boolq", data_dir=tmp_path, seed=3)
    for example, row in zip(examples, rows, strict=True):
        assert example.label == int(row["answer"])
        assert (example.candidate, example.candidate_id) == ("yes", "yes")  # the positive class, always
        assert format_example(example) == (
            f"Passage: {row['passage']}\nQuestion: {row['question']}\nProposed answer: yes"
        )
    yes_rate = sum(row["answer"] for row in rows) / len(rows)
    assert class_balance(examples)["positive_fraction"] == yes_rate
    assert load_examples("boolq", data_dir=tmp_path, seed=9) == examples  # nothing is drawn


def test_cosmos_qa_rows_and_the_none_of_the_above_rule() -> None:
    rows = read_rows(data_dir("cosmos_qa") / "validation.jsonl")
    examples = load_examples("cosmos_qa", data_dir=DATA / "cosmos_qa", seed=2)
    assert len(examples) == len(rows)
    forced = 0
    for example, row in zip(examples, rows, strict=True):
        answers = [row[f"answer{k}"] for k in range(4)]
        truth = answers[row["label"]]
        assert example.candidate in answers
        assert format_example(example) == (
            f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {example.candidate}"
        )
        if truth == "None of the above choices .":
            forced += 1
            assert example.label == 0 and example.candidate != truth
        else:
            assert example.label == int(example.candidate == truth)
    assert forced == 259
    coin_rows = len(rows) - forced
    assert abs(sum(e.label for e in examples) - coin_rows / 2) < 3 * (coin_rows / 4) ** 0.5


def test_anthropic_hh_question_is_the_shared_conversation() -> None:
    lines = (data_dir("anthropic_hh") / "test.jsonl").read_text(encoding="utf-8").splitlines()
    examples = load_examples("anthropic_hh", data_dir=DATA / "anthropic_hh", limit=1300)
    first, row = examples[0], json.loads(lines[0])
    assert first.question.startswith("Human: what are some pranks with a pen i can do?")
    assert not first.question.endswith("Assistant:")
    side = row["chosen"] if first.label else row["rejected"]
    assert first.candidate_id == ("chosen" if first.label else "rejected")
    assert side.strip() == f"{first.question}\n\nAssistant: {first.candidate}" == format_example(first)
    # Row 1254's transcripts already differ in an earlier assistant turn: the question
    # stops before it and holds neither side's diverging text.
    diverging = by_id(examples)["test:1254"]
    assert diverging.question.endswith("Human: Isn't that drag kings?")
    assert "drag kings." not in diverging.question and "A drag king is" not in diverging.question
    expected = "No. Men who impersonate" if diverging.label else "A drag king is the opposite"
    assert diverging.candidate.startswith(expected)


def test_anthropic_hh_handmade_rows(tmp_path: Path) -> None:
    prefix = "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Help me?\n\nAssistant:"
    write_jsonl(tmp_path / "train.jsonl", [{"chosen": prefix + " Sure.", "rejected": prefix + " No."}] * 40)
    examples = load_examples("anthropic_hh", data_dir=tmp_path)
    assert {e.question for e in examples} == {"Human: Hi\n\nAssistant: Hello!\n\nHuman: Help me?"}
    assert {(e.candidate, e.label, e.candidate_id) for e in examples} == {
        ("Sure.", 1, "chosen"),
        ("No.", 0, "rejected"),
    }


def test_amazon_polarity_is_title_and_content_labelled_with_the_polarity() -> None:
    rows = read_rows(data_dir("amazon_polarity") / "test.jsonl")
    examples = load_examples("amazon_polarity", data_dir=DATA / "amazon_polarity")
    for example, row in zip(examples, rows, strict=True):
        assert example.label == row["label"]
        assert format_example(example) == f"{row['title']} {row['content']}\nProposed label: positive"
    assert class_balance(examples)["positive"] == 3_322  # SOURCES.md: 3,137 negative / 3,322 positive


def test_safety_is_labelled_with_is_safe() -> None:
    rows = read_rows(data_dir("safety") / "train.jsonl")
    examples = load_examples("safety", data_dir=DATA / "safety")
    for example, row in zip(examples, rows, strict=True):
        assert example.label == int(row["is_safe"] is True)
        assert format_example(example) == f"User request: {row['prompt'].strip()}\nProposed label: safe"
    assert class_balance(examples)["positive"] == 5_047  # SOURCES.md: 6,421 unsafe / 5,047 safe
    assert get_task("safety").hub_id is None


def test_legal_is_labelled_relevant_or_not() -> None:
    directory = data_dir("legalbench_privacy_policy_qa")
    rows = read_rows(directory / "train.jsonl")
    examples = load_examples("legal", data_dir=directory)
    assert len(examples) == len(rows) == 8
    for example, row in zip(examples, rows, strict=True):
        assert example.label == int(row["answer"] == "Relevant")
        assert format_example(example) == (
            f"Clause: {row['text'].strip()}\nQuestion: {row['question'].strip()}\nProposed answer: relevant"
        )
    assert {e.label for e in examples} == {0, 1}


def test_label_only_tasks_debate_the_positive_class(tmp_path: Path) -> None:
    """Debater A argues the positive class ("correct"), B the negative, as for any candidate."""
    write_jsonl(tmp_path / "boolq" / "validation.jsonl", boolq_rows(4, 0.5))
    directories = {
        "boolq": tmp_path / "boolq",
        "amazon_polarity": data_dir("amazon_polarity"),
        "safety": data_dir("safety"),
        "legal": data_dir("legalbench_privacy_policy_qa"),
    }
    claims = {"boolq": "yes", "amazon_polarity": "positive", "safety": "safe", "legal": "relevant"}
    for task, directory in directories.items():
        example = load_examples(task, data_dir=directory, limit=1)[0]
        spec = DebateSpec(
            question=example.question,
            candidate_answer=example.candidate,
            context=example.context,
            task=get_task(task).framing,
        )
        (opening,) = next_turns(spec, [])
        assert (opening.speaker, opening.stance) == ("A", "correct")
        prompt = opening.messages[1].content
        assert f":\n{claims[task]}\n\n" in prompt and "Argue that the proposed answer is CORRECT" in prompt
        assert [slot.stance for slot in schedule(spec) if slot.speaker == "B"] == ["incorrect"]


def test_missing_field_and_broken_line_say_where(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "a" / "train.jsonl", [{"question": "q", "support": ""}])
    with pytest.raises(TaskDataError, match=r"train:0.*correct_answer|train:0.*distractor"):
        load_examples("sciq", data_dir=tmp_path / "a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x.jsonl").write_text('{"prompt": "hi", "is_safe": true}\n{oops\n', encoding="utf-8")
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
            right = {"+": int.__add__, "-": int.__sub__, "times": int.__mul__}[operator](int(a), int(b))
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


# ---- formatting -------------------------------------------------------------------------


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
    assert format_example(dataclasses.replace(example, context=None)) == "Q: Why? A: Because."
    assert format_example(dataclasses.replace(example, task="sciq_support")) == (
        "Background: Some support.\n\nQ: Why? A: Because."
    )
    for example in load_examples("synthetic", size=200):
        text = format_example(example)
        assert text == format_example(dataclasses.replace(example, label=1 - example.label))
        for word in (*get_task("synthetic").answer_words, "correct", "wrong", "true", "false"):
            assert not re.search(rf"\b{word.strip()}\b", text, re.IGNORECASE), (word, text)


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
