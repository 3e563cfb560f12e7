"""Lesson 1's exercises: two's complement both ways, wrapping, the range of n bits, memory."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import numfmt
from numfmt.lessons.exercises.answers import Bits, Decimal, Integer
from numfmt.lessons.exercises.core import Problem, Spec
from numfmt.lessons.exercises.text import Text, times_en, veces, whole


def _b8(code: int) -> str:
    return format(code & 0xFF, "08b")


def _weights(code: int) -> str:
    """``-128 + 32 + 2 + 1``: the bits of an int8 code by their weights."""
    terms = [str(-128 if i == 7 else 2**i) for i in range(7, -1, -1) if code >> i & 1]
    return " + ".join(terms).replace("+ -", "- ") or "0"


def twos_complement(rng: np.random.Generator) -> Problem:
    x = -int(rng.integers(1, 129))
    code = int(numfmt.encode(x, "int8"))
    m = -x
    ones = ~m & 0xFF
    check = f"{_weights(code)} = {x}"
    return Problem(
        question=Text(
            f"Write {x} as an int8, an 8-bit integer in two's complement. Which 8 bits store it?",
            f"Escribe {x} como int8, un entero de 8 bits en complemento a dos. ¿Qué 8 bits "
            "lo guardan?",
        ),
        answer=Bits(8),
        expected=code,
        working=Text(
            f"Write +{m} in binary with 8 bits: {_b8(m)}. Flip every bit: {_b8(ones)}. Add "
            f"1: {_b8(code)}. Check it: the top bit weighs -128, the others +64 ... +1: "
            f"{check}.",
            f"Escribe +{m} en binario con 8 bits: {_b8(m)}. Invierte cada bit: {_b8(ones)}. "
            f"Suma 1: {_b8(code)}. Compruébalo: el bit más alto pesa -128 y los demás +64 ... "
            f"+1: {check}.",
        ),
        hint=f"numfmt show {x} --format int8",
        mistakes=(
            (
                ones,
                Text(
                    "That is the one's complement: the bits flipped, without the +1 after.",
                    "Eso es el complemento a uno: los bits invertidos, sin sumar 1 después.",
                ),
            ),
            (
                0x80 | m,
                Text(
                    f"That is sign and magnitude: a 1 in front of {m}'s bits. Two's "
                    "complement stores 256 - " + str(m) + " instead.",
                    f"Eso es signo y magnitud: un 1 delante de los bits de {m}. El "
                    f"complemento a dos guarda 256 - {m}.",
                ),
            ),
            (
                m,
                Text(
                    f"Those are the bits of +{m}; the negative number needs its sign.",
                    f"Esos son los bits de +{m}; al número negativo le falta el signo.",
                ),
            ),
        ),
        values={"x": x},
    )


def read_int8(rng: np.random.Generator) -> Problem:
    code = int(rng.integers(128, 256))
    x = int(numfmt.decode(code, "int8"))
    bits = _b8(code)
    flipped = _b8(~code & 0xFF)
    return Problem(
        question=Text(
            f"An int8 (8 bits, two's complement) holds the bits {bits}. What integer is it?",
            f"Un int8 (8 bits, complemento a dos) guarda los bits {bits}. ¿Qué entero es?",
        ),
        answer=Integer(),
        expected=x,
        working=Text(
            f"The top bit weighs -128 and the others +64, +32 ... +1: {_weights(code)} = {x}. "
            f"Or: the top bit is 1, so it is negative; flip the bits ({flipped}) and add 1 to "
            f"get its size, {-x}.",
            f"El bit más alto pesa -128 y los demás +64, +32 ... +1: {_weights(code)} = {x}. "
            f"O bien: el bit más alto es 1, así que es negativo; invierte los bits ({flipped}) "
            f"y suma 1 para obtener su magnitud, {-x}.",
        ),
        hint=f"numfmt decode 0b{bits} --format int8",
        mistakes=(
            (
                code,
                Text(
                    f"{code} reads the bits as unsigned (uint8): in int8 the top bit weighs "
                    "-128, not +128.",
                    f"{code} lee los bits sin signo (uint8): en int8 el bit más alto pesa "
                    "-128, no +128.",
                ),
            ),
            (
                -(code & 0x7F),
                Text(
                    "That reads them as sign and magnitude (a minus sign, then the other 7 "
                    "bits); two's complement is not that.",
                    "Eso los lee como signo y magnitud (un signo menos y los otros 7 bits); "
                    "el complemento a dos no funciona así.",
                ),
            ),
            (
                x + 1,
                Text(
                    "Off by one: after flipping the bits, add 1.",
                    "Te falta uno: después de invertir los bits, suma 1.",
                ),
            ),
        ),
        values={"bits": bits},
    )


def wraps(rng: np.random.Generator) -> Problem:
    x = int(rng.integers(130, 700)) * (1 if rng.random() < 0.6 else -1)
    wrapped = int(numfmt.round_to(x, "int8", overflow="wrap")[()])
    saturated = int(numfmt.round_to(x, "int8", overflow="saturate")[()])
    low = x % 256
    times = (x - wrapped) // 256
    word = "subtract" if times > 0 else "add"
    palabra = "restar" if times > 0 else "sumar"
    return Problem(
        question=Text(
            f"{x} is stored in an int8 that wraps around on overflow (as numpy's "
            f"np.array({x}).astype(np.int8) does). What value does it hold?",
            f"Se guarda {x} en un int8 que da la vuelta al desbordarse (como hace "
            f"np.array({x}).astype(np.int8) en numpy). ¿Qué valor queda?",
        ),
        answer=Integer(),
        expected=wrapped,
        working=Text(
            f"int8 holds -128 .. 127, and {x} is outside. Wrapping keeps the low 8 bits: "
            f"{x} mod 256 = {low} = {_b8(low)}, read in two's complement as {wrapped}. The "
            f"same is to {word} 256 until it fits ({times_en(abs(times))}): {wrapped}. "
            f"Saturating would give {saturated} instead.",
            f"int8 guarda de -128 a 127, y {x} queda fuera. Al dar la vuelta se quedan los 8 "
            f"bits de abajo: {x} mod 256 = {low} = {_b8(low)}, que en complemento a dos es "
            f"{wrapped}. Es lo mismo que {palabra} 256 hasta que quepa "
            f"({veces(abs(times))}): {wrapped}. Con saturación quedaría {saturated}.",
        ),
        hint=f"numfmt show {x} --format int8 --overflow wrap",
        mistakes=(
            (
                saturated,
                Text(
                    f"{saturated} is what saturation gives (the nearest end of the range); "
                    "wrapping keeps the low 8 bits instead.",
                    f"{saturated} es lo que da la saturación (el extremo más cercano); al dar "
                    "la vuelta se quedan los 8 bits de abajo.",
                ),
            ),
            (
                low,
                Text(
                    f"{low} reads the low 8 bits unsigned; in int8 the top bit weighs -128.",
                    f"{low} lee los 8 bits de abajo sin signo; en int8 el bit más alto pesa -128.",
                ),
            ),
        ),
        values={"x": x},
    )


def int_range(rng: np.random.Generator) -> Problem:
    n = int(rng.choice([3, 4, 5, 6, 7, 10, 12, 16]))
    fmt = numfmt.get_format(f"int{n}")
    largest = bool(rng.random() < 0.5)
    expected = int(fmt.max_value if largest else fmt.min_value)
    which = "largest" if largest else "smallest"
    cual = "mayor" if largest else "menor"
    half = 2 ** (n - 1)
    return Problem(
        question=Text(
            f"A signed integer of {n} bits (two's complement): what is the {which} value it "
            "can hold?",
            f"Un entero con signo de {n} bits (complemento a dos): ¿cuál es el {cual} valor "
            "que puede guardar?",
        ),
        answer=Integer(),
        expected=expected,
        working=Text(
            f"{n} bits make 2^{n} = {whole(2**n)} codes. Two's complement gives half of them to "
            f"the negatives: -2^{n - 1} .. 2^{n - 1} - 1, that is {whole(-half)} .. "
            f"{whole(half - 1)}. One more "
            "negative than positive, because zero takes a code of the non-negative half.",
            f"{n} bits dan 2^{n} = {whole(2**n)} códigos. El complemento a dos da la mitad a "
            f"los negativos: -2^{n - 1} .. 2^{n - 1} - 1, es decir {whole(-half)} .. "
            f"{whole(half - 1)}. Hay un "
            "negativo más que positivos, porque el cero ocupa un código de la mitad no "
            "negativa.",
        ),
        hint=f"numfmt info int{n}",
        mistakes=(
            (
                2**n - 1,
                Text(
                    f"{whole(2**n - 1)} is the largest unsigned value of {n} bits; the sign takes "
                    "half the codes.",
                    f"{whole(2**n - 1)} es el mayor valor sin signo de {n} bits; el signo se lleva "
                    "la mitad de los códigos.",
                ),
            ),
            (
                half if largest else -(half - 1),
                Text(
                    "Off by one: the negatives reach -2^(n-1), the positives only 2^(n-1) - 1.",
                    "Te sobra o falta uno: los negativos llegan a -2^(n-1), los positivos "
                    "solo a 2^(n-1) - 1.",
                ),
            ),
        ),
        values={"bits": n, "which": which},
    )


def _bytes(bits: int, lang: str) -> str:
    """``2 bytes``, ``1 byte``, ``half a byte`` (``medio byte``)."""
    if bits == 4:
        return "medio byte" if lang == "es" else "half a byte"
    n = bits // 8
    return f"{n} byte" + ("s" if n != 1 else "")


def _how_many(billions: Fraction, lang: str) -> str:
    """A count of billions as it is said: ``7 billion`` (``7 mil millones``), and below a
    billion or between two, in millions: ``500 million`` (``500 millones``),
    ``1500 millones``; English keeps ``1.5 billion``."""
    if lang == "es":
        if billions.denominator == 1:
            return "mil millones" if billions == 1 else f"{billions} mil millones"
        return f"{whole(int(billions * 1000))} millones"
    if billions < 1:
        return f"{whole(int(billions * 1000))} million"
    return f"{float(billions):g} billion"


def memory(rng: np.random.Generator) -> Problem:
    from numfmt.eval.memory import estimate

    billions = Fraction(str(rng.choice(["0.5", "1.5", "3", "7", "8", "13", "70", "405"])))
    name = str(rng.choice(["fp32", "bf16", "fp8_e4m3", "int4"]))
    params = int(billions * 10**9)
    est = estimate(params, name)
    bits = int(est.bits_per_weight)
    gb = Fraction(est.nbytes, 10**9)
    count = f"{billions}e9" if billions.denominator == 1 else f"{float(billions)}e9"
    return Problem(
        question=Text(
            f"A model has {_how_many(billions, 'en')} parameters ({count}), stored in {name}. "
            "How many gigabytes (GB, 10^9 bytes) do its weights take?",
            f"Un modelo tiene {_how_many(billions, 'es')} de parámetros ({count}) "
            f"guardados en {name}. ¿Cuántos gigabytes (GB, 10^9 bytes) ocupan sus pesos?",
        ),
        answer=Decimal(3, example="16.0"),
        expected=gb,
        working=Text(
            f"{name} takes {bits} bits = {_bytes(bits, 'en')} per parameter: "
            f"{count} x {bits} / 8 = {whole(est.nbytes)} bytes = {float(gb):g} GB.",
            f"{name} ocupa {bits} bits = {_bytes(bits, 'es')} por parámetro: "
            f"{count} x {bits} / 8 = {whole(est.nbytes)} bytes = {float(gb):g} GB.",
        ),
        hint=f"numfmt memory {count} --format {name}",
        mistakes=(
            (
                gb * 8,
                Text(
                    "That counts bits, not bytes: divide by 8.",
                    "Eso cuenta bits, no bytes: divide entre 8.",
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
        values={"parameters": params, "format": name},
    )


EXERCISES = (
    Spec(
        "encode",
        Text("A negative number in two's complement", "Un número negativo en complemento a dos"),
        twos_complement,
    ),
    Spec(
        "decode",
        Text("Reading an int8's bits", "Leer los bits de un int8"),
        read_int8,
    ),
    Spec(
        "overflow",
        Text("Too large for int8: wrapping", "Demasiado grande para int8: dar la vuelta"),
        wraps,
    ),
    Spec(
        "range",
        Text("The range of n signed bits", "El rango de n bits con signo"),
        int_range,
    ),
    Spec(
        "compute",
        Text("A model's weights in memory", "Los pesos de un modelo en memoria"),
        memory,
    ),
)
