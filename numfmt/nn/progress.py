"""Progress over a model's layers: a rich bar on a terminal, silence in pipes and notebooks
that do not ask, or a callback the caller gives (the command line's bar)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any

Progress = bool | Callable[[str], None] | None


@contextlib.contextmanager
def tracker(total: int, description: str, progress: Progress) -> Iterator[Callable[[str], None]]:
    """A function to call once per finished item, with its name.

    ``progress``: None draws a bar when stderr is a terminal, True always, False never; a
    callable is called instead of drawing.
    """
    if callable(progress):
        yield progress
        return
    draw = sys.stderr.isatty() if progress is None else bool(progress)
    if not draw or total == 0:
        yield lambda name: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[item]}"),
        transient=True,
    )
    with bar:
        task = bar.add_task(description, total=total, item="")

        def step(name: str, _: Any = None) -> None:
            bar.update(task, advance=1, item=name)

        yield step
