"""Lesson 9's exercises (training): a small update rounded into the weight (lost or not), the
loss scale that lifts a gradient out of fp16's subnormals, and the odds of stochastic
rounding."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import numfmt
from numfmt.lessons.exercises.answers import Decimal, Integer
from numfmt.lessons.exercises.core import Problem, Spec, float_format, rounded
from numfmt.lessons.exercises.text import (
    Text,
    dyadic,
    exact_decimal,
    plus,
    readable,
    scientific,
    significant,
    whole,
)


def _neighbours(x: Fraction, name: str) -> tuple[Fraction, Fraction]:
    """The values of ``name`` at and below x, and at and above it."""
    return rounded(x, name, rounding="down"), rounded(x, name, rounding="up")


def _share(ratio: Fraction, lang: str) -> str:
    """``3/8 of that gap``, ``the whole gap``."""
    if ratio == 1:
        return "toda esa distancia" if lang == "es" else "the whole gap"
    return f"{ratio} de esa distancia" if lang == "es" else f"{ratio} of that gap"


def lost_update(rng: np.random.Generator) -> Problem:
    import numfmt.arith as arith

    name = str(rng.choice(["bf16", "fp16"]))
    m = float_format(name).mantissa_bits
    e = int(rng.integers(-3, 3))
    w = (1 + Fraction(int(rng.integers(0, 8)), 8)) * Fraction(2) ** e
    gap = Fraction(2) ** (e - m)
    sign = 1 if rng.random() < 0.5 else -1
    update = sign * gap * Fraction(int(rng.choice([1, 2, 3, 4, 6, 8])), 8)
    if sign < 0 and w == Fraction(2) ** e:  # just below a power of two the gap halves
        sign, update = 1, -update
    new = Fraction(float(arith.add(float(w), float(update), name)))
    exact = w + update
    return Problem(
        question=Text(
            f"A weight w = {exact_decimal(w)} is stored in {name} ({m} mantissa bits). An "
            f"optimizer step adds {exact_decimal(update)} (= {dyadic(update)}) to it, and the "
            "result is stored in "
            f"{name} again (rounding to nearest, ties to even). What is the new weight?",
            f"Un peso w = {exact_decimal(w)} se guarda en {name} ({m} bits de mantisa). Un "
            f"paso del optimizador le suma {exact_decimal(update)} (= {dyadic(update)}) y el "
            "resultado se vuelve a "
            f"guardar en {name} (redondeo al más cercano, empates al par). ¿Cuál es el nuevo "
            "peso?",
        ),
        answer=Decimal(None, example="1.0078125"),
        expected=new,
        working=Text(
            f"Around {exact_decimal(w)}, {name}'s values are 2^{e - m} = {exact_decimal(gap)} "
            f"apart. The update is {_share(abs(update) / gap, 'en')}; "
            f"w + update = {exact_decimal(exact)} is rounded to the nearest value, "
            f"{exact_decimal(new)}"
            + (
                ": the update is lost."
                if new == w
                else f": the weight moved by {exact_decimal(new - w)}."
            )
            + " An update of half the gap or less is lost (a tie goes to the even value).",
            f"Alrededor de {exact_decimal(w)}, los valores de {name} distan 2^{e - m} = "
            f"{exact_decimal(gap)}. La actualización es {_share(abs(update) / gap, 'es')}"
            f"; w + actualización = {exact_decimal(exact)} se redondea al "
            f"valor más cercano, {exact_decimal(new)}"
            + (
                ": la actualización se pierde."
                if new == w
                else f": el peso se movió {exact_decimal(new - w)}."
            )
            + " Una actualización de media distancia o menos se pierde (un empate va al "
            "valor par).",
        ),
        hint=f'numfmt calc "{exact_decimal(w)} {plus(exact_decimal(update))}" -f {name}',
        mistakes=(
            (
                exact,
                Text(
                    f"{name} cannot hold {exact_decimal(exact)}: it is rounded to one of its "
                    "values.",
                    f"{name} no puede guardar {exact_decimal(exact)}: se redondea a uno de sus "
                    "valores.",
                ),
            ),
            (
                w if new != w else None,
                Text(
                    "The update is more than half the gap here, so the weight moves.",
                    "Aquí la actualización pasa de media distancia, así que el peso se mueve.",
                ),
            ),
            (
                w + sign * gap if new == w else None,
                Text(
                    "The update is at most half the gap: w + update rounds back to w.",
                    "La actualización es como mucho media distancia: w + actualización vuelve "
                    "a w al redondear.",
                ),
            ),
        ),
        values={"w": str(w), "update": str(update), "format": name},
    )


def loss_scale(rng: np.random.Generator) -> Problem:
    fp16 = float_format("fp16")
    normal = Fraction(fp16.min_normal)
    while True:
        g = Fraction(int(rng.integers(11, 99)), 10) * Fraction(1, 10 ** int(rng.integers(7, 11)))
        k = 0
        while numfmt.classify(numfmt.encode_exact(str(g * 2**k), "fp16"), "fp16") != "normal":
            k += 1
        # well clear of the edge: a factor that lands within 3% of 2^-14 is left out
        if all(abs(g * 2**j / normal - 1) > Fraction(3, 100) for j in (k - 1, k)):
            break
    scale = 2**k
    gs = scientific(g)
    unscaled = numfmt.show(str(g), "fp16").to_dict()["class"]
    became = {
        "zero": Text("0: it underflows", "0: se subdesborda"),
        "subnormal": Text("a subnormal, with fewer bits", "un subnormal, con menos bits"),
    }[unscaled]
    return Problem(
        question=Text(
            f"A gradient of {gs} is to be stored in fp16. Loss scaling multiplies "
            "the loss (and so every gradient) by a power of two S before the backward pass. "
            "What is the smallest S that makes this gradient a normal fp16 number (at least "
            "2^-14)?",
            f"Hay que guardar un gradiente de {gs} en fp16. El escalado de la "
            "pérdida multiplica la pérdida (y con ella cada gradiente) por una potencia de dos "
            "S antes de la pasada hacia atrás. ¿Cuál es el menor S que hace de este gradiente "
            "un número normal de fp16 (al menos 2^-14)?",
        ),
        answer=Integer(example=1024, instead=2048),
        expected=scale,
        working=Text(
            f"fp16's smallest normal is 2^-14 = {significant(normal, 3)}. Unscaled, {gs} in fp16 "
            f"becomes {became('en')}. It needs a factor of {significant(normal, 3)} / {gs} = "
            f"{readable(significant(normal / g, 4))}; the next power of two is 2^{k} = "
            f"{whole(scale)}. The gradients are divided by S again (in fp32) before the update.",
            f"El menor normal de fp16 es 2^-14 = {significant(normal, 3)}. Sin escalar, "
            f"{gs} queda en fp16 como {became('es')}. Le "
            f"hace falta un factor de {significant(normal, 3)} / {gs} = "
            f"{readable(significant(normal / g, 4))}; la siguiente potencia de dos es 2^{k} = "
            f"{whole(scale)}. "
            "Los gradientes se vuelven a dividir entre S (en fp32) antes de actualizar.",
        ),
        hint=f"numfmt show {gs} --format fp16",
        mistakes=(
            (
                scale // 2,
                Text(
                    f"With S = {whole(scale // 2)} the gradient is still below 2^-14: "
                    "subnormal or zero.",
                    f"Con S = {whole(scale // 2)} el gradiente sigue por debajo de 2^-14: "
                    "subnormal o cero.",
                ),
            ),
            (
                scale * 2,
                Text(
                    f"That works, but {whole(scale)} is already enough (and a smaller S leaves "
                    "more room before the largest gradients overflow).",
                    f"Eso funciona, pero {whole(scale)} ya basta (y un S menor deja más margen "
                    "antes de que los gradientes grandes se desborden).",
                ),
            ),
        ),
        values={"gradient": str(g)},
    )


def stochastic(rng: np.random.Generator) -> Problem:
    name = "bf16"
    w = (1 + Fraction(int(rng.integers(0, 8)), 8)) * Fraction(2) ** int(rng.integers(-2, 2))
    above = _neighbours(w * (1 + Fraction(1, 10**6)), name)[1]  # the next value up
    while True:
        update = Fraction(int(rng.integers(1, 1000)), 100_000)
        if update < above - w:
            break
    down, up = w, above
    gap = up - down
    p = (w + update - down) / gap
    # what rounding to nearest does instead: below half the gap it loses the update, above
    # it moves the weight by the whole gap (a tie goes to the even neighbour, either way)
    why = {
        -1: Text("it is under half the gap", "no llega a media distancia"),
        0: Text(
            "exactly half the gap: the tie goes to the even neighbour",
            "justo media distancia: el empate va al vecino par",
        ),
        1: Text("it is over half the gap", "pasa de media distancia"),
    }[(p > Fraction(1, 2)) - (p < Fraction(1, 2))]
    if rounded(w + update, name) == down:
        nearest = Text(
            f"where rounding to nearest would lose it ({why('en')}).",
            f"donde el redondeo al más cercano la perdería ({why('es')}).",
        )
    else:
        nearest = Text(
            f"where rounding to nearest would move it by the whole gap, {exact_decimal(gap)}: "
            f"more than the update ({why('en')}).",
            "donde el redondeo al más cercano movería el peso la distancia entera, "
            f"{exact_decimal(gap)}: más que la actualización ({why('es')}).",
        )
    return Problem(
        question=Text(
            f"A bf16 weight w = {exact_decimal(w)} receives an update of "
            f"{exact_decimal(update)}. With stochastic rounding, w + update goes to the "
            "upper neighbour with a probability that grows with how close it is to it. What "
            "is that probability? (to 3 significant digits)",
            f"Un peso bf16 w = {exact_decimal(w)} recibe una actualización de "
            f"{exact_decimal(update)}. Con redondeo estocástico, w + actualización va al "
            "vecino de arriba con una probabilidad que crece cuanto más cerca está de él. "
            "¿Cuál es esa probabilidad? (con 3 cifras significativas)",
        ),
        answer=Decimal(3, example="0.192"),
        expected=p,
        working=Text(
            f"w + update = {exact_decimal(w + update)} lies between the bf16 values "
            f"{exact_decimal(down)} and {exact_decimal(up)}, {exact_decimal(gap)} apart. "
            f"P(up) = ({exact_decimal(w + update)} - {exact_decimal(down)}) / "
            f"{exact_decimal(gap)} = {significant(p, 5)}, so on average the weight moves by "
            "exactly the update, " + nearest("en"),
            f"w + actualización = {exact_decimal(w + update)} está entre los valores de bf16 "
            f"{exact_decimal(down)} y {exact_decimal(up)}, que distan {exact_decimal(gap)}. "
            f"P(arriba) = ({exact_decimal(w + update)} - {exact_decimal(down)}) / "
            f"{exact_decimal(gap)} = {significant(p, 5)}, así que de media el peso se mueve "
            "exactamente lo que vale la actualización, " + nearest("es"),
        ),
        hint=(
            f'numfmt calc "{exact_decimal(w)} + {exact_decimal(update)}" -f bf16 '
            "--rounding stochastic"
        ),
        mistakes=(
            (
                1 - p,
                Text(
                    "That is the probability of going down; the nearer neighbour is the "
                    "likelier one.",
                    "Esa es la probabilidad de ir hacia abajo; el vecino más cercano es el más "
                    "probable.",
                ),
            ),
            (
                update / (gap / 2) if update < gap / 2 else None,
                Text(
                    "Measure against the whole gap between the neighbours, not half of it.",
                    "Mide contra toda la distancia entre los vecinos, no la mitad.",
                ),
            ),
        ),
        values={"w": str(w), "update": str(update)},
    )


EXERCISES = (
    Spec(
        "overflow",
        Text("A small update", "Una actualización pequeña"),
        lost_update,
    ),
    Spec(
        "range",
        Text("The loss scale a gradient needs", "El escalado que necesita un gradiente"),
        loss_scale,
    ),
    Spec(
        "compute",
        Text("The odds of stochastic rounding", "La probabilidad del redondeo estocástico"),
        stochastic,
    ),
)
