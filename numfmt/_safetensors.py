"""safetensors files, read and written by numfmt's own code: one reader, one writer.

The format is eight little-endian bytes giving the header's length, a JSON header (name ->
dtype, shape and byte offsets; ``__metadata__`` -> strings), then the tensors' bytes. The
reader checks the whole header when it opens a file and reads one tensor at a time with
plain reads (never the whole file, never a memory map that grows with what was read), so a
checkpoint larger than memory streams. The writer appends each tensor to a temporary data
file as it comes and assembles header and data through ``numfmt._files.atomic_write``.
Every failure is one NumfmtError that names the file.

Every file numfmt writes carries, in its metadata under ``checksums``, each tensor's dtype,
shape and the SHA-256 of its bytes; the reader checks them as it reads each tensor (unless
told not to: ``verify=False``), so a flipped byte, a tensor cut or swapped, or a dtype changed
in the header at the same byte size is refused rather than loaded. The sums live in the file
they check: they catch damage and careless edits, not a forger who rewrites them too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import struct
import tempfile
from pathlib import Path
from typing import IO, Any

import ml_dtypes
import numpy as np

from numfmt._files import atomic_write, check_output
from numfmt.errors import NumfmtError

#: safetensors' dtype names -> numpy's.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": np.dtype(ml_dtypes.bfloat16),
    "F8_E4M3": np.dtype(ml_dtypes.float8_e4m3fn),
    "F8_E5M2": np.dtype(ml_dtypes.float8_e5m2),
    "F8_E8M0": np.dtype(ml_dtypes.float8_e8m0fnu),
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U64": np.dtype(np.uint64),
    "U32": np.dtype(np.uint32),
    "U16": np.dtype(np.uint16),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
#: A header longer than this is not one (a real header is a few MB at most).
MAX_HEADER = 100_000_000
#: The metadata key of each tensor's [dtype, shape, sha256 of its bytes].
CHECKSUMS = "checksums"


def _sum(data: Any) -> str:
    return hashlib.sha256(data).hexdigest()


def dtype_name(dtype: np.dtype) -> str:
    """safetensors' name of a numpy dtype."""
    for name, d in DTYPES.items():
        if d == dtype:
            return name
    raise NumfmtError(f"cannot store a {dtype} tensor in safetensors")


class SafetensorsFile:
    """One safetensors file: its header read and checked on opening, its tensors one at a
    time. ``entries``: name -> (dtype name, shape); ``metadata``: the ``__metadata__``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise self._bad("too short for a header length")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8 or n > MAX_HEADER:
                    raise self._bad("its first 8 bytes are no header length")
                header = json.loads(f.read(n))
        except OSError as exc:
            raise NumfmtError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise self._bad("its header is not JSON") from None
        if not isinstance(header, dict):
            raise self._bad("its header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict):
            raise self._bad("its __metadata__ is not an object")
        self.metadata: dict[str, str] = {str(k): str(v) for k, v in meta.items()}
        self.checksums = self._checksums()
        self.start = 8 + n
        self._spans: dict[str, tuple[int, int]] = {}
        self.entries: dict[str, tuple[str, tuple[int, ...]]] = {}
        for name, entry in header.items():
            self.entries[name] = self._check(name, entry, size - self.start)

    def _checksums(self) -> dict[str, tuple[str, list[int], str]] | None:
        """name -> (dtype, shape, sha256) as the writer recorded them; None in a file without
        (one numfmt did not write, or written before numfmt kept them)."""
        if CHECKSUMS not in self.metadata:
            return None
        try:
            doc = json.loads(self.metadata[CHECKSUMS])
            sums = {str(k): (str(d), [int(x) for x in sh], str(h)) for k, (d, sh, h) in doc.items()}
        except (ValueError, TypeError, AttributeError):
            raise self._bad("its checksums (metadata) are damaged") from None
        return sums

    def _bad(self, why: str) -> NumfmtError:
        return NumfmtError(f"{self.path.name}: not a readable safetensors file ({why})")

    def _check(self, name: str, entry: Any, data_bytes: int) -> tuple[str, tuple[int, ...]]:
        try:
            dtype, shape, (begin, end) = entry["dtype"], entry["shape"], entry["data_offsets"]
            shape = tuple(int(s) for s in shape)
            begin, end = int(begin), int(end)
        except (KeyError, TypeError, ValueError):
            raise self._bad(f"tensor '{name}' lacks a dtype, shape or data_offsets") from None
        if not isinstance(dtype, str) or any(s < 0 for s in shape):
            raise self._bad(f"tensor '{name}' has a dtype {dtype!r} or shape {shape} of no tensor")
        if not 0 <= begin <= end:
            raise self._bad(f"tensor '{name}' has the byte range {begin}..{end}")
        if dtype in DTYPES:  # a dtype numfmt cannot read is listed, and refused when read
            expected = math.prod(shape) * DTYPES[dtype].itemsize  # Python ints: no overflow
            if end - begin != expected:
                raise self._bad(f"tensor '{name}' has {end - begin} bytes for its shape {shape}")
        if end > data_bytes:
            raise NumfmtError(f"{self.path.name} is truncated: {name} runs past its end")
        self._spans[name] = (begin, end)
        return dtype, shape

    def read(self, name: str, *, verify: bool = True) -> np.ndarray:
        """The tensor ``name`` as a numpy array of its own dtype (bfloat16 and FP8 through
        ml_dtypes); with ``verify`` (the default) checked against the file's checksums when it
        carries them."""
        dtype, shape = self.entries[name]
        if dtype not in DTYPES:
            raise NumfmtError(
                f"{self.path.name}: tensor '{name}' has dtype {dtype}, which numfmt cannot read"
            )
        begin, end = self._spans[name]
        out = np.empty(math.prod(shape), dtype=DTYPES[dtype])
        try:
            with self.path.open("rb") as f:
                f.seek(self.start + begin)
                got = f.readinto(out.view(np.uint8).data)
        except OSError as exc:
            raise NumfmtError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if got != end - begin:
            raise NumfmtError(f"{self.path.name} is truncated: {name} is cut short")
        if verify and self.checksums is not None:
            self._verify(name, dtype, shape, out)
        return out.reshape(shape)

    def _verify(self, name: str, dtype: str, shape: tuple[int, ...], data: np.ndarray) -> None:
        assert self.checksums is not None
        wrote = self.checksums.get(name)
        if wrote is None:
            why = "it has no checksum: a tensor added after numfmt wrote the file"
        elif (dtype, list(shape)) != wrote[:2]:
            why = f"its header says {dtype} {list(shape)}; it was written as {wrote[0]} {wrote[1]}"
        elif _sum(data.view(np.uint8).data) != wrote[2]:
            why = "its bytes do not match their checksum"
        else:
            return
        raise NumfmtError(
            f"{self.path.name}: tensor '{name}' was changed or damaged since numfmt wrote it "
            f"({why}); refusing to load it (verify=False, or --no-verify, skips the check)"
        )


class SafetensorsWriter:
    """A safetensors file written a tensor at a time: ``add`` appends each tensor's bytes to
    a temporary data file beside the destination; ``close(metadata)`` writes header and data
    atomically. Use it as a context manager: on an error nothing is left behind.

    Raises:
        NumfmtError: the destination is refused (``check_output``), a name is given twice, a
            dtype safetensors cannot hold, or the disk refuses.
    """

    def __init__(
        self, path: str | Path, *, overwrite: bool = False, inputs: tuple[Path, ...] = ()
    ) -> None:
        self.path = check_output(path, inputs=inputs, overwrite=overwrite, suffix=".safetensors")
        self.overwrite = overwrite
        self.header: dict[str, Any] = {}
        self.sums: dict[str, list[Any]] = {}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, name = tempfile.mkstemp(
                prefix=f".{self.path.name}.", suffix=".data", dir=self.path.parent
            )
        except OSError as exc:
            raise NumfmtError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self._data_path = Path(name)
        self._data: IO[bytes] = os.fdopen(fd, "wb")

    def add(self, name: str, array: np.ndarray) -> int:
        """Append one tensor; the bytes it takes."""
        if name in self.header:
            raise NumfmtError(f"the name '{name}' is used twice")
        a = np.asarray(array)
        if not a.flags.c_contiguous:  # (ascontiguousarray would make a scalar 1-D)
            a = a.copy(order="C")
        if a.dtype.byteorder == ">":
            a = a.astype(a.dtype.newbyteorder("<"))
        kind = dtype_name(a.dtype)
        begin = self._data.tell()
        data = a.reshape(-1).view(np.uint8).data  # the array's memory: no copy
        self.sums[name] = [kind, list(a.shape), _sum(data)]
        try:
            self._data.write(data)
        except OSError as exc:
            raise NumfmtError(f"cannot write {self.path}: {exc.strerror or exc}") from None
        self.header[name] = {
            "dtype": kind,
            "shape": list(a.shape),
            "data_offsets": [begin, self._data.tell()],
        }
        return a.nbytes

    def close(self, metadata: dict[str, str] | None = None) -> Path:
        """Header (with ``metadata``), then the data, into the destination, atomically."""
        self._data.close()
        meta = {str(k): str(v) for k, v in (metadata or {}).items()}
        meta[CHECKSUMS] = json.dumps(self.sums, separators=(",", ":"))
        head = {"__metadata__": meta, **self.header}
        text = json.dumps(head, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)

        def write(f: IO[bytes]) -> None:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            with self._data_path.open("rb") as data:
                shutil.copyfileobj(data, f, 16 << 20)

        return atomic_write(self.path, write, overwrite=self.overwrite)

    def __enter__(self) -> SafetensorsWriter:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._data.close()
        with contextlib.suppress(OSError):
            self._data_path.unlink()


def write_safetensors(
    path: str | Path,
    tensors: dict[str, np.ndarray],
    metadata: dict[str, str] | None = None,
    *,
    overwrite: bool = False,
) -> Path:
    """Write arrays to a safetensors file at once, atomically."""
    with SafetensorsWriter(path, overwrite=overwrite) as out:
        for name, array in tensors.items():
            out.add(name, array)
        return out.close(metadata)
