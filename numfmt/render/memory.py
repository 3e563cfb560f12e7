"""The view of a memory estimate (``numfmt memory``), apart from the model layer's other views:
answering a parameter count loads no torch."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from numfmt._display import renderer
from numfmt.eval.memory import MemoryEstimate
from numfmt.render.quant import LABEL


def size(nbytes: int) -> str:
    """Bytes for people, in decimal units as disks and model cards give them."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes} B"


@renderer(MemoryEstimate)
def render_memory(m: MemoryEstimate) -> Group:
    line = Text()
    line.append(f"{m.parameters:,} parameters", style="bold")
    line.append(f" in {m.what}: {m.bits_per_weight:.4g} bits each = ")
    line.append(size(m.nbytes), style="bold")
    line.append(f" ({m.gibibytes:.3g} GiB)")
    parts: list = [line]
    if m.note:
        parts.append(Text(m.note, style=LABEL))
    return Group(*parts)
