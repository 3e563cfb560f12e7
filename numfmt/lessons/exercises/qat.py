"""Lesson 5's exercises: what fake quantization computes in the forward pass, which weights
the clipped straight-through estimator stops, and a 2-bit range chosen by its error."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.lessons.exercises.answers import Choice, Decimal, Integer, Option
from numfmt.lessons.exercises.core import Problem, Spec
from numfmt.lessons.exercises.grid import fixed_range, listed, on_grid, two_places
from numfmt.lessons.exercises.text import Text, significant


def forward(rng: np.random.Generator) -> Problem:
    from numfmt.quant import fake_quantize

    while True:
        w = two_places(rng.uniform(-2, 2, 6))
        alpha = max(abs(v) for v in w)
        i = int(rng.integers(0, 6))
        q = float(w[i] / (alpha / 7))
        if abs(w[i]) != alpha and abs(q - math.floor(q) - 0.5) > 0.1 and round(q) != 0:
            break
    out = fake_quantize(np.array([float(v) for v in w]), "int4")
    value = Fraction(float(out[i]))
    s = alpha / 7
    return Problem(
        question=Text(
            f"In QAT's forward pass the weights w = [{listed(w)}] go through fake "
            "quantization: int4 symmetric (codes -7 .. 7), alpha = max |w|, one scale; each "
            "weight becomes s * round(w / s). What does the weight "
            f"{float(w[i]):.2f} become? (to 3 significant digits)",
            f"En la pasada hacia delante de QAT los pesos w = [{listed(w)}] pasan por una "
            "cuantización simulada: int4 simétrico (códigos -7 .. 7), alfa = máx |w|, una sola "
            "escala; cada peso se convierte en s * round(w / s). ¿En qué se convierte el peso "
            f"{float(w[i]):.2f}? (con 3 cifras significativas)",
        ),
        answer=Decimal(3),
        expected=value,
        working=Text(
            f"s = alpha / 7 = {float(alpha):.2f} / 7 = {significant(s, 6)}. w / s = {q:.3f}, "
            f"rounded to {round(q)}; times s: {round(q)} x {significant(s, 6)} = "
            f"{significant(value, 6)}. The layer computes with this value, the gradient "
            "flows back to the float weight.",
            f"s = alfa / 7 = {float(alpha):.2f} / 7 = {significant(s, 6)}. w / s = {q:.3f}, "
            f"redondeado a {round(q)}; por s: {round(q)} x {significant(s, 6)} = "
            f"{significant(value, 6)}. La capa calcula con este valor, y el gradiente vuelve "
            "al peso en coma flotante.",
        ),
        hint=f'numfmt quantize --values "{",".join(f"{float(v):.2f}" for v in w)}" -b 4',
        mistakes=(
            (
                Fraction(round(q)),
                Text(
                    f"{round(q)} is the code; the forward pass uses the value it stands for, "
                    "code x s.",
                    f"{round(q)} es el código; la pasada hacia delante usa el valor que "
                    "representa, código x s.",
                ),
            ),
            (
                w[i],
                Text(
                    "That is the weight before the rounding; fake quantization rounds it onto "
                    "the grid and back.",
                    "Ese es el peso antes de redondear; la cuantización simulada lo lleva a la "
                    "rejilla y de vuelta.",
                ),
            ),
        ),
        values={"w": [str(v) for v in w], "weight": str(w[i])},
    )


def clipped_ste(rng: np.random.Generator) -> Problem:
    from numfmt.quant.fake import clipped_mask

    alpha = Fraction(int(rng.integers(4, 13)), 4)  # 1 .. 3 in quarters
    qp = fixed_range(alpha, "int4")
    s = alpha / 7
    edge = alpha + s / 2
    while True:
        w = two_places(rng.uniform(-1.4, 1.4, 8) * float(alpha))
        # none within a hundredth of the edge: the count must not hang on the last digit
        if all(abs(abs(v) - edge) > Fraction(1, 50) for v in w):
            break
    nearest = min(w, key=lambda v: abs(abs(v) - edge))  # the one to check
    mask = clipped_mask(np.array([float(v) for v in w]), qp)
    count = int(mask.sum())
    beyond_alpha = sum(1 for v in w if abs(v) > alpha)
    stopped = [f"{float(v):.2f}" for v, m in zip(w, mask, strict=True) if m]
    return Problem(
        question=Text(
            f"QAT fake-quantizes the weights w = [{listed(w)}] to int4, symmetric, with a "
            f"fixed range alpha = {float(alpha):g} (codes -7 .. 7, s = alpha / 7). With the "
            "clipped straight-through estimator, how many of the 8 weights get a gradient of "
            "0?",
            f"QAT cuantiza de forma simulada los pesos w = [{listed(w)}] a int4 simétrico, "
            f"con un rango fijo alfa = {float(alpha):g} (códigos -7 .. 7, s = alfa / 7). Con "
            "el estimador de paso directo (straight-through) recortado, ¿cuántos de los 8 "
            "pesos reciben gradiente 0?",
        ),
        answer=Integer(example=2, instead=3),
        expected=count,
        working=Text(
            f"s = {float(alpha):g} / 7 = {float(s):.4f}. A weight is clipped when it rounds "
            f"beyond the last code, past alpha + s/2 = {float(edge):.4f} in size: "
            + (", ".join(stopped) if stopped else "none")
            + f". Those {count} get gradient 0 (moving them would not change the output); "
            "the others pass the gradient through unchanged, as if the rounding were not "
            "there.",
            f"s = {float(alpha):g} / 7 = {float(s):.4f}. Un peso se recorta cuando se "
            f"redondea más allá del último código, por encima de alfa + s/2 = "
            f"{float(edge):.4f} en tamaño: "
            + (", ".join(stopped) if stopped else "ninguno")
            + f". Esos {count} reciben gradiente 0 (moverlos no cambiaría la salida); los "
            "demás dejan pasar el gradiente sin cambios, como si el redondeo no estuviera.",
        ),
        hint=f'numfmt calc "{float(nearest):.2f} / ({float(alpha):g} / 7)" -f fp32',
        mistakes=(
            (
                beyond_alpha,
                Text(
                    "A weight just past alpha still rounds to the last code (±7): clipping "
                    "starts half a step further out, at alpha + s/2.",
                    "Un peso un poco más allá de alfa aún se redondea al último código (±7): "
                    "el recorte empieza medio paso más allá, en alfa + s/2.",
                ),
            ),
            (
                8 - count,
                Text(
                    "That counts the weights that keep their gradient.",
                    "Eso cuenta los pesos que conservan su gradiente.",
                ),
            ),
        ),
        values={"w": [str(v) for v in w], "alpha": str(alpha)},
    )


_TWO = Choice(
    (
        Option("A", Text("alpha = max |w|", "alfa = máx |w|"), ("max", "minmax")),
        Option("B", Text("alpha = max |w| / 2", "alfa = máx |w| / 2"), ("half", "mitad")),
    )
)


def two_bits(rng: np.random.Generator) -> Problem:
    while True:
        w = two_places(rng.laplace(0, 0.5, 6))
        alpha = max(abs(v) for v in w)
        if alpha == 0:
            continue
        err = {}
        for key, a in (("A", alpha), ("B", alpha / 2)):
            qdq = on_grid(w, fixed_range(a, "int2"))
            err[key] = sum((v - q) ** 2 for v, q in zip(w, qdq, strict=True))
        if max(err.values()) > Fraction(13, 10) * min(err.values()):
            break
    key = min(err, key=lambda k: err[k])
    half = alpha / 2
    return Problem(
        question=Text(
            f"At 2 bits a symmetric grid has three levels: -alpha, 0, alpha. For the weights "
            f"w = [{listed(w)}], each rounded to the nearest level, which range gives the "
            f"smaller total squared error? A) alpha = max |w| = {float(alpha):.2f}. "
            f"B) alpha = max |w| / 2 = {float(half):.3f}.",
            f"Con 2 bits una rejilla simétrica tiene tres niveles: -alfa, 0, alfa. Para los "
            f"pesos w = [{listed(w)}], cada uno redondeado al nivel más cercano, ¿qué rango "
            f"da el menor error cuadrático total? A) alfa = máx |w| = {float(alpha):.2f}. "
            f"B) alfa = máx |w| / 2 = {float(half):.3f}.",
        ),
        answer=_TWO,
        expected=key,
        working=Text(
            f"A: weights below {float(alpha / 2):.3f} in size go to 0, the rest to "
            f"±{float(alpha):.2f}; squared error {float(err['A']):.4f}. B: below "
            f"{float(half / 2):.3f} go to 0, the rest to ±{float(half):.3f} (the largest are "
            f"clipped); squared error {float(err['B']):.4f}. With only three levels, a range "
            "that zeroes most weights can cost more than clipping a few: this is why min-max "
            "PTQ breaks at 2 bits and QAT's training recovers it.",
            f"A: los pesos de tamaño menor que {float(alpha / 2):.3f} van a 0, el resto a "
            f"±{float(alpha):.2f}; error cuadrático {float(err['A']):.4f}. B: los menores que "
            f"{float(half / 2):.3f} van a 0, el resto a ±{float(half):.3f} (los más grandes "
            f"se recortan); error cuadrático {float(err['B']):.4f}. Con solo tres niveles, un "
            "rango que lleva a 0 casi todos los pesos puede costar más que recortar unos "
            "pocos: por eso la PTQ mín-máx se rompe a 2 bits y el entrenamiento de QAT lo "
            "recupera.",
        ),
        hint=f'numfmt quantize --values "{",".join(f"{float(v):.2f}" for v in w)}" '
        "--compare int2,int2/mse",
        values={"w": [str(v) for v in w]},
    )


EXERCISES = (
    Spec(
        "compute",
        Text("Fake quantization's forward pass", "La pasada hacia delante simulada"),
        forward,
    ),
    Spec(
        "range",
        Text("Which weights the clipped STE stops", "Qué pesos detiene el STE recortado"),
        clipped_ste,
    ),
    Spec(
        "compare",
        Text("Two bits: the whole range or half of it?", "Dos bits: ¿todo el rango o la mitad?"),
        two_bits,
    ),
)
