"""The code choosers behind one interface (``numfmt.nn.path.CodeChooser``), by name.

=============  =============================================================================
algorithm      how one weight's codes are chosen
=============  =============================================================================
``rtn``        round to nearest, each weight on its own (``quant.quantize_tensor``)
``imatrix``    round to nearest; each group's clip range by the error weighted by how large
               each input is on the calibration text (``importance.weighted_qparams``)
``output-mse`` each output channel's clip ratio by the error of the layer's output on the
               calibration inputs, cross terms included (``importance.output_qparams``)
``model-kl``   those ratios scaled, group of layers by group, to keep the model's next-token
               distribution closest to the float model's (``model_kl``)
``gptq``       column by column, each column's error moved onto those still to come
               (``gptq.gptq_weight``)
=============  =============================================================================

The calibrated ones ``prepare`` on the float model first (the inputs' Hessians, the model-KL
search), then ``choose`` a layer at a time.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from numfmt.errors import NumfmtError
from numfmt.nn.algorithms.calibration import batches, input_hessians
from numfmt.nn.algorithms.gptq import GPTQ, check_scheme, gptq_weight
from numfmt.nn.algorithms.importance import (
    check_int_grid,
    clipped_qparams,
    output_qparams,
    weighted_qparams,
)
from numfmt.nn.algorithms.model_kl import ModelKL, search_ratios
from numfmt.nn.layers import linear_weight
from numfmt.nn.progress import Progress
from numfmt.quant.qparams import QParams, quantize
from numfmt.quant.schemes import QuantScheme
from numfmt.quant.tensor import QuantizedTensor, quantize_tensor

#: The algorithms ``quantize_model`` takes by name.
ALGORITHMS = ("rtn", "imatrix", "output-mse", "model-kl", "gptq")

#: (name, module, kind, scheme) of each layer a recipe quantizes.
Chosen = list[tuple[str, nn.Module, str, QuantScheme]]


class RoundToNearest:
    """``rtn``: each weight rounded to nearest on its own; nothing to calibrate."""

    label: str | None = None
    search: Any = None

    def prepare(self, model: nn.Module, chosen: Chosen, progress: Progress = None) -> None:
        """Nothing: round to nearest looks at the weights alone."""

    def choose(self, name: str, weight: Any, scheme: QuantScheme) -> QuantizedTensor:
        return quantize_tensor(weight, scheme)


class Calibrated:
    """``imatrix``, ``output-mse``, ``model-kl`` (a ModelKL) or ``gptq`` (a GPTQ): codes
    chosen with what ``prepare`` measured on the float model over ``calibration``."""

    def __init__(self, algorithm: str | GPTQ | ModelKL, calibration: Any) -> None:
        self.algorithm = algorithm
        self.calibration = calibration
        self.label: str | None = str(algorithm)
        self.search: Any = None
        self.hessians: dict[str, torch.Tensor] = {}
        self.clip: dict[str, torch.Tensor] = {}

    def prepare(self, model: nn.Module, chosen: Chosen, progress: Progress = None) -> None:
        """The inputs' Hessians of the chosen Linear layers (embeddings are looked up:
        round to nearest), or for ``imatrix`` their diagonals; for ``model-kl`` the search."""
        algorithm = self.algorithm
        layers = {}
        for name, module, kind, scheme in chosen:
            if kind == "embedding":
                continue
            if isinstance(algorithm, GPTQ):
                check_scheme(scheme)
            else:
                check_int_grid(scheme, f"{algorithm}'s ranges")
            layers[name] = (module, kind, scheme)
        inputs = batches(self.calibration)
        if getattr(algorithm, "start", None) != "minmax":
            modules = {name: m for name, (m, _, _) in layers.items()}
            diagonal = algorithm == "imatrix"
            self.hessians = input_hessians(model, modules, inputs, progress, diagonal=diagonal)
        if isinstance(algorithm, ModelKL):
            weights = {n: (m, k, s, linear_weight(m, k)) for n, (m, k, s) in layers.items()}
            self.clip, self.search = search_ratios(
                model, weights, self.hessians, inputs, algorithm, progress
            )

    def choose(self, name: str, weight: Any, scheme: QuantScheme) -> QuantizedTensor:
        algorithm = self.algorithm
        if name in self.clip:
            return _coded(weight, clipped_qparams(weight, scheme, self.clip.pop(name)))
        if name not in self.hessians:  # an embedding
            return quantize_tensor(weight, scheme)
        hessian = self.hessians.pop(name)
        if algorithm == "imatrix":
            return _coded(weight, weighted_qparams(weight, hessian, scheme))
        if algorithm == "output-mse":
            return _coded(weight, output_qparams(weight, hessian, scheme))
        assert isinstance(algorithm, GPTQ)
        return gptq_weight(
            weight,
            hessian,
            scheme,
            damp=algorithm.damp,
            block=algorithm.block,
            act_order=algorithm.act_order,
            weighted_ranges=algorithm.weighted_ranges,
            name=name,
        )


def _coded(weight: Any, qp: QParams) -> QuantizedTensor:
    return QuantizedTensor(quantize(weight, qp), qp, str(weight.dtype).removeprefix("torch."))


def chooser_for(algorithm: Any, calibration: Any) -> RoundToNearest | Calibrated:
    """The code chooser of an algorithm named in ``ALGORITHMS`` (or a GPTQ or ModelKL with
    its settings); calibration is required for all but round-to-nearest.

    Raises:
        NumfmtError: an unknown algorithm, or a calibrating one without calibration.
    """
    if algorithm == "rtn":
        return RoundToNearest()
    if algorithm == "gptq":
        algorithm = GPTQ()
    if algorithm == "model-kl":
        algorithm = ModelKL()
    if not isinstance(algorithm, GPTQ | ModelKL) and algorithm not in ("imatrix", "output-mse"):
        raise NumfmtError(
            f"the algorithm is one of {', '.join(ALGORITHMS)} (or a GPTQ or ModelKL), not "
            f"{algorithm!r}"
        )
    if calibration is None:
        raise NumfmtError(
            f"{algorithm} weighs each layer's error by its inputs: give calibration (token "
            "ids of sample text, a few thousand tokens)"
        )
    return Calibrated(algorithm, calibration)
