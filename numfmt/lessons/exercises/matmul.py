"""Lesson 10's exercises (matmul): one fused group of Hopper's FP8 tensor core by hand, where
its accumulator stalls over a long K, and a product of two e4m3 numbers rounded back to e4m3,
each computed by ``numfmt.arith.matmul``'s hardware models."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from numfmt.lessons.exercises.answers import Decimal
from numfmt.lessons.exercises.core import Problem, Spec, rounded
from numfmt.lessons.exercises.text import Text, exact_decimal, readable, whole

#: Bits Hopper's FP8 instruction keeps after the largest term's binary point (lesson 10).
KEPT = 13


def _split(p: Fraction) -> tuple[Fraction, Fraction]:
    """p as x * y with x and y both e4m3 values near each other in size."""
    k = p.denominator.bit_length() - 1  # the denominator is a power of two
    y = Fraction(1, 2 ** (k // 2))
    return p / y, y


def fused_group(rng: np.random.Generator) -> Problem:
    from numfmt.arith.matmul import matmul

    e = int(rng.integers(4, 10))
    unit = Fraction(2) ** (e - KEPT)
    sizes = [Fraction(1, 2), Fraction(3, 4), Fraction(3, 2), Fraction(5, 2), Fraction(3)]
    r1, r2 = (sizes[int(i)] for i in rng.choice(len(sizes), 2, replace=False))
    n1 = int(rng.integers(2, 12))
    n2 = 31 - n1
    big = Fraction(2) ** e
    bx, by = Fraction(2) ** ((e + 1) // 2), Fraction(2) ** (e // 2)
    p1, p2 = r1 * unit, r2 * unit
    (x1, y1), (x2, y2) = _split(p1), _split(p2)
    a = np.array([float(bx)] + [float(x1)] * n1 + [float(x2)] * n2)
    b = np.array([float(by)] + [float(y1)] * n1 + [float(y2)] * n2)
    result = Fraction(float(matmul(a, b, model="hopper-fp8")))
    exact = big + n1 * p1 + n2 * p2
    kept1, kept2 = int(r1) * unit, int(r2) * unit
    nearest = big + n1 * round(r1) * unit + n2 * round(r2) * unit
    return Problem(
        question=Text(
            f"Hopper's FP8 tensor core adds a group of 32 products at once: it aligns them "
            f"to the largest, keeps {KEPT} bits after that one's binary point, cutting the "
            f"rest off (toward zero), and adds what is left exactly. The group: one product "
            f"{exact_decimal(bx)} x {exact_decimal(by)} = {exact_decimal(big)}, {n1} products "
            f"of {exact_decimal(p1)} and {n2} of {exact_decimal(p2)}. What does it give?",
            f"El tensor core FP8 de Hopper suma un grupo de 32 productos de una vez: los "
            f"alinea con el mayor, guarda {KEPT} bits tras el punto binario de ese, corta el "
            f"resto (hacia cero) y suma de forma exacta lo que queda. El grupo: un producto "
            f"{exact_decimal(bx)} x {exact_decimal(by)} = {exact_decimal(big)}, {n1} productos "
            f"de {exact_decimal(p1)} y {n2} de {exact_decimal(p2)}. ¿Qué resultado da?",
        ),
        answer=Decimal(None, example="256.03125"),
        expected=result,
        working=Text(
            f"The largest term is {exact_decimal(big)} = 2^{e}, so every term is cut to a "
            f"multiple of 2^({e} - {KEPT}) = {exact_decimal(unit)}. {exact_decimal(p1)} keeps "
            f"{exact_decimal(kept1)}, {exact_decimal(p2)} keeps {exact_decimal(kept2)}: "
            f"{exact_decimal(big)} + {n1} x {exact_decimal(kept1)} + {n2} x "
            f"{exact_decimal(kept2)} = {exact_decimal(result)}. The exact sum is "
            f"{exact_decimal(exact)}; fp32 and Blackwell's 25 bits would keep it all.",
            f"El término mayor es {exact_decimal(big)} = 2^{e}, así que cada término se corta "
            f"a un múltiplo de 2^({e} - {KEPT}) = {exact_decimal(unit)}. {exact_decimal(p1)} "
            f"conserva {exact_decimal(kept1)}, {exact_decimal(p2)} conserva "
            f"{exact_decimal(kept2)}: {exact_decimal(big)} + {n1} x {exact_decimal(kept1)} + "
            f"{n2} x {exact_decimal(kept2)} = {exact_decimal(result)}. La suma exacta es "
            f"{exact_decimal(exact)}; fp32 y los 25 bits de Blackwell la conservarían "
            "entera.",
        ),
        hint="numfmt matmul --list",
        mistakes=(
            (
                exact,
                Text(
                    "That is the exact sum; the tensor core cuts every term to a multiple of "
                    f"{exact_decimal(unit)} first.",
                    "Esa es la suma exacta; el tensor core corta antes cada término a un "
                    f"múltiplo de {exact_decimal(unit)}.",
                ),
            ),
            (
                nearest,
                Text(
                    "That rounds each term to nearest; the hardware truncates (toward zero).",
                    "Eso redondea cada término al más cercano; el hardware trunca (hacia cero).",
                ),
            ),
        ),
        values={"big": str(big), "products": [[n1, str(p1)], [n2, str(p2)]]},
    )


def long_k(rng: np.random.Generator) -> Problem:
    from numfmt.arith.matmul import matmul

    k = int(rng.integers(-6, 1))
    p = Fraction(2) ** k
    x, y = _split(p)
    count = 2**15
    ones = np.ones(count)
    result = Fraction(float(matmul(ones * float(x), ones * float(y), model="hopper-fp8")))
    exact = count * p
    return Problem(
        question=Text(
            f"A dot product of K = {whole(count)} terms, every product equal to "
            f"{exact_decimal(x)} x {exact_decimal(y)} = {exact_decimal(p)}, runs on Hopper's "
            f"FP8 tensor core (hopper-fp8: groups of 32, {KEPT} bits kept after the largest "
            "term's point, a 14-bit accumulator, no promotion). What does it return?",
            f"Un producto escalar de K = {whole(count)} términos, cada producto igual a "
            f"{exact_decimal(x)} x {exact_decimal(y)} = {exact_decimal(p)}, se calcula en el "
            f"tensor core FP8 de Hopper (hopper-fp8: grupos de 32, {KEPT} bits tras el punto "
            "del término mayor, un acumulador de 14 bits, sin promoción). ¿Qué devuelve?",
        ),
        answer=Decimal(None, example="1.5"),
        expected=result,
        working=Text(
            f"The running sum S is the largest term of each group. While S < "
            f"{exact_decimal(p)} x 2^14, the last kept bit of S, 2^(exponent of S - {KEPT}), "
            f"is at most {exact_decimal(p)} and every product counts. From S = "
            f"{readable(result)} on, the last kept bit is {exact_decimal(2 * p)}: each "
            f"product is cut to 0 and the sum stalls there, against the exact "
            f"{readable(exact)}. Promotion into fp32 every 128 terms (DeepSeek's fix, "
            "hopper-fp8-promote128) keeps S small inside the tensor core and gives the exact "
            "sum.",
            f"La suma acumulada S es el término mayor de cada grupo. Mientras S < "
            f"{exact_decimal(p)} x 2^14, el último bit que se guarda de S, 2^(exponente de S - "
            f"{KEPT}), vale como mucho {exact_decimal(p)} y cada producto cuenta. Desde S = "
            f"{readable(result)}, el último bit guardado es {exact_decimal(2 * p)}: cada "
            f"producto se corta a 0 y la suma se estanca ahí, frente al valor exacto "
            f"{readable(exact)}. Promover a fp32 cada 128 términos (el arreglo de "
            "DeepSeek, hopper-fp8-promote128) mantiene S pequeña dentro del tensor core y da "
            "la suma exacta.",
        ),
        hint="numfmt matmul --model hopper-fp8,hopper-fp8-promote128",
        mistakes=(
            (
                exact,
                Text(
                    f"{readable(exact)} is the exact sum, what promotion to fp32 keeps; "
                    "without it the accumulator stalls.",
                    f"{readable(exact)} es la suma exacta, la que conserva la promoción a "
                    "fp32; sin ella el acumulador se estanca.",
                ),
            ),
            (
                p * 2**8,
                Text(
                    "That is where a bf16 accumulator (8 bits) would stall; this one keeps "
                    f"{KEPT} bits after the point.",
                    "Ahí se estancaría un acumulador bf16 (8 bits); este guarda "
                    f"{KEPT} bits tras el punto.",
                ),
            ),
            (
                p * 2**13,
                Text(
                    f"At {readable(p * 2**13)} the last kept bit is still "
                    f"{exact_decimal(p)}: the sum grows to twice that.",
                    f"En {readable(p * 2**13)} el último bit guardado todavía vale "
                    f"{exact_decimal(p)}: la suma llega al doble.",
                ),
            ),
        ),
        values={"K": count, "x": str(x), "y": str(y)},
    )


def fp8_product(rng: np.random.Generator) -> Problem:
    import numfmt.arith as arith

    while True:
        x, y = (
            (1 + Fraction(int(m), 8)) * Fraction(2) ** int(s)
            for m, s in zip(rng.integers(1, 8, 2), rng.integers(-2, 3, 2), strict=True)
        )
        exact = x * y
        stored = Fraction(float(arith.mul(float(x), float(y), "fp8_e4m3")))
        down = rounded(exact, "fp8_e4m3", rounding="toward-zero")
        if stored != exact:
            break
    up = rounded(exact, "fp8_e4m3", rounding="up")
    low = rounded(exact, "fp8_e4m3", rounding="down")
    other = up if stored == low else low
    tie = 2 * exact == low + up
    return Problem(
        question=Text(
            f"x = {exact_decimal(x)} and y = {exact_decimal(y)} are both e4m3 values (4 "
            "significant bits). What is x * y rounded back into e4m3 (to nearest, ties to "
            "even)?",
            f"x = {exact_decimal(x)} e y = {exact_decimal(y)} son valores de e4m3 (4 "
            "bits significativos). ¿Cuánto vale x * y redondeado de vuelta a e4m3 (al más "
            "cercano, empates al par)?",
        ),
        answer=Decimal(None, example="3.75"),
        expected=stored,
        working=Text(
            f"x * y = {exact_decimal(exact)} exactly, which needs up to 8 significant bits. "
            f"e4m3 keeps 4: the neighbours are {exact_decimal(low)} and {exact_decimal(up)}, "
            + (
                "and it lies half-way between them: the tie goes to the even one, "
                if tie
                else "and the nearer is "
            )
            + f"{exact_decimal(stored)}. This is why tensor cores keep the products exact and "
            "round only the sum.",
            f"x * y = {exact_decimal(exact)} exacto, que necesita hasta 8 bits "
            f"significativos. e4m3 guarda 4: los vecinos son {exact_decimal(low)} y "
            f"{exact_decimal(up)}, "
            + ("y queda justo en medio: el empate va al par, " if tie else "y el más cercano es ")
            + f"{exact_decimal(stored)}. Por eso los tensor cores guardan los productos "
            "exactos y solo redondean la suma.",
        ),
        hint=f'numfmt calc "{exact_decimal(x)} * {exact_decimal(y)}" -f fp8_e4m3',
        mistakes=(
            (
                exact,
                Text(
                    f"{exact_decimal(exact)} is the exact product; e4m3 cannot hold it.",
                    f"{exact_decimal(exact)} es el producto exacto; e4m3 no puede guardarlo.",
                ),
            ),
            (
                other,
                Text(
                    f"{exact_decimal(other)} is the other neighbour"
                    + (
                        f"; {exact_decimal(exact)} is as far from one as from the other, and "
                        f"the tie goes to the even one, {exact_decimal(stored)}."
                        if tie
                        else " (cutting the extra bits off is not rounding)."
                        if other == down
                        else "."
                    ),
                    f"{exact_decimal(other)} es el otro vecino"
                    + (
                        f"; {exact_decimal(exact)} está a la misma distancia de los dos, y el "
                        f"empate va al par, {exact_decimal(stored)}."
                        if tie
                        else " (quitar los bits que sobran no es redondear)."
                        if other == down
                        else "."
                    ),
                ),
            ),
        ),
        values={"x": str(x), "y": str(y)},
    )


EXERCISES = (
    Spec(
        "compute",
        Text(
            "One fused group of Hopper's FP8 tensor core",
            "Un grupo fusionado del tensor core FP8 de Hopper",
        ),
        fused_group,
    ),
    Spec(
        "stagnation",
        Text("Where an FP8 accumulator stalls", "Dónde se estanca un acumulador FP8"),
        long_k,
    ),
    Spec(
        "encode",
        Text("An e4m3 product rounded back to e4m3", "Un producto e4m3 redondeado a e4m3"),
        fp8_product,
    ),
)
