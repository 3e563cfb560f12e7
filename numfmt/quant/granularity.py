"""Granularity: which elements of a tensor share one scale (and zero point).

===============  =========================================  ===================================
granularity      one scale per                              scale shape, for x of shape (4, 10)
===============  =========================================  ===================================
PerTensor()      the whole tensor                           ()
PerAxis(0)       index along axis 0 (a "channel")           (4,)
PerAxis(1)       index along axis 1                         (10,)
PerGroup(4)      4 consecutive elements along the last      (4, 3): 4 + 4 + 2, the last group
                 axis (axis=-1 by default)                  of each row is shorter
===============  =========================================  ===================================

A :class:`Grouping` ties a granularity to a shape. It cuts a tensor into *blocks*: 2-D arrays
whose rows are groups of equal length (at most two blocks: the full groups, and the shorter
last groups when the group size does not divide the axis). Every calibration method and
quantizer works on such rows, so the same code serves every granularity.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np

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
        return f"channel:{self.axis}"


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


Granularity = PerTensor | PerAxis | PerGroup

_PATTERN = re.compile(r"^(tensor|channel|axis|group)(?::(-?\d+))?(?::(-?\d+))?$")


def parse_granularity(text: str | Granularity) -> Granularity:
    """Read ``tensor``, ``channel`` (axis 0), ``channel:1``, ``group:128`` or ``group:128:0``.

    Example:
        >>> parse_granularity("group:128")
        PerGroup(size=128, axis=-1)
    """
    if isinstance(text, PerTensor | PerAxis | PerGroup):
        return text
    m = _PATTERN.match(str(text).strip().lower())
    if m is None:
        raise NumfmtError(
            f"unknown granularity '{text}'; use tensor, channel, channel:AXIS, group:SIZE "
            "or group:SIZE:AXIS"
        )
    kind, a, b = m.groups()
    if kind == "tensor":
        if a is not None:
            raise NumfmtError("'tensor' takes no number")
        return PerTensor()
    if kind in ("channel", "axis"):
        if b is not None:
            raise NumfmtError(f"'{kind}' takes one number, the axis")
        return PerAxis(int(a or 0))
    if a is None:
        raise NumfmtError("'group' needs a size, e.g. group:128")
    return PerGroup(int(a), int(b) if b is not None else -1)


@dataclass(frozen=True)
class Grouping:
    """A granularity applied to a shape: blocks of equal-length groups, and scale layout."""

    shape: tuple[int, ...]
    granularity: Granularity

    def __post_init__(self) -> None:
        g = self.granularity
        if isinstance(g, PerAxis | PerGroup):
            ndim = len(self.shape)
            if ndim == 0 or not -ndim <= g.axis < ndim:
                raise NumfmtError(
                    f"axis {g.axis} is out of range for a tensor of shape {self.shape}"
                )

    # -- layout -----------------------------------------------------------------------------
    @cached_property
    def axis(self) -> int | None:
        g = self.granularity
        return None if isinstance(g, PerTensor) else g.axis % len(self.shape)

    @cached_property
    def length(self) -> int:
        """Elements along the axis (all elements per tensor)."""
        return int(np.prod(self.shape)) if self.axis is None else self.shape[self.axis]

    @cached_property
    def rows(self) -> int:
        """How many independent lines the axis runs through."""
        return 1 if self.axis is None else int(np.prod(self.shape)) // max(self.length, 1)

    @cached_property
    def group_size(self) -> int:
        g = self.granularity
        if isinstance(g, PerGroup):
            return g.size
        if isinstance(g, PerAxis):
            return int(np.prod(self.shape)) // max(self.shape[self.axis], 1)
        return int(np.prod(self.shape))

    @cached_property
    def full_groups(self) -> int:
        """Full groups per row (PerGroup); the last, shorter one is counted apart."""
        return self.length // self.group_size if self.group_size else 0

    @cached_property
    def tail(self) -> int:
        """Elements in the shorter last group of each row (0 when the size divides)."""
        g = self.granularity
        return self.length % self.group_size if isinstance(g, PerGroup) else 0

    @cached_property
    def scale_shape(self) -> tuple[int, ...]:
        """The shape of the per-group parameters (scales, zero points)."""
        g = self.granularity
        if isinstance(g, PerTensor):
            return ()
        if isinstance(g, PerAxis):
            return (self.shape[self.axis],)
        moved = [n for i, n in enumerate(self.shape) if i != self.axis]
        return (*moved, self.full_groups + (1 if self.tail else 0))

    @cached_property
    def num_groups(self) -> int:
        return int(np.prod(self.scale_shape))

    @cached_property
    def sizes(self) -> np.ndarray:
        """Elements in each group, in the scale layout."""
        sizes = np.full(self.scale_shape, self.group_size, dtype=np.int64)
        if self.tail:
            sizes[..., -1] = self.tail
        return sizes

    # -- cutting and joining ----------------------------------------------------------------
    def blocks(self, x: np.ndarray) -> list[np.ndarray]:
        """2-D blocks whose rows are the groups (views where the layout allows)."""
        if x.size == 0:
            return []
        g = self.granularity
        if isinstance(g, PerTensor):
            return [x.reshape(1, -1)]
        if isinstance(g, PerAxis):
            return [np.moveaxis(x, self.axis, 0).reshape(self.shape[self.axis], -1)]
        lines = np.moveaxis(x, self.axis, -1).reshape(self.rows, self.length)
        full = self.full_groups * self.group_size
        out = []
        if self.full_groups:
            out.append(lines[:, :full].reshape(self.rows * self.full_groups, self.group_size))
        if self.tail:
            out.append(lines[:, full:])
        return out

    def assemble(self, blocks: list[np.ndarray], dtype=None) -> np.ndarray:
        """The inverse of :meth:`blocks`: element-wise block results back in ``shape``."""
        dtype = dtype or (blocks[0].dtype if blocks else np.float64)
        if not blocks:
            return np.zeros(self.shape, dtype=dtype)
        g = self.granularity
        if isinstance(g, PerTensor):
            return blocks[0].reshape(self.shape)
        moved_shape = self._moved_shape()
        if isinstance(g, PerAxis):
            return np.moveaxis(blocks[0].reshape(moved_shape), 0, self.axis)
        lines = np.empty((self.rows, self.length), dtype=dtype)
        full = self.full_groups * self.group_size
        i = 0
        if self.full_groups:
            lines[:, :full] = blocks[0].reshape(self.rows, full)
            i = 1
        if self.tail:
            lines[:, full:] = blocks[i]
        return np.moveaxis(lines.reshape(moved_shape), -1, self.axis)

    def split_params(self, p: np.ndarray) -> list[np.ndarray]:
        """Per-group parameters in scale layout -> one 1-D array per block."""
        p = np.asarray(p)
        if not self.block_widths:  # an empty tensor: no blocks
            return []
        if isinstance(self.granularity, PerTensor | PerAxis):
            return [p.reshape(-1)]
        per_row = p.reshape(self.rows, -1)
        out = []
        if self.full_groups:
            out.append(per_row[:, : self.full_groups].reshape(-1))
        if self.tail:
            out.append(per_row[:, -1])
        return out

    def join_params(self, parts: list[np.ndarray]) -> np.ndarray:
        """The inverse of :meth:`split_params`."""
        if isinstance(self.granularity, PerTensor | PerAxis):
            return np.asarray(parts[0]).reshape(self.scale_shape)
        per_row = np.empty((self.rows, self.scale_shape[-1]), dtype=np.asarray(parts[0]).dtype)
        i = 0
        if self.full_groups:
            per_row[:, : self.full_groups] = np.asarray(parts[0]).reshape(self.rows, -1)
            i = 1
        if self.tail:
            per_row[:, -1] = parts[i]
        return per_row.reshape(self.scale_shape)

    @cached_property
    def block_widths(self) -> list[int]:
        """The group length of each block that :meth:`blocks` returns."""
        if int(np.prod(self.shape)) == 0:
            return []
        if isinstance(self.granularity, PerGroup):
            return [self.group_size] * bool(self.full_groups) + [self.tail] * bool(self.tail)
        return [self.group_size]

    def expand(self, p: np.ndarray) -> np.ndarray:
        """Per-group parameters broadcast to one value per element (for reports and plots)."""
        parts = self.split_params(p)
        blocks = [
            np.repeat(part[:, None], width, axis=1)
            for part, width in zip(parts, self.block_widths, strict=True)
        ]
        return self.assemble(blocks, dtype=np.asarray(p).dtype)

    def _moved_shape(self) -> tuple[int, ...]:
        if isinstance(self.granularity, PerAxis):
            rest = [n for i, n in enumerate(self.shape) if i != self.axis]
            return (self.shape[self.axis], *rest)
        rest = [n for i, n in enumerate(self.shape) if i != self.axis]
        return (*rest, self.length)
