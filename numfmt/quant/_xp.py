"""One engine for numpy arrays and torch tensors: the array namespace, and what it lacks.

The grid arithmetic of the quantization layer is written once against ``xp = namespace(x)``
(array-api-compat, as gfloat and scikit-learn do): the same function body runs on numpy arrays
and on torch tensors on any device, and its results stay in the caller's library, on the
caller's device. The few operations the array API standard does not have (frexp, order
statistics per row, bincount, seeded random numbers, allocation that stays cheap for large
CPU arrays) live here, one small function each, with a branch per library in this file only.

Work precision: quotients and scales are float64, so that a code is the correctly rounded
``x / s`` (for float32 inputs exactly; see ``grid.py``). On the CPU the elementwise work runs
in chunks of rows (:func:`row_chunks`) small enough to stay in cache, which also keeps the
float64 temporaries small.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from numfmt.errors import NumfmtError

#: Elements per chunk of the elementwise passes on the CPU (float64 temporaries stay in cache).
CHUNK = 1 << 17
#: Elements per chunk on an accelerator: whole tensors, but for searches whose temporaries
#: multiply the tensor (100 candidate scales), which go 2^27 elements (1 GiB of float64) at a time.
DEVICE_CHUNK = 1 << 27


def is_torch(x: Any) -> bool:
    """Whether x is a torch tensor (without importing torch)."""
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


_NAMESPACES: dict[tuple[type, ...], Any] = {}


def namespace(*arrays: Any):
    """The array namespace of the arrays (numpy's for anything that is not a tensor).

    The namespace depends on the arrays' types only, so it is looked up once per tuple of
    types (the engine asks for it a dozen times per call, and small tensors feel it)."""
    present = tuple(type(a) for a in arrays if a is not None and not isinstance(a, int | float))
    found = _NAMESPACES.get(present)
    if found is None:
        from array_api_compat import array_namespace

        if not present:
            from array_api_compat import numpy as found
        else:
            found = array_namespace(
                *(a for a in arrays if a is not None and not isinstance(a, int | float))
            )
        _NAMESPACES[present] = found
    return found


def is_numpy(xp) -> bool:
    return xp.__name__.endswith("numpy")


def dtype_name(dtype: Any) -> str:
    """A numpy or torch dtype's name: ``float32`` for np.float32 and torch.float32 alike."""
    if type(dtype).__module__ == "torch":
        return str(dtype).removeprefix("torch.")
    try:
        return np.dtype(dtype).name
    except TypeError:
        return str(dtype)


def on_cpu(x: Any) -> bool:
    """Whether x lives in host memory (numpy, or a CPU tensor)."""
    return not is_torch(x) or x.device.type == "cpu"


def device(x: Any):
    from array_api_compat import device as _device

    return _device(x)


# -- reading inputs -------------------------------------------------------------------------------
def read(x: Any):
    """x as an array to quantize, and its namespace.

    numpy and array-likes are read exactly as ``encode`` reads them (float64, or float32 where
    the values are float32 or narrower); torch tensors stay tensors on their device: floating
    tensors keep their dtype, integer tensors become float64.
    """
    if is_torch(x):
        import torch

        t = x.detach()
        if t.is_complex():
            raise NumfmtError(f"expected real numbers; got a tensor of dtype {t.dtype}")
        if not t.is_floating_point():
            big = t.numel() and t.dtype not in (torch.bool, torch.uint8, torch.int8, torch.int16)
            if big and float(t.abs().max()) > 2.0**53:
                raise NumfmtError(
                    "integer inputs beyond 2^53 in magnitude cannot be read exactly as float64"
                )
            t = t.to(torch.float64)
        return t, namespace(t)
    from numfmt.formats.encode import as_real_array

    a = as_real_array(x)
    return a, namespace(a)


# -- allocation -----------------------------------------------------------------------------------
def empty(xp, shape, dtype, like):
    """An uninitialised array on like's device. Large CPU tensors take numpy's memory (which
    asks the kernel for huge pages; torch's allocator faults 4 KiB pages in one at a time)."""
    shape = tuple(int(n) for n in shape)
    if not is_torch(like):
        return np.empty(shape, dtype=dtype)
    import torch

    if like.device.type == "cpu" and int(np.prod(shape)) >= 1 << 20:
        if dtype == torch.bfloat16:  # numpy has no bfloat16: the same bytes as int16
            return torch.from_numpy(np.empty(shape, np.int16)).view(torch.bfloat16)
        np_dtype = torch.empty((), dtype=dtype).numpy().dtype  # torch's own dtype mapping
        return torch.from_numpy(np.empty(shape, np_dtype))
    return torch.empty(shape, dtype=dtype, device=like.device)


def int_dtype(xp, bits: int, signed: bool):
    """The narrowest integer dtype of xp holding ``bits``-bit codes."""
    for width in (8, 16, 32, 64):
        if bits <= width:
            return getattr(xp, f"{'' if signed else 'u'}int{width}")
    raise NumfmtError(f"codes of {bits} bits do not fit an integer dtype")


def to_numpy(x: Any) -> np.ndarray:
    """A host copy as numpy (for reports and figures only, never on the hot path)."""
    if is_torch(x):
        import torch

        t = x.detach()
        if t.dtype == torch.bfloat16:
            t = t.float()
        return t.cpu().numpy()
    return np.asarray(x)


def to_torch(a: Any, device: Any):
    """a as a torch tensor on device (None stays None; tensors move; numpy is copied)."""
    if a is None:
        return None
    if is_torch(a):
        return a.to(device)
    import torch

    return torch.from_numpy(np.array(a)).to(device)


# -- arithmetic the standard lacks ----------------------------------------------------------------
def frexp(xp, x):
    """(mantissa, exponent) with x = mantissa * 2^exponent, |mantissa| in [0.5, 1)."""
    if is_numpy(xp):
        return np.frexp(x)
    import torch

    return torch.frexp(x)


def ldexp(xp, x, e):
    """x * 2^e, exactly (numpy's ldexp; torch's multiplies by an exact power of two)."""
    if is_numpy(xp):
        return np.ldexp(x, e)
    import torch

    return torch.ldexp(x, e)


class _OutOps:
    """The elementwise operations of one library that write into an ``out`` array (the array
    API has none): the CPU's chunks then reuse one buffer that stays in cache."""

    # numpy's functions or torch's
    divide: Callable[..., Any]
    subtract: Callable[..., Any]
    add: Callable[..., Any]
    rint: Callable[..., Any]
    clip: Callable[..., Any]
    multiply: Callable[..., Any]
    zero_nan: Callable[..., Any]

    def __init__(self, xp) -> None:
        if is_numpy(xp):
            self.divide, self.subtract, self.add = np.divide, np.subtract, np.add
            self.rint, self.clip = np.rint, np.clip
            self.multiply = lambda a, b, out: np.multiply(a, b, out=out, casting="same_kind")
            self.zero_nan = lambda a: np.copyto(a, 0.0, where=np.isnan(a))
        else:
            import torch

            self.divide, self.subtract, self.add = torch.div, torch.sub, torch.add
            self.rint = torch.round
            self.clip = lambda a, lo, hi, out: torch.clamp(a, lo, hi, out=out)
            self.multiply = lambda a, b, out: torch.mul(a, b, out=out)
            self.zero_nan = lambda a: a.nan_to_num_(0.0, float("inf"), float("-inf"))


def out_ops(xp) -> _OutOps:
    return _OutOps(xp)


def zero_nan(xp, v):
    """v with NaN replaced by 0 (v is a temporary the caller owns: torch reuses it)."""
    if is_numpy(xp):
        return np.where(np.isnan(v), 0.0, v)
    return v.nan_to_num_(nan=0.0, posinf=float("inf"), neginf=float("-inf"))


def row_min_max(xp, rows):
    """Per-row minimum and maximum (float64; NaN where a row holds NaN)."""
    if is_numpy(xp):
        if rows.shape[1] == 0:
            z = np.zeros(rows.shape[0])
            return z, z
        return rows.min(axis=1).astype(np.float64), rows.max(axis=1).astype(np.float64)
    import torch

    if rows.shape[1] == 0:
        z = torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device)
        return z, z
    # two reductions: torch's aminmax over a dimension is ten times slower on the CPU
    lo, hi = torch.amin(rows, dim=1), torch.amax(rows, dim=1)
    return lo.to(torch.float64), hi.to(torch.float64)


def order_statistics(xp, rows, ks):
    """rows' k-th smallest values per row (0-based k, a list), as float64, shape (rows, len(ks))."""
    if is_numpy(xp):
        part = np.partition(rows, sorted(set(ks)), axis=1)
        return part[:, ks].astype(np.float64)
    import torch

    ordered = torch.sort(rows, dim=1).values
    index = torch.as_tensor(ks, device=rows.device)
    return ordered[:, index].to(torch.float64)


def bincount_rows(xp, index, weights, rows: int, bins: int):
    """Per-row histograms: counts[r, b] = sum of weights where index == r * bins + b."""
    flat: Any  # numpy's or torch's
    if is_numpy(xp):
        flat = np.bincount(
            index.reshape(-1),
            weights=None if weights is None else weights.reshape(-1),
            minlength=rows * bins,
        )
        return flat.astype(np.float64).reshape(rows, bins)
    import torch

    flat = torch.bincount(
        index.reshape(-1), None if weights is None else weights.reshape(-1), minlength=rows * bins
    )
    return flat.to(torch.float64).reshape(rows, bins)


def uniform(xp, shape, seed, like):
    """Uniform [0, 1) float64 numbers on like's device, from a seed or a generator."""
    if is_numpy(xp):
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        return rng.random(shape)
    import torch

    if isinstance(seed, torch.Generator):
        gen = seed
    else:
        if isinstance(seed, np.random.Generator):
            seed = int(seed.integers(0, 2**63 - 1))
        gen = torch.Generator(device=like.device)
        gen.manual_seed(0 if seed is None else int(seed))
    return torch.rand(shape, generator=gen, dtype=torch.float64, device=like.device)


def take(xp, table, index):
    """table[index] for an integer array index of any shape (table 1-D, on index's device)."""
    flat = xp.reshape(index, (-1,))
    return xp.reshape(xp.take(table, xp.astype(flat, xp.int64)), index.shape)


def asarray_like(xp, values, like, dtype=None):
    """values (numpy or Python) as an array of xp on like's device."""
    if not is_numpy(xp):
        values = np.array(values)  # a writable copy: torch refuses read-only numpy memory
    return xp.asarray(values, dtype=dtype, device=device(like))


def row_chunks(rows: int, width: int, on_host: bool):
    """Slices of rows that hold about CHUNK elements each on the host, DEVICE_CHUNK off it."""
    budget = CHUNK if on_host else DEVICE_CHUNK
    if rows * width <= budget:
        yield slice(0, rows)
        return
    step = max(1, budget // max(width, 1))
    for start in range(0, rows, step):
        yield slice(start, min(rows, start + step))
