"""A lesson's key results as tables, for ``numfmt lesson NAME`` in a terminal.

Each builder computes its tables with numfmt itself (nothing here is typed in by hand): the
codes of 3 bits, the widths and their ranges, overflow, a model's memory (lesson 1); the
layouts of the float formats and the same numbers in FP16 and BF16 (lesson 2); the two
mappings worked on a small vector and the schemes on a tensor with outliers (lesson 3); and
a layer's weight error against its output error under each method (lesson 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from numfmt._display import Displayable


@dataclass(frozen=True)
class Table:
    """One table of a lesson: a title, its columns, its rows (numbers stay numbers), a note."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows],
            "note": self.note,
        }

    def column(self, name: str) -> list[Any]:
        """The values of one column, top to bottom."""
        i = self.columns.index(name)
        return [row[i] for row in self.rows]


@dataclass(frozen=True, eq=False)
class LessonSummary(Displayable):
    """A lesson's key results: its tables, and the page that explains them."""

    name: str
    title: str
    page: str
    tables: tuple[Table, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "lesson": self.name,
            "title": self.title,
            "page": self.page,
            "tables": [t.to_dict() for t in self.tables],
        }

    def table(self, title_start: str) -> Table:
        """The table whose title starts with ``title_start``."""
        return next(t for t in self.tables if t.title.startswith(title_start))


def _lesson(name: str) -> tuple[str, str]:
    from numfmt.lessons.catalog import LESSONS

    found = next(lesson for lesson in LESSONS if lesson.name == name)
    return found.title, found.page


def bits() -> LessonSummary:
    """Lesson 1: 3 bits, the integer widths, overflow, and an 8B model's memory."""
    from numfmt.eval.memory import estimate
    from numfmt.formats import decode, encode, get_format

    codes = tuple(
        (code, format(code, "03b"), int(decode(code, "uint3")), int(decode(code, "int3")))
        for code in range(8)
    )
    widths = []
    for n in (8, 16, 32, 64):
        s, u = get_format(f"int{n}"), get_format(f"uint{n}")
        widths.append((n, 2**n, int(u.max_value), int(s.min_value), int(s.max_value)))
    overflow = []
    for value, fmt in ((128, "int8"), (-129, "int8"), (300, "uint8")):
        wrapped = int(decode(int(encode(value, fmt, overflow="wrap")), fmt))
        saturated = int(decode(int(encode(value, fmt, overflow="saturate")), fmt))
        overflow.append((value, fmt, wrapped, saturated))
    memory = tuple(
        (fmt, bits_, estimate(8e9, fmt).gigabytes)
        for fmt, bits_ in (("fp32", 32), ("bf16", 16), ("int8", 8), ("int4", 4))
    )
    title, page = _lesson("bits")
    return LessonSummary(
        "bits",
        title,
        page,
        (
            Table(
                "3 bits hold 2^3 = 8 codes",
                ("code", "bits", "unsigned", "two's complement"),
                codes,
                "Two's complement gives the top bit the weight -4: 100 is -4, 111 is -1.",
            ),
            Table(
                "The usual widths",
                ("bits", "codes", "unsigned max", "signed min", "signed max"),
                tuple(widths),
            ),
            Table(
                "Overflow: a value the width cannot hold",
                ("value", "format", "wraps to", "saturates to"),
                tuple(overflow),
                "Integer hardware wraps (the bits that do not fit are dropped); quantization "
                "saturates (clips to the largest code).",
            ),
            Table(
                "An 8B-parameter model's weights",
                ("format", "bits", "GB"),
                memory,
                "Parameters x bits / 8: the weights alone, before activations and caches.",
            ),
        ),
    )


#: The float formats lesson 2 lays side by side.
FLOATS = ("fp32", "fp16", "bf16", "fp8_e4m3", "fp8_e5m2", "fp6_e2m3", "fp6_e3m2", "fp4", "e8m0")


def floats() -> LessonSummary:
    """Lesson 2: the float layouts, and the same numbers in FP16 and BF16."""
    from numfmt.formats import FloatFormat, get_format
    from numfmt.formats.explain import show

    layouts = []
    for name in FLOATS:
        f = cast(FloatFormat, get_format(name))  # FLOATS are floats
        layouts.append(
            (
                name,
                f.bits,
                f.exponent_bits,
                f.mantissa_bits,
                f.bias,
                float(f.max_value),
                float(f.min_normal),
                float(f.epsilon) if f.mantissa_bits else None,
                "yes" if f.has_inf else "no",
                "yes" if f.has_nan else "no",
            )
        )
    same = []
    for value in ("0.1", "3.14", "70000", "1e-6"):
        row: list[Any] = [value]
        for fmt in ("fp16", "bf16"):
            r = show(value, fmt)
            assert r.exact_input is not None and r.stored is not None  # ieee overflow: stored
            exact = r.exact_input.fraction
            if r.stored.is_finite:
                stored = r.stored.fraction
                row += [float(stored), float(abs(stored - exact) / abs(exact))]
            else:
                row += [r.stored.kind, None]
        same.append(tuple(row))
    title, page = _lesson("floats")
    return LessonSummary(
        "floats",
        title,
        page,
        (
            Table(
                "Layouts",
                (
                    "format",
                    "bits",
                    "exp",
                    "man",
                    "bias",
                    "max",
                    "min normal",
                    "epsilon",
                    "inf",
                    "NaN",
                ),
                tuple(layouts),
                "exp and man: the bits of exponent and mantissa (every format has one sign bit "
                "but e8m0, which has none). value = (-1)^sign x 2^(exponent - bias) x "
                "1.mantissa; epsilon is the gap above 1, 2^-man.",
            ),
            Table(
                "The same numbers in FP16 and BF16",
                ("value", "fp16", "fp16 rel. error", "bf16", "bf16 rel. error"),
                tuple(same),
                "FP16 has more mantissa (precision), BF16 more exponent (range): 70000 "
                "overflows FP16 and fits BF16, coarsely.",
            ),
        ),
    )


def quantization() -> LessonSummary:
    """Lesson 3: the two mappings worked on small vectors, and schemes on a tensor."""
    import numpy as np

    from numfmt.quant import choose_qparams, compare_schemes, dequantize, quantize
    from numfmt.quant.synthetic import synthetic

    tables = []
    for scheme, values, note in (
        (
            "int8/asym",
            [-1.5, -0.5, 0.0, 0.5, 3.0],
            "beta = min, alpha = max: s = (alpha - beta) / 255, z = round(-beta / s), "
            "q = round(x / s) + z.",
        ),
        (
            "int8",
            [-1.2, -0.5, 0.0, 0.4, 3.0],
            "alpha = max |x|: s = alpha / 127, q = round(x / s), no zero point.",
        ),
    ):
        x = np.array(values)
        qp = choose_qparams(x, scheme)
        codes = quantize(x, qp)
        back = dequantize(codes, qp)
        s = float(np.asarray(qp.scale).reshape(-1)[0])
        z = None if qp.zero_point is None else int(np.asarray(qp.zero_point).reshape(-1)[0])
        rows = tuple(
            (float(v), int(c), float(b), float(b - v))
            for v, c, b in zip(x, codes, back, strict=True)
        )
        mapping = "Asymmetric" if z is not None else "Symmetric"
        tables.append(
            Table(
                f"{mapping} ({scheme}): scale {s:.6g}" + (f", zero point {z}" if z else ""),
                ("x", "code", "back", "error"),
                rows,
                note,
            )
        )
    tensor = synthetic("outliers", (64, 576), seed=0)
    schemes = [
        "int8",
        "int4",
        "int4/channel",
        "int4/group:128",
        "int4/mse",
        "mxfp4",
        "nvfp4",
        "nf4",
    ]
    comparison = compare_schemes(tensor, schemes)
    tables.append(
        Table(
            "Schemes on a 64 x 576 tensor with outliers",
            ("scheme", "bits/value", "SQNR dB", "clipped"),
            tuple(
                (str(r.scheme), r.bits_per_value, r.sqnr_db, r.clipped_fraction)
                for r in comparison.rows
            ),
            "Bits per value count the scales. About 6 dB a bit; groups and searched ranges "
            "buy back what outliers cost one scale per tensor.",
        )
    )
    title, page = _lesson("quantization")
    return LessonSummary("quantization", title, page, tuple(tables))


def beyond_rtn(seed: int = 0) -> LessonSummary:
    """Lesson 7: one layer (64 x 128, correlated inputs of very different sizes) at 3 bits
    per output channel: the weights' squared error against the output's, by method."""
    import torch

    from numfmt.nn.algorithms.gptq import gptq_weight
    from numfmt.nn.algorithms.importance import output_qparams, weighted_qparams
    from numfmt.quant import choose_qparams, dequantize, quantize

    g = torch.Generator().manual_seed(seed)
    w = torch.randn(64, 128, generator=g)
    mix = torch.randn(128, 128, generator=g) / 8
    noise = 0.3 * torch.randn(4096, 128, generator=g)
    x = (torch.randn(4096, 128, generator=g) @ mix + noise) * torch.logspace(-1, 1, 128)
    x = x.double()
    h = 2 * x.T @ x / len(x)

    def errors(q: Any) -> tuple[float, float]:
        d = q.double() - w.double()
        return float((d**2).sum()), float(torch.trace(d @ h @ d.T))

    def rounded(qp: Any) -> Any:
        return dequantize(quantize(w, qp), qp)

    scheme = "int3/channel"
    methods = [
        ("round to nearest, min-max ranges", rounded(choose_qparams(w, scheme))),
        ("round to nearest, weight-MSE ranges", rounded(choose_qparams(w, scheme + "/mse"))),
        (
            "imatrix: ranges weighted by the inputs",
            rounded(weighted_qparams(w, torch.diagonal(h), scheme)),
        ),
        ("output-mse: ranges by the output's error", rounded(output_qparams(w, h, scheme))),
        ("GPTQ (act-order)", gptq_weight(w, h, scheme, act_order=True).dequantize()),
        (
            "GPTQ, weighted ranges",
            gptq_weight(w, h, scheme, act_order=True, weighted_ranges=True).dequantize(),
        ),
    ]
    rows = tuple((name, *errors(q)) for name, q in methods)
    title, page = _lesson("beyond-rtn")
    return LessonSummary(
        "beyond-rtn",
        title,
        page,
        (
            Table(
                "Weight error against output error (one layer, int3 per output channel)",
                ("method", "weight error", "output error"),
                rows,
                "weight error |W - Q|^2; output error tr((W - Q) H (W - Q)^T) with H = 2 X^T X / n "
                "on 4,096 correlated inputs. Lowering the first does not lower the second.",
            ),
        ),
    )


def arithmetic() -> LessonSummary:
    """Lesson 8: 0.1 + 0.2 in three formats, association, cancellation, long sums in three
    orders, what np.sum does, and directed rounding as bounds."""
    import numpy as np

    import numfmt.arith as arith
    from numfmt.arith.calc import calc

    point = []
    for fmt in ("fp16", "bf16", "fp32"):
        c = calc("0.1 + 0.2", fmt)
        a, b = (_stored(n) for n in c.numbers)
        point.append((fmt, a, b, c.value, c.value - 0.3, c.steps[0].decision.split(":")[0]))
    left, right = calc("(0.5 + 512) + 512.5", "fp16"), calc("0.5 + (512 + 512.5)", "fp16")
    cancel = []
    for fmt in ("bf16", "fp16"):
        c = calc("1.01 - 1", fmt)
        got = c.value
        cancel.append((fmt, _stored(c.numbers[0]), got, abs(got - 0.01) / 0.01))
    long_sums = []
    for label, terms in (("1/k, k = 1..3000", 1 / np.arange(1, 3001)), ("0.1, 10,000 times", None)):
        for fmt in ("fp16", "bf16"):
            x = terms
            if x is None:
                x = np.full(10_000, float(arith.round(0.1, fmt)))
            r = arith.summation(x, fmt, orders=("sequential", "pairwise", "kahan"))
            stall = None if r.stall_index is None else r.stall_index + 1
            long_sums.append((label, fmt, float(r.exact), *(r.values[o] for o in r.values), stall))
    h = np.full(10_000, 0.1, dtype=np.float16)
    numpy_sum = float(np.sum(h))
    in_fp16 = float(arith.sum(h, "fp16"))
    exact = float(arith.exact_sum(h))
    bounds = []
    for expression in ("1 / 3", "sqrt(2)", "0.1 * 3"):
        down = calc(expression, "bf16", rounding="down").value
        up = calc(expression, "bf16", rounding="up").value
        bounds.append((expression, down, up, up - down))
    title, page = _lesson("arithmetic")
    return LessonSummary(
        "arithmetic",
        title,
        page,
        (
            Table(
                "0.1 + 0.2",
                ("format", "0.1 stored", "0.2 stored", "sum", "sum - 0.3", "rounding"),
                tuple(point),
                "Each number is rounded into the format, and then their exact sum once more.",
            ),
            Table(
                "Addition is not associative (fp16)",
                ("expression", "result"),
                ((left.expression, left.value), (right.expression, right.value)),
                "512 + 512.5 = 1024.5 is a tie in fp16 and goes to the even 1024; 0.5 + 1024 "
                "is a tie again.",
            ),
            Table(
                "Catastrophic cancellation: 1.01 - 1",
                ("format", "1.01 stored", "difference", "relative error"),
                tuple(cancel),
                "The subtraction itself is exact; the error was made when 1.01 was stored.",
            ),
            Table(
                "Long sums, three orders",
                ("terms", "format", "exact", "sequential", "pairwise", "kahan", "stalls at"),
                tuple(long_sums),
                "'stalls at': the first term that left the sequential sum unchanged.",
            ),
            Table(
                "What np.sum does with float16",
                ("10,000 x 0.1 as float16", "value"),
                (
                    ("np.sum (float32 inside, rounded once)", numpy_sum),
                    ("every addition in fp16, left to right", in_fp16),
                    ("exact", exact),
                ),
                "numpy adds float16 arrays in float32 and rounds once at the end: it is not "
                "what fp16 hardware gives.",
            ),
            Table(
                "Rounding down and up bracket the exact value (bf16)",
                ("expression", "down", "up", "width"),
                tuple(bounds),
                "Interval arithmetic rounds lower bounds down and upper bounds up.",
            ),
        ),
    )


#: ``numfmt lesson NAME`` for the lessons whose key results are tables.
SUMMARIES = {
    "bits": bits,
    "floats": floats,
    "quantization": quantization,
    "beyond-rtn": beyond_rtn,
    "arithmetic": arithmetic,
}


def _stored(number) -> float:
    """A typed number as the format stores it (a number of the calculation: never NaN)."""
    assert number.stored is not None
    return float(number.stored)
