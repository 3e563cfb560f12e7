"""The ``numfmt`` command: a thin layer that parses, calls the library, and renders.

Data goes to stdout (a rich view on a terminal, plain text in a pipe, JSON with ``--json``);
messages go to stderr. Bad input gets one line and exit status 2.
"""

from __future__ import annotations

import functools
import re
import sys
from collections.abc import Callable
from typing import Any

import click

import numfmt
from numfmt.errors import NumfmtError
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.value import parse_code

# A token that is a negative number, not an option: -1.5, -0, -inf, -1/3, -0x1p3, -.5
_NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|infinity|nan|0x|0b)", re.IGNORECASE)


class UsageFailure(click.ClickException):
    """One line on stderr, exit status 2: the input was wrong, not the program."""

    exit_code = 2


class NumberCommand(click.Command):
    """A command whose positional argument may be a negative number (no ``--`` needed)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            numbers = [a for a in args if _NEGATIVE_NUMBER.match(a)]
            if numbers:
                args = [a for a in args if not _NEGATIVE_NUMBER.match(a)] + ["--", *numbers]
        return super().parse_args(ctx, args)


def _fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's NumfmtError into one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NumfmtError as exc:
            raise UsageFailure(str(exc)) from None

    return wrapper


def _emit(result: Any, as_json: bool) -> None:
    if as_json:
        click.echo(result.to_json())
        return
    from rich.console import Console

    tty = sys.stdout.isatty()
    Console(highlight=False, width=None if tty else 120, soft_wrap=False).print(result)


def _parse_rounding(ctx, param, value):
    try:
        return Rounding.parse(value)
    except NumfmtError as exc:
        raise click.BadParameter(str(exc)) from None


def _parse_overflow(ctx, param, value):
    if value is None:
        return None
    try:
        return Overflow.parse(value)
    except NumfmtError as exc:
        raise click.BadParameter(str(exc)) from None


json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a view.")
rounding_option = click.option(
    "--rounding",
    "-r",
    default="nearest-even",
    show_default=True,
    callback=_parse_rounding,
    metavar="MODE",
    help="nearest-even, nearest-away, toward-zero, up, down or stochastic.",
)
overflow_option = click.option(
    "--overflow",
    "-o",
    default=None,
    callback=_parse_overflow,
    metavar="POLICY",
    help="ieee (floats' default), saturate, error, or wrap (integers; their default is error).",
)
FORMAT_HELP = "A format: bf16, fp16, fp8_e4m3, fp4, int8, q3.4, e3m3fn ... ('numfmt formats')."


@click.group(name="numfmt", context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(numfmt.__version__, prog_name="numfmt")
def main() -> None:
    """See a number bit by bit in any format: floats from FP64 to FP4, integers, fixed point.

    \b
    Examples:
      numfmt show 3.14 --format bf16      the bits, fields and error of 3.14 in bfloat16
      numfmt show -5 --format int8        two's complement, step by step
      numfmt compare 0.1                  0.1 in fp32, fp16, bf16, fp8 and fp4 side by side
      numfmt decode 0x4049 -f bf16        what a code means
      numfmt info fp8_e4m3                range, precision and special values
      numfmt table fp4                    every code of a small format
      numfmt formats                      every format numfmt knows

    Every command takes --json. Values are read exactly (3.14 is 157/50, not the float64
    nearest to it) and rounded once into the format.
    """


@main.command(cls=NumberCommand)
@click.argument("value")
@click.option("--format", "-f", "fmt", required=True, help=FORMAT_HELP)
@rounding_option
@overflow_option
@click.option("--seed", default=0, show_default=True, help="Seed for stochastic rounding.")
@json_option
@_fail_cleanly
def show(
    value: str, fmt: str, rounding: Rounding, overflow: Overflow | None, seed: int, as_json: bool
) -> None:
    """Show what VALUE becomes in a format: bits, fields, stored value, error, neighbours.

    VALUE is read exactly: 3.14, -1.5, 1e-8, 0x1.8p3 (hex float), 0b101.1, 1/3, 2^-10,
    inf, nan, -0. Negative values need no '--'.

    \b
    Examples:
      numfmt show 3.14 --format bf16
      numfmt show 1e6 -f fp8_e4m3               overflow: NaN, and what saturate gives
      numfmt show 200 -f int8 --overflow wrap   two's complement wraparound, as a C cast
      numfmt show 0.1 -f fp16 -r toward-zero
    """
    result = numfmt.show(value, fmt, rounding, overflow, seed=seed)
    _emit(result, as_json)
    if result.refusal:  # the view shows the alternatives; the exit status says it failed
        raise UsageFailure(result.refusal)


@main.command(cls=NumberCommand)
@click.argument("value")
@click.option(
    "--format",
    "-f",
    "fmts",
    multiple=True,
    help="A format to include; repeat it or separate with commas. "
    "Default: fp32, fp16, bf16, fp8_e4m3, fp8_e5m2, fp4.",
)
@rounding_option
@overflow_option
@json_option
@_fail_cleanly
def compare(
    value: str, fmts: tuple[str, ...], rounding: Rounding, overflow: Overflow | None, as_json: bool
) -> None:
    """Show VALUE in several formats side by side: bits, stored value and error.

    \b
    Examples:
      numfmt compare 3.14
      numfmt compare 0.1 -f fp32,bf16,fp8_e4m3,int8
      numfmt compare 70000 -f fp16,bf16 --overflow saturate
    """
    names = [n.strip() for item in fmts for n in item.split(",") if n.strip()]
    _emit(numfmt.compare(value, names or None, rounding, overflow), as_json)


@main.command()
@click.argument("code")
@click.option("--format", "-f", "fmt", required=True, help=FORMAT_HELP)
@json_option
@_fail_cleanly
def decode(code: str, fmt: str, as_json: bool) -> None:
    """Explain what CODE means in a format.

    CODE is an unsigned integer: hex (0x4049), binary (0b0100000001001001, underscores
    allowed) or decimal (16457).

    \b
    Examples:
      numfmt decode 0x4049 --format bf16
      numfmt decode 0b0_1111_111 -f fp8_e4m3    the NaN of OCP E4M3
      numfmt decode 0xFB -f int8
    """
    _emit(numfmt.show_code(parse_code(code), fmt), as_json)


@main.command()
@click.argument("fmt", metavar="FORMAT")
@json_option
@_fail_cleanly
def info(fmt: str, as_json: bool) -> None:
    """Summarise a FORMAT: layout, bias, range, precision, special values.

    \b
    Examples:
      numfmt info bf16
      numfmt info float8_e4m3fnuz
      numfmt info e3m3fn       a custom 7-bit float
      numfmt info q3.4
    """
    _emit(numfmt.info(fmt), as_json)


@main.command()
@click.argument("fmt", metavar="FORMAT")
@json_option
@_fail_cleanly
def table(fmt: str, as_json: bool) -> None:
    """List every code of a FORMAT of 8 bits or fewer, with its value and class.

    \b
    Examples:
      numfmt table fp4
      numfmt table fp8_e4m3 --json
    """
    _emit(numfmt.table(fmt), as_json)


@main.command()
@json_option
def formats(as_json: bool) -> None:
    """List the named formats, their aliases and ranges, and the name patterns."""
    _emit(numfmt.formats_list(), as_json)


__all__ = ["main"]
