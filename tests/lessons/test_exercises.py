"""The lessons' exercises: every one, on several seeds, accepts its reference answer in each
spelling, refuses nearby wrong answers (explaining the known slips), refuses malformed ones
with one clear message, and agrees with an independent oracle (fractions, numpy, ml_dtypes)."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from numfmt._display import grouped
from numfmt.lessons.catalog import LESSONS
from numfmt.lessons.exercises import AnswerError, exercise, exercise_list, lesson_names
from numfmt.lessons.exercises.answers import Bits, Choice, Decimal, Integer
from numfmt.lessons.exercises.catalog import specs
from numfmt.lessons.exercises.core import KINDS
from numfmt.lessons.exercises.text import percent, significant

ALL = [(lesson, n) for lesson in lesson_names() for n in range(1, len(specs(lesson)) + 1)]
IDS = [f"{lesson}-{n}" for lesson, n in ALL]
SEEDS = (0, 1, 7, 2024)


def _cases():
    return [(lesson, n, seed) for lesson, n in ALL for seed in SEEDS]


#: The exercises whose answer only numfmt's engine measures (an error on a random tensor).
ENGINE_ONLY = {("quantization", 5), ("language-model", 3)}


@pytest.fixture(scope="module")
def posed():
    """Every exercise on every seed, posed once for the module (in English and Spanish)."""
    return {
        (lesson, n, seed, lang): exercise(lesson, n, seed=seed, lang=lang)
        for lesson, n, seed in _cases()
        for lang in ("en", "es")
    }


def test_every_lesson_of_the_course_has_three_to_six_exercises():
    assert lesson_names() == [lesson.name for lesson in LESSONS]
    for lesson in lesson_names():
        assert 3 <= len(specs(lesson)) <= 6, lesson
    listed = exercise_list().to_dict()["exercises"]
    assert [(e["lesson"], e["number"]) for e in listed] == ALL


# -- the reference answer, in every spelling ----------------------------------------------------
def _spellings(ex) -> list[str]:
    kind, answer = ex.problem.answer, ex.answer
    expected = ex.problem.expected
    if isinstance(kind, Bits):
        plain = answer.replace(" ", "")
        return [
            answer,
            plain,
            "0b" + plain,
            " ".join(plain[i : i + 4] for i in range(0, len(plain), 4)),
            "_".join(answer.split()),
        ]
    if isinstance(kind, Integer):
        out = [answer, f"{expected}.0", f" {answer} "]
        if abs(expected) >= 1000:  # grouped as numfmt prints it, or by a space or thin space
            out += [grouped(expected).replace("\u202f", sep) for sep in "\u202f \u2009"]
        return [*out, f"+{expected}"] if expected >= 0 else out
    if isinstance(kind, Decimal):
        if kind.digits is None:
            out = [answer, str(Fraction(expected))]
            return out if "." not in answer else [*out, answer + "0"]
        whole, dot, rest = answer.partition(".")
        if len(whole.lstrip("-")) > 3 and whole.lstrip("-").isdigit():
            out = [answer, f"{grouped(int(whole))}{dot}{rest}".replace("\u202f", " ")]
            return [*out, significant(expected, kind.digits + 3)]
        return [answer, significant(expected, kind.digits + 3)]
    assert isinstance(kind, Choice)
    return [answer, answer.lower(), f"{answer.lower()})", f"{answer}."]


@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_the_reference_answer_is_right_in_every_spelling(posed, lesson, n):
    for seed, lang in ((seed, lang) for seed in SEEDS for lang in ("en", "es")):
        ex = posed[lesson, n, seed, lang]
        for spelled in _spellings(ex):
            v = ex.check(spelled)
            assert v.correct, (seed, spelled, ex.answer)
            assert v.exit_code == 0 and v.expected == ex.answer and v.diagnosis is None
        kind = ex.problem.answer
        if not isinstance(kind, Choice) and getattr(kind, "digits", None) is None:
            # the working arrives at the answer it gives (long numbers grouped there)
            assert ex.answer in ex.solution().explanation.replace("\u202f", ""), seed


# -- nearby wrong answers ------------------------------------------------------------------------
def _nearby(ex) -> list[str]:
    kind, expected = ex.problem.answer, ex.problem.expected
    if isinstance(kind, Bits):  # every answer one bit off
        return [kind.spell(expected ^ (1 << i)) for i in range(kind.width)]
    if isinstance(kind, Integer):
        return [str(expected + 1), str(expected - 1)] + ([str(-expected)] if expected else [])
    if isinstance(kind, Decimal):
        e = Fraction(expected)
        if kind.digits is None:
            step = abs(e) / 8 if e else Fraction(1, 8)
            out = [e + step, e - step, 2 * e if e else Fraction(1), -e if e else Fraction(-1)]
        else:  # more than half a unit of the last asked digit away, and the wrong sign
            unit = _unit(e, kind.digits)
            out = [e + unit * Fraction(3, 5), e - unit * Fraction(3, 5), -e]
        return [str(v) for v in out if v != e]
    assert isinstance(kind, Choice)
    return [k for k in kind.keys if k != expected]


def _unit(e: Fraction, digits: int) -> Fraction:
    """One unit of the last of ``digits`` significant digits of e (0.0001 for 0.0176...)."""
    return Fraction(10) ** (math.floor(math.log10(abs(float(e)))) - digits + 1)


@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_an_answer_to_the_asked_digits_is_right_within_half_a_unit(posed, lesson, n):
    for seed in SEEDS:
        ex = posed[lesson, n, seed, "en"]
        kind = ex.problem.answer
        if not isinstance(kind, Decimal) or kind.digits is None:
            continue
        e = Fraction(ex.problem.expected)
        for near in (e + _unit(e, kind.digits) * Fraction(2, 5), e - _unit(e, kind.digits) / 3):
            assert ex.check(str(near)).correct, (seed, near, ex.answer)


@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_nearby_wrong_answers_are_wrong_and_shown_the_working(posed, lesson, n):
    for seed in SEEDS:
        ex = posed[lesson, n, seed, "en"]
        for wrong in _nearby(ex):
            v = ex.check(wrong)
            assert not v.correct, (seed, wrong, ex.answer)
            assert v.exit_code == 1
            assert v.expected == ex.answer and v.explanation == ex.solution().explanation


@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_each_known_slip_is_wrong_and_named_in_the_students_language(posed, lesson, n):
    for seed, lang in ((seed, lang) for seed in SEEDS for lang in ("en", "es")):
        ex = posed[lesson, n, seed, lang]
        for wrong, why in ex.problem.mistakes:
            v = ex.check(ex.problem.answer.spell(wrong))
            assert not v.correct, (seed, wrong)
            assert v.diagnosis == why(lang)
            assert why("en") != why("es")


def test_the_exercises_name_their_slips():
    """Most exercises have at least one slip of their own: a wrong answer that is explained,
    not only marked wrong."""
    with_slips = {(lesson, n) for lesson, n in ALL if exercise(lesson, n, seed=0).problem.mistakes}
    assert len(with_slips) >= len(ALL) * 3 // 4


# -- malformed answers ---------------------------------------------------------------------------
def _malformed(ex) -> list[tuple[str, str]]:
    """(answer, a word the message must contain)."""
    kind = ex.problem.answer
    if isinstance(kind, Bits):
        return [
            ("abc", "0"),
            ("0xFD", "0"),
            ("1" * (kind.width - 1), str(kind.width)),
            ("1" * (kind.width + 1), str(kind.width)),
            ("", str(kind.width)),
        ]
    # a number beyond float64 is as infinite as inf: malformed, not a wrong answer
    huge = [("1e999", "1e999"), ("-1e999", "-1e999"), ("2^2000", "2^2000"), ("1e99999999", "1e9")]
    if isinstance(kind, Integer):
        return [("three", "three"), ("3,5", "3.5"), ("2.5", "2.5"), ("inf", "inf"), *huge]
    if isinstance(kind, Decimal):
        return [
            ("3,14", "3.14"),
            ("-0,5", "-0.5"),
            ("pi", "pi"),
            ("nan", "nan"),
            ("1..2", "1..2"),
            ("1,000.5", "1000.5"),
            *huge,
        ]
    assert isinstance(kind, Choice)
    return [("Z", "Z"), ("maybe", "maybe"), ("", kind.keys[0])]


@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_a_malformed_answer_gets_one_clear_message(posed, lesson, n):
    for lang in ("en", "es"):
        ex = posed[lesson, n, 0, lang]
        for bad, word in _malformed(ex):
            with pytest.raises(AnswerError) as caught:
                ex.check(bad)
            message = str(caught.value)
            assert "\n" not in message and word in message, (bad, message)
    # in Spanish, the message is Spanish
    with pytest.raises(AnswerError) as caught:
        posed[lesson, n, 0, "es"].check("3,14x")
    spanish = str(caught.value)
    assert any(w in spanish for w in ("escribe", "responde", "número", "entero", "la respuesta"))


def test_a_decimal_comma_is_answered_with_the_dot_to_write():
    ex = exercise("quantization", 1, seed=3)
    with pytest.raises(AnswerError, match=r"write the decimal point as a dot: 0\.0176, not 0,0176"):
        ex.check("0,0176")
    es = exercise("quantization", 1, seed=3, lang="es")
    with pytest.raises(AnswerError, match=r"escribe el separador decimal con punto: 0\.0176"):
        es.check("0,0176")


def test_answers_are_read_never_evaluated():
    ex = exercise("bits", 2, seed=0)
    for attempt in ("__import__('os').getcwd()", "1+1", "int('5')", "[1]"):
        with pytest.raises(AnswerError):
            ex.check(attempt)


# -- seeds ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_a_seed_poses_the_same_question_and_seeds_differ(posed, lesson, n):
    again = exercise(lesson, n, seed=7)
    first = posed[lesson, n, 7, "en"]
    assert again.question == first.question and again.answer == first.answer
    assert again.to_dict() == first.to_dict()
    questions = {posed[lesson, n, seed, "en"].question for seed in SEEDS}
    assert len(questions) >= 3, questions
    # the two languages pose the same numbers
    assert posed[lesson, n, 7, "es"].problem.values == first.problem.values
    assert posed[lesson, n, 7, "es"].answer == first.answer


def test_without_a_seed_one_is_chosen_and_poses_the_same_question_again():
    ex = exercise("floats", 2)
    assert 0 <= ex.seed < 10_000
    assert exercise("floats", 2, seed=ex.seed).question == ex.question
    assert f"--seed {ex.seed}" in ex.command


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: exercise("bitz", 1), "no lesson 'bitz'; the lessons with exercises: bits, floats"),
        (lambda: exercise("bits", 9), "lesson bits has exercises 1 to 5; 9 is not one"),
        (lambda: exercise("bits", 0), "1 to 5"),
        (lambda: exercise("bits", 1, seed=-1), "non-negative"),
        (lambda: exercise("bits", 1, lang="fr"), "choose en or es"),
        (lambda: exercise_list("nope"), "no lesson 'nope'"),
    ],
    ids=["unknown-lesson", "number-too-large", "number-zero", "negative-seed", "language", "list"],
)
def test_misuse_is_a_numfmt_error_naming_what_is_valid(call, message):
    from numfmt.errors import NumfmtError

    with pytest.raises(NumfmtError, match=message):
        call()


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: exercise("bitz", 1, lang="es"),
            "no hay ninguna lección 'bitz'; las lecciones con ejercicios: bits, floats",
        ),
        (
            lambda: exercise("bits", 9, lang="es"),
            "la lección bits tiene los ejercicios del 1 al 5; el 9 no es uno de ellos",
        ),
        (lambda: exercise("bits", 1, seed=-1, lang="es"), "una semilla es un entero no negativo"),
        (lambda: exercise("bits", "1", lang="es"), "el número de un ejercicio es un entero"),
        (lambda: exercise_list("nope", lang="es"), "no hay ninguna lección 'nope'"),
    ],
    ids=["unknown-lesson", "number-too-large", "negative-seed", "number-not-int", "list"],
)
def test_misuse_is_said_in_the_students_language(call, message):
    from numfmt.errors import NumfmtError

    with pytest.raises(NumfmtError, match=message):
        call()


# -- the reference answers against independent oracles ------------------------------------------
def _f(s) -> Fraction:
    return Fraction(s)


def _bits_of(spelled: str) -> int:
    return int(spelled.replace(" ", ""), 2)


def _e4m3(x: float) -> Fraction:
    return Fraction(float(ml_dtypes.float8_e4m3fn(x)))


def _stall(step: Fraction, dtype) -> Fraction:
    """Add step to 0 in dtype (numpy's and ml_dtypes' scalars: one rounding per addition, the
    sum exact in float32 before it) until the sum stops changing."""
    s = dtype(0)
    while True:
        t = dtype(np.float32(s) + np.float32(step))
        if t == s:
            return Fraction(float(s))
        s = t


_DTYPES = {
    "fp16": np.float16,
    "bf16": ml_dtypes.bfloat16,
    "fp8_e4m3": ml_dtypes.float8_e4m3fn,
    "fp8_e5m2": ml_dtypes.float8_e5m2,
}


def _oracle(ex):
    """The answer recomputed from the drawn values without numfmt, in the kind's own terms."""
    v = ex.problem.values
    key = (ex.lesson, ex.number)
    if key == ("bits", 1):
        return int(np.array(v["x"], np.int8).view(np.uint8))
    if key == ("bits", 2):
        return int(np.array(_bits_of(v["bits"]), np.uint8).view(np.int8))
    if key == ("bits", 3):
        return (v["x"] + 128) % 256 - 128
    if key == ("bits", 4):
        n = v["bits"]
        return 2 ** (n - 1) - 1 if v["which"] == "largest" else -(2 ** (n - 1))
    if key == ("bits", 5):
        bits = {"fp32": 32, "bf16": 16, "fp8_e4m3": 8, "int4": 4}[v["format"]]
        return Fraction(v["parameters"] * bits, 8 * 10**9)
    if key == ("floats", 1):
        return int(np.array(float(_f(v["value"])), ml_dtypes.bfloat16).view(np.uint16))
    if key == ("floats", 2):
        return Fraction(float(np.array(_bits_of(v["bits"]), np.uint16).view(np.float16)))
    if key == ("floats", 3):
        dtype = _DTYPES[v["format"]]
        x = dtype(float(v["x"]))
        if x == 0:
            return "A"
        if np.isinf(float(x)):
            return "D"
        return "B" if abs(float(x)) < float(ml_dtypes.finfo(dtype).smallest_normal) else "C"
    if key == ("floats", 4):
        dtype = _DTYPES[v["format"]]
        x = np.array(float(_f(v["x"])), dtype)
        up = (x.view(np.uint16) + 1).astype(np.uint16).view(dtype)
        return Fraction(float(up)) - Fraction(float(x))
    if key == ("floats", 5):
        return Fraction(float(ml_dtypes.bfloat16(float(v["x"]))))
    if ex.lesson == "quantization" and ex.number <= 4:
        x = [_f(s) for s in v["x"]]
        alpha, beta, amax = max(x), min(x), max(abs(t) for t in x)
        return {
            1: (alpha - beta) / 255,
            2: round(-beta / ((alpha - beta) / 255)),
            3: amax / 127,
            4: round(_f(v.get("value", 0)) / (amax / 127)),
        }[ex.number]
    if key == ("integer-mlp", 1):
        return math.ceil(math.log2(v["inputs"] * 255 * 127 + 1)) + 1
    if key == ("integer-mlp", 2):
        xq, wq = np.array(v["x_q"], np.int64), np.array(v["w_q"], np.int64)
        return int(np.dot(xq - v["z_x"], wq)) + v["b_q"]
    if key == ("integer-mlp", 3):
        return (sum(v["terms"]) + 2**15) % 2**16 - 2**15
    if key == ("integer-mlp", 4):
        return min(255, max(0, v["z_y"] + round(_f(v["M"]) * v["acc"])))
    if key == ("integer-mlp", 5):
        from numfmt.lessons.integer_mlp import fixed_point

        return fixed_point(float(_f(v["M"])))[1]
    if key == ("qat", 1):
        w = np.array([float(_f(s)) for s in v["w"]])
        s = np.abs(w).max() / 7
        return Fraction(float(s * np.round(float(_f(v["weight"])) / s)))
    if key == ("qat", 2):
        alpha = _f(v["alpha"])
        return sum(abs(_f(s)) > alpha * Fraction(15, 14) for s in v["w"])
    if key == ("qat", 3):
        w = np.array([float(_f(s)) for s in v["w"]])

        def err(alpha):
            q = alpha * np.clip(np.round(w / alpha), -1, 1)
            return ((w - q) ** 2).sum()

        return "A" if err(np.abs(w).max()) < err(np.abs(w).max() / 2) else "B"
    if key == ("language-model", 1):
        cols, scheme = v["columns"], v["scheme"]
        group = int(scheme.split("group:")[1].split("/")[0])
        extra = (16 if "fp16" in scheme else 32) + (4 if "asym" in scheme else 0)
        return 4 + Fraction(math.ceil(cols / group) * extra, cols)
    if key == ("language-model", 2):
        group = int(v["recipe"].split("group:")[1].split("/")[0])
        return Fraction(v["parameters"]) * (4 + Fraction(16, group)) / 8 / 10**9
    if key == ("language-model", 4):
        return Fraction(math.exp(float(_f(v["int4_ce"]))))
    if key == ("beyond-rtn", 1):
        w, x = [_f(s) for s in v["w"]], [_f(s) for s in v["x"]]
        a = [round(t * 4) / Fraction(4) for t in w]
        b = list(a)
        j = v["flipped"] - 1
        b[j] = a[j] + (Fraction(1, 4) if w[j] > a[j] else -Fraction(1, 4))

        def err(q):
            return abs(sum(p * (s - t) for p, s, t in zip(x, w, q, strict=True)))

        return "A" if err(a) < err(b) else "B"
    if key == ("beyond-rtn", 2):
        w1, w2 = _f(v["w1"]), _f(v["w2"])
        q1 = round(w1 * 4) / Fraction(4)
        return round((w2 + w1 - q1) * 4) / Fraction(4)
    if key == ("beyond-rtn", 3):
        group = int(v["recipe"].split("group:")[1].split("/")[0])
        low = 4 + Fraction(16, group)
        big, n, per, keep = v["embedding"], v["layers"], v["per_layer"], v["keep"]
        return (8 * big + 8 * keep * per + low * (n - keep) * per) / (big + n * per)
    if key == ("arithmetic", 1):
        return _stall(_f(v["step"]), _DTYPES[v["format"]])
    if key == ("arithmetic", 2):
        t = _DTYPES[v["format"]]
        a, b, c = (np.float32(float(_f(v[k]))) for k in "abc")
        left = t(np.float32(t(a + b)) + c)
        right = t(a + np.float32(t(b + c)))
        return "A" if left > right else "B" if right > left else "C"
    if key == ("arithmetic", 3):
        bf = ml_dtypes.bfloat16
        return Fraction(float(bf(float(bf(float(_f(v["x"])))) - float(bf(float(_f(v["y"])))))))
    if key == ("training", 1):
        t = _DTYPES[v["format"]]
        return Fraction(
            float(t(np.float32(float(_f(v["w"]))) + np.float32(float(_f(v["update"])))))
        )
    if key == ("training", 2):
        g, k = _f(v["gradient"]), 0
        while g * 2**k < Fraction(1, 2**14):
            k += 1
        return 2**k
    if key == ("training", 3):
        w, u = _f(v["w"]), _f(v["update"])
        gap = Fraction(2) ** (math.floor(math.log2(w)) - 7)
        return u / gap
    if key == ("matmul", 1):
        big = _f(v["big"])
        unit = big / 2**13
        return big + sum(n * math.floor(_f(p) / unit) * unit for n, p in v["products"])
    if key == ("matmul", 2):
        return _f(v["x"]) * _f(v["y"]) * 2**14
    if key == ("matmul", 3):
        return _e4m3(float(_f(v["x"]) * _f(v["y"])))
    return None


@pytest.mark.parametrize(
    ("lesson", "n"),
    [c for c in ALL if c not in ENGINE_ONLY],
    ids=[i for c, i in zip(ALL, IDS, strict=True) if c not in ENGINE_ONLY],
)
def test_the_reference_answer_agrees_with_an_independent_oracle(posed, lesson, n):
    for seed in SEEDS:
        ex = posed[lesson, n, seed, "en"]
        truth = _oracle(ex)
        assert truth is not None, "every exercise outside ENGINE_ONLY has an oracle"
        # the oracle's answer, spelled as a student would, is accepted as right
        assert ex.problem.answer.same(truth, ex.problem.expected), (seed, truth, ex.answer)
        assert ex.check(ex.problem.answer.spell(truth)).correct


# -- views ---------------------------------------------------------------------------------------
def test_the_views_show_the_question_and_the_verdict_in_the_students_language():
    ex = exercise("bits", 1, seed=7, lang="es")
    text = str(ex)
    assert ex.question in text.replace("\n", " ") or ex.question[:40] in text
    assert "semilla 7" in text and ex.hint in text and "--seed 7 --lang es --answer" in text
    right, wrong = ex.check(ex.answer), ex.check("00000000")
    assert str(right).count("Correcto.") == 1 and "No es correcto." in str(wrong)
    assert "Respondiste 00000000; la respuesta es " + ex.answer in str(wrong)
    html = exercise("bits", 1, seed=7)._repr_html_()
    assert "<pre" in html and "two&#x27;s complement" in html
    assert "Correct." in exercise("bits", 1, seed=7).check(ex.answer)._repr_html_()


def test_to_dict_carries_what_json_needs_and_no_answer_until_asked():
    ex = exercise("floats", 3, seed=1)
    d = ex.to_dict()
    assert d["seed"] == 1 and d["lesson"] == "floats" and d["number"] == 3
    assert d["answer_form"] == ex.form and d["hint"] == ex.hint
    assert "expected" not in d and ex.answer not in d.values()
    v = ex.check("A" if ex.answer != "A" else "B").to_dict()
    assert v["correct"] is False and v["expected"] == ex.answer and v["explanation"]
    assert ex.to_json() and v == ex.check(v["answer"]).to_dict()


def test_posing_every_exercise_needs_no_torch():
    code = (
        "import sys\n"
        "from numfmt.lessons.exercises import exercise, lesson_names\n"
        "from numfmt.lessons.exercises.catalog import specs\n"
        "for l in lesson_names():\n"
        "    for n in range(1, len(specs(l)) + 1):\n"
        "        ex = exercise(l, n, seed=3)\n"
        "        assert ex.check(ex.answer).correct\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- what a Spanish-speaking student found: verdicts, wording, numbers ------------------------------
def test_a_verdict_is_true_only_when_the_answer_is_right():
    ex = exercise("bits", 1, seed=7)
    right, wrong = ex.check(ex.answer), ex.check("00000000")
    assert bool(right) is True and bool(ex.solution()) is True
    assert bool(wrong) is False and not wrong.correct
    assert [v.given for v in (right, wrong) if v] == [ex.answer]


def test_stochastic_rounding_says_what_rounding_to_nearest_would_do_instead():
    below_half = set()
    for seed in range(30):
        p = Fraction(exercise("training", 3, seed=seed).problem.expected)
        en = exercise("training", 3, seed=seed).solution().explanation
        es = exercise("training", 3, seed=seed, lang="es").solution().explanation
        if p < Fraction(1, 2):  # nearest rounds w + update back down to w: the update is lost
            assert "would lose it (it is under half the gap)" in en, seed
            assert "la perdería (no llega a media distancia)" in es, seed
            assert "whole gap" not in en
        else:  # nearest rounds up: the weight moves by the whole gap, more than the update
            assert "would move it by the whole gap" in en and "pasa de media distancia" in es
            assert "lose" not in en and "perdería" not in es, seed
        below_half.add(p < Fraction(1, 2))
    assert below_half == {True, False}
    es = exercise("training", 3, seed=8, lang="es").solution().explanation  # P(up) = 0.6016
    assert "0.60160" in es and "movería el peso la distancia entera, 0.00390625" in es


@pytest.mark.parametrize(
    ("ratio", "en", "es"),
    [
        (Fraction(48, 10_000), "0.48%", "0.48 %"),
        (Fraction(13, 1000), "1.3%", "1.3 %"),
        (Fraction(1, 3), "33%", "33 %"),
        (Fraction(22, 100), "22%", "22 %"),
    ],
    ids=["below-1", "one-decimal", "third", "whole"],
)
def test_percentages_are_written_as_the_lesson_pages_write_them(ratio, en, es):
    """docs/lesson-*.md write 1.3%, docs/lesson-*.es.md 1.3 % (two significant digits)."""
    assert percent(ratio, "en") == en and percent(ratio, "es") == es


def test_cancellation_gives_its_relative_error_with_significant_digits():
    x, y = Fraction("1.0288"), Fraction("1.0131")  # seed 8's, stored as 1.03125 and 1.015625
    rel = abs(Fraction("0.015625") - (x - y)) / (x - y)
    assert f"{float(rel):.2%}" == "0.48%"
    en = exercise("arithmetic", 3, seed=8).solution().explanation
    es = exercise("arithmetic", 3, seed=8, lang="es").solution().explanation
    assert "the relative error is 0.48%." in en
    assert "el error relativo es del 0.48 %." in es and "0%." not in es
    # "e y", not "y y": y before a word that starts with the sound i
    assert "x se guarda como 1.03125 e y se guarda como 1.015625." in es


def test_a_tie_is_said_to_be_a_tie_not_a_nearer_neighbour():
    for lang, same in (
        (
            "en",
            "289 is as far from one as from the other (1), and the tie goes to the even one, 288",
        ),
        ("es", "289 está a la misma distancia de los dos (1), y el empate va al par, 288"),
    ):
        ex = exercise("floats", 5, seed=11, lang=lang)  # 289 between 288 and 290
        assert ex.answer == "288"
        said = ex.check("290").diagnosis
        assert same in said and "nearer" not in said and "más cerca" not in said
    # an e4m3 product half-way between two values: 1.25 x 0.625 = 0.78125, 0.75 or 0.8125
    ex = exercise("matmul", 3, seed=25)
    assert ex.answer == "0.75" and ex.problem.values == {"x": "5/4", "y": "5/8"}
    assert "half-way between them: the tie goes to the even one, 0.75" in ex.solution().explanation
    assert "the nearer" not in ex.solution().explanation
    assert "as far from one as from the other" in ex.check("0.8125").diagnosis


def test_digits_grouped_by_commas_or_dots_get_the_number_to_write():
    ex = exercise("integer-mlp", 2, seed=3, lang="es")
    assert ex.answer == "-10461"
    with pytest.raises(AnswerError, match="sin separadores entre las cifras: -10461, no -10,461"):
        ex.check("-10,461")
    with pytest.raises(AnswerError, match="without separators between its digits: 1000, not"):
        exercise("integer-mlp", 2, seed=3).check("1,000")
    # a Spanish thousands dot: not an integer, and what to write if it meant thousands
    with pytest.raises(AnswerError, match=r"no lo es \(si el punto separa los miles, escríbelo"):
        ex.check("-10.461")
    # a decimal answer: one comma is a decimal comma; more, or one before a dot, are thousands
    dec = exercise("quantization", 1, seed=3, lang="es")
    with pytest.raises(AnswerError, match=r"el separador decimal con punto: 1\.000, no 1,000"):
        dec.check("1,000")
    for grouped_by_commas, plain in (("1,000,000", "1000000"), ("1,000.5", "1000.5")):
        with pytest.raises(AnswerError, match=f"sin separadores entre las cifras: {plain}"):
            dec.check(grouped_by_commas)


def test_digits_grouped_by_spaces_are_read_as_numfmt_prints_them():
    ex = exercise("integer-mlp", 2, seed=3, lang="es")
    for spaced in ("-10 461", "-10\u202f461", "-10\u2009461", " -10 461 "):
        assert ex.check(spaced).correct, spaced
    with pytest.raises(AnswerError):
        ex.check("-1 0461")  # groups of three only
    big = next(
        e for seed in range(60) if int((e := exercise("training", 2, seed=seed)).answer) >= 10_000
    )
    assert big.check(grouped(int(big.answer)).replace("\u202f", " ")).correct
    gb = next(e for seed in range(60) if float((e := exercise("bits", 5, seed=seed)).answer) > 1000)
    whole, dot, rest = gb.answer.partition(".")  # a decimal answer (1620 GB), grouped
    assert gb.check(grouped(int(whole)).replace("\u202f", " ") + dot + rest).correct


def test_the_list_names_each_kind_in_the_students_language():
    kinds = {spec.kind for lesson in lesson_names() for spec in specs(lesson)}
    assert kinds <= set(KINDS)
    rows = exercise_list(lang="es").to_dict()["exercises"]
    assert all(r["kind_name"] == KINDS[r["kind"]]("es") != r["kind"] for r in rows)
    text = str(exercise_list(lang="es"))
    for spanish in ("codificar", "decodificar", "desbordamiento", "estancamiento", "calcular"):
        assert spanish in text
    assert not re.search(r"\b(encode|decode|overflow|stagnation|compute|compare)\b", text)
    assert "stagnation" in str(exercise_list(lang="en"))


def test_the_group_bits_working_writes_its_sum_without_an_identity():
    for seed in range(20):
        for lang in ("en", "es"):
            text = exercise("language-model", 1, seed=seed, lang=lang).solution().explanation
            assert not re.search(r"(?<![\d.])(\d+) = \1(?![\d.])", text), (seed, text)
    es = exercise("language-model", 1, seed=4, lang="es").solution().explanation
    assert "más 32 bits por grupo (su escala)." in es
    asym = next(
        e
        for seed in range(40)
        if "/asym" in (e := exercise("language-model", 1, seed=seed)).problem.values["scheme"]
    )
    assert " + 4 = " in asym.solution().explanation


def test_the_wording_a_spanish_reader_expects():
    qat = exercise("qat", 2, seed=0, lang="es").question
    assert "estimador de paso directo (straight-through) recortado" in qat
    assert "son valores de e4m3 (4 bits" in exercise("matmul", 3, seed=0, lang="es").question
    assert "500 millones de parámetros" in exercise("bits", 5, seed=23, lang="es").question
    assert "500 million parameters" in exercise("bits", 5, seed=23).question
    questions = {exercise("bits", 5, seed=seed, lang="es").question for seed in range(40)}
    assert not any(re.search(r"\d\.\d mil millones", q) for q in questions)
    assert any("1500 millones" in q for q in questions)


def test_an_integers_example_is_never_the_answer_and_looks_like_one():
    for seed in range(30):
        scale = exercise("training", 2, seed=seed, lang="es")  # a power of two
        example = int(scale.form.rsplit(" ", 1)[1])
        assert example != int(scale.answer) and example & (example - 1) == 0, scale.form
        count = exercise("qat", 2, seed=seed)  # how many of 8 weights
        example = int(count.form.rsplit(" ", 1)[1])
        assert example != int(count.answer) and 0 <= example <= 8, count.form
    assert exercise("training", 2, seed=8, lang="es").form == "un entero, como 2048"


def test_a_small_updates_title_does_not_say_it_is_lost():
    lost = {}
    for seed in range(12):
        ex = exercise("training", 1, seed=seed)
        lost[ex.problem.expected == Fraction(ex.problem.values["w"])] = ex
    assert set(lost) == {True, False}  # the update is lost on some seeds and not on others
    for ex in lost.values():
        assert ex.title == "A small update"
        assert exercise("training", 1, seed=ex.seed, lang="es").title == "Una actualización pequeña"
    assert "the update is lost" in lost[True].solution().explanation
    assert "the weight moved by" in lost[False].solution().explanation


def test_an_answer_rounded_to_fewer_digits_than_asked_is_told_so():
    ex = exercise("quantization", 1, seed=3)  # 0.007059, to 4 significant digits
    assert ex.answer == "0.007059"
    assert ex.check("0.00706").diagnosis == "Close, but give 4 significant digits."
    assert ex.check("7.1e-3").diagnosis == "Close, but give 4 significant digits."
    es = exercise("quantization", 1, seed=3, lang="es")
    assert es.check("0.0071").diagnosis == "Cerca, pero da 4 cifras significativas."
    for neighbour in ("0.007058", "0.007060"):  # 4 digits, but not the nearest
        said = ex.check(neighbour).diagnosis
        assert said == "Close, but round to the nearest value with 4 significant digits."
    assert ex.check("0.0080").diagnosis is None and ex.check("0.00705").diagnosis is None
    exact = exercise("arithmetic", 3, seed=8)  # 0.015625, exactly
    assert (
        exact.check("0.0156").diagnosis == "Close, but give the exact value, with all its digits."
    )
    assert exact.check("0.0157").diagnosis.startswith("0.0157 is the exact difference")  # a slip


@pytest.mark.parametrize(("lesson", "n"), ALL, ids=IDS)
def test_every_answer_to_fewer_digits_than_asked_is_told_so(posed, lesson, n):
    for seed in SEEDS:
        ex = posed[lesson, n, seed, "es"]
        kind = ex.problem.answer
        if not isinstance(kind, Decimal) or kind.digits is None or kind.digits < 2:
            continue
        e = Fraction(ex.problem.expected)
        short = significant(e, kind.digits - 1)
        v = ex.check(short)
        if v.correct or any(kind.same(Fraction(short), w) for w, _ in ex.problem.mistakes):
            continue  # the rounding is already right, or a known slip says more
        assert v.diagnosis == f"Cerca, pero da {kind.digits} cifras significativas.", (seed, short)


_LONG = re.compile(r"(?<![\d.^/])-?\d{5,}(?![\d/])")


def test_long_numbers_are_grouped_where_they_are_read_and_plain_where_they_are_typed(posed):
    for (lesson, n, seed, lang), ex in posed.items():
        why = [said(lang) for _, said in ex.problem.mistakes]
        for text in (ex.question, ex.solution().explanation, *why):
            for m in _LONG.finditer(text):  # bit patterns excepted
                assert set(m.group().lstrip("-")) <= {"0", "1"}, (lesson, n, seed, lang, m.group())
    ex = exercise("language-model", 2, seed=0, lang="es")  # a 70B model
    assert "Un modelo de 70B tiene 70\u202f553\u202f706\u202f496 pesos." in ex.question
    assert "numfmt memory 70553706496 " in ex.hint and "\u202f" not in ex.answer
    assert "\u202f" not in ex.command
    memory = exercise("bits", 5, seed=23)  # 0.5e9 parameters in fp8_e4m3: 0.5 GB
    assert "= 500\u202f000\u202f000 bytes = 0.5 GB." in memory.solution().explanation


def test_the_grouping_space_is_spelled_for_a_console_that_cannot_print_it():
    from numfmt._display import text_view

    ex = exercise("language-model", 2, seed=0)
    ascii_text = text_view(ex, 100, "ascii")
    assert "70 553 706 496" in ascii_text and "\u202f" not in ascii_text


def test_a_grouped_number_is_never_split_across_lines():
    from numfmt._display import text_view

    ex = exercise("language-model", 2, seed=0, lang="es")  # 70 553 706 496 pesos
    number = grouped(70_553_706_496)
    for width in range(30, 101, 7):
        for view in (ex, ex.solution(), ex.check("1")):
            lines = text_view(view, width).splitlines()
            assert any(number in line for line in lines), (width, lines)
            assert max(len(line) for line in lines) <= width
