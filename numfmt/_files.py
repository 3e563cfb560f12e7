"""Writing files safely: atomically, never over what a user gave us, with one clear message.

Every file numfmt writes goes through :func:`atomic_path` (or :func:`atomic_write` on it): the bytes
go to a temporary file in the destination's folder, which is renamed over the destination only once
complete (a crash or a full disk leaves the destination as it was). An existing destination is
refused unless the caller says ``overwrite=True``; a destination that is one of the inputs is always
refused.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO

from numfmt.errors import NumfmtError


def check_output(
    path: str | Path,
    *,
    inputs: Iterable[str | Path] = (),
    overwrite: bool = False,
    suffix: str | None = None,
) -> Path:
    """Refuse an output path before any work is done: one of the inputs, an existing file
    (unless overwrite), a folder, the wrong suffix, or a place no file can be written (under
    a file, in a folder without write permission)."""
    p = Path(path)
    for source in inputs:
        s = Path(source)
        if (s.exists() and p.exists() and os.path.samefile(s, p)) or _same(s, p):
            raise NumfmtError(f"{p} is the input file; numfmt never writes over its input")
    if p.is_dir():
        raise NumfmtError(f"{p} is a folder; give a file name")
    if suffix is not None and p.suffix != suffix:
        raise NumfmtError(f"{p.name}: the output must end in {suffix}")
    if p.exists() and not overwrite:
        raise NumfmtError(f"{p} exists; numfmt does not overwrite files (choose another name)")
    _check_folder(p)
    return p


def _check_folder(p: Path) -> None:
    """Refuse a destination whose folder can be neither made nor written: the nearest folder
    on its path that exists must be a folder, and writable (missing ones are made)."""
    folder = p.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise NumfmtError(f"cannot write {p}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise NumfmtError(f"cannot write {p}: the folder {folder} is not writable")


def _same(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _new_file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give a new file: 0666 less the umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to (for writers that open files
    themselves); renamed over ``path`` when the block completes, removed otherwise (an
    error, a full disk, Ctrl-C): no half file under the destination's name.

    Raises:
        NumfmtError: the destination exists (without overwrite), or cannot be written (the
            message names the reason: a missing folder, no permission, a full disk).
    """
    p = check_output(path, overwrite=overwrite)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
        os.close(fd)
    except OSError as exc:
        raise NumfmtError(f"cannot write {p}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _new_file_mode())  # mkstemp's 0600 would hide the file from others
        if not overwrite and p.exists():
            raise NumfmtError(f"{p} appeared while writing; numfmt does not overwrite files")
        os.replace(tmp, p)
    except OSError as exc:
        raise NumfmtError(f"cannot write {p}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def atomic_write(
    path: str | Path, write: Callable[[IO[bytes]], None], *, overwrite: bool = False
) -> Path:
    """Write a file through ``write(handle)`` into a temporary file, then rename it into place
    (:func:`atomic_path`).

    Raises:
        NumfmtError: the destination exists (without overwrite), or cannot be written (the
            message names the reason: a missing folder, no permission, a full disk).
    """
    p = Path(path)
    with atomic_path(p, overwrite=overwrite) as tmp:
        try:
            with tmp.open("wb") as handle:
                write(handle)
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise NumfmtError(f"cannot write {p}: {exc.strerror or exc}") from None
    return p
