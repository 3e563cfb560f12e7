"""An expression computed in a format, one operation at a time, and why each result is what it
is: ``numfmt calc "0.1 + 0.2" -f fp16``.

Each number is read exactly (as ``numfmt show`` reads it) and put into the format; each
operation's exact result is then rounded once. A step records the operands, how their
significands line up (for + and -), the exact result written in binary at the format's
precision with its guard, round and sticky bits, the rounding decision, the stored result with
its error, and the IEEE flags it raised. The values and flags come from ``numfmt.arith``; the
picture of each rounding from ``numfmt.formats.explain.show``.
"""

from __future__ import annotations

import decimal
import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, cast

from numfmt._display import Displayable
from numfmt.arith import expr as ex
from numfmt.arith.context import Context, Flags
from numfmt.errors import NumfmtError
from numfmt.formats.explain import ShowResult, show
from numfmt.formats.rounding import Rounding
from numfmt.formats.types import FloatFormat
from numfmt.formats.value import ExactValue, floor_log2

_NAMES = {"+": "add", "-": "sub", "*": "mul", "/": "div", "fma": "fma", "sqrt": "sqrt"}
_NAMES.update(abs="abs", neg="neg")
_ROOT_BITS = 200  # a square root is pictured by a rational within 2^-200 of it


@dataclass(frozen=True)
class Binary:
    """A real number at a float format's precision: sign, exponent, the bits kept, and the
    guard, round and sticky bits that decide the rounding."""

    negative: bool
    exponent: int
    kept: str  # "1.0011001100" (or "0.0011..." below the smallest normal)
    guard: int
    round: int
    sticky: int

    def text(self) -> str:
        sign = "-" if self.negative else ""
        return f"{sign}{self.kept} | {self.guard} {self.round} {self.sticky} x 2^{self.exponent}"


@dataclass(frozen=True)
class Step:
    """One operation of a calculation."""

    op: str
    operands: tuple[ExactValue, ...]
    exact: ExactValue | None  # None: no real result (NaN), or irrational (see exact_text)
    exact_text: str
    result: ExactValue
    shown: ShowResult | None  # the exact result rounded into the format, explained
    binary: Binary | None
    alignment: tuple[str, ...]
    decision: str
    flags: tuple[str, ...]
    proxy: Fraction | None = (
        None  # the exact result, or for an irrational root a rational beside it
    )

    @property
    def text(self) -> str:
        """The operation on its operands' stored values: '0.0999755859375 + 0.199951171875'."""
        vals = [str(v) for v in self.operands]
        if self.op in ("+", "-", "*", "/"):
            return f"{vals[0]} {self.op} {vals[1]}"
        if self.op == "neg":
            return f"-({vals[0]})"
        return f"{self.op}({', '.join(vals)})"

    @property
    def abs_error(self) -> Fraction | None:
        """|stored result - exact result|; None where either is not a finite number."""
        if self.proxy is None or not self.result.is_finite:
            return None
        return abs(self.result.fraction - self.proxy)

    @property
    def rel_error(self) -> Fraction | None:
        error = self.abs_error
        # (an error implies a proxy)
        return None if error is None or self.proxy == 0 else error / abs(cast(Fraction, self.proxy))

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.op,
            "text": self.text,
            "operands": [str(v) for v in self.operands],
            "exact": self.exact_text,
            "binary": None if self.binary is None else self.binary.text(),
            "alignment": list(self.alignment),
            "decision": self.decision,
            "result": str(self.result),
            "value": float(self.result),
            "bits": None if self.shown is None else self.shown.bits_grouped,
            "hex": None if self.shown is None else self.shown.hex,
            "abs_error": _f(self.abs_error),
            "rel_error": _f(self.rel_error),
            "flags": list(self.flags),
        }


def _f(x: Fraction | None) -> float | None:
    return None if x is None else float(x)


@dataclass(frozen=True, eq=False)
class Calculation(Displayable):
    """An expression computed in a format, step by step (see the module docstring)."""

    expression: str
    format: FloatFormat
    rounding: Rounding
    numbers: tuple[ShowResult, ...]
    steps: tuple[Step, ...]
    result: ExactValue
    flags: Flags = field(default_factory=Flags)
    options: dict[str, Any] = field(default_factory=dict)  # overflow; ftz, daz, seed where set

    @property
    def value(self) -> float:
        return float(self.result)

    def to_dict(self) -> dict[str, Any]:
        return {
            "expression": self.expression,
            "format": self.format.name,
            "rounding": self.rounding.value,
            "numbers": [
                {"input": n.input, "stored": str(n.stored), "bits": n.bits_grouped, "hex": n.hex}
                for n in self.numbers
            ],
            "steps": [s.to_dict() for s in self.steps],
            "result": str(self.result),
            "value": self.value,
            "flags": self.flags.to_dict(),
            "options": dict(self.options),
        }


def calc(
    expression: str,
    fmt: Any,
    *,
    rounding: Any = "nearest-even",
    overflow: Any = None,
    seed: int = 0,
    ftz: bool = False,
    daz: bool = False,
    random_bits: int | None = None,
) -> Calculation:
    """Compute an expression in a format, each number and each operation rounded once.

    Args:
        expression: numbers, ``+ - * /``, ``fma(a, b, c)``, ``sqrt(x)``, ``abs(x)`` and
            parentheses (``numfmt.arith.expr``); never evaluated as Python.
        fmt: a float format of up to 51 significand bits, or a ``Context``: it then carries
            every option (leave the keyword options as they are), counts the calculation's
            flags too, and its random stream goes on from where it was.
        rounding: the rounding mode, as ``Context`` takes it.
        overflow: what an overflow gives, as ``Context`` takes it.
        seed: the random stream of stochastic rounding.
        ftz: flush a subnormal result to zero (the typed numbers are stored as ``numfmt
            show`` stores them).
        daz: read a subnormal operand as zero.
        random_bits: the random bits of stochastic rounding, as ``Context`` takes them.

    Returns:
        A Calculation: its steps, its result and the flags raised.

    Example:
        >>> c = calc("0.1 + 0.2", "fp16")
        >>> c.value
        0.2998046875
        >>> c.steps[-1].binary.text()
        '1.0011001100 | 1 0 0 x 2^-2'

    """
    tree = ex.parse_expression(expression)
    ctx = _context(fmt, rounding, overflow, seed, ftz, daz, random_bits)
    if not isinstance(ctx.fmt, FloatFormat):
        raise NumfmtError(f"calc computes in float formats; {ctx.fmt.name} is not one")
    numbers: list[ShowResult] = []
    steps: list[Step] = []
    before = ctx.flags.counts()
    result = _evaluate(tree, ctx, numbers, steps)
    flags = Flags()
    flags.add([a - b for a, b in zip(ctx.flags.counts(), before, strict=True)])
    return Calculation(
        expression=ex.to_text(tree),
        format=ctx.fmt,
        rounding=ctx.rounding,
        numbers=tuple(numbers),
        steps=tuple(steps),
        result=result,
        flags=flags,
        options=ctx.settings(),
    )


def _context(fmt, rounding, overflow, seed, ftz, daz, random_bits) -> Context:
    options = dict(rounding=rounding, overflow=overflow, seed=seed, ftz=ftz, daz=daz)
    options.update(random_bits=random_bits)
    if isinstance(fmt, Context):
        defaults = dict(rounding="nearest-even", overflow=None, seed=0, ftz=False, daz=False)
        defaults.update(random_bits=None)
        given = {k: v for k, v in options.items() if v != defaults[k]}
        changed = sorted(k for k, v in given.items() if _setting(fmt, k) != _setting_of(k, v))
        if changed:
            raise TypeError(
                f"calc() got a Context and options {changed}: the Context carries them "
                "(ctx.replace(...) makes one that differs)"
            )
        return fmt
    return Context(fmt, **options)


def _setting(ctx: Context, name: str):
    value = getattr(ctx, name)
    return value.value if hasattr(value, "value") else value


def _setting_of(name: str, value):
    """A keyword option as a Context would hold it ('up' and Rounding.UP alike)."""
    return _setting(Context("fp16", **{name: value}), name)


def _evaluate(node, ctx: Context, numbers: list, steps: list) -> ExactValue:
    if isinstance(node, ex.Number):
        shown = show(node.text, ctx.fmt, ctx.rounding, ctx.overflow, seed=ctx.seed)
        if shown.refusal:
            raise NumfmtError(f"the number {node.text}: {shown.refusal}")
        numbers.append(shown)
        ctx.flags.add(_storing_flags(shown))
        assert shown.stored is not None  # not refused
        return shown.stored
    if isinstance(node, ex.Unary) and isinstance(node.operand, ex.Number):  # -0.1: one number
        text = node.operand.text
        text = text[1:] if text[:1] == "-" else "-" + text
        number = ex.Number(text, None)  # type: ignore[arg-type]  # _evaluate reads only its text
        return _evaluate(number, ctx, numbers, steps)
    args: tuple[ExactValue, ...]
    if isinstance(node, ex.Unary):
        args = (_evaluate(node.operand, ctx, numbers, steps),)
        op = "neg"
    elif isinstance(node, ex.Binary):
        args = (
            _evaluate(node.left, ctx, numbers, steps),
            _evaluate(node.right, ctx, numbers, steps),
        )
        op = node.op
    else:
        args = tuple(_evaluate(a, ctx, numbers, steps) for a in node.args)
        op = node.name
    step = _step(op, args, ctx)
    steps.append(step)
    return step.result


def _storing_flags(shown: ShowResult) -> list[int]:
    """IEEE flags of putting a typed number into the format: inexact, underflow, overflow."""
    exact, stored = shown.exact_input, shown.stored
    assert exact is not None and stored is not None  # a typed number, not refused
    if not exact.is_finite:
        return [0, 0, 0, 0, 0]
    over = not stored.is_finite or exact.magnitude > shown.format.max_value
    inexact = over or stored.fraction != exact.fraction
    tiny = inexact and 0 < exact.magnitude < cast(FloatFormat, shown.format).min_normal
    return [int(inexact), int(tiny), int(over), 0, 0]


def _step(op: str, args: tuple[ExactValue, ...], ctx: Context) -> Step:
    before = ctx.flags.counts()
    value = float(getattr(ctx, _NAMES[op])(*[float(a) for a in args]))
    after = ctx.flags.counts()
    raised = tuple(n for n, a, b in zip(Flags.NAMES, after, before, strict=True) if a > b)
    result = ExactValue.of(value)
    notes, args_read = _read_operands(args, ctx)
    exact, exact_text, proxy = _exact(op, args_read)
    shown = binary = None
    alignment: tuple[str, ...] = ()
    decision = _special_decision(op, args, value, ctx) if proxy is None else ""
    if proxy is not None:
        mode = ctx.rounding
        if mode is Rounding.STOCHASTIC:  # picture the way the random draw went
            mode = Rounding.UP if value > proxy else Rounding.DOWN
        text = "-0" if proxy == 0 and math.copysign(1, value) < 0 else proxy
        shown = show(text, ctx.fmt, mode, ctx.overflow)
        if proxy != 0:
            binary = _binary(proxy, cast(FloatFormat, ctx.fmt))  # calc computes in floats
            decision = _decision(binary, proxy, value, ctx, "overflow" in raised)
        elif math.isnan(value):  # e8m0 and its kind have no zero
            decision = f"the exact result is zero, and {ctx.fmt.name} has no zero: NaN, invalid"
        else:
            decision = "the exact result is zero; " + (
                "its sign follows IEEE 754's rule for exact zeros"
                if op in ("+", "-", "fma")
                else "nothing to round"
            )
        if op in ("+", "-") and all(a.is_finite and a.magnitude for a in args_read):
            alignment = _alignment(args_read, op, cast(FloatFormat, ctx.fmt))
    later: list[str] = []
    exact_fits = binary is not None and binary.guard == binary.round == binary.sticky == 0
    if (
        ctx.rounding is Rounding.STOCHASTIC
        and proxy
        and not exact_fits
        and "overflow" not in raised
    ):
        later.append(_chance(proxy, ctx))
    # (stored is None where show refuses: an exact result it cannot hold)
    if ctx.ftz and shown is not None and value == 0 and cast(ExactValue, shown.stored).magnitude:
        later.append(f"ftz flushes that subnormal result, {shown.stored}, to a zero of its sign")
        shown = show("-0" if _negative(value) else "0", ctx.fmt, ctx.rounding, ctx.overflow)
    decision = "; ".join(dict.fromkeys([*notes, decision, *later]))
    return Step(
        op, args, exact, exact_text, result, shown, binary, alignment, decision, raised, proxy
    )


def _negative(x: float) -> bool:
    return math.copysign(1.0, x) < 0


def _chance(exact: Fraction, ctx: Context) -> str:
    """The probability stochastic rounding gave the magnitude of growing one ulp: the exact
    result's distance past the truncated value, over the gap (cut to the random bits)."""
    text = str(exact)
    # (stored is None where show refuses: a value it cannot hold under the overflow policy)
    truncated = show(text, ctx.fmt, Rounding.TOWARD_ZERO, ctx.overflow)
    low = truncated.stored
    if low is None or not low.is_finite:
        return "nothing to round, so no draw"
    up = Rounding.UP if exact > 0 else Rounding.DOWN
    high = show(text, ctx.fmt, up, ctx.overflow).stored
    if high is not None and high.is_finite and low.fraction == high.fraction:
        return "nothing to round, so no draw"
    # one ulp above the truncated magnitude: the next value, or the step past the largest
    # finite one (where growing is an overflow, which the policy then decides)
    step = truncated.ulp if high is None or not high.is_finite else high.magnitude - low.magnitude
    if not step:
        return "nothing to round, so no draw"
    p = (abs(exact) - low.magnitude) / step
    note = f"the magnitude grows with probability {float(p):.4g}"
    if ctx.random_bits is not None:
        cut = Fraction(math.floor(p * 2**ctx.random_bits), 2**ctx.random_bits)
        note += f", {float(cut):.4g} with {ctx.random_bits} random bits"
    return note


def _read_operands(args, ctx: Context) -> tuple[list[str], tuple[ExactValue, ...]]:
    """(notes, the operands as the operation reads them): with daz, a subnormal operand is a
    zero of its sign."""
    if not ctx.daz:
        return [], args
    notes, read = [], []
    for a in args:
        if a.is_finite and 0 < a.magnitude < cast(FloatFormat, ctx.fmt).min_normal:
            zero = -0.0 if a.negative else 0.0
            notes.append(f"daz reads the subnormal operand {a} as {zero:g}")
            read.append(ExactValue.of(zero))
        else:
            read.append(a)
    return notes, tuple(read)


def _exact(op, args) -> tuple[ExactValue | None, str, Fraction | None]:
    """(exact result, its text, a rational that pictures it) or Nones where there is none."""
    if not all(a.is_finite for a in args):
        return None, "not a finite number: IEEE 754's rules for inf and NaN decide", None
    x = [a.fraction for a in args]
    if op == "/" and x[1] == 0:
        return None, "division by zero: no finite result", None
    if op == "sqrt":
        if x[0] < 0:
            return None, "the square root of a negative number is not real", None
        proxy, exact = _root(x[0])
        text = _decimal(proxy, 30) + ("" if exact else " (irrational)")
        return (ExactValue.of(proxy) if exact else None), text, proxy
    value = {
        "+": lambda: x[0] + x[1],
        "-": lambda: x[0] - x[1],
        "*": lambda: x[0] * x[1],
        "/": lambda: x[0] / x[1],
        "fma": lambda: x[0] * x[1] + x[2],
        "abs": lambda: abs(x[0]),
        "neg": lambda: -x[0],
    }[op]()
    return ExactValue.of(value), _decimal(value, 40), value


def _root(x: Fraction) -> tuple[Fraction, bool]:
    """(sqrt(x) exactly, True) where that is rational at 2^-200, else (a rational strictly
    between the same neighbours at that spacing, False)."""
    scaled = x * 4**_ROOT_BITS
    whole = scaled.numerator // scaled.denominator
    r = math.isqrt(whole)
    if r * r == scaled:
        return Fraction(r, 2**_ROOT_BITS), True
    return Fraction(2 * r + 1, 2 ** (_ROOT_BITS + 1)), False


def _decimal(x: Fraction, digits: int) -> str:
    """x in decimal: exactly where that takes at most ``digits`` significant digits, else its
    first ``digits`` digits (truncated) and an ellipsis."""
    text = str(ExactValue.of(x))
    if len(text.lstrip("-").replace(".", "").lstrip("0")) <= digits:
        return text
    with decimal.localcontext() as dc:
        dc.prec, dc.rounding = digits, decimal.ROUND_DOWN
        return f"{decimal.Decimal(x.numerator) / decimal.Decimal(x.denominator)}..."


def _binary(x: Fraction, fmt: FloatFormat) -> Binary:
    mag = abs(x)
    e = max(floor_log2(mag), fmt.emin) if fmt.has_subnormals else floor_log2(mag)
    m = fmt.mantissa_bits
    scaled = mag / Fraction(2) ** (e - m)  # the kept bits above the point, the rest below
    q = math.floor(scaled)
    rest = scaled - q
    guard = int(rest >= Fraction(1, 2))
    rnd = int((rest * 2) % 1 >= Fraction(1, 2))
    sticky = int((rest * 4) % 1 != 0)
    bits = format(q, f"0{m + 1}b")
    return Binary(x < 0, e, f"{bits[0]}.{bits[1:]}" if m else bits, guard, rnd, sticky)


def _decision(b: Binary, exact: Fraction, value: float, ctx: Context, overflow: bool) -> str:
    grs = f"guard {b.guard}, round {b.round}, sticky {b.sticky}"
    if overflow:
        top = float(ctx.fmt.max_value)
        return (
            f"{grs}: rounded, the result is beyond the largest finite value ({top:g}); "
            f"overflow '{ctx.overflow.value}' gives {value:g}"
        )
    if b.guard == b.round == b.sticky == 0:
        return f"{grs}: the exact result fits; nothing is rounded"
    kept = abs(Fraction(value)) <= abs(exact)
    where = {
        (1, 0, 0): "exactly half an ulp: a tie",
        (1, 0, 1): "more than half an ulp",
        (1, 1, 0): "more than half an ulp",
        (1, 1, 1): "more than half an ulp",
    }.get((b.guard, b.round, b.sticky), "less than half an ulp")
    way = "the magnitude is truncated" if kept else "the magnitude grows one ulp"
    return f"{grs}: {where}; {ctx.rounding.value} -> {way}"


def _special_decision(op, args, value: float, ctx: Context) -> str:
    fmt = cast(FloatFormat, ctx.fmt)  # calc computes in floats
    finite = all(a.is_finite for a in args)
    if op == "/" and finite and args[1].magnitude == 0 and args[0].magnitude != 0:
        if fmt.has_inf:
            return f"a nonzero number over zero: {value}, and the divide-by-zero flag"
        text = (
            f"a nonzero number over zero: {fmt.name} has no infinity, and overflow "
            f"'{ctx.overflow.value}' gives {value:g}"
        )
        if ctx.overflow.value != "saturate":
            text += f" (saturate would give {math.copysign(float(fmt.max_value), value):g})"
        return text
    if math.isnan(value):
        if any(a.is_nan for a in args):
            return "a NaN operand: the result is NaN"
        return "no real result (the invalid flag): the result is NaN"
    return f"IEEE 754's rules for infinities give {value}"


def _alignment(args, op: str, fmt: FloatFormat) -> tuple[str, ...]:
    """The operands' significands written at the larger one's exponent: the smaller is
    shifted right, and its bits below the format's last place (after the bar) are what the
    guard, round and sticky bits will see."""
    m = fmt.mantissa_bits
    exps = [max(floor_log2(a.magnitude), fmt.emin) for a in args]
    top = max(exps)
    lines = []
    for a, e in zip(args, exps, strict=True):
        scaled = a.magnitude / Fraction(2) ** (top - m)
        q = math.floor(scaled)
        bits = format(q, f"0{m + 1}b")
        tail = ""
        rest = scaled - q
        for _ in range(6):
            if rest == 0:
                break
            rest *= 2
            tail += str(int(rest >= 1))
            rest -= int(rest >= 1)
        if rest:
            tail += "..."
        shift = top - e
        sign = "-" if a.negative else "+"
        note = f"  (shifted right {shift})" if shift else ""
        body = f"{bits[0]}.{bits[1:]}" + (f"|{tail}" if tail else "")
        lines.append(f"{sign} {body} x 2^{top}{note}")
    if op == "-":
        lines[1] = ("+" if lines[1][0] == "-" else "-") + lines[1][1:]
    return tuple(lines)
