"""The format-layer commands: show, compare, decode, info, table, formats."""

from __future__ import annotations

import click

import numfmt
from numfmt.cli.base import (
    FORMAT_HELP,
    NumberCommand,
    UsageFailure,
    emit,
    fail_cleanly,
    json_option,
    overflow_option,
    rounding_option,
)
from numfmt.formats.rounding import Overflow, Rounding
from numfmt.formats.types import AnyFormat
from numfmt.formats.value import parse_code


@click.command(cls=NumberCommand)
@click.argument("value")
@click.option("--format", "-f", "fmt", required=True, help=FORMAT_HELP)
@rounding_option
@overflow_option
@click.option("--seed", default=0, show_default=True, help="Seed for stochastic rounding.")
@json_option
@fail_cleanly
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
    refusal = result.refusal
    if refusal:
        # the view shows what each policy would give; the reason goes to stderr, once
        if not as_json:
            from dataclasses import replace

            result = replace(result, refusal=None)
        emit(result, as_json)
        raise UsageFailure(refusal)
    emit(result, as_json)


@click.command(cls=NumberCommand)
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
@fail_cleanly
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
    names: list[str | AnyFormat] = [
        n.strip() for item in fmts for n in item.split(",") if n.strip()
    ]
    emit(numfmt.compare(value, names or None, rounding, overflow), as_json)


@click.command()
@click.argument("code")
@click.option("--format", "-f", "fmt", required=True, help=FORMAT_HELP)
@json_option
@fail_cleanly
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
    emit(numfmt.show_code(parse_code(code), fmt), as_json)


@click.command()
@click.argument("fmt", metavar="FORMAT")
@json_option
@fail_cleanly
def info(fmt: str, as_json: bool) -> None:
    """Summarise a FORMAT: layout, bias, range, precision, special values.

    \b
    Examples:
      numfmt info bf16
      numfmt info float8_e4m3fnuz
      numfmt info e3m3fn       a custom 7-bit float
      numfmt info q3.4
    """
    emit(numfmt.info(fmt), as_json)


@click.command()
@click.argument("fmt", metavar="FORMAT")
@json_option
@fail_cleanly
def table(fmt: str, as_json: bool) -> None:
    """List every code of a FORMAT of 8 bits or fewer, with its value and class.

    \b
    Examples:
      numfmt table fp4
      numfmt table fp8_e4m3 --json
    """
    emit(numfmt.table(fmt), as_json)


@click.command()
@json_option
def formats(as_json: bool) -> None:
    """List the named formats, their aliases and ranges, and the name patterns."""
    emit(numfmt.formats_list(), as_json)
