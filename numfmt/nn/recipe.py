"""Recipes: which layers of a model get which scheme.

A recipe names a weight scheme per layer-name pattern (shell-style, ``fnmatch``; the first
pattern that matches a layer wins, so list the specific ones first), which kinds of layers
take part, which names are left out, and, for W8A8, how activations are quantized on the fly.

    >>> r = parse_recipe({"*.down_proj": "int8/channel", "*": "int4/group:128"})
    >>> str(r.scheme_for("model.layers.0.mlp.down_proj")), str(r.scheme_for("x.q_proj"))
    ('int8/channel', 'int4/group:128')

The course's two named recipes: ``int8-absmax`` (int8, one symmetric scale per tensor: the
largest magnitude maps to 127) and ``int8-zeropoint`` (int8 with a zero point, per tensor:
the minimum maps to -128 and the maximum to 127); ``w8a8-token`` and ``w8a8-tensor`` (int8 per
output channel with int8 activations scaled per token or per tensor, symmetric, as torchao's
and PyTorch's dynamic quantization do), ``w8a8-token-asym`` (per token with a zero point:
activations are rarely centred on zero); ``fp32`` quantizes nothing (the reference).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, replace
from typing import Any

from numfmt.errors import NumfmtError
from numfmt.quant.schemes import (
    SPELLED_METHODS,
    QuantScheme,
    normalise_method,
    parse_method_argument,
    parse_scheme,
)

#: The kinds of layers a recipe can quantize.
KINDS = ("linear", "conv1d", "embedding")
#: What a recipe leaves out unless told otherwise: the output head (tied to the embedding in
#: many models, SmolLM2 and GPT-2 among them; its errors reach every logit directly).
DEFAULT_EXCLUDE = ("lm_head",)
BIAS_MODES = ("float", "int32")

NAMED: dict[str, dict[str, Any]] = {
    "fp32": {"weights": {}},
    "int8-absmax": {"weights": {"*": "int8"}},
    "int8-zeropoint": {"weights": {"*": "int8/asym"}},
    "w8a8-token": {"weights": {"*": "int8/channel"}, "activations": "int8/token"},
    "w8a8-token-asym": {"weights": {"*": "int8/channel"}, "activations": "int8/asym/token"},
    "w8a8-tensor": {"weights": {"*": "int8/channel"}, "activations": "int8"},
}


@dataclass(frozen=True)
class Recipe:
    """Weight schemes by name pattern (None keeps a layer in float), the layer kinds that
    take part, names left out, activations (W8A8: a scheme applied to each input on the fly,
    ``int8/token`` or per tensor ``int8``) and how a quantized layer keeps its bias."""

    weights: tuple[tuple[str, QuantScheme | None], ...]
    kinds: tuple[str, ...] = ("linear", "conv1d")
    exclude: tuple[str, ...] = DEFAULT_EXCLUDE
    activations: QuantScheme | None = None
    bias: str = "float"
    name: str = ""

    def __post_init__(self) -> None:
        for kind in self.kinds:
            if kind not in KINDS:
                raise NumfmtError(f"unknown layer kind '{kind}'; use {', '.join(KINDS)}")
        if self.bias not in BIAS_MODES:
            raise NumfmtError(f"bias is 'float' or 'int32', not '{self.bias}'")

    def __str__(self) -> str:
        if self.name:
            return self.name
        if len(self.weights) == 1 and self.weights[0][0] == "*":
            text = str(self.weights[0][1]) if self.weights[0][1] is not None else "fp32"
        else:
            text = ", ".join(f"{p}: {s if s is not None else 'float'}" for p, s in self.weights)
        return text + (f" + activations {self.activations}" if self.activations else "")

    @property
    def is_float(self) -> bool:
        return all(s is None for _, s in self.weights)

    def _rule(self, name: str) -> tuple[str, str, QuantScheme | None]:
        """(how, pattern, scheme): the rule that decides the layer ``name``."""
        for pattern in self.exclude:
            if fnmatch.fnmatchcase(name, pattern):
                return "excluded", pattern, None
        for pattern, scheme in self.weights:
            if fnmatch.fnmatchcase(name, pattern):
                return "pattern", pattern, scheme
        return "none", "", None

    def scheme_for(self, name: str) -> QuantScheme | None:
        """The weight scheme of the layer ``name`` (None: left in float)."""
        return self._rule(name)[2]

    def why_float(self, name: str) -> str:
        """Why the layer ``name`` stays in float, in words."""
        how, pattern, _ = self._rule(name)
        if how == "excluded":
            return f"excluded by '{pattern}'"
        if how == "pattern":
            return f"'{pattern}' keeps it in float"
        return "no pattern matches it"

    def decide(
        self, name: str, kind: str, *, tied: bool = False
    ) -> tuple[QuantScheme | None, str | None]:
        """(scheme, None) for a layer the recipe quantizes; (None, why) for one it keeps in
        float with a reason to give; (None, None) for one it leaves alone without a word (a
        kind it does not take, or every layer when the recipe quantizes nothing)."""
        scheme = self.scheme_for(name)
        if kind not in self.kinds:
            if scheme is not None and kind == "embedding":
                return None, "embeddings are left in float unless kinds includes them"
            return None, None
        if scheme is None:
            if self.is_float:
                return None, None
            tie = " (its weight is tied to another layer's)" if tied else ""
            return None, self.why_float(name) + tie
        return scheme, None

    def with_method(self, method: str) -> Recipe:
        """The recipe with every weight scheme's range method replaced (``mse``,
        ``percentile:99.9`` ...)."""
        name, _, arg = method.partition(":")
        if name not in SPELLED_METHODS:
            known = ", ".join(SPELLED_METHODS)
            raise NumfmtError(f"unknown calibration method '{name}'; use {known}")
        args = normalise_method(name, parse_method_argument(name, arg) if arg else {})
        weights = tuple(
            (p, None if s is None else s.with_(method=name, method_args=args))
            for p, s in self.weights
        )
        return replace(self, weights=weights, name="")

    def unmatched(self, names: list[str]) -> list[str]:
        """The weight and exclude patterns that match none of ``names``."""
        patterns = [p for p, _ in self.weights if p != "*"]
        patterns += [p for p in self.exclude if p not in DEFAULT_EXCLUDE]
        return [p for p in patterns if not any(fnmatch.fnmatchcase(n, p) for n in names)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": str(self),
            "weights": {p: (str(s) if s is not None else None) for p, s in self.weights},
            "kinds": list(self.kinds),
            "exclude": list(self.exclude),
            "activations": str(self.activations) if self.activations else None,
            "bias": self.bias,
        }


def _scheme(spec: Any) -> QuantScheme | None:
    if spec is None or spec in ("float", "fp32", "none"):
        return None
    return spec if isinstance(spec, QuantScheme) else parse_scheme(str(spec))


def parse_recipe(
    spec: Recipe | str | dict[str, Any] | QuantScheme,
    *,
    kinds: tuple[str, ...] | list[str] | None = None,
    exclude: tuple[str, ...] | list[str] | None = None,
    activations: str | QuantScheme | None = None,
    bias: str | None = None,
) -> Recipe:
    """A recipe from a named recipe, a scheme string (every layer), a dict of pattern ->
    scheme, or a Recipe; keyword arguments override its parts.

    Raises:
        NumfmtError: a scheme that does not parse, an unknown kind or bias mode.
    """
    if isinstance(spec, Recipe):
        base = spec
    elif isinstance(spec, dict):
        base = Recipe(weights=tuple((str(p), _scheme(s)) for p, s in spec.items()))
    elif isinstance(spec, QuantScheme):
        base = Recipe(weights=(("*", spec),))
    elif isinstance(spec, str) and spec in NAMED:
        named = NAMED[spec]
        base = Recipe(
            weights=tuple((p, _scheme(s)) for p, s in named["weights"].items()),
            activations=_scheme(named.get("activations")),
            name=spec,
        )
    elif isinstance(spec, str):
        try:
            base = Recipe(weights=(("*", _scheme(spec)),))
        except NumfmtError as exc:
            names = ", ".join(NAMED)
            raise NumfmtError(f"{exc} (named recipes: {names})") from None
    else:
        kind = type(spec).__name__
        raise NumfmtError(f"a recipe is a name, a scheme string or a dict, not a {kind}")
    changes: dict[str, Any] = {}
    if kinds is not None:
        changes["kinds"] = tuple(kinds)
    if exclude is not None:
        changes["exclude"] = tuple(exclude)
    if activations is not None:
        changes["activations"] = _scheme(activations)
    if bias is not None:
        changes["bias"] = bias
    return replace(base, name="", **changes) if changes else base
