"""Lesson 6's exercises (language-model): what groups cost in bits, a model's size under a
recipe, int8 per tensor against int4 in groups, and perplexity from cross-entropy."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from numfmt.lessons.exercises.answers import Choice, Decimal, Option
from numfmt.lessons.exercises.core import Problem, Spec
from numfmt.lessons.exercises.text import Text, significant, whole

_SCALE_BITS = {"fp16": 16, "fp32": 32}


def _trimmed(x: Fraction) -> str:
    """x to 6 significant digits without the zeros that end them: 4.25, 4.13889."""
    text = significant(x, 6)
    return text.rstrip("0").rstrip(".") if "." in text and "e" not in text else text


def group_bits(rng: np.random.Generator) -> Problem:
    from numfmt.quant import quantize_tensor

    cols = int(rng.choice([576, 1536, 2048, 4096]))
    group = int(rng.choice([32, 64, 128]))
    scale = str(rng.choice(["fp16", "fp32"]))
    asym = bool(rng.random() < 0.5)
    spec = f"int4{'/asym' if asym else ''}/group:{group}/scale:{scale}"
    bits = Fraction(quantize_tensor(np.ones((4, cols)), spec).bits_per_value)
    groups = -(-cols // group)
    extra = _SCALE_BITS[scale] + (4 if asym else 0)
    short = cols % group
    zp_en = " and a 4-bit zero point" if asym else ""
    zp_es = " y un punto cero de 4 bits" if asym else ""
    per_group = (
        Text(
            f"{_SCALE_BITS[scale]} + 4 = {extra} bits per group (its scale and zero point)",
            f"{_SCALE_BITS[scale]} + 4 = {extra} bits por grupo (su escala y su punto cero)",
        )
        if asym
        else Text(f"{extra} bits per group (its scale)", f"{extra} bits por grupo (su escala)")
    )
    short_en = (
        f" ({cols} = {cols // group} x {group} + {short}: the short last group has its own "
        "scale too)"
        if short
        else ""
    )
    short_es = (
        f" ({cols} = {cols // group} x {group} + {short}: el último grupo, más corto, también "
        "tiene su escala)"
        if short
        else ""
    )
    return Problem(
        question=Text(
            f"A weight matrix has rows of {cols} weights. It is stored as int4 codes in groups "
            f"of {group} consecutive weights of a row, each group with a {scale} scale{zp_en} "
            f"({spec}). How many bits does a weight take on average, scales included? (to 3 "
            "significant digits)",
            f"Una matriz de pesos tiene filas de {cols} pesos. Se guarda como códigos int4 en "
            f"grupos de {group} pesos consecutivos de una fila, cada grupo con una escala "
            f"{scale}{zp_es} ({spec}). ¿Cuántos bits ocupa de media cada peso, contando las "
            "escalas? (con 3 cifras significativas)",
        ),
        answer=Decimal(3, example="4.25"),
        expected=bits,
        working=Text(
            f"4 bits of code per weight, plus {per_group('en')}. A row of "
            f"{cols} has {groups} groups{short_en}: 4 + {groups} x {extra} / {cols} = "
            f"{_trimmed(bits)} bits per weight.",
            f"4 bits de código por peso, más {per_group('es')}. Una fila de "
            f"{cols} tiene {groups} grupos{short_es}: 4 + {groups} x {extra} / {cols} = "
            f"{_trimmed(bits)} bits por peso.",
        ),
        hint=f"numfmt quantize --values 1,2,3,4 --compare {spec}",
        mistakes=(
            (
                Fraction(4),
                Text(
                    "The codes are 4 bits, but each group's scale is stored too.",
                    "Los códigos son de 4 bits, pero también se guarda la escala de cada grupo.",
                ),
            ),
            (
                4 + Fraction(extra, group),
                Text(
                    f"That divides by {group} as if every group were full; a row of {cols} "
                    f"needs {groups} groups.",
                    f"Eso divide entre {group} como si todos los grupos estuvieran completos; "
                    f"una fila de {cols} necesita {groups} grupos.",
                ),
            ),
            (
                4 + Fraction(groups * _SCALE_BITS[scale], cols) if asym else None,
                Text(
                    "The zero points are stored too: 4 more bits per group.",
                    "Los puntos cero también se guardan: 4 bits más por grupo.",
                ),
            ),
        ),
        values={"columns": cols, "scheme": spec},
    )


_MODELS = (
    (Text("SmolLM2-135M", "SmolLM2-135M"), 134_515_008),
    (Text("SmolLM2-1.7B", "SmolLM2-1.7B"), 1_711_376_384),
    (Text("Llama-3.1-8B", "Llama-3.1-8B"), 8_030_261_248),
    (Text("A 70B model", "Un modelo de 70B"), 70_553_706_496),
)


def model_size(rng: np.random.Generator) -> Problem:
    from numfmt.eval.memory import estimate

    name, params = _MODELS[int(rng.integers(len(_MODELS)))]
    group = int(rng.choice([32, 64, 128]))
    recipe = f"int4/group:{group}/scale:fp16"
    est = estimate(params, recipe=recipe)
    gb = Fraction(est.nbytes, 10**9)
    bits = Fraction(est.bits_per_weight)
    return Problem(
        question=Text(
            f"{name('en')} has {whole(params)} weights. Quantized as int4 in groups of {group} "
            f"with fp16 scales ({recipe}), how many GB (10^9 bytes) do they take? (to 3 "
            "significant digits)",
            f"{name('es')} tiene {whole(params)} pesos. Cuantizados como int4 en grupos de "
            f"{group} con escalas fp16 ({recipe}), ¿cuántos GB (10^9 bytes) ocupan? (con 3 "
            "cifras significativas)",
        ),
        answer=Decimal(3, example="4.25"),
        expected=gb,
        working=Text(
            f"Each weight: 4 bits of code plus 16/{group} of its group's scale = "
            f"{float(bits):g} bits. {whole(params)} x {float(bits):g} / 8 = "
            f"{whole(est.nbytes)} bytes = "
            f"{significant(gb, 4)} GB.",
            f"Cada peso: 4 bits de código más 16/{group} de la escala de su grupo = "
            f"{float(bits):g} bits. {whole(params)} x {float(bits):g} / 8 = "
            f"{whole(est.nbytes)} bytes = "
            f"{significant(gb, 4)} GB.",
        ),
        hint=f"numfmt memory {params} --recipe {recipe}",
        mistakes=(
            (
                Fraction(params * 4, 8 * 10**9),
                Text(
                    "That leaves out the scales: 16 bits for every group of "
                    f"{group} weights add {16 / group:g} bits per weight.",
                    f"Eso deja fuera las escalas: 16 bits por cada grupo de {group} pesos "
                    f"añaden {16 / group:g} bits por peso.",
                ),
            ),
            (
                Fraction(est.nbytes, 2**30),
                Text(
                    "That is in GiB (2^30 bytes); the question asks for GB (10^9 bytes).",
                    "Eso está en GiB (2^30 bytes); la pregunta pide GB (10^9 bytes).",
                ),
            ),
        ),
        values={"model": name("en"), "parameters": params, "recipe": recipe},
    )


_GRAIN = Choice(
    (
        Option(
            "A",
            Text("int8, one scale for the tensor", "int8, una escala para todo el tensor"),
            ("int8",),
        ),
        Option(
            "B",
            Text("int4, a scale per group of 32", "int4, una escala por grupo de 32"),
            ("int4",),
        ),
    )
)


def int8_or_groups(rng: np.random.Generator) -> Problem:
    from numfmt.quant import quantize_tensor

    while True:
        m = round(float(np.exp(rng.uniform(np.log(8), np.log(300)))))
        x = rng.standard_normal((16, 256))
        x[int(rng.integers(16)), int(rng.integers(256))] = m
        a = quantize_tensor(x, "int8").report(x).mse
        b = quantize_tensor(x, "int4/group:32").report(x).mse
        if max(a, b) / min(a, b) > 1.3:
            break
    key = "A" if a < b else "B"
    step8 = m / 127
    options_en = " ".join(f"{o.key}) {o.label('en')}." for o in _GRAIN.options)
    options_es = " ".join(f"{o.key}) {o.label('es')}." for o in _GRAIN.options)
    return Problem(
        question=Text(
            f"A 16 x 256 weight matrix holds values from a standard normal distribution, and "
            f"one weight of {m}. Both recipes are symmetric with min-max ranges. Which has "
            f"the smaller mean squared error? {options_en}",
            f"Una matriz de pesos de 16 x 256 tiene valores de una normal estándar y un peso "
            f"de {m}. Las dos recetas son simétricas con rangos mín-máx. ¿Cuál tiene el menor "
            f"error cuadrático medio? {options_es}",
        ),
        answer=_GRAIN,
        expected=key,
        working=Text(
            f"A: the one outlier sets the step for all 4096 weights: {m}/127 = {step8:.3f}, "
            f"an error of about step^2/12 = {step8**2 / 12:.5f} each. B: a group of 32 normal "
            "values reaches about 2.2 in size, a step of about 2.2/7 = 0.31 and an error of "
            "about 0.01; in the outlier's own group the step is "
            f"{m}/7 = {m / 7:.1f}, its 31 other values round to 0 and each loses its own "
            "square, about 1: 31/4096 = 0.008 more, whatever the outlier's size. numfmt "
            f"measures A: {a:.5f}, B: {b:.5f}. A's error grows with the outlier's square; "
            "B's hardly moves.",
            f"A: el único valor atípico fija el paso de los 4096 pesos: {m}/127 = "
            f"{step8:.3f}, un error de unos paso^2/12 = {step8**2 / 12:.5f} cada uno. B: un "
            "grupo de 32 valores normales llega a unos 2.2 en tamaño, un paso de unos "
            "2.2/7 = 0.31 y un error de unos 0.01; en el grupo del atípico el paso es "
            f"{m}/7 = {m / 7:.1f}, sus otros 31 valores se redondean a 0 y cada uno pierde "
            "su propio cuadrado, más o menos 1: 31/4096 = 0.008 más, sea cual sea el tamaño "
            f"del atípico. numfmt mide A: {a:.5f}, B: {b:.5f}. El error de A crece con el "
            "cuadrado del atípico; el de B apenas se mueve.",
        ),
        hint="numfmt quantize --values 0.3,-1.2,0.8,60,-0.5,1.1 --compare int8,int4/group:2",
        values={"outlier": m},
    )


def perplexity(rng: np.random.Generator) -> Problem:
    base = Fraction(int(rng.integers(200, 320)), 100)
    worse = base + Fraction(int(rng.integers(3, 40)), 100)
    ppl = Fraction(math.exp(worse))
    return Problem(
        question=Text(
            f"On the same text, the float model's mean cross-entropy is {float(base):.2f} nats "
            f"per token and the int4 model's is {float(worse):.2f}. What is the int4 model's "
            "perplexity? (to 3 significant digits)",
            f"Sobre el mismo texto, la entropía cruzada media del modelo en coma flotante es "
            f"{float(base):.2f} nats por token y la del modelo int4 es {float(worse):.2f}. "
            "¿Cuál es la perplejidad del modelo int4? (con 3 cifras significativas)",
        ),
        answer=Decimal(3, example="15.5"),
        expected=ppl,
        working=Text(
            f"Perplexity is e to the mean cross-entropy: e^{float(worse):.2f} = "
            f"{significant(ppl, 5)} (the float model's: e^{float(base):.2f} = "
            f"{significant(Fraction(math.exp(base)), 4)}). It reads as the number of tokens "
            "the model hesitates between, on average.",
            f"La perplejidad es e elevado a la entropía cruzada media: e^{float(worse):.2f} = "
            f"{significant(ppl, 5)} (la del modelo en coma flotante: e^{float(base):.2f} = "
            f"{significant(Fraction(math.exp(base)), 4)}). Se lee como el número de tokens "
            "entre los que duda el modelo, de media.",
        ),
        hint=f'python -c "import math; print(math.exp({float(worse):.2f}))"',
        mistakes=(
            (
                Fraction(2 ** float(worse)),
                Text(
                    "2^x is for cross-entropy in bits; in nats the base is e.",
                    "2^x es para la entropía cruzada en bits; en nats la base es e.",
                ),
            ),
            (
                Fraction(math.exp(worse - base)),
                Text(
                    "That is the ratio of the two perplexities; the question asks for the "
                    "int4 model's own.",
                    "Ese es el cociente de las dos perplejidades; la pregunta pide la del "
                    "modelo int4.",
                ),
            ),
        ),
        values={"float_ce": str(base), "int4_ce": str(worse)},
    )


EXERCISES = (
    Spec(
        "compute", Text("What groups cost in bits", "Lo que cuestan los grupos en bits"), group_bits
    ),
    Spec(
        "compute",
        Text("A model's size under a recipe", "El tamaño de un modelo con una receta"),
        model_size,
    ),
    Spec(
        "compare",
        Text("int8 per tensor or int4 in groups?", "¿int8 por tensor o int4 por grupos?"),
        int8_or_groups,
    ),
    Spec(
        "compute",
        Text("Perplexity from cross-entropy", "La perplejidad a partir de la entropía cruzada"),
        perplexity,
    ),
)
