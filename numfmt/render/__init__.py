"""Rendering: rich terminal output (and, through rich, notebook HTML) for numfmt's results.

Each module registers a view per result class of one layer (``numfmt._display``'s
``renderer`` and ``html_renderer``): ``terminal`` for the formats layer, ``quant`` for the
quantization layer, ``nn`` for the model floor ... They load on a result's first view
(:func:`load_views`), so importing numfmt loads neither rich nor these modules.
"""

from __future__ import annotations

from collections.abc import Callable


def _terminal() -> None:
    from numfmt.render import terminal  # noqa: F401 (registers its views)


def _arith() -> None:
    from numfmt.render import arith  # noqa: F401


def _quant() -> None:
    from numfmt.render import quant  # noqa: F401


def _models() -> None:
    from numfmt.render import nn  # noqa: F401


def _memory() -> None:
    from numfmt.render import memory  # noqa: F401


def _lessons() -> None:
    from numfmt.render import lessons  # noqa: F401


def _catalog() -> None:
    from numfmt.render import catalog  # noqa: F401


def _exercises() -> None:
    from numfmt.render import exercises  # noqa: F401


def _summary() -> None:
    from numfmt.render import summary  # noqa: F401


def _training() -> None:
    from numfmt.render import training  # noqa: F401


def _matmul() -> None:
    from numfmt.render import matmul  # noqa: F401


def _html() -> None:
    from numfmt.render import html  # noqa: F401


#: Where a result is defined -> what registers its terminal view (the most specific wins:
#: ``numfmt memory 8e9`` loads no torch, the lesson list no model).
VIEWS: dict[str, Callable[[], None]] = {
    "numfmt.formats": _terminal,
    "numfmt.arith": _arith,
    "numfmt.quant": _quant,
    "numfmt.nn": _models,
    "numfmt.models": _models,
    "numfmt.eval": _models,
    "numfmt.eval.memory": _memory,
    "numfmt.lessons": _lessons,
    "numfmt.lessons.catalog": _catalog,
    "numfmt.lessons.summary": _summary,
    "numfmt.lessons.exercises": _exercises,
    "numfmt.nn.training": _training,
    "numfmt.lessons.training": _training,
    "numfmt.lessons.matmul": _matmul,
}
#: Results that draw their own HTML for notebooks (the rest export their rich rendering).
HTML_VIEWS: dict[str, Callable[[], None]] = {"numfmt.formats": _html, "numfmt.arith": _arith}


def load_views(module: str, *, html: bool = False) -> None:
    """Register the views of the results defined in ``module`` (a module's ``__name__``)."""
    table = HTML_VIEWS if html else VIEWS
    matching = [prefix for prefix in table if module == prefix or module.startswith(prefix + ".")]
    if matching:
        table[max(matching, key=len)]()
