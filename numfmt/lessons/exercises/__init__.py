"""Exercises that check themselves: each lesson ends with a few, posed from a seed.

``exercise(lesson, number, seed=S)`` poses one with its values drawn from
``numpy.random.default_rng(S)``, so each student gets their own and the same seed gives the
same question; ``Exercise.check(answer)`` reads an answer (never evaluating it) and returns a
``Verdict``: right or wrong, the reference answer, the working, and what a wrong answer
probably came from. Every reference answer is computed by numfmt's own engine (``formats``,
``arith``, ``quant``) or by exact arithmetic. In English and in Spanish (``lang="es"``).

==================  ===========================================================================
kind                what the student does
==================  ===========================================================================
``encode``          writes a value's bits by hand (two's complement, BF16's fields)
``decode``          reads a bit pattern back into a value
``overflow``        predicts what a value too large (or too small) becomes
``scale``           computes a scale and a zero point (asymmetric 0..255, symmetric -127..127)
``range``           chooses a range (alpha = max |x|, a percentile, a clip)
``compare``         predicts which of two recipes loses less
``stagnation``      predicts where a sum stops growing
``compute``         works a number through (a code, an accumulator, a memory size)
==================  ===========================================================================

``numfmt exercise`` is the same from the command line.
"""

from numfmt.lessons.exercises.answers import AnswerError
from numfmt.lessons.exercises.catalog import exercise, exercise_list, lesson_names
from numfmt.lessons.exercises.core import Exercise, ExerciseList, Verdict

__all__ = [
    "AnswerError",
    "Exercise",
    "ExerciseList",
    "Verdict",
    "exercise",
    "exercise_list",
    "lesson_names",
]
