"""``numfmt exercise``: listing, posing, checking (exit 0 right, 1 wrong, 2 misuse), both
languages, JSON; data on stdout, messages on stderr."""

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.lessons.exercises import exercise, lesson_names


def _run(*args, env=None):
    return CliRunner().invoke(main, [str(a) for a in args], env=env)


def test_with_no_lesson_every_lesson_and_its_exercises_are_listed():
    r = _run("exercise")
    assert r.exit_code == 0, r.output
    for lesson in lesson_names():
        assert lesson in r.stdout
    rows = json.loads(_run("exercise", "--json").stdout)["exercises"]
    assert len(rows) >= 3 * len(lesson_names())
    assert {row["lesson"] for row in rows} == set(lesson_names())


def test_a_lesson_without_a_number_lists_its_own_exercises_in_the_chosen_language():
    rows = json.loads(_run("exercise", "bits", "--json").stdout)["exercises"]
    assert {row["lesson"] for row in rows} == {"bits"}
    assert [row["number"] for row in rows] == list(range(1, len(rows) + 1))
    es = _run("exercise", "bits", "--lang", "es")
    assert es.exit_code == 0 and "complemento a dos" in es.stdout and "lección" in es.stdout


def test_posing_prints_the_question_its_form_a_hint_and_how_to_answer():
    r = _run("exercise", "bits", "1", "--seed", "7")
    assert r.exit_code == 0 and r.stderr == ""
    ex = exercise("bits", 1, seed=7)
    assert "seed 7" in r.stdout and ex.form in r.stdout.replace("\n", " ")
    assert f"$ {ex.hint}" in r.stdout
    assert "$ numfmt exercise bits 1 --seed 7 --answer" in r.stdout
    d = json.loads(_run("exercise", "bits", "1", "--seed", "7", "--json").stdout)
    assert d == json.loads(ex.to_json())


def test_without_a_seed_one_is_printed_and_poses_the_same_question_again():
    d = json.loads(_run("exercise", "floats", "2", "--json").stdout)
    again = json.loads(_run("exercise", "floats", "2", "--seed", d["seed"], "--json").stdout)
    assert again["question"] == d["question"]
    shown = _run("exercise", "floats", "2").stdout
    seed = shown.split("(seed ")[1].split(")")[0]
    assert f"--seed {seed} --answer" in shown


def test_a_right_answer_exits_0_a_wrong_one_1_with_the_working():
    ex = exercise("bits", 1, seed=7)
    right = _run("exercise", "bits", "1", "--seed", "7", "--answer", ex.answer)
    assert right.exit_code == 0 and "Correct." in right.stdout and right.stderr == ""
    wrong = _run("exercise", "bits", "1", "--seed", "7", "--answer", "00000000")
    assert wrong.exit_code == 1
    assert f"You answered 00000000; the answer is {ex.answer}." in wrong.stdout
    assert "Flip every bit" in wrong.stdout  # the working
    assert ex.question[:30] in wrong.stdout  # and the question it answers


def test_a_known_slip_is_named():
    ex = exercise("bits", 1, seed=7)
    ones, why = ex.problem.mistakes[0]
    r = _run("exercise", "bits", "1", "--seed", "7", "-a", ex.problem.answer.spell(ones))
    assert r.exit_code == 1 and why("en") in r.stdout.replace("\n", " ")


def test_a_negative_answer_needs_no_double_dash():
    ex = exercise("bits", 2, seed=3)
    assert ex.answer.startswith("-")
    r = _run("exercise", "bits", "2", "--seed", "3", "--answer", ex.answer)
    assert r.exit_code == 0, r.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bits", "1", "--seed", "7", "--answer", "11x11101"), "only 0s and 1s"),
        (("bits", "1", "--seed", "7", "--answer", "1101"), "8 bits are asked for"),
        (
            ("quantization", "1", "--seed", "3", "--answer", "0,0176"),
            "write the decimal point as a dot: 0.0176",
        ),
        (("floats", "3", "--seed", "1", "--answer", "E"), "answer with one letter, A, B, C or D"),
        (("bits", "2", "--seed", "1", "--answer", "2.5"), "the answer is an integer"),
        (("bits", "1", "--answer", "0"), "give the --seed it was posed with"),
        (("bits", "1", "--solution"), "give the --seed"),
        (("bits", "--seed", "3"), "give its lesson and number"),
        (("--answer", "3"), "give its lesson and number"),
        (("bitz",), "no lesson 'bitz'; the lessons with exercises: bits, floats, quantization"),
        (("bitz", "1"), "the lessons with exercises: bits"),
        (("bits", "9"), "lesson bits has exercises 1 to 5; 9 is not one of them"),
        (("bits", "1", "--seed", "1", "--answer", "0", "--solution"), "not both"),
    ],
    ids=[
        "letters-for-bits",
        "too-few-bits",
        "decimal-comma",
        "not-a-letter",
        "not-an-integer",
        "answer-without-seed",
        "solution-without-seed",
        "seed-without-number",
        "answer-without-lesson",
        "unknown-lesson",
        "unknown-lesson-with-number",
        "number-out-of-range",
        "answer-and-solution",
    ],
)
def test_misuse_is_one_line_on_stderr_and_status_2(args, message):
    r = _run("exercise", *args)
    assert r.exit_code == 2, r.output
    assert r.stdout == ""
    assert r.stderr.startswith("Error: ") and message in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("bits", "9"), "la lección bits tiene los ejercicios del 1 al 5; el 9 no es uno de ellos"),
        (("bitz",), "no hay ninguna lección 'bitz'; las lecciones con ejercicios: bits, floats"),
        (("bitz", "1"), "no hay ninguna lección 'bitz'"),
        (
            ("bits", "1", "--answer", "0"),
            "--answer es para una pregunta: da la --seed con la que se planteó, p. ej. "
            "numfmt exercise bits 1 --seed 7 --lang es --answer X",
        ),
        (("bits", "1", "--solution"), "--solution es para una pregunta: da la --seed"),
        (("bits", "--seed", "3"), "--seed es para un ejercicio: da su lección y su número"),
        (("bits", "1", "--seed", "1", "--answer", "0", "--solution"), "da --answer o --solution"),
        (
            ("integer-mlp", "2", "--seed", "3", "--answer", "-10,461"),
            "escribe el número sin separadores entre las cifras: -10461, no -10,461",
        ),
        (("bits", "2", "--seed", "1", "--answer", "1e999"), "la respuesta es un número finito"),
    ],
    ids=[
        "number-out-of-range",
        "unknown-lesson",
        "unknown-lesson-with-number",
        "answer-without-seed",
        "solution-without-seed",
        "seed-without-number",
        "answer-and-solution",
        "thousands-comma",
        "beyond-float64",
    ],
)
@pytest.mark.parametrize("how", ["option", "environment"])
def test_misuse_is_said_in_spanish_when_spanish_is_chosen(args, message, how):
    if how == "option":
        r = _run("exercise", *args, "--lang", "es")
    else:
        r = _run("exercise", *args, env={"NUMFMT_LANG": "es"})
    assert r.exit_code == 2, r.output
    assert r.stdout == "" and r.stderr.startswith("Error: ")
    assert message in " ".join(r.stderr.split())
    assert len(r.stderr.strip().splitlines()) == 1


def test_an_infinite_answer_is_malformed_whatever_its_spelling():
    for answer in ("inf", "1e999", "-1e999", "2^2000"):
        r = _run("exercise", "floats", "2", "--seed", "1", "--answer", answer)
        assert r.exit_code == 2 and r.stdout == "", (answer, r.output)
        assert f"the answer is a finite number (a decimal number), not {answer}" in r.stderr


def test_the_spanish_list_names_the_kinds_in_spanish():
    r = _run("exercise", "--lang", "es")
    assert r.exit_code == 0
    assert "tipo" in r.stdout and "codificar" in r.stdout and "estancamiento" in r.stdout
    assert "encode" not in r.stdout and "stagnation" not in r.stdout
    rows = json.loads(_run("exercise", "bits", "--lang", "es", "--json").stdout)["exercises"]
    assert (rows[0]["kind"], rows[0]["kind_name"]) == ("encode", "codificar")


def test_spanish_from_the_option_or_the_environment():
    ex = exercise("quantization", 2, seed=4, lang="es")
    r = _run("exercise", "quantization", "2", "--seed", "4", "--lang", "es", "-a", ex.answer)
    assert r.exit_code == 0 and "Correcto." in r.stdout and "punto cero" in r.stdout
    env = _run("exercise", "quantization", "2", "--seed", "4", env={"NUMFMT_LANG": "es"})
    assert "semilla 4" in env.stdout and "--lang es --answer" in env.stdout
    bad = _run("exercise", "quantization", "1", "--seed", "4", "-l", "es", "-a", "0,5")
    assert bad.exit_code == 2 and "escribe el separador decimal con punto: 0.5" in bad.stderr


def test_the_solution_shows_the_answer_and_its_working():
    ex = exercise("matmul", 1, seed=2)
    r = _run("exercise", "matmul", "1", "--seed", "2", "--solution")
    assert r.exit_code == 0 and f"The answer is {ex.answer}." in r.stdout
    assert "multiple of" in r.stdout


def test_a_verdict_in_json():
    ex = exercise("arithmetic", 1, seed=5)
    r = _run("exercise", "arithmetic", "1", "--seed", "5", "--answer", "65504", "--json")
    assert r.exit_code == 1
    d = json.loads(r.stdout)
    assert d["correct"] is False and d["expected"] == ex.answer and d["answer"] == "65504"
    assert d["explanation"] and d["lesson"] == "arithmetic" and d["seed"] == 5


def test_the_help_teaches_with_examples():
    r = _run("exercise", "--help")
    assert r.exit_code == 0
    for line in ("numfmt exercise bits 1 --seed 7", "--answer", "--lang", "3.14, not 3,14"):
        assert line in r.stdout
    assert "exercise" in _run("--help").stdout


def test_through_python_m_numfmt_the_status_is_real_and_a_pipe_gets_no_colour():
    env = {**os.environ, "FORCE_COLOR": "", "NO_COLOR": "1"}
    ex = exercise("bits", 3, seed=1)
    out = subprocess.run(
        [sys.executable, "-m", "numfmt", "exercise", "bits", "3", "--seed", "1", "--answer", "0"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == (0 if ex.answer == "0" else 1)
    assert "\x1b[" not in out.stdout and out.stderr == ""
    assert f"the answer is {ex.answer}" in out.stdout
