"""How the exercises write: a sentence in two languages, and numbers as a person reads them
(``0.0176``, ``-0.40625``, ``1.23e-08``, ``- 5`` inside a sum, ``70 553 706 496``, ``0.48%``).
Long integers are grouped in threes by a narrow no-break space (``numfmt._display.grouped``),
never by commas, which read as decimal commas in Spanish; numbers the student types (answers,
commands) are written without separators."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from numfmt._display import grouped

#: From this size on an integer is written in groups of three (10 461); shorter ones (2048,
#: 4096) are not, as SI and the RAE write them.
LONG = 10_000


@dataclass(frozen=True)
class Text:
    """A sentence in English and in Spanish."""

    en: str
    es: str

    def __call__(self, lang: str) -> str:
        return self.es if lang == "es" else self.en


def times_en(n: int) -> str:
    """``once``, ``twice``, ``3 times``."""
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def veces(n: int) -> str:
    """``una vez``, ``dos veces``, ``3 veces``."""
    return {1: "una vez", 2: "dos veces"}.get(n, f"{n} veces")


def significant(x: Fraction | float, digits: int) -> str:
    """x rounded to ``digits`` significant digits, in plain decimals where that reads well
    (``0.0176``, ``2050``), else in scientific notation (``1.23e-08``)."""
    x = Fraction(x)
    if x == 0:
        return "0"
    k = magnitude(x)
    if -4 <= k < 7:
        places = max(0, digits - 1 - k)
        unit = Fraction(10) ** -places
        q = round(x / unit) * unit
        return f"{float(q):.{places}f}"
    return f"{float(x):.{digits - 1}e}"


def magnitude(x: Fraction) -> int:
    """floor(log10 |x|), exactly, for x != 0."""
    a = abs(Fraction(x))
    k = math.floor(math.log10(a.numerator) - math.log10(a.denominator))
    while Fraction(10) ** k > a:
        k -= 1
    while Fraction(10) ** (k + 1) <= a:
        k += 1
    return k


def exact_decimal(x: Fraction | int) -> str:
    """x written exactly: as a decimal where one ends (every binary value's does), else as a
    fraction."""
    x = Fraction(x)
    d = x.denominator
    twos = fives = 0
    while d % 2 == 0:
        d //= 2
        twos += 1
    while d % 5 == 0:
        d //= 5
        fives += 1
    if d != 1:
        return str(x)
    places = max(twos, fives)
    scaled = abs(x.numerator) * (10**places // x.denominator)
    sign = "-" if x < 0 else ""
    if places == 0:
        return f"{sign}{scaled}"
    digits = str(scaled).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def whole(n: int) -> str:
    """An integer as a person reads it: ``2048``, ``-10 461``, ``70 553 706 496`` (narrow
    no-break spaces from 10 000 on)."""
    n = int(n)
    return grouped(n) if abs(n) >= LONG else str(n)


def readable(x: Fraction | int | str) -> str:
    """x written exactly (as :func:`exact_decimal`; a string as it is), its integer part
    grouped when long: ``32 768``, ``65 504``, ``55 487.5``, ``0.015625``, ``6.10e-05``."""
    text = x if isinstance(x, str) else exact_decimal(x)
    sign = "-" if text.startswith("-") else ""
    digits, dot, rest = text.removeprefix("-").partition(".")
    if not digits.isdigit() or not (rest == "" or rest.isdigit()):
        return text  # a fraction, scientific notation
    return sign + whole(int(digits)) + dot + rest


def percent(x: Fraction | float, lang: str, digits: int = 2) -> str:
    """x (a ratio) as a percentage to ``digits`` significant digits: ``0.48%`` in English,
    ``0.48 %`` in Spanish (a space before the sign, as the Spanish pages write it)."""
    text = significant(Fraction(x) * 100, digits)
    return f"{text} %" if lang == "es" else f"{text}%"


def scientific(x: Fraction | float, digits: int = 2) -> str:
    """``6.9e-7``: x in scientific notation, without the exponent's padding zero."""
    mantissa, exponent = f"{float(x):.{digits - 1}e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def dyadic(x: Fraction) -> str:
    """x = k x 2^j with k odd, written so: ``3 x 2^-16``, ``-2^-15``, ``0``."""
    x = Fraction(x)
    if x == 0:
        return "0"
    k, j = abs(x.numerator), 0
    den = x.denominator
    while k % 2 == 0:
        k //= 2
        j += 1
    while den % 2 == 0:
        den //= 2
        j -= 1
    sign = "-" if x < 0 else ""
    if den != 1:
        return str(x)
    return f"{sign}2^{j}" if k == 1 else f"{sign}{k} x 2^{j}"


def plus(x: Fraction | int | str) -> str:
    """``+ 3`` or ``- 3``: the next term of a sum as it is written."""
    text = str(x)
    return f"- {text[1:]}" if text.startswith("-") else f"+ {text}"


def total(terms: list) -> str:
    """``-1664 + 5832 - 3720``: terms written as one sum."""
    first, *rest = [str(t) for t in terms]
    return " ".join([first, *(plus(t) for t in rest)])


def plural(n: int, one: str, many: str) -> str:
    """``1 outlier``, ``3 outliers``: ``one`` and ``many`` with {n} where the count goes."""
    return (one if n == 1 else many).format(n=n)
