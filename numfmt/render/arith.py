"""Views of arithmetic in a format: a summation in several orders, a calculation worked
through step by step."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import renderer
from numfmt.arith.sums import SumResult
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL


def _g(x: float, digits: int = 8) -> str:
    return f"{x:.{digits}g}"


@renderer(SumResult)
def render_sum(r: SumResult) -> Group:
    head = Text()
    head.append(f"{r.count:,} terms summed in {r.format.name}", style="bold")
    head.append(f", rounding {r.rounding.value}; exact sum {_g(float(r.exact), 12)}")
    table = Table(box=None, pad_edge=False)
    for name in ("order", "sum", "error", "relative error"):
        table.add_column(name, justify="left" if name == "order" else "right")
    for order, value in r.values.items():
        table.add_row(order, _g(value), _g(r.error(order), 4), _g(r.relative_error(order), 3))
    parts: list = [head, fit(table)]
    if r.stall_index is not None:
        parts.append(
            Text(
                f"the sequential sum stopped growing at term {r.stall_index + 1:,}: "
                f"{_g(r.stall_value)} + the next term rounds back to {_g(r.stall_value)}",
                style=LABEL,
            )
        )
    raised = r.flags.raised()
    if raised:
        parts.append(Text(f"flags: {r.flags}", style=LABEL))
    return Group(*parts)
