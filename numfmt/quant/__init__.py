"""The quantization layer: tensors onto small grids, with error analysis.

The trio ``choose_qparams`` -> ``quantize`` -> ``dequantize`` (and ``fake_quantize``), schemes
(:func:`scheme`, :func:`parse_scheme`, presets for MX, NVFP4 and NF4), granularities
(:class:`PerTensor`, :class:`PerAxis`, :class:`PerGroup`), range selection (``calibration``),
an :class:`Observer` for activations, ``QuantizedTensor``, ``error_report`` and
``compare_schemes``.
"""

from numfmt.quant.granularity import Grouping, PerAxis, PerGroup, PerTensor, parse_granularity
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
    "QParams",
    "QuantScheme",
    "QuantizedTensor",
    "SchemeComparison",
    "choose_qparams",
    "compare_schemes",
    "dequantize",
    "error_report",
    "fake_quantize",
    "parse_granularity",
    "parse_scheme",
    "quantize",
    "quantize_tensor",
    "scheme",
]
