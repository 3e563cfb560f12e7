"""Shared pieces of the ``numfmt`` command line: errors, output, common options.

Data goes to stdout (a rich view on a terminal, plain text in a pipe, JSON with ``--json``);
messages go to stderr. Bad input gets one line and exit status 2.
"""

from __future__ import annotations

import contextlib
import functools
import re
import sys
import warnings
from collections.abc import Callable
from typing import Any

import click

from numfmt._charset import encoding_of, printable
from numfmt.errors import NumfmtError
from numfmt.formats.rounding import Overflow, Rounding

# A token that is a negative number, not an option: -1.5, -0, -inf, -1/3, -0x1p3, -.5
NEGATIVE_NUMBER = re.compile(r"^-(\d|\.\d|inf|infinity|nan|0x|0b)", re.IGNORECASE)


class UsageFailure(click.ClickException):
    """One line on stderr, exit status 2: the input was wrong, not the program."""

    exit_code = 2

    def format_message(self) -> str:
        prefix = "Error: "  # what click writes before the message
        message = fold(prefix + self.message, sys.stderr)[len(prefix) :]
        return printable(message, encoding_of(sys.stderr))


class NumberCommand(click.Command):
    """A command whose positional argument may be a negative number (no ``--`` needed); an
    option's own value may be negative too (``--seed -1`` reaches the option, which says
    what it takes)."""

    #: A token that starts the positional argument although it starts with '-' (calc: -(1+2))
    positional_start = NEGATIVE_NUMBER

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            options = [p for p in self.params if isinstance(p, click.Option)]
            names = {name for p in options for name in (*p.opts, *p.secondary_opts)}
            names |= set(ctx.help_option_names)
            takes_value = {name for p in options if not p.is_flag for name in p.opts}
            kept, moved = [], []
            for i, a in enumerate(args):
                is_value = i > 0 and args[i - 1] in takes_value
                if not is_value and a not in names and self.positional_start.match(a):
                    moved.append(a)
                else:
                    kept.append(a)
            if moved:
                args = [*kept, "--", *moved]
        return super().parse_args(ctx, args)


#: The extra each command needs as a whole, for the line that says what to install when a
#: library is missing (numfmt._extras.missing_message).
EXTRA_OF = {
    "lesson qat": "lessons",
    "lesson integer-mlp": "lessons",
    "lesson language-model": "models",
    "lesson beyond-rtn": "torch",
    "model": "models",
    "memory": "models",
    "plot": "plot",
}


def fail_cleanly(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's NumfmtError, and a missing optional library (torch, matplotlib ...),
    into one line and exit status 2."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except NumfmtError as exc:
            raise UsageFailure(str(exc)) from None
        except ModuleNotFoundError as exc:
            from numfmt._extras import missing_message

            ctx = click.get_current_context(silent=True)
            path = ctx.command_path if ctx else "numfmt"
            words = path.split()[1:]  # without the program's name
            extra = next(
                (
                    EXTRA_OF[" ".join(words[:n])]
                    for n in range(len(words), 0, -1)
                    if " ".join(words[:n]) in EXTRA_OF
                ),
                None,
            )
            message = missing_message(exc, path, extra)
            if message is None:
                raise
            raise UsageFailure(message) from None

    return wrapper


def emit(result: Any, as_json: bool) -> None:
    """Print a result: JSON, or its rich view (colour only on a terminal)."""
    if as_json:
        echo(result.to_json())
        return
    if sys.stdout.isatty():
        from rich.console import Console

        Console(highlight=False, soft_wrap=False, emoji=False).print(result)
        return
    # a pipe: plain text 120 columns wide, no colour, no padding after the last character;
    # show's text is laid out without loading rich (the same characters: a test holds them)
    from numfmt.formats.explain import ShowResult

    text = None
    if isinstance(result, ShowResult):
        from numfmt.render.showtext import plain_show

        text = plain_show(result, PIPE_WIDTH)
    echo(text if text is not None else pipe_text(result))


#: Columns of the plain text printed into a pipe.
PIPE_WIDTH = 120


def pipe_text(result: Any) -> str:
    """A result's rich view as plain text, as a pipe receives it (%numfmt in a notebook too),
    in characters standard output can print."""
    from numfmt._display import text_view

    return text_view(result, PIPE_WIDTH, encoding_of(sys.stdout))


def echo(text: str, err: bool = False) -> None:
    """Text to stdout (or stderr), each character the stream cannot print spelled in ASCII;
    a message on stderr folded between words to the terminal's width.

    click writes UTF-8 to a stream that says it is ASCII (it takes that for a misconfigured
    locale); numfmt writes ASCII there, as the stream asks."""
    stream = sys.stderr if err else sys.stdout
    if err:
        text = fold(text, stream)
    click.echo(printable(text, encoding_of(stream)), err=err)


def fold(text: str, stream: Any) -> str:
    """``text`` broken between words to the width of the terminal ``stream`` is (a path or a
    word longer than the width stays whole); unchanged where the stream is no terminal, so
    that pipes and logs get each message on one line."""
    if not stream.isatty():
        return text
    import shutil
    import textwrap

    width = shutil.get_terminal_size().columns
    return "\n".join(
        textwrap.fill(line, width, break_long_words=False, break_on_hyphens=False) or line
        for line in text.splitlines()
    )


def note(message: str) -> None:
    """A message for the person, on stderr."""
    echo(message, err=True)


@contextlib.contextmanager
def show_warnings():
    """Warnings (numfmt's: a saturated scale ...; a library's: a numpy RuntimeWarning) as one
    line each on stderr, once the work is done, not in Python's warning format."""
    from numfmt.errors import NumfmtWarning, SlowPathWarning

    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("default")  # each once, whatever filters the caller set
            warnings.simplefilter("always", NumfmtWarning)
            # which layers run without a packed kernel is for Python users tuning speed; on
            # the command line the results are the same and nothing can be done about it
            warnings.simplefilter("ignore", SlowPathWarning)
            yield
    finally:
        # outside the block: a warning shown inside it would be recorded again, forever
        for w in caught:
            note(f"warning: {w.message}")


def given_options(*names: str) -> list[str]:
    """Which of these options (by parameter name) the user gave, on the command line or from
    the environment, rather than left to their defaults: an option a path cannot honour is
    refused, never ignored."""
    from click.core import ParameterSource

    ctx = click.get_current_context()
    given = (ParameterSource.COMMANDLINE, ParameterSource.ENVIRONMENT)
    return [name for name in names if ctx.get_parameter_source(name) in given]


def refuse_given(names: tuple[str, ...], why: str) -> None:
    """A usage error naming the options of ``names`` that were given (as the command line
    spells them), ``why`` after them; nothing when none was."""
    ctx = click.get_current_context()
    spelled = [
        max(next(p for p in ctx.command.params if p.name == name).opts, key=len)
        for name in given_options(*names)
    ]
    if spelled:
        raise UsageFailure(f"{', '.join(spelled)} {why}")


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


def plot_options(what: str):
    """``--plot FILE`` (into ``plot_path``; ``what`` says what is drawn) and ``--force``, as
    every command that draws a figure takes them."""

    def decorate(f):
        f = click.option("--force", is_flag=True, help="Replace the --plot file if it exists.")(f)
        return click.option(
            "--plot", "plot_path", type=click.Path(dir_okay=False), default=None, help=what
        )(f)

    return decorate


rounding_option = click.option(
    "--rounding",
    "-r",
    default="nearest-even",
    show_default=True,
    callback=_parse_rounding,
    metavar="MODE",
    help="nearest-even, nearest-away, nearest-zero, toward-zero, up, down, odd or stochastic.",
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
