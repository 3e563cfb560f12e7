"""What an answer looks like, how it is read, and when it counts as the right one.

Four kinds of answer, each with a form to show the student, a parser (never ``eval``) and a
comparison:

============  ==================================================================  ============
kind          accepted spellings                                                  compared
============  ==================================================================  ============
``Bits``      ``11111101``, ``0b11111101``, ``1111 1101``, ``1111_1101``           exactly
``Integer``   ``-3``, ``+3``, ``-3.0``, ``1e3``, ``2^11``, ``-10 461``             exactly
``Decimal``   ``0.0176``, ``-0.40625``, ``13/32``, ``1.5e-3``, ``2^-10``           exactly, or to
                                                                                  N significant
                                                                                  digits
``Choice``    ``A``, ``b)``, or an option's word (``zero``, ``cero``)              exactly
============  ==================================================================  ============

Digits may be grouped in threes by a space (``8 000 000 000``; a narrow or thin space too, as
numfmt prints them), never by commas. An answer that does not have the asked form (letters
where bits are asked, ``3,14`` for ``3.14``, ``-10,461`` for the integer ``-10461``, seven bits
where eight are, ``inf`` or ``1e999`` for a number) raises :class:`AnswerError`: a
``NumfmtError`` whose message, in the student's language, says what to write instead.
"""

from __future__ import annotations

import re
import sys
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
#: Thousands grouped by commas (1,000 or -10,461; 1,000,000; 1,000.5), or by dots in more
#: than one place (1.000.000, as Spanish may write a million).
_COMMA_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?$")
_DOT_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:\.\d{3})+$")
#: A number beyond float64's largest (about 1.8e308) is infinite in every format numfmt has:
#: no answer. An exponent of six digits or more says so before the slow exact reading.
_LARGEST = Fraction(sys.float_info.max)
_HUGE_EXPONENT = re.compile(r"e\+?0*\d{6,}$", re.IGNORECASE)


def _without_separators(s: str, lang: str) -> AnswerError:
    plain = s.replace(",", "") if "," in s else s.replace(".", "")
    return _fail(
        lang,
        f"write the number without separators between its digits: {plain}, not {s}",
        f"escribe el número sin separadores entre las cifras: {plain}, no {s}",
    )


def _number(text: str, lang: str, what: Text, *, integer: bool = False) -> Fraction:
    """A number read exactly (as ``numfmt show`` reads one, digits grouped by spaces
    included), or one clear message; ``integer``: the answer is an integer, so commas between
    groups of three digits are thousands (``-10,461``), not a decimal comma."""
    from numfmt.errors import ParseError
    from numfmt.formats.value import parse_value

    s = text.strip()
    thousands = _COMMA_THOUSANDS.match(s)
    if thousands and (integer or s.count(",") > 1 or "." in s):
        raise _without_separators(s, lang)
    if _DOT_THOUSANDS.match(s) and s.count(".") > 1:
        raise _without_separators(s, lang)
    if _DECIMAL_COMMA.match(s):
        dotted = s.replace(",", ".")
        raise _fail(
            lang,
            f"write the decimal point as a dot: {dotted}, not {s}",
            f"escribe el separador decimal con punto: {dotted}, no {s}",
        )
    infinite = _fail(
        lang,
        f"the answer is a finite number ({what('en')}), not {s}",
        f"la respuesta es un número finito ({what('es')}), no {s}",
    )
    if _HUGE_EXPONENT.search(s):
        raise infinite
    try:
        value = parse_value(s)
    except ParseError:
        raise _fail(
            lang,
            f"'{s}' is not a number; the answer is {what('en')}",
            f"'{s}' no es un número; la respuesta es {what('es')}",
        ) from None
    if value.kind != "finite" or value.magnitude > _LARGEST:
        raise infinite
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
    """A whole number (``-3.0`` and ``1e3`` are read as the integers they are). The form
    shows ``example``, or ``instead`` where the example is the answer (a power of two for a
    power of two, a count in range for a count)."""

    example: int = -42
    instead: int | None = None

    def form(self, lang: str, expected: Any = None) -> str:
        example = self.example
        if example == expected:  # an example is never the answer
            example = self.instead if self.instead is not None else example + 11
        return Text(f"an integer, like {example}", f"un entero, como {example}")(lang)

    def parse(self, text: str, lang: str) -> int:
        s = text.strip()
        x = _number(s, lang, Text("an integer", "un entero"), integer=True)
        if x.denominator != 1:
            if _DOT_THOUSANDS.match(s):  # 10.461: a Spanish way to write ten thousand
                plain = s.replace(".", "")
                raise _fail(
                    lang,
                    f"the answer is an integer, and {s} is not one (if the dot groups "
                    f"thousands, write it without separators: {plain})",
                    f"la respuesta es un entero, y {s} no lo es (si el punto separa los "
                    f"miles, escríbelo sin separadores: {plain})",
                )
            raise _fail(
                lang,
                f"the answer is an integer, and {s} is not one",
                f"la respuesta es un entero, y {s} no lo es",
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

    def near(self, given: Any, expected: Any, text: str = "") -> Text | None:
        """What to say of a wrong answer (``given``, as the student wrote it in ``text``)
        that is ``expected`` correctly rounded to fewer digits than asked (``0.0176`` where 4
        digits are asked, ``0.0156`` for the exact ``0.015625``), or that has the asked
        digits but is a neighbour of the right rounding (``0.01764`` for ``0.017647``);
        else None."""
        g, e = Fraction(given), Fraction(expected)
        if e == 0 or self.same(g, e):
            return None
        k = magnitude(e)
        fewest = self.digits if self.digits is not None else _EXACT_DIGITS
        written = _written_digits(text)
        if self.digits is not None and written is not None and written >= self.digits:
            fewest = 1  # as many digits as asked: not rounded to fewer
        for d in range(1, fewest):
            unit = Fraction(10) ** (k - d + 1)
            if (g / unit).denominator == 1 and abs(g - e) <= unit / 2:
                if self.digits is None:
                    return Text(
                        "Close, but give the exact value, with all its digits.",
                        "Cerca, pero da el valor exacto, con todas sus cifras.",
                    )
                return Text(
                    f"Close, but give {self.digits} significant digits.",
                    f"Cerca, pero da {self.digits} cifras significativas.",
                )
        if self.digits is not None:
            unit = Fraction(10) ** (k - self.digits + 1)
            if (g / unit).denominator == 1 and abs(g - e) < unit * 3 / 2:
                return Text(
                    f"Close, but round to the nearest value with {self.digits} significant digits.",
                    f"Cerca, pero redondea al valor más cercano con {self.digits} cifras "
                    "significativas.",
                )
        return None

    def spell(self, value: Any) -> str:
        if self.digits is None:
            return exact_decimal(Fraction(value))
        return significant(Fraction(value), self.digits)


#: The most digits a rounded answer to an exact question is checked for (``near``).
_EXACT_DIGITS = 40
_PLAIN_DECIMAL = re.compile(r"^[+-]?(\d*)\.?(\d*)(?:e[+-]?\d+)?$", re.IGNORECASE)


def _written_digits(text: str) -> int | None:
    """How many significant digits a plain decimal is written with (``0.007060``: 4); None
    for other forms (``13/32``, ``2^-10``)."""
    m = _PLAIN_DECIMAL.match(text.strip())
    if m is None:
        return None
    digits = (m.group(1) + m.group(2)).lstrip("0")
    return len(digits) or None


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
