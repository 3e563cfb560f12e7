"""Reading and writing tensors: ``.npy``, ``.npz`` and ``.safetensors``, without torch.

safetensors files are read and written by numfmt's one reader and writer
(``numfmt._safetensors``), which check the header and read one tensor at a time; bfloat16 and
FP8 tensors come through ml_dtypes. Any error a malformed file causes becomes one
NumfmtError that names the file and, when its first bytes say so, what the file is instead (a
text file, a .npy named .npz ...). Pickled arrays are refused: unpickling can run code. Writes
are atomic, and nothing that exists is overwritten unless ``overwrite=True`` says so.
"""

from __future__ import annotations

import contextlib
import zipfile
from pathlib import Path

import numpy as np

from numfmt._safetensors import SafetensorsFile, write_safetensors
from numfmt.errors import NumfmtError


def list_tensors(path: str | Path) -> dict[str, tuple[str, tuple[int, ...]]]:
    """name -> (dtype, shape) of every tensor in a file."""
    p = _existing(path)
    if p.suffix == ".safetensors":
        return dict(_safetensors(p).entries)
    if p.suffix == ".npz":
        with _open_npz(p) as z:
            headers = {k: _npz_header(p, z, k) for k in z.files}
    else:
        headers = {p.stem: _npy_file_header(p)}
    return {k: (str(dtype), shape) for k, (shape, dtype) in headers.items()}


def load_tensor(
    path: str | Path, name: str | None = None, *, verify: bool = True
) -> tuple[str, np.ndarray]:
    """(name, array) of one tensor; ``name`` may be omitted when the file holds one. A
    safetensors file numfmt wrote is checked against its checksums unless ``verify=False``.

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
            return chosen, _npz_member(p, z, chosen)
    if p.suffix == ".safetensors":
        f = _safetensors(p)
        chosen = _choose(p, list(f.entries), name)
        return chosen, f.read(chosen, verify=verify)
    raise NumfmtError(f"{p.name}: numfmt reads .npy, .npz and .safetensors files")


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file ({} when it has none)."""
    return _safetensors(_existing(path)).metadata


def save_safetensors(
    path: str | Path,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write numpy arrays to a safetensors file, atomically (refusing to replace one unless
    overwrite). Floats (bfloat16 and FP8 included), integers and bool are stored as
    themselves."""
    return write_safetensors(path, tensors, metadata, overwrite=overwrite)


def _existing(path: str | Path) -> Path:
    p = Path(path)
    if not p.exists():
        raise NumfmtError(f"{p}: no such file")
    if not p.is_file():
        raise NumfmtError(f"{p}: not a file")
    return p


#: How each kind of file begins: a .npy its magic string, an .npz (a zip archive) the zip's.
_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def _sniff(p: Path) -> tuple[str, bytes]:
    """What a file's first bytes say it is ("empty", "npy", "zip", "text" or "other"), and
    those bytes.

    A safetensors file begins with its header's length as 8 little-endian bytes, which hold
    zeros for any real header: text never does, so text is never a safetensors file."""
    with open(p, "rb") as f:
        head = f.read(512)
    if not head:
        return "empty", head
    if head.startswith(_NPY_MAGIC):
        return "npy", head
    if head.startswith(_ZIP_MAGIC):
        return "zip", head
    return ("text" if _text(head) is not None else "other"), head


def _text(head: bytes) -> str | None:
    """The bytes as text when they read as UTF-8 with no control characters but whitespace."""
    for cut in range(4):  # the 512 bytes may end inside a character
        try:
            text = head[: len(head) - cut].decode("utf-8")
            break
        except UnicodeDecodeError:
            continue
    else:
        return None
    if any(not (c.isprintable() or c in "\t\n\r\f") for c in text):
        return None
    return text


def _not_a(p: Path, kind: str, why: str) -> NumfmtError:
    """The error for a file that is not what its name says, with what it is instead."""
    found, head = _sniff(p)
    if found == "empty":
        return NumfmtError(f"{p.name}: not {kind} file: it is empty")
    message = f"{p.name}: not {kind} file ({why})"
    if found == "text":
        text = _text(head)
        assert text is not None  # _sniff calls it text only when it reads as text
        lines = text.strip().splitlines() or [""]
        begins = lines[0][:40] + ("..." if len(lines[0]) > 40 or len(lines) > 1 else "")
        return NumfmtError(f"{message}: it is a text file, beginning '{begins}'")
    if found == "npy" and p.suffix != ".npy":
        return NumfmtError(f"{message}: it is a .npy file (rename it {p.stem}.npy)")
    if found == "zip" and p.suffix != ".npz":
        return NumfmtError(f"{message}: it is a zip archive, as .npz files are")
    return NumfmtError(message)


def _pickled(where: str) -> NumfmtError:
    return NumfmtError(
        f"{where} holds Python objects (a pickled array), not numbers: numfmt does not load "
        "pickles, which can run code; save the array with a numeric dtype"
    )


def _safetensors(p: Path) -> SafetensorsFile:
    """The file's header, read and checked; one NumfmtError that says what the file is
    instead where its first bytes tell."""
    if _sniff(p)[0] in ("empty", "npy", "zip", "text"):
        raise _not_a(p, "a safetensors", "its first 8 bytes are no header length")
    return SafetensorsFile(p)


class _open_npz:
    def __init__(self, p: Path) -> None:
        self.p = p

    def __enter__(self):
        if _sniff(self.p)[0] != "zip":
            raise _not_a(self.p, "an .npz", "not a zip archive")
        try:
            self.z = np.load(self.p, allow_pickle=False)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
            raise NumfmtError(f"{self.p.name}: a damaged .npz file ({exc})") from None
        return self.z

    def __exit__(self, *exc_info):
        self.z.close()


@contextlib.contextmanager
def _damaged(what: str):
    """Any error reading a file's inner structure as one NumfmtError: ``what`` (damaged)."""
    try:
        yield
    except NumfmtError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise NumfmtError(f"{what} ({exc})") from None


def _npz_header(p: Path, z, name: str) -> tuple[tuple[int, ...], np.dtype]:
    """(shape, dtype) of one member of an open .npz, read from its header alone."""
    where = f"{p.name}: '{name}'"
    member = f"{name}.npy" if f"{name}.npy" in z.zip.namelist() else name
    with _damaged(f"{where} cannot be read"), z.zip.open(member) as f:
        header = _npy_header(f, where)
    if header is None:
        raise NumfmtError(f"{where} in the archive is not a NumPy array (no NumPy magic header)")
    return header


def _npz_member(p: Path, z, name: str) -> np.ndarray:
    _npz_header(p, z, name)  # refuses what is no array, or a pickle, before reading it
    with _damaged(f"{p.name}: '{name}' cannot be read"):
        return z[name]


def _npy_file_header(p: Path) -> tuple[tuple[int, ...], np.dtype]:
    with _damaged(f"{p.name}: a damaged .npy file"), open(p, "rb") as f:
        header = _npy_header(f, p.name)
    if header is None:
        raise _not_a(p, "a .npy", "no NumPy magic header")
    return header


def _load_npy(p: Path) -> np.ndarray:
    _npy_file_header(p)  # refuses what is no .npy, or a pickle, before reading it
    with _damaged(f"{p.name}: a damaged .npy file"):
        return np.load(p, allow_pickle=False)


def _npy_header(f, where: str) -> tuple[tuple[int, ...], np.dtype] | None:
    """(shape, dtype) from a .npy stream's header (None without NumPy's magic string); a
    pickled (object) array is refused here, before anything is unpickled."""
    from numpy.lib import format as npy

    if f.read(len(_NPY_MAGIC)) != _NPY_MAGIC:
        return None
    f.seek(0)
    version = npy.read_magic(f)
    read = npy.read_array_header_1_0 if version == (1, 0) else npy.read_array_header_2_0
    shape, _, dtype = read(f)
    if dtype.hasobject:
        raise _pickled(where)
    return tuple(shape), dtype


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
