"""``%numfmt``: the command line inside IPython and Jupyter (``%load_ext numfmt``).

``%numfmt show 3.14 -f bf16`` runs the command in the kernel's own Python, so it is the
numfmt the notebook imports (a shell escape, ``!numfmt``, may find GNU coreutils' numfmt
instead). Output is printed as into a pipe; a failing command raises IPython's UsageError,
one line without a traceback, so that a notebook run stops there.
"""

from __future__ import annotations

import shlex
from typing import Any

import click


def run(line: str) -> None:
    """Run one numfmt command line; raise IPython's UsageError when it fails."""
    from IPython.core.error import UsageError

    from numfmt.cli import main

    try:
        args = shlex.split(line)
    except ValueError as exc:  # an unclosed quote
        raise UsageError(f"numfmt: {exc}") from None
    try:
        main.main(args=args, prog_name="numfmt", standalone_mode=False)
    except click.exceptions.Exit as exc:
        if exc.exit_code:
            raise UsageError(f"numfmt exited with status {exc.exit_code}") from None
    except click.ClickException as exc:
        raise UsageError(f"numfmt: {exc.format_message()}") from None
    except click.exceptions.Abort:
        raise UsageError("numfmt: aborted") from None


def register(ipython: Any) -> None:
    """Register the ``%numfmt`` line magic."""
    ipython.register_magic_function(run, magic_kind="line", magic_name="numfmt")
