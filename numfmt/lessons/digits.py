"""The lessons' data and network: scikit-learn's handwritten digits and a small MLP.

``load_digits`` splits the 1,797 8x8 digits (pixel values 0..16, scaled to 0..1) into a
stratified training set and a test quarter; ``mlp`` builds 64 -> 32 -> 32 -> 10 with ReLU;
``train_mlp`` trains it with Adam in mini-batches. Every step is seeded, so a lesson gives the
same numbers on every run of the same torch build.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from numfmt.errors import NumfmtError

#: The float network's widths: 64 pixels in, two hidden layers, 10 digits out.
WIDTHS = (64, 32, 32, 10)


@dataclass(frozen=True)
class Digits:
    """The digits as float32 tensors: training and test inputs (n, 64) and labels (n,)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor

    def to(self, device: str | torch.device) -> Digits:
        return Digits(
            *(t.to(device) for t in (self.x_train, self.y_train, self.x_test, self.y_test))
        )


def load_digits(seed: int = 0, device: str | torch.device = "cpu") -> Digits:
    """scikit-learn's digits, split 75/25 (stratified by label) with ``seed``."""
    from numfmt._extras import require

    require("sklearn", "loading the digits")
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    data = sk_digits()
    x = data.data.astype("float32") / 16.0
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, data.target, test_size=0.25, random_state=seed, stratify=data.target
    )
    tensors = [torch.as_tensor(a) for a in (x_tr, y_tr, x_te, y_te)]
    return Digits(*tensors).to(device)


def mlp(seed: int = 0, widths: tuple[int, ...] = WIDTHS) -> nn.Sequential:
    """Linear layers of the given widths with ReLU between them, initialised from ``seed``."""
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def accuracy(model: nn.Module, data: Digits) -> float:
    """The share of test digits the model labels right."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        right = (model(data.x_test).argmax(dim=1) == data.y_test).sum().item()
    model.train(was_training)
    return right / len(data.y_test)


def train_mlp(
    model: nn.Module,
    data: Digits,
    *,
    epochs: int,
    lr: float,
    seed: int = 0,
    batch: int = 64,
    on_epoch: Callable[[int, float, float], None] | None = None,
) -> list[tuple[float, float]]:
    """Train with Adam and cross-entropy over shuffled mini-batches; after each epoch,
    (mean training loss, test accuracy), also passed to ``on_epoch(epoch, loss, acc)``."""
    if epochs < 1:
        raise NumfmtError(f"training takes at least one epoch, not {epochs}")
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    order = torch.Generator().manual_seed(seed)
    n = len(data.y_train)
    curve = []
    for epoch in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=order).to(data.x_train.device)
        total: Any = 0.0  # a tensor once a batch is added
        for start in range(0, n, batch):
            idx = perm[start : start + batch]
            opt.zero_grad()
            loss = nn.functional.cross_entropy(model(data.x_train[idx]), data.y_train[idx])
            loss.backward()
            opt.step()
            total += loss.detach() * len(idx)
        point = (float(total.item()) / n, accuracy(model, data))
        curve.append(point)
        if on_epoch is not None:
            on_epoch(epoch, *point)
    model.eval()
    return curve
