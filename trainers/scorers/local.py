"""Local scorers: a toxicity classifier trained in-process from RealToxicityPrompts' scored texts, or a
Hugging Face sequence classifier a user points at.

    fit = train_toxicity_scorer(Path(".../real_toxicity_prompts"))   # a few seconds on a CPU
    fit.heldout_auroc                                                 # ranking quality on rows it never saw
    fit.scorer.score([Scored(prompt="", text="you idiot")])

The classifier is fastText-shaped (Joulin et al. 2017): hashed word unigrams and bigrams, averaged
embeddings, one logit, trained against the texts' Perspective toxicity as a soft target. Every row
gives two texts (its prompt and its continuation, each with its own score); every fifth row is held
out, both texts together, so no text is scored by a model that saw its row.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainers.classification_metrics import auroc
from trainers.scorers.base import Scored, ScorerError
from trainers.tasks import TaskDataError
from trainers.tasks.loading import local_rows

BUCKETS = 1 << 16
WORD = re.compile(r"[a-z0-9']+|[^\sa-z0-9]")
TOXIC_AT = 0.5
HELD_OUT_EVERY = 5


@dataclass(frozen=True)
class ScoredText:
    text: str
    toxicity: float
    heldout: bool


def scored_texts(data_dir: Path) -> Iterator[ScoredText]:
    """Each row's prompt and continuation with its toxicity; every fifth row held out."""
    try:
        for index, (_, row) in enumerate(local_rows(Path(data_dir), "toxicity")):
            for part in ("prompt", "continuation"):
                if row[part].get("toxicity") is not None and row[part]["text"].strip():
                    yield ScoredText(row[part]["text"], float(row[part]["toxicity"]), index % HELD_OUT_EVERY == 0)
    except (TaskDataError, KeyError, TypeError) as exc:
        raise ScorerError(f"cannot read scored texts from {data_dir}: {exc}") from exc


def features(text: str) -> list[int]:
    """Hashed unigram and bigram buckets of the lower-cased text (crc32: the same on every machine)."""
    words = WORD.findall(text.lower()) or ["<empty>"]
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    return [zlib.crc32(gram.encode()) % BUCKETS for gram in grams]


class BagClassifier(torch.nn.Module):
    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.embed = torch.nn.EmbeddingBag(BUCKETS, dim, mode="mean")
        self.out = torch.nn.Linear(dim, 1)

    def forward(self, flat: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        return self.out(self.embed(flat, offsets)).squeeze(-1)


def _packed(texts: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    ids = [features(text) for text in texts]
    offsets = torch.tensor([0, *np.cumsum([len(i) for i in ids])[:-1]], dtype=torch.long)
    return torch.tensor([b for i in ids for b in i], dtype=torch.long), offsets


class BagScorer:
    """Probability that a text is toxic, from a trained `BagClassifier`."""

    def __init__(self, model: BagClassifier) -> None:
        self.model = model.eval()

    def score(self, items: Sequence[Scored]) -> list[float]:
        return self.probabilities([item.text for item in items])

    @torch.no_grad()
    def probabilities(self, texts: Sequence[str]) -> list[float]:
        if not texts:
            return []
        return torch.sigmoid(self.model(*_packed(texts))).tolist()


@dataclass(frozen=True)
class ToxicityScorerFit:
    scorer: BagScorer
    heldout_auroc: float | None  # toxic (>= 0.5) vs non-toxic held-out texts
    trained_on: int
    heldout: int


def train_toxicity_scorer(data_dir: Path, *, epochs: int = 8, seed: int = 0) -> ToxicityScorerFit:
    texts = list(scored_texts(data_dir))
    train = [t for t in texts if not t.heldout]
    test = [t for t in texts if t.heldout]
    if not train or not test:
        raise ScorerError(f"{data_dir} has too few scored texts to train and check a toxicity scorer")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BagClassifier()
        _fit(model, train, epochs, np.random.default_rng(seed))
    scorer = BagScorer(model)
    quality = auroc(
        np.array([int(t.toxicity >= TOXIC_AT) for t in test]), np.array(scorer.probabilities([t.text for t in test]))
    )
    return ToxicityScorerFit(scorer, quality, len(train), len(test))


def _fit(model: BagClassifier, texts: list[ScoredText], epochs: int, rng: np.random.Generator) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    targets = torch.tensor([t.toxicity for t in texts])
    model.train()
    for _ in range(epochs):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            logits = model(*_packed([texts[i].text for i in batch]))
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets[batch])
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


class CheckpointScorer:
    """The probability of class `positive_label` from a Hugging Face sequence classifier."""

    def __init__(self, checkpoint: str, positive_label: int = 1) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            self.model = AutoModelForSequenceClassification.from_pretrained(checkpoint).eval()
        except OSError as exc:
            raise ScorerError(f"cannot load the scorer checkpoint {checkpoint!r}: {exc}") from exc
        self.positive_label = positive_label

    @torch.no_grad()
    def score(self, items: Sequence[Scored]) -> list[float]:
        scores = []
        for start in range(0, len(items), 32):
            batch = self.tokenizer(
                [item.text for item in items[start : start + 32]], padding=True, truncation=True, return_tensors="pt"
            )
            scores += torch.softmax(self.model(**batch).logits, -1)[:, self.positive_label].tolist()
        return scores
