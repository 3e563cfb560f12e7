"""The course's lessons in order: where each one's page is, and the commands that show its
key results in a terminal (``numfmt lesson`` lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from numfmt._display import Displayable


@dataclass(frozen=True)
class Lesson:
    """One lesson: a short name, its title, its page under docs/, and commands that run it."""

    name: str
    title: str
    page: str
    commands: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "page": self.page,
            "commands": list(self.commands),
        }


LESSONS = (
    Lesson(
        "bits",
        "Bits and integers: 2^n values, two's complement, overflow, a model's memory",
        "docs/lesson-bits.md",
        (
            "numfmt lesson bits",
            "numfmt table int4",
            "numfmt show -5 -f int8",
            "numfmt memory 8e9 --format bf16",
        ),
    ),
    Lesson(
        "floats",
        "Floating point: sign, exponent, mantissa; FP32, FP16, BF16; subnormals, FP8, FP4",
        "docs/lesson-floats.md",
        ("numfmt lesson floats", "numfmt show 3.14 -f bf16", "numfmt compare 0.1"),
    ),
    Lesson(
        "quantization",
        "Quantization: scales and zero points, granularity, ranges, MX, NVFP4, NF4",
        "docs/lesson-quantization.md",
        (
            "numfmt lesson quantization",
            "numfmt quantize W.npy --compare int8,int4/group:128,mxfp4,nvfp4,nf4",
            "numfmt plot error-curve --dist laplace --out error.png",
            "numfmt plot clipping --dist outliers --out clipping.png",
        ),
    ),
    Lesson(
        "integer-mlp",
        "What to quantize in a network: weights, inputs, int32 accumulators, requantization",
        "docs/lesson-integer.md",
        ("numfmt lesson integer-mlp", "numfmt lesson integer-mlp --accumulator 16"),
    ),
    Lesson(
        "qat",
        "PTQ against QAT: the straight-through estimator on a digits classifier",
        "docs/lesson-qat.md",
        ("numfmt lesson qat", "numfmt lesson qat --bits 4,2 --plot qat.png"),
    ),
    Lesson(
        "language-model",
        "A real language model: SmolLM2-135M at 8 and 4 bits, perplexity, KL, text",
        "docs/lesson-llm.md",
        (
            "numfmt lesson language-model --plots figures",
            "numfmt model compare smollm2-135m --recipes fp32,int8-absmax,int8-zeropoint "
            "--text FILE --prompt 'I have a dream' --own-text",
        ),
    ),
    Lesson(
        "beyond-rtn",
        "Beyond round-to-nearest: output-aware ranges, GPTQ, sensitivity, mixed precision",
        "docs/beyond-rtn.md",
        (
            "numfmt lesson beyond-rtn",
            "numfmt model quantize smollm2-135m -r int4/group:64 -a gptq --calibration FILE",
            "numfmt model sensitivity smollm2-135m -r int4/group:64 --text FILE --budget 4.5",
        ),
    ),
)


@dataclass(frozen=True)
class LessonList(Displayable):
    """The lessons, in the order a course takes them."""

    lessons: tuple[Lesson, ...] = LESSONS

    def to_dict(self) -> dict[str, Any]:
        return {"lessons": [lesson.to_dict() for lesson in self.lessons]}


def lessons() -> LessonList:
    """The course's lessons in order, with their pages and commands."""
    return LessonList()
