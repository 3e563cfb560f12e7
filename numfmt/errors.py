"""The one exception family numfmt raises for bad input.

Every error a user can cause (an unknown format, a value that cannot be parsed, a NaN where
the format has none, an overflow under ``overflow="error"``) is a :class:`NumfmtError`, a
``ValueError`` whose message is one sentence a person can act on. The CLI prints that sentence
and exits with status 2; it never shows a traceback for these.
"""

from __future__ import annotations


class NumfmtError(ValueError):
    """Bad input to numfmt: the message says what was wrong and what is accepted."""


class FormatNameError(NumfmtError):
    """A format name that numfmt does not know."""


class ParseError(NumfmtError):
    """A value or code string that cannot be read."""


class NotRepresentableError(NumfmtError):
    """A value the format cannot hold under the chosen policy (NaN, overflow, sign)."""


class MissingDependency(NumfmtError, ModuleNotFoundError):
    """An optional library (torch, matplotlib, scikit-learn, transformers ...) that a function
    needs is not installed: the message says which of numfmt's extras brings it and the pip
    line that installs it (``numfmt._extras``)."""


class NumfmtWarning(UserWarning):
    """Something a user should know about a result that is still given: a scale that did not
    fit its format and was saturated, so some values were clipped."""


class SlowPathWarning(NumfmtWarning):
    """A slower path with the same result: a quantized layer multiplies through its decoded
    float weight, because no packed kernel (``numfmt.nn.packed``) takes its scheme or device
    (the speed and the memory are not those of the packed weight); or a CUDA tensor that a
    fused quantization kernel (``numfmt.quant._gpu``) would take is quantized by torch
    operations instead (no Triton, or a kernel that cannot run there). Said once per reason
    (:func:`slow_path_once`)."""


_said: set[str] = set()


def slow_path_once(message: str, stacklevel: int = 2) -> None:
    """Warn ``SlowPathWarning(message)`` the first time in a process that it is said;
    ``stacklevel`` as ``warnings.warn`` counts it from the caller."""
    if message in _said:
        return
    _said.add(message)
    import warnings

    warnings.warn(message, SlowPathWarning, stacklevel=stacklevel + 1)
