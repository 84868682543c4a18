"""Tiny random-initialised Llama models with an in-process tokenizer, for tests.

A tiny model is a directory that both `transformers` (`AutoModelForCausalLM`,
`AutoTokenizer`) and vLLM load: a float32 `LlamaForCausalLM` in safetensors and a
byte-level BPE `PreTrainedTokenizerFast` trained here on a corpus generated in code,
with a ChatML chat template. Nothing is downloaded.

    from trainers.tiny_model import ensure_tiny_model
    model_dir = ensure_tiny_model(Path("artifacts/tiny"), seed=0)

The weights depend on `seed`; the tokenizer depends only on `vocab`, so tiny models of
different seeds share one vocabulary. The same arguments give byte-identical files.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

BOS_TOKEN = "<s>"
EOS_TOKEN = "</s>"
PAD_TOKEN = "<pad>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (PAD_TOKEN, BOS_TOKEN, EOS_TOKEN, IM_START, IM_END)
BYTE_ALPHABET_SIZE = 256
MIN_HEAD_DIM = 32
MAX_VOCAB = 3072  # the built-in corpus supports ~3,600 BPE tokens
MARKER_FILE = "tiny_model.json"
MARKER_FORMAT = 1
MODEL_FILES = frozenset(
    {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "chat_template.jinja",
        MARKER_FILE,
    }
)
CORPUS_SEED = 1234
CORPUS_SENTENCES = 6000

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}"
)

WORDS = """
the be to of and a in that have I it for not on with he as you do at this but his by
from they we say her she or an will my one all would there their what so up out if
about who get which go me when make can like time no just him know take people into
year your good some could them see other than then now look only come its over think
also back after use two how our work first well way even new want because any these
give day most us is are was were been has had did does said made went gone came seen
question answer true false correct incorrect debater judge argue claim evidence reason
because therefore however passage context quote support against both side round turn
yes maybe probably certainly clearly wrong right fact source text example label model
weak strong train test data task review movie book product good bad great poor love hate
water fire earth air plant animal cell energy light heat sound force mass gravity atom
science physics chemistry biology history law policy privacy safe unsafe toxic helpful
harmless honest human assistant user system please thank sorry hello world story man
woman child family friend house school city country river mountain sea sky sun moon star
red blue green yellow black white big small long short high low old young early late
happy sad angry calm fast slow hot cold hard soft open close begin end start stop find
lose keep hold bring carry read write speak listen learn teach help ask tell show hear
play run walk sit stand eat drink sleep live die grow change move turn leave stay feel
number zero one two three four five six seven eight nine ten hundred thousand million
many much more less few several every each all none some always never often sometimes
here there where why what when who whom whose which while during before after between
under above below near far inside outside around through across along toward within
""".split()

CAPITALISED = "True False Correct Incorrect Debater Question Answer Judge Yes No The A".split()
PUNCTUATION = [".", ",", "?", "!", ":", ";", "'s", " -", " (", ")", '"']


@dataclass(frozen=True)
class TinyModelSpec:
    """The arguments that fully determine a tiny model's files; validated on creation."""

    layers: int = 2
    hidden: int = 128
    heads: int = 2
    vocab: int = 2048
    seed: int = 0
    max_position_embeddings: int = 2048

    def __post_init__(self) -> None:
        if self.layers < 1:
            raise ValueError(f"layers={self.layers}: pass layers >= 1.")
        if self.heads < 1 or self.hidden % self.heads != 0:
            raise ValueError(
                f"hidden={self.hidden} is not divisible by heads={self.heads}; pick heads dividing hidden."
            )
        if self.hidden // self.heads < MIN_HEAD_DIM:
            raise ValueError(
                f"head_dim = hidden/heads = {self.hidden}/{self.heads} = {self.hidden // self.heads}; vLLM on "
                f"CPU needs head_dim >= {MIN_HEAD_DIM}: raise hidden or lower heads."
            )
        smallest = len(SPECIAL_TOKENS) + BYTE_ALPHABET_SIZE + 1
        if not smallest <= self.vocab <= MAX_VOCAB:
            raise ValueError(
                f"vocab={self.vocab}: pass {smallest} <= vocab <= {MAX_VOCAB} (room for {len(SPECIAL_TOKENS)} "
                f"special tokens and the {BYTE_ALPHABET_SIZE}-byte alphabet; the built-in corpus caps the merges)."
            )
        if self.max_position_embeddings < 16:
            raise ValueError(f"max_position_embeddings={self.max_position_embeddings}: pass at least 16.")


def make_tiny_model(
    out_dir: Path,
    *,
    layers: int = 2,
    hidden: int = 128,
    heads: int = 2,
    vocab: int = 2048,
    seed: int = 0,
    max_position_embeddings: int = 2048,
) -> Path:
    """Write a random-initialised tiny Llama + tokenizer into `out_dir`; return `out_dir`.

    The directory is built next to `out_dir` and renamed into place, with the marker
    file `tiny_model.json` written last, so a half-written directory is never complete.
    `out_dir` must not exist or be empty.
    """
    spec = TinyModelSpec(layers, hidden, heads, vocab, seed, max_position_embeddings)
    out_dir = Path(out_dir)
    _require_empty_or_missing(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.building-", dir=out_dir.parent))
    try:
        _write_model_files(build_dir, spec)
        _move_into_place(build_dir, out_dir, spec)
    finally:
        shutil.rmtree(build_dir, ignore_errors=True)
    return out_dir


def ensure_tiny_model(out_dir: Path, **kwargs: int) -> Path:
    """Return `out_dir` holding the tiny model of `kwargs` (as for `make_tiny_model`), building only if needed.

    A complete directory with the same arguments is reused; an incomplete one (no marker,
    only files this module writes) is rebuilt. A complete one built with other arguments
    raises `ValueError` rather than being overwritten.
    """
    out_dir = Path(out_dir)
    wanted = TinyModelSpec(**kwargs)
    found = read_tiny_model_spec(out_dir)
    if found == wanted:
        return out_dir
    if found is not None:
        raise ValueError(
            f"{out_dir} already holds a tiny model built with {found}, not {wanted}; "
            "delete the directory or pass another out_dir."
        )
    _remove_incomplete(out_dir)
    return make_tiny_model(out_dir, **asdict(wanted))


def read_tiny_model_spec(model_dir: Path) -> TinyModelSpec | None:
    """Return the spec of the complete tiny model in `model_dir`, or None if there is none."""
    try:
        marker = json.loads((Path(model_dir) / MARKER_FILE).read_text())
        if marker["format"] != MARKER_FORMAT:
            return None
        return TinyModelSpec(**marker["spec"])
    except (OSError, ValueError, TypeError, KeyError):  # absent, or not a marker we wrote
        return None


def _require_empty_or_missing(out_dir: Path) -> None:
    """Refuse to build over a directory that already has content."""
    if out_dir.exists() and (not out_dir.is_dir() or any(out_dir.iterdir())):
        raise FileExistsError(
            f"{out_dir} exists and is not an empty directory; delete it, pass another "
            "out_dir, or call ensure_tiny_model to reuse a complete one."
        )


def _remove_incomplete(out_dir: Path) -> None:
    """Delete a half-written tiny model dir, but only if it holds nothing else."""
    if not out_dir.exists():
        return
    strangers = sorted(p.name for p in out_dir.iterdir() if p.name not in MODEL_FILES)
    if strangers:
        raise FileExistsError(
            f"{out_dir} is not a complete tiny model and holds other files {strangers[:5]}; "
            "delete it or pass another out_dir."
        )
    shutil.rmtree(out_dir)


def _move_into_place(build_dir: Path, out_dir: Path, spec: TinyModelSpec) -> None:
    """Write the marker last, then rename the finished build onto `out_dir`."""
    marker = {"format": MARKER_FORMAT, "spec": asdict(spec)}
    (build_dir / MARKER_FILE).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
    if out_dir.is_dir():
        out_dir.rmdir()  # empty, checked before building
    try:
        build_dir.rename(out_dir)
    except OSError:
        # Another process finished the same model first; theirs is as good as ours.
        if read_tiny_model_spec(out_dir) != spec:
            raise


def _write_model_files(model_dir: Path, spec: TinyModelSpec) -> None:
    """Train the tokenizer, initialise the model from `seed`, save both."""
    tokenizer = build_tokenizer(spec.vocab)
    model = _build_model(spec, tokenizer)
    model.save_pretrained(model_dir)
    tokenizer.save_pretrained(model_dir)
    _make_tokenizer_config_portable(model_dir / "tokenizer_config.json")
    model_dir.chmod(0o755)  # mkdtemp made it 0700 and safetensors files come out 0600
    for path in model_dir.iterdir():
        path.chmod(0o644)


def _make_tokenizer_config_portable(path: Path) -> None:
    """Rewrite transformers-5-only fields so transformers 4.x (older vLLM) loads the tokenizer too.

    transformers 5 saves `tokenizer_class: TokenizersBackend`, a list under
    `extra_special_tokens` and the template only in `chat_template.jinja`; 4.x knows
    none of these. Both versions read the fields written here.
    """
    config = json.loads(path.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config.pop("extra_special_tokens", None)
    config["additional_special_tokens"] = [IM_START, IM_END]
    config["chat_template"] = CHAT_TEMPLATE
    config["model_input_names"] = ["input_ids", "attention_mask"]  # 4.x would add token_type_ids
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def build_tokenizer(vocab: int) -> Any:
    """Train a byte-level BPE on the built-in corpus and wrap it for transformers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(build_corpus(), trainer=trainer)
    if tok.get_vocab_size() != vocab:
        raise RuntimeError(f"the built-in corpus gave {tok.get_vocab_size()} BPE tokens, not {vocab}; lower vocab.")
    bos_id = tok.token_to_id(BOS_TOKEN)
    tok.post_processor = processors.TemplateProcessing(
        single=f"{BOS_TOKEN} $A", pair=f"{BOS_TOKEN} $A {BOS_TOKEN} $B", special_tokens=[(BOS_TOKEN, bos_id)]
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token=BOS_TOKEN,
        eos_token=EOS_TOKEN,
        pad_token=PAD_TOKEN,
        additional_special_tokens=[IM_START, IM_END],
        model_max_length=4096,
        model_input_names=["input_ids", "attention_mask"],
    )
    wrapped.chat_template = CHAT_TEMPLATE
    return wrapped


def build_corpus() -> list[str]:
    """Deterministic English-like sentences, numbers and debate/QA phrasing."""
    rng = random.Random(CORPUS_SEED)
    return [" ".join(WORDS), " ".join(CAPITALISED)] + [_sentence(rng) for _ in range(CORPUS_SENTENCES)]


def _sentence(rng: random.Random) -> str:
    """One random line: plain prose, a QA pair or a debate turn."""
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 14)))
    words = words[0].upper() + words[1:] + rng.choice(PUNCTUATION)
    number = str(rng.randint(0, 10 ** rng.randint(1, 5)))
    kind = rng.randrange(4)
    if kind == 0:
        return f"Question: {words} Answer: {rng.choice(CAPITALISED)} {number}"
    if kind == 1:
        side = rng.choice("AB")
        return f"Debater {side}: The answer is {rng.choice(['correct', 'incorrect'])} because {words}"
    if kind == 2:
        return f"{words} {number}{rng.choice(PUNCTUATION)} {rng.choice(['True', 'False'])}"
    return words


def llama_config(spec: Any, tokenizer: Any, *, intermediate_size: int) -> Any:
    """A float32 LlamaConfig for `spec` (hidden, layers, heads, max_position_embeddings) and `tokenizer`'s ids."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=intermediate_size,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.heads,
        max_position_embeddings=spec.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
        dtype="float32",
    )


def _build_model(spec: TinyModelSpec, tokenizer: Any) -> Any:
    """A float32 LlamaForCausalLM initialised from `seed` without touching global RNG state."""
    import torch
    from transformers import LlamaForCausalLM

    config = llama_config(spec, tokenizer, intermediate_size=4 * spec.hidden)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.seed)
        model = LlamaForCausalLM(config)
    model.generation_config.eos_token_id = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(IM_END)]
    return model
