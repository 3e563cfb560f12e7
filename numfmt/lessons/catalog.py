"""The course's lessons in order: where each one's page is, and the commands that show its
key results in a terminal (``numfmt lesson`` lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from numfmt._display import Displayable


@dataclass(frozen=True)
class Lesson:
    """One lesson: a short name, its title, its page under docs/, commands that run it, and
    how long ``numfmt lesson NAME`` takes on two cores (measured on an idle machine, rounded
    up), and its first run where that is slower: numba compiles numfmt's kernels then and
    keeps them on disk for the runs after."""

    name: str
    title: str
    page: str
    commands: tuple[str, ...]
    seconds: float
    first_run_seconds: float | None = None

    @property
    def expected_time(self) -> str:
        """``about 6 s; the first run 12 s (numba compiles its kernels)``."""
        text = _duration(self.seconds)
        if self.first_run_seconds is not None:
            first = _duration(self.first_run_seconds).removeprefix("about ")
            text += f"; the first run {first} (numba compiles its kernels)"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "page": self.page,
            "commands": list(self.commands),
            "seconds": self.seconds,
            "first_run_seconds": self.first_run_seconds,
            "expected_time": self.expected_time,
        }


def _duration(seconds: float) -> str:
    """Seconds as a person says them: ``under a second``, ``about 6 s``, ``about 1 min``."""
    if seconds < 1:
        return "under a second"
    if seconds < 90:
        return f"about {seconds:.0f} s"
    return f"about {seconds / 60:.1f} min".replace(".0 min", " min")


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
        seconds=0.5,
    ),
    Lesson(
        "floats",
        "Floating point: sign, exponent, mantissa; FP32, FP16, BF16; subnormals, FP8, FP4",
        "docs/lesson-floats.md",
        ("numfmt lesson floats", "numfmt show 3.14 -f bf16", "numfmt compare 0.1"),
        seconds=0.5,
    ),
    Lesson(
        "quantization",
        "Quantization: scales and zero points, granularity, ranges, MX, NVFP4, NF4",
        "docs/lesson-quantization.md",
        (
            "numfmt lesson quantization",
            'numfmt quantize --values "0.1,-0.4,0.25,-0.05,0.3,-0.2,0.15,4" '
            "--compare int8,int4,int4/group:4,nf4",
            "numfmt plot error-curve --dist laplace --out error.png",
            "numfmt plot clipping --dist outliers --out clipping.png",
        ),
        seconds=2,
        first_run_seconds=6,
    ),
    Lesson(
        "integer-mlp",
        "What to quantize in a network: weights, inputs, int32 accumulators, requantization",
        "docs/lesson-integer.md",
        ("numfmt lesson integer-mlp", "numfmt lesson integer-mlp --accumulator 16"),
        seconds=6,
        first_run_seconds=10,
    ),
    Lesson(
        "qat",
        "PTQ against QAT: the straight-through estimator on a digits classifier",
        "docs/lesson-qat.md",
        ("numfmt lesson qat", "numfmt lesson qat --bits 4,2 --plot qat.png"),
        seconds=10,
    ),
    Lesson(
        "language-model",
        "A real language model: SmolLM2-135M at 8 and 4 bits, perplexity, KL, text",
        "docs/lesson-llm.md",
        (
            "numfmt lesson language-model --plots figures",
            "numfmt lesson --text-path",
            "numfmt model compare smollm2-135m --recipes fp32,int8-absmax,int8-zeropoint "
            "--prompt 'I have a dream' --own-text",
        ),
        seconds=75,
    ),
    Lesson(
        "beyond-rtn",
        "Beyond round-to-nearest: output-aware ranges, GPTQ, sensitivity, mixed precision",
        "docs/beyond-rtn.md",
        (
            "numfmt lesson beyond-rtn",
            "numfmt model quantize smollm2-135m -r int4/group:64 -a gptq",
            "numfmt model sensitivity smollm2-135m -r int4/group:64 --budget 4.5",
        ),
        seconds=3,
    ),
    Lesson(
        "arithmetic",
        "Arithmetic: when rounding adds up (read it after lesson 2)",
        "docs/lesson-arithmetic.md",
        (
            "numfmt lesson arithmetic",
            'numfmt calc "0.1 + 0.2" -f fp16',
            'numfmt calc "0.5 + (512 + 512.5)" -f fp16',
            "numfmt sum 0.1 --count 10000 -f fp16 --plot sums.png",
        ),
        seconds=3,
        first_run_seconds=16,
    ),
    Lesson(
        "training",
        "Training in fewer bits: bf16 and fp16 weights, stochastic rounding, Kahan, loss "
        "scaling (read it after lesson 5)",
        "docs/lesson-training.md",
        ("numfmt lesson training", "numfmt lesson training --plot training.png"),
        seconds=25,
    ),
    Lesson(
        "matmul",
        "Inside the matmul: tensor cores' accumulators, FP8's error against K, promotion, "
        "SmolLM2 through simulated matmuls (read it after lesson 6)",
        "docs/lesson-matmul.md",
        ("numfmt lesson matmul", "numfmt lesson matmul --plot matmul.png"),
        seconds=80,
        first_run_seconds=160,
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
