"""Lesson 7's exercises (beyond-rtn): the error that matters is the output's, an error fed
forward to the next weight (GPTQ's idea), and the average bits of a mixed-precision model."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from numfmt.lessons.exercises.answers import Choice, Decimal, Option
from numfmt.lessons.exercises.core import Problem, Spec
from numfmt.lessons.exercises.grid import fixed_range, listed, on_grid, two_places
from numfmt.lessons.exercises.text import Text, exact_decimal, plural, plus, significant

#: The grid of these exercises: int4, symmetric, a step of 0.25 (alpha = 7 x 0.25).
STEP = Fraction(1, 4)
ALPHA = 7 * STEP


def _other_neighbour(w: Fraction, q: Fraction) -> Fraction:
    """The grid point on the other side of w from its nearest one, q."""
    return q + STEP if w > q else q - STEP


def _dot_text(x: list[Fraction], w: list[Fraction]) -> str:
    """``(-3) * 0.25 + 2 * 1.5``: a dot product as ``numfmt calc`` reads it."""
    return " + ".join(f"({v}) * {float(q):g}" for v, q in zip(x, w, strict=True))


def _dot(x: list[Fraction], w: list[Fraction]) -> Fraction:
    return sum((a * b for a, b in zip(x, w, strict=True)), Fraction(0))


_WHICH = Choice(
    (
        Option("A", Text("A, round to nearest", "A, redondeo al más cercano"), ("rtn",)),
        Option("B", Text("B, one weight the other way", "B, un peso hacia el otro lado")),
    )
)


def output_error(rng: np.random.Generator) -> Problem:
    qp = fixed_range(ALPHA, "int4")
    while True:
        w = two_places(rng.uniform(-1.5, 1.5, 4))
        x = [Fraction(int(v)) for v in rng.integers(-4, 5, 4)]
        if 0 in x:
            continue
        a = on_grid(w, qp)
        j = int(rng.integers(0, 4))
        b = list(a)
        b[j] = _other_neighbour(w[j], a[j])
        if abs(b[j]) > ALPHA or w[j] == a[j]:
            continue
        ea, eb = _dot(x, w) - _dot(x, a), _dot(x, w) - _dot(x, b)
        if max(abs(ea), abs(eb)) > Fraction(13, 10) * min(abs(ea), abs(eb)):
            break
    key = "A" if abs(ea) < abs(eb) else "B"
    wa = sum((v - q) ** 2 for v, q in zip(w, a, strict=True))
    wb = sum((v - q) ** 2 for v, q in zip(w, b, strict=True))
    return Problem(
        question=Text(
            f"The weights w = [{listed(w)}] go onto a grid of step 0.25 in two ways: "
            f"A = [{listed(a)}] (each to its nearest point) and B = [{listed(b)}] (weight "
            f"{j + 1} rounded the other way). For the input x = [{listed(x, 0)}], which gives "
            "the output x . w' closer to x . w? A or B",
            f"Los pesos w = [{listed(w)}] se llevan a una rejilla de paso 0.25 de dos maneras: "
            f"A = [{listed(a)}] (cada uno a su punto más cercano) y B = [{listed(b)}] (el peso "
            f"{j + 1} redondeado hacia el otro lado). Para la entrada x = [{listed(x, 0)}], "
            "¿cuál da una salida x . w' más cercana a x . w? A o B",
        ),
        answer=_WHICH,
        expected=key,
        working=Text(
            f"x . w = {exact_decimal(_dot(x, w))}. A: x . A = {exact_decimal(_dot(x, a))}, "
            f"off by {exact_decimal(abs(ea))}. B: x . B = {exact_decimal(_dot(x, b))}, off by "
            f"{exact_decimal(abs(eb))}. A always has the smaller weight error (squared: "
            f"{exact_decimal(wa)} against {exact_decimal(wb)}), but the errors of the weights "
            "add up in the output with the inputs' signs and sizes: rounding one the other "
            "way can cancel the others. That is what output-aware methods (GPTQ, output-mse) "
            "look for.",
            f"x . w = {exact_decimal(_dot(x, w))}. A: x . A = {exact_decimal(_dot(x, a))}, "
            f"se desvía {exact_decimal(abs(ea))}. B: x . B = {exact_decimal(_dot(x, b))}, se "
            f"desvía {exact_decimal(abs(eb))}. A siempre tiene el menor error en los pesos "
            f"(al cuadrado: {exact_decimal(wa)} frente a {exact_decimal(wb)}), pero los "
            "errores de los pesos se suman en la salida con el signo y el tamaño de las "
            "entradas: redondear uno hacia el otro lado puede compensar a los demás. Eso es "
            "lo que buscan los métodos que miran la salida (GPTQ, output-mse).",
        ),
        hint=f'numfmt calc "{_dot_text(x, b)}" -f fp32',
        values={"w": [str(v) for v in w], "x": [str(v) for v in x], "flipped": j + 1},
    )


def error_feedback(rng: np.random.Generator) -> Problem:
    qp = fixed_range(ALPHA, "int4")
    while True:
        w1, w2 = two_places(rng.uniform(-1.5, 1.5, 2))
        (q1,) = on_grid([w1], qp)
        e1 = w1 - q1
        target = w2 + e1
        (q2,) = on_grid([target], qp)
        (rtn,) = on_grid([w2], qp)
        frac = target / STEP - (target / STEP).__floor__()
        # a change that feedback makes, and no tie for a student to break
        if q2 != rtn and abs(frac - Fraction(1, 2)) > Fraction(1, 20):
            break
    return Problem(
        question=Text(
            f"Two weights, w1 = {float(w1):.2f} and w2 = {float(w2):.2f}, meet the same input "
            "(x1 = x2), and go onto a grid of step 0.25. GPTQ's idea: round w1 to its nearest "
            "point, add the error it made (w1 minus its rounded value) to w2, then round "
            "that. What value does w2 get?",
            f"Dos pesos, w1 = {float(w1):.2f} y w2 = {float(w2):.2f}, reciben la misma entrada "
            "(x1 = x2) y se llevan a una rejilla de paso 0.25. La idea de GPTQ: redondea w1 a "
            "su punto más cercano, suma el error cometido (w1 menos su valor redondeado) a w2 "
            "y redondea eso. ¿Qué valor recibe w2?",
        ),
        answer=Decimal(None, example="-0.75"),
        expected=q2,
        working=Text(
            f"w1 = {float(w1):.2f} rounds to {exact_decimal(q1)}, an error of "
            f"{exact_decimal(e1)}. w2 {plus(exact_decimal(e1))} = {exact_decimal(target)}, which "
            f"rounds to {exact_decimal(q2)}. Round to nearest alone would give w2 "
            f"{exact_decimal(rtn)}. With the same input on both, the output sees w1 + w2 = "
            f"{exact_decimal(w1 + w2)}: feedback stores {exact_decimal(q1 + q2)}, round to "
            f"nearest {exact_decimal(q1 + rtn)}.",
            f"w1 = {float(w1):.2f} se redondea a {exact_decimal(q1)}, con un error de "
            f"{exact_decimal(e1)}. w2 {plus(exact_decimal(e1))} = {exact_decimal(target)}, que se "
            f"redondea a {exact_decimal(q2)}. El redondeo al más cercano sin más daría a w2 "
            f"{exact_decimal(rtn)}. Con la misma entrada en los dos, la salida ve w1 + w2 = "
            f"{exact_decimal(w1 + w2)}: con la corrección se guarda {exact_decimal(q1 + q2)}, "
            f"con el redondeo al más cercano {exact_decimal(q1 + rtn)}.",
        ),
        hint=f'numfmt quantize --values "{float(w1):.2f},{float(w2):.2f},1.75" -b 4',
        mistakes=(
            (
                rtn,
                Text(
                    f"{exact_decimal(rtn)} is w2 rounded on its own; first add w1's error, "
                    f"{exact_decimal(e1)}.",
                    f"{exact_decimal(rtn)} es w2 redondeado por su cuenta; primero suma el "
                    f"error de w1, {exact_decimal(e1)}.",
                ),
            ),
            (
                on_grid([w2 - e1], qp)[0],
                Text(
                    f"The error is w1 minus its rounded value, {exact_decimal(e1)}: add it, "
                    "do not subtract it.",
                    f"El error es w1 menos su valor redondeado, {exact_decimal(e1)}: súmalo, "
                    "no lo restes.",
                ),
            ),
        ),
        values={"w1": str(w1), "w2": str(w2)},
    )


def mixed_bits(rng: np.random.Generator) -> Problem:
    from numfmt.eval.memory import estimate

    layers = int(rng.choice([24, 28, 30, 32]))
    per_layer = int(rng.choice([12, 25, 50, 200])) * 10**6
    embedding = int(rng.choice([25, 50, 130, 260])) * 10**6
    group = int(rng.choice([32, 64, 128]))
    recipe = f"int4/group:{group}/scale:fp16"
    low = Fraction(estimate(1, recipe=recipe).bits_per_weight)
    keep = int(rng.integers(1, 4))  # the most sensitive layers kept at 8 bits
    high = Fraction(8)
    total = layers * per_layer + embedding
    bits = (embedding * high + keep * per_layer * high + (layers - keep) * per_layer * low) / total
    plain = (high + keep * high + (layers - keep) * low) / (layers + 1)  # sizes left out
    kept_en = plural(keep, "most sensitive layer", "{n} most sensitive layers")
    kept_es = plural(keep, "capa más sensible", "{n} capas más sensibles")
    kept_es = ("la " if keep == 1 else "las ") + kept_es
    return Problem(
        question=Text(
            f"A model has an embedding of {embedding // 10**6}M weights and {layers} "
            f"transformer layers of {per_layer // 10**6}M weights each. The embedding and the "
            f"{kept_en} stay at 8 bits; the others go to {recipe} "
            f"({float(low):g} bits per weight, scales included). How many bits does a weight "
            "take on average? (to 3 significant digits)",
            f"Un modelo tiene una capa de embedding de {embedding // 10**6}M pesos y {layers} "
            f"capas de transformer de {per_layer // 10**6}M pesos cada una. El embedding y "
            f"{kept_es} se quedan en 8 bits; las demás pasan a {recipe} "
            f"({float(low):g} bits por peso, escalas incluidas). ¿Cuántos bits ocupa un peso "
            "de media? (con 3 cifras significativas)",
        ),
        answer=Decimal(3, example="4.61"),
        expected=bits,
        working=Text(
            f"Weight the bits by the weights: (8 x {embedding // 10**6}M + 8 x {keep} x "
            f"{per_layer // 10**6}M + {float(low):g} x {layers - keep} x "
            f"{per_layer // 10**6}M) / {total // 10**6}M = {significant(bits, 5)} bits. A "
            "sensitivity budget (numfmt model sensitivity --budget) spends such extra bits "
            "where they buy the most.",
            f"Pondera los bits por el número de pesos: (8 x {embedding // 10**6}M + 8 x {keep} "
            f"x {per_layer // 10**6}M + {float(low):g} x {layers - keep} x "
            f"{per_layer // 10**6}M) / {total // 10**6}M = {significant(bits, 5)} bits. Un "
            "presupuesto por sensibilidad (numfmt model sensitivity --budget) gasta esos bits "
            "de más donde más rinden.",
        ),
        hint=f"numfmt memory {total} --recipe {recipe}",
        mistakes=(
            (
                plain,
                Text(
                    "That averages the layers as if they were the same size; weigh each by "
                    "its number of weights.",
                    "Eso promedia las capas como si fueran del mismo tamaño; pondera cada una "
                    "por su número de pesos.",
                ),
            ),
            (
                (embedding * high + keep * per_layer * high + (layers - keep) * per_layer * 4)
                / total,
                Text(
                    f"The int4 layers take {float(low):g} bits per weight with their scales, "
                    "not 4.",
                    f"Las capas int4 ocupan {float(low):g} bits por peso con sus escalas, no 4.",
                ),
            ),
        ),
        values={
            "embedding": embedding,
            "layers": layers,
            "per_layer": per_layer,
            "keep": keep,
            "recipe": recipe,
        },
    )


EXERCISES = (
    Spec(
        "compare",
        Text("The error that matters: the output's", "El error que importa: el de la salida"),
        output_error,
    ),
    Spec(
        "compute",
        Text(
            "An error fed forward (GPTQ's idea)",
            "Un error que se pasa al siguiente (la idea de GPTQ)",
        ),
        error_feedback,
    ),
    Spec(
        "compute",
        Text("Mixed precision: the average bits", "Precisión mixta: los bits de media"),
        mixed_bits,
    ),
)
