"""The trio: ``choose_qparams`` (scale, zero point) -> ``quantize`` (codes) -> ``dequantize``.

``fake_quantize`` does both at once. Inputs may be numpy arrays, anything ``np.asarray`` reads,
or torch tensors: a torch tensor's results come back as torch tensors on its device (the work
itself is done by numpy on the CPU).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.formats.encode import as_real_array
from numfmt.quant import _kernels, calibration, grid
from numfmt.quant.granularity import Grouping
from numfmt.quant.scheme import QuantScheme
from numfmt.quant.scheme import scheme as make_scheme

NAN_POLICIES = ("error", "omit")


@dataclass(frozen=True, eq=False)
class QParams:
    """Per-group scales (and zero points) of a scheme on a tensor of a given shape.

    Attributes:
        scale: float64, in the grouping's scale shape, exactly as the scale format stores it
            (for NVFP4 the E4M3 block scale; multiply by ``tensor_scale``).
        zero_point: int64 codes (asymmetric int targets), else None.
        tensor_scale: NVFP4's float32 second-level scale, else None.
        lo, hi: the range the calibration method chose per group.
    """

    scheme: QuantScheme
    grouping: Grouping
    scale: np.ndarray
    zero_point: np.ndarray | None
    tensor_scale: float | None
    lo: np.ndarray
    hi: np.ndarray

    @property
    def effective_scale(self) -> np.ndarray:
        """The scale each group's codes are multiplied by."""
        return self.scale * (self.tensor_scale or 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": str(self.scheme),
            "shape": list(self.grouping.shape),
            "groups": self.grouping.num_groups,
            "scale": _summary(self.effective_scale),
            "zero_point": None if self.zero_point is None else _summary(self.zero_point),
            "tensor_scale": self.tensor_scale,
        }


def _summary(a: np.ndarray) -> dict[str, float]:
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0}
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())}


# -- inputs ---------------------------------------------------------------------------------------
def as_array(x: Any) -> tuple[np.ndarray, Any]:
    """x as a float64 or float32 numpy array (read exactly, as ``encode`` reads it), and the
    torch tensor it came from (or None)."""
    source = x if hasattr(x, "detach") and hasattr(x, "device") else None
    return as_real_array(x), source


def _like(values: np.ndarray, source: Any) -> Any:
    """values as a torch tensor on the source's device when the input was one."""
    if source is None:
        return values
    import torch

    return torch.from_numpy(np.ascontiguousarray(values)).to(source.device)


def _clean(x: np.ndarray, nan_policy: str) -> np.ndarray:
    """x itself when it is finite; else an error, or (omit) x with NaN and inf set to 0."""
    finite = np.isfinite(x)
    if finite.all():
        return x
    if nan_policy == "error":
        bad = x.size - int(finite.sum())
        raise NumfmtError(
            f"the tensor holds {bad:,} NaN or infinite values of {x.size:,}; clean them, or pass "
            "nan_policy='omit' to calibrate on the finite ones (they then quantize to 0 or clip)"
        )
    return np.where(finite, x, 0.0)


def _calibrate(a: np.ndarray, grouping: Grouping, s: QuantScheme):
    """(tensor scale, per-block lo, per-block hi), or None if a range came out non-finite."""
    tensor_scale = None
    if s.scale_rule == "nvfp4":
        tensor_scale = grid.global_scale(float(np.abs(a).max()) if a.size else 0.0, s)
    los, his = [], []
    for rows in grouping.blocks(a):
        lo, hi = calibration.calibrate(rows, s, tensor_scale)
        if not (np.isfinite(lo).all() and np.isfinite(hi).all()):
            return None
        los.append(lo)
        his.append(hi)
    return tensor_scale, los, his


# -- the trio ------------------------------------------------------------------------------------
def choose_qparams(
    x: Any,
    scheme: QuantScheme | str = "int8",
    *,
    nan_policy: str = "error",
) -> QParams:
    """Choose per-group scales (and zero points) for x under a scheme.

    Args:
        x: the tensor.
        scheme: a QuantScheme, a preset name or a compact spec (``"int4/asym/group:128"``).
        nan_policy: ``error`` (default) refuses NaN and inf; ``omit`` leaves them out of the
            range (they quantize to zero, and infinities clip).

    Example:
        >>> qp = choose_qparams([[-1.0, 0.5], [2.0, 4.0]], "int8/channel")
        >>> qp.scale.tolist() == [float(np.float32(1 / 127)), float(np.float32(4 / 127))]
        False
        >>> bool(np.all(qp.scale * 127 >= [1.0, 4.0]))  # rounded up into float32
        True
    """
    s = _as_scheme(scheme)
    a, _ = as_array(x)
    if nan_policy not in NAN_POLICIES:
        raise NumfmtError(f"nan_policy is 'error' or 'omit', not '{nan_policy}'")
    if s.method != "minmax":  # minmax finds NaN and inf on its way (a NaN or inf range)
        a = _clean(a, nan_policy)
    grouping = Grouping(a.shape, s.granularity)
    ranges = _calibrate(a, grouping, s)
    if ranges is None:  # the minmax pass met NaN or inf
        a = _clean(a, nan_policy)
        ranges = _calibrate(a, grouping, s)
    tensor_scale, los, his = ranges
    scales, zeros = [], []
    for lo, hi in zip(los, his, strict=True):
        scale, zero = grid.scales(lo, hi, s, tensor_scale)
        scales.append(scale)
        zeros.append(zero)
    if not los:  # an empty tensor: no groups, nothing to scale
        empty = np.zeros(grouping.scale_shape)
        zero = np.zeros(grouping.scale_shape, np.int64) if s.zero_point_bits else None
        return QParams(s, grouping, empty, zero, tensor_scale, empty, empty)
    join = grouping.join_params
    return QParams(
        scheme=s,
        grouping=grouping,
        scale=join(scales),
        zero_point=None if zeros[0] is None else join(zeros),
        tensor_scale=tensor_scale,
        lo=join(los),
        hi=join(his),
    )


def quantize(x: Any, qparams: QParams, *, seed: int | np.random.Generator | None = 0) -> Any:
    """Codes of x under qparams: signed ints for symmetric int targets, unsigned otherwise.

    Codes come in the smallest dtype that holds them (int8 for int8 and int4, uint8 for FP8
    and NF4 ...), in x's shape; NaN quantizes to zero and infinities clip.
    """
    a, source = as_array(x)
    _check_shape(a, qparams)
    s = qparams.scheme
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    g = qparams.grouping
    blocks = []
    for rows, scale, zero in zip(
        g.blocks(a),
        g.split_params(qparams.effective_scale),
        _split_optional(g, qparams.zero_point),
        strict=True,
    ):
        codes = _kernels.quantize_int(rows, scale, zero, s)  # handles NaN and inf itself
        if codes is None:
            if not np.isfinite(rows).all():  # NaN -> 0; infinities -> the largest float: clip
                rows = np.nan_to_num(rows, nan=0.0)
            codes = grid.quantize_rows(rows, scale, zero, s, rng)
        blocks.append(codes.astype(code_dtype(s), copy=False))
    return _like(g.assemble(blocks, dtype=code_dtype(s)), source)


def dequantize(codes: Any, qparams: QParams, *, dtype=np.float64) -> Any:
    """The values codes stand for under qparams (float64 by default: exact)."""
    c, source = _as_codes(codes)
    _check_shape(c, qparams)
    g = qparams.grouping
    s = qparams.scheme
    blocks = [
        grid.dequantize_rows(rows, scale, zero, s)
        for rows, scale, zero in zip(
            g.blocks(c),
            g.split_params(qparams.effective_scale),
            _split_optional(g, qparams.zero_point),
            strict=True,
        )
    ]
    return _like(g.assemble(blocks, dtype=np.float64).astype(dtype, copy=False), source)


def fake_quantize(
    x: Any, scheme: QuantScheme | str | QParams = "int8", *, nan_policy: str = "error", seed=0
) -> Any:
    """dequantize(quantize(x)): x rounded onto the scheme's grid, in x's type.

    Example:
        >>> fake_quantize(np.array([0.0, 0.3, 1.0]), "int2").tolist()
        [0.0, 0.0, 1.0]
    """
    qp = scheme if isinstance(scheme, QParams) else choose_qparams(x, scheme, nan_policy=nan_policy)
    a, source = as_array(x)
    values = dequantize(quantize(a, qp, seed=seed), qp)
    out_dtype = a.dtype if source is None else np.float32
    values = values.astype(out_dtype, copy=False)
    if source is not None:
        return _like(values, source).to(source.dtype)
    return values


def code_dtype(scheme: QuantScheme) -> np.dtype:
    """The numpy dtype the codes of a scheme come in."""
    if scheme.kind == "int":
        signed = scheme.qmin < 0
        width = 8 if scheme.bits <= 8 else 16
        return np.dtype(f"{'' if signed else 'u'}int{width}")
    return np.dtype(np.uint8)


def _as_scheme(scheme: QuantScheme | str) -> QuantScheme:
    if isinstance(scheme, QuantScheme):
        return scheme
    from numfmt.quant.scheme import parse_scheme

    return parse_scheme(scheme) if "/" in str(scheme) or " " in str(scheme) else make_scheme(scheme)


def _as_codes(codes: Any) -> tuple[np.ndarray, Any]:
    source = None
    if hasattr(codes, "detach") and hasattr(codes, "device"):
        source = codes
        codes = codes.detach().to("cpu").numpy()
    c = np.asarray(codes)
    if c.dtype.kind not in "iub":
        raise NumfmtError(f"codes are integers, not an array of {c.dtype}")
    return c, source


def _split_optional(g: Grouping, p: np.ndarray | None) -> list:
    return g.split_params(p) if p is not None else [None] * len(g.block_widths)


def _check_shape(a: np.ndarray, qparams: QParams) -> None:
    if tuple(a.shape) != tuple(qparams.grouping.shape):
        raise NumfmtError(
            f"these qparams are for a tensor of shape {qparams.grouping.shape}, not {a.shape}"
        )
