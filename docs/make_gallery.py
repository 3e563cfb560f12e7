"""Draw docs/images/gallery/*.png with the commands docs/gallery.md shows, and write the page.

python docs/make_gallery.py   # redraw every figure and rewrite docs/gallery.md

Each figure is drawn by exactly the command printed under it (with the output path the
page uses), so a reader can redraw it.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

from click.testing import CliRunner

from numfmt.cli import main

DOCS = Path(__file__).resolve().parent
FOLDER = DOCS / "images" / "gallery"
PAGE = DOCS / "gallery.md"

#: (file name, title, what it shows, the command's arguments after ``numfmt``).
FIGURES = [
    (
        "error-curve.png",
        "Error against bit width",
        "SQNR against bit width for four int schemes on values with outliers: the "
        "per-tensor grids spend their levels on the outliers until 6 bits, while groups of "
        "32 gain about 6 dB a bit all the way.",
        "plot error-curve --dist outliers",
    ),
    (
        "clipping.png",
        "Error against clipping",
        "Mean square error against the clip ratio of an int4 grid on Laplace values, with "
        "the ratio each calibration method chooses.",
        "plot clipping --dist laplace --scheme int4",
    ),
    (
        "grid.png",
        "A grid over the values",
        "An asymmetric int4 grid over a histogram of the values: where the 16 levels fall.",
        "plot grid --dist laplace --scheme int4/asym",
    ),
    (
        "ranges.png",
        "Range and precision of each format",
        "The range and precision of each format, from FP32 down to FP4 and E8M0.",
        "plot ranges",
    ),
    (
        "rel-error.png",
        "Relative rounding error",
        "The relative error of rounding into bfloat16 across four binades: the sawtooth of "
        "a float grid.",
        "plot rel-error --format bf16",
    ),
    (
        "ptq-vs-qat.png",
        "PTQ against QAT",
        "A digits classifier at 8, 4, 3 and 2 bits: rounded after training against trained "
        "through the rounding (needs numfmt[lessons]).",
        "lesson qat",
    ),
]


def draw() -> None:
    FOLDER.mkdir(parents=True, exist_ok=True)
    runner = CliRunner()
    for name, _, _, command in FIGURES:
        out = FOLDER / name
        if out.exists():
            out.unlink()
        flag = "--plot" if command.startswith("lesson") else "--out"
        result = runner.invoke(main, [*shlex.split(command), flag, str(out)])
        if result.exit_code:
            sys.exit(f"numfmt {command}: {result.output}")


def page() -> str:
    out = [
        "# Gallery\n",
        "The figures numfmt draws without a language model, each with the one command that",
        "drew it; redraw them all with `python docs/make_gallery.py`. The model figures need",
        "a model: `numfmt model compare MODEL --recipes ... --text FILE --plots DIR` draws the",
        "Pareto chart (perplexity against bits per weight), the SQNR of each layer and one",
        "layer's weight histogram, and `numfmt model sensitivity ... --plot FILE` the cost of",
        "each layer. In Python, each plot function takes `ax=None` and returns the Axes it",
        "drew on (`numfmt.plot`).\n",
    ]
    for name, title, what, command in FIGURES:
        flag = "--plot" if command.startswith("lesson") else "--out"
        out += [
            f"## {title}\n",
            f"{what}\n",
            "```console",
            f"$ numfmt {command} {flag} {name}",
            "```\n",
            f"![{what}](images/gallery/{name})\n",
        ]
    return "\n".join(out)


if __name__ == "__main__":
    os.environ.setdefault("MPLBACKEND", "Agg")
    draw()
    PAGE.write_text(page())
    print(f"wrote {PAGE} and {len(FIGURES)} figures in {FOLDER}")
