"""The trio: ``choose_qparams`` (scale, zero point) -> ``quantize`` (codes) -> ``dequantize``.

Inputs may be numpy arrays, anything ``np.asarray`` reads, or torch tensors on any device: a
tensor's scales, codes and values come back as tensors of the same library, on the same
device, computed there by torch operations (numpy arrays take the compiled kernels where
numba is installed). The codes are the same on both, bit for bit: the quotients are float64
on both. ``fake.py`` does both steps at once (``fake_quantize``), with gradients.

Blocks (``granularity.Grouping``) are processed chunk by chunk on the CPU, so that float64
temporaries stay in cache; off the CPU, a block is one chunk.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from numfmt._display import grouped
from numfmt.errors import NumfmtError, NumfmtWarning
from numfmt.formats import FloatFormat
from numfmt.quant import _xp, calibration, grid
from numfmt.quant.granularity import Grouping
from numfmt.quant.schemes import QuantScheme, parse_scheme

NAN_POLICIES = ("error", "omit")


@dataclass(frozen=True, eq=False)
class QParams:
    """Per-group scales (and zero points) of a scheme on a tensor of a given shape.

    Every array is in the tensor's library and on its device, in the grouping's scale shape.

    Attributes:
        scale: float64, exactly as the scale format stores it (for NVFP4 the E4M3 block
            scale; multiply by ``tensor_scale``). A tensor, so that a learnable-scale method
            can carry a gradient into it.
        zero_point: int64 codes (asymmetric int targets), else None.
        tensor_scale: NVFP4's float32 second-level scale (a 0-d float64 array), else None.
        lo, hi: the range the calibration method chose per group.
        minimum: the float minimum as stored (``min`` mapping: x = scale * q + minimum).
        code_scale, code_minimum: what the codes are computed with, where that is not the
            stored scale (GGUF); None otherwise.
        saturated: how many groups' scales did not fit the scale format (they were saturated,
            and their values clip).
    """

    scheme: QuantScheme
    grouping: Grouping
    scale: Any
    zero_point: Any
    tensor_scale: Any
    lo: Any
    hi: Any
    minimum: Any = None
    code_scale: Any = None
    code_minimum: Any = None
    saturated: int = 0

    @property
    def effective_scale(self):
        """The scale each group's codes are multiplied by."""
        if self.tensor_scale is None:
            return self.scale
        return self.scale * self.tensor_scale

    def to(self, device) -> QParams:
        """The same parameters as torch tensors on ``device`` (numpy arrays become tensors)."""
        from dataclasses import replace

        fields = (
            "scale",
            "zero_point",
            "tensor_scale",
            "lo",
            "hi",
            "minimum",
            "code_scale",
            "code_minimum",
        )
        return replace(self, **{f: _xp.to_torch(getattr(self, f), device) for f in fields})

    def to_dict(self) -> dict[str, Any]:
        return {
            "scheme": str(self.scheme),
            "shape": list(self.grouping.shape),
            "groups": self.grouping.num_groups,
            "scale": summary(self.effective_scale),
            "zero_point": None if self.zero_point is None else summary(self.zero_point),
            "minimum": None if self.minimum is None else summary(self.minimum),
            "tensor_scale": None if self.tensor_scale is None else float(self.tensor_scale),
            "saturated_scales": self.saturated,
        }


def summary(a) -> dict[str, float]:
    """min, max and mean of a parameter array (host floats)."""
    a = _xp.to_numpy(a).astype(np.float64)
    if a.size == 0:
        return {"min": 0.0, "max": 0.0, "mean": 0.0}
    return {"min": float(a.min()), "max": float(a.max()), "mean": float(a.mean())}


# -- inputs ---------------------------------------------------------------------------------------
def as_scheme(scheme: QuantScheme | str, method: str | None = None, **method_args) -> QuantScheme:
    """A scheme from a QuantScheme, a preset name or a compact spec; with ``method`` (and its
    options) replacing the scheme's range method."""
    s = parse_scheme(scheme)
    if method is not None or method_args:
        s = s.with_(method=method or s.method, method_args=method_args)
    return s


def code_dtype(scheme: QuantScheme, xp=None):
    """The dtype the codes of a scheme come in: the narrowest integer that holds them (signed
    for symmetric int targets)."""
    xp = xp or _xp.namespace()
    return _xp.int_dtype(xp, scheme.bits, scheme.code_signed)


def _check_policy(nan_policy: str) -> None:
    if nan_policy not in NAN_POLICIES:
        raise NumfmtError(f"nan_policy is 'error' or 'omit', not '{nan_policy}'")


def _refuse_nonfinite(xp, a) -> None:
    total = int(np.prod(a.shape))
    bad = total - int(xp.sum(xp.astype(xp.isfinite(a), xp.int64)))
    raise NumfmtError(
        f"the tensor holds {grouped(bad)} NaN or infinite values of {grouped(total)}; "
        "clean them, or pass "
        "nan_policy='omit' to leave them out of the range (NaN then quantizes to zero and "
        "infinities clip)"
    )


def _finite_or_zero(xp, a):
    return xp.where(xp.isfinite(a), a, xp.zeros_like(a))


# -- the trio ------------------------------------------------------------------------------------
def choose_qparams(
    x: Any,
    scheme: QuantScheme | str = "int8",
    *,
    nan_policy: str = "error",
    method: str | None = None,
    **method_args: Any,
) -> QParams:
    """Choose per-group scales (and zero points) for x under a scheme.

    Args:
        x: the tensor (numpy, array-like, or torch on any device).
        scheme: a QuantScheme, a preset name or a compact spec (``"int4/asym/group:128"``).
        nan_policy: ``error`` (default) refuses NaN and inf; ``omit`` leaves them out of the
            range (NaN then quantizes to zero, and infinities clip).
        method: a range method to use instead of the scheme's; ``method="search",
            loss=fn`` chooses each group's clip ratio by your loss ``fn(rows,
            rows_quantized)`` (one loss per row, or one number for all).
        method_args: the method's options (``loss=fn``, ``percentile=99.9`` ...).

    Raises:
        NumfmtError: NaN or inf under ``nan_policy="error"``, or a bad scheme.

    Warns:
        NumfmtWarning: some scales did not fit the scale format and were saturated.

    Examples:
        >>> qp = choose_qparams([[-1.0, 0.5], [2.0, 4.0]], "int8/channel")
        >>> qp.scale.shape, [round(float(s) * 127, 6) for s in qp.scale]  # absmax / 127
        ((2,), [1.0, 4.0])
        >>> # stored in float32, rounded up (not to nearest), so that absmax is not clipped
        >>> bool(np.all(qp.scale * 127 >= [1.0, 4.0])), qp.scale.dtype.name
        (True, 'float64')
    """
    s = as_scheme(scheme, method, **method_args)
    _check_policy(nan_policy)
    a, xp = _xp.read(x)
    grouping = Grouping(tuple(a.shape), s.granularity)
    if grouping.size == 0:
        return _empty_qparams(xp, a, grouping, s)
    blocks = grouping.blocks(a)
    ranges = [calibration.row_ranges(xp, rows) for rows in blocks]
    finite = all(bool(xp.all(xp.isfinite(lo)) & xp.all(xp.isfinite(hi))) for lo, hi in ranges)
    if not finite:
        if nan_policy == "error":
            _refuse_nonfinite(xp, a)
        a = _finite_or_zero(xp, a)
        blocks = grouping.blocks(a)
        ranges = [calibration.row_ranges(xp, rows) for rows in blocks]
    tensor_scale = None
    if s.scale_rule == "nvfp4":
        amax = xp.max(xp.stack([xp.max(xp.maximum(-lo, hi)) for lo, hi in ranges]))
        tensor_scale = grid.global_scale(xp, amax, s)
    parts: dict[str, list] = {f: [] for f in grid.Scales._fields}
    los, his = [], []
    for rows, (lo, hi) in zip(blocks, ranges, strict=True):
        if s.scale_rule == "gguf":
            from numfmt.quant import gguf

            lo, hi, sc = gguf.choose(xp, rows, s)
        else:
            if s.method != "minmax":
                lo, hi = calibration.calibrate(xp, rows, s, tensor_scale)
            sc = grid.scales(xp, lo, hi, s, tensor_scale)
        los.append(lo)
        his.append(hi)
        for name in grid.Scales._fields:
            parts[name].append(getattr(sc, name))
    joined = {k: None if v[0] is None else grouping.join_params(v) for k, v in parts.items()}
    saturated = int(xp.sum(xp.astype(joined.pop("saturated"), xp.int64)))
    if saturated:
        warnings.warn(
            f"{grouped(saturated)} of {grouped(grouping.num_groups)} scales do not fit "
            f"{s.scale_format} and "
            "were saturated: those groups clip; choose a wider scale format",
            NumfmtWarning,
            stacklevel=2,
        )
    return QParams(
        scheme=s,
        grouping=grouping,
        tensor_scale=tensor_scale,
        lo=grouping.join_params(los),
        hi=grouping.join_params(his),
        saturated=saturated,
        **joined,
    )


def choose_and_quantize(x: Any, scheme: QuantScheme):
    """(codes, QParams) as ``choose_qparams`` then ``quantize`` give them, in one compiled
    visit of the memory for the commonest case (an int grid rounded to nearest, float32
    scales from each group's min and max, x float32 or float64 on the host); None otherwise,
    or where a group holds NaN or inf or saturates its scale (the general path then refuses,
    omits or warns). On CUDA, one Triton kernel does the same (``_gpu``)."""
    if not (isinstance(x, np.ndarray) or _xp.is_torch(x)):
        return None
    from numfmt.quant import _gpu, _kernels

    grouping = Grouping(tuple(x.shape), scheme.granularity)
    if grouping.size == 0:
        return None
    if _xp.on_cpu(x):
        if _xp.dtype_name(x.dtype) not in ("float32", "float64"):
            return None
        if _kernels._minmax_codes(scheme) is None:
            return None
        kernel = _kernels.quantize_minmax
    else:
        kernel = _gpu.quantize_minmax
    parts = []
    for rows in grouping.blocks(x):
        done = kernel(rows, scheme)
        if done is None:
            return None
        parts.append(done)
    codes = grouping.assemble([p[0] for p in parts])
    join = grouping.join_params
    asymmetric = scheme.mapping.value == "asymmetric"
    qparams = QParams(
        scheme=scheme,
        grouping=grouping,
        scale=join([p[1] for p in parts]),
        zero_point=join([p[2] for p in parts]) if asymmetric else None,
        tensor_scale=None,
        lo=join([p[3] for p in parts]),
        hi=join([p[4] for p in parts]),
    )
    return codes, qparams


def _empty_qparams(xp, a, grouping: Grouping, s: QuantScheme) -> QParams:
    dev = _xp.device(a)
    empty = xp.zeros(grouping.scale_shape, dtype=xp.float64, device=dev)
    zero = (
        xp.zeros(grouping.scale_shape, dtype=xp.int64, device=dev)
        if s.zero_point_bits and (s.mapping.value == "asymmetric")
        else None
    )
    minimum = empty if s.mapping.value == "float-min" else None
    tensor_scale = xp.ones((), dtype=xp.float64, device=dev) if s.scale_rule == "nvfp4" else None
    return QParams(s, grouping, empty, zero, tensor_scale, empty, empty, minimum=minimum)


def _block_params(qparams: QParams, stored: bool = False) -> list[dict[str, Any]]:
    """Per block: the scale, zero point and minimum its codes are computed with, or (stored)
    the ones its values are: they differ for GGUF only (float32 scales, stored as float16)."""
    g = qparams.grouping

    def split(a):
        return g.split_params(a) if a is not None else [None] * len(g.block_widths)

    codes_differ = qparams.scheme.scale_rule == "gguf" and not stored
    scale = qparams.code_scale if codes_differ else qparams.effective_scale
    minimum = qparams.code_minimum if codes_differ else qparams.minimum
    if scale is None:  # a GGUF tensor read from a file: its codes are given, not computed
        scale, minimum = qparams.effective_scale, qparams.minimum
    return [
        {"scale": sc, "zero": z, "minimum": m}
        for sc, z, m in zip(split(scale), split(qparams.zero_point), split(minimum), strict=True)
    ]


def _fit(a, qparams: QParams) -> QParams:
    """qparams for a's shape: per-tensor parameters serve any shape (an activation's range
    observed on some batches, applied to the next); the others need the shape they came
    from."""
    shape = tuple(a.shape)
    if shape == tuple(qparams.grouping.shape):
        return qparams
    from numfmt.quant.granularity import PerTensor

    if isinstance(qparams.scheme.granularity, PerTensor):
        from dataclasses import replace

        return replace(qparams, grouping=Grouping(shape, PerTensor()))
    raise NumfmtError(
        f"these qparams are for a tensor of shape {qparams.grouping.shape}, not {shape}"
    )


def _quantize_block(xp, rows, p, scheme: QuantScheme, dtype, u, finite=False):
    """Codes of one block, chunk by chunk on the CPU, in ``dtype``."""
    if u is None:
        from numfmt.quant import _kernels

        fast = _kernels.quantize_int(rows, p["scale"], p["zero"], scheme, dtype)
        if fast is not None:
            return fast
    out = _xp.empty(xp, rows.shape, dtype, rows)
    if _in_place(scheme, u):
        for part, params, buf in _int_chunks(xp, rows, p):
            grid.int_rows_into(xp, rows[part], params, scheme, buf, out[part], finite)
        return out
    for part in _xp.row_chunks(rows.shape[0], rows.shape[1], _xp.on_cpu(rows)):
        out[part] = xp.astype(_codes(xp, rows[part], p, scheme, part, u), dtype)
    return out


def _in_place(scheme: QuantScheme, u) -> bool:
    """Whether a block takes the in-place int path (nearest-even int grids but GGUF's)."""
    return scheme.kind == "int" and scheme.scale_rule != "gguf" and u is None


def _int_chunks(xp, rows, p):
    """(rows slice, float64 parameter columns, a float64 work buffer) per chunk of a block:
    the columns are made once per block and the buffer is reused, so a chunk stays in cache."""
    cols = {
        k: None if v is None else xp.astype(v, xp.float64, copy=False)[:, None]
        for k, v in p.items()
    }
    cols["divisor"] = grid.divisors(xp, p["scale"])[:, None]
    parts = list(_xp.row_chunks(rows.shape[0], rows.shape[1], _xp.on_cpu(rows)))
    height = max(part.stop - part.start for part in parts)
    work = _xp.empty(xp, (height, rows.shape[1]), xp.float64, rows)
    for part in parts:
        params = {k: None if v is None else v[part] for k, v in cols.items()}
        yield part, params, work[: part.stop - part.start]


def _codes(xp, rows, p, scheme: QuantScheme, part, u):
    def cut(a):
        return None if a is None else a[part]

    host = _xp.on_cpu(rows)
    if scheme.kind == "float" and u is None and host:
        # the host's fast route (numpy, or a CPU tensor's own memory): the compiled encoder
        # rounds the quotients (same codes as grid.round_float, which the tests hold it to)
        from numfmt.formats import encode

        v = grid.quotients(xp, rows, cut(p["scale"]), None)
        fmt = cast(FloatFormat, scheme.element_format)  # a float grid's
        codes = encode(_xp.to_numpy(v), fmt, "nearest-even", "saturate")
        if _xp.is_numpy(xp):
            return codes
        import torch

        return torch.from_numpy(codes)  # the CPU tensor's codes, no copy
    if scheme.kind == "codebook" and u is None and host:
        from numfmt.quant import _kernels

        v = grid.quotients(xp, rows, cut(p["scale"]), None)
        fast = _kernels.codebook_codes(v, cast(np.ndarray, scheme.codebook))  # NF4's
        if fast is not None:
            return fast
    if scheme.scale_rule == "gguf":
        from numfmt.quant import gguf

        return gguf.quantize_rows(xp, rows, cut(p["scale"]), cut(p["minimum"]), scheme)
    return grid.quantize_rows(
        xp,
        rows,
        cut(p["scale"]),
        cut(p["zero"]),
        cut(p["minimum"]),
        scheme,
        None if u is None else u[part],
    )


def _uniforms(xp, qparams: QParams, blocks, seed):
    if qparams.scheme.rounding.value != "stochastic":
        return [None] * len(blocks)
    flat = _xp.uniform(xp, (qparams.grouping.size,), seed, blocks[0])
    out, at = [], 0
    for rows in blocks:
        n = rows.shape[0] * rows.shape[1]
        out.append(xp.reshape(flat[at : at + n], rows.shape))
        at += n
    return out


def quantize(x: Any, qparams: QParams, *, seed: Any = 0, finite: bool = False):
    """Codes of x under qparams, in x's library and on its device.

    Codes come in the narrowest integer dtype that holds them: int8 for symmetric int targets
    of 8 bits or fewer (int4 codes too; ``QuantizedTensor.pack`` puts two in a byte), uint8
    for asymmetric ones, FP8/FP6/FP4 and NF4, int16/uint16 up to 16 bits, int32/uint32 up to
    32. NaN quantizes to the code of zero and infinities clip.

    Args:
        seed: seed (or numpy / torch generator) for stochastic rounding.
        finite: a promise that x holds no NaN (a pass saved; ``quantize_tensor`` knows it).
    """
    a, xp = _xp.read(x)
    qparams = _fit(a, qparams)
    s = qparams.scheme
    g = qparams.grouping
    dtype = code_dtype(s, xp)
    blocks = g.blocks(a)
    uniforms = _uniforms(xp, qparams, blocks, seed) if blocks else []
    codes = [
        _quantize_block(xp, rows, p, s, dtype, u, finite)
        for rows, p, u in zip(blocks, _block_params(qparams), uniforms, strict=True)
    ]
    return g.assemble(codes, like=xp.zeros((), dtype=dtype, device=_xp.device(a)))


def dequantize(codes: Any, qparams: QParams, *, dtype: Any = None, check: bool = True):
    """The values codes stand for under qparams, float64 by default (exact).

    Args:
        check: look that every code is on the grid first (a pass over the codes); a caller
            that holds codes ``quantize`` gave (a quantized layer's forward) may skip it.

    Raises:
        NumfmtError: codes that are not integers, of the wrong shape, or outside the grid
            (a code quantize never gives: beyond qmin..qmax, an NaN or infinity code of the
            element format, or past the codebook's end).
    """
    c, xp = _as_codes(codes)
    qparams = _fit(c, qparams)
    if check:
        _check_codes(xp, c, qparams.scheme)
    g = qparams.grouping
    s = qparams.scheme
    out_dtype = _resolve_dtype(xp, dtype)
    blocks = [
        _dequantize_block(xp, rows, p, s, out_dtype)
        for rows, p in zip(g.blocks(c), _block_params(qparams, stored=True), strict=True)
    ]
    return g.assemble(blocks, like=xp.zeros((), dtype=out_dtype, device=_xp.device(c)))


def _dequantize_block(xp, rows, p, scheme, dtype):
    out = _xp.empty(xp, rows.shape, dtype, rows)
    for part in _xp.row_chunks(rows.shape[0], rows.shape[1], _xp.on_cpu(rows)):
        out[part] = xp.astype(_values(xp, rows[part], p, part, scheme), dtype)
    return out


def _values(xp, codes, p, part, scheme):
    """The values of one chunk's codes under the chunk's rows of the parameters p."""
    return grid.dequantize_rows(
        xp, codes, _cut(p["scale"], part), _cut(p["zero"], part), _cut(p["minimum"], part), scheme
    )


def _cut(a, part):
    return None if a is None else a[part]


def _resolve_dtype(xp, dtype):
    if dtype is None:
        return xp.float64
    if _xp.is_numpy(xp):
        return np.dtype(dtype)
    if isinstance(dtype, str | type | np.dtype):
        name = np.dtype(dtype).name
        return getattr(xp, name)
    return dtype


def _as_codes(codes: Any):
    if _xp.is_torch(codes):
        xp = _xp.namespace(codes)
        c = codes.detach()
    else:
        c = np.asarray(codes)
        xp = _xp.namespace(c)
    kind = str(c.dtype)
    if "int" not in kind and "bool" not in kind:
        raise NumfmtError(f"codes are integers, not an array of {c.dtype}")
    return c, xp


@functools.lru_cache(maxsize=64)
def _valid_codes(scheme: QuantScheme) -> np.ndarray:
    """For float targets: which codes quantize can give (finite values)."""
    from numfmt.formats.decode import decode_table

    return np.isfinite(decode_table(scheme.element_format))


def _check_codes(xp, c, scheme: QuantScheme) -> None:
    """Refuse codes that lie outside the scheme's grid, saying which."""
    if int(np.prod(c.shape)) == 0:
        return
    wide = xp.astype(c, xp.int64)
    if scheme.kind == "int":
        lo, hi = scheme.qmin, scheme.qmax
        bad = (wide < lo) | (wide > hi)
        grid_text = f"{lo} .. {hi}"
    else:
        # a float grid's format (a codebook has none)
        top = (
            15
            if scheme.kind == "codebook"
            else cast(FloatFormat, scheme.element_format).num_codes - 1
        )
        bad = (wide < 0) | (wide > top)
        grid_text = f"0 .. {top}"
        if scheme.kind == "float":
            valid = _xp.asarray_like(xp, _valid_codes(scheme), c)
            inside = xp.clip(wide, 0, top)
            bad = bad | ~_xp.take(xp, valid, inside)
            grid_text += " (finite values)"
    count = int(xp.sum(xp.astype(bad, xp.int64)))
    if count:
        flat = xp.reshape(wide, (-1,))
        first = int(flat[xp.reshape(bad, (-1,))][0])
        raise NumfmtError(
            f"{grouped(count)} of {grouped(int(np.prod(c.shape)))} codes lie outside the grid "
            f"of {scheme} "
            f"({grid_text}), the first {first}; codes come from quantize() with these qparams"
        )
