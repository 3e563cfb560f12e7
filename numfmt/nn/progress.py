"""Progress of long work, on stderr: a rich bar on a terminal, a line per step elsewhere when
the caller asks for it (the command line does), or a callback the caller gives.

``progress`` is one of:

=========  ==========================================================================
None       a bar on a terminal, nothing elsewhere (the library's default: pipes and
           notebooks stay quiet unless they ask)
True       a bar on a terminal, and elsewhere a line per step (``numfmt`` without --json)
False      nothing
callable   called with each finished item's name, instead of drawing
=========  ==========================================================================

Trackers nest: on a terminal an inner loop (a model's layers) adds its bar under the outer
one (a lesson's recipes); off a terminal only the outermost loop writes lines, so that a
lesson says ``language-model: [3/8] int8/channel quantized, scored (12 s)`` and not a line
per layer of each model.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

Progress = bool | Callable[[str], None] | None

#: The bar being drawn (inner trackers add their task to it) and how many trackers are open.
_state: dict[str, Any] = {"bar": None, "depth": 0}


def _mode(progress: Progress) -> str:
    """``bar``, ``lines`` or ``off`` for a bool or None."""
    if progress is False:
        return "off"
    if sys.stderr.isatty():
        return "bar"
    return "lines" if progress is True else "off"


def say(message: str, progress: Progress) -> None:
    """Tell what is starting (``loading smollm2-135m ...``) where progress is shown: above the
    bar on a terminal, as a line elsewhere when lines are asked for."""
    if callable(progress):
        return
    mode = _mode(progress)
    bar = _state["bar"]
    if mode == "bar":  # a terminal: rich folds the line between words to its width
        console = bar.console if bar is not None else _stderr_console()
        console.print(message, highlight=False, markup=False)
    elif mode != "off":
        print(message, file=sys.stderr, flush=True)


@contextlib.contextmanager
def tracker(
    total: int, description: str, progress: Progress, *, every: float = 10.0
) -> Iterator[Callable[[str], None]]:
    """A function to call once per finished item, with its name.

    Off a terminal (``progress=True``) the outermost tracker writes
    ``description: [k/total] name (seconds since it began)``: a line per item with
    ``every=0``, else at most one line each ``every`` seconds, and one for the last item.

    Example:
        >>> with tracker(2, "demo", progress=False) as step:
        ...     step("one")
        ...     step("two")
    """
    if callable(progress):
        yield progress
        return
    mode = _mode(progress)
    outer = _state["depth"] == 0
    _state["depth"] += 1
    try:
        if mode == "bar" and total > 0:
            with _bar(total, description) as step:
                yield step
        elif mode == "lines" and outer and total > 0:
            yield _lines(total, description, every)
        else:
            yield lambda name: None
    finally:
        _state["depth"] -= 1


def _lines(total: int, description: str, every: float) -> Callable[[str], None]:
    start = time.perf_counter()
    last = -float("inf")
    done = 0

    def step(name: str, _: Any = None) -> None:
        nonlocal last, done
        done += 1
        now = time.perf_counter()
        if every <= 0 or now - last >= every or done >= total:
            last = now
            line = f"{description}: [{done}/{total}] {name} ({now - start:.0f} s)"
            print(line, file=sys.stderr, flush=True)

    return step


@contextlib.contextmanager
def _bar(total: int, description: str) -> Iterator[Callable[[str], None]]:
    """A task on the bar being drawn, or a new bar (on stderr) when none is."""
    bar = _state["bar"]
    if bar is None:
        from rich.console import Console
        from rich.progress import Progress as Bar

        console = Console(stderr=True)
        bar = Bar(*bar_columns(console.width), console=console, transient=True)
        _state["bar"] = bar
        try:
            with bar, _bar(total, description) as inner:
                yield inner
        finally:
            _state["bar"] = None
        return
    task = bar.add_task(description, total=total, item="")

    def step(name: str, _: Any = None) -> None:
        bar.update(task, advance=1, item=name)

    try:
        yield step
    finally:
        bar.remove_task(task)


def _stderr_console():
    from rich.console import Console

    return Console(stderr=True)


def bar_columns(width: int) -> list:
    """The bar's columns for a console ``width`` wide: the description, the counts and the time
    never give way; only the item's name is shortened, at its end."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.table import Column

    whole = Column(no_wrap=True)
    item = Column(no_wrap=True, overflow="ellipsis", max_width=max(8, width - 60))
    return [
        TextColumn("{task.description}", table_column=whole),
        BarColumn(bar_width=20),
        MofNCompleteColumn(table_column=whole),
        TimeElapsedColumn(table_column=whole),
        TextColumn("{task.fields[item]}", table_column=item),
    ]
