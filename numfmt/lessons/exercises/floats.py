"""Lesson 2's exercises: BF16's fields by hand, an FP16 pattern read back, underflow and
overflow, the gap between neighbours, rounding an integer into bf16."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

import numfmt
from numfmt.lessons.exercises.answers import Bits, Choice, Decimal, Option
from numfmt.lessons.exercises.core import Problem, Spec, float_format, rounded
from numfmt.lessons.exercises.text import Text, exact_decimal, readable, scientific, significant


def _exact(code: int, fmt: str) -> Fraction:
    v = numfmt.decode_exact(code, fmt)
    return -v.magnitude if v.negative else v.magnitude


def _binary_fraction(frac: Fraction) -> str:
    """1.625 -> '1.101' (a value in [1, 2) with a finite binary expansion)."""
    digits, rest = "", frac - 1
    while rest:
        rest *= 2
        digits += "1" if rest >= 1 else "0"
        rest -= 1 if rest >= 1 else 0
    return "1." + (digits or "0")


def bf16_fields(rng: np.random.Generator) -> Problem:
    e = int(rng.integers(-6, 11))
    j = int(rng.integers(1, 5))
    k = int(rng.integers(0, 2 ** (j - 1))) * 2 + 1  # odd: j bits after the point
    significand = 1 + Fraction(k, 2**j)
    negative = bool(rng.random() < 0.5)
    v = significand * Fraction(2) ** e * (-1 if negative else 1)
    text = exact_decimal(v)
    code = int(numfmt.encode_exact(text, "bf16"))
    sign, biased, mant = code >> 15, code >> 7 & 0xFF, code & 0x7F
    fmt = Bits(16, (1, 8, 7))
    unbiased = (sign << 15) | ((e & 0xFF) << 7) | mant
    with_one = (sign << 15) | (biased << 7) | ((0x80 | mant) >> 1)
    return Problem(
        question=Text(
            f"Write {text} in bfloat16 (1 sign bit, 8 exponent bits with bias 127, 7 "
            "mantissa bits). Which 16 bits store it?",
            f"Escribe {text} en bfloat16 (1 bit de signo, 8 de exponente con sesgo 127, 7 de "
            "mantisa). ¿Qué 16 bits lo guardan?",
        ),
        answer=fmt,
        expected=code,
        working=Text(
            f"{text} = {'-' if negative else ''}{exact_decimal(significand)} x 2^{e}. Sign: "
            f"{sign} ({'negative' if negative else 'positive'}). Exponent: {e} + 127 = "
            f"{biased} = {biased:08b}. Mantissa: {exact_decimal(significand)} is "
            f"{_binary_fraction(significand)} in binary; the leading 1 is not stored, the "
            f"bits after the point fill 7 places: {mant:07b}. Together: {fmt.spell(code)}.",
            f"{text} = {'-' if negative else ''}{exact_decimal(significand)} x 2^{e}. Signo: "
            f"{sign} ({'negativo' if negative else 'positivo'}). Exponente: {e} + 127 = "
            f"{biased} = {biased:08b}. Mantisa: {exact_decimal(significand)} es "
            f"{_binary_fraction(significand)} en binario; el 1 de delante no se guarda, y los "
            f"bits tras el punto llenan 7 posiciones: {mant:07b}. Juntos: {fmt.spell(code)}.",
        ),
        hint=f"numfmt show {text} --format bf16",
        mistakes=(
            (
                unbiased,
                Text(
                    f"The exponent field holds the exponent plus the bias: {e} + 127 = "
                    f"{biased}, not {e}.",
                    f"El campo de exponente guarda el exponente más el sesgo: {e} + 127 = "
                    f"{biased}, no {e}.",
                ),
            ),
            (
                with_one,
                Text(
                    "The leading 1 of the significand is implicit: the mantissa field holds "
                    "only the bits after the binary point.",
                    "El 1 de delante está implícito: el campo de mantisa guarda solo los bits "
                    "que van tras el punto binario.",
                ),
            ),
            (
                code ^ 0x8000,
                Text(
                    "The sign bit is the wrong way round: 0 is positive, 1 negative.",
                    "El bit de signo está al revés: 0 es positivo y 1 negativo.",
                ),
            ),
        ),
        values={"value": text},
    )


def fp16_decode(rng: np.random.Generator) -> Problem:
    sign = int(rng.integers(0, 2))
    biased = int(rng.integers(10, 21))
    mant = int(rng.integers(1, 8)) << 7  # the top three mantissa bits
    code = sign << 15 | biased << 10 | mant
    value = _exact(code, "fp16")
    significand = 1 + Fraction(mant, 1024)
    e = biased - 15
    spelled = f"{sign} {biased:05b} {mant:010b}"
    s = -1 if sign else 1
    return Problem(
        question=Text(
            f"An fp16 number (1 sign bit, 5 exponent bits with bias 15, 10 mantissa bits) "
            f"holds the bits {spelled}. What is its value?",
            f"Un número fp16 (1 bit de signo, 5 de exponente con sesgo 15, 10 de mantisa) "
            f"guarda los bits {spelled}. ¿Cuál es su valor?",
        ),
        answer=Decimal(None, example="-0.40625"),
        expected=value,
        working=Text(
            f"Sign {sign}: {'negative' if sign else 'positive'}. Exponent {biased:05b} = "
            f"{biased}, minus the bias 15: {e}. Mantissa {mant:010b}: 1 + {mant}/1024 = "
            f"{exact_decimal(significand)}. Value: {'-' if sign else ''}"
            f"{exact_decimal(significand)} x 2^{e} = {exact_decimal(value)}.",
            f"Signo {sign}: {'negativo' if sign else 'positivo'}. Exponente {biased:05b} = "
            f"{biased}, menos el sesgo 15: {e}. Mantisa {mant:010b}: 1 + {mant}/1024 = "
            f"{exact_decimal(significand)}. Valor: {'-' if sign else ''}"
            f"{exact_decimal(significand)} x 2^{e} = {exact_decimal(value)}.",
        ),
        hint=f"numfmt decode 0b{sign}_{biased:05b}_{mant:010b} --format fp16",
        mistakes=(
            (
                s * significand * Fraction(2) ** biased,
                Text(
                    f"The exponent field is biased: the exponent is {biased} - 15 = {e}.",
                    f"El campo de exponente lleva sesgo: el exponente es {biased} - 15 = {e}.",
                ),
            ),
            (
                s * Fraction(mant, 1024) * Fraction(2) ** e,
                Text(
                    "A normal number's significand has an implicit leading 1: 1 + "
                    f"{mant}/1024, not {mant}/1024.",
                    "La mantisa de un número normal lleva un 1 implícito delante: 1 + "
                    f"{mant}/1024, no {mant}/1024.",
                ),
            ),
            (
                -value,
                Text(
                    "The sign is the other way: a sign bit 1 means negative.",
                    "El signo va al revés: un bit de signo 1 significa negativo.",
                ),
            ),
        ),
        values={"bits": spelled},
    )


_CLASSES = Choice(
    (
        Option("A", Text("zero (underflow)", "cero (subdesbordamiento)"), ("zero", "cero", "0")),
        Option("B", Text("a subnormal number", "un número subnormal"), ("subnormal",)),
        Option("C", Text("a normal number", "un número normal"), ("normal",)),
        Option(
            "D",
            Text("infinity (overflow)", "infinito (desbordamiento)"),
            ("inf", "infinity", "infinito", "infinite"),
        ),
    )
)
_KEY_OF_CLASS = {"zero": "A", "subnormal": "B", "normal": "C", "inf": "D"}


def survives(rng: np.random.Generator) -> Problem:
    name = str(rng.choice(["fp16", "bf16", "fp8_e5m2"]))
    f = float_format(name)
    tiny, normal, top = Fraction(f.smallest), Fraction(f.min_normal), Fraction(f.max_value)
    bands = {  # each well inside its class, away from the edges
        "A": (tiny / 1000, tiny / 4),
        "B": (tiny * 3 / 2, normal * 3 / 4),
        "C": (normal * 4, top / 4),
        "D": (top * 4, top * 1000),
    }
    lo, hi = bands[str(rng.choice(list(bands)))]
    log = rng.uniform(np.log10(float(lo)), np.log10(float(hi)))
    x = scientific(10**log)
    result = numfmt.show(x, name).to_dict()
    key = _KEY_OF_CLASS[result["class"]]
    stored = readable(significant(Fraction(result["stored_fraction"]), 3)) if key in "BC" else ""
    facts = (
        f"smallest subnormal {significant(tiny, 3)}, smallest normal "
        f"{significant(normal, 3)}, largest {readable(significant(top, 3))}"
    )
    hechos = (
        f"el menor subnormal {significant(tiny, 3)}, el menor normal "
        f"{significant(normal, 3)}, el mayor {readable(significant(top, 3))}"
    )
    why = {
        "A": Text(
            f"{x} lies below half the smallest subnormal ({significant(tiny / 2, 3)}), so it "
            "rounds to 0: it underflows.",
            f"{x} queda por debajo de la mitad del menor subnormal "
            f"({significant(tiny / 2, 3)}), así que se redondea a 0: subdesbordamiento.",
        ),
        "B": Text(
            f"{x} is below the smallest normal but above half the smallest subnormal: it "
            f"becomes the subnormal {stored}, with fewer significant bits.",
            f"{x} está por debajo del menor normal pero por encima de la mitad del menor "
            f"subnormal: queda como el subnormal {stored}, con menos bits "
            "significativos.",
        ),
        "C": Text(
            f"{x} lies between the smallest normal and the largest value: it is stored as "
            f"the normal number {stored} (to 3 digits).",
            f"{x} está entre el menor normal y el mayor valor: se guarda como el número "
            f"normal {stored} (con 3 cifras).",
        ),
        "D": Text(
            f"{x} is beyond the largest value (and beyond where rounding would bring it "
            "back), so it overflows to infinity.",
            f"{x} pasa del mayor valor (y de donde el redondeo lo traería de vuelta), así "
            "que se desborda a infinito.",
        ),
    }[key]
    return Problem(
        question=Text(
            f"The number {x} is stored in {name} (rounding to nearest). What does it become? "
            + " ".join(f"{o.key}) {o.label('en')}." for o in _CLASSES.options),
            f"Se guarda el número {x} en {name} (redondeo al más cercano). ¿En qué se "
            "convierte? " + " ".join(f"{o.key}) {o.label('es')}." for o in _CLASSES.options),
        ),
        answer=_CLASSES,
        expected=key,
        working=Text(f"{name}: {facts}. " + why("en"), f"{name}: {hechos}. " + why("es")),
        hint=f"numfmt show {x} --format {name}",
        values={"x": x, "format": name},
    )


def ulp(rng: np.random.Generator) -> Problem:
    name = str(rng.choice(["fp16", "bf16"]))
    f = float_format(name)
    e = int(rng.integers(-4, 12))
    x = (1 + Fraction(int(rng.integers(0, 8)), 8)) * Fraction(2) ** e
    text = exact_decimal(x)
    code = int(numfmt.encode_exact(text, name))
    gap = _exact(code + 1, name) - _exact(code, name)
    m = f.mantissa_bits
    return Problem(
        question=Text(
            f"In {name} ({m} mantissa bits), how far is {text} from the next larger {name} "
            "value? (That gap is one ULP at that value.)",
            f"En {name} ({m} bits de mantisa), ¿a qué distancia está {text} del siguiente "
            f"valor mayor de {name}? (Esa distancia es un ULP en ese valor.)",
        ),
        answer=Decimal(None, example="0.0078125"),
        expected=gap,
        working=Text(
            f"{text} lies in [2^{e}, 2^{e + 1}), where the exponent is {e}. There the {m} "
            f"mantissa bits split each power of two into 2^{m} steps: 2^{e} x 2^-{m} = "
            f"2^{e - m} = {exact_decimal(gap)}.",
            f"{text} está en [2^{e}, 2^{e + 1}), donde el exponente es {e}. Ahí los {m} bits "
            f"de mantisa parten cada potencia de dos en 2^{m} pasos: 2^{e} x 2^-{m} = "
            f"2^{e - m} = {exact_decimal(gap)}.",
        ),
        hint=f"numfmt show {text} --format {name}",
        mistakes=(
            (
                Fraction(2) ** -m,
                Text(
                    f"2^-{m} is the gap just above 1 (the machine epsilon); at {text} the "
                    f"exponent is {e}, so the gap is 2^{e} times that.",
                    f"2^-{m} es la distancia justo encima de 1 (el épsilon de la máquina); en "
                    f"{text} el exponente es {e}, así que la distancia es 2^{e} veces eso.",
                ),
            ),
            (
                gap / 2,
                Text(
                    "That is half the gap (the largest rounding error), not the gap.",
                    "Eso es la mitad de la distancia (el mayor error de redondeo), no la "
                    "distancia.",
                ),
            ),
            (
                gap * 2,
                Text(
                    f"Twice too large: count the exponent of {text} again.",
                    f"El doble de la respuesta: vuelve a contar el exponente de {text}.",
                ),
            ),
        ),
        values={"x": text, "format": name},
    )


def round_integer(rng: np.random.Generator) -> Problem:
    n = int(rng.integers(8, 12))  # 9 to 12 significant bits: more than bf16's 8
    x = 2**n + int(rng.integers(1, 2**n)) | 1
    stored = rounded(x, "bf16")
    down = rounded(x, "bf16", rounding="toward-zero")
    up = rounded(x, "bf16", rounding="up")
    step = up - down
    other = up if stored == down else down
    tie = 2 * x == down + up
    half_gap = exact_decimal((up - down) / 2)
    return Problem(
        question=Text(
            f"The integer {x} is stored in bfloat16 (8 significant bits), rounding to "
            "nearest (ties to even). What value is stored?",
            f"Se guarda el entero {x} en bfloat16 (8 bits significativos), redondeando al "
            "más cercano (empates al par). ¿Qué valor queda?",
        ),
        answer=Decimal(None, example="1024"),
        expected=stored,
        working=Text(
            f"{x} = {x:b} in binary: {x.bit_length()} significant bits, and bf16 keeps 8. "
            f"Between 2^{n} and 2^{n + 1} its values are {step} apart, so {x} lies between "
            f"{down} and {up}; "
            + (
                f"it is exactly half-way, and the tie goes to the one whose last bit is 0: "
                f"{stored}."
                if tie
                else f"the nearer is {stored}."
            ),
            f"{x} = {x:b} en binario: {x.bit_length()} bits significativos, y bf16 guarda 8. "
            f"Entre 2^{n} y 2^{n + 1} sus valores distan {step}, así que {x} queda entre "
            f"{down} y {up}; "
            + (
                f"está justo en medio, y el empate va al que termina en bit 0: {stored}."
                if tie
                else f"el más cercano es {stored}."
            ),
        ),
        hint=f"numfmt show {x} --format bf16",
        mistakes=(
            (
                other,
                Text(
                    f"{other} is the other neighbour; "
                    + (
                        f"{x} is as far from one as from the other ({half_gap}), and the "
                        f"tie goes to the even one, {stored}."
                        if tie
                        else f"{stored} is nearer."
                    ),
                    f"{other} es el otro vecino; "
                    + (
                        f"{x} está a la misma distancia de los dos ({half_gap}), y el "
                        f"empate va al par, {stored}."
                        if tie
                        else f"{stored} está más cerca."
                    ),
                ),
            ),
            (
                Fraction(x),
                Text(
                    f"bf16 cannot hold {x}: it has {x.bit_length()} significant bits, bf16 8.",
                    f"bf16 no puede guardar {x}: tiene {x.bit_length()} bits significativos, "
                    "y bf16 8.",
                ),
            ),
        ),
        values={"x": x},
    )


EXERCISES = (
    Spec(
        "encode", Text("BF16's three fields by hand", "Los tres campos de BF16 a mano"), bf16_fields
    ),
    Spec(
        "decode", Text("An FP16 bit pattern's value", "El valor de unos bits de FP16"), fp16_decode
    ),
    Spec(
        "overflow",
        Text(
            "Underflow, subnormal or overflow?", "¿Subdesbordamiento, subnormal o desbordamiento?"
        ),
        survives,
    ),
    Spec(
        "compute",
        Text("The gap to the next value (ULP)", "La distancia al siguiente valor (ULP)"),
        ulp,
    ),
    Spec(
        "encode", Text("An integer rounded into BF16", "Un entero redondeado a BF16"), round_integer
    ),
)
