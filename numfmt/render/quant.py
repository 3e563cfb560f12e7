"""Rich renderables for the quantization layer's results (tables; they compute nothing)."""

from __future__ import annotations

import math

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import grouped, renderer
from numfmt.quant.analysis import Curves, FormatRanges, GridView
from numfmt.quant.report import ErrorReport, SchemeComparison
from numfmt.quant.tensor import QuantizedTensor, QuantizeResult
from numfmt.render.fit import fit

LABEL = "dim"
_ROWS = (
    ("bits per value", "bits_per_value", "{:.4g}"),
    ("MSE", "mse", "{:.4g}"),
    ("RMSE", "rmse", "{:.4g}"),
    ("MAE", "mae", "{:.4g}"),
    ("max |error|", "max_abs_error", "{:.4g}"),
    ("SQNR", "sqnr_db", "{:.2f} dB"),
    ("cosine", "cosine", "{:.6f}"),
    ("clipped", "clipped_fraction", "{:.4%}"),
    ("error from clipping", "clip_share", "{:.1%}"),
    ("error from rounding", "rounding_share", "{:.1%}"),
)


def number(value, fmt: str) -> str:
    """A metric for people: '-' when absent, 'inf dB' for no noise."""
    if value is None:
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return ("" if value > 0 else "-") + "inf" + (" dB" if "dB" in fmt else "")
    return fmt.format(value)


@renderer(ErrorReport)
def render_report(r: ErrorReport) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=LABEL)
    grid.add_column(justify="right")
    for label, attr, fmt in _ROWS:
        grid.add_row(label, number(getattr(r, attr), fmt))
    parts: list = [Text(f"{r.scheme or 'quantized'} - {grouped(r.n)} values", style="bold"), grid]
    if r.per_group:
        t = Table(title="per group", title_justify="left", box=None)
        for col in ("", "groups", "min", "median", "max"):
            t.add_column(col, justify="right" if col else "left")
        for key, label, fmt in (
            ("sqnr_db", "SQNR", "{:.2f} dB"),
            ("mse", "MSE", "{:.3g}"),
            ("clipped_fraction", "clipped", "{:.3%}"),
        ):
            d = r.to_dict()["per_group"][key]
            t.add_row(
                label, str(d["groups"]), *(number(d[k], fmt) for k in ("min", "median", "max"))
            )
        parts.append(fit(t))
    return Group(*parts)


@renderer(SchemeComparison)
def render_comparison(c: SchemeComparison):
    t = Table(title=f"tensor of shape {tuple(c.shape)}", title_justify="left")
    t.add_column("scheme")
    for label, _, _ in _ROWS[:1] + _ROWS[1:2] + _ROWS[5:9]:
        t.add_column(label, justify="right")
    best = c.best("sqnr_db") if c.rows else None
    for r in c.rows:
        cells = [number(getattr(r, a), f) for _, a, f in _ROWS[:1] + _ROWS[1:2] + _ROWS[5:9]]
        t.add_row(Text(r.scheme or "", style="bold" if r is best else ""), *cells)
    return fit(t)


@renderer(QuantizedTensor)
def render_tensor(q: QuantizedTensor) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=LABEL)
    grid.add_column()
    d = q.to_dict()
    grid.add_row("scheme", d["scheme"])
    grid.add_row("shape", f"{tuple(d['shape'])}" + (f"  {d['dtype']}" if d["dtype"] else ""))
    held = d["code_dtype"]
    width = d["code_bits"]
    codes = f"{width}-bit" + ("" if held.endswith(str(width)) else f" (held in {held}")
    if not held.endswith(str(width)):
        codes += ", packed when saved)" if width % 8 else ")"
    grid.add_row("codes", codes)
    grid.add_row("groups", f"{grouped(d['qparams']['groups'])}")
    grid.add_row("bytes", f"{grouped(d['nbytes'])}  ({d['bits_per_value']:.4g} bits per value)")
    qp = d["qparams"]
    grid.add_row("scale", _spread_text(qp["scale"], d["qparams"]["groups"]))
    if qp["zero_point"] is not None:
        grid.add_row("zero point", _spread_text(qp["zero_point"], qp["groups"], "{:.0f}"))
    if qp["minimum"] is not None:
        grid.add_row("minimum", _spread_text(qp["minimum"], qp["groups"]))
    if qp["tensor_scale"] is not None:
        grid.add_row("tensor scale", f"{qp['tensor_scale']:.6g}")
    if qp["saturated_scales"]:
        grid.add_row(
            "saturated", Text(f"{grouped(qp['saturated_scales'])} scales", style="bold red")
        )
    return Group(Text("quantized tensor", style="bold"), grid)


def _spread_text(s: dict, groups: int, fmt: str = "{:.6g}") -> str:
    if groups <= 1 or s["min"] == s["max"]:
        return fmt.format(s["min"])
    return f"{fmt.format(s['min'])} .. {fmt.format(s['max'])}  (mean {fmt.format(s['mean'])})"


@renderer(QuantizeResult)
def render_quantize_result(r: QuantizeResult) -> Group:
    parts: list = [Text(f"tensor '{r.name}'", style="bold"), r.quantized, r.report]
    if r.samples:
        t = Table(title="a few elements, worked through", title_justify="left", box=None)
        has_zero = any("zero_point" in row for row in r.samples)
        has_min = any("minimum" in row for row in r.samples)
        for col in (
            "index",
            "x",
            "code",
            "scale",
            *(["zero point"] * has_zero),
            *(["minimum"] * has_min),
            "value",
            "error",
        ):
            t.add_column(col, justify="left" if col == "index" else "right")
        for row in r.samples:
            if row.get("omitted"):  # NaN or infinity left out by nan_policy="omit"
                blanks = ["-"] * (3 + has_zero + has_min)
                t.add_row(_index(row), f"{row['x']:.6g}", *blanks, Text("omitted", style="dim"))
                continue
            cells = [
                _index(row),
                f"{row['x']:.6g}",
                str(row["code"]),
                f"{row['scale']:.6g}",
            ]
            if has_zero:
                cells.append(str(row["zero_point"]))
            if has_min:
                cells.append(f"{row['minimum']:.6g}")
            cells += [f"{row['value']:.6g}", f"{row['value'] - row['x']:+.3g}"]
            t.add_row(*cells)
        parts.append(fit(t))
    return Group(*parts)


def _index(row: dict) -> str:
    return "[" + ", ".join(map(str, row["index"])) + "]"


@renderer(Curves)
def render_curves(c: Curves) -> Group:
    t = Table(title=c.title, title_justify="left")
    names = list(c.series)
    t.add_column(c.x_label)
    for name in names:
        t.add_column(name, justify="right")
    xs = c.series[names[0]][0]
    step = max(1, len(xs) // 20)
    for i in range(0, len(xs), step):
        t.add_row(f"{xs[i]:.4g}", *(f"{c.series[n][1][i]:.4g}" for n in names))
    parts: list = [fit(t)]
    if c.marks:
        m = Table(title="chosen by each method", title_justify="left", box=None)
        m.add_column("method")
        m.add_column(c.x_label, justify="right")
        m.add_column(c.y_label, justify="right")
        for name, (x, y) in c.marks.items():
            m.add_row(name, f"{x:.4g}", f"{y:.4g}")
        parts.append(fit(m))
    return Group(*parts)


@renderer(GridView)
def render_grid(g: GridView) -> Group:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style=LABEL)
    grid.add_column()
    grid.add_row("scheme", g.scheme)
    if g.group is not None:
        grid.add_row("group", str(g.group))
    grid.add_row("chosen range", f"{g.lo:.4g} .. {g.hi:.4g}")
    grid.add_row("levels", f"{len(g.levels)}: {g.levels[0]:.4g} .. {g.levels[-1]:.4g}")
    if g.zero_point is not None:
        grid.add_row("zero point", f"code {g.zero_point} stands for 0")
    grid.add_row("values", f"{grouped(int(g.counts.sum()))} in {len(g.counts)} bins")
    return Group(Text("quantization grid", style="bold"), grid)


@renderer(FormatRanges)
def render_ranges(f: FormatRanges):
    t = Table(title="range and precision", title_justify="left")
    for col in ("format", "bits", "smallest", "min normal", "max", "stored bits", "precision"):
        t.add_column(col, justify="left" if col == "format" else "right")
    for r in f.rows:
        t.add_row(
            r["format"],
            str(r["bits"]),
            f"2^{r['log2_smallest']:.4g}",
            f"2^{r['log2_min_normal']:.4g}",
            f"2^{r['log2_max']:.4g}",
            str(r["stored_bits"]),
            str(r["precision_bits"])
            + (" (with the hidden 1)" if r["precision_bits"] != r["stored_bits"] else ""),
        )
    return fit(t, wrap=("precision",))
