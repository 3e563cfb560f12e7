"""``numfmt plot``: the quantization figures, drawn to files."""

from __future__ import annotations

from pathlib import Path

import click

from numfmt.cli.base import UsageFailure, fail_cleanly, note
from numfmt.cli.quant import check_tensor
from numfmt.errors import NumfmtError
from numfmt.quant.synthetic import DISTRIBUTIONS

# numfmt.plot, the quantization layer and matplotlib load inside the commands that draw

SUFFIXES = (".png", ".svg", ".pdf")


def _output(out: str, force: bool) -> Path:
    p = Path(out)
    if p.suffix.lower() not in SUFFIXES:
        raise NumfmtError(f"{p.name}: draw to a .png, .svg or .pdf file")
    if p.exists() and not force:
        raise NumfmtError(
            f"{p} exists; numfmt does not overwrite files (choose another name or --force)"
        )
    return p


def _pyplot():
    from numfmt._extras import require

    matplotlib = require("matplotlib", "drawing figures")
    matplotlib.use("Agg")  # the command draws to files; the library never picks a backend
    import matplotlib.pyplot as plt

    return plt


def _tensor(path, name, dist, seed):
    if path and dist:
        raise UsageFailure("give a tensor file or --dist, not both")
    if path:
        from numfmt.tensorio import load_tensor

        label, x = load_tensor(path, name)
        check_tensor(label, x)
        return label, x
    from numfmt.quant.synthetic import synthetic

    dist = dist or "normal"
    return dist, synthetic(dist, seed=seed)


def _draw(target: Path, make_axes, label: str | None = None, force: bool = False) -> None:
    """Draw on the Agg backend, title with the data's name, save to a checked path
    atomically (the figure appears whole or not at all)."""
    from numfmt._files import atomic_write

    plt = _pyplot()
    ax = make_axes(_draw_module())
    if label:
        ax.set_title(f"{ax.get_title()}\n({label})", fontsize="medium")
    fmt = target.suffix.lower().lstrip(".")
    try:
        atomic_write(target, lambda f: ax.figure.savefig(f, dpi=130, format=fmt), overwrite=force)
    finally:
        plt.close(ax.figure)
    note(f"wrote {target}")


def _draw_module():
    from numfmt import plot

    return plot


source_options = [
    click.argument(
        "path", required=False, metavar="[TENSOR_FILE]", type=click.Path(dir_okay=False)
    ),
    click.option("--tensor", "-t", "name", help="The tensor to read, when the file holds several."),
    click.option(
        "--dist",
        type=click.Choice(DISTRIBUTIONS),
        help="A synthetic tensor instead of a file (default: normal).",
    ),
    click.option("--seed", default=0, show_default=True, help="Seed of the synthetic tensor."),
]
out_options = [
    click.option(
        "--out",
        "-o",
        required=True,
        type=click.Path(dir_okay=False),
        help="The figure file: .png, .svg or .pdf.",
    ),
    click.option("--force", is_flag=True, help="Replace --out if it exists."),
]


def _with(options):
    def decorate(fn):
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


@click.group()
def plot() -> None:
    """Draw the quantization figures to files (needs matplotlib).

    \b
    Examples:
      numfmt plot error-curve --dist outliers --out error.png
      numfmt plot clipping weights.npy --scheme int4/channel --out clip.png
      numfmt plot grid --dist laplace --scheme int4/asym --out grid.svg
      numfmt plot ranges --out ranges.png
      numfmt plot rel-error --format bf16 --out sawtooth.png
    """


@plot.command("error-curve")
@_with(source_options)
@click.option(
    "--schemes",
    default=",".join(("int{bits}", "int{bits}/asym", "int{bits}/channel", "int{bits}/group:32")),
    show_default=True,
    help="Scheme templates with {bits}, separated by commas.",
)
@click.option("--bits", default="2-8", show_default=True, help="Bit widths: 2-8 or 2,4,8.")
@_with(out_options)
@fail_cleanly
def error_curve(path, name, dist, seed, schemes, bits, out, force) -> None:
    """SQNR against bit width (2 to 8) for several schemes, on a tensor or a distribution."""
    target = _output(out, force)  # before any work: a bad path fails at once
    label, x = _tensor(path, name, dist, seed)
    templates = [s.strip() for s in schemes.split(",") if s.strip()]
    widths = _bits(bits)
    _draw(target, lambda draw: draw.error_curve(x, templates, widths), label, force)


@plot.command("clipping")
@_with(source_options)
@click.option(
    "--scheme",
    "-s",
    "spec",
    default="int4",
    show_default=True,
    help="The scheme, e.g. int4/channel.",
)
@click.option("--ratios", default=100, show_default=True, help="Clip ratios on the curve.")
@_with(out_options)
@fail_cleanly
def clipping(path, name, dist, seed, spec, ratios, out, force) -> None:
    """MSE against clip ratio, with each calibration method's choice marked."""
    target = _output(out, force)  # before any work: a bad path fails at once
    label, x = _tensor(path, name, dist, seed)
    _draw(target, lambda draw: draw.clipping(x, spec, ratios), label, force)


@plot.command("grid")
@_with(source_options)
@click.option("--scheme", "-s", "spec", default="int4", show_default=True, help="The scheme.")
@click.option("--group", type=int, default=None, help="Which group (default: the widest).")
@_with(out_options)
@fail_cleanly
def grid(path, name, dist, seed, spec, group, out, force) -> None:
    """The quantization grid over a histogram of the values: levels, clip range, zero."""
    target = _output(out, force)  # before any work: a bad path fails at once
    label, x = _tensor(path, name, dist, seed)
    _draw(target, lambda draw: draw.grid(x, spec, group), label, force)


@plot.command("ranges")
@click.option(
    "--formats",
    default=None,
    help="Formats, separated by commas (default: fp32 to fp4, int8, int4).",
)
@_with(out_options)
@fail_cleanly
def ranges(formats, out, force) -> None:
    """The dynamic range and precision of each format, side by side."""
    from numfmt.quant.analysis import DEFAULT_RANGE_FORMATS

    names = [f.strip() for f in formats.split(",")] if formats else DEFAULT_RANGE_FORMATS
    _draw(_output(out, force), lambda draw: draw.ranges(names), force=force)


@plot.command("rel-error")
@click.option(
    "--format", "-f", "fmt", required=True, help="A float format: bf16, fp16, fp8_e4m3 ..."
)
@click.option("--binades", default=4, show_default=True, help="How many binades to draw.")
@_with(out_options)
@fail_cleanly
def rel_error(fmt, binades, out, force) -> None:
    """The relative error of rounding into a float format across binades (the sawtooth)."""
    _draw(_output(out, force), lambda draw: draw.rel_error(fmt, binades), force=force)


def _bits(text: str) -> list[int]:
    try:
        if "-" in text:
            a, b = (int(v) for v in text.split("-"))
            widths = list(range(a, b + 1))
        else:
            widths = [int(v) for v in text.split(",")]
    except ValueError:
        raise NumfmtError(f"cannot read bit widths '{text}'; write 2-8 or 2,4,8") from None
    if not widths or min(widths) < 2 or max(widths) > 16:
        raise NumfmtError("bit widths lie between 2 and 16")
    return widths
