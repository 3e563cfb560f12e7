"""Training with low-precision state: weights, gradients and optimizer state kept in a format.

``LowPrecisionOptimizer(torch.optim.SGD(model.parameters(), lr=0.1), "bf16")`` wraps any torch
optimizer. The model's parameters hold values of the weight format (float32 tensors whose
values are exactly representable); each step the gradients are rounded into ``grads`` (where
one is given), the inner optimizer computes the new weights in float32 as it always does, and
the result is written back into the format by one of four rules:

==============  ===============================================================================
``nearest``     round to nearest, ties to even: an update smaller than half a unit in the last
                place (ulp) of its weight is lost
``stochastic``  round up with probability equal to the distance from the value below, in ulps:
                the stored weight moves by the update *in expectation* (seeded, so runs repeat)
``kahan``       keep, per weight, the part the rounding dropped (in ``compensation``, float32
                by default) and add it to the next step's update (Kahan summation)
``master``      the inner optimizer updates a float32 copy of the weights; the model sees that
                copy rounded to nearest (mixed-precision training's "master weights")
==============  ===============================================================================

Optimizer state (momentum, Adam's moments) is rounded into ``state`` after each step, where
given. The forward and backward passes themselves are not simulated: they run in float32 on
the stored weights (``numfmt.arith`` has the arithmetic of one operation in a format).

``LossScaler`` is ``torch.amp.GradScaler``'s dynamic loss scaling for any simulated gradient
format: the gradients of the scaled loss are rounded into the gradient format (fp16's
overflow to inf shows there), checked, unscaled and stepped; a step with an inf or NaN is
skipped and the scale halved, and the scale doubles after ``growth_interval`` clean steps.

Every rounding is exact and done once, for all the parameters together in one call a step:
by the quantization layer's ``round_float`` where the format has IEEE's specials (bf16,
fp16, FP8 ...), by ``numfmt.arith`` elsewhere and for Kahan's exact sums; the two give the
same bits, random draws included.

``TrainingStats`` counts, per step and in total, the updates lost (a nonzero update that left
the stored weight as it was), the gradient elements that underflowed (nonzero in float32,
zero once rounded) or overflowed (finite in float32, inf, or NaN in a format without inf,
once rounded), and the steps taken and skipped.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from numfmt._display import Displayable
from numfmt.arith.context import Context
from numfmt.errors import NumfmtError
from numfmt.formats import FloatFormat, get_format
from numfmt.formats.rounding import Rounding
from numfmt.quant import _xp, grid

_FLOAT32 = get_format("float32")

#: The update rules, in the order the lessons show them.
UPDATES = ("nearest", "stochastic", "kahan", "master")
#: What each update rule does, for tables and ``--help``.
MEANING = {
    "nearest": "new weight rounded to nearest: updates under half an ulp are lost",
    "stochastic": "new weight rounded stochastically: right in expectation",
    "kahan": "the rounding's remainder carried to the next step (Kahan summation)",
    "master": "a float32 copy takes the updates; the model sees it rounded to nearest",
}


@dataclass(frozen=True)
class StepStats:
    """What one optimizer step did.

    updates: weight elements the inner optimizer moved (a nonzero update in float32);
    lost: of those, the ones whose stored weight did not change; gradients: nonzero gradient
    elements before rounding; underflowed / overflowed: of those, the ones that became zero /
    inf or NaN once rounded into the gradient format; state_underflowed: optimizer state
    elements that were nonzero and became zero in the state format; skipped: the loss scaler
    found an inf or NaN and the step was not taken; loss_scale: the scale the gradients carried
    (None without a scaler).
    """

    step: int
    updates: int
    lost: int
    gradients: int
    underflowed: int
    overflowed: int
    state_underflowed: int = 0
    skipped: bool = False
    loss_scale: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "updates": self.updates,
            "lost": self.lost,
            "gradients": self.gradients,
            "underflowed": self.underflowed,
            "overflowed": self.overflowed,
            "state_underflowed": self.state_underflowed,
            "skipped": self.skipped,
            "loss_scale": self.loss_scale,
        }


@dataclass(eq=False)
class TrainingStats(Displayable):
    """The steps of a :class:`LowPrecisionOptimizer` so far, with totals and shares."""

    weights: str
    update: str
    grads: str | None = None
    state: str | None = None
    steps: list[StepStats] = field(default_factory=list)

    @property
    def taken(self) -> int:
        return sum(not s.skipped for s in self.steps)

    @property
    def skipped(self) -> int:
        return sum(s.skipped for s in self.steps)

    @property
    def updates(self) -> int:
        return sum(s.updates for s in self.steps)

    @property
    def lost(self) -> int:
        return sum(s.lost for s in self.steps)

    @property
    def gradients(self) -> int:
        return sum(s.gradients for s in self.steps)

    @property
    def underflowed(self) -> int:
        return sum(s.underflowed for s in self.steps)

    @property
    def overflowed(self) -> int:
        return sum(s.overflowed for s in self.steps)

    @property
    def state_underflowed(self) -> int:
        return sum(s.state_underflowed for s in self.steps)

    @property
    def lost_share(self) -> float:
        """Lost updates as a share of the nonzero updates (0 when there were none)."""
        return self.lost / self.updates if self.updates else 0.0

    @property
    def underflow_share(self) -> float:
        """Underflowed gradient elements as a share of the nonzero ones."""
        return self.underflowed / self.gradients if self.gradients else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "weights": self.weights,
            "update": self.update,
            "grads": self.grads,
            "state": self.state,
            "taken": self.taken,
            "skipped": self.skipped,
            "updates": self.updates,
            "lost": self.lost,
            "lost_share": self.lost_share,
            "gradients": self.gradients,
            "underflowed": self.underflowed,
            "underflow_share": self.underflow_share,
            "overflowed": self.overflowed,
            "state_underflowed": self.state_underflowed,
            "steps": [s.to_dict() for s in self.steps],
        }


def _float_format(spec: Any, role: str) -> FloatFormat:
    """A float format whose values float32 holds exactly, with a sign and a zero."""
    if not isinstance(spec, str | FloatFormat):
        raise NumfmtError(f"the {role} format is a name such as 'bf16', not {spec!r}")
    fmt = get_format(spec)
    if not isinstance(fmt, FloatFormat):
        raise NumfmtError(
            f"the {role} format must be a float format (bf16, fp16, fp8_e4m3 ...); "
            f"{fmt.name} is not"
        )
    if not (fmt.signed and fmt.has_zero):
        raise NumfmtError(f"the {role} format needs a sign and a zero; {fmt.name} lacks one")
    fits = fmt.mantissa_bits <= 23 and fmt.emax <= 127 and fmt.emin - fmt.mantissa_bits >= -149
    if not fits:
        raise NumfmtError(
            f"the {role} are float32 tensors, and {fmt.name}'s values do not all fit float32: "
            "choose a format of 32 bits or fewer within float32's range"
        )
    return fmt


def _check_lr(optimizer: torch.optim.Optimizer) -> None:
    for i, group in enumerate(optimizer.param_groups):
        lr = group.get("lr")
        if lr is None:
            continue
        value = float(lr.item() if torch.is_tensor(lr) else lr)
        if not math.isfinite(value) or value < 0:
            raise NumfmtError(
                f"the learning rate of parameter group {i} is {value!r}: it must be a finite "
                "number >= 0"
            )


def _flat(tensors: list[torch.Tensor]) -> torch.Tensor:
    """The tensors' values one after the other, as one float32 vector (a copy)."""
    return torch.cat([t.detach().reshape(-1) for t in tensors])


def _round(ctx: Context, x: torch.Tensor) -> torch.Tensor:
    """x (float32) rounded once into ctx's format, to nearest even or stochastically, with
    IEEE overflow: as it is where the format is float32 itself. Where the format has
    subnormals, a negative zero and NaN (IEEE's formats and the ``fn`` ones), by the
    quantization layer's exact rounding (``numfmt.quant.grid.round_float``), with the same
    random numbers as numfmt.arith (the same bits, a tenth of the time on a small tensor);
    elsewhere by numfmt.arith itself."""
    fmt = ctx.fmt
    assert isinstance(fmt, FloatFormat)  # the optimizer only makes float contexts
    if fmt == _FLOAT32:
        return x
    if not (fmt.has_subnormals and fmt.has_negative_zero and fmt.has_nan):
        return ctx.round(x)
    u = None
    if ctx.rounding is Rounding.STOCHASTIC:
        u = torch.from_numpy(ctx.uniforms(x.numel())).to(x.device).reshape(x.shape)
    v = x.double()
    r, over = grid.round_float(_xp.namespace(v), v, fmt, ctx.rounding.value, u)
    beyond = torch.tensor(math.inf if fmt.has_inf else math.nan, dtype=v.dtype, device=v.device)
    r = torch.where(over, torch.copysign(beyond, v), r)  # IEEE: past the top, inf (fn: NaN)
    r = torch.where(torch.isfinite(v), r, v if fmt.has_inf else beyond)
    return r.to(x.dtype)


def _scatter(flat: torch.Tensor, tensors: list[torch.Tensor]) -> None:
    """Write a vector made by _flat back into its tensors, in place."""
    at = 0
    for t in tensors:
        n = t.numel()
        t.copy_(flat[at : at + n].view_as(t))
        at += n


class LowPrecisionOptimizer:
    """Any torch optimizer, with the weights (and optionally gradients and optimizer state)
    stored in a float format.

    On construction the parameters are rounded into ``weights`` in place (with ``master``,
    a float32 copy keeps their values first). Schedule the learning rate on the inner
    optimizer (``torch.optim.lr_scheduler.StepLR(opt.optimizer, ...)``): the two share their
    parameter groups.

    Args:
        optimizer: the torch optimizer that computes the updates, over float32 parameters.
        weights: the format the parameters are stored in (``fp32`` stores them as they are).
        update: ``nearest``, ``stochastic``, ``kahan`` or ``master`` (see the module).
        grads: round the gradients into this format before the step (None: keep float32).
        state: round the inner optimizer's state tensors (momentum, moments) into this format
            after each step (None: keep float32).
        compensation: the format of Kahan's compensation buffer (``fp32``; ``bf16`` stores it
            in 16 bits, as Zamirai et al. do).
        seed: seeds stochastic rounding; the same seed and the same steps give the same bits.

    Raises:
        NumfmtError: an unknown format or update rule, a format that is not a float or whose
            values float32 cannot hold, a parameter that is not float32, a learning rate that
            is NaN, infinite or negative.

    Example:
        >>> w = torch.nn.Parameter(torch.ones(3))
        >>> opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=1.0), "fp16")
        >>> w.grad = torch.full((3,), -2.0**-12)  # an update of 2^-12: under half an ulp of 1
        >>> _ = opt.step()
        >>> w.tolist(), opt.stats.lost
        ([1.0, 1.0, 1.0], 3)
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        weights: str | FloatFormat = "bf16",
        *,
        update: str = "nearest",
        grads: str | FloatFormat | None = None,
        state: str | FloatFormat | None = None,
        compensation: str | FloatFormat = "fp32",
        seed: int = 0,
    ) -> None:
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise NumfmtError(
                "LowPrecisionOptimizer wraps a torch optimizer (torch.optim.SGD(params, lr=...)"
                f", Adam ...), not {type(optimizer).__name__}"
            )
        if isinstance(optimizer, torch.optim.LBFGS):
            raise NumfmtError(
                "LBFGS evaluates its closure many times within a step, and those gradients "
                "would skip the gradient format: wrap an optimizer that steps on the gradients "
                "it is given (SGD, Adam, AdamW, RMSprop ...)"
            )
        if update not in UPDATES:
            raise NumfmtError(f"unknown update rule {update!r}; the rules are {', '.join(UPDATES)}")
        if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
            raise NumfmtError(f"the seed is a whole number >= 0, not {seed!r}")
        self.optimizer = optimizer
        self.update = update
        self.weights = _float_format(weights, "weights")
        self.grads = None if grads is None else _float_format(grads, "gradients")
        self.state_format = None if state is None else _float_format(state, "optimizer state")
        self.compensation = _float_format(compensation, "compensation")
        self.seed = int(seed)
        _check_lr(optimizer)
        self._params: list[torch.Tensor] = []
        for group in optimizer.param_groups:
            for p in group["params"]:
                if any(p is q for q in self._params):
                    continue
                if p.dtype != torch.float32:
                    raise NumfmtError(
                        f"the parameters are float32 tensors holding the format's values; one "
                        f"is {p.dtype} (keep the model in float32: model.float())"
                    )
                self._params.append(p)
        self._nearest = Context(self.weights)
        self._stochastic = Context(self.weights, rounding="stochastic", seed=self.seed)
        self._grad_ctx = None if self.grads is None else Context(self.grads)
        self._state_ctx = None if self.state_format is None else Context(self.state_format)
        self._comp_ctx = Context(self.compensation)
        self._master: dict[int, torch.Tensor] = {}
        self._carry: dict[int, torch.Tensor] = {}
        with torch.no_grad():
            for p in self._params:
                if update == "master":
                    self._master[id(p)] = p.detach().clone()
                if update == "kahan":
                    self._carry[id(p)] = torch.zeros_like(p)
            if self._params:
                _scatter(_round(self._nearest, _flat(self._params)), self._params)
        self.stats = TrainingStats(
            self.weights.name,
            update,
            None if self.grads is None else self.grads.name,
            None if self.state_format is None else self.state_format.name,
        )

    @property
    def param_groups(self) -> list[dict[str, Any]]:
        """The inner optimizer's parameter groups (the same objects)."""
        return self.optimizer.param_groups

    @property
    def state(self) -> Any:
        """The inner optimizer's state."""
        return self.optimizer.state

    def master_weights(self) -> list[torch.Tensor]:
        """The float32 copies the updates go to (``update="master"``), in parameter order."""
        if self.update != "master":
            raise NumfmtError(f"update={self.update!r} keeps no master weights")
        return [self._master[id(p)] for p in self._params]

    def compensations(self) -> list[torch.Tensor]:
        """What Kahan's rule carries to the next step (``update="kahan"``), per parameter."""
        if self.update != "kahan":
            raise NumfmtError(f"update={self.update!r} keeps no compensation")
        return [self._carry[id(p)] for p in self._params]

    def state_dict(self) -> dict[str, Any]:
        """What resuming needs, for ``torch.save``: the inner optimizer's state dict, this
        wrapper's settings, the master weights or Kahan compensations (in parameter order)
        and the stochastic draws' generator state. Save the model's parameters beside it
        (they hold the format's values); ``stats`` start afresh on resuming."""
        return {
            "optimizer": self.optimizer.state_dict(),
            "numfmt": {
                "settings": self._settings(),
                "master": [self._master[id(p)].clone() for p in self._params if self._master],
                "carry": [self._carry[id(p)].clone() for p in self._params if self._carry],
                "generator": copy.deepcopy(self._stochastic._rng.bit_generator.state),
            },
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Resume from ``state_dict()``'s result: an optimizer built with the same settings
        over the same parameters continues with the same bits as the one saved."""
        try:
            ours, inner = state["numfmt"], state["optimizer"]
            settings, master, carry = ours["settings"], ours["master"], ours["carry"]
            generator = ours["generator"]
        except (KeyError, TypeError):
            raise NumfmtError(
                "not a LowPrecisionOptimizer's state_dict (it holds 'optimizer' and 'numfmt')"
            ) from None
        if settings != self._settings():
            raise NumfmtError(
                f"the state was saved with {settings}; this optimizer has {self._settings()}"
            )
        for name, saved, own in (("master", master, self._master), ("carry", carry, self._carry)):
            if len(saved) != len(own) or any(
                s.shape != own[id(p)].shape for s, p in zip(saved, self._params, strict=False)
            ):
                raise NumfmtError(f"the saved {name} tensors do not match the parameters")
        self.optimizer.load_state_dict(inner)
        with torch.no_grad():
            for p, t in zip(self._params, master, strict=False):
                self._master[id(p)].copy_(t)
            for p, t in zip(self._params, carry, strict=False):
                self._carry[id(p)].copy_(t)
        self._stochastic._rng.bit_generator.state = copy.deepcopy(generator)

    def _settings(self) -> dict[str, Any]:
        return {
            "weights": self.weights.name,
            "update": self.update,
            "grads": None if self.grads is None else self.grads.name,
            "state": None if self.state_format is None else self.state_format.name,
            "compensation": self.compensation.name,
            "seed": self.seed,
            "parameters": [tuple(p.shape) for p in self._params],
        }

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def step(self, closure: Any = None) -> Any:
        """One step: round the gradients, let the inner optimizer compute, store the result
        in the format. A closure is called once, first (under grad), and its loss returned."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._step(None)
        return loss

    @torch.no_grad()
    def _step(self, loss_scale: float | None) -> bool:
        """One step whose gradients carry ``loss_scale`` (None: none); False when it found an
        inf or NaN in them with a scale, and skipped."""
        _check_lr(self.optimizer)
        params = [p for p in self._params if p.grad is not None]
        grads = [p.grad for p in params if p.grad is not None]  # the same, for the type checker
        if any(g.is_sparse or g.dtype != torch.float32 for g in grads):
            raise NumfmtError("the gradients must be dense float32 tensors")
        number = len(self.stats.steps) + 1
        g = _flat(grads) if params else torch.zeros(0)
        nonzero = g != 0
        gradients = int(nonzero.sum())
        underflowed = overflowed = 0
        if self._grad_ctx is not None:
            rounded = _round(self._grad_ctx, g)
            underflowed = int((nonzero & (rounded == 0)).sum())
            overflowed = int((torch.isfinite(g) & ~torch.isfinite(rounded)).sum())
            g = rounded
        if loss_scale is not None:
            if not bool(torch.isfinite(g).all()):
                self.stats.steps.append(
                    StepStats(number, 0, 0, gradients, underflowed, overflowed, 0, True, loss_scale)
                )
                return False
            # as GradScaler unscales: times the float32 reciprocal of the scale
            g = g * torch.tensor(1.0 / loss_scale, dtype=torch.float32)
        if self._grad_ctx is not None or loss_scale is not None:
            _scatter(g, grads)
        updates, lost, state_under = self._update(params)
        self.stats.steps.append(
            StepStats(
                number,
                updates,
                lost,
                gradients,
                underflowed,
                overflowed,
                state_under,
                False,
                loss_scale,
            )
        )
        return True

    def _update(self, params: list[torch.Tensor]) -> tuple[int, int, int]:
        """The inner step and the write-back: (nonzero updates, lost ones, state underflows)."""
        if not params:
            self.optimizer.step()
            return 0, 0, 0
        before = _flat(params)
        start = before
        if self.update == "master":
            masters = [self._master[id(p)] for p in params]
            start = _flat(masters)
            _scatter(start, params)
        self.optimizer.step()
        asked = _flat(params)
        if self.update == "nearest":
            new = _round(self._nearest, asked)
        elif self.update == "stochastic":
            new = _round(self._stochastic, asked)
        elif self.update == "kahan":
            carries = [self._carry[id(p)] for p in params]
            wanted = (asked - before) + _flat(carries)
            new = self._nearest.add(before, wanted)  # the exact sum, rounded once
            left = wanted - (new - before)  # exact where the step is small beside the weight
            _scatter(_round(self._comp_ctx, left), carries)
        else:
            _scatter(asked, masters)
            new = _round(self._nearest, asked)
        _scatter(new, params)
        moved = asked != start
        updates = int(moved.sum())
        lost = int((moved & (new == before)).sum())
        return updates, lost, self._round_state(params)

    def _round_state(self, params: list[torch.Tensor]) -> int:
        """Round the inner optimizer's state tensors into the state format; how many nonzero
        elements became zero."""
        if self._state_ctx is None:
            return 0
        tensors = [
            v
            for p in params
            for key, v in self.optimizer.state.get(p, {}).items()
            if key != "step" and torch.is_tensor(v) and v.is_floating_point() and v.shape == p.shape
        ]
        if not tensors:
            return 0
        flat = _flat(tensors)
        rounded = _round(self._state_ctx, flat)
        _scatter(rounded, tensors)
        return int(((flat != 0) & (rounded == 0)).sum())


class LossScaler:
    """Dynamic loss scaling with ``torch.amp.GradScaler``'s rules, for a
    :class:`LowPrecisionOptimizer` in any gradient format.

    ``scale(loss)`` multiplies the loss by the scale; ``step(optimizer)`` rounds the scaled
    gradients into the optimizer's gradient format, skips the step if any is inf or NaN, and
    otherwise unscales them (in float32) and steps; ``update()`` then halves the scale after a
    skipped step, or doubles it after ``growth_interval`` clean steps in a row (a scale that
    would become inf stays where it is). The scale is a float32, as GradScaler keeps it.

    Args:
        init_scale: the first scale (GradScaler's default, 2^16).
        growth_factor: what the scale is multiplied by after ``growth_interval`` clean steps.
        backoff_factor: what it is multiplied by after a skipped step.
        growth_interval: clean steps in a row before the scale grows.

    Example:
        >>> w = torch.nn.Parameter(torch.zeros(2))
        >>> opt = LowPrecisionOptimizer(torch.optim.SGD([w], lr=1.0), "fp32", grads="fp16")
        >>> scaler = LossScaler(init_scale=2.0**16)
        >>> scaler.scale((w * torch.tensor([1.0, 2.0**-30])).sum()).backward()
        >>> scaler.step(opt)  # 1.0 * 2^16 overflows fp16: skipped
        False
        >>> scaler.update()
        >>> scaler.get_scale()
        32768.0
    """

    def __init__(
        self,
        init_scale: float = 2.0**16,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
    ) -> None:
        for name, value in (("init_scale", init_scale), ("growth_factor", growth_factor)):
            if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
                raise NumfmtError(f"{name} is a finite number > 0, not {value!r}")
        if growth_factor <= 1.0:
            raise NumfmtError(f"growth_factor must be > 1, not {growth_factor!r}")
        if not isinstance(backoff_factor, int | float) or not 0.0 < backoff_factor < 1.0:
            raise NumfmtError(f"backoff_factor lies between 0 and 1, not {backoff_factor!r}")
        if (
            isinstance(growth_interval, bool)
            or not isinstance(growth_interval, int)
            or growth_interval < 1
        ):
            raise NumfmtError(f"growth_interval is a whole number >= 1, not {growth_interval!r}")
        self.growth_factor = float(growth_factor)
        self.backoff_factor = float(backoff_factor)
        self.growth_interval = growth_interval
        self._scale = np.float32(init_scale)
        self._growth_tracker = 0
        self._found_inf: bool | None = None

    def get_scale(self) -> float:
        return float(self._scale)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """The loss times the scale: backpropagate this one."""
        return loss * float(self._scale)

    def step(self, optimizer: LowPrecisionOptimizer) -> bool:
        """Check, unscale and step; False when the step was skipped (an inf or NaN)."""
        if not isinstance(optimizer, LowPrecisionOptimizer):
            raise NumfmtError(
                "LossScaler steps a LowPrecisionOptimizer; wrap a torch optimizer as "
                "LowPrecisionOptimizer(optimizer, 'fp32') to keep it in float32"
            )
        if self._found_inf is not None:
            raise NumfmtError("step() was already called since the last update()")
        stepped = optimizer._step(float(self._scale))
        self._found_inf = not stepped
        return stepped

    def update(self) -> None:
        """GradScaler's rule: halve after a skipped step; double after growth_interval clean
        steps in a row."""
        if self._found_inf is None:
            raise NumfmtError("update() follows a step(): no step was taken since the last one")
        if self._found_inf:
            self._scale = np.float32(self._scale * np.float32(self.backoff_factor))
            self._growth_tracker = 0
        else:
            clean = self._growth_tracker + 1
            if clean == self.growth_interval:
                with np.errstate(over="ignore"):
                    grown = np.float32(self._scale * np.float32(self.growth_factor))
                if np.isfinite(grown):
                    self._scale = grown
                self._growth_tracker = 0
            else:
                self._growth_tracker = clean
        self._found_inf = None

    def state_dict(self) -> dict[str, Any]:
        return {
            "scale": float(self._scale),
            "growth_factor": self.growth_factor,
            "backoff_factor": self.backoff_factor,
            "growth_interval": self.growth_interval,
            "growth_tracker": self._growth_tracker,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._scale = np.float32(state["scale"])
        self.growth_factor = float(state["growth_factor"])
        self.backoff_factor = float(state["backoff_factor"])
        self.growth_interval = int(state["growth_interval"])
        self._growth_tracker = int(state["growth_tracker"])
