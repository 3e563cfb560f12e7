"""The view of a memory estimate (``numfmt memory``), apart from the model layer's other views:
answering a parameter count loads no torch."""

from __future__ import annotations

from rich.console import Group
from rich.text import Text

from numfmt._display import byte_size as size
from numfmt._display import grouped, renderer
from numfmt.eval.memory import MemoryEstimate
from numfmt.render.quant import LABEL


@renderer(MemoryEstimate)
def render_memory(m: MemoryEstimate) -> Group:
    line = Text()
    line.append(f"{grouped(m.parameters)} parameters", style="bold")
    line.append(f" in {m.what}: {m.bits_per_weight:.4g} bits each = ")
    line.append(size(m.nbytes), style="bold")
    line.append(f" ({m.gibibytes:.3g} GiB)")
    parts: list = [line]
    if m.note:
        parts.append(Text(m.note, style=LABEL))
    return Group(*parts)
