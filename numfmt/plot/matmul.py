"""Matplotlib figures of lesson 10, inside the matmul (the plot extra): each model's error
against K. Each takes ``ax=None`` and returns the Axes; the numbers come from
``numfmt.lessons.matmul``'s result.
"""

from __future__ import annotations

from typing import Any

from numfmt.plot import _COLOURS, _axes

#: Each model's line: colour, style and marker (the FP8 tensor cores solid, the rest dashed).
_STYLES = {
    "fp32": ("#000000", "--", "o"),
    "bf16-accumulate": (_COLOURS[1], "--", "s"),
    "hopper-fp8": (_COLOURS[0], "-", "^"),
    "hopper-fp8-promote128": (_COLOURS[2], "-", "D"),
    "blackwell-fp8": (_COLOURS[3], "-", "v"),
}
_TITLES = {
    "uniform": "uniform [0, 1) operands: largest relative error",
    "normal": "standard normal operands: largest error / largest |C|",
}
#: DeepSeek-V3's report, section 3.3.2: "nearly 2%" at K = 4096 on H800's FP8 GEMM.
DEEPSEEK = (4096, 0.02)


def error_against_k(result: Any, ax=None, *, dist: str = "uniform", deepseek: bool = True):
    """Each model's error against K on a log-log plot, for ``dist`` operands (``uniform``:
    the largest relative error; ``normal``: the largest error over the largest exact output),
    with the Ks of the language model's linear layers marked where that part ran, and
    DeepSeek-V3's "nearly 2%" at K = 4096 (with ``deepseek``, on uniform operands)."""
    if dist not in _TITLES:
        from numfmt.errors import NumfmtError

        raise NumfmtError(f"dist is 'uniform' or 'normal', not {dist!r}")
    ax = _axes(ax)
    curves = [c for c in result.curves if c.dist == dist]
    for i, c in enumerate(curves):
        colour, line, marker = _STYLES.get(c.model, (_COLOURS[(i + 4) % len(_COLOURS)], ":", "x"))
        # a log axis has no 0: where a model's sum was exact, its line has no point
        points = [(k, e) for k, e in zip(c.ks, c.measure, strict=True) if e > 0]
        label = c.model if len(points) == len(c.ks) else f"{c.model} (no point where exact)"
        same = _same_start(c, curves[:i])
        if same is not None:  # drawn over an earlier line: open markers, so both show
            label += f" (= {same[0]} up to K={same[1]})"
        ax.plot(
            [k for k, _ in points],
            [e for _, e in points],
            line,
            marker=marker,
            color=colour,
            lw=1.6,
            ms=9 if same is not None else 5,
            markerfacecolor="none" if same is not None else colour,
            markeredgewidth=1.4,
            label=label,
        )
    if result.model is not None:
        for i, k in enumerate(sorted(result.model.layer_ks)):
            ax.axvline(
                k,
                color="#888888",
                lw=0.9,
                ls=":",
                label="K of the language model's linear layers" if i == 0 else None,
            )
            ax.annotate(
                f"K={k}",
                (k, 1.0),
                xycoords=("data", "axes fraction"),
                xytext=(2, -3),
                textcoords="offset points",
                ha="left",
                va="top",
                fontsize=7,
                color="#555555",
            )
    if deepseek and dist == "uniform":
        ax.plot(
            [DEEPSEEK[0]],
            [DEEPSEEK[1]],
            "*",
            ms=13,
            color="#a50f15",
            markeredgecolor="black",
            label='DeepSeek-V3 on H800: "nearly 2%"',
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    if result.ks:
        ax.set_xticks(list(result.ks), [str(k) for k in result.ks])
    ax.set_xlabel("K (products summed into each output)")
    ax.set_ylabel("error (log scale)")
    ax.set_title(_TITLES[dist], fontsize=10)
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    return ax


def _same_start(curve: Any, earlier: list) -> tuple[str, int] | None:
    """(an earlier model, the last K) where ``curve`` equals that model's from the first K on
    (hopper-fp8-promote128 is hopper-fp8 until its first promotion), or None."""
    for other in earlier:
        same = 0
        for a, b in zip(curve.measure, other.measure, strict=True):
            if a != b:
                break
            same += 1
        if same >= 2 and same < len(curve.ks):
            return other.model, curve.ks[same - 1]
    return None


__all__ = ["error_against_k"]
