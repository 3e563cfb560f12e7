"""The lessons' exercises: every one, on several seeds, accepts its reference answer in each
spelling, refuses nearby wrong answers (explaining the known slips), refuses malformed ones
with one clear message, and agrees with an independent oracle (fractions, numpy, ml_dtypes)."""

from __future__ import annotations

import math
import subprocess
import sys
from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from numfmt.lessons.catalog import LESSONS
from numfmt.lessons.exercises import AnswerError, exercise, exercise_list, lesson_names
from numfmt.lessons.exercises.answers import Bits, Choice, Decimal, Integer
from numfmt.lessons.exercises.catalog import specs
from numfmt.lessons.exercises.text import significant

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
        return [*out, f"+{expected}"] if expected >= 0 else out
    if isinstance(kind, Decimal):
        if kind.digits is None:
            out = [answer, str(Fraction(expected))]
            return out if "." not in answer else [*out, answer + "0"]
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
            # the working arrives at the answer it gives
            assert ex.answer in ex.solution().explanation, seed


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
    if isinstance(kind, Integer):
        return [("three", "three"), ("3,5", "3.5"), ("2.5", "2.5"), ("inf", "inf")]
    if isinstance(kind, Decimal):
        return [("3,14", "3.14"), ("-0,5", "-0.5"), ("pi", "pi"), ("nan", "nan"), ("1..2", "1..2")]
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
