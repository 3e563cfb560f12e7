"""Lesson 4's exercises (integer-mlp): a layer in integers. The accumulator's width, one
accumulator's value, a 16-bit accumulator that wraps, requantization to the next layer's
codes, and the fixed-point multiplier's shift."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

import numfmt
from numfmt.lessons.exercises.answers import Integer
from numfmt.lessons.exercises.core import Problem, Spec, rounded
from numfmt.lessons.exercises.text import Text, plus, significant, total, whole

#: The layer's codes: inputs 0 .. 255 with a zero point, weights -127 .. 127 (lesson 4).
X_MAX, W_MAX = 255, 127


def _width(big: int) -> int:
    """The fewest bits of a signed integer format (numfmt's intN) that hold -big .. big."""
    n = 2
    while True:
        f = numfmt.get_format(f"int{n}")
        if f.min_value <= -big and f.max_value >= big:
            return n
        n += 1


def accumulator_width(rng: np.random.Generator) -> Problem:
    k = int(rng.choice([16, 32, 64, 100, 256, 576, 1000, 1536, 4096, 11008]))
    big = k * X_MAX * W_MAX
    n = _width(big)
    product = X_MAX * W_MAX
    return Problem(
        question=Text(
            f"A layer has {whole(k)} inputs. Each product (x_q - z_x) * w_q has an input term of "
            f"at most {X_MAX} in size and a weight of at most {W_MAX}. How many bits must a signed "
            f"accumulator have so that the sum of the {whole(k)} products can never overflow?",
            f"Una capa tiene {whole(k)} entradas. Cada producto (x_q - z_x) * w_q tiene un término "
            f"de entrada de tamaño {X_MAX} como mucho y un peso de {W_MAX} como mucho. ¿Cuántos "
            f"bits debe tener un acumulador con signo para que la suma de los {whole(k)} productos "
            "no pueda desbordarse nunca?",
        ),
        answer=Integer(example=20),
        expected=n,
        working=Text(
            f"One product is at most {X_MAX} x {W_MAX} = {whole(product)} in size; {whole(k)} "
            f"of them add up to at most {whole(big)}, of either sign. A signed integer of n "
            f"bits reaches 2^(n-1) - 1: 2^{n - 2} - 1 = {whole(2 ** (n - 2) - 1)} is too "
            f"small, 2^{n - 1} - 1 = {whole(2 ** (n - 1) - 1)} is enough: {n} bits. int32 leaves "
            f"{32 - n} bits to spare.",
            f"Un producto es como mucho {X_MAX} x {W_MAX} = {whole(product)} en tamaño; "
            f"{whole(k)} de ellos suman como mucho {whole(big)}, con cualquier signo. Un entero "
            f"con signo de n bits llega a 2^(n-1) - 1: 2^{n - 2} - 1 = "
            f"{whole(2 ** (n - 2) - 1)} se queda corto, 2^{n - 1} - 1 = "
            f"{whole(2 ** (n - 1) - 1)} basta: {n} bits. int32 deja {32 - n} bits de "
            "sobra.",
        ),
        hint="numfmt info int32",
        mistakes=(
            (
                n - 1,
                Text(
                    "One bit short: the sum can be negative, so the accumulator needs a sign "
                    "bit too.",
                    "Falta un bit: la suma puede ser negativa, así que el acumulador necesita "
                    "también un bit de signo.",
                ),
            ),
            (
                16,
                Text(
                    f"16 bits hold one product, not the sum of {whole(k)}: each doubling of the "
                    "inputs adds a bit.",
                    f"16 bits caben un producto, no la suma de {whole(k)}: cada vez que se "
                    "duplican las entradas hace falta un bit más.",
                ),
            ),
        ),
        values={"inputs": k},
    )


def _codes(rng: np.random.Generator, k: int):
    z = int(rng.integers(90, 140))
    xq = [int(v) for v in rng.integers(0, 256, k)]
    wq = [int(v) for v in rng.integers(-127, 128, k)]
    return z, xq, wq


def accumulator(rng: np.random.Generator) -> Problem:
    z, xq, wq = _codes(rng, 4)
    b = int(rng.integers(-3000, 3001))
    terms = [(x - z) * w for x, w in zip(xq, wq, strict=True)]
    products = " + ".join(
        f"({x} - {z}) x {w if w >= 0 else f'({w})'}" for x, w in zip(xq, wq, strict=True)
    )
    acc = sum(terms) + b
    summed = total([whole(t) for t in terms])
    raw = sum(x * w for x, w in zip(xq, wq, strict=True)) + b
    return Problem(
        question=Text(
            f"A neuron of an int8 layer gets the input codes x_q = {xq} with zero point "
            f"z_x = {z}, has the weights w_q = {wq} and the int32 bias b_q = {b}. What does "
            "its int32 accumulator hold: acc = sum of (x_q - z_x) * w_q, plus b_q?",
            f"Una neurona de una capa int8 recibe los códigos de entrada x_q = {xq} con punto "
            f"cero z_x = {z}, tiene los pesos w_q = {wq} y el sesgo int32 b_q = {b}. ¿Qué "
            "guarda su acumulador int32: acc = suma de (x_q - z_x) * w_q, más b_q?",
        ),
        answer=Integer(),
        expected=acc,
        working=Text(
            f"{products} = {summed} = {whole(sum(terms))}; plus the bias {b}: "
            f"{whole(acc)}. Every step is exact: the products and their sum stay far inside int32.",
            f"{products} = {summed} = {whole(sum(terms))}; más el sesgo {b}: {whole(acc)}. Cada "
            "paso es exacto: los productos y su suma quedan muy dentro de int32.",
        ),
        hint="numfmt info int32",
        mistakes=(
            (
                raw,
                Text(
                    f"The zero point comes off each input code first: x_q - {z}. (The code "
                    f"{z} stands for 0.)",
                    f"Primero se resta el punto cero a cada código de entrada: x_q - {z}. (El "
                    f"código {z} representa el 0.)",
                ),
            ),
            (
                sum(terms),
                Text(
                    "The bias is missing: it is stored at the product's scale, so it adds "
                    "straight into the accumulator.",
                    "Falta el sesgo: se guarda a la escala del producto, así que se suma tal "
                    "cual al acumulador.",
                ),
            ),
        ),
        values={"x_q": xq, "z_x": z, "w_q": wq, "b_q": b},
    )


def narrow_accumulator(rng: np.random.Generator) -> Problem:
    while True:
        signs = rng.choice([-1, 1], 4, p=[0.2, 0.8])
        terms = [int(v) for v in rng.integers(6000, 16130, 4) * signs]
        exact_sum = sum(terms)
        if abs(exact_sum) > 32767:
            break
    held = int(numfmt.round_to(exact_sum, "int16", overflow="wrap")[()])
    saturated = int(numfmt.round_to(exact_sum, "int16", overflow="saturate")[()])
    shown = total([whole(t) for t in terms])
    listed = "[" + ", ".join(whole(t) for t in terms) + "]"
    lo, hi = whole(-(2**15)), whole(2**15 - 1)
    return Problem(
        question=Text(
            f"Four products, {listed}, are added in a 16-bit accumulator (int16) that wraps "
            "around on overflow, as integer hardware does. What does it hold at the end?",
            f"Cuatro productos, {listed}, se suman en un acumulador de 16 bits (int16) que da "
            "la vuelta al desbordarse, como hace el hardware de enteros. ¿Qué guarda al "
            "final?",
        ),
        answer=Integer(),
        expected=held,
        working=Text(
            f"The exact sum is {shown} = {whole(exact_sum)}, outside int16's {lo} .. {hi}. "
            f"Wrapping keeps the low 16 bits, the same as adding or subtracting {whole(2**16)} "
            f"until it fits: {whole(held)}. (Wrapping at each step or only at the end gives the "
            "same.) The sign may even flip: this is why lesson 4's --accumulator 16 ruins the "
            "network.",
            f"La suma exacta es {shown} = {whole(exact_sum)}, fuera del rango de int16, {lo} .. "
            f"{hi}. Al dar la vuelta se quedan los 16 bits de abajo, lo mismo que sumar o restar "
            f"{whole(2**16)} hasta que quepa: {whole(held)}. (Da igual dar la vuelta en cada paso "
            "o solo al final.) Hasta el signo puede cambiar: por eso --accumulator 16 estropea la "
            "red de la lección 4.",
        ),
        hint=f"numfmt show {exact_sum} --format int16 --overflow wrap",
        mistakes=(
            (
                exact_sum,
                Text(
                    f"{whole(exact_sum)} is the exact sum, but int16 cannot hold it.",
                    f"{whole(exact_sum)} es la suma exacta, pero int16 no la puede guardar.",
                ),
            ),
            (
                saturated,
                Text(
                    f"{whole(saturated)} is what a saturating accumulator would hold; this one "
                    "wraps.",
                    f"{whole(saturated)} es lo que guardaría un acumulador que satura; este da la "
                    "vuelta.",
                ),
            ),
        ),
        values={"terms": terms},
    )


def requantize(rng: np.random.Generator) -> Problem:
    while True:
        acc = int(rng.integers(-40000, 90000))
        m = Fraction(int(rng.integers(100, 999)), 10 ** int(rng.integers(5, 7)))
        z = int(rng.integers(0, 128))
        real = m * acc
        if abs(real - math.floor(real) - Fraction(1, 2)) > Fraction(1, 10):
            break
    code = int(rounded(real + z, "uint8", overflow="saturate"))
    unclipped = z + round(real)
    clipped = unclipped != code
    return Problem(
        question=Text(
            f"An int32 accumulator holds {whole(acc)}. The layer's multiplier is M = s_x * s_w / "
            f"s_y = {float(m)} and the output's zero point is z_y = {z}; its codes run 0 .. 255. "
            "What output code y_q = z_y + round(M * acc), clipped to 0 .. 255, comes out?",
            f"Un acumulador int32 guarda {whole(acc)}. El multiplicador de la capa es M = s_x * "
            f"s_w / s_y = {float(m)} y el punto cero de la salida es z_y = {z}; sus códigos van "
            "de 0 a 255. ¿Qué código de salida y_q = z_y + round(M * acc), recortado a "
            "0 .. 255, sale?",
        ),
        answer=Integer(),
        expected=code,
        working=Text(
            f"M * acc = {float(m)} x {whole(acc)} = {float(real):.4f}, rounded: {round(real)}. "
            f"Plus the zero point: {z} {plus(round(real))} = {unclipped}"
            + (
                f", outside 0 .. 255: clipped to {code}."
                if clipped
                else f", inside 0 .. 255: the code is {code}."
            ),
            f"M * acc = {float(m)} x {whole(acc)} = {float(real):.4f}, redondeado: "
            f"{round(real)}. Más el punto cero: {z} {plus(round(real))} = {unclipped}"
            + (
                f", fuera de 0 .. 255: se recorta a {code}."
                if clipped
                else f", dentro de 0 .. 255: el código es {code}."
            ),
        ),
        hint=f'numfmt calc "{acc} * {float(m)}" -f fp32',
        mistakes=(
            (
                round(real),
                Text(
                    f"The zero point is missing: the code that stands for 0 is {z}.",
                    f"Falta el punto cero: el código que representa el 0 es {z}.",
                ),
            ),
            (
                unclipped if clipped else None,
                Text(
                    f"{unclipped} is not a code: the output's codes run 0 .. 255, so it is "
                    "clipped.",
                    f"{unclipped} no es un código: los de salida van de 0 a 255, así que se "
                    "recorta.",
                ),
            ),
        ),
        values={"acc": acc, "M": str(m), "z_y": z},
    )


def shift(rng: np.random.Generator) -> Problem:
    m = Fraction(int(rng.integers(1000, 9999)), 10 ** int(rng.integers(4, 8)))
    e = math.floor(math.log2(m.numerator) - math.log2(m.denominator))
    while Fraction(2) ** e > m:
        e -= 1
    while Fraction(2) ** (e + 1) <= m:
        e += 1
    n = -e - 1  # m * 2^(31 + n) in [2^30, 2^31)
    m0 = round(m * 2 ** (31 + n))
    return Problem(
        question=Text(
            f"Integer-only inference writes the multiplier M = {float(m)} as M0 * 2^-(31 + n), "
            "with M0 an int32 between 2^30 and 2^31. What is the shift n?",
            f"La inferencia solo con enteros escribe el multiplicador M = {float(m)} como "
            "M0 * 2^-(31 + n), con M0 un int32 entre 2^30 y 2^31. ¿Cuánto vale el "
            "desplazamiento n?",
        ),
        answer=Integer(example=6),
        expected=n,
        working=Text(
            f"{float(m)} lies in [2^{e}, 2^{e + 1}) = [{significant(Fraction(2) ** e, 4)}, "
            f"{significant(Fraction(2) ** (e + 1), 4)}). For M0 = M x 2^(31 + n) to lie in "
            f"[2^30, 2^31), 2^(31 + n) x 2^{e} = 2^30: n = {n}. Then M0 = round(M x "
            f"2^{31 + n}) = {whole(m0)}, and M x acc becomes (M0 x acc) shifted right by {31 + n} "
            "bits.",
            f"{float(m)} está en [2^{e}, 2^{e + 1}) = [{significant(Fraction(2) ** e, 4)}, "
            f"{significant(Fraction(2) ** (e + 1), 4)}). Para que M0 = M x 2^(31 + n) quede "
            f"en [2^30, 2^31), 2^(31 + n) x 2^{e} = 2^30: n = {n}. Entonces M0 = round(M x "
            f"2^{31 + n}) = {whole(m0)}, y M x acc pasa a ser (M0 x acc) desplazado {31 + n} "
            "bits a la derecha.",
        ),
        hint=f"numfmt show {float(m)} --format fp32",
        mistakes=(
            (
                n + 1,
                Text(
                    f"One too many: with n = {n + 1}, M0 would reach 2^31 and not fit int32.",
                    f"Uno de más: con n = {n + 1}, M0 llegaría a 2^31 y no cabría en int32.",
                ),
            ),
            (
                n - 1,
                Text(
                    f"One too few: with n = {n - 1}, M0 would fall below 2^30 and lose a bit "
                    "of precision.",
                    f"Uno de menos: con n = {n - 1}, M0 quedaría por debajo de 2^30 y perdería "
                    "un bit de precisión.",
                ),
            ),
        ),
        values={"M": str(m)},
    )


EXERCISES = (
    Spec(
        "overflow",
        Text("How wide an accumulator?", "¿Qué ancho de acumulador?"),
        accumulator_width,
    ),
    Spec("compute", Text("One int32 accumulator", "Un acumulador int32"), accumulator),
    Spec(
        "overflow",
        Text("A 16-bit accumulator wraps", "Un acumulador de 16 bits da la vuelta"),
        narrow_accumulator,
    ),
    Spec(
        "compute",
        Text(
            "Requantization to the next layer's codes",
            "Recuantizar a los códigos de la siguiente capa",
        ),
        requantize,
    ),
    Spec(
        "encode",
        Text(
            "The fixed-point multiplier's shift",
            "El desplazamiento del multiplicador en punto fijo",
        ),
        shift,
    ),
)
