"""Quantization schemes: what grid a tensor goes onto, and how its scale is chosen.

A scheme is a frozen value. Its *target* is the grid of the elements:

=============  ===================================================================
int2 .. int16  integers; symmetric: -(2^(b-1) - 1) .. 2^(b-1) - 1 (``restricted``,
               zero in the middle) or from -2^(b-1); asymmetric: 0 .. 2^b - 1 with a
               zero point
a float name   the values of a small float format (``fp8_e4m3``, ``fp4``, ``e3m2`` ...)
               times a scale; always symmetric
nf4            the 16-value NormalFloat codebook of QLoRA, times a block absmax
=============  ===================================================================

and its *scale rule* how a group's range becomes a scale: ``range`` (alpha over the largest
code: absmax / 127 for int8, absmax / 448 for fp8 e4m3), ``mx`` (the OCP MX shared exponent,
2^(floor(log2(absmax)) - emax)), or ``nvfp4`` (an E4M3 block scale under a float32 tensor
scale). The scale is stored in ``scale_format`` (float32 unless said otherwise).

Presets spell the block formats: ``mxfp8``, ``mxfp8_e5m2``, ``mxfp6_e2m3``, ``mxfp6_e3m2``,
``mxfp4``, ``mxint8`` (OCP MX v1.0: 32 elements, an E8M0 scale), ``nvfp4`` (16 FP4 elements,
an E4M3 scale) and ``nf4`` (64 elements, a float32 absmax).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.formats import FloatFormat, IntFormat, get_format
from numfmt.formats.rounding import Rounding, parse_enum
from numfmt.quant.granularity import Granularity, PerGroup, PerTensor, parse_granularity

#: QLoRA's NormalFloat-4 codebook (Dettmers et al. 2023), as bitsandbytes stores it.
NF4_CODEBOOK = np.array(
    [
        -1.0,
        -0.6961928009986877,
        -0.5250730514526367,
        -0.39491748809814453,
        -0.28444138169288635,
        -0.18477343022823334,
        -0.09105003625154495,
        0.0,
        0.07958029955625534,
        0.16093020141124725,
        0.24611230194568634,
        0.33791524171829224,
        0.44070982933044434,
        0.5626170039176941,
        0.7229568362236023,
        1.0,
    ]
)
NF4_CODEBOOK.setflags(write=False)


class Mapping(str, enum.Enum):
    """Where zero goes: in the middle of the codes (symmetric) or at a zero point."""

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"

    @classmethod
    def parse(cls, value: str | Mapping) -> Mapping:
        """Read a mapping: symmetric (sym, absmax) or asymmetric (asym, zero-point)."""
        aliases = {
            "sym": "symmetric",
            "absmax": "symmetric",
            "asym": "asymmetric",
            "zeropoint": "asymmetric",
            "zero-point": "asymmetric",
        }
        return parse_enum(cls, value, "mapping", aliases)


SCALE_RULES = ("range", "mx", "nvfp4")


@dataclass(frozen=True)
class QuantScheme:
    """How to quantize a tensor. Build one with :func:`scheme` or :func:`parse_scheme`.

    Example:
        >>> s = scheme("int4", mapping="asym", granularity="group:128", scale_format="fp16")
        >>> str(s), s.qmin, s.qmax
        ('int4 asym group:128 minmax scale:float16', 0, 15)
    """

    target: str = "int8"
    mapping: Mapping = Mapping.SYMMETRIC
    granularity: Granularity = field(default_factory=PerTensor)
    method: str = "minmax"
    method_args: tuple[tuple[str, Any], ...] = ()
    restricted: bool = True
    rounding: Rounding = Rounding.NEAREST_EVEN
    scale_format: str = "float32"
    scale_rule: str = "range"
    preset: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "mapping", Mapping.parse(self.mapping))
        object.__setattr__(self, "rounding", Rounding.parse(self.rounding))
        object.__setattr__(self, "granularity", parse_granularity(self.granularity))
        if self.rounding not in (Rounding.NEAREST_EVEN, Rounding.STOCHASTIC):
            raise NumfmtError("quantization rounds nearest-even or stochastic")
        if self.scale_rule not in SCALE_RULES:
            raise NumfmtError(
                f"unknown scale rule '{self.scale_rule}'; use {', '.join(SCALE_RULES)}"
            )
        kind = self.kind  # validates the target
        if kind != "int" and self.mapping is Mapping.ASYMMETRIC:
            raise NumfmtError(f"{self.target} is a symmetric grid; asymmetric needs an int target")
        if kind == "int" and not 2 <= self.bits <= 16:
            raise NumfmtError(f"integer targets have 2 to 16 bits, not {self.bits}")
        scale = get_format(self.scale_format)
        if not isinstance(scale, FloatFormat):
            raise NumfmtError(f"scales are stored in a float format, not {scale.name}")
        object.__setattr__(self, "scale_format", scale.name)
        from numfmt.quant import calibration  # the registry of methods

        calibration.check_method(self.method, dict(self.method_args))

    # -- the target grid ------------------------------------------------------------------
    @cached_property
    def kind(self) -> str:
        """``int``, ``float`` or ``codebook``."""
        if self.target == "nf4":
            return "codebook"
        fmt = _target_format(self.target)
        return "int" if isinstance(fmt, IntFormat) else "float"

    @cached_property
    def element_format(self) -> FloatFormat | IntFormat | None:
        """The format of the codes (a float format for float grids, an integer otherwise)."""
        if self.kind == "codebook":
            return None
        if self.kind == "float":
            return _target_format(self.target)
        return IntFormat(self.bits, signed=self.mapping is Mapping.SYMMETRIC)

    @cached_property
    def bits(self) -> int:
        """Bits per element."""
        if self.kind == "codebook":
            return 4
        return _target_format(self.target).bits

    @cached_property
    def qmin(self) -> int:
        """The smallest integer code (int targets)."""
        if self.mapping is Mapping.ASYMMETRIC:
            return 0
        top = (1 << (self.bits - 1)) - 1
        return -top if self.restricted else -top - 1

    @cached_property
    def qmax(self) -> int:
        """The largest integer code (int targets)."""
        if self.mapping is Mapping.ASYMMETRIC:
            return (1 << self.bits) - 1
        return (1 << (self.bits - 1)) - 1

    @cached_property
    def grid_max(self) -> float:
        """The largest magnitude on the unscaled grid: qmax, the format's max, or 1 (NF4)."""
        if self.kind == "int":
            return float(self.qmax)
        if self.kind == "codebook":
            return 1.0
        return float(self.element_format.max_value)

    @cached_property
    def codebook(self) -> np.ndarray | None:
        """The grid values of a codebook target, in code order."""
        return NF4_CODEBOOK if self.kind == "codebook" else None

    @property
    def method_options(self) -> dict[str, Any]:
        return dict(self.method_args)

    @cached_property
    def scale_bits(self) -> int:
        return get_format(self.scale_format).bits

    @cached_property
    def zero_point_bits(self) -> int:
        """Bits stored per group for the zero point (asymmetric int targets)."""
        return self.bits if self.mapping is Mapping.ASYMMETRIC else 0

    def with_(self, **changes: Any) -> QuantScheme:
        """A copy with some fields changed (the preset name is dropped)."""
        if "method_args" in changes and isinstance(changes["method_args"], dict):
            changes["method_args"] = tuple(sorted(changes["method_args"].items()))
        return replace(self, preset=None, **changes)

    def __str__(self) -> str:
        if self.preset:
            return self.preset
        parts = [self.target]
        if self.kind == "int":
            parts.append("sym" if self.mapping is Mapping.SYMMETRIC else "asym")
            if self.mapping is Mapping.SYMMETRIC and not self.restricted:
                parts.append("full")
        parts.append(str(self.granularity))
        args = ",".join(f"{v}" for _, v in self.method_args)
        parts.append(self.method + (f":{args}" if args else ""))
        if self.scale_format != "float32":
            parts.append(f"scale:{self.scale_format}")
        if self.rounding is Rounding.STOCHASTIC:
            parts.append("stochastic")
        return " ".join(parts)


def _target_format(target: str) -> FloatFormat | IntFormat:
    try:
        fmt = get_format(target)
    except NumfmtError:
        raise NumfmtError(
            f"unknown quantization target '{target}'; use int2..int16, a float format such as "
            f"fp8_e4m3 or fp4, nf4, or a preset: {', '.join(PRESETS)}"
        ) from None
    if isinstance(fmt, IntFormat):
        return fmt
    if isinstance(fmt, FloatFormat) and fmt.signed:
        return fmt
    raise NumfmtError(f"{fmt.name} cannot be a quantization target")


def _preset(name, target, group, scale_format, rule, **kw) -> QuantScheme:
    return QuantScheme(
        target=target,
        granularity=PerGroup(group),
        scale_format=scale_format,
        scale_rule=rule,
        preset=name,
        **kw,
    )


#: The block formats, as their specifications define them.
PRESETS: dict[str, QuantScheme] = {
    "mxfp8": _preset("mxfp8", "float8_e4m3fn", 32, "float8_e8m0fnu", "mx"),
    "mxfp8_e5m2": _preset("mxfp8_e5m2", "float8_e5m2", 32, "float8_e8m0fnu", "mx"),
    "mxfp6_e2m3": _preset("mxfp6_e2m3", "float6_e2m3fn", 32, "float8_e8m0fnu", "mx"),
    "mxfp6_e3m2": _preset("mxfp6_e3m2", "float6_e3m2fn", 32, "float8_e8m0fnu", "mx"),
    "mxfp4": _preset("mxfp4", "float4_e2m1fn", 32, "float8_e8m0fnu", "mx"),
    "mxint8": _preset("mxint8", "int8", 32, "float8_e8m0fnu", "mx", restricted=False),
    "nvfp4": _preset("nvfp4", "float4_e2m1fn", 16, "float8_e4m3fn", "nvfp4"),
    "nf4": _preset("nf4", "nf4", 64, "float32", "range"),
}
PRESET_ALIASES = {"mxfp6": "mxfp6_e2m3", "mxfp8_e4m3": "mxfp8"}


def scheme(
    target: str | QuantScheme = "int8",
    *,
    mapping: str | Mapping = Mapping.SYMMETRIC,
    granularity: str | Granularity = "tensor",
    method: str = "minmax",
    restricted: bool = True,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    scale_format: str = "float32",
    **method_args: Any,
) -> QuantScheme:
    """Build a scheme; a preset name (``mxfp4``, ``nvfp4``, ``nf4`` ...) gives the preset.

    Extra keyword arguments go to the calibration method (``percentile=99.9``,
    ``ratios=100``, ``loss=...``).
    """
    if isinstance(target, QuantScheme):
        return target
    name = str(target).strip().lower()
    name = PRESET_ALIASES.get(name, name)
    if name in PRESETS:
        base = PRESETS[name]
        if method != "minmax" or method_args or rounding != Rounding.NEAREST_EVEN:
            return base.with_(method=method, method_args=method_args, rounding=rounding)
        return base
    if name.startswith("uint") and name[4:].isdigit():
        name, mapping = "int" + name[4:], Mapping.ASYMMETRIC
    return QuantScheme(
        target=name,
        mapping=mapping,
        granularity=granularity,
        method=method,
        method_args=tuple(sorted(method_args.items())),
        restricted=restricted,
        rounding=rounding,
        scale_format=scale_format,
    )


def parse_scheme(text: str) -> QuantScheme:
    """Read a scheme from a compact spec: parts separated by ``/`` or spaces.

    Parts: a target (``int4``, ``fp8_e4m3``, ``nf4``, a preset), ``sym`` / ``asym`` /
    ``full``, a granularity (``tensor``, ``channel:0``, ``group:128``), a method (``minmax``,
    ``percentile:99.9``, ``mse``, ``mse:200``, ``entropy``, ``l2_histogram``),
    ``scale:fp16``, ``stochastic``.

    Example:
        >>> str(parse_scheme("int4/asym/group:128/mse"))
        'int4 asym group:128 mse'
    """
    from numfmt.quant import calibration

    parts = [p for p in str(text).replace("/", " ").split() if p]
    if not parts:
        raise NumfmtError("an empty scheme; write e.g. int8, int4/asym/group:128, mxfp4")
    options: dict[str, Any] = {"target": parts[0]}
    method_args: dict[str, Any] = {}
    for part in parts[1:]:
        key, _, value = part.partition(":")
        key = key.lower()
        if key in ("sym", "symmetric", "asym", "asymmetric"):
            options["mapping"] = key
        elif key == "full":
            options["restricted"] = False
        elif key in ("tensor", "channel", "axis", "group"):
            options["granularity"] = part
        elif key == "scale":
            options["scale_format"] = value
        elif key in ("stochastic", "nearest-even", "rne"):
            options["rounding"] = key
        elif key in calibration.METHODS:
            options["method"] = key
            if value:
                method_args.update(calibration.parse_argument(key, value))
        else:
            raise NumfmtError(
                f"cannot read '{part}' in scheme '{text}'; parts are a target, sym/asym/full, "
                f"tensor/channel:A/group:G, a method ({', '.join(calibration.METHODS)}), "
                "scale:FORMAT, stochastic"
            )
    target = options.pop("target")
    s = scheme(target, **options, **method_args)
    if s.preset and any(k in options for k in ("granularity", "scale_format", "mapping")):
        raise NumfmtError(f"{s.preset} fixes its own blocks, scales and mapping")
    return s
