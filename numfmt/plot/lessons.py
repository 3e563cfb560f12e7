"""Matplotlib figures of the lessons (the plot extra): accuracy against bits
for PTQ and QAT, and the training curves behind them. Each takes ``ax=None`` and returns the
Axes; the numbers come from ``numfmt.lessons``' results.
"""

from __future__ import annotations

from typing import Any

from numfmt.plot import _COLOURS, _axes

_STYLES = {
    "ptq-minmax": ("--", "o"),
    "ptq-mse": ("--", "s"),
    "qat": ("-", "o"),
    "qat-lsq": ("-", "D"),
}


def accuracy_vs_bits(result: Any, ax=None):
    """Test accuracy against weight bits, a line per method (PTQ dashed, QAT solid), the
    float network as a grey line: where rounding after training breaks and QAT holds."""
    ax = _axes(ax)
    bits = result.bits
    base = result.accuracy("float")
    ax.axhline(base, color="#888888", lw=1, label=f"float32 ({base:.1%})")
    for i, method in enumerate(m for m in result.methods if m != "float"):
        line, marker = _STYLES.get(method, ("-", "o"))
        ax.plot(
            range(len(bits)),
            [result.accuracy(method, b) for b in bits],
            line,
            marker=marker,
            color=_COLOURS[i % len(_COLOURS)],
            label=method,
        )
    ax.set_xticks(range(len(bits)), [f"int{b}" for b in bits])  # fewer bits to the right
    ax.set_xlabel("weight bits (per output channel)")
    ax.set_ylabel("test accuracy")
    ax.yaxis.set_major_formatter(_percent())
    ax.set_ylim(max(0.0, min(r.accuracy for r in result.rows) - 0.05), 1.0)
    ax.set_title("digits MLP: PTQ against QAT")
    ax.legend(fontsize=8, loc="lower left")
    ax.grid(alpha=0.3)
    return ax


def training_curves(result: Any, ax=None, *, metric: str = "accuracy"):
    """Test accuracy (or mean training ``loss``) per epoch: the float training, then each
    QAT fine-tune from its last epoch on, a colour per bit width (``qat`` dashed, ``qat-lsq``
    solid)."""
    if metric not in ("accuracy", "loss"):
        from numfmt.errors import NumfmtError

        raise NumfmtError(f"metric is 'accuracy' or 'loss', not {metric!r}")
    ax = _axes(ax)
    column = 1 if metric == "accuracy" else 0
    base = result.curves["float"]
    ax.plot(range(1, len(base) + 1), [p[column] for p in base], color="#888888", label="float")
    start = len(base)
    colour = {b: _COLOURS[i % len(_COLOURS)] for i, b in enumerate(result.bits)}
    for key, points in result.curves.items():
        if key == "float":
            continue
        method, width = key.split(" int")
        ax.plot(
            range(start + 1, start + len(points) + 1),
            [p[column] for p in points],
            "-" if method == "qat-lsq" else "--",
            color=colour.get(int(width), "#000000"),
            label=key,
        )
    ax.axvline(start + 0.5, color="#cccccc", lw=1)
    ax.set_xlabel("epoch (QAT starts from the float weights)")
    if metric == "accuracy":
        ax.set_ylabel("test accuracy")
        ax.yaxis.set_major_formatter(_percent())
    else:
        ax.set_ylabel("mean training loss")
        ax.set_yscale("log")
    ax.set_title("training curves")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    return ax


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(1.0, decimals=0)
