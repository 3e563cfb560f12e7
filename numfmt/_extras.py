"""Optional libraries: which of numfmt's extras brings each, and the pip line that installs it
where numfmt is installed.

numfmt's core (formats, quantization on numpy) needs none of them. A function that does
imports it through :func:`require`, which raises :class:`~numfmt.errors.MissingDependency`
with one line to act on; the command line prints that line (or makes the same line from any
other missing import) and exits with status 2::

    numfmt lesson qat needs scikit-learn, which is not installed: pip install -e '~/numfmt[lessons]'
"""

from __future__ import annotations

import importlib
import json
import re
from importlib import metadata
from types import ModuleType
from urllib.parse import urlparse
from urllib.request import url2pathname

#: numfmt's distribution name (``numfmt`` on the package index is another project's).
DISTRIBUTION = "numfmt-sim"

#: An optional library's top-level module: what people call it, and the extra that brings it.
EXTRAS = {
    "torch": ("PyTorch", "torch"),
    "matplotlib": ("matplotlib", "plot"),
    "sklearn": ("scikit-learn", "lessons"),
    "transformers": ("transformers", "models"),
    "accelerate": ("accelerate", "models"),
    "gguf": ("gguf", "models"),
}

#: PyTorch's CPU build, which a machine without a GPU wants before any extra that brings torch.
CPU_TORCH = "pip install torch --index-url https://download.pytorch.org/whl/cpu"

#: The modules each extra brings (pyproject.toml's optional dependencies; a test holds them).
BRINGS = {
    "torch": {"torch"},
    "plot": {"matplotlib"},
    "lessons": {"torch", "sklearn"},
    "models": {"torch", "transformers", "gguf", "accelerate"},
}


def require(module: str, purpose: str) -> ModuleType:
    """``import module``, or one line that says which extra brings it.

    Args:
        module: the module to import (``"transformers"``, ``"accelerate.utils"``).
        purpose: what needs it, as the start of a sentence ("loading models").

    Raises:
        MissingDependency: the module (or one it needs) is not installed.
    """
    from numfmt.errors import MissingDependency

    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        message = missing_message(exc, purpose)
        if message is None:
            raise
        error = MissingDependency(message)
        error.name = exc.name
        raise error from None


def missing_message(
    exc: ModuleNotFoundError, who: str = "numfmt", extra: str | None = None
) -> str | None:
    """The one line a person reads when ``who`` (a command, or what a function does) needs a
    library that is not installed, or None when the missing module is numfmt's own (a bug,
    not a missing extra).

    ``extra``: the extra that ``who`` needs as a whole (a lesson needs torch *and*
    scikit-learn: installing ``lessons`` brings both at once); used when it brings the
    missing module, else the module's own extra."""
    name = (exc.name or "").split(".")[0]
    if not name or name == "numfmt":
        return None
    what, own = EXTRAS.get(name, (name, None))
    if own is None:
        return f"{who} needs the Python module '{name}', which is not installed"
    chosen = extra if name in BRINGS.get(extra or "", ()) else own
    assert chosen is not None  # an extra that brings name is not None
    line = f"{who} needs {what}, which is not installed: {install_line(chosen)}"
    if "torch" in BRINGS[chosen]:
        line += f" (without a GPU, first {CPU_TORCH}: several GB smaller)"
    return line


def install_line(extra: str) -> str:
    """The pip command that adds ``extra`` to this numfmt: from the folder it was installed
    from when pip recorded one (``pip install -e '/path/numfmt[lessons]'``), else the extra's
    own requirements by name (``pip install 'torch>=2.2' 'scikit-learn>=1.3'``)."""
    folder, editable = _installed_from()
    if folder is not None:
        return f"pip install {'-e ' if editable else ''}'{folder}[{extra}]'"
    return "pip install " + " ".join(f"'{r}'" for r in requirements(extra))


def requirements(extra: str) -> list[str]:
    """The packages ``extra`` brings, with numfmt's own extras inside it expanded."""
    try:
        declared = metadata.requires(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        declared = []
    found: list[str] = []
    for line in declared:
        spec, _, marker = line.partition(";")
        if not re.search(rf"extra\s*==\s*['\"]{re.escape(extra)}['\"]", marker):
            continue
        own = re.fullmatch(rf"\s*{DISTRIBUTION}\[([\w,\s-]+)\]\s*", spec)
        if own:  # numfmt-sim[torch] inside the lessons extra
            for inner in own.group(1).split(","):
                found += [r for r in requirements(inner.strip()) if r not in found]
        elif spec.strip() not in found:
            found.append(spec.strip())
    return found or [_package_of(extra)]


def _package_of(extra: str) -> str:
    """Where numfmt's metadata cannot be read: the package an extra is named for."""
    names = {what for what, e in EXTRAS.values() if e == extra}
    return {"PyTorch": "torch"}.get(min(names), min(names)) if names else extra


def _installed_from() -> tuple[str | None, bool]:
    """The local folder pip installed numfmt from (PEP 610's direct_url.json), and whether
    editable; (None, False) for an install from an index or a wheel file."""
    # the first record with a direct_url.json: a checkout's own numfmt_sim.egg-info (on
    # sys.path when Python runs in that folder) has none
    found = (d.read_text("direct_url.json") for d in metadata.distributions(name=DISTRIBUTION))
    text = next((t for t in found if t), None)
    if text is None:
        return None, False
    try:
        direct = json.loads(text)
    except ValueError:
        return None, False
    url = direct.get("url", "")
    if not url.startswith("file:") or "dir_info" not in direct:
        return None, False
    folder = url2pathname(urlparse(url).path)
    return folder, bool(direct["dir_info"].get("editable"))
