"""The arithmetic commands: calc (an expression, step by step) and sum (a summation in several
orders)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import click

from numfmt._display import grouped
from numfmt.cli.base import (
    NEGATIVE_NUMBER,
    NumberCommand,
    UsageFailure,
    emit,
    fail_cleanly,
    json_option,
    note,
    overflow_option,
    plot_options,
    rounding_option,
)
from numfmt.formats.rounding import Overflow, Rounding

FLOAT_HELP = "A float format: fp16, bf16, fp8_e4m3, fp4, e3m3fn ... ('numfmt formats')."

#: The most terms ``numfmt sum VALUE --count N`` builds (8 bytes each, and a running sum).
MAX_COUNT = 100_000_000


def _subnormal_options(command):
    """--ftz, --daz and --random-bits: how the arithmetic treats subnormals, and how many
    random bits stochastic rounding draws."""
    command = click.option(
        "--random-bits",
        type=click.IntRange(1, 52),
        help="Stochastic rounding with this many random bits, as hardware does (default: all).",
    )(command)
    command = click.option(
        "--daz", is_flag=True, help="Denormals are zero: read a subnormal operand as 0."
    )(command)
    return click.option(
        "--ftz", is_flag=True, help="Flush to zero: a result that rounds to a subnormal is 0."
    )(command)


def _check_random_bits(random_bits: int | None, rounding: Rounding) -> None:
    if random_bits is not None and rounding is not Rounding.STOCHASTIC:
        raise UsageFailure(
            f"--random-bits sets how many random bits stochastic rounding draws; with "
            f"--rounding {rounding.value} it would change nothing (add -r stochastic)"
        )


class ExpressionCommand(NumberCommand):
    """calc: an expression may start with a minus before anything (-(1 + 2), -sqrt(2))."""

    positional_start = re.compile(rf"{NEGATIVE_NUMBER.pattern}|^-\s*[(a-z]", re.IGNORECASE)


@click.command(cls=ExpressionCommand)
@click.argument("expression")
@click.option("--format", "-f", "fmt", required=True, help=FLOAT_HELP)
@rounding_option
@overflow_option
@_subnormal_options
@click.option("--seed", default=0, show_default=True, help="Seed for stochastic rounding.")
@json_option
@fail_cleanly
def calc(
    expression: str,
    fmt: str,
    rounding: Rounding,
    overflow: Overflow | None,
    ftz: bool,
    daz: bool,
    random_bits: int | None,
    seed: int,
    as_json: bool,
) -> None:
    """Compute EXPRESSION in a format, every operation rounded once, and show why.

    EXPRESSION has numbers (read exactly, as 'numfmt show' reads them, then put into the
    format), + - * /, fma(a, b, c), sqrt(x), abs(x) and parentheses; quote it. Each operation
    is worked through: how the operands line up, the exact result in binary with its guard,
    round and sticky bits, the rounding decision, the stored bits and the error. Nothing
    typed is run as code.

    \b
    Examples:
      numfmt calc "0.1 + 0.2" -f fp16
      numfmt calc "(0.5 + 512) + 512.5" -f fp16     addition is not associative ...
      numfmt calc "0.5 + (512 + 512.5)" -f fp16     ... 1025 against 1024
      numfmt calc "1 + 2^-60" -f bf16 -r down       directed rounding sees the tiny term
      numfmt calc "fma(1 + 2^-10, 1 - 2^-10, -1)" -f fp16    one rounding, not two
      numfmt calc "1 / 0" -f fp8_e4m3               no infinity in e4m3: the policy decides
      numfmt calc "2^-20 * 0.75" -f fp16 --ftz      a subnormal result flushed to zero
      numfmt calc "1 + 2^-9" -f bf16 -r stochastic --random-bits 4 --seed 7
    """
    from numfmt.arith.calc import calc as compute

    _check_random_bits(random_bits, rounding)
    options: dict[str, Any] = dict(ftz=ftz, daz=daz, random_bits=random_bits)
    result = compute(expression, fmt, rounding=rounding, overflow=overflow, seed=seed, **options)
    emit(result, as_json)


@click.command("sum", cls=NumberCommand)
@click.argument("source", metavar="VALUE|FILE")
@click.option("--count", "-n", type=int, help="How many times VALUE is added.")
@click.option("--tensor", "-t", "name", help="The tensor to read, when FILE holds several.")
@click.option("--format", "-f", "fmt", required=True, help=FLOAT_HELP)
@click.option(
    "--order",
    default="sequential,pairwise,kahan",
    show_default=True,
    help="Orders to compare, separated by commas: sequential, pairwise, tree, kahan, numpy, "
    "blocked:K.",
)
@rounding_option
@overflow_option
@_subnormal_options
@click.option("--seed", default=0, show_default=True, help="Seed for stochastic rounding.")
@plot_options("Draw the running sums into this .png, .svg or .pdf file.")
@json_option
@fail_cleanly
def sum_(
    source: str,
    count: int | None,
    name: str | None,
    fmt: str,
    order: str,
    rounding: Rounding,
    overflow: Overflow | None,
    ftz: bool,
    daz: bool,
    random_bits: int | None,
    seed: int,
    plot_path: str | None,
    force: bool,
    as_json: bool,
) -> None:
    """Sum VALUE --count times (or the numbers in FILE) in a format, in several orders, beside
    the exact sum: each order's error, and where adding left to right stopped growing.

    VALUE is read exactly and put into the format once; every addition is then rounded into
    the format. FILE is a .npy, .npz or .safetensors file (its values used as they are).

    \b
    Examples:
      numfmt sum 0.1 --count 10000 -f fp16          sequential stalls at 256; Kahan does not
      numfmt sum 1 -n 100000 -f bf16 --order sequential,pairwise,blocked:256
      numfmt sum 0.1 -n 10000 -f fp16 --plot sums.png
      numfmt sum terms.npy -f fp8_e4m3 -r stochastic
    """
    import numpy as np

    from numfmt.arith.sums import parse_order, summation

    _check_random_bits(random_bits, rounding)
    orders = tuple(dict.fromkeys(o.strip() for o in order.split(",") if o.strip()))
    if not orders:
        raise UsageFailure("--order names no order; e.g. --order sequential,pairwise,kahan")
    for o in orders:
        parse_order(o)
    target = _plot_target(plot_path, force) if plot_path else None
    terms, described = _terms(source, count, name, fmt, rounding, overflow)
    if described:
        note(described)
    options = dict(rounding=rounding, overflow=overflow, seed=seed, ftz=ftz, daz=daz)
    result = summation(np.asarray(terms), fmt, orders=orders, random_bits=random_bits, **options)
    emit(result, as_json)
    if target is not None:
        from numfmt.cli.plot import _draw

        _draw(target, lambda plot: _running(result), force=force)


def _running(result):
    from numfmt.plot.arith import running_sums

    return running_sums(result)


def _plot_target(path: str, force: bool) -> Path:
    from numfmt.cli.plot import _output

    return _output(path, force)


def _terms(source, count, name, fmt, rounding, overflow):
    """The terms to sum, and a line that says what they are (or None)."""
    import numpy as np

    path = Path(source)
    looks_like_file = path.suffix.lower() in (".npy", ".npz", ".safetensors", ".pt", ".pth")
    # (.pt and .pth reach load_tensor, which says which files it reads)
    if looks_like_file or path.is_file():
        if count is not None:
            raise UsageFailure(
                "--count goes with a VALUE, not a file: the file's numbers are summed"
            )
        from numfmt.formats.encode import as_real_array
        from numfmt.tensorio import load_tensor

        _, x = load_tensor(source, name)
        values = as_real_array(x)
        said = None
        if values.ndim > 1:
            said = f"the {grouped(values.size)} numbers of a {values.shape} array, in order"
        return values.astype(np.float64).reshape(-1), said
    if count is None:
        raise UsageFailure(f"say how many times to add {source}: --count N (or give a .npy file)")
    if not 1 <= count <= MAX_COUNT:
        raise UsageFailure(f"--count must be 1 .. {grouped(MAX_COUNT)}, not {grouped(count)}")
    from numfmt.formats.decode import decode_exact
    from numfmt.formats.encode import encode_exact
    from numfmt.formats.registry import get_format

    f = get_format(fmt)
    stored = decode_exact(encode_exact(source, f, rounding, overflow), f)
    if not stored.is_finite:
        raise UsageFailure(f"{source} is {stored} in {f.name}: there is nothing finite to sum")
    said = None
    if str(stored) != source.strip():
        said = f"each term is {stored}: {source} put into {f.name}"
    return np.full(count, float(stored)), said


@click.command("matmul")
@click.option(
    "--model",
    "models",
    default="fp32,bf16-accumulate,hopper-fp8,hopper-fp8-promote128",
    show_default=True,
    help="Accumulation models to compare, separated by commas (--list shows them all).",
)
@click.option("-k", "k", default=4096, show_default=True, help="Products summed into each output.")
@click.option("-m", "m", default=64, show_default=True, help="Rows of the product.")
@click.option("-n", "n", default=64, show_default=True, help="Columns of the product.")
@click.option(
    "--dist",
    type=click.Choice(["normal", "uniform"]),
    default="uniform",
    show_default=True,
    help="Operands drawn from N(0, 1), or uniform on [0, 1) (no cancellation).",
)
@click.option("--seed", default=0, show_default=True, help="Seed of the operands.")
@plot_options("Draw each model's largest relative error against K into this .png, .svg or .pdf.")
@click.option("--list", "list_models", is_flag=True, help="List the models and their sources.")
@json_option
@fail_cleanly
def matmul(
    models: str,
    k: int,
    m: int,
    n: int,
    dist: str,
    seed: int,
    plot_path: str | None,
    force: bool,
    list_models: bool,
    as_json: bool,
) -> None:
    """The error of matrix products accumulated as real hardware does, against the exact product.

    Draws an (m x K) and a (K x n) operand, rounds them into each model's input format, and
    compares the model's product with the exact product of those rounded operands: the error
    of the accumulation alone. hopper-fp8 is an H100's FP8 tensor core as MMA-Sim models it
    (groups of 32 products truncated to 13 fractional bits, an accumulator of 13); DeepSeek-V3
    promotes its partial sums to fp32 every 128 terms (hopper-fp8-promote128).

    \b
    Examples:
      numfmt matmul                                   the four default models, K = 4096
      numfmt matmul --model hopper-fp8,blackwell-fp8 -k 8192 --dist normal
      numfmt matmul -k 4096 --plot matmul.png         error against K, K = 32 .. 4096
      numfmt matmul --list                            every model, with its source
    """
    import json

    from numfmt.arith.hardware import MODELS, get_model
    from numfmt.arith.matmul_error import matmul_error

    if list_models:
        if as_json:
            click.echo(json.dumps([x.to_dict() for x in MODELS.values()], indent=2))
        else:
            width = max(len(name) for name in MODELS)
            for x in MODELS.values():
                click.echo(f"{x.name:<{width}}  {x.summary}")
                click.echo(f"{'':<{width}}  source: {x.source}")
        return
    names = [x.strip() for x in models.split(",") if x.strip()]
    if not names:
        raise UsageFailure("--model names no model; e.g. --model fp32,hopper-fp8")
    plans = [get_model(x) for x in names]
    target = _plot_target(plot_path, force) if plot_path else None
    ks = None
    if target is not None:
        step = max(x.fused.size if x.fused else 1 for x in plans)
        ks = sorted({2**j for j in range(5, 31) if step <= 2**j <= k and 2**j % step == 0} | {k})
    result = matmul_error(names, k=k, m=m, n=n, dist=dist, seed=seed, ks=ks)
    emit(result, as_json)
    if target is not None:
        from numfmt.cli.plot import _draw

        _draw(target, lambda plot: _matmul_curve(result), force=force)


def _matmul_curve(result):
    from numfmt.plot.arith import matmul_error_curve

    return matmul_error_curve(result)
