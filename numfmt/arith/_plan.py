"""What the arithmetic kernels are given: their arrays, and what they know of the format they
round into.

Arrays reach them as read-only views (``read_only``): numba compiles a kernel for each kind
of array it meets, and a caller's arrays come either way (a broadcast view is read-only).

Of the format, three things, built once per call from the format, the rounding mode and the
overflow policy:

* ``plan``: ``numfmt.formats``' plan tuple (the format's fields, the mode, and the code each
  kind of special result becomes, or that the policy refuses it);
* ``fast``: what the fast path needs to round a float64 into the format on the float64's own
  bits: how many significand bits to cut, the lowest float64 exponent field of the format's
  normal values (beyond every field where the format has no mantissa bits), and the bits
  of its largest finite value;
* ``slot_values``: the value of the code the plan gives each special slot (a zero, an
  overflow, inf, NaN), so that the kernels return values rather than codes.
"""

from __future__ import annotations

from fractions import Fraction
from typing import NamedTuple

import numpy as np

from numfmt.formats import _core as fc
from numfmt.formats.decode import decode
from numfmt.formats.encode import make_plan
from numfmt.formats.types import FloatFormat


class KernelPlan(NamedTuple):
    plan: tuple
    fast: tuple
    slot_values: np.ndarray


def kernel_plan(fmt: FloatFormat, rounding, overflow) -> KernelPlan:
    plan = make_plan(fmt, rounding, overflow)
    # a format whose largest value is beyond float64's: every float64 result fits it
    largest = float(min(Fraction(fmt.max_value), Fraction(np.finfo(np.float64).max)))
    top = int(np.array(largest, dtype=np.float64).view(np.int64))
    low = max(fmt.emin + 1023, 1)
    if fmt.mantissa_bits == 0:
        # the last bit the fast path would see is the exponent's, while a tie rounds by the
        # significand's (its hidden 1): formats such as e8m0 all go the general way
        low = 0x800
    fast = (52 - fmt.mantissa_bits, low, top)
    slot_values = np.full(fc.PLAN_LEN, np.nan)
    mask = (1 << fmt.bits) - 1
    for slot in fc.SLOTS:
        if not (plan[fc.P_ERRORS] >> slot) & 1:
            code = np.array([plan[slot] & mask], dtype=fmt.code_dtype)
            slot_values[slot] = float(decode(code, fmt)[0])
    return KernelPlan(tuple(int(v) for v in plan), fast, slot_values)


def read_only(x: np.ndarray) -> np.ndarray:
    """A read-only view of x, the one kind of array the kernels are compiled for."""
    view = x.view()
    view.flags.writeable = False
    return view
