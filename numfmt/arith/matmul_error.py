"""How far a model's matrix product lands from the exact one, and how that grows with K.

``matmul_error(["fp32", "hopper-fp8"], k=4096)`` draws a (m, K) and a (K, n) operand, rounds
them into each model's input format, and compares the model's product with the exact product
of those same rounded operands: what is measured is the accumulation alone, not the rounding of
the inputs. The exact product is a compensated dot product (Ogita, Rump and Oishi's Dot2) in
float64, within 2^-100 of sum |a_i b_i| of the exact value: far below any error measured here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from numfmt._display import Displayable
from numfmt.arith.hardware import get_model
from numfmt.arith.matmul import _spread, matmul, plan
from numfmt.errors import NumfmtError

DISTRIBUTIONS = ("normal", "uniform")
DEFAULT_MODELS = ("fp32", "bf16-accumulate", "hopper-fp8", "hopper-fp8-promote128")


@dataclass
class MatmulErrorRow:
    """One model's errors: the largest and the median relative error over the outputs (those
    whose exact value is not zero), and the largest error over the largest exact output."""

    model: str
    inputs: str | None
    max_rel: float
    median_rel: float
    max_err_over_max_c: float

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "inputs": self.inputs,
            "max_rel": self.max_rel,
            "median_rel": self.median_rel,
            "max_err_over_max_c": self.max_err_over_max_c,
        }


@dataclass
class MatmulError(Displayable):
    """Each model's error on one draw of operands; ``curve`` the largest relative error of
    each model at each K of ``ks`` (the first K columns of the same draw)."""

    m: int
    n: int
    k: int
    dist: str
    seed: int
    rows: list[MatmulErrorRow]
    ks: list[int] = field(default_factory=list)
    curve: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "m": self.m,
            "n": self.n,
            "k": self.k,
            "dist": self.dist,
            "seed": self.seed,
            "reference": "exact product of the rounded operands (Dot2 in float64)",
            "models": [r.to_dict() for r in self.rows],
            "curve": {"k": self.ks, "max_rel": self.curve} if self.ks else None,
        }


def exact_product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for float64 a (M, K) and b (K, N), within 2^-100 of sum |a b| of exact (Dot2)."""
    from numfmt.arith import _mm_jit

    x = np.ascontiguousarray(a, dtype=np.float64)
    y = np.ascontiguousarray(np.asarray(b, dtype=np.float64).T)
    out = np.zeros((x.shape[0], y.shape[0]))
    if x.size and y.size:
        _spread(_mm_jit.reference, x.shape[0], x.size * y.shape[0], x, y, out)
    return out


def _draw(dist: str, shape, rng) -> np.ndarray:
    if dist == "normal":
        return rng.standard_normal(shape)
    return rng.random(shape)


def _errors(d: np.ndarray, c: np.ndarray) -> tuple[float, float, float]:
    err = np.abs(d - c)
    nonzero = c != 0
    rel = err[nonzero] / np.abs(c[nonzero]) if nonzero.any() else np.zeros(1)
    top = float(np.abs(c).max()) if c.size else 0.0
    return float(rel.max()), float(np.median(rel)), float(err.max() / top) if top else 0.0


def _rounded_operands(a, b, model_plan):
    """The operands as the model reads them (rounded into its inputs, saturating)."""
    if model_plan.inputs is None:
        return a, b
    from numfmt.arith import elementwise

    ctx = model_plan.inputs.replace(overflow="saturate")
    return (np.asarray(elementwise.apply("round", (v,), ctx), dtype=np.float64) for v in (a, b))


def matmul_error(
    models=DEFAULT_MODELS,
    *,
    k: int = 4096,
    m: int = 64,
    n: int = 64,
    dist: str = "normal",
    seed: int = 0,
    ks=None,
) -> MatmulError:
    """Each model's error against the exact product on one draw of operands (the module's
    text); ks: the Ks at which to measure each model's largest relative error for a curve
    (``numfmt.plot.matmul_error_curve`` draws it)."""
    names = [get_model(x).name for x in ([models] if isinstance(models, str) else models)]
    if not names:
        raise NumfmtError("name at least one matmul model")
    for what, v in (("k", k), ("m", m), ("n", n)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not 1 <= v <= 1 << 20:
            raise NumfmtError(f"{what} is a whole number from 1 to 2^20, not {v!r}")
    if m * n * k > 1 << 31:
        raise NumfmtError(f"m x n x k = {m * n * k:_} products is more than this measures (2^31)")
    if dist not in DISTRIBUTIONS:
        raise NumfmtError(
            f"unknown distribution '{dist}'; choose one of {', '.join(DISTRIBUTIONS)}"
        )
    steps = sorted({int(x) for x in ks}) if ks is not None else []
    if any(not 1 <= x <= k for x in steps):
        raise NumfmtError(f"every K of the curve is between 1 and k = {k}")
    rng = np.random.default_rng(seed)
    a, b = _draw(dist, (m, k), rng), _draw(dist, (k, n), rng)
    rows, curve = [], {}
    for name in names:
        mp = plan(model=name)
        x, y = _rounded_operands(a, b, mp)
        d, c = matmul(x, y, model=name), exact_product(x, y)
        rows.append(MatmulErrorRow(name, mp.inputs.fmt.name if mp.inputs else None, *_errors(d, c)))
        if steps:
            group = mp.fused.size if mp.fused is not None else 1
            odd = [kk for kk in steps if kk % group]
            if odd:
                raise NumfmtError(
                    f"{name} adds groups of {group} products: K = {odd[0]} is not a multiple"
                )
            curve[name] = [
                _errors(matmul(x[:, :kk], y[:kk], model=name), exact_product(x[:, :kk], y[:kk]))[0]
                for kk in steps
            ]
    return MatmulError(m, n, k, dist, seed, rows, steps, curve)
