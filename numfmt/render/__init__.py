"""Rendering: rich terminal output (and, through rich, notebook HTML) for numfmt's results.

Importing this package registers a renderer per result class (see ``numfmt._display``).
"""

from numfmt.render import quant, terminal

__all__ = ["quant", "terminal"]
