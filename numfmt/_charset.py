"""What a console can print: every character numfmt writes, spelled in ASCII where the console's
encoding lacks it (a Windows console in cp1252, ``PYTHONIOENCODING=ascii``, a C locale).

Tables switch to ASCII borders by themselves there (rich draws ``+--+`` when the encoding is
not UTF); this module spells the rest: ``->`` for an arrow, ``x`` for a times sign, ``sum`` for
a capital sigma, ``alpha`` for an alpha, and box and block characters as ``-``, ``|`` and
``+``. The codec error handler ``numfmt-ascii`` does it for any stream it is set on.
"""

from __future__ import annotations

import codecs
import io
import sys
import unicodedata
from typing import Any

#: ASCII spellings of the characters numfmt (or a model's text) may write.
SPELLINGS = {
    "\u202f": " ",  # the narrow space between groups of digits (8 000 000 000)
    "\u2192": "->",
    "\u2190": "<-",
    "\u2194": "<->",
    "\u21d2": "=>",
    "\u00d7": "x",
    "\u00b7": "*",
    "\u2219": "*",
    "\u2212": "-",
    "\u2013": "-",
    "\u2014": "--",
    "\u2026": "...",
    "\u2248": "~",
    "\u2260": "!=",
    "\u2264": "<=",
    "\u2265": ">=",
    "\u00b1": "+/-",
    "\u221e": "inf",
    "\u221a": "sqrt",
    "\u2211": "sum",
    "\u00b2": "^2",
    "\u00b3": "^3",
    "\u2018": "'",
    "\u2019": "'",
    "\u201c": '"',
    "\u201d": '"',
    "\u00ab": '"',
    "\u00bb": '"',
    "\u00a0": " ",
    "\u2713": "v",
    "\u2717": "x",
    "\u2022": "*",
    "\u00bf": "",  # Spanish opening marks: the closing ? and ! carry the sentence in ASCII
    "\u00a1": "",
    "\u00ba": "o",  # 1.º
    "\u00aa": "a",
}

#: Greek letters by name: alpha, beta ... (capital sigma is a sum).
_GREEK = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho"
_GREEK += " final_sigma sigma tau upsilon phi chi psi omega"
for _i, _name in enumerate(_GREEK.split()):
    if _name != "final_sigma":
        SPELLINGS.setdefault(chr(0x03B1 + _i), _name)
        SPELLINGS.setdefault(chr(0x0391 + _i), _name.capitalize())
SPELLINGS["\u03a3"] = "sum"
SPELLINGS["\u03c2"] = "sigma"

HANDLER = "numfmt-ascii"


def spell(char: str) -> str:
    """One character in ASCII: its spelling, a box part as ``-``, ``|`` or ``+``, a letter
    without its accent (``é`` -> ``e``), or ``?``."""
    if char in SPELLINGS:
        return SPELLINGS[char]
    code = ord(char)
    if 0x2500 <= code <= 0x259F:  # box drawing and block elements
        name = unicodedata.name(char, "")
        if "DRAWINGS" not in name:
            return "#"
        across = any(w in name for w in ("HORIZONTAL", "LEFT", "RIGHT"))
        down = any(w in name for w in ("VERTICAL", "UP", "DOWN"))
        return "+" if across == down else "-" if across else "|"
    bare = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
    return bare or "?"


def _handle(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    bad = error.object[error.start : error.end]
    return "".join(spell(c) for c in bad), error.end


codecs.register_error(HANDLER, _handle)


def encoding_of(stream: Any) -> str:
    """A stream's encoding, ``utf-8`` when it does not say."""
    return (getattr(stream, "encoding", None) or "utf-8").lower()


def is_unicode(encoding: str) -> bool:
    """Whether ``encoding`` prints every character (a UTF encoding)."""
    return codecs.lookup(encoding).name.startswith("utf")


def printable(text: str, encoding: str) -> str:
    """``text`` with each character ``encoding`` cannot print spelled in ASCII."""
    if is_unicode(encoding):
        return text
    return text.encode(encoding, errors=HANDLER).decode(encoding)


def spell_on(stream: Any) -> None:
    """Set the ``numfmt-ascii`` handler on a text stream whose encoding is not UTF, so that
    whatever is written there (rich's views, progress, warnings) prints instead of raising
    UnicodeEncodeError. Streams that are UTF, or cannot be reconfigured, are left alone."""
    if is_unicode(encoding_of(stream)) or not isinstance(stream, io.TextIOWrapper):
        return
    stream.reconfigure(errors=HANDLER)


class EncodedText(io.StringIO):
    """A StringIO that says which encoding its text is for: a rich Console recording into it
    draws ASCII borders when that encoding is not UTF."""

    def __init__(self, encoding: str):
        super().__init__()
        self._target = encoding

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._target


def stdout_encoding() -> str:
    """The encoding of the process's standard output."""
    return encoding_of(sys.stdout)
