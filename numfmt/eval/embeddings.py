"""Sentence encoders: embeddings, and how far a quantized encoder's moved from the float
one's (cosines, nearest neighbours kept)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch


def embed(model: Any, tokenizer: Any, sentences: Iterable[str]) -> torch.Tensor:
    """Sentence embeddings of an encoder: mean of the last hidden states over each sentence's
    tokens, unit length (as sentence-transformers' all-MiniLM pools)."""
    batch = tokenizer(list(sentences), padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"][..., None].to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


@dataclass(frozen=True)
class EmbeddingScore:
    """How far a quantized encoder's embeddings moved: mean and worst cosine with the
    original's, and the share of sentences whose nearest neighbour stayed the same."""

    name: str
    mean_cosine: float
    worst_cosine: float
    same_neighbour: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def compare_embeddings(
    reference: torch.Tensor, other: torch.Tensor, name: str = ""
) -> EmbeddingScore:
    """Cosines between matching rows, and nearest-neighbour agreement (each sentence's most
    similar other sentence, by each model).

    Examples:
        >>> import torch
        >>> unit = torch.nn.functional.normalize
        >>> ref = unit(torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1]]), dim=-1)
        >>> moved = unit(ref + torch.tensor([0, 0.2]), dim=-1)
        >>> s = compare_embeddings(ref, moved, "int4")
        >>> round(s.worst_cosine, 3), s.same_neighbour  # moved, and still each one's neighbour
        (0.981, 1.0)
    """
    cos = (reference * other).sum(-1)

    def neighbours(e):
        sim = e @ e.T
        sim.fill_diagonal_(-math.inf)
        return sim.argmax(-1)

    same = float((neighbours(reference) == neighbours(other)).float().mean())
    return EmbeddingScore(name, float(cos.mean()), float(cos.min()), same)
