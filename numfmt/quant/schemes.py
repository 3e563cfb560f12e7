"""Quantization schemes: what grid a tensor goes onto, and how its scale is chosen.

A scheme is a frozen value. Its *target* is the grid of the elements:

=============  ===================================================================
int2 .. int32  integers; symmetric: -(2^(b-1) - 1) .. 2^(b-1) - 1 (``restricted``,
               zero in the middle) or from -2^(b-1) (``full``); asymmetric: 0 .. 2^b - 1
               with an integer zero point; ``min``: 0 .. 2^b - 1 with a float minimum
               (x = scale * q + minimum, llama.cpp's Q4_1)
a float name   the values of a small float format (``fp8_e4m3``, ``fp4``, ``e3m2`` ...)
               times a scale; always symmetric
nf4            the 16-value NormalFloat codebook of QLoRA, times a block absmax
=============  ===================================================================

and its *scale rule* how a group's range becomes a scale: ``range`` (alpha over the largest
code: absmax / 127 for int8, absmax / 448 for fp8 e4m3), ``mx`` (the OCP MX shared exponent,
2^(floor(log2(absmax)) - emax)), ``nvfp4`` (an E4M3 block scale under a float32 tensor
scale) or ``gguf`` (llama.cpp's reference quantizers, float32 arithmetic and all). The scale
is stored in ``scale_format`` (float32 unless said otherwise).

Presets spell the block formats, and fix their blocks, scales and mapping:

============  ====================================================================
mxfp8 ...     OCP MX v1.0: 32 elements, an E8M0 scale (``mxfp8``, ``mxfp8_e5m2``,
              ``mxfp6_e2m3``, ``mxfp6_e3m2``, ``mxfp4``, ``mxint8``)
nvfp4         16 FP4 elements, an E4M3 scale, a float32 tensor scale
nf4           64 NF4 elements, a float32 absmax
q8_0 ...      GGUF blocks of 32 with a float16 scale: ``q8_0``, ``q4_0``, ``q5_0``
              (symmetric), ``q4_1``, ``q5_1`` (a float16 minimum too)
============  ====================================================================

``str(scheme)`` is canonical and reads back: ``parse_scheme(str(s)) == s``.
"""

from __future__ import annotations

import enum
import functools
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

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

#: The widest integer grid (int32: the bias and accumulator of integer inference).
MAX_INT_BITS = 32


class Mapping(str, enum.Enum):
    """Where zero goes: in the middle of the codes (symmetric), at an integer zero point
    (asymmetric), or at a float minimum stored beside the scale (x = s * q + m)."""

    SYMMETRIC = "symmetric"
    ASYMMETRIC = "asymmetric"
    FLOAT_MIN = "float-min"

    @classmethod
    def parse(cls, value: str | Mapping) -> Mapping:
        """Read a mapping: symmetric (sym, absmax), asymmetric (asym, zero-point) or
        float-min (min)."""
        aliases = {
            "sym": "symmetric",
            "absmax": "symmetric",
            "asym": "asymmetric",
            "zeropoint": "asymmetric",
            "zero-point": "asymmetric",
            "min": "float-min",
            "float_min": "float-min",
        }
        return parse_enum(cls, value, "mapping", aliases)

    @property
    def short(self) -> str:
        return {"symmetric": "sym", "asymmetric": "asym", "float-min": "min"}[self.value]


SCALE_RULES = ("range", "mx", "nvfp4", "gguf")


# -- range methods: their names, options and defaults (``calibration`` implements them) -----------
@dataclass(frozen=True)
class MethodSpec:
    """What a range method takes: its options (name -> (type, default)), and the one option
    a compact spec may give after a colon (``percentile:99.9``, ``mse:200``)."""

    options: dict[str, tuple[Callable[[Any], Any] | None, Any]]  # no type: the loss
    short: str | None = None
    spelled: bool = True  # whether a compact spec can name it (search needs a Python loss)


METHODS: dict[str, MethodSpec] = {
    "minmax": MethodSpec({}),
    "percentile": MethodSpec({"percentile": (float, 99.99)}, "percentile"),
    "mse": MethodSpec({"ratios": (int, 100)}, "ratios"),
    "search": MethodSpec({"ratios": (int, 100), "loss": (None, None)}, "ratios", spelled=False),
    "entropy": MethodSpec({"bins": (int, 2048)}, "bins"),
    "l2_histogram": MethodSpec({"bins": (int, 2048)}, "bins"),
}
#: The methods a compact spec (and so the command line) can run.
SPELLED_METHODS = tuple(k for k, v in METHODS.items() if v.spelled)


def normalise_method(name: str, options: dict[str, Any]) -> tuple[tuple[str, Any], ...]:
    """Check a method and its options; return them sorted, typed, defaults dropped.

    Raises:
        NumfmtError: an unknown method or option, or an option out of range.
    """
    if name not in METHODS:
        raise NumfmtError(f"unknown calibration method '{name}'; use {', '.join(METHODS)}")
    spec = METHODS[name]
    out = {}
    for key, value in options.items():
        if key not in spec.options:
            allowed = ", ".join(spec.options) or "no options"
            raise NumfmtError(f"'{name}' takes {allowed}, not '{key}'")
        kind, default = spec.options[key]
        if key == "loss":
            if not callable(value):
                raise NumfmtError("loss must be a callable: loss(rows, rows_quantized)")
            out[key] = value
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise NumfmtError(f"cannot read '{value}' as the {key} of {name}") from None
        if key == "percentile" and not 0 < number <= 100:
            raise NumfmtError(f"a percentile lies in (0, 100], not {value}")
        if key in ("ratios", "bins") and (int(number) != number or number < 1):
            raise NumfmtError(f"{key} must be a positive integer, not {value}")
        assert kind is not None  # the one option without a type, loss, is taken above
        typed = kind(number)
        if typed != default:
            out[key] = typed
    if name == "search" and "loss" not in out:
        raise NumfmtError(
            "'search' needs loss=callable(rows, rows_quantized), given from Python: "
            "choose_qparams(x, scheme, method='search', loss=fn); 'mse' is the built-in loss"
        )
    return tuple(sorted(out.items()))


def parse_method_argument(method: str, text: str) -> dict[str, Any]:
    """``percentile:99.9`` -> {'percentile': 99.9}; ``mse:200`` -> {'ratios': 200}."""
    key = METHODS[method].short
    if key is None:
        raise NumfmtError(f"'{method}' takes no argument")
    return {key: text}


@dataclass(frozen=True)
class QuantScheme:
    """How to quantize a tensor. Build one with :func:`scheme` or :func:`parse_scheme`.

    Examples:
        >>> s = scheme("int4", mapping="asym", granularity="group:128", scale_format="fp16")
        >>> str(s), s.qmin, s.qmax
        ('int4/asym/group:128/scale:float16', 0, 15)
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

    if TYPE_CHECKING:  # the dataclass's own __init__, as it is called

        def __init__(
            self,
            target: str = "int8",
            mapping: str | Mapping = Mapping.SYMMETRIC,
            granularity: str | Granularity = ...,
            method: str = "minmax",
            method_args: tuple[tuple[str, Any], ...] = (),
            restricted: bool = True,
            rounding: str | Rounding = Rounding.NEAREST_EVEN,
            scale_format: str = "float32",
            scale_rule: str = "range",
            preset: str | None = None,
        ) -> None: ...

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
        if kind != "int" and self.mapping is not Mapping.SYMMETRIC:
            raise NumfmtError(f"{self.target} is a symmetric grid; asym and min need an int target")
        if kind == "int" and not 2 <= self.bits <= MAX_INT_BITS:
            raise NumfmtError(f"integer targets have 2 to {MAX_INT_BITS} bits, not {self.bits}")
        scale = get_format(self.scale_format)
        if not isinstance(scale, FloatFormat):
            raise NumfmtError(f"scales are stored in a float format, not {scale.name}")
        if self.mapping is Mapping.FLOAT_MIN and not scale.signed:
            raise NumfmtError(f"a float minimum needs a signed scale format, not {scale.name}")
        object.__setattr__(self, "scale_format", scale.name)
        args = dict(self.method_args)
        object.__setattr__(self, "method_args", normalise_method(self.method, args))
        if self.scale_rule == "gguf" and (
            self.method != "minmax" or self.rounding is not Rounding.NEAREST_EVEN
        ):
            raise NumfmtError(
                f"{self.preset or 'a gguf scheme'} is llama.cpp's reference quantizer: "
                "it takes no range method and no stochastic rounding"
            )

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
        if self.mapping is not Mapping.SYMMETRIC:
            return 0
        top = (1 << (self.bits - 1)) - 1
        return -top if self.restricted else -top - 1

    @cached_property
    def qmax(self) -> int:
        """The largest integer code (int targets)."""
        if self.mapping is not Mapping.SYMMETRIC:
            return (1 << self.bits) - 1
        return (1 << (self.bits - 1)) - 1

    @cached_property
    def grid_max(self) -> float:
        """The largest magnitude on the unscaled grid: qmax, the format's max, or 1 (NF4)."""
        if self.kind == "int":
            return float(self.qmax)
        if self.kind == "codebook":
            return 1.0
        assert self.element_format is not None  # a float grid's
        return float(self.element_format.max_value)

    @cached_property
    def codebook(self) -> np.ndarray | None:
        """The grid values of a codebook target, in code order."""
        return NF4_CODEBOOK if self.kind == "codebook" else None

    @property
    def method_options(self) -> dict[str, Any]:
        """The method's options, defaults filled in."""
        spec = METHODS[self.method]
        out = {k: d for k, (_, d) in spec.options.items() if k != "loss"}
        out.update(self.method_args)
        return out

    @cached_property
    def scale_bits(self) -> int:
        return get_format(self.scale_format).bits

    @cached_property
    def zero_point_bits(self) -> int:
        """Bits stored per group for the zero point (or the float minimum)."""
        if self.mapping is Mapping.ASYMMETRIC:
            return self.bits
        if self.mapping is Mapping.FLOAT_MIN:
            return self.scale_bits
        return 0

    @cached_property
    def code_signed(self) -> bool:
        """Whether codes are signed integers (symmetric int targets)."""
        return self.kind == "int" and self.qmin < 0

    def with_(self, **changes: Any) -> QuantScheme:
        """A copy with some fields changed. A preset keeps its name when only its method,
        method options or rounding change (``mxfp4`` with ``mse`` prints as ``mxfp4/mse``)."""
        if "method_args" in changes and isinstance(changes["method_args"], dict):
            changes["method_args"] = tuple(sorted(changes["method_args"].items()))
        if "method" in changes and "method_args" not in changes:
            changes["method_args"] = ()
        keeps_preset = set(changes) <= {"method", "method_args", "rounding"}
        return replace(self, preset=self.preset if keeps_preset else None, **changes)

    def __str__(self) -> str:
        parts = [self.preset] if self.preset else self._grid_parts()
        if self.method != "minmax":
            args = self.method_args
            short = METHODS[self.method].short
            shown = [str(_plain(v)) for k, v in args if k == short]
            parts.append(self.method + (f":{shown[0]}" if shown else ""))
        if self.rounding is Rounding.STOCHASTIC:
            parts.append("stochastic")
        return "/".join(parts)

    def _grid_parts(self) -> list[str]:
        parts = [self.target]
        if self.kind == "int":
            if self.mapping is not Mapping.SYMMETRIC:
                parts.append(self.mapping.short)
            elif not self.restricted:
                parts.append("full")
        if not isinstance(self.granularity, PerTensor):
            parts.append(str(self.granularity))
        if self.scale_format != "float32":
            parts.append(f"scale:{self.scale_format}")
        if self.scale_rule != "range":
            parts.append(f"rule:{self.scale_rule}")
        return parts


def _plain(v: Any) -> Any:
    """99.9 rather than 99.9000, 200 rather than 200.0."""
    return int(v) if isinstance(v, float) and v.is_integer() else v


def _target_format(target: str) -> FloatFormat | IntFormat:
    try:
        fmt = get_format(target)
    except NumfmtError:
        raise NumfmtError(
            f"unknown quantization target '{target}'; use int2..int{MAX_INT_BITS}, a float format "
            f"such as fp8_e4m3 or fp4, nf4, or a preset: {', '.join(PRESETS)}"
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
    "q8_0": _preset("q8_0", "int8", 32, "float16", "gguf"),
    "q4_0": _preset("q4_0", "int4", 32, "float16", "gguf", restricted=False),
    "q5_0": _preset("q5_0", "int5", 32, "float16", "gguf", restricted=False),
    "q4_1": _preset("q4_1", "int4", 32, "float16", "gguf", mapping="float-min"),
    "q5_1": _preset("q5_1", "int5", 32, "float16", "gguf", mapping="float-min"),
}
PRESET_ALIASES = {"mxfp6": "mxfp6_e2m3", "mxfp8_e4m3": "mxfp8"}
#: What a preset fixes, in words.
_PRESET_FIELDS = {
    "granularity": "granularity",
    "mapping": "mapping",
    "scale_format": "scale format",
    "restricted": "code range",
}


def scheme(
    target: str | QuantScheme = "int8",
    *,
    mapping: str | Mapping | None = None,
    granularity: str | Granularity | None = None,
    method: str = "minmax",
    restricted: bool | None = None,
    rounding: str | Rounding = Rounding.NEAREST_EVEN,
    scale_format: str | None = None,
    **method_args: Any,
) -> QuantScheme:
    """Build a scheme; a preset name (``mxfp4``, ``nvfp4``, ``nf4``, ``q4_0`` ...) gives the
    preset, whose blocks, scales and mapping are fixed (asking for others is an error).

    Extra keyword arguments go to the calibration method (``percentile=99.9``,
    ``ratios=100``, ``loss=...``).

    Examples:
        >>> str(scheme("mxfp4", method="mse"))
        'mxfp4/mse'
    """
    if isinstance(target, QuantScheme):
        return target
    name = str(target).strip().lower()
    name = PRESET_ALIASES.get(name, name)
    if name in PRESETS:
        base = PRESETS[name]
        asked: dict[str, tuple[Any, Callable[[Any], Any], Any]] = {
            "granularity": (granularity, parse_granularity, base.granularity),
            "mapping": (mapping, Mapping.parse, base.mapping),
            "scale_format": (scale_format, lambda v: get_format(v).name, base.scale_format),
            "restricted": (restricted, bool, base.restricted),
        }
        for key, (value, read, own) in asked.items():
            if value is not None and read(value) != own:
                shown = {
                    "granularity": lambda v: str(parse_granularity(v)),
                    "mapping": lambda v: Mapping.parse(v).short,
                    "scale_format": lambda v: get_format(v).name,
                    "restricted": lambda v: "restricted" if v else "full",
                }[key]
                raise NumfmtError(
                    f"{name} fixes its own blocks, scales and mapping: its "
                    f"{_PRESET_FIELDS[key]} is {shown(own)}, not {shown(value)}"
                )
        if method != "minmax" or method_args or Rounding.parse(rounding) != base.rounding:
            return base.with_(method=method, method_args=method_args, rounding=rounding)
        return base
    if name.startswith("uint") and name[4:].isdigit():
        if mapping is not None and Mapping.parse(mapping) is Mapping.SYMMETRIC:
            raise NumfmtError(
                f"{name} codes are unsigned (asymmetric, or min); symmetric codes are int{name[4:]}"
            )
        name, mapping = "int" + name[4:], mapping or Mapping.ASYMMETRIC
    s = QuantScheme(
        target=name,
        mapping=mapping or Mapping.SYMMETRIC,
        granularity=granularity if granularity is not None else PerTensor(),
        method=method,
        method_args=tuple(sorted(method_args.items())),
        restricted=True if restricted is None else restricted,
        rounding=rounding,
        scale_format=scale_format or "float32",
    )
    if restricted is False and s.kind != "int":
        raise NumfmtError(
            f"full widens symmetric integer codes to -2^(b-1); {name} is not an integer grid"
        )
    if restricted is False and s.mapping is not Mapping.SYMMETRIC:
        raise NumfmtError(
            f"full widens symmetric codes to -2^(b-1); {s.mapping.short} codes already run "
            "from 0 to 2^b - 1"
        )
    return s


#: Scheme parts that are a word alone, never ``word:value``.
_BARE_PARTS = (
    "sym", "symmetric", "asym", "asymmetric", "min", "float-min", "full",
    "stochastic", "nearest-even", "rne",
)  # fmt: skip


def parse_scheme(text: str | QuantScheme) -> QuantScheme:
    """Read a scheme from a compact spec: parts separated by ``/`` or spaces.

    Parts: a target (``int4``, ``fp8_e4m3``, ``nf4``, a preset), ``sym`` / ``asym`` /
    ``min`` / ``full``, a granularity (``tensor``, ``token``, ``channel:0``, ``group:128``),
    a method (``minmax``, ``percentile:99.9``, ``mse``, ``mse:200``, ``entropy``,
    ``l2_histogram``), ``scale:fp16``, ``stochastic``. Each kind of part comes at most once
    (``int4/sym/asym`` is refused, not read as its last word); ``full`` takes symmetric int
    targets only.

    Examples:
        >>> str(parse_scheme("int4 asym group:128 mse"))
        'int4/asym/group:128/mse'
    """
    if isinstance(text, QuantScheme):
        return text
    return _parse_text(str(text))


@functools.lru_cache(maxsize=512)
def _parse_text(text: str) -> QuantScheme:
    """parse_scheme's reading of a string, kept (a scheme is frozen; a QAT step or a model's
    forward pass names the same one thousands of times)."""
    parts = [p for p in text.replace("/", " ").split() if p]
    if not parts:
        raise NumfmtError("an empty scheme; write e.g. int8, int4/asym/group:128, mxfp4")
    options: dict[str, Any] = {}
    method_args: dict[str, Any] = {}
    seen: dict[str, str] = {}  # each kind of part, as it was written

    def once(kind: str, part: str) -> None:
        if kind in seen:
            raise NumfmtError(
                f"scheme '{text}' gives the {kind} twice ({seen[kind]} and {part}); keep one"
            )
        seen[kind] = part

    for part in parts[1:]:
        key, colon, value = part.partition(":")
        key = key.lower()
        if colon and key in _BARE_PARTS:
            raise NumfmtError(f"'{key}' takes no value, in scheme '{text}': write {key}")
        if key in ("sym", "symmetric", "asym", "asymmetric", "min", "float-min"):
            once("mapping", part)
            options["mapping"] = key
        elif key == "full":
            once("code range", part)
            options["restricted"] = False
        elif key in ("tensor", "token", "channel", "axis", "group"):
            once("granularity", part)
            options["granularity"] = part
        elif key == "scale":
            once("scale format", part)
            options["scale_format"] = value
        elif key in ("stochastic", "nearest-even", "rne"):
            once("rounding", part)
            options["rounding"] = key
        elif key == "search":
            raise NumfmtError(
                "'search' needs a loss function, so it runs from Python only: "
                "choose_qparams(x, scheme, method='search', loss=fn)"
            )
        elif key in METHODS:
            once("method", part)
            options["method"] = key
            if value:
                method_args.update(parse_method_argument(key, value))
        elif key == "rule":
            once("scale rule", part)
            options["scale_rule"] = value
        else:
            raise NumfmtError(
                f"cannot read '{part}' in scheme '{text}'; parts are a target, sym/asym/min/"
                f"full, tensor/token/channel:A/group:G, a method ({', '.join(SPELLED_METHODS)}), "
                "scale:FORMAT, stochastic"
            )
    rule = options.pop("scale_rule", None)
    s = scheme(parts[0], **options, **method_args)
    if rule is not None and rule != s.scale_rule:
        if s.preset:
            raise NumfmtError(f"{s.preset} fixes its own scale rule")
        s = replace(s, scale_rule=rule)
    return s
