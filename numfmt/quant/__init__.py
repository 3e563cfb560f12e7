"""The quantization layer: tensors onto small grids, with error analysis.

One engine for numpy arrays and torch tensors (CPU or CUDA): the trio ``choose_qparams`` ->
``quantize`` -> ``dequantize`` and ``fake_quantize`` (differentiable on tensors that require
grad), schemes (:func:`scheme`, :func:`parse_scheme`, presets for MX, NVFP4, NF4 and GGUF),
granularities (:class:`PerTensor`, :class:`PerAxis`, :class:`PerGroup`, :class:`PerToken`),
range selection (``calibration``), an :class:`Observer` for activations,
:class:`QuantizedTensor` with its own file format (:func:`save`, :func:`load`),
``error_report`` and ``compare_schemes``.
"""

from numfmt.quant.granularity import (
    Grouping,
    PerAxis,
    PerGroup,
    PerTensor,
    PerToken,
    parse_granularity,
)
from numfmt.quant.io import load, load_all, save
from numfmt.quant.qparams import QParams, choose_qparams, dequantize, fake_quantize, quantize
from numfmt.quant.report import ErrorReport, SchemeComparison, compare_schemes, error_report
from numfmt.quant.scheme import (
    NF4_CODEBOOK,
    PRESETS,
    Mapping,
    QuantScheme,
    parse_scheme,
    scheme,
)
from numfmt.quant.tensor import QuantizedTensor, quantize_tensor

__all__ = [
    "NF4_CODEBOOK",
    "PRESETS",
    "ErrorReport",
    "Grouping",
    "Mapping",
    "PerAxis",
    "PerGroup",
    "PerTensor",
    "PerToken",
    "QParams",
    "QuantScheme",
    "QuantizedTensor",
    "SchemeComparison",
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
