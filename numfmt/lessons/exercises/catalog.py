"""Which lesson's exercises live where, and the two ways in: ``exercise`` poses one,
``exercise_list`` lists them."""

from __future__ import annotations

import importlib
from dataclasses import replace

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.lessons.exercises.core import (
    KINDS,
    Exercise,
    ExerciseEntry,
    ExerciseList,
    Spec,
    check_lang,
    new_seed,
)

#: Each lesson of the course (``numfmt.lessons.catalog``) -> the module of its exercises,
#: loaded when that lesson's exercises are first asked for.
_LAZY = {
    "bits": "numfmt.lessons.exercises.bits",
    "floats": "numfmt.lessons.exercises.floats",
    "quantization": "numfmt.lessons.exercises.quantization",
    "integer-mlp": "numfmt.lessons.exercises.network",
    "qat": "numfmt.lessons.exercises.qat",
    "language-model": "numfmt.lessons.exercises.language_model",
    "beyond-rtn": "numfmt.lessons.exercises.beyond_rtn",
    "arithmetic": "numfmt.lessons.exercises.arithmetic",
    "training": "numfmt.lessons.exercises.training",
    "matmul": "numfmt.lessons.exercises.matmul",
}


def lesson_names() -> list[str]:
    """The lessons that have exercises, in the course's order."""
    from numfmt.lessons.catalog import LESSONS

    return [lesson.name for lesson in LESSONS if lesson.name in _LAZY]


def _error(lang: str, en: str, es: str) -> NumfmtError:
    """A misuse, said in the student's language."""
    return NumfmtError(es if lang == "es" else en)


def specs(lesson: str, lang: str = "en") -> tuple[Spec, ...]:
    """The exercises of ``lesson``, in order.

    Raises:
        NumfmtError: no lesson of that name (said in ``lang``).
    """
    if lesson not in _LAZY:
        names = ", ".join(lesson_names())
        raise _error(
            lang,
            f"no lesson '{lesson}'; the lessons with exercises: {names}",
            f"no hay ninguna lección '{lesson}'; las lecciones con ejercicios: {names}",
        )
    return importlib.import_module(_LAZY[lesson]).EXERCISES


def exercise(lesson: str, number: int, *, seed: int | None = None, lang: str = "en") -> Exercise:
    """Exercise ``number`` (from 1) of ``lesson``, with its values drawn from
    ``numpy.random.default_rng(seed)``: the same seed poses the same question. Without a seed
    one is chosen (``Exercise.seed`` says which, to come back to it).

    Args:
        lesson: a lesson's name, as ``numfmt lesson`` lists them (``bits``, ``floats`` ...).
        number: which of its exercises.
        seed: a non-negative integer.
        lang: ``en`` or ``es``.

    Raises:
        NumfmtError: an unknown lesson, a number out of range, a negative seed (said in
            ``lang``), an unknown language.

    Example:
        >>> ex = exercise("bits", 1, seed=7)
        >>> v = ex.check(ex.answer)
        >>> v.correct, v.expected == ex.answer
        (True, True)
    """
    check_lang(lang)
    found = specs(lesson, lang)
    if isinstance(number, bool) or not isinstance(number, int | np.integer):
        raise _error(
            lang,
            f"an exercise's number is an integer, not {number!r}",
            f"el número de un ejercicio es un entero, no {number!r}",
        )
    if not 1 <= number <= len(found):
        raise _error(
            lang,
            f"lesson {lesson} has exercises 1 to {len(found)}; {number} is not one of them",
            f"la lección {lesson} tiene los ejercicios del 1 al {len(found)}; el {number} no "
            "es uno de ellos",
        )
    if seed is None:
        seed = new_seed()
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise _error(
            lang,
            f"a seed is a non-negative integer, not {seed!r}",
            f"una semilla es un entero no negativo, no {seed!r}",
        )
    spec = found[number - 1]
    problem = spec.pose(np.random.default_rng(int(seed)))
    # a slip that does not apply to these values (None), that gives the right answer here,
    # or that another slip already explains, is left out
    slips: list = []
    for wrong, why in problem.mistakes:
        if wrong is None or problem.answer.same(wrong, problem.expected):
            continue
        if not any(problem.answer.same(wrong, known) for known, _ in slips):
            slips.append((wrong, why))
    return Exercise(
        lesson=lesson,
        number=int(number),
        seed=int(seed),
        lang=lang,
        kind=spec.kind,
        title=spec.title(lang),
        problem=replace(problem, mistakes=tuple(slips)),
    )


def exercise_list(lesson: str | None = None, *, lang: str = "en") -> ExerciseList:
    """The exercises of ``lesson``, or of every lesson, in the course's order."""
    check_lang(lang)
    names = lesson_names() if lesson is None else [lesson]
    entries = tuple(
        ExerciseEntry(name, i, spec.kind, spec.title(lang), KINDS[spec.kind](lang))
        for name in names
        for i, spec in enumerate(specs(name, lang), 1)
    )
    return ExerciseList(entries, lang)
