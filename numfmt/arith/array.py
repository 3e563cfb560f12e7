"""An array that computes in a format: ``x + y`` means "in bf16" when x is one.

``Array(values, ctx)`` puts the values into the context's format (one rounding each); its
operators ``+ - * / @`` and unary minus round every result into the format, with the context's
rounding, overflow and subnormal settings, and count flags in the context. An operand that is
not an Array takes part exactly as given (its binary value). ``@`` is a matrix product whose
products are each rounded and then summed left to right, as ``numfmt.arith.dot`` does.

Example:
    >>> import numfmt.arith as arith
    >>> ctx = arith.Context("fp16")
    >>> x = arith.Array([0.5, 512.0, 512.5], ctx)
    >>> ((x[0] + x[1]) + x[2]).item(), (x[0] + (x[1] + x[2])).item()
    (1025.0, 1024.0)
"""

from __future__ import annotations

import numpy as np

from numfmt.arith import elementwise, sums
from numfmt.arith.context import Context
from numfmt.errors import NumfmtError


class Array:
    """Values of a format, whose arithmetic stays in that format (see the module docstring).

    Args:
        values: numbers, a numpy array or a torch tensor.
        ctx: the Context (or a format name, for a context with the default settings).
    """

    __array_priority__ = 100  # numpy defers to our operators: np.float32(1) + x is an Array
    # numpy's functions would compute in float64 and leave the format: they refuse instead
    __array_ufunc__ = None

    def __init__(self, values, ctx: Context | str, *, _rounded: bool = False):
        self.ctx = ctx if isinstance(ctx, Context) else Context(ctx)
        self.values = values if _rounded else elementwise.apply("round", (values,), self.ctx)

    def _wrap(self, values) -> Array:
        return Array(values, self.ctx, _rounded=True)

    def _other(self, other):
        if isinstance(other, Array):
            if other.ctx.fmt != self.ctx.fmt:
                raise NumfmtError(
                    f"an Array in {self.ctx.fmt.name} meets one in {other.ctx.fmt.name}: "
                    "put one into the other's format first (Array(x.values, ctx))"
                )
            return other.values
        return other

    def _op(self, name, *operands):
        return self._wrap(elementwise.apply(name, operands, self.ctx))

    def __add__(self, other):
        return self._op("add", self.values, self._other(other))

    def __radd__(self, other):
        return self._op("add", self._other(other), self.values)

    def __sub__(self, other):
        return self._op("sub", self.values, self._other(other))

    def __rsub__(self, other):
        return self._op("sub", self._other(other), self.values)

    def __mul__(self, other):
        return self._op("mul", self.values, self._other(other))

    def __rmul__(self, other):
        return self._op("mul", self._other(other), self.values)

    def __truediv__(self, other):
        return self._op("div", self.values, self._other(other))

    def __rtruediv__(self, other):
        return self._op("div", self._other(other), self.values)

    def __neg__(self):
        return self._op("neg", self.values)

    def __abs__(self):
        return self._op("abs", self.values)

    def __matmul__(self, other):
        return self._wrap(_matmul(self.values, self._other(other), self.ctx))

    def __rmatmul__(self, other):
        return self._wrap(_matmul(self._other(other), self.values, self.ctx))

    def sqrt(self) -> Array:
        return self._op("sqrt", self.values)

    def fma(self, b, c) -> Array:
        """self * b + c with one rounding."""
        return self._op("fma", self.values, self._other(b), self._other(c))

    def sum(self, order: str = "sequential", axis: int | None = -1, dtype=None, out=None) -> Array:
        """The sum along an axis (None: of every value), every addition rounded, in the
        order given. (``np.sum(x)`` comes here; it takes no dtype or out.)"""
        if dtype is not None or out is not None:
            raise NumfmtError("an Array sums in its own format: no dtype or out")
        return self._wrap(sums.sum(self.values, self.ctx, order=order, axis=axis))

    def __getitem__(self, index) -> Array:
        return self._wrap(self.values[index])

    def __len__(self) -> int:
        return len(self.values)

    @property
    def shape(self):
        return np.shape(self.values)

    def item(self) -> float:
        return float(np.asarray(self.values).item())

    def __array__(self, dtype=None, copy=None):
        return np.asarray(self.values, dtype=dtype)

    def __repr__(self) -> str:
        return f"Array({np.asarray(self.values)!r}, {self.ctx.fmt.name})"


def _matmul(a, b, ctx: Context):
    """a @ b (2-D or 1-D operands): each output a dot product, products rounded, then summed
    left to right in the format."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if not (1 <= x.ndim <= 2 and 1 <= y.ndim <= 2):
        raise NumfmtError(
            f"@ multiplies vectors and matrices (one or two dimensions), not shapes {x.shape} "
            f"and {y.shape}"
        )
    if x.shape[-1] != y.shape[0]:
        raise NumfmtError(f"@ cannot multiply shapes {x.shape} and {y.shape}")
    xs = x if x.ndim == 2 else x[None, :]
    ys = y if y.ndim == 2 else y[:, None]
    # every (row, column) pair: products laid out along the last axis
    products = xs[:, None, :] * np.ones((1, ys.shape[1], 1))
    terms = np.broadcast_to(ys.T[None, :, :], products.shape)
    out = sums.dot(products, terms, ctx, order="sequential", axis=-1)
    if x.ndim == 1:
        out = out[0]
    if y.ndim == 1:
        out = out[..., 0]
    return out
