"""Granularity: which elements of a tensor share one scale (and zero point).

===============  =========================================  ===================================
granularity      one scale per                              scale shape, for x of shape (4, 10)
===============  =========================================  ===================================
PerTensor()      the whole tensor                           ()
PerAxis(0)       index along axis 0 (a "channel")           (4,)
PerAxis(1)       index along axis 1                         (10,)
PerGroup(4)      4 consecutive elements along the last      (4, 3): 4 + 4 + 2, the last group
                 axis (axis=-1 by default)                  of each row is shorter
PerToken()       vector along the last axis, whatever the   (4, 1); activations of shape
                 leading shape (dynamic activation          (batch, seq, hidden) get scales
                 quantization: one scale per token)         (batch, seq, 1)
===============  =========================================  ===================================

A :class:`Grouping` ties a granularity to a shape. It cuts a tensor into *blocks*: 2-D arrays
whose rows are groups of equal length (at most two blocks: the full groups, and the shorter
last groups when the group size does not divide the axis). Every calibration method and
quantizer works on such rows, so the same code serves every granularity.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cached_property
from typing import cast

from numfmt.errors import NumfmtError


@dataclass(frozen=True)
class PerTensor:
    """One scale for the whole tensor."""

    def __str__(self) -> str:
        return "tensor"


@dataclass(frozen=True)
class PerAxis:
    """One scale per index along ``axis`` (per channel: axis 0 of a weight matrix)."""

    axis: int = 0

    def __str__(self) -> str:
        return "channel" if self.axis == 0 else f"channel:{self.axis}"


@dataclass(frozen=True)
class PerGroup:
    """One scale per ``size`` consecutive elements along ``axis`` (the last by default)."""

    size: int
    axis: int = -1

    def __post_init__(self) -> None:
        if not isinstance(self.size, int) or self.size < 1:
            raise NumfmtError(f"a group holds at least one element, not {self.size}")

    def __str__(self) -> str:
        return f"group:{self.size}" + ("" if self.axis == -1 else f":{self.axis}")


@dataclass(frozen=True)
class PerToken:
    """One scale per vector along the last axis (per token of a (batch, seq, hidden) tensor)."""

    def __str__(self) -> str:
        return "token"


Granularity = PerTensor | PerAxis | PerGroup | PerToken

_PATTERN = re.compile(r"^(tensor|token|channel|axis|group)(?::(-?\d+))?(?::(-?\d+))?$")


def parse_granularity(text: str | Granularity) -> Granularity:
    """Read ``tensor``, ``token``, ``channel`` (axis 0), ``channel:1``, ``group:128`` or
    ``group:128:0``.

    Examples:
        >>> parse_granularity("group:128")
        PerGroup(size=128, axis=-1)
    """
    if isinstance(text, PerTensor | PerAxis | PerGroup | PerToken):
        return text
    m = _PATTERN.match(str(text).strip().lower())
    if m is None:
        raise NumfmtError(
            f"unknown granularity '{text}'; use tensor, token, channel, channel:AXIS, "
            "group:SIZE or group:SIZE:AXIS"
        )
    kind, a, b = m.groups()
    if kind in ("tensor", "token"):
        if a is not None:
            raise NumfmtError(f"'{kind}' takes no number")
        return PerTensor() if kind == "tensor" else PerToken()
    if kind in ("channel", "axis"):
        if b is not None:
            raise NumfmtError(f"'{kind}' takes one number, the axis")
        return PerAxis(int(a or 0))
    if a is None:
        raise NumfmtError("'group' needs a size, e.g. group:128")
    return PerGroup(int(a), int(b) if b is not None else -1)


@dataclass(frozen=True)
class Grouping:
    """A granularity applied to a shape: blocks of equal-length groups, and scale layout.

    Works on numpy arrays and torch tensors alike (the blocks are views where the layout
    allows, in the input's library and on its device).
    """

    shape: tuple[int, ...]
    granularity: Granularity

    def __post_init__(self) -> None:
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        g = self.granularity
        ndim = len(self.shape)
        if isinstance(g, PerAxis | PerGroup) and (ndim == 0 or not -ndim <= g.axis < ndim):
            raise NumfmtError(f"axis {g.axis} is out of range for a tensor of shape {self.shape}")
        if isinstance(g, PerToken) and ndim == 0:
            raise NumfmtError("per-token scales need a tensor of at least one axis")

    # -- layout -----------------------------------------------------------------------------
    @cached_property
    def _layout(self) -> PerTensor | PerAxis | PerGroup:
        """The granularity as the cutting sees it: a token is a group as long as its axis."""
        g = self.granularity
        if isinstance(g, PerToken):
            return PerGroup(max(self.shape[-1], 1), -1)
        return g

    @cached_property
    def size(self) -> int:
        return math.prod(self.shape)

    @cached_property
    def axis(self) -> int | None:
        g = self._layout
        return None if isinstance(g, PerTensor) else g.axis % len(self.shape)

    @cached_property
    def length(self) -> int:
        """Elements along the axis (all elements per tensor)."""
        return self.size if self.axis is None else self.shape[self.axis]

    @cached_property
    def rows(self) -> int:
        """How many independent lines the axis runs through."""
        return 1 if self.axis is None else self.size // max(self.length, 1)

    @cached_property
    def group_size(self) -> int:
        g = self._layout
        if isinstance(g, PerGroup):
            return g.size
        if isinstance(g, PerAxis):  # (self.axis is None per tensor only)
            return self.size // max(self.shape[cast(int, self.axis)], 1)
        return self.size

    @cached_property
    def full_groups(self) -> int:
        """Full groups per row (PerGroup); the last, shorter one is counted apart."""
        return self.length // self.group_size if self.group_size else 0

    @cached_property
    def tail(self) -> int:
        """Elements in the shorter last group of each row (0 when the size divides)."""
        return self.length % self.group_size if isinstance(self._layout, PerGroup) else 0

    @cached_property
    def scale_shape(self) -> tuple[int, ...]:
        """The shape of the per-group parameters (scales, zero points)."""
        g = self._layout
        if isinstance(g, PerTensor):
            return ()
        if isinstance(g, PerAxis):
            return (self.shape[cast(int, self.axis)],)
        moved = [n for i, n in enumerate(self.shape) if i != self.axis]
        return (*moved, self.full_groups + (1 if self.tail else 0))

    @cached_property
    def num_groups(self) -> int:
        return math.prod(self.scale_shape)

    @cached_property
    def sizes(self):
        """Elements in each group, in the scale layout (numpy int64)."""
        import numpy as np

        sizes = np.full(self.scale_shape, self.group_size, dtype=np.int64)
        if self.tail:
            sizes[..., -1] = self.tail
        return sizes

    @cached_property
    def block_widths(self) -> list[int]:
        """The group length of each block that :meth:`blocks` returns."""
        if self.size == 0:
            return []
        if isinstance(self._layout, PerGroup):
            return [self.group_size] * bool(self.full_groups) + [self.tail] * bool(self.tail)
        return [self.group_size]

    @cached_property
    def block_rows(self) -> list[int]:
        """The number of groups (rows) in each block."""
        if self.size == 0:
            return []
        if isinstance(self._layout, PerGroup):
            return [self.rows * self.full_groups] * bool(self.full_groups) + [self.rows] * bool(
                self.tail
            )
        return [1 if self.axis is None else self.shape[self.axis]]

    # -- cutting and joining ----------------------------------------------------------------
    def _lines(self, x):
        """x with the axis moved last, as (rows, length)."""
        from numfmt.quant._xp import namespace

        xp = namespace(x)
        return xp.reshape(xp.moveaxis(x, self.axis, -1), (self.rows, self.length))

    def blocks(self, x) -> list:
        """2-D blocks whose rows are the groups (views where the layout allows)."""
        from numfmt.quant._xp import namespace

        if self.size == 0:
            return []
        xp = namespace(x)
        g = self._layout
        if isinstance(g, PerTensor):
            return [xp.reshape(x, (1, -1))]
        if isinstance(g, PerAxis):
            return [
                xp.reshape(xp.moveaxis(x, self.axis, 0), (self.shape[cast(int, self.axis)], -1))
            ]
        lines = self._lines(x)
        full = self.full_groups * self.group_size
        out = []
        if self.full_groups:
            out.append(xp.reshape(lines[:, :full], (self.rows * self.full_groups, self.group_size)))
        if self.tail:
            out.append(lines[:, full:])
        return out

    def assemble(self, blocks: list, like=None):
        """The inverse of :meth:`blocks`: element-wise block results back in ``shape``.

        ``like`` gives the library, device and dtype of the result when there are no blocks.
        """
        from numfmt.quant._xp import namespace

        if not blocks:
            xp = namespace(like)
            dtype = like.dtype if like is not None else xp.float64
            return xp.zeros(self.shape, dtype=dtype, device=_device(like))
        xp = namespace(*blocks)
        g = self._layout
        if isinstance(g, PerTensor):
            return xp.reshape(blocks[0], self.shape)
        moved = self._moved_shape()
        if isinstance(g, PerAxis):
            return xp.moveaxis(xp.reshape(blocks[0], moved), 0, self.axis)
        parts = []
        if self.full_groups:
            parts.append(xp.reshape(blocks[0], (self.rows, self.full_groups * self.group_size)))
        if self.tail:
            parts.append(blocks[-1])
        lines = parts[0] if len(parts) == 1 else xp.concat(parts, axis=1)
        return xp.moveaxis(xp.reshape(lines, moved), -1, self.axis)

    def split_params(self, p) -> list:
        """Per-group parameters in scale layout -> one 1-D array per block."""
        from numfmt.quant._xp import namespace

        if not self.block_widths:  # an empty tensor: no blocks
            return []
        xp = namespace(p)
        if isinstance(self._layout, PerTensor | PerAxis):
            return [xp.reshape(p, (-1,))]
        per_row = xp.reshape(p, (self.rows, -1))
        out = []
        if self.full_groups:
            out.append(xp.reshape(per_row[:, : self.full_groups], (-1,)))
        if self.tail:
            out.append(per_row[:, -1])
        return out

    def join_params(self, parts: list):
        """The inverse of :meth:`split_params`."""
        from numfmt.quant._xp import namespace

        xp = namespace(*parts)
        if isinstance(self._layout, PerTensor | PerAxis):
            return xp.reshape(parts[0], self.scale_shape)
        cols = []
        if self.full_groups:
            cols.append(xp.reshape(parts[0], (self.rows, self.full_groups)))
        if self.tail:
            cols.append(xp.reshape(parts[-1], (self.rows, 1)))
        per_row = cols[0] if len(cols) == 1 else xp.concat(cols, axis=1)
        return xp.reshape(per_row, self.scale_shape)

    def expand(self, p):
        """Per-group parameters broadcast to one value per element (for reports and plots)."""
        from numfmt.quant._xp import namespace

        xp = namespace(p)
        parts = self.split_params(p)
        blocks = [
            xp.broadcast_to(part[:, None], (part.shape[0], width))
            for part, width in zip(parts, self.block_widths, strict=True)
        ]
        return self.assemble(blocks, like=p)

    def _moved_shape(self) -> tuple[int, ...]:
        rest = [n for i, n in enumerate(self.shape) if i != self.axis]
        if isinstance(self._layout, PerAxis):
            return (self.shape[cast(int, self.axis)], *rest)
        return (*rest, self.length)


def _device(like):
    if like is None:
        return None
    from numfmt.quant._xp import device

    return device(like)
