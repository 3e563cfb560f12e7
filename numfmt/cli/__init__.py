"""The ``numfmt`` command: a thin layer that parses, calls the library, and renders."""

from __future__ import annotations

import importlib

import click

import numfmt

#: Each command and where it lives: a command's module loads only when that command runs (or
#: when --help lists them all), so `numfmt show` never loads the quantization layer.
COMMANDS = {
    "show": "numfmt.cli.formats:show",
    "compare": "numfmt.cli.formats:compare",
    "decode": "numfmt.cli.formats:decode",
    "info": "numfmt.cli.formats:info",
    "table": "numfmt.cli.formats:table",
    "formats": "numfmt.cli.formats:formats",
    "calc": "numfmt.cli.arith:calc",
    "sum": "numfmt.cli.arith:sum_",
    "matmul": "numfmt.cli.arith:matmul",
    "quantize": "numfmt.cli.quant:quantize",
    "plot": "numfmt.cli.plot:plot",
    "model": "numfmt.cli.model:model",
    "memory": "numfmt.cli.model:memory",
    "lesson": "numfmt.cli.lesson:lesson",
    "exercise": "numfmt.cli.exercise:exercise",
}


class LazyGroup(click.Group):
    """A group whose commands are imported on demand."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        where = COMMANDS.get(name)
        if where is None:
            return None
        module, attr = where.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(name="numfmt", cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
      numfmt calc "0.1 + 0.2" -f fp16     an expression computed in fp16, step by step
      numfmt sum 0.1 -n 10000 -f fp16     a sum in several orders, against the exact one
      numfmt formats                      every format numfmt knows
      numfmt quantize w.npy -b 4 -g group:128     a tensor onto int4, and what it cost
      numfmt plot error-curve --dist normal --out e.png    SQNR against bit width
      numfmt memory 8e9 --format bf16     an 8B model's weights in 16 bits
      numfmt model compare smollm2-135m --text t.txt    a real model under several recipes
      numfmt lesson qat                   PTQ against QAT on a small network, at 8 to 2 bits
      numfmt exercise bits 1 --seed 7     a lesson's exercise; --answer X checks yours

    Every command takes --json. Values are read exactly (3.14 is 157/50, not the float64
    nearest to it) and rounded once into the format.
    """
    import sys

    from numfmt._charset import spell_on

    for stream in (sys.stdout, sys.stderr):  # a console that is not UTF-8 gets ASCII
        spell_on(stream)


__all__ = ["main"]
