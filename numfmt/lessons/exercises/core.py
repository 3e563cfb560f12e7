"""An exercise posed from (lesson, number, seed), and the verdict on an answer.

A lesson's module lists its exercises as :class:`Spec` s: a kind, a title, and a ``pose``
function that draws its values from ``numpy.random.default_rng(seed)`` and returns a
:class:`Problem`: the question, the answer's form, the reference answer (computed by numfmt's
own engine or exact arithmetic, never written in), the working, a command to explore with,
and the wrong answers worth a word of their own (the one's complement for a two's complement,
the saturated value for a wrapped one). :class:`Exercise` is what a student sees;
``Exercise.check`` reads an answer and returns a :class:`Verdict`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.errors import NumfmtError
from numfmt.formats import FloatFormat
from numfmt.lessons.exercises.answers import Answer, AnswerError, Decimal, Text

LANGS = ("en", "es")

#: What each kind of exercise is called, in each language (the list's "kind" column).
KINDS = {
    "encode": Text("encode", "codificar"),
    "decode": Text("decode", "decodificar"),
    "overflow": Text("overflow", "desbordamiento"),
    "scale": Text("scale", "escala"),
    "range": Text("range", "rango"),
    "compare": Text("compare", "comparar"),
    "stagnation": Text("stagnation", "estancamiento"),
    "compute": Text("compute", "calcular"),
}


@dataclass(frozen=True)
class Problem:
    """One drawing of an exercise.

    Attributes:
        question: what is asked, with the drawn values in it.
        answer: the answer's kind (``Bits``, ``Integer``, ``Decimal``, ``Choice``).
        expected: the reference answer, in the kind's own terms (a code, an int, a Fraction,
            a letter).
        working: how the answer is reached, step by step.
        hint: a numfmt command to explore the question with.
        mistakes: (a wrong answer, what it probably came from): said when it is given.
        values: the drawn values, for ``to_dict``.
    """

    question: Text
    answer: Answer
    expected: Any
    working: Text
    hint: str
    mistakes: tuple[tuple[Any, Text], ...] = ()
    values: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Spec:
    """An exercise of a lesson: its kind (``encode``, ``overflow`` ...), its title, and the
    function that poses it from a random generator."""

    kind: str
    title: Text
    pose: Callable[[np.random.Generator], Problem]


def rounded(x: Fraction | int, fmt: str, **options: Any) -> Fraction:
    """x (exact) rounded once into ``fmt`` by numfmt's encoder, as an exact value; options
    as ``numfmt.encode_exact`` takes them (rounding, overflow)."""
    import numfmt

    v = numfmt.decode_exact(numfmt.encode_exact(str(Fraction(x)), fmt, **options), fmt)
    return -v.magnitude if v.negative else v.magnitude


def float_format(name: str) -> FloatFormat:
    """The float format of that name (the exercises' formats are all floats)."""
    import numfmt

    fmt = numfmt.get_format(name)
    assert isinstance(fmt, FloatFormat), name
    return fmt


def check_lang(lang: str) -> str:
    if lang not in LANGS:
        raise NumfmtError(f"language '{lang}': choose en or es")
    return lang


def new_seed() -> int:
    """A seed for a student who gave none: small enough to type back."""
    return int(np.random.default_rng().integers(10_000))


@dataclass(frozen=True, eq=False)
class Exercise(Displayable):
    """An exercise as posed to a student: read ``question`` and ``form``, explore with
    ``hint``, then ``check(answer)``.

    Example:
        >>> from numfmt.lessons import exercise
        >>> ex = exercise("bits", 1, seed=7)
        >>> ex.check(ex.answer).correct
        True
    """

    lesson: str
    number: int
    seed: int
    lang: str
    kind: str
    title: str
    problem: Problem = field(repr=False)

    @property
    def question(self) -> str:
        return self.problem.question(self.lang)

    @property
    def form(self) -> str:
        """What the answer looks like: ``8 bits, like 01100001``."""
        return self.problem.answer.form(self.lang, self.problem.expected)

    @property
    def hint(self) -> str:
        return self.problem.hint

    @property
    def answer(self) -> str:
        """The reference answer, spelled as the form asks."""
        return self.problem.answer.spell(self.problem.expected)

    @property
    def command(self) -> str:
        """The command that checks an answer to this very question."""
        lang = " --lang es" if self.lang == "es" else ""
        return f"numfmt exercise {self.lesson} {self.number} --seed {self.seed}{lang} --answer"

    def check(self, answer: str) -> Verdict:
        """The verdict on ``answer`` (a string, read as the form says; never evaluated).

        Raises:
            AnswerError: the answer is not in the asked form (letters for bits, ``3,14`` for
                ``3.14``); the message says what to write.
        """
        p = self.problem
        given = p.answer.parse(str(answer), self.lang)
        correct = p.answer.same(given, p.expected)
        diagnosis = None
        if not correct:
            diagnosis = next(
                (why(self.lang) for wrong, why in p.mistakes if p.answer.same(given, wrong)),
                None,
            )
            if diagnosis is None and isinstance(p.answer, Decimal):
                close = p.answer.near(given, p.expected, str(answer))
                diagnosis = close(self.lang) if close is not None else None
        return Verdict(
            exercise=self,
            given=str(answer).strip(),
            correct=correct,
            expected=self.answer,
            explanation=p.working(self.lang),
            diagnosis=diagnosis,
        )

    def solution(self) -> Verdict:
        """The worked answer, as a verdict on the reference answer."""
        return self.check(self.answer)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lesson": self.lesson,
            "number": self.number,
            "seed": self.seed,
            "lang": self.lang,
            "kind": self.kind,
            "title": self.title,
            "question": self.question,
            "answer_form": self.form,
            "hint": self.hint,
            "answer_with": self.command + " ANSWER",
            "values": _plain(self.problem.values),
        }


@dataclass(frozen=True, eq=False)
class Verdict(Displayable):
    """What an answer earned: ``correct``, the reference answer, the working, and for a wrong
    answer that looks like a known slip, what it probably came from (``diagnosis``)."""

    exercise: Exercise = field(repr=False)
    given: str
    correct: bool
    expected: str
    explanation: str
    diagnosis: str | None = None

    def __bool__(self) -> bool:
        """A verdict is true when the answer is right: ``if ex.check(answer): ...``."""
        return self.correct

    @property
    def exit_code(self) -> int:
        """0 for a right answer, 1 for a wrong one (the command's status)."""
        return 0 if self.correct else 1

    def to_dict(self) -> dict[str, Any]:
        ex = self.exercise
        return {
            "lesson": ex.lesson,
            "number": ex.number,
            "seed": ex.seed,
            "lang": ex.lang,
            "question": ex.question,
            "answer": self.given,
            "correct": self.correct,
            "expected": self.expected,
            "diagnosis": self.diagnosis,
            "explanation": self.explanation,
        }


@dataclass(frozen=True)
class ExerciseEntry:
    """A line of the list: which lesson, which number, what kind (``kind`` as the code names
    it, ``kind_name`` in the list's language), its title."""

    lesson: str
    number: int
    kind: str
    title: str
    kind_name: str

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True, eq=False)
class ExerciseList(Displayable):
    """The exercises of one lesson, or of every lesson, in the course's order."""

    entries: tuple[ExerciseEntry, ...]
    lang: str = "en"

    def to_dict(self) -> dict[str, Any]:
        return {"lang": self.lang, "exercises": [e.to_dict() for e in self.entries]}


def _plain(obj: Any) -> Any:
    """Drawn values as JSON takes them (a Fraction as its exact string)."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if isinstance(obj, Fraction):
        return str(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    return obj


__all__ = [
    "KINDS",
    "LANGS",
    "AnswerError",
    "Exercise",
    "ExerciseEntry",
    "ExerciseList",
    "Problem",
    "Spec",
    "Verdict",
]
