"""How result objects show themselves in a terminal and a notebook, without knowing how.

Result classes (in the lower layers) inherit :class:`Displayable`; the renderers (in
``numfmt.render``, a higher layer) register a function per class with :func:`renderer`, and
``numfmt.render.load_views`` loads those of a result's layer on its first view: the one import
from here upwards, a plain import that the import test sees. So a result's ``__rich__`` and
``_repr_html_`` work once ``numfmt`` is imported, and the lower layers never import the upper
ones. ``__repr__`` stays the plain dataclass repr.
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable
from typing import Any

_RENDERERS: dict[type, Callable[[Any], Any]] = {}
_HTML_RENDERERS: dict[type, Callable[[Any], str]] = {}


#: Between groups of three digits: a narrow no-break space, as SI and Spanish write
#: 8 000 000 000 (a comma reads as a decimal point in much of the world; ``numfmt._charset``
#: spells it as a plain space where the console cannot print it).
GROUP_SEPARATOR = "\u202f"


def grouped(n: int) -> str:
    """An integer with its digits in groups of three: ``8 000 000 000`` (narrow spaces)."""
    return f"{n:,}".replace(",", GROUP_SEPARATOR)


def byte_size(nbytes: int) -> str:
    """Bytes for people, in decimal units as disks and model cards give them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} B"


def html_renderer(cls: type) -> Callable[[Callable[[Any], str]], Callable[[Any], str]]:
    """Register the function that turns an instance of cls into an HTML string."""

    def register(fn: Callable[[Any], str]) -> Callable[[Any], str]:
        _HTML_RENDERERS[cls] = fn
        return fn

    return register


def renderer(cls: type) -> Callable[[Callable[[Any], Any]], Callable[[Any], Any]]:
    """Register the function that turns an instance of cls into a rich renderable."""

    def register(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
        _RENDERERS[cls] = fn
        return fn

    return register


class Displayable:
    """Mixin: ``__rich__`` and ``_repr_html_`` through the registered renderer; ``to_json``."""

    def to_dict(self) -> dict[str, Any]:  # pragma: no cover - every result defines it
        raise AssertionError("results define to_dict")

    def __rich__(self) -> Any:
        found = _renderer_of(type(self))
        return found(self) if found is not None else repr(self)

    def __str__(self) -> str:
        """The view as plain text, without colour: what ``print`` shows. As wide as the
        terminal standard output is, else 100 columns; in ASCII where its encoding cannot
        print box characters."""
        import shutil
        import sys

        from numfmt._charset import stdout_encoding

        width = 100
        if getattr(sys.stdout, "isatty", lambda: False)():
            width = shutil.get_terminal_size((100, 24)).columns
        return text_view(self, width, stdout_encoding())

    def _repr_html_(self) -> str:
        own = _lookup(type(self), _HTML_RENDERERS, html=True)
        if own is not None:
            return own(self)
        from rich.console import Console

        console = Console(
            record=True,
            file=io.StringIO(),
            width=100,
            color_system="truecolor",
            force_jupyter=False,
        )
        console.print(self)
        return console.export_html(inline_styles=True, code_format="<pre>{code}</pre>")

    def to_json(self, indent: int | None = 2) -> str:
        """``to_dict()`` as strict JSON: NaN and infinities become the strings nan, inf, -inf."""
        import json

        return json.dumps(_jsonable(self.to_dict()), indent=indent, allow_nan=False)


def text_view(result: Any, width: int, encoding: str = "utf-8") -> str:
    """A result's view as plain text ``width`` columns wide, without colour or trailing
    spaces, in characters ``encoding`` can print (ASCII borders and spellings elsewhere)."""
    from rich.console import Console

    from numfmt._charset import EncodedText, printable

    console = Console(
        record=True,
        file=EncodedText(encoding),
        width=width,
        color_system=None,
        highlight=False,
        emoji=False,
        soft_wrap=False,
        force_jupyter=False,  # in a notebook too: text, not a displayed view
    )
    console.print(result)
    text = console.export_text(styles=False)
    return printable("\n".join(line.rstrip() for line in text.splitlines()), encoding)


def _renderer_of(cls: type) -> Callable[[Any], Any] | None:
    """The registered renderer of cls (or of a base), loading its layer's renderers (and rich)
    on the first view rather than on import."""
    return _lookup(cls, _RENDERERS, html=False)


def _lookup(cls: type, registry: dict, *, html: bool) -> Callable[[Any], Any] | None:
    for klass in cls.__mro__:
        if klass in registry:
            return registry[klass]
    # the one import upwards: numfmt.render registers its views of cls's layer on first view
    from numfmt.render import load_views

    load_views(cls.__module__, html=html)
    for klass in cls.__mro__:
        if klass in registry:
            return registry[klass]
    return None


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if obj != obj else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    return obj
