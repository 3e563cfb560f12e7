"""Lesson 3's exercises: a scale and a zero point (asymmetric 0 .. 255, alpha = max, beta =
min), a symmetric scale and code (-127 .. 127, alpha = max |x|), and a range to choose."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.lessons.exercises.answers import Choice, Decimal, Integer, Option
from numfmt.lessons.exercises.core import Problem, Spec
from numfmt.lessons.exercises.text import Text, plural, significant

#: How far from a tie (x.5) a quotient must lie, so that a student who rounds the scale to a
#: few digits still rounds the quotient the same way.
_MARGIN = 0.1


def _near_tie(q: float) -> bool:
    return abs(q - math.floor(q) - 0.5) < _MARGIN


def _listed(x: list[Fraction]) -> str:
    return ", ".join(_dec(v) for v in x)


def _dec(v: Fraction) -> str:
    return f"{float(v):.2f}"


def _asym_values(rng: np.random.Generator) -> list[Fraction]:
    """Six values with two decimals, of both signs, whose zero point is not near a tie."""
    while True:
        lo, hi = -rng.uniform(0.3, 4.0), rng.uniform(0.3, 4.0)
        raw = [lo, hi, *rng.uniform(lo, hi, 4)]
        x = [Fraction(round(v * 100), 100) for v in rng.permutation(raw)]
        alpha, beta = max(x), min(x)
        if beta < 0 < alpha and not _near_tie(float(-beta / ((alpha - beta) / 255))):
            return x


def _asym(x: list[Fraction]):
    from numfmt.quant import choose_qparams

    qp = choose_qparams(np.array([float(v) for v in x]), "int8/asym")
    return Fraction(float(qp.scale)), int(qp.zero_point)


def _quantize_hint(x: list[Fraction], mapping: str) -> str:
    return f'numfmt quantize --values "{",".join(_dec(v) for v in x)}" --scheme {mapping}'


def asym_scale(rng: np.random.Generator) -> Problem:
    x = _asym_values(rng)
    alpha, beta = max(x), min(x)
    scale, _ = _asym(x)
    return Problem(
        question=Text(
            f"Quantize x = [{_listed(x)}] to 8 bits, asymmetric: the range [beta, alpha] = "
            "[min, max] onto the codes 0 .. 255. What is the scale s? (to 4 significant "
            "digits)",
            f"Cuantiza x = [{_listed(x)}] a 8 bits, de forma asimétrica: el rango [beta, "
            "alfa] = [mín, máx] sobre los códigos 0 .. 255. ¿Cuánto vale la escala s? (con 4 "
            "cifras significativas)",
        ),
        answer=Decimal(4, example="0.01765"),
        expected=scale,
        working=Text(
            f"alpha = max x = {_dec(alpha)}, beta = min x = {_dec(beta)}. 255 steps share the "
            f"range: s = (alpha - beta) / 255 = {_dec(alpha - beta)} / 255 = "
            f"{significant(scale, 6)}.",
            f"alfa = máx x = {_dec(alpha)}, beta = mín x = {_dec(beta)}. El rango se reparte "
            f"en 255 pasos: s = (alfa - beta) / 255 = {_dec(alpha - beta)} / 255 = "
            f"{significant(scale, 6)}.",
        ),
        hint=_quantize_hint(x, "asym"),
        mistakes=(
            (
                (alpha - beta) / 256,
                Text(
                    "256 codes make 255 steps between the first and the last: divide by 255.",
                    "256 códigos dejan 255 pasos entre el primero y el último: divide entre 255.",
                ),
            ),
            (
                (alpha + beta) / 255,
                Text(
                    f"The range is alpha - beta = {_dec(alpha)} - ({_dec(beta)}): beta is "
                    "negative, so the width is the sum of the two sizes.",
                    f"El rango es alfa - beta = {_dec(alpha)} - ({_dec(beta)}): beta es "
                    "negativo, así que el ancho es la suma de los dos tamaños.",
                ),
            ),
            (
                max(alpha, -beta) / 127,
                Text(
                    "That is the symmetric scale (max |x| / 127); the asymmetric one spans "
                    "[beta, alpha] with 255 steps.",
                    "Esa es la escala simétrica (máx |x| / 127); la asimétrica cubre [beta, "
                    "alfa] con 255 pasos.",
                ),
            ),
        ),
        values={"x": [str(v) for v in x]},
    )


def asym_zero_point(rng: np.random.Generator) -> Problem:
    x = _asym_values(rng)
    alpha, beta = max(x), min(x)
    scale, z = _asym(x)
    q = float(-beta / scale)
    return Problem(
        question=Text(
            f"Quantize x = [{_listed(x)}] to 8 bits, asymmetric (beta = min onto code 0, "
            "alpha = max onto code 255). What is the zero point z, the code that stands for "
            "0.0?",
            f"Cuantiza x = [{_listed(x)}] a 8 bits, de forma asimétrica (beta = mín al código "
            "0, alfa = máx al código 255). ¿Cuál es el punto cero z, el código que representa "
            "el 0.0?",
        ),
        answer=Integer(example=42),
        expected=z,
        working=Text(
            f"s = (alpha - beta) / 255 = ({_dec(alpha)} - ({_dec(beta)})) / 255 = "
            f"{significant(scale, 6)}. The zero point is where 0 lands: z = round(-beta / s) "
            f"= round({_dec(-beta)} / {significant(scale, 6)}) = round({q:.3f}) = {z}. So the "
            f"code of x is round(x / s) + {z}, and 0.0 is stored exactly as code {z}.",
            f"s = (alfa - beta) / 255 = ({_dec(alpha)} - ({_dec(beta)})) / 255 = "
            f"{significant(scale, 6)}. El punto cero es donde cae el 0: z = round(-beta / s) "
            f"= round({_dec(-beta)} / {significant(scale, 6)}) = round({q:.3f}) = {z}. Así el "
            f"código de x es round(x / s) + {z}, y el 0.0 se guarda exacto como el código "
            f"{z}.",
        ),
        hint=_quantize_hint(x, "asym"),
        mistakes=(
            (
                -z,
                Text(
                    "The sign is off: beta is negative, so -beta / s is positive.",
                    "El signo está al revés: beta es negativo, así que -beta / s es positivo.",
                ),
            ),
            (
                math.floor(q) if round(q) != math.floor(q) else math.ceil(q),
                Text(
                    f"-beta / s = {q:.3f}: round it to the nearest integer, {z}.",
                    f"-beta / s = {q:.3f}: redondéalo al entero más cercano, {z}.",
                ),
            ),
        ),
        values={"x": [str(v) for v in x]},
    )


def _sym_values(rng: np.random.Generator) -> list[Fraction]:
    """Six values whose largest magnitude is, as often as not, a negative one."""
    big = rng.uniform(1.0, 5.0)
    rest = rng.uniform(-0.8 * big, 0.8 * big, 5)
    top = -big if rng.random() < 0.5 else big
    return [Fraction(round(v * 100), 100) for v in rng.permutation([top, *rest])]


def _sym(x: list[Fraction]):
    from numfmt.quant import choose_qparams, quantize

    a = np.array([float(v) for v in x])
    qp = choose_qparams(a, "int8")
    return Fraction(float(qp.scale)), [int(q) for q in quantize(a, qp)]


def sym_scale(rng: np.random.Generator) -> Problem:
    x = _sym_values(rng)
    scale, _ = _sym(x)
    alpha = max(abs(v) for v in x)
    return Problem(
        question=Text(
            f"Quantize x = [{_listed(x)}] to 8 bits, symmetric: alpha = max |x| onto the "
            "codes -127 .. 127. What is the scale s? (to 3 significant digits)",
            f"Cuantiza x = [{_listed(x)}] a 8 bits, de forma simétrica: alfa = máx |x| sobre "
            "los códigos -127 .. 127. ¿Cuánto vale la escala s? (con 3 cifras significativas)",
        ),
        answer=Decimal(3),
        expected=scale,
        working=Text(
            f"alpha = max |x| = {_dec(alpha)} (the largest size, whatever its sign). The codes "
            f"0 .. 127 cover 0 .. alpha: s = alpha / 127 = {_dec(alpha)} / 127 = "
            f"{significant(scale, 6)}.",
            f"alfa = máx |x| = {_dec(alpha)} (el mayor tamaño, sea cual sea su signo). Los "
            f"códigos 0 .. 127 cubren 0 .. alfa: s = alfa / 127 = {_dec(alpha)} / 127 = "
            f"{significant(scale, 6)}.",
        ),
        hint=_quantize_hint(x, "sym"),
        mistakes=(
            (
                max(x) / 127,
                Text(
                    f"alpha is the largest magnitude, max |x| = {_dec(alpha)}, not the largest "
                    f"value {_dec(max(x))}.",
                    f"alfa es la mayor magnitud, máx |x| = {_dec(alpha)}, no el mayor valor "
                    f"{_dec(max(x))}.",
                ),
            ),
            (
                alpha / 128,
                Text(
                    "The symmetric grid stops at 127 on both sides (-128 is left out): divide "
                    "by 127.",
                    "La rejilla simétrica llega a 127 por los dos lados (el -128 no se usa): "
                    "divide entre 127.",
                ),
            ),
            (
                alpha / 255,
                Text(
                    "alpha is mapped to code 127, not 255: the codes run -127 .. 127.",
                    "alfa va al código 127, no al 255: los códigos van de -127 a 127.",
                ),
            ),
            (
                (max(x) - min(x)) / 255,
                Text(
                    "That is the asymmetric scale; the symmetric one is max |x| / 127.",
                    "Esa es la escala asimétrica; la simétrica es máx |x| / 127.",
                ),
            ),
        ),
        values={"x": [str(v) for v in x]},
    )


def sym_code(rng: np.random.Generator) -> Problem:
    while True:
        x = _sym_values(rng)
        scale, codes = _sym(x)
        alpha = max(abs(v) for v in x)
        i = int(rng.integers(0, len(x)))
        q = float(x[i] / scale)
        if abs(x[i]) != alpha and not _near_tie(q):
            break
    return Problem(
        question=Text(
            f"x = [{_listed(x)}] is quantized to 8 bits, symmetric (alpha = max |x| onto "
            f"-127 .. 127). What code does the value {_dec(x[i])} get?",
            f"x = [{_listed(x)}] se cuantiza a 8 bits, de forma simétrica (alfa = máx |x| "
            f"sobre -127 .. 127). ¿Qué código recibe el valor {_dec(x[i])}?",
        ),
        answer=Integer(),
        expected=codes[i],
        working=Text(
            f"alpha = max |x| = {_dec(alpha)}, s = alpha / 127 = {significant(scale, 6)}. "
            f"q = round(x / s) = round({_dec(x[i])} / {significant(scale, 6)}) = "
            f"round({q:.3f}) = {codes[i]}.",
            f"alfa = máx |x| = {_dec(alpha)}, s = alfa / 127 = {significant(scale, 6)}. "
            f"q = round(x / s) = round({_dec(x[i])} / {significant(scale, 6)}) = "
            f"round({q:.3f}) = {codes[i]}.",
        ),
        hint=_quantize_hint(x, "sym"),
        mistakes=(
            (
                math.trunc(q),
                Text(
                    f"x / s = {q:.3f}: round it to the nearest integer; cutting the decimals "
                    "off is not rounding.",
                    f"x / s = {q:.3f}: redondéalo al entero más cercano; quitar los decimales "
                    "no es redondear.",
                ),
            ),
            (
                max(-127, min(127, round(x[i] / (max(x) / 127)))) if max(x) != alpha else None,
                Text(
                    f"The scale comes from max |x| = {_dec(alpha)}, not from max x.",
                    f"La escala sale de máx |x| = {_dec(alpha)}, no de máx x.",
                ),
            ),
            (
                -codes[i],
                Text(
                    "The code keeps the value's sign.",
                    "El código conserva el signo del valor.",
                ),
            ),
        ),
        values={"x": [str(v) for v in x], "value": str(x[i])},
    )


_RECIPES = Choice(
    (
        Option("A", Text("min-max: alpha = max |x|", "mín-máx: alfa = máx |x|"), ("minmax",)),
        Option(
            "B",
            Text(
                "percentile:99: alpha = the 99th percentile of |x|",
                "percentil 99: alfa = el percentil 99 de |x|",
            ),
            ("percentile", "percentil"),
        ),
    )
)

#: (values, outliers) that keep the 99th percentile below the outliers.
_SHAPES = ((256, 1), (512, 1), (1024, 1), (1024, 2), (1024, 4), (4096, 1), (4096, 4), (4096, 16))


def choose_range(rng: np.random.Generator) -> Problem:
    from numfmt.quant import choose_qparams, quantize_tensor

    while True:
        n, k = _SHAPES[int(rng.integers(len(_SHAPES)))]
        m = int(rng.integers(5, 21))
        x = rng.standard_normal(n)
        x[rng.choice(n, k, replace=False)] = m * rng.choice([-1.0, 1.0], k)
        mse = {s: quantize_tensor(x, s).report(x).mse for s in ("int4", "int4/percentile:99")}
        a, b = mse["int4"], mse["int4/percentile:99"]
        if max(a, b) / min(a, b) > 1.3:
            break
    key = "A" if a < b else "B"
    clip = float(choose_qparams(x, "int4/percentile:99").hi[()])
    step_a, step_b = m / 7, clip / 7
    lost = k * (m - clip) ** 2 / n
    options_en = " ".join(f"{o.key}) {o.label('en')}." for o in _RECIPES.options)
    options_es = " ".join(f"{o.key}) {o.label('es')}." for o in _RECIPES.options)
    return Problem(
        question=Text(
            f"A tensor holds {n} values drawn from a standard normal distribution, "
            + plural(k, "one of them replaced by an outlier", "{n} of them replaced by outliers")
            + f" of size {m} (sign at random). It is quantized to int4, "
            "symmetric (-7 .. 7), one scale for the whole tensor. Which range gives the "
            f"smaller mean squared error? {options_en}",
            f"Un tensor tiene {n} valores de una normal estándar, y "
            + plural(
                k,
                "uno de ellos se cambia por un valor atípico",
                "{n} de ellos se cambian por valores atípicos",
            )
            + f" de tamaño {m} (con signo al azar). Se cuantiza a int4 "
            "simétrico (-7 .. 7) con una sola escala para todo el tensor. ¿Qué rango da el "
            f"menor error cuadrático medio? {options_es}",
        ),
        answer=_RECIPES,
        expected=key,
        working=Text(
            f"A: alpha = {m}, a step of {m}/7 = {step_a:.3f}; every value's rounding error "
            f"averages step^2/12 = {step_a**2 / 12:.4f}. B: alpha = {clip:.2f}, a step of "
            f"{step_b:.3f} (rounding about {step_b**2 / 12:.4f}), but each outlier is clipped "
            f"and loses ({m} - {clip:.2f})^2, which over {n} values adds about {lost:.4f}. "
            f"numfmt measures A: {a:.4f}, B: {b:.4f}. Clipping pays when the values are many "
            "and the outliers few.",
            f"A: alfa = {m}, un paso de {m}/7 = {step_a:.3f}; el error de redondeo de cada "
            f"valor es en promedio paso^2/12 = {step_a**2 / 12:.4f}. B: alfa = {clip:.2f}, un "
            f"paso de {step_b:.3f} (redondeo de unos {step_b**2 / 12:.4f}), pero cada valor "
            f"atípico se recorta y pierde ({m} - {clip:.2f})^2, que repartido entre {n} "
            f"valores suma unos {lost:.4f}. numfmt mide A: {a:.4f}, B: {b:.4f}. El recorte "
            "compensa cuando los valores son muchos y los atípicos pocos.",
        ),
        hint="numfmt plot clipping --dist outliers --scheme int4 --out clipping.png",
        values={"values": n, "outliers": k, "size": m},
    )


EXERCISES = (
    Spec("scale", Text("The asymmetric scale", "La escala asimétrica"), asym_scale),
    Spec("scale", Text("The zero point", "El punto cero"), asym_zero_point),
    Spec(
        "range",
        Text("The symmetric scale: alpha = max |x|", "La escala simétrica: alfa = máx |x|"),
        sym_scale,
    ),
    Spec("encode", Text("A value's symmetric code", "El código simétrico de un valor"), sym_code),
    Spec(
        "compare",
        Text(
            "Min-max or a percentile: which loses less?", "¿Mín-máx o percentil: cuál pierde menos?"
        ),
        choose_range,
    ),
)
