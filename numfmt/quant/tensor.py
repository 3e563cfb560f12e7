"""QuantizedTensor: codes, their scales and zero points, the scheme, and what they cost.

Storage is counted as a deployment would lay it out: elements packed at their width (two int4
or FP4 codes to a byte), one scale per group in the scale format, one zero point per group at
the element width (asymmetric), and NVFP4's float32 tensor scale. A group that the group size
does not divide still takes a whole scale: int4 in groups of 128 with float16 scales is
4 + 16/128 = 4.125 bits per value; on SmolLM2's rows of 576 = 4 x 128 + 64 it is
4 + 5 x 16 / 576 = 4.139.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.quant import packing
from numfmt.quant.qparams import QParams, as_array, choose_qparams, dequantize, quantize
from numfmt.quant.report import ErrorReport, error_report
from numfmt.quant.scheme import QuantScheme


@dataclass(frozen=True, eq=False)
class QuantizedTensor(Displayable):
    """A tensor on a scheme's grid: ``codes`` (x's shape) and ``qparams``."""

    codes: np.ndarray
    qparams: QParams

    @property
    def scheme(self) -> QuantScheme:
        return self.qparams.scheme

    @property
    def shape(self) -> tuple[int, ...]:
        return self.qparams.grouping.shape

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def dequantize(self, dtype=np.float64) -> np.ndarray:
        """The values the codes stand for."""
        return dequantize(self.codes, self.qparams, dtype=dtype)

    # -- storage ----------------------------------------------------------------------------
    @property
    def storage_bits(self) -> dict[str, int]:
        """Bits taken by the elements, the scales, the zero points and the tensor scale."""
        s = self.scheme
        groups = self.qparams.grouping.num_groups if self.size else 0
        return {
            "elements": self.size * s.bits,
            "scales": groups * s.scale_bits,
            "zero_points": groups * s.zero_point_bits,
            "tensor_scale": 32 if self.qparams.tensor_scale is not None else 0,
        }

    @property
    def nbytes(self) -> int:
        """Bytes to store the tensor: each part rounded up to whole bytes."""
        return sum(-(-bits // 8) for bits in self.storage_bits.values())

    @property
    def bits_per_value(self) -> float:
        """Storage bits over elements: 4.125 for int4, groups of 128, float16 scales."""
        return sum(self.storage_bits.values()) / self.size if self.size else 0.0

    def pack(self, order: str = "torchao") -> np.ndarray:
        """The codes packed into bytes (see ``numfmt.quant.packing`` for the orders)."""
        return packing.pack(self.codes, self.scheme.bits, order)

    def report(self, x: Any) -> ErrorReport:
        """The error of this quantization against the original tensor."""
        a, _ = as_array(x)
        report = error_report(a, self.dequantize(), qparams=self.qparams)
        return replace(report, bits_per_value=self.bits_per_value)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": str(self.scheme),
            "shape": list(self.shape),
            "code_dtype": str(self.codes.dtype),
            "nbytes": self.nbytes,
            "bits_per_value": self.bits_per_value,
            "storage_bits": self.storage_bits,
            "qparams": self.qparams.to_dict(),
        }


def quantize_tensor(
    x: Any, scheme: QuantScheme | str = "int8", *, nan_policy: str = "error", seed=0
) -> QuantizedTensor:
    """choose_qparams, then quantize: a QuantizedTensor.

    Example:
        >>> x = np.linspace(-1, 1, 256).reshape(2, 128)
        >>> qt = quantize_tensor(x, "int4/group:128/scale:fp16")
        >>> qt.bits_per_value, qt.codes.dtype.name
        (4.125, 'int8')
    """
    a, _ = as_array(x)
    qp = choose_qparams(a, scheme, nan_policy=nan_policy)
    return QuantizedTensor(np.asarray(quantize(a, qp, seed=seed)), qp)
