"""Reading and writing tensors: ``.npy``, ``.npz`` and ``.safetensors``, without torch.

safetensors files are read and written with the ``safetensors`` package (its numpy API needs no
torch), which checks the header; FP8 tensors, which its numpy API does not hold, are read from
the package's raw bytes through ml_dtypes. Any error a malformed file causes becomes one
NumfmtError that names the file. Writes are atomic, and nothing that exists is overwritten
unless ``overwrite=True`` says so.
"""

from __future__ import annotations

from pathlib import Path

import ml_dtypes
import numpy as np

from numfmt._files import atomic_write, check_output
from numfmt.errors import NumfmtError

#: safetensors dtypes that the package's numpy API cannot give, read from raw bytes.
_RAW_DTYPES = {
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
}


def list_tensors(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor in a file."""
    p = _existing(path)
    if p.suffix == ".safetensors":
        with _open_safetensors(p) as f:
            out = {}
            for k in f.keys():  # noqa: SIM118 (a safetensors handle, not a dict)
                info = f.get_slice(k)
                out[k] = (info.get_dtype(), tuple(info.get_shape()))
            return out
    if p.suffix == ".npz":
        with _open_npz(p) as z:
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
        with _open_npz(p) as z:
            chosen = _choose(p, list(z.files), name)
            try:
                return chosen, z[chosen]
            except (ValueError, OSError, EOFError) as exc:
                raise NumfmtError(f"{p.name}: tensor '{chosen}' cannot be read ({exc})") from None
    if p.suffix == ".safetensors":
        with _open_safetensors(p) as f:
            chosen = _choose(p, list(f.keys()), name)
            dtype = f.get_slice(chosen).get_dtype()
            if dtype not in _RAW_DTYPES:
                try:
                    return chosen, np.array(f.get_tensor(chosen))
                except Exception as exc:  # the package raises several kinds
                    raise NumfmtError(
                        f"{p.name}: tensor '{chosen}' has dtype {dtype}, which numfmt cannot "
                        f"read ({exc})"
                    ) from None
        return chosen, _raw_tensor(p, chosen)
    raise NumfmtError(f"{p.name}: numfmt reads .npy, .npz and .safetensors files")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file ({} when it has none)."""
    with _open_safetensors(_existing(path)) as f:
        return dict(f.metadata() or {})


def save_safetensors(
    path: str | Path,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write numpy arrays to a safetensors file, atomically (refusing to replace one unless
    overwrite). float16/32/64, bfloat16, integers and bool are stored as themselves."""
    from safetensors.numpy import save

    p = check_output(path, overwrite=overwrite, suffix=".safetensors")
    arrays = {}
    for k, v in tensors.items():
        a = np.ascontiguousarray(v)
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        if a.dtype.kind not in "fiub" and a.dtype != ml_dtypes.bfloat16:
            raise NumfmtError(f"cannot store a {a.dtype} tensor in safetensors")
        arrays[k] = a
    meta = {str(k): str(v) for k, v in (metadata or {}).items()} or None
    try:
        data = save(arrays, metadata=meta)
    except Exception as exc:  # the package raises several kinds
        raise NumfmtError(f"cannot write {p.name}: {exc}") from None
    return atomic_write(p, lambda f: f.write(data), overwrite=overwrite)


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise NumfmtError(f"{p}: no such file")
    if not p.is_file():
        raise NumfmtError(f"{p}: not a file")
    return p


class _open_safetensors:
    """safe_open with every failure as one NumfmtError."""

    def __init__(self, p: Path) -> None:
        self.p = p

    def __enter__(self):
        from safetensors import safe_open

        try:
            self.handle = safe_open(str(self.p), framework="np")
            return self.handle.__enter__()
        except Exception as exc:  # SafetensorError, OSError, ...
            raise NumfmtError(f"{self.p.name}: not a readable safetensors file ({exc})") from None

    def __exit__(self, *exc_info):
        return self.handle.__exit__(*exc_info)


def _raw_tensor(p: Path, name: str) -> np.ndarray:
    import safetensors

    try:
        entries = dict(safetensors.deserialize(p.read_bytes()))
        info = entries[name]
        dtype = _RAW_DTYPES[info["dtype"]]
        return np.frombuffer(bytes(info["data"]), dtype=dtype).reshape(info["shape"]).copy()
    except Exception as exc:
        raise NumfmtError(f"{p.name}: tensor '{name}' cannot be read ({exc})") from None


class _open_npz:
    def __init__(self, p: Path) -> None:
        self.p = p

    def __enter__(self):
        try:
            self.z = np.load(self.p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise NumfmtError(f"{self.p.name}: not a readable .npz file ({exc})") from None
        if not hasattr(self.z, "files"):
            raise NumfmtError(f"{self.p.name}: not an .npz archive")
        return self.z

    def __exit__(self, *exc_info):
        self.z.close()


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
