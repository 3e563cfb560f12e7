"""Calibration: the text and inputs that calibrating algorithms and static activation
ranges learn from, and what they measure on it.

``calibration_windows(tokenizer, text, tokens)`` cuts a text's first tokens into windows of
512 (each a batch of one); ``input_hessians`` takes each layer's inputs' Hessian (or its
diagonal) in one forward pass; ``observe_activations`` each layer's static input range.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn.progress import Progress, tracker
from numfmt.nn.recipe import Recipe
from numfmt.quant.granularity import PerToken
from numfmt.quant.observer import Observer

#: Tokens per calibration window.
WINDOW = 512


def tokenize(tokenizer: Any, text: str) -> torch.Tensor:
    """A text as one long row of token ids (no special tokens added between windows)."""
    if not text.strip():
        raise NumfmtError("the text is empty")
    ids = tokenizer(text, add_special_tokens=False, return_tensors="pt").input_ids[0]
    return ids


def model_positions(model: Any) -> int | None:
    """The positions a model reads at most, where its config says them."""
    config = getattr(model, "config", None)
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    return positions if isinstance(positions, int) and positions > 0 else None


def calibration_windows(
    tokenizer: Any, text: str, tokens: int = 8192, window: int = WINDOW, *, model: Any = None
) -> list[torch.Tensor]:
    """The first ``tokens`` tokens of ``text`` in windows of ``window``, each a batch of one;
    with ``model``, windows no longer than its positions.

    Raises:
        NumfmtError: fewer tokens than one window.
    """
    positions = model_positions(model) if model is not None else None
    if positions is not None:
        window = min(window, positions)
    if tokens < window:
        raise NumfmtError(
            f"{tokens} calibration tokens do not fill one window of {window}: ask for "
            f"{window} or more"
        )
    ids = tokenize(tokenizer, text)[:tokens]
    n = int(ids.numel()) // window
    if n == 0:
        raise NumfmtError(
            f"the calibration text has {int(ids.numel())} tokens, shorter than one window of "
            f"{window}: give more text"
        )
    return list(ids[: n * window].reshape(n, window)[:, None, :])


def batches(calibration: Any) -> list[Any]:
    if isinstance(calibration, torch.Tensor):
        return [calibration if calibration.dim() > 1 else calibration[None, :]]
    batches = list(calibration)
    if not batches:
        raise NumfmtError("the calibration data is empty")
    return batches


def observe_activations(
    model: nn.Module, chosen: list, recipe: Recipe, calibration: Any
) -> dict[str, Any]:
    """Static activation ranges: each chosen layer's inputs over the calibration batches,
    through the quantization layer's Observer (its method: minmax, percentile, l2_histogram
    ...), run on the model before any layer is quantized. name -> QParams."""
    scheme = recipe.activations
    if scheme is None:
        raise NumfmtError(
            "calibration sets static activation ranges, and the recipe quantizes no "
            "activations: use w8a8-tensor, or activations='int8/l2_histogram'"
        )
    if isinstance(scheme.granularity, PerToken):
        raise NumfmtError(
            "a static range cannot be per token (the tokens change with every input); "
            "use a per-tensor activation scheme such as int8 or int8/percentile:99.99"
        )
    observers = {name: Observer(scheme) for name, _, kind, _ in chosen if kind != "embedding"}
    hooks = []
    for name, module, _, _ in chosen:
        if name in observers:

            def hook(_module, args, obs=observers[name]):
                x = args[0].detach()
                obs.update(x.reshape(-1, x.shape[-1]))

            hooks.append(module.register_forward_pre_hook(hook))
    try:
        with torch.no_grad():
            for batch in batches(calibration):
                model(batch)
    finally:
        for h in hooks:
            h.remove()
    return {name: obs.qparams() for name, obs in observers.items() if obs.batches}


def input_hessians(
    model: nn.Module,
    layers: dict[str, nn.Module],
    batches: list[Any],
    progress: Progress = None,
    *,
    diagonal: bool = False,
) -> dict[str, torch.Tensor]:
    """For each named layer, the Hessian 2 X^T X / n of its inputs over the calibration
    batches (one forward pass of the float model; layers fed the same tensor, as q, k and v
    are, share one matrix), or with ``diagonal`` only its diagonal, 2 mean(x_j^2) (the
    importance of each input). float32 sums, returned as float64."""
    sums: dict[str, torch.Tensor] = {}
    counts: dict[str, int] = {}
    alias: dict[str, str] = {}
    last: list[Any] = [None, None]  # the previous hook's input tensor (the object) and layer

    def hook_for(name: str):
        def hook(_module, args):
            if args[0] is last[0] and last[1] != name:  # q, k and v read one tensor
                alias[name] = alias.get(last[1], last[1])
                return
            last[:] = [args[0], name]
            x = args[0].detach()
            x = x.reshape(-1, x.shape[-1])
            xf = x.to(torch.float32)
            if name not in sums:
                shape = (x.shape[1],) if diagonal else (x.shape[1], x.shape[1])
                sums[name] = torch.zeros(shape, device=x.device)
                counts[name] = 0
            if diagonal:
                sums[name] += (xf * xf).sum(dim=0)
            else:
                sums[name].addmm_(xf.T, xf)
            counts[name] += x.shape[0]

        return hook

    handles = [m.register_forward_pre_hook(hook_for(n)) for n, m in layers.items()]
    try:
        with torch.no_grad(), tracker(len(batches), "calibrating", progress) as step:
            for i, batch in enumerate(batches):
                batch = torch.as_tensor(batch)
                model(batch if batch.dim() > 1 else batch[None])
                step(f"batch {i + 1}")
    finally:
        last[:] = [None, None]
        for h in handles:
            h.remove()
    out: dict[str, torch.Tensor] = {}
    for name in layers:
        owner = alias.get(name, name)
        if owner not in sums and owner not in out:
            raise NumfmtError(f"{name} saw no input during calibration; is it used by forward?")
        if owner not in out:
            out[owner] = 2 * sums.pop(owner).to(torch.float64) / counts[owner]
        out[name] = out[owner]  # one matrix for the layers that read one tensor
    return out
