"""The ``numfmt`` command: a thin layer that parses, calls the library, and renders."""

from __future__ import annotations

import click

import numfmt


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
      numfmt quantize w.npy -b 4 -g group:128     a tensor onto int4, and what it cost
      numfmt plot error-curve --dist normal --out e.png    SQNR against bit width

    Every command takes --json. Values are read exactly (3.14 is 157/50, not the float64
    nearest to it) and rounded once into the format.
    """


from numfmt.cli import formats as _formats  # noqa: E402, F401  (registers the commands)
from numfmt.cli import plot as _plot  # noqa: E402, F401
from numfmt.cli import quant as _quant  # noqa: E402, F401

__all__ = ["main"]
