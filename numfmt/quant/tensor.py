"""QuantizedTensor: codes, their scales and zero points, the scheme, and what they cost.

Storage is counted as a deployment would lay it out: elements packed at their width (two int4
or FP4 codes to a byte), one scale per group in the scale format, one zero point per group at
the element width (asymmetric; a float minimum takes the scale's width), and NVFP4's float32
tensor scale. A group that the group size does not divide still takes a whole scale: int4 in
groups of 128 with float16 scales is 4 + 16/128 = 4.125 bits per value; on SmolLM2's rows of
576 = 4 x 128 + 64 it is 4 + 5 x 16 / 576 = 4.139.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.quant import _xp, io, packing
from numfmt.quant.qparams import (
    QParams,
    _check_policy,
    as_scheme,
    choose_and_quantize,
    choose_qparams,
    dequantize,
    quantize,
)
from numfmt.quant.report import ErrorReport, SchemeComparison, codes_error_report, error_report
from numfmt.quant.schemes import QuantScheme


@dataclass(frozen=True, eq=False)
class QuantizedTensor(Displayable):
    """A tensor on a scheme's grid: ``codes`` (x's shape, x's library and device),
    ``qparams``, and the dtype the tensor had (``dtype``, a name such as ``bfloat16``)."""

    codes: Any
    qparams: QParams
    dtype: str | None = None

    @property
    def scheme(self) -> QuantScheme:
        return self.qparams.scheme

    @property
    def shape(self) -> tuple[int, ...]:
        return self.qparams.grouping.shape

    @property
    def size(self) -> int:
        return self.qparams.grouping.size

    def dequantize(self, dtype: Any = None):
        """The values the codes stand for (float64 unless ``dtype`` says otherwise)."""
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

    def pack(self, order: str = "low_first"):
        """The codes packed into bytes (see ``numfmt.quant.packing`` for the orders)."""
        return packing.pack(self.codes, self.scheme.bits, order)

    def report(self, x: Any, *, nan_policy: str = "error") -> ErrorReport:
        """The error of this quantization against the original tensor."""
        a, _ = _xp.read(x)
        report = codes_error_report(a, self.codes, self.qparams, nan_policy=nan_policy)
        if report is None:  # not on the host kernel's path: decode, then compare
            report = error_report(a, self.dequantize(), qparams=self.qparams, nan_policy=nan_policy)
        return replace(report, bits_per_value=self.bits_per_value)

    def to(self, device: Any) -> QuantizedTensor:
        """The same tensor as torch tensors on ``device`` ("cpu", "cuda", a torch.device)."""
        return replace(
            self, codes=_xp.to_torch(self.codes, device), qparams=self.qparams.to(device)
        )

    def save(
        self,
        path: str | Path,
        *,
        name: str = "tensor",
        order: str = "low_first",
        overwrite: bool = False,
    ) -> Path:
        """Write the tensor to a safetensors file (see ``numfmt.quant.io``), atomically."""
        return io.save(path, {name: self}, order=order, overwrite=overwrite)

    def samples(self, x: Any, count: int = 6) -> list[dict[str, Any]]:
        """A few elements side by side, to check the arithmetic by hand: the original value,
        its code, its group's scale (and zero point) and the value the code stands for. The
        elements are the first, the largest and smallest, and some in between. An element
        left out (NaN or infinite, under ``nan_policy="omit"``) is marked ``omitted``, with no
        code or value."""
        a = _xp.to_numpy(_xp.read(x)[0]).reshape(-1)
        if a.size == 0:
            return []
        finite = np.isfinite(a)
        picks = [0]
        if finite.any():
            seen = np.where(finite, a, np.nan)
            picks += [int(np.nanargmax(seen)), int(np.nanargmin(seen))]
        picks += [int(i) for i in np.linspace(0, a.size - 1, count)]
        picks = list(dict.fromkeys(picks))[:count]
        codes = _xp.to_numpy(self.codes).reshape(-1)
        values = _xp.to_numpy(self.dequantize()).reshape(-1)
        g = self.qparams.grouping
        scale = _xp.to_numpy(g.expand(self.qparams.effective_scale)).reshape(-1)
        zero = self.qparams.zero_point
        zero = None if zero is None else _xp.to_numpy(g.expand(zero)).reshape(-1)
        minimum = self.qparams.minimum
        minimum = None if minimum is None else _xp.to_numpy(g.expand(minimum)).reshape(-1)
        rows = []
        for i in picks:
            index = [int(k) for k in np.unravel_index(i, self.shape)]
            if not finite[i]:
                rows.append({"index": index, "x": float(a[i]), "omitted": True})
                continue
            row = {
                "index": index,
                "x": float(a[i]),
                "code": int(codes[i]),
                "scale": float(scale[i]),
                "value": float(values[i]),
            }
            if zero is not None:
                row["zero_point"] = int(zero[i])
            if minimum is not None:
                row["minimum"] = float(minimum[i])
            rows.append(row)
        return rows

    def to_dict(self) -> dict[str, Any]:
        s = self.scheme
        return {
            "scheme": str(s),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "code_bits": s.bits,
            "code_dtype": _dtype_name(self.codes),
            "nbytes": self.nbytes,
            "bits_per_value": self.bits_per_value,
            "storage_bits": self.storage_bits,
            "qparams": self.qparams.to_dict(),
        }


@dataclass(frozen=True, eq=False)
class QuantizeResult(Displayable):
    """A named tensor quantized, its error report, and a few elements worked through (what
    ``numfmt quantize`` shows)."""

    name: str
    quantized: QuantizedTensor
    report: ErrorReport
    samples: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "tensor": self.name,
            "quantized": self.quantized.to_dict(),
            "report": self.report.to_dict(),
            "samples": list(self.samples),
        }


def _dtype_name(a: Any) -> str:
    return str(a.dtype).removeprefix("torch.")


def load(path: str | Path, name: str | None = None, *, verify: bool = True) -> QuantizedTensor:
    """The quantized tensor ``name`` of a file that :func:`numfmt.quant.save` (or
    ``QuantizedTensor.save``) wrote, as numpy arrays (move it with ``.to(device)``); ``name``
    may be omitted when the file holds one. Its parts are checked against the checksums
    numfmt wrote with them unless ``verify=False``.

    Raises:
        NumfmtError: not a numfmt file, a layout this version does not read, a missing name,
            parts that do not fit the layout, or parts changed since they were written.
    """
    codes, qparams, dtype = io.read(path, name, verify=verify)
    return QuantizedTensor(codes, qparams, dtype)


def load_all(path: str | Path, *, verify: bool = True) -> dict[str, QuantizedTensor]:
    """Every quantized tensor of a file, by name (checked as :func:`load` checks)."""
    parts = io.read_all(path, verify=verify)
    return {name: QuantizedTensor(*each) for name, each in parts.items()}


def quantize_tensor(
    x: Any,
    scheme: QuantScheme | str = "int8",
    *,
    nan_policy: str = "error",
    seed: Any = 0,
    method: str | None = None,
    **method_args: Any,
) -> QuantizedTensor:
    """choose_qparams, then quantize: a QuantizedTensor in x's library, on x's device.

    Examples:
        >>> import numpy as np
        >>> x = np.linspace(-1, 1, 256).reshape(2, 128)
        >>> qt = quantize_tensor(x, "int4/group:128/scale:fp16")
        >>> qt.bits_per_value, qt.codes.dtype.name
        (4.125, 'int8')
    """
    dtype = getattr(x, "dtype", None)
    name = None if dtype is None else str(dtype).removeprefix("torch.")
    _check_policy(nan_policy)
    s = as_scheme(scheme, method, **method_args)
    fused = None if method_args else choose_and_quantize(x, s)
    if fused is not None:
        return QuantizedTensor(fused[0], fused[1], name)
    qp = choose_qparams(x, s, nan_policy=nan_policy)
    codes = quantize(x, qp, seed=seed, finite=nan_policy == "error")  # finite: checked above
    return QuantizedTensor(codes, qp, name)


def compare_schemes(
    x: Any,
    schemes: Sequence[QuantScheme | str],
    *,
    nan_policy: str = "error",
    progress: Any = None,
) -> SchemeComparison:
    """Quantize x under each scheme and report the cost of each, side by side.

    ``progress``, when given, is called with each scheme's name once it is done (the command
    line draws a progress bar with it).

    Examples:
        >>> x = np.random.default_rng(0).standard_normal((64, 256))
        >>> table = compare_schemes(x, ["int8", "int4/group:32", "nf4"])
        >>> [round(r.bits_per_value, 3) for r in table.rows]
        [8.002, 5.0, 4.5]
    """
    if not schemes:
        raise NumfmtError("compare_schemes needs at least one scheme")
    a, _ = _xp.read(x)
    rows = []
    for s in schemes:
        qt = quantize_tensor(a, s, nan_policy=nan_policy)
        rows.append(qt.report(a, nan_policy=nan_policy))
        if progress is not None:
            progress(str(qt.scheme))
    return SchemeComparison(tuple(a.shape), tuple(rows))
