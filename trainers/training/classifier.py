"""A binary classifier on a causal LM backbone: "is the candidate answer correct?" -> [B, 2] logits.

Three heads, one interface (column 1 of the logits = "correct"):

* `linear` — Burns et al.: the hidden state of the last non-padding token through a zero-initialised
  `Linear(hidden, 2)`, so an untrained classifier says p = 0.5 to everything.
* `lm` — the logits of the first token of each answer word (" No", " Yes") at the last position:
  exactly what the causal LM itself predicts next, so the trained weights (a LoRA adapter, or the
  full model) are a normal causal LM that vLLM serves.
* `likelihood` — scores the candidate answer by the causal LM's own log-probabilities of its tokens
  (their sum and minimum, scaled) and calibrates them with a `Linear(2, 2)`, zero-initialised and
  trained at `HEAD_LR_SCALE` times the backbone's learning rate. It elicits what a model knows about
  an answer when the last token's hidden state does not show it linearly (the built-in testbed).
  Inputs are encoded with the answer last (`encode_inputs(answer_last=True)`).

Weights are fp32 on CPU and bf16 on CUDA; the linear head stays fp32. `save` never pickles.
`shard` spreads the weights over the ranks of a torchrun launch (FSDP2) for models that do not
fit one GPU.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from peft import LoraConfig, PeftModel, get_peft_model
from safetensors.torch import load_file, save_file
from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from trainers.hyperparameters import LoraSettings
from trainers.training.distributed import current_ranks, gather_full, is_sharded

HEADS = ("linear", "lm", "likelihood")
CALIBRATED_HEADS = ("linear", "likelihood")  # heads with their own `score` layer (saved in head.safetensors)
HEAD_LR_SCALE = 30.0  # the likelihood head's two-feature calibration learns this much faster than the backbone
LIKELIHOOD_FEATURE_SCALE = 1.0  # sum and minimum of log-probabilities, in nats
SPEC_FILE = "classifier.json"
HEAD_FILE = "head.safetensors"
SPEC_FORMAT = 1


@dataclass(frozen=True)
class ClassifierSpec:
    """What `load_saved_classifier` needs to rebuild a classifier; written to classifier.json by `save`."""

    base_model: str
    head: str
    answer_words: tuple[str, str]
    lora: LoraSettings | None

    def to_json(self) -> str:
        lora = self.lora.model_dump(mode="json") if self.lora else None
        data = {"format": SPEC_FORMAT, **asdict(self), "lora": lora}
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> ClassifierSpec:
        data = json.loads(text)
        if data.pop("format", None) != SPEC_FORMAT:
            raise ValueError(f"{SPEC_FILE} is not format {SPEC_FORMAT}; it was written by another version.")
        lora = data["lora"]
        return cls(
            base_model=data["base_model"],
            head=_check_head(data["head"]),
            answer_words=tuple(data["answer_words"]),
            lora=LoraSettings(**lora) if lora is not None else None,
        )


class Classifier(torch.nn.Module):
    """Backbone (a transformers model, maybe wrapped in a PEFT LoRA model) plus a two-way head."""

    def __init__(
        self, backbone: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase, spec: ClassifierSpec
    ) -> None:
        super().__init__()
        self.backbone = backbone
        self.tokenizer = tokenizer
        self.spec = spec
        self.head = spec.head
        device = next(backbone.parameters()).device
        if spec.head in CALIBRATED_HEADS:
            # Zero init (Burns et al.): training starts from p = 0.5, not from a random guess.
            features = self._base().config.hidden_size if spec.head == "linear" else 2
            self.score = torch.nn.Linear(features, 2, device=device, dtype=torch.float32)
            torch.nn.init.zeros_(self.score.weight)
            torch.nn.init.zeros_(self.score.bias)
        if spec.head == "lm":
            ids = answer_token_ids(tokenizer, spec.answer_words)
            self.register_buffer("answer_ids", torch.tensor(ids, device=device), persistent=False)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, answer_lengths: torch.Tensor | None = None
    ) -> torch.Tensor:
        """[B, 2] float32 logits; column 1 = "the candidate is correct".

        Expects right padding (as `collate` makes it): positions count from the first token, and the
        last non-padding token is found from the mask. The likelihood head needs `answer_lengths`
        ([B]: how many of each input's last tokens are its answer).
        """
        decoder = self._base() if self.head == "linear" else self._base().get_decoder()
        hidden = decoder(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).last_hidden_state
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        last = (attention_mask * positions).argmax(dim=1)  # last non-padding position
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        if self.head == "likelihood":
            if answer_lengths is None:
                raise ValueError("the likelihood head needs answer_lengths (see encode_inputs(answer_last=True)).")
            return self.score(self._answer_features(hidden, input_ids, last, answer_lengths))
        final = hidden[rows, last]
        if self.head == "linear":
            return self.score(final.float())
        # Only the two answer rows of the LM head: the same numbers as full logits, without [B, T, vocab].
        lm_head = self._base().get_output_embeddings()
        return F.linear(final, lm_head.weight[self.answer_ids]).float()

    def _answer_features(
        self, hidden: torch.Tensor, input_ids: torch.Tensor, last: torch.Tensor, answer_lengths: torch.Tensor
    ) -> torch.Tensor:
        """[B, 2]: sum and minimum of log p(answer token | everything before it), scaled.

        The answer is the last `answer_lengths[b]` tokens of row b; the LM head runs only on the
        positions that predict them ([B, longest answer, vocab], not [B, T, vocab]).
        """
        offsets = torch.arange(int(answer_lengths.max()), device=hidden.device)
        valid = offsets[None, :] < answer_lengths[:, None]
        targets = (last[:, None] - offsets[None, :]).clamp(min=1)  # answer token positions, last first
        rows = torch.arange(hidden.shape[0], device=hidden.device)[:, None]
        logits = self._base().get_output_embeddings()(hidden[rows, targets - 1]).float()
        log_probs = torch.log_softmax(logits, dim=-1).gather(-1, input_ids[rows, targets][..., None])[..., 0]
        total = log_probs.masked_fill(~valid, 0.0).sum(dim=1)
        lowest = log_probs.masked_fill(~valid, float("inf")).min(dim=1).values
        return torch.stack([total, lowest], dim=1) * LIKELIHOOD_FEATURE_SCALE

    def param_groups(self) -> list[dict[str, Any]]:
        """Trainable parameters as optimizer groups; `lr_scale` multiplies the run's learning rate."""
        params = trainable_parameters(self)
        head = {name: p for name, p in params.items() if name.startswith("score.")} if self.head == "likelihood" else {}
        groups = [{"params": [p for name, p in params.items() if name not in head], "lr_scale": 1.0}]
        if head:
            groups.append({"params": list(head.values()), "lr_scale": HEAD_LR_SCALE})
        return [group for group in groups if group["params"]]

    def set_gradient_checkpointing(self, enabled: bool) -> None:
        """Recompute activations in backward (non-reentrant, so frozen inputs under LoRA are fine)."""
        if enabled:
            self._base().gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            self._base().gradient_checkpointing_disable()

    def shard(self, device: torch.device) -> None:
        """FSDP2 over all ranks of the process group: each decoder layer is its own unit (gathered
        only while it computes), the rest (embeddings, final norm, LM head) the root one, the fp32
        linear head a third. Call on every rank before `train_classifier`; the weights may be on
        the CPU (loading a model that does not fit the GPU) and move to `device` slice by slice.
        """
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        mesh = init_device_mesh(device.type, (current_ranks().world,))
        blocks = set(getattr(self._base(), "_no_split_modules", None) or ())
        layers = [module for module in self.backbone.modules() if type(module).__name__ in blocks]
        if not layers:
            raise ValueError(f"found no decoder layers ({sorted(blocks)}) to shard in {type(self._base()).__name__}.")
        for layer in layers:
            fully_shard(layer, mesh=mesh)
        if self.head in CALIBRATED_HEADS:
            fully_shard(self.score, mesh=mesh)  # fp32 beside bf16 weights: a unit of its own
        fully_shard(self, mesh=mesh)

    def save(self, out_dir: Path) -> None:
        """Write the classifier to `out_dir` (layout: see `load_saved_classifier`).

        Under DDP call it on one rank; a sharded model is gathered, so call it on every rank (rank 0 writes).
        """
        # Sharded weights are gathered first, on every rank (a collective); then rank 0 writes.
        backbone_state = self._gathered_backbone() if is_sharded(self) else None
        head_state = gather_full(self.score.state_dict()) if self.head in CALIBRATED_HEADS else {}
        if not current_ranks().is_main:
            return
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        # LoRA: adapter_config.json + adapter_model.safetensors; full: the whole model.
        self.backbone.save_pretrained(out_dir, state_dict=backbone_state)
        if self.spec.lora is None:
            self.tokenizer.save_pretrained(out_dir)
        if self.head in CALIBRATED_HEADS:
            save_file(head_state, out_dir / HEAD_FILE)
        (out_dir / SPEC_FILE).write_text(self.spec.to_json())

    def _gathered_backbone(self) -> dict[str, torch.Tensor]:
        """The backbone's whole weights from the shards (on rank 0); with LoRA only the adapter's,
        not the frozen base. Parameters, not copies, go in, so tied embeddings stay tied."""
        state = self.backbone.state_dict(keep_vars=True)
        if self.spec.lora is not None:
            trainable = {name for name, param in self.backbone.named_parameters() if param.requires_grad}
            state = {name: tensor for name, tensor in state.items() if name in trainable}
        return gather_full(state)

    def _base(self) -> PreTrainedModel:
        """The transformers model (LoRA layers, if any, are injected into it in place)."""
        if isinstance(self.backbone, PeftModel):
            return self.backbone.get_base_model()
        return self.backbone


def load_classifier(
    model_path: str | Path,
    *,
    head: str = "linear",
    answer_words: tuple[str, str] = (" No", " Yes"),
    lora: LoraSettings | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    gradient_checkpointing: bool = False,
    seed: int = 0,
) -> Classifier:
    """A fresh classifier on the pretrained model at `model_path` (a directory or a hub name).

    `dtype`: of the backbone's weights; None = bf16 on CUDA, fp32 on CPU (see `weight_dtype`).
    `seed` fixes the random LoRA initialisation (the head is zeros). Raises ValueError if the two
    answer words start with the same token, since the lm head could not tell them apart.
    """
    spec = ClassifierSpec(_base_name(model_path), _check_head(head), tuple(answer_words), lora)
    device = resolve_device(device)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    if head == "lm":
        answer_token_ids(tokenizer, spec.answer_words)  # fail before loading weights
    backbone = _load_backbone(model_path, head, device, dtype or weight_dtype(device))
    if lora is not None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            backbone = get_peft_model(backbone, _lora_config(lora, head, spec.base_model))
    with torch.random.fork_rng(devices=[]):
        classifier = Classifier(backbone, tokenizer, spec)
    classifier.set_gradient_checkpointing(gradient_checkpointing)
    return classifier


def load_saved_classifier(
    out_dir: Path, *, device: str | torch.device | None = None, dtype: torch.dtype | None = None
) -> Classifier:
    """The classifier `Classifier.save` wrote to `out_dir`.

    Layout: `classifier.json` (head, base model, answer words, LoRA settings); with LoRA, a PEFT
    adapter dir (`adapter_config.json`, `adapter_model.safetensors`) over the base model named in
    it, otherwise the full model and tokenizer (`save_pretrained`); for the linear head also
    `head.safetensors` (also for the likelihood head). LoRA weights come back trainable, so training can continue.
    """
    out_dir = Path(out_dir)
    spec_path = out_dir / SPEC_FILE
    if not spec_path.is_file():
        raise FileNotFoundError(f"{out_dir} holds no {SPEC_FILE}: it was not written by Classifier.save.")
    spec = ClassifierSpec.from_json(spec_path.read_text())
    device = resolve_device(device)
    dtype = dtype or weight_dtype(device)
    if spec.lora is not None:
        tokenizer = AutoTokenizer.from_pretrained(spec.base_model)
        base = _load_backbone(spec.base_model, spec.head, device, dtype)
        backbone: PreTrainedModel | PeftModel = PeftModel.from_pretrained(base, out_dir, is_trainable=True)
    else:
        tokenizer = AutoTokenizer.from_pretrained(out_dir)
        backbone = _load_backbone(out_dir, spec.head, device, dtype, saved_decoder=spec.head == "linear")
    classifier = Classifier(backbone, tokenizer, spec)
    if spec.head in CALIBRATED_HEADS:
        classifier.score.load_state_dict(load_file(out_dir / HEAD_FILE, device=str(device)))
    return classifier


def answer_token_ids(tokenizer: PreTrainedTokenizerBase, answer_words: tuple[str, str]) -> tuple[int, int]:
    """The first token of each answer word; they must differ."""
    ids = []
    for word in answer_words:
        tokens = tokenizer(word, add_special_tokens=False)["input_ids"]
        if not tokens:
            raise ValueError(f"answer word {word!r} encodes to no tokens; pick a non-empty word.")
        ids.append(tokens[0])
    if ids[0] == ids[1]:
        raise ValueError(
            f"answer words {answer_words!r} both start with token {ids[0]}; the lm head could not tell them "
            "apart — pick words with different first tokens (mind the leading space)."
        )
    return ids[0], ids[1]


def resolve_device(device: str | torch.device | None) -> torch.device:
    """None: this process's GPU (LOCAL_RANK under torchrun) if CUDA is available, else the CPU."""
    if device is not None:
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def weight_dtype(device: torch.device) -> torch.dtype:
    """bf16 on CUDA (half the memory, tensor cores), fp32 on the CPU."""
    return torch.bfloat16 if device.type == "cuda" else torch.float32


def _load_backbone(
    model_path: str | Path, head: str, device: torch.device, dtype: torch.dtype, *, saved_decoder: bool = False
) -> PreTrainedModel:
    """The causal LM for the lm head; for the linear head only its decoder, the vocab-sized LM head dropped.

    `saved_decoder`: `model_path` holds a decoder a full linear classifier saved, not a causal LM.
    """
    if saved_decoder:
        model = AutoModel.from_pretrained(model_path, dtype=dtype)
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype)
        if head == "linear":
            model = model.get_decoder()
    model = model.to(device)
    model.config.use_cache = False
    return model


def _lora_config(lora: LoraSettings, head: str, base_model: str) -> LoraConfig:
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type=None if head == "linear" else "CAUSAL_LM",
    )
    config.base_model_name_or_path = base_model
    return config


def _check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"head={head!r}: choose one of {HEADS}.")
    return head


def _base_name(model_path: str | Path) -> str:
    """An existing directory as an absolute path (so adapters load from any cwd); a hub name as given."""
    path = Path(model_path)
    return str(path.resolve()) if path.is_dir() else str(model_path)


def trainable_parameters(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    """Parameters that training updates, by name (what checkpoints hold)."""
    return {name: param for name, param in model.named_parameters() if param.requires_grad}


def describe(model: Classifier) -> dict[str, Any]:
    """Parameter counts for logs and benchmarks."""
    total = sum(param.numel() for param in model.parameters())
    trainable = sum(param.numel() for param in trainable_parameters(model).values())
    return {"head": model.head, "lora": model.spec.lora is not None, "params": total, "trainable_params": trainable}
