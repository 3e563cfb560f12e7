"""How much memory weights take: a parameter count in a format, or a model under a recipe.

>>> estimate(8e9, "bf16").gigabytes
16.0
>>> round(estimate(8e9, recipe="int4/group:128").bits_per_weight, 3)
4.25
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import TYPE_CHECKING, Any, cast

from numfmt._display import Displayable, grouped
from numfmt.errors import NumfmtError

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True, eq=False)
class MemoryEstimate(Displayable):
    """Bytes of ``parameters`` weights at ``bits_per_weight`` (scales and zero points
    included where a recipe has them; ``exact`` when counted on a model's real shapes)."""

    parameters: int
    what: str
    bits_per_weight: float
    nbytes: int
    exact: bool
    note: str = ""

    @property
    def gigabytes(self) -> float:
        return self.nbytes / 1e9

    @property
    def gibibytes(self) -> float:
        return self.nbytes / 2**30

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameters": self.parameters,
            "what": self.what,
            "bits_per_weight": self.bits_per_weight,
            "bytes": self.nbytes,
            "gigabytes": self.gigabytes,
            "gibibytes": self.gibibytes,
            "exact": self.exact,
            "note": self.note,
        }


def _count(parameters: Any) -> int:
    """A parameter count, read exactly as numfmt reads any number (8e9, 135000000, 2^33)."""
    from numfmt.formats.value import parse_value

    if isinstance(parameters, str):
        value = parse_value(parameters)  # 8,5e9 hears that the decimal mark is a dot
        n = value.fraction if value.is_finite else None
    else:
        try:
            n = Fraction(parameters) if math.isfinite(parameters) else None
        except (TypeError, ValueError):
            raise NumfmtError(
                f"'{parameters}' is not a parameter count (write 8e9 or 135000000)"
            ) from None
    if n is None or n < 1 or n.denominator != 1:
        raise NumfmtError(f"a parameter count is a whole number of at least 1, not {parameters}")
    if n > MAX_COUNT:
        raise NumfmtError(
            f"{parameters} parameters: numfmt counts up to 1e100 (beyond it the sizes leave "
            "float64's range)"
        )
    return int(n)


#: The largest parameter count ``estimate`` takes: its bytes still fit a float64 in gigabytes.
MAX_COUNT = 10**100


def _one_of(format: str | None, recipe: str | None) -> None:
    if (format is None) == (recipe is None):
        raise NumfmtError("give a format (--format bf16) or a recipe (--recipe int4/group:128)")


def _in_format(count: int, format: str) -> MemoryEstimate:
    """``count`` weights, each a code of the format."""
    from numfmt.formats import get_format

    fmt = get_format(format)
    return MemoryEstimate(count, fmt.name, fmt.bits, -(-count * fmt.bits // 8), True)


def estimate(
    parameters: Any, format: str | None = None, *, recipe: str | None = None
) -> MemoryEstimate:
    """The weights of ``parameters`` parameters in a number format (``bf16``: 2 bytes each)
    or under a recipe's scheme (its scales and zero points counted per group; per channel or
    per tensor they depend on the shapes and are left out: give a model for those)."""
    n = _count(parameters)
    _one_of(format, recipe)
    if format is not None:
        return _in_format(n, format)
    from numfmt.quant.granularity import PerGroup
    from numfmt.quant.schemes import parse_scheme

    assert recipe is not None  # _one_of: a format or a recipe
    s = parse_scheme(recipe)
    g = s.granularity
    bits = float(s.bits)
    note = ""
    if isinstance(g, PerGroup):
        bits += (s.scale_bits + s.zero_point_bits) / g.size
    else:
        note = f"{g} scales depend on the shapes and are not counted; give a MODEL for them"
    return MemoryEstimate(n, str(s), bits, int(-(-n * bits // 8)), False, note)


def scheme_bits(scheme: Any, shape: tuple[int, ...]) -> float:
    """Storage bits per weight of a scheme on a weight of this shape (out, in): the codes,
    and the scales and zero points of its groups, rows, or whole tensor."""
    from numfmt.quant.granularity import PerAxis, PerGroup
    from numfmt.quant.schemes import parse_scheme

    s = parse_scheme(scheme)
    n = math.prod(shape)
    g = s.granularity
    if isinstance(g, PerGroup):
        groups = n / g.size
    elif isinstance(g, PerAxis):
        groups = shape[g.axis]
    else:
        groups = 1
    return s.bits + (s.scale_bits + s.zero_point_bits) * groups / n


def _quantized_model(model: Any, layers: list, format: str | None, recipe: str | None):
    """A model that holds quantized layers: as held, or every weight in ``format``."""
    if recipe is not None:
        raise NumfmtError(
            "the model is quantized already (its layers hold codes): give a format to count "
            "its weights in, or nothing to measure it as it is held"
        )
    inside = {id(t) for m in layers for t in m.buffers()}
    held = sum(t.numel() * t.element_size() for m in layers for t in m.buffers())
    count = sum(math.prod(m.weight_shape) for m in layers)
    seen: set[int] = set()
    for t in [*model.parameters(), *model.buffers()]:
        if id(t) in inside or t.data_ptr() in seen:
            continue
        seen.add(t.data_ptr())
        held += t.numel() * t.element_size()
        count += t.numel() if t.is_floating_point() else 0  # as model_bytes counts
    if format is not None:
        return _in_format(count, format)
    return MemoryEstimate(
        count,
        "its quantized layout",
        held * 8 / count if count else 0.0,
        held,
        True,
        f"{grouped(sum(math.prod(m.weight_shape) for m in layers))} weights held quantized in "
        f"{len(layers)} layers (codes, scales and zero points), the rest at their own dtype",
    )


def model_estimate(
    model: Any, *, format: str | None = None, recipe: str | None = None
) -> MemoryEstimate:
    """A loaded model's weights (every parameter, tied ones once) in a format, or quantized
    by a recipe, counted on its real shapes (layers the recipe leaves in float at their own
    dtype). A model numfmt quantized counts its quantized layers' weights among its
    parameters; with neither a format nor a recipe it is measured as it is held (packed codes,
    scales, float parameters), and a recipe is refused (it is quantized already). Without
    either, a float model is counted in bfloat16."""
    from numfmt.nn.layers import candidates, model_bytes
    from numfmt.nn.modules import QuantEmbedding, QuantLinear

    quantized_layers = [m for m in model.modules() if isinstance(m, QuantLinear | QuantEmbedding)]
    if quantized_layers:
        return _quantized_model(model, quantized_layers, format, recipe)
    if format is None and recipe is None:
        format = "bf16"
    from numfmt.nn.recipe import parse_recipe

    total, count = model_bytes(model)
    _one_of(format, recipe)
    if format is not None:
        return _in_format(count, format)
    from numfmt.quant.granularity import Grouping

    assert recipe is not None  # _one_of: a format or a recipe
    r = parse_recipe(recipe)
    saved = 0
    quantized = 0
    for name, module, kind in candidates(model):
        scheme = r.scheme_for(name)
        if scheme is None or kind not in r.kinds:
            continue
        weight = cast("torch.Tensor", module.weight)
        shape = tuple(weight.shape)
        g = Grouping(shape, scheme.granularity)
        n = weight.numel()
        bits = n * scheme.bits + g.num_groups * (scheme.scale_bits + scheme.zero_point_bits)
        saved += n * weight.element_size() - -(-bits // 8)
        quantized += n
    nbytes = total - saved
    return MemoryEstimate(
        count,
        str(r),
        nbytes * 8 / count if count else 0.0,
        nbytes,
        True,
        f"{grouped(quantized)} weights quantized, the rest at their own dtype",
    )
