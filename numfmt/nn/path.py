"""The quantize path, written once: for each weight a *source* gives, the recipe names a
scheme, a *code chooser* picks the codes, and a *sink* takes them.

Every way numfmt quantizes a model runs through :func:`quantize_weights`: a model in memory
(``quantize_model``: :class:`ModuleWeights` into :class:`SwapLayers`), a checkpoint larger
than memory (``numfmt.models.checkpoint``) and a GGUF export (``numfmt.models.gguf_write``).
The report (a row per quantized layer, the layers kept in float and why, the size before and
after) and the progress bar are built here, once.

=========================  =================================================================
part                       what it does
=========================  =================================================================
source                     iterates :class:`Weight` items (a layer's weight, or a tensor to
                           pass through) and knows ``bytes_before`` and ``parameters``
recipe                     ``Recipe.decide``: a layer's scheme, or why it stays in float
chooser                    ``choose(name, weight, scheme)`` -> QuantizedTensor
                           (``numfmt.nn.algorithms``: rtn, imatrix, output-mse, model-kl, gptq)
sink                       ``put(item, qt)`` and ``keep(item)``, each -> the bytes it stores
=========================  =================================================================
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol, cast

from torch import nn

from numfmt.nn.layers import candidates, linear_weight, model_bytes, tied
from numfmt.nn.modules import QuantEmbedding, QuantLinear
from numfmt.nn.progress import Progress, tracker
from numfmt.nn.recipe import Recipe
from numfmt.nn.report import LayerRow, ModelReport
from numfmt.quant.schemes import QuantScheme
from numfmt.quant.tensor import QuantizedTensor


@dataclass(frozen=True)
class Weight:
    """One tensor a source gives: ``layer`` and ``kind`` (linear, conv1d, embedding) when it
    is a layer's weight, in Linear's layout (out_features, in_features); None for a tensor a
    sink only passes through. ``nbytes`` is what it takes as the source holds it."""

    name: str
    tensor: Any
    nbytes: int
    layer: str | None = None
    kind: str | None = None
    tied: bool = False
    #: The tensor as the source stores it, where ``tensor`` differs (a checkpoint's array,
    #: before it became a float32 weight in Linear's layout).
    raw: Any = None


class Source(Protocol):
    """Where weights come from. ``bytes_before`` and ``parameters`` (float elements) are
    read once the iteration is done (a checkpoint counts them as it reads)."""

    bytes_before: int
    parameters: int

    def __len__(self) -> int: ...

    def __iter__(self) -> Iterator[Weight]: ...


class Sink(Protocol):
    """Where the codes go: each method returns the bytes the sink stores for the item."""

    def put(self, item: Weight, qt: QuantizedTensor) -> int: ...

    def keep(self, item: Weight) -> int: ...


class CodeChooser(Protocol):
    """How one weight's codes are picked under its scheme."""

    def choose(self, name: str, weight: Any, scheme: QuantScheme) -> QuantizedTensor: ...


def quantize_weights(
    source: Source,
    recipe: Recipe,
    sink: Sink,
    chooser: CodeChooser,
    *,
    progress: Progress = None,
    label: str | None = None,
    search: Any = None,
    start: float | None = None,
) -> ModelReport:
    """Every weight of ``source`` through ``recipe`` and ``chooser`` into ``sink``: the
    ModelReport of what was done (``label`` names it: the recipe, and the algorithm; its
    seconds run from ``start``, a ``time.perf_counter()`` reading taken before any
    calibration, or from here)."""
    start = time.perf_counter() if start is None else start
    rows: list[LayerRow] = []
    kept: list[tuple[str, str]] = []
    change = 0
    with tracker(len(source), "quantizing", progress) as step:
        for item in source:
            scheme, why = (None, None)
            if item.layer is not None and item.kind is not None:
                scheme, why = recipe.decide(item.layer, item.kind, tied=item.tied)
            if scheme is None:
                if why is not None and item.layer is not None:
                    kept.append((item.layer, why))
                change += sink.keep(item) - item.nbytes
            else:
                assert item.layer is not None and item.kind is not None
                qt = chooser.choose(item.layer, item.tensor, scheme)
                stored = sink.put(item, qt)
                change += stored - item.nbytes
                rows.append(
                    LayerRow.measure(
                        item.layer,
                        item.kind,
                        item.tensor,
                        qt,
                        bytes_before=item.nbytes,
                        bytes_after=stored,
                    )
                )
            step(item.name)
    before = source.bytes_before
    return ModelReport(
        label or str(recipe),
        tuple(rows),
        tuple(kept),
        before,
        before + change,
        source.parameters,
        time.perf_counter() - start,
        search=search,
    )


class ModuleWeights:
    """A model in memory as a source: the weight of each layer a recipe could quantize
    (Linear, Conv1D, Embedding), in the model's order."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.layers = candidates(model)
        self.bytes_before, self.parameters = model_bytes(model)
        self._tied = {n for group in tied(model).values() for n in group}

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Weight]:
        for name, module, kind in self.layers:
            w = linear_weight(module, kind)
            yield Weight(
                name,
                w,
                w.numel() * w.element_size(),
                layer=name,
                kind=kind,
                tied=f"{name}.weight" in self._tied,
            )


class SwapLayers:
    """A model in memory as a sink: each quantized layer replaced by a QuantLinear or
    QuantEmbedding holding its codes, with the recipe's activation scheme (or the static
    ranges calibrated for it, ``static``) and bias mode."""

    def __init__(self, model: nn.Module, recipe: Recipe, static: dict[str, Any]) -> None:
        self.model, self.recipe, self.static = model, recipe, static

    def put(self, item: Weight, qt: QuantizedTensor) -> int:
        assert item.layer is not None
        module = self.model.get_submodule(item.layer)
        if item.kind == "embedding":
            new: nn.Module = QuantEmbedding(qt, cast(nn.Embedding, module).padding_idx)
        else:
            new = QuantLinear(
                qt,
                getattr(module, "bias", None),
                activations=self.static.get(item.layer, self.recipe.activations),
                source=item.kind or "linear",
                bias_mode=self.recipe.bias,
            )
        self.model.set_submodule(item.layer, new)
        return qt.nbytes

    def keep(self, item: Weight) -> int:
        return item.nbytes
