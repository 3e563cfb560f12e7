"""Write docs/cli.md from the --help text of every command (the help is the reference).

python docs/make_cli_reference.py          # rewrite docs/cli.md
python docs/make_cli_reference.py --check  # exit 1 if docs/cli.md is out of date
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from click.testing import CliRunner

from numfmt.cli import main

TARGET = Path(__file__).with_name("cli.md")


def reference() -> str:
    runner = CliRunner()
    parts = [
        "# The numfmt command line\n",
        "Generated from `numfmt --help` and each command's `--help` by",
        "`python docs/make_cli_reference.py`; do not edit by hand.\n",
    ]
    for args in _paths(main):
        title = " ".join(["numfmt", *args])
        text = runner.invoke(main, [*args, "--help"], prog_name="numfmt", terminal_width=100).output
        parts += [f"## `{title}`\n", "```text", text.rstrip(), "```\n"]
    return "\n".join(parts)


def _paths(group, prefix=()):
    """Every command's argument path: [], ['show'], ['plot'], ['plot', 'grid'] ..."""
    yield list(prefix)
    if isinstance(group, click.Group):
        ctx = click.Context(group)
        for name in sorted(group.list_commands(ctx)):
            yield from _paths(group.get_command(ctx, name), (*prefix, name))


if __name__ == "__main__":
    text = reference()
    if "--check" in sys.argv:
        sys.exit(0 if TARGET.read_text() == text else 1)
    TARGET.write_text(text)
    print(f"wrote {TARGET}")
