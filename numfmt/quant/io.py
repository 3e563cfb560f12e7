"""numfmt's file format for quantized tensors: safetensors, with a layout said in the metadata.

One file holds one or more quantized tensors. For a tensor named ``w``:

=================  ==========================================================================
key                what it holds
=================  ==========================================================================
w.codes            the codes: packed into uint8 when their width is not a whole number of
                   bytes (4 and 2 bits in the ``low_first`` order unless said otherwise, other
                   widths as a little-endian bit stream), else as int8/uint8/int16 ... as they
                   are
w.scale            the stored scales, in the scale layout: float32, float16 or bfloat16 as
                   themselves; any other scale format (E8M0, E4M3 ...) as its codes (uint8)
w.zero_point       integer zero points (asymmetric schemes)
w.minimum          float minima, stored like the scales (``min`` mapping, GGUF Q4_1)
w.tensor_scale     NVFP4's float32 tensor scale
=================  ==========================================================================

The metadata key ``numfmt`` holds JSON: ``{"layout": 1, "tensors": {"w": {...}}}`` with, per
tensor, the canonical scheme string, the original shape and dtype, the code dtype and
packing, and how the scales are stored. Loading gives back the same codes and the same
dequantized values. Files are written atomically and never over an existing file unless
``overwrite=True``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from numfmt._display import grouped
from numfmt.errors import NumfmtError
from numfmt.formats import decode, encode, get_format
from numfmt.quant import _xp, grid, packing
from numfmt.quant.granularity import Grouping
from numfmt.quant.qparams import QParams, code_dtype
from numfmt.quant.schemes import QuantScheme, parse_scheme

LAYOUT = 1
_NATIVE_SCALES = {"float32": np.float32, "float16": np.float16, "float64": np.float64}


def save(
    path: str | Path,
    tensors: dict[str, Any],
    *,
    order: str = "low_first",
    overwrite: bool = False,
    plain: dict[str, np.ndarray] | None = None,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Write quantized tensors ({name: QuantizedTensor}) to a safetensors file, atomically.

    ``plain`` adds arrays stored as they are (a model's float parameters), under their own
    names; ``metadata`` adds string entries beside numfmt's own.

    Raises:
        NumfmtError: the file exists (without overwrite), cannot be written, or a name is
            used twice.
    """
    from numfmt.tensorio import save_safetensors

    order = packing.parse_order(order)
    arrays: dict[str, np.ndarray] = dict(plain or {})
    layout: dict[str, Any] = {}
    for name, qt in tensors.items():
        if "." in name and any(name.endswith(s) for s in (".codes", ".scale")):
            raise NumfmtError(f"'{name}' cannot name a tensor (it ends like one of its parts)")
        arrays_one, info = tensor_entries(name, qt, order)
        clash = set(arrays_one) & set(arrays)
        if clash:
            raise NumfmtError(f"the name '{sorted(clash)[0]}' is used twice")
        arrays.update(arrays_one)
        layout[name] = info
    meta = dict(metadata or {})
    meta["numfmt"] = json.dumps({"layout": LAYOUT, "tensors": layout}, separators=(",", ":"))
    return save_safetensors(path, arrays, meta, overwrite=overwrite)


def check_order(bits: int, count: int, order: str) -> str:
    """The packing a tensor of ``count`` codes of ``bits`` bits is stored in under ``order``;
    an order that cannot apply is refused rather than replaced (ggml's blocks of 32 need
    4-bit codes and a whole number of blocks; high_first packs 2- and 4-bit codes only)."""
    order = packing.parse_order(order)
    if bits % 8 == 0:
        return "none"  # whole bytes: nothing to order
    if order == "ggml" and bits != 4:
        raise NumfmtError(
            f"the ggml order packs 4-bit codes, not {bits}-bit ones: save them in the "
            "low_first order"
        )
    if order == "ggml" and count % 32:
        raise NumfmtError(
            f"the ggml order packs 4-bit codes in blocks of 32, and this tensor has "
            f"{grouped(count)} "
            f"codes ({count % 32} past the last whole block): pad it to a multiple of 32, or "
            "save it in the low_first order"
        )
    if order == "high_first" and bits not in (2, 4):
        raise NumfmtError(
            f"the high_first order packs 2- and 4-bit codes; {bits}-bit codes are stored as a "
            "little-endian bit stream (save them in the low_first order)"
        )
    return order if bits in (2, 4) else "bitstream"


def tensor_entries(name: str, qt, order: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    s = qt.scheme
    codes = _xp.to_numpy(qt.codes)
    use = check_order(s.bits, qt.size, order)
    if use == "none":
        stored_codes, packing_name = codes, "none"
    else:
        stored_codes = packing.pack(codes, s.bits, use if use != "bitstream" else "low_first")
        packing_name = use
    qp = qt.qparams
    entries = {f"{name}.codes": np.asarray(stored_codes)}
    scale_storage = _store_scales(entries, f"{name}.scale", qp.scale, s.scale_format)
    if qp.zero_point is not None:
        zero = _xp.to_numpy(qp.zero_point).astype(np.int64)
        entries[f"{name}.zero_point"] = zero.astype(code_dtype(s))
    if qp.minimum is not None:
        _store_scales(entries, f"{name}.minimum", qp.minimum, s.scale_format)
    if qp.tensor_scale is not None:
        entries[f"{name}.tensor_scale"] = np.asarray(float(qp.tensor_scale), dtype=np.float32)
    info = {
        "scheme": str(s),
        "shape": list(qt.shape),
        "dtype": qt.dtype,
        "code_dtype": str(codes.dtype),
        "packing": packing_name,
        "scale_format": s.scale_format,
        "scale_storage": scale_storage,
    }
    return entries, info


def _store_scales(entries: dict, key: str, values: Any, fmt_name: str) -> str:
    v = _xp.to_numpy(values).astype(np.float64)
    if fmt_name in _NATIVE_SCALES:
        entries[key] = v.astype(_NATIVE_SCALES[fmt_name])
        return "float"
    if fmt_name == "bfloat16":
        import ml_dtypes

        entries[key] = v.astype(ml_dtypes.bfloat16)
        return "float"
    entries[key] = np.asarray(encode(v, fmt_name, overflow="saturate"))
    return "codes"


def read(path: str | Path, name: str | None = None, *, verify: bool = True):
    """(codes, qparams, original dtype) of the quantized tensor ``name`` of a file (``name``
    may be omitted when the file holds one); ``numfmt.quant.load`` wraps them. Each part is
    checked against the file's checksums unless ``verify=False``, and against the layout
    (dtype, shape, finite scales) always.

    Raises:
        NumfmtError: not a numfmt file, a layout this version does not read, a missing name,
            or parts that do not fit the layout.
    """
    layout = layout_of(path)
    names = list(layout)
    if name is None:
        if len(names) != 1:
            raise NumfmtError(
                f"{Path(path).name} holds {len(names)} quantized tensors; name one: "
                + ", ".join(names[:12])
            )
        name = names[0]
    if name not in layout:
        raise NumfmtError(
            f"{Path(path).name} has no quantized tensor '{name}'; it has: " + ", ".join(names[:12])
        )
    return _read_one(path, name, layout[name], verify)


def read_all(path: str | Path, *, verify: bool = True) -> dict[str, tuple]:
    """Every quantized tensor of a file, by name, as ``read`` gives them."""
    return {name: _read_one(path, name, info, verify) for name, info in layout_of(path).items()}


def layout_of(path: str | Path) -> dict[str, Any]:
    """Each quantized tensor's layout (name -> scheme, shape, dtype, packing, scale storage),
    from the file's metadata; nothing of the tensors is read.

    Raises:
        NumfmtError: not a numfmt file, or a layout this version does not read.
    """
    from numfmt.tensorio import read_metadata

    meta = read_metadata(path)
    if "numfmt" not in meta:
        raise NumfmtError(f"{Path(path).name} is not a numfmt quantized file (no numfmt metadata)")
    try:
        doc = json.loads(meta["numfmt"])
        version = int(doc["layout"])
        tensors = dict(doc["tensors"])
    except (ValueError, KeyError, TypeError) as exc:
        raise NumfmtError(f"{Path(path).name}: unreadable numfmt metadata ({exc})") from None
    if version != LAYOUT:
        raise NumfmtError(
            f"{Path(path).name} has layout {version}; this numfmt reads layout {LAYOUT}"
        )
    return tensors


def _part_dtypes(s, packing_name: str, scale_storage: str) -> dict[str, np.dtype]:
    """The dtype each part of a tensor of scheme ``s`` is stored in (what tensor_entries
    writes)."""
    codes = np.dtype(np.uint8) if packing_name != "none" else np.dtype(code_dtype(s, np))
    if scale_storage == "codes":
        scale = np.asarray(encode(np.zeros(1), s.scale_format, overflow="saturate")).dtype
    elif s.scale_format == "bfloat16":
        import ml_dtypes

        scale = np.dtype(ml_dtypes.bfloat16)
    else:
        scale = np.dtype(_NATIVE_SCALES.get(s.scale_format, np.float32))
    return {
        "codes": codes,
        "scale": scale,
        "minimum": scale,
        "zero_point": np.dtype(code_dtype(s, np)),
        "tensor_scale": np.dtype(np.float32),
    }


def _finite(path, key: str, v: Any) -> None:
    bad = int(np.size(v)) - int(np.count_nonzero(np.isfinite(v)))
    if bad:
        raise NumfmtError(
            f"{Path(path).name}: '{key}' holds {bad} NaN or infinite value"
            f"{'s' if bad > 1 else ''}; a scale must be finite (the file is damaged)"
        )


@dataclass(frozen=True)
class Stored:
    """A quantized tensor as the file's header and layout describe it, without its data:
    its scheme, shape and grouping, and each part the file holds with its dtype."""

    scheme: QuantScheme
    shape: tuple[int, ...]
    grouping: Grouping
    packing: str
    scale_storage: str
    parts: dict[str, np.dtype]  # part (codes, scale, zero_point ...) -> its stored dtype
    dtype: str | None  # the tensor's dtype before it was quantized


def describe(path: str | Path, name: str, info: dict[str, Any]) -> Stored:
    """What the layout ``info`` (one entry of :func:`layout_of`) and the header say of the
    quantized tensor ``name``; no tensor data is read.

    Raises:
        NumfmtError: a layout that names no scheme, shape, packing or scale storage.
    """
    from numfmt.tensorio import list_tensors

    try:
        s = parse_scheme(info["scheme"])
        shape = tuple(int(n) for n in info["shape"])
        packing_name = str(info["packing"])
        scale_storage = str(info["scale_storage"])
        grouping = Grouping(shape, s.granularity)
    except (KeyError, TypeError, ValueError, NumfmtError) as exc:
        raise NumfmtError(
            f"{Path(path).name}: tensor '{name}' has no usable layout ({exc})"
        ) from None
    present = list_tensors(path)
    expected = _part_dtypes(s, packing_name, scale_storage)
    parts = {k: d for k, d in expected.items() if f"{name}.{k}" in present}
    return Stored(s, shape, grouping, packing_name, scale_storage, parts, info.get("dtype"))


def _read_one(path, name: str, info: dict[str, Any], verify: bool = True):
    from numfmt.tensorio import list_tensors, load_tensor

    stored = describe(path, name, info)
    s, shape = stored.scheme, stored.shape
    packing_name, scale_storage = stored.packing, stored.scale_storage
    present = list_tensors(path)
    expected = _part_dtypes(s, packing_name, scale_storage)

    def part(key: str, required: bool = True):
        full = f"{name}.{key}"
        if full not in present:
            if required:
                raise NumfmtError(f"{Path(path).name}: '{full}' is missing")
            return None
        value = load_tensor(path, full, verify=verify)[1]
        if value.dtype != expected[key]:  # an edited header, or parts of another layout
            raise NumfmtError(
                f"{Path(path).name}: '{full}' is {value.dtype}; the layout stores it as "
                f"{expected[key]}"
            )
        return value

    count = int(np.prod(shape))
    raw = part("codes")
    if packing_name == "none":
        codes = raw
    else:
        order = "low_first" if packing_name == "bitstream" else packing_name
        try:
            codes = packing.unpack(raw, s.bits, count, order)
        except NumfmtError as exc:
            raise NumfmtError(f"{Path(path).name}: '{name}.codes': {exc}") from None
        if s.code_signed:
            codes = packing.to_signed(codes, s.bits)
    if int(np.prod(codes.shape)) != count:
        raise NumfmtError(
            f"{Path(path).name}: '{name}.codes' holds {int(np.prod(codes.shape))} codes "
            f"for a tensor of {count}"
        )
    codes = np.asarray(codes).reshape(shape).astype(code_dtype(s))
    grouping = stored.grouping

    def scales(key: str, required: bool = True):
        v = part(key, required)
        if v is None:
            return None
        if scale_storage == "codes":
            v = decode(np.asarray(v), get_format(s.scale_format))
        v = np.asarray(v, dtype=np.float64)
        if v.size == int(np.prod(grouping.scale_shape)):
            v = v.reshape(grouping.scale_shape)  # a 0-d scale may come back as (1,)
        if v.shape != grouping.scale_shape:
            raise NumfmtError(
                f"{Path(path).name}: '{name}.{key}' has shape {v.shape}, not {grouping.scale_shape}"
            )
        _finite(path, f"{name}.{key}", v)
        return v

    scale = scales("scale")
    zero = part("zero_point", required=False)
    zero = None if zero is None else np.asarray(zero, dtype=np.int64).reshape(grouping.scale_shape)
    tensor_scale = part("tensor_scale", required=False)
    if tensor_scale is not None:
        _finite(path, f"{name}.tensor_scale", tensor_scale)
    qp = QParams(
        scheme=s,
        grouping=grouping,
        scale=scale,
        zero_point=zero,
        tensor_scale=None if tensor_scale is None else np.asarray(tensor_scale, np.float64),
        lo=scale,
        hi=scale,
        minimum=scales("minimum", required=False),
    )
    lo, hi = grid.clip_bounds(qp)
    from dataclasses import replace

    qp = replace(qp, lo=lo, hi=hi)
    return codes, qp, info.get("dtype")
