"""The tiny-model factory: loadable by transformers, deterministic, validated, resumable."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from trainers.tiny_model import MARKER_FILE, TinyModelSpec, ensure_tiny_model, make_tiny_model, read_tiny_model_spec

FILES_THAT_MUST_MATCH = ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_model(tmp_path_factory.mktemp("tiny") / "seed0")


def test_loads_and_generates_with_transformers(model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    inputs = tokenizer("Question: is the sky blue? Answer:", return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape[1] == inputs["input_ids"].shape[1] + 5
    assert isinstance(tokenizer.decode(out[0, inputs["input_ids"].shape[1] :]), str)
    assert model.dtype == torch.float32


def test_config_and_tokenizer_agree(model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir)
    assert len(tokenizer) == model.config.vocab_size == 2048
    assert (model.config.bos_token_id, model.config.eos_token_id, model.config.pad_token_id) == (
        tokenizer.bos_token_id,
        tokenizer.eos_token_id,
        tokenizer.pad_token_id,
    )
    assert model.config.head_dim == 64
    assert tokenizer.decode(tokenizer("Debater A: True")["input_ids"], skip_special_tokens=True) == "Debater A: True"


def test_chat_template_renders_chatml(model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Is it correct?"}]
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nIs it correct?<|im_end|>\n<|im_start|>assistant\n"
    )
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=False)
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")


def test_same_seed_gives_identical_files(model_dir: Path, tmp_path: Path) -> None:
    again = make_tiny_model(tmp_path / "again")
    for name in FILES_THAT_MUST_MATCH:
        assert (again / name).read_bytes() == (model_dir / name).read_bytes(), name


def test_other_seed_gives_other_weights_same_tokenizer(model_dir: Path, tmp_path: Path) -> None:
    other = make_tiny_model(tmp_path / "seed1", seed=1)
    assert (other / "model.safetensors").read_bytes() != (model_dir / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (model_dir / "tokenizer.json").read_bytes()


def test_does_not_touch_global_rng(tmp_path: Path) -> None:
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_tiny_model(tmp_path / "m", seed=7)
    assert torch.equal(torch.rand(3), expected)


@pytest.mark.parametrize(
    ("kwargs", "names"),
    [
        ({"hidden": 64, "heads": 4}, "head_dim"),
        ({"hidden": 130, "heads": 4}, "divisible"),
        ({"vocab": 100}, "vocab"),
        ({"vocab": 100_000}, "vocab"),
        ({"layers": 0}, "layers"),
    ],
)
def test_bad_arguments_raise_before_writing(tmp_path: Path, kwargs: dict[str, int], names: str) -> None:
    with pytest.raises(ValueError, match=names):
        make_tiny_model(tmp_path / "bad", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_refuses_non_empty_out_dir(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="ensure_tiny_model"):
        make_tiny_model(tmp_path)


def test_ensure_reuses_a_complete_dir(model_dir: Path) -> None:
    before = (model_dir / "model.safetensors").stat().st_mtime_ns
    assert ensure_tiny_model(model_dir) == model_dir
    assert (model_dir / "model.safetensors").stat().st_mtime_ns == before
    assert read_tiny_model_spec(model_dir) == TinyModelSpec()


def test_ensure_rebuilds_an_incomplete_dir(model_dir: Path, tmp_path: Path) -> None:
    broken = make_tiny_model(tmp_path / "broken")
    (broken / MARKER_FILE).unlink()
    (broken / "model.safetensors").write_bytes(b"half written")
    ensure_tiny_model(broken)
    assert read_tiny_model_spec(broken) == TinyModelSpec()
    assert (broken / "model.safetensors").read_bytes() == (model_dir / "model.safetensors").read_bytes()


def test_ensure_refuses_a_dir_built_with_other_arguments(model_dir: Path) -> None:
    with pytest.raises(ValueError, match="delete the directory"):
        ensure_tiny_model(model_dir, seed=5)


def test_ensure_keeps_foreign_files(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="notes.txt"):
        ensure_tiny_model(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
