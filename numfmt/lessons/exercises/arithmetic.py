"""Lesson 8's exercises (arithmetic): where a sum stagnates, an addition's order, and the
cancellation of two nearly equal numbers, each computed by ``numfmt.arith``."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import numfmt
from numfmt.lessons.exercises.answers import Choice, Decimal, Option
from numfmt.lessons.exercises.core import Problem, Spec, rounded
from numfmt.lessons.exercises.text import Text, exact_decimal, percent, readable, scientific

#: Formats and their significant bits (the leading one counted).
_PRECISION = {"fp16": 11, "bf16": 8, "fp8_e4m3": 4, "fp8_e5m2": 3}


def stagnation(rng: np.random.Generator) -> Problem:
    import numfmt.arith as arith

    name = str(rng.choice(list(_PRECISION)))
    p = _PRECISION[name]
    c = Fraction(2) ** int(rng.integers(-3, 3))
    terms = 2**p + 64
    result = arith.summation([float(c)] * terms, name, orders=("sequential",))
    assert result.stall_value is not None and result.stall_index is not None  # it stalls
    stall = Fraction(result.stall_value)
    top = Fraction(numfmt.get_format(name).max_value)
    # bf16's largest has 39 digits: written as 3.4e38
    top_text = readable(top) if top < 10**7 else scientific(top, 3)
    text = exact_decimal(c)
    return Problem(
        question=Text(
            f"Starting from 0, {text} is added again and again in {name} ({p} significant "
            "bits), each addition rounded to nearest. At what value does the sum stop "
            "growing?",
            f"Empezando en 0, se suma {text} una y otra vez en {name} ({p} bits "
            "significativos), redondeando cada suma al más cercano. ¿En qué valor deja de "
            "crecer la suma?",
        ),
        answer=Decimal(None, example="2048"),
        expected=stall,
        working=Text(
            f"Below {exact_decimal(stall)} every partial sum is a multiple of {text} with at "
            f"most {p} significant bits, so it is exact. From {exact_decimal(stall)} = "
            f"{text} x 2^{p} on, {name}'s values are {exact_decimal(2 * c)} apart: "
            f"{exact_decimal(stall)} + {text} lies exactly half-way between two of them, and "
            f"the tie goes to the even one, {exact_decimal(stall)} itself. The sum is stuck "
            f"(numfmt finds it stops at term {result.stall_index + 1}).",
            f"Por debajo de {exact_decimal(stall)} cada suma parcial es un múltiplo de {text} "
            f"con {p} bits significativos como mucho, así que es exacta. A partir de "
            f"{exact_decimal(stall)} = {text} x 2^{p}, los valores de {name} distan "
            f"{exact_decimal(2 * c)}: {exact_decimal(stall)} + {text} queda justo en medio "
            f"de dos, y el empate va al par, el propio {exact_decimal(stall)}. La suma se "
            f"estanca (numfmt ve que se detiene en el término {result.stall_index + 1}).",
        ),
        hint=f"numfmt sum {text} --count {terms} -f {name}",
        mistakes=(
            (
                top,
                Text(
                    f"{top_text} is {name}'s largest value; the sum stops long "
                    "before, when the step is too small for the gap between its values.",
                    f"{top_text} es el mayor valor de {name}; la suma se detiene "
                    "mucho antes, cuando el paso es pequeño para la distancia entre sus "
                    "valores.",
                ),
            ),
            (
                2 * stall,
                Text(
                    f"At {exact_decimal(stall)} the step is already half the gap, and a tie "
                    "rounds to even: the sum stops there, not when the step is a quarter of it.",
                    f"En {exact_decimal(stall)} el paso ya es la mitad de la distancia, y el "
                    "empate va al par: la suma se detiene ahí, no cuando el paso es un cuarto.",
                ),
            ),
            (
                Fraction(2) ** p,
                Text(
                    f"2^{p} is where adding 1 stops; adding {text}, scale it by {text}.",
                    f"2^{p} es donde se detiene sumar 1; sumando {text}, multiplícalo por {text}.",
                ),
            ),
        ),
        values={"step": str(c), "format": name},
    )


_ORDER = Choice(
    (
        Option("A", Text("(a + b) + c is larger", "(a + b) + c es mayor")),
        Option("B", Text("a + (b + c) is larger", "a + (b + c) es mayor")),
        Option("C", Text("both are the same", "los dos son iguales"), ("same", "igual", "iguales")),
    )
)


def order(rng: np.random.Generator) -> Problem:
    import numfmt.arith as arith

    name = str(rng.choice(["fp16", "bf16"]))
    p = _PRECISION[name]
    a = Fraction(2) ** (p + int(rng.integers(-1, 2)))
    gap = a / 2 ** (p - 1)  # between a and the next value up
    b, c = (gap * Fraction(int(k), 4) for k in rng.integers(1, 4, 2))
    fa, fb, fc = float(a), float(b), float(c)
    left = Fraction(float(arith.add(arith.add(fa, fb, name), fc, name)))
    bc = Fraction(float(arith.add(fb, fc, name)))
    right = Fraction(float(arith.add(fa, float(bc), name)))
    ab = Fraction(float(arith.add(fa, fb, name)))
    key = "A" if left > right else "B" if right > left else "C"
    sa, sb, sc = exact_decimal(a), exact_decimal(b), exact_decimal(c)
    return Problem(
        question=Text(
            f"In {name}, with a = {sa}, b = {sb} and c = {sc}, each addition rounded to "
            "nearest (ties to even): compare (a + b) + c with a + (b + c). "
            + " ".join(f"{o.key}) {o.label('en')}." for o in _ORDER.options),
            f"En {name}, con a = {sa}, b = {sb} y c = {sc}, redondeando cada suma al más "
            "cercano (empates al par): compara (a + b) + c con a + (b + c). "
            + " ".join(f"{o.key}) {o.label('es')}." for o in _ORDER.options),
        ),
        answer=_ORDER,
        expected=key,
        working=Text(
            f"Next to {sa}, {name}'s values are {exact_decimal(gap)} apart. (a + b) + c: "
            f"{sa} + {sb} = {exact_decimal(a + b)} rounds to {exact_decimal(ab)}, then "
            f"{exact_decimal(ab)} + {sc} = {exact_decimal(ab + c)} rounds to "
            f"{exact_decimal(left)}. a + (b + c): {sb} + {sc} = {exact_decimal(bc)} (exact), "
            f"and {sa} + {exact_decimal(bc)} = {exact_decimal(a + bc)} rounds to "
            f"{exact_decimal(right)}. The exact sum is {exact_decimal(a + b + c)}. "
            + (
                "Here both orders land on the same value; with other sizes they need not."
                if key == "C"
                else "Small terms added one by one to a large one can each be rounded away "
                "(or up); added together first, they count as one."
            ),
            f"Junto a {sa}, los valores de {name} distan {exact_decimal(gap)}. (a + b) + c: "
            f"{sa} + {sb} = {exact_decimal(a + b)} se redondea a {exact_decimal(ab)}, y "
            f"{exact_decimal(ab)} + {sc} = {exact_decimal(ab + c)} se redondea a "
            f"{exact_decimal(left)}. a + (b + c): {sb} + {sc} = {exact_decimal(bc)} (exacto), "
            f"y {sa} + {exact_decimal(bc)} = {exact_decimal(a + bc)} se redondea a "
            f"{exact_decimal(right)}. La suma exacta es {exact_decimal(a + b + c)}. "
            + (
                "Aquí los dos órdenes llegan al mismo valor; con otros tamaños no tiene por "
                "qué ser así."
                if key == "C"
                else "Los términos pequeños sumados uno a uno a uno grande pueden perderse "
                "(o inflarse) al redondear; sumados antes entre sí, cuentan como uno."
            ),
        ),
        hint=f'numfmt calc "({sa} + {sb}) + {sc}" -f {name}',
        values={"a": str(a), "b": str(b), "c": str(c), "format": name},
    )


def cancellation(rng: np.random.Generator) -> Problem:
    import numfmt.arith as arith

    while True:
        d1, d2 = sorted(int(v) for v in rng.integers(1, 400, 2))
        x, y = 1 + Fraction(d2, 10_000), 1 + Fraction(d1, 10_000)
        if d1 != d2:
            break
    xs, ys = rounded(x, "bf16"), rounded(y, "bf16")
    diff = Fraction(float(arith.sub(float(xs), float(ys), "bf16")))
    true = x - y
    rel = abs(diff - true) / true
    return Problem(
        question=Text(
            f"x = {exact_decimal(x)} and y = {exact_decimal(y)} are stored in bfloat16 (8 "
            "significant bits), then x - y is computed in bfloat16. What is the result?",
            f"x = {exact_decimal(x)} e y = {exact_decimal(y)} se guardan en bfloat16 (8 bits "
            "significativos), y después se calcula x - y en bfloat16. ¿Cuál es el resultado?",
        ),
        answer=Decimal(None, example="0.0078125"),
        expected=diff,
        working=Text(
            f"Near 1, bf16's values are 2^-7 = 0.0078125 apart. x is stored as "
            f"{exact_decimal(xs)}, y as {exact_decimal(ys)}. Their difference, "
            f"{exact_decimal(diff)}, is exact (two numbers this close subtract without "
            f"rounding), yet the true x - y is {exact_decimal(true)}: the relative error is "
            f"{percent(rel, 'en')}. The rounding of x and y, tiny beside 1, is all that is left "
            "once the 1s cancel.",
            f"Cerca de 1, los valores de bf16 distan 2^-7 = 0.0078125. x se guarda como "
            f"{exact_decimal(xs)} e y se guarda como {exact_decimal(ys)}. Su diferencia, "
            f"{exact_decimal(diff)}, es exacta (dos números tan cercanos se restan sin "
            f"redondeo), pero el x - y verdadero es {exact_decimal(true)}: el error relativo "
            f"es del {percent(rel, 'es')}. El redondeo de x e y, diminuto al lado de 1, es todo lo "
            "que queda cuando los 1 se cancelan.",
        ),
        hint=f'numfmt calc "{exact_decimal(x)} - {exact_decimal(y)}" -f bf16',
        mistakes=(
            (
                true,
                Text(
                    f"{exact_decimal(true)} is the exact difference; in bf16, x and y were "
                    "rounded first.",
                    f"{exact_decimal(true)} es la diferencia exacta; en bf16, x e y se "
                    "redondearon antes.",
                ),
            ),
        ),
        values={"x": str(x), "y": str(y)},
    )


EXERCISES = (
    Spec("stagnation", Text("Where a sum stagnates", "Dónde se estanca una suma"), stagnation),
    Spec(
        "compare",
        Text("Does the order of additions matter?", "¿Importa el orden de las sumas?"),
        order,
    ),
    Spec(
        "compute",
        Text("Cancellation: x - y in bf16", "Cancelación: x - y en bf16"),
        cancellation,
    ),
)
