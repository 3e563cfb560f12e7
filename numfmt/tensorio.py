"""Reading and writing tensors: ``.npy``, ``.npz`` and ``.safetensors``, with numpy alone.

safetensors files are read and written here directly (an 8-byte header length, a JSON header,
then the raw little-endian data), so bfloat16 and FP8 tensors load through ml_dtypes without
torch. Nothing that exists is overwritten unless ``overwrite=True`` says so.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import ml_dtypes
import numpy as np

from numfmt.errors import NumfmtError

_SAFETENSORS_DTYPES = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"),
    "U32": np.dtype("<u4"),
    "U16": np.dtype("<u2"),
    "U8": np.dtype("u1"),
    "BOOL": np.dtype("?"),
}
_DTYPE_NAMES = {v: k for k, v in _SAFETENSORS_DTYPES.items()}
MAX_HEADER = 100 * 1024 * 1024


def list_tensors(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor in a file."""
    p = _existing(path)
    if p.suffix == ".safetensors":
        header, _ = _read_header(p)
        return {k: (v["dtype"], tuple(v["shape"])) for k, v in header.items()}
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            return {k: (str(z[k].dtype), z[k].shape) for k in z.files}
    a = _load_npy(p)
    return {p.stem: (str(a.dtype), a.shape)}


def load_tensor(path: str | Path, name: str | None = None) -> tuple[str, np.ndarray]:
    """(name, array) of one tensor; ``name`` may be omitted when the file holds one.

    Raises:
        NumfmtError: a missing or unreadable file, an unknown name (the message lists the
            names in the file), or a file that holds several tensors and no name was given.
    """
    p = _existing(path)
    if p.suffix == ".npy":
        return p.stem, _load_npy(p)
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            chosen = _choose(p, list(z.files), name)
            return chosen, z[chosen]
    if p.suffix == ".safetensors":
        header, start = _read_header(p)
        chosen = _choose(p, list(header), name)
        info = header[chosen]
        dtype = _SAFETENSORS_DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise NumfmtError(
                f"{p.name}: tensor '{chosen}' has dtype {info.get('dtype')}, "
                "which numfmt does not read"
            )
        begin, end = info["data_offsets"]
        with p.open("rb") as f:
            f.seek(start + begin)
            raw = f.read(end - begin)
        count = int(np.prod(info["shape"]))
        if len(raw) != count * dtype.itemsize:
            raise NumfmtError(f"{p.name}: tensor '{chosen}' is truncated")
        return chosen, np.frombuffer(raw, dtype=dtype).reshape(info["shape"]).copy()
    raise NumfmtError(f"{p.name}: numfmt reads .npy, .npz and .safetensors files")


def save_safetensors(
    path: str | Path,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write tensors to a safetensors file (refusing to replace one unless overwrite)."""
    p = Path(path)
    if p.suffix != ".safetensors":
        raise NumfmtError(f"{p.name}: the output must end in .safetensors")
    if p.exists() and not overwrite:
        raise NumfmtError(f"{p} exists; numfmt does not overwrite files (choose another name)")
    header: dict = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    chunks, offset = [], 0
    for name, array in tensors.items():
        a = np.ascontiguousarray(array)
        dtype = a.dtype.newbyteorder("<") if a.dtype.byteorder == ">" else a.dtype
        key = _DTYPE_NAMES.get(np.dtype(dtype))
        if key is None:
            raise NumfmtError(f"cannot store a {a.dtype} tensor in safetensors")
        data = a.astype(dtype, copy=False).tobytes()
        header[name] = {
            "dtype": key,
            "shape": list(a.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # align the data to 8 bytes
    p.parent.mkdir(parents=True, exist_ok=True)
    with p.open("wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for chunk in chunks:
            f.write(chunk)
    return p


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise NumfmtError(f"{p}: no such file")
    if not p.is_file():
        raise NumfmtError(f"{p}: not a file")
    return p


def _load_npy(p: Path) -> np.ndarray:
    try:
        return np.load(p, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise NumfmtError(f"{p.name}: not a readable .npy file ({exc})") from None


def _choose(p: Path, names: list[str], name: str | None) -> str:
    if name is not None:
        if name not in names:
            shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
            raise NumfmtError(f"{p.name} has no tensor '{name}'; it has: {shown}")
        return name
    if len(names) == 1:
        return names[0]
    if not names:
        raise NumfmtError(f"{p.name} holds no tensors")
    shown = ", ".join(names[:12]) + (" ..." if len(names) > 12 else "")
    raise NumfmtError(f"{p.name} holds {len(names)} tensors; choose one with --tensor: {shown}")


def _read_header(p: Path) -> tuple[dict, int]:
    try:
        with p.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ValueError("too short")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER:
                raise ValueError("header too large")
            header = json.loads(f.read(n))
    except (ValueError, UnicodeDecodeError) as exc:
        raise NumfmtError(f"{p.name}: not a readable safetensors file ({exc})") from None
    header.pop("__metadata__", None)
    return header, 8 + n
