"""The quantization layer: tensors onto small grids, with error analysis.

One engine for numpy arrays and torch tensors (CPU or CUDA): the trio ``choose_qparams`` ->
``quantize`` -> ``dequantize`` and ``fake_quantize`` (differentiable on tensors that require
grad), schemes (:func:`scheme`, :func:`parse_scheme`, presets for MX, NVFP4, NF4 and GGUF),
granularities (:class:`PerTensor`, :class:`PerAxis`, :class:`PerGroup`, :class:`PerToken`),
range selection (``calibration``), an :class:`Observer` for activations,
:class:`QuantizedTensor` with its own file format (:func:`save`, :func:`load`),
``error_report`` and ``compare_schemes``; ``block_operands`` for the two operands of a
scaled matrix multiply (MX, NVFP4, DeepSeek's tiles) in ``numfmt.arith.matmul``'s terms.

The names load on first use (``import numfmt.quant`` itself costs nothing), so that the
command line's scalar commands never pay for this layer.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_EXPORTS = {
    "Grouping": "granularity",
    "PerAxis": "granularity",
    "PerGroup": "granularity",
    "PerTensor": "granularity",
    "PerToken": "granularity",
    "parse_granularity": "granularity",
    "load": "tensor",
    "load_all": "tensor",
    "save": "io",
    "Observer": "observer",
    "QParams": "qparams",
    "choose_qparams": "qparams",
    "dequantize": "qparams",
    "fake_quantize": "fake",
    "quantize": "qparams",
    "ErrorReport": "report",
    "SchemeComparison": "report",
    "compare_schemes": "tensor",
    "error_report": "report",
    "NF4_CODEBOOK": "schemes",
    "PRESETS": "schemes",
    "Mapping": "schemes",
    "QuantScheme": "schemes",
    "parse_scheme": "schemes",
    "scheme": "schemes",
    "QuantizedTensor": "tensor",
    "quantize_tensor": "tensor",
    "BLOCK_SCHEMES": "operands",
    "block_operand": "operands",
    "block_operands": "operands",
}

__all__ = [
    "BLOCK_SCHEMES",
    "NF4_CODEBOOK",
    "PRESETS",
    "ErrorReport",
    "Grouping",
    "Mapping",
    "Observer",
    "PerAxis",
    "PerGroup",
    "PerTensor",
    "PerToken",
    "QParams",
    "QuantScheme",
    "QuantizedTensor",
    "SchemeComparison",
    "block_operand",
    "block_operands",
    "choose_qparams",
    "compare_schemes",
    "dequantize",
    "error_report",
    "fake_quantize",
    "load",
    "load_all",
    "parse_granularity",
    "parse_scheme",
    "quantize",
    "quantize_tensor",
    "save",
    "scheme",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'numfmt.quant' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"numfmt.quant.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))


if TYPE_CHECKING:
    from numfmt.quant.fake import fake_quantize
    from numfmt.quant.granularity import (
        Grouping,
        PerAxis,
        PerGroup,
        PerTensor,
        PerToken,
        parse_granularity,
    )
    from numfmt.quant.io import save
    from numfmt.quant.observer import Observer
    from numfmt.quant.operands import BLOCK_SCHEMES, block_operand, block_operands
    from numfmt.quant.qparams import QParams, choose_qparams, dequantize, quantize
    from numfmt.quant.report import ErrorReport, SchemeComparison, error_report
    from numfmt.quant.schemes import (
        NF4_CODEBOOK,
        PRESETS,
        Mapping,
        QuantScheme,
        parse_scheme,
        scheme,
    )
    from numfmt.quant.tensor import (
        QuantizedTensor,
        compare_schemes,
        load,
        load_all,
        quantize_tensor,
    )
