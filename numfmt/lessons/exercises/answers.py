"""What an answer looks like, how it is read, and when it counts as the right one.

Four kinds of answer, each with a form to show the student, a parser (never ``eval``) and a
comparison:

============  ==================================================================  ============
kind          accepted spellings                                                  compared
============  ==================================================================  ============
``Bits``      ``11111101``, ``0b11111101``, ``1111 1101``, ``1111_1101``           exactly
``Integer``   ``-3``, ``+3``, ``-3.0``, ``1e3``, ``2^11``                          exactly
``Decimal``   ``0.0176``, ``-0.40625``, ``13/32``, ``1.5e-3``, ``2^-10``           exactly, or to
                                                                                  N significant
                                                                                  digits
``Choice``    ``A``, ``b)``, or an option's word (``zero``, ``cero``)              exactly
============  ==================================================================  ============

An answer that does not have the asked form (letters where bits are asked, ``3,14`` for
``3.14``, seven bits where eight are) raises :class:`AnswerError`: a ``NumfmtError`` whose
message, in the student's language, says what to write instead.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from numfmt.errors import NumfmtError
from numfmt.lessons.exercises.text import Text, exact_decimal, magnitude, significant


class AnswerError(NumfmtError):
    """An answer that is not in the asked form: the message says what to write."""


def _fail(lang: str, en: str, es: str) -> AnswerError:
    return AnswerError(es if lang == "es" else en)


_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+$")


def _number(text: str, lang: str, what: Text) -> Fraction:
    """A number read exactly (as ``numfmt show`` reads one), or one clear message."""
    from numfmt.errors import ParseError
    from numfmt.formats.value import parse_value

    s = text.strip()
    if _DECIMAL_COMMA.match(s):
        dotted = s.replace(",", ".")
        raise _fail(
            lang,
            f"write the decimal point as a dot: {dotted}, not {s}",
            f"escribe el separador decimal con punto: {dotted}, no {s}",
        )
    try:
        value = parse_value(s)
    except ParseError:
        raise _fail(
            lang,
            f"'{s}' is not a number; the answer is {what('en')}",
            f"'{s}' no es un número; la respuesta es {what('es')}",
        ) from None
    if value.kind != "finite":
        raise _fail(
            lang,
            f"the answer is a finite number ({what('en')}), not {s}",
            f"la respuesta es un número finito ({what('es')}), no {s}",
        )
    return -value.magnitude if value.negative else value.magnitude


@dataclass(frozen=True)
class Bits:
    """A bit pattern of ``width`` bits, written in ``groups`` (the fields of a float: sign,
    exponent, mantissa) when it is shown."""

    width: int
    groups: tuple[int, ...] = ()

    def form(self, lang: str, expected: Any = None) -> str:
        code = (0b0110 << (self.width - 4)) | 0b1
        if code == expected:  # an example is never the answer
            code = (0b0101 << (self.width - 4)) | 0b10
        example = self.spell(code)
        if self.groups:
            return Text(
                f"{self.width} bits in the order sign, exponent, mantissa, like {example} "
                "(spaces or _ between the fields are fine)",
                f"{self.width} bits en el orden signo, exponente, mantisa, como {example} "
                "(puedes separar los campos con espacios o _)",
            )(lang)
        return Text(
            f"{self.width} bits, like {example} (spaces or _ between groups are fine)",
            f"{self.width} bits, como {example} (puedes agruparlos con espacios o _)",
        )(lang)

    def parse(self, text: str, lang: str) -> int:
        s = text.strip().lower()
        s = s.removeprefix("0b")
        s = re.sub(r"[\s_|.]", "", s)
        if not s or set(s) - {"0", "1"}:
            raise _fail(
                lang,
                f"write {self.width} bits, only 0s and 1s (like {self.spell(1)}), not "
                f"'{text.strip()}'",
                f"escribe {self.width} bits, solo ceros y unos (como {self.spell(1)}), no "
                f"'{text.strip()}'",
            )
        if len(s) != self.width:
            raise _fail(
                lang,
                f"{self.width} bits are asked for and '{text.strip()}' has {len(s)}: write "
                "every bit, the leading zeros too",
                f"se piden {self.width} bits y '{text.strip()}' tiene {len(s)}: escribe todos, "
                "también los ceros de la izquierda",
            )
        return int(s, 2)

    def same(self, given: Any, expected: Any) -> bool:
        return bool(given == expected)

    def spell(self, value: Any) -> str:
        s = format(int(value), f"0{self.width}b")
        if not self.groups:
            return s
        out, i = [], 0
        for g in self.groups:
            out.append(s[i : i + g])
            i += g
        return " ".join(out)


@dataclass(frozen=True)
class Integer:
    """A whole number (``-3.0`` and ``1e3`` are read as the integers they are)."""

    example: int = -42

    def form(self, lang: str, expected: Any = None) -> str:
        example = self.example if self.example != expected else self.example + 11
        return Text(f"an integer, like {example}", f"un entero, como {example}")(lang)

    def parse(self, text: str, lang: str) -> int:
        x = _number(text, lang, Text("an integer", "un entero"))
        if x.denominator != 1:
            raise _fail(
                lang,
                f"the answer is an integer, and {text.strip()} is not one",
                f"la respuesta es un entero, y {text.strip()} no lo es",
            )
        return int(x)

    def same(self, given: Any, expected: Any) -> bool:
        return bool(given == expected)

    def spell(self, value: Any) -> str:
        return str(int(value))


@dataclass(frozen=True)
class Decimal:
    """A number: exact (``digits=None``) or to ``digits`` significant digits, where an answer
    within half a unit of the last asked digit of the exact value counts."""

    digits: int | None = 3
    example: str = "0.0176"

    def form(self, lang: str, expected: Any = None) -> str:
        example = self.example
        if expected is not None and abs(Fraction(example) - Fraction(expected)) <= abs(
            Fraction(example) / 10
        ):  # an example is never the answer, nor near it
            example = (
                "0.3" if abs(Fraction(expected) - Fraction(3, 10)) > Fraction(1, 10) else "7.5"
            )
        if self.digits is None:
            return Text(
                f"the exact value, as a decimal like {example} (a fraction like 13/32, "
                "or 2^-10, is fine too)",
                f"el valor exacto, en decimal como {example} (también vale una fracción "
                "como 13/32, o 2^-10)",
            )(lang)
        return Text(
            f"a decimal number to {self.digits} significant digits, like {example} (with a dot)",
            f"un número decimal con {self.digits} cifras significativas, como {example} "
            "(con punto)",
        )(lang)

    def parse(self, text: str, lang: str) -> Fraction:
        return _number(text, lang, Text("a decimal number", "un número decimal"))

    def tolerance(self, expected: Any) -> Fraction:
        """How far an answer may lie from ``expected``: half a unit of its last asked digit."""
        e = Fraction(expected)
        if self.digits is None or e == 0:
            return Fraction(0)
        return Fraction(10) ** (magnitude(e) - self.digits + 1) / 2

    def same(self, given: Any, expected: Any) -> bool:
        return bool(abs(Fraction(given) - Fraction(expected)) <= self.tolerance(expected))

    def spell(self, value: Any) -> str:
        if self.digits is None:
            return exact_decimal(Fraction(value))
        return significant(Fraction(value), self.digits)


def _plain(word: str) -> str:
    """Lower case, without accents or trailing punctuation: 'Sí.' -> 'si'."""
    word = unicodedata.normalize("NFKD", word.strip().lower())
    word = "".join(c for c in word if not unicodedata.combining(c))
    return word.strip(" .)(:")


@dataclass(frozen=True)
class Option:
    """One choice: its letter, what it says, and words that name it (any language)."""

    key: str
    label: Text
    words: tuple[str, ...] = ()


@dataclass(frozen=True)
class Choice:
    """One of a few options, answered by its letter or by a word that names it."""

    options: tuple[Option, ...]

    @property
    def keys(self) -> list[str]:
        return [o.key for o in self.options]

    def _listed(self, lang: str) -> str:
        keys = self.keys
        return f"{', '.join(keys[:-1])} {'o' if lang == 'es' else 'or'} {keys[-1]}"

    def form(self, lang: str, expected: Any = None) -> str:
        return Text("a letter: ", "una letra: ")(lang) + self._listed(lang)

    def parse(self, text: str, lang: str) -> str:
        said = _plain(text)
        for o in self.options:
            if said == o.key.lower() or said in (_plain(w) for w in o.words):
                return o.key
        raise _fail(
            lang,
            f"answer with one letter, {self._listed('en')}; not '{text.strip()}'",
            f"responde con una letra, {self._listed('es')}; no '{text.strip()}'",
        )

    def same(self, given: Any, expected: Any) -> bool:
        return bool(given == expected)

    def label(self, key: str) -> Text:
        return next(o.label for o in self.options if o.key == key)

    def spell(self, value: Any) -> str:
        return str(value)


Answer = Bits | Integer | Decimal | Choice
