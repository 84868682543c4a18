"""SFT on target tokens only, on the testbed's real tiny weak model."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainers.generative import load_generative_examples
from trainers.generative.sft import IGNORE, SftConfig, collate, encode_pair, generate, sft_train, target_loss


@pytest.fixture()
def weak(testbed_weak_dir: Path) -> tuple:
    return AutoModelForCausalLM.from_pretrained(testbed_weak_dir), AutoTokenizer.from_pretrained(testbed_weak_dir)


def test_prompt_tokens_are_masked_by_construction(weak: tuple) -> None:
    _, tokenizer = weak
    row = encode_pair(tokenizer, "12+7=", "19", max_length=32)
    prompt_len = len(tokenizer("12+7=")["input_ids"])  # BOS + one token per character
    assert row.labels[:prompt_len] == [IGNORE] * prompt_len
    assert row.labels[prompt_len:] == row.input_ids[prompt_len:]
    assert tokenizer.decode(row.input_ids[prompt_len:], skip_special_tokens=True) == "19"
    assert row.labels[-1] == tokenizer.eos_token_id


def test_loss_ignores_the_prompt(weak: tuple) -> None:
    """Two rows that differ only in the prompt's labels' positions give the loss of their targets alone."""
    model, tokenizer = weak
    row = encode_pair(tokenizer, "12+7=", "19", max_length=32)
    batch = collate([row], tokenizer.pad_token_id)
    logits = model(input_ids=batch["input_ids"]).logits[0, :-1]
    labels = batch["labels"][0, 1:]
    kept = labels != IGNORE
    by_hand = torch.nn.functional.cross_entropy(logits[kept], labels[kept])
    assert int(kept.sum()) == 3  # "1", "9", EOS
    assert target_loss(model, batch).item() == pytest.approx(by_hand.item(), rel=1e-5)


def test_long_prompts_are_cut_from_the_left_never_the_target(weak: tuple) -> None:
    _, tokenizer = weak
    row = encode_pair(tokenizer, "1+" * 40 + "1=", "41", max_length=16)
    assert len(row.input_ids) == 16
    assert tokenizer.decode(row.input_ids, skip_special_tokens=True).endswith("1=41")


def test_long_targets_keep_their_start_and_leave_room_for_the_prompt(weak: tuple) -> None:
    _, tokenizer = weak
    row = encode_pair(tokenizer, "12+7=", "1" * 40, max_length=16)
    assert len(row.input_ids) == 14 and row.labels.count(IGNORE) == 6  # BOS + "12+7=", then 8 target tokens
    assert tokenizer.decode(row.input_ids, skip_special_tokens=True) == "12+7=" + "1" * 8


def test_sft_lowers_the_target_loss_and_learns_the_targets(weak: tuple) -> None:
    model, tokenizer = weak
    examples = load_generative_examples("testbed_qa", data_dir=None, seed=0)[:32]
    rows = [encode_pair(tokenizer, ex.prompt, ex.target, max_length=32) for ex in examples]
    batch = collate(rows, tokenizer.pad_token_id)
    with torch.no_grad():
        before = target_loss(model, batch).item()
    sft_train(model, tokenizer, rows, SftConfig(epochs=30, lr=3e-3, batch_size=16))
    with torch.no_grad():
        after = target_loss(model, batch).item()
    assert after < before * 0.5
    outputs = generate(model, tokenizer, [ex.prompt for ex in examples], max_new_tokens=6)
    assert sum(out == ex.target for out, ex in zip(outputs, examples)) >= 24
