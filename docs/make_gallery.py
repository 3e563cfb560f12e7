"""Write docs/gallery.md: every figure numfmt draws, with the one command that draws it.

python docs/make_gallery.py   # rewrite docs/gallery.md

The page holds the commands only: the site build runs them (docs/hooks/run_pages.py) and
puts each figure under the command that drew it. The model figures are the ones lesson 6
draws on SmolLM2 in the same build.
"""

from __future__ import annotations

from pathlib import Path

DOCS = Path(__file__).resolve().parent
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
        "The range and precision of each format, from FP32 down to FP4.",
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
        "through the rounding (needs the lessons extra: pip install '.[lessons]').",
        "lesson qat",
    ),
]


#: The figures lesson 6 draws: (file name, what it shows).
MODEL_FIGURES = [
    ("pareto.png", "Perplexity against storage bits per weight, a point a recipe."),
    ("sqnr.png", "The SQNR of every quantized layer, a line a recipe."),
    ("histogram.png", "One layer's weights in float and under absmax and zero point."),
]


def page() -> str:
    out = [
        "# Gallery\n",
        "Every figure numfmt draws, each under the one command that drew it when this site",
        "was built. In Python, each plot function takes `ax=None` and returns the Axes it",
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
        ]
    out += [
        "## A model's figures\n",
        "Drawn on SmolLM2-135M by [lesson 6](lesson-llm.md) in the same build:",
        "`numfmt model compare MODEL --recipes ... --text FILE --plots DIR` (or",
        "`numfmt lesson language-model --plots DIR`) draws all three, and",
        "`numfmt model sensitivity MODEL --text FILE --plot FILE` ranks the layers by what",
        "quantizing each alone costs.\n",
    ]
    for name, what in MODEL_FIGURES:
        out += [
            f"{what}\n",
            f'<figure><img src="../run/lesson-llm/{name}" alt="{name}"></figure>\n',
        ]
    return "\n".join(out)


if __name__ == "__main__":
    PAGE.write_text(page())
    print(f"wrote {PAGE}")
