"""The testbed's models: tiny Llamas pretrained in-process on true arithmetic facts.

    from trainers.testbed import ensure_testbed_model, STRONG, WEAK
    strong_dir = ensure_testbed_model(Path("artifacts/models/testbed-strong"), STRONG)

A strong model only shows weak-to-strong generalization if it knows more than its supervisor
before finetuning (Burns et al. 2023); random tiny models know nothing. Here the strong model
(4 x 128) is pretrained long enough to answer most facts of `trainers.tasks.testbed`'s families,
the weak one (2 x 64) only briefly, so it knows few: the gap comes from pretraining alone.

Both share a character-level tokenizer (every printable ASCII character is a token, so digits
are never merged and debate transcripts stay readable; " Yes" and " No" are whole tokens for the
`lm` head) whose chat template is the bare text of the last message after BOS: vLLM serves the
strong model with prompts in the exact format it was pretrained on. The loss is on the answer
tokens (and EOS) only. A directory is built beside its final place and renamed in, marker last;
the same spec gives byte-identical files on one machine.
"""

from __future__ import annotations

import json
import math
import random
import re
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from trainers.tasks.testbed import Fact, all_facts
from trainers.tiny_model import llama_config

PAD, BOS, EOS, UNK = "<pad>", "<s>", "</s>", "<unk>"
CHARACTERS = ["\n", *map(chr, range(32, 127))]
# Whole tokens, so the `lm` head (which reads the first token of " No" / " Yes") works on these models too.
ANSWER_WORDS = (" No", " Yes")
CHAT_TEMPLATE = "{{- bos_token + messages[-1]['content'] -}}"
MARKER_FILE = "testbed_model.json"
MARKER_FORMAT = 1


@dataclass(frozen=True)
class ModelSpec:
    """Everything that decides a testbed model's files."""

    layers: int
    hidden: int
    pretrain_steps: int
    heads: int = 2
    batch_size: int = 128
    lr: float = 1e-3  # 3e-3 without warm-up learnt the facts far more slowly (measured)
    warmup_steps: int = 30
    seed: int = 0
    max_position_embeddings: int = 1024

    def __post_init__(self) -> None:
        if self.hidden % self.heads or self.hidden // self.heads < 32:
            raise ValueError(f"hidden={self.hidden}, heads={self.heads}: vLLM on CPU needs head_dim >= 32.")
        if self.layers < 1 or self.batch_size < 1 or self.lr <= 0 or min(self.pretrain_steps, self.warmup_steps) < 0:
            raise ValueError(f"{self}: layers, batch_size and lr must be positive, the step counts >= 0.")


STRONG = ModelSpec(layers=4, hidden=128, pretrain_steps=600)
WEAK = ModelSpec(layers=2, hidden=64, pretrain_steps=200)


def ensure_testbed_model(out_dir: Path, spec: ModelSpec) -> Path:
    """`out_dir` holding the model of `spec`, pretrained now if it is not there yet.

    A complete directory built from another spec raises ValueError rather than being overwritten.
    """
    out_dir = Path(out_dir)
    found = read_spec(out_dir)
    if found == spec:
        return out_dir
    if found is not None or (out_dir.exists() and any(out_dir.iterdir())):
        raise ValueError(
            f"{out_dir} holds something other than the testbed model {spec}; delete it or pick another directory."
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        model, tokenizer = pretrain(spec)
        model.save_pretrained(build_dir)
        tokenizer.save_pretrained(build_dir)
        marker = {"format": MARKER_FORMAT, "spec": asdict(spec)}
        (build_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        build_dir.chmod(0o755)
        for path in build_dir.iterdir():
            path.chmod(0o644)
        if out_dir.is_dir():
            out_dir.rmdir()
        try:
            build_dir.rename(out_dir)
        except OSError:  # another process finished the same model first
            if read_spec(out_dir) != spec:
                raise
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return out_dir


def read_spec(model_dir: Path) -> ModelSpec | None:
    """The spec of the complete testbed model in `model_dir`, or None."""
    try:
        marker = json.loads((Path(model_dir) / MARKER_FILE).read_text())
        return ModelSpec(**marker["spec"]) if marker["format"] == MARKER_FORMAT else None
    except (OSError, ValueError, TypeError, KeyError):
        return None


def build_tokenizer() -> Any:
    """One token per character (printable ASCII and newline) but the answer words, BOS in front, a bare-text chat
    template."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {token: index for index, token in enumerate([PAD, BOS, EOS, UNK, *CHARACTERS, *ANSWER_WORDS])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    words = "|".join(re.escape(word) for word in ANSWER_WORDS)
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(f"{words}|[\\s\\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS} $A", pair=f"{BOS} $A {BOS} $B", special_tokens=[(BOS, vocab[BOS])]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        model_max_length=4096,
        model_input_names=["input_ids", "attention_mask"],
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def pretrain(spec: ModelSpec) -> tuple[Any, Any]:
    """A Llama of `spec` trained with next-token loss on the answers of true facts; (model, tokenizer)."""
    import torch
    from transformers import LlamaForCausalLM

    tokenizer = build_tokenizer()
    config = llama_config(spec, tokenizer, intermediate_size=2 * spec.hidden)
    families = list(all_facts().values())
    rng = random.Random(f"testbed-pretrain:{spec.seed}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
        optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=0.0)
        model.train()
        for step in range(spec.pretrain_steps):
            for group in optimizer.param_groups:
                group["lr"] = _learning_rate(spec, step)
            batch = [rng.choice(rng.choice(families)) for _ in range(spec.batch_size)]
            input_ids, labels = _answer_only_batch(tokenizer, batch)
            loss = model(
                input_ids=input_ids, attention_mask=(input_ids != tokenizer.pad_token_id).long(), labels=labels
            ).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    model.eval()
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model, tokenizer


def _learning_rate(spec: ModelSpec, step: int) -> float:
    """Linear warm-up, then cosine decay to 0."""
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    done = (step - spec.warmup_steps) / max(1, spec.pretrain_steps - spec.warmup_steps)
    return spec.lr * 0.5 * (1 + math.cos(math.pi * done))


def _answer_only_batch(tokenizer: Any, batch: list[Fact]) -> tuple[Any, Any]:
    """Right-padded ids of `<s>question answer</s>` and labels that are -100 except on answer + EOS."""
    import torch

    vocab = tokenizer.get_vocab()  # one token per character: no need to run the tokenizer per fact
    rows = [
        (
            [tokenizer.bos_token_id, *(vocab[c] for c in fact.question)],
            [*(vocab[c] for c in str(fact.answer)), tokenizer.eos_token_id],
        )
        for fact in batch
    ]
    width = max(len(q) + len(a) for q, a in rows)
    input_ids = torch.full((len(rows), width), tokenizer.pad_token_id)
    labels = torch.full((len(rows), width), -100)
    for row, (question, answer) in enumerate(rows):
        input_ids[row, : len(question) + len(answer)] = torch.tensor(question + answer)
        labels[row, len(question) : len(question) + len(answer)] = torch.tensor(answer)
    return input_ids, labels


def answer_accuracy(model: Any, tokenizer: Any, facts: list[Fact]) -> float:
    """Share of `facts` whose answer the model generates greedily, exactly (digits then EOS)."""
    import torch

    correct = 0
    with torch.no_grad():
        for fact in facts:
            ids = torch.tensor([tokenizer(fact.question)["input_ids"]])
            out = model.generate(
                ids,
                attention_mask=torch.ones_like(ids),
                max_new_tokens=6,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
            )
            correct += tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True) == str(fact.answer)
    return correct / len(facts)
