"""Array: Python's operators computing in a format, each result rounded once."""

from __future__ import annotations

import numpy as np
import pytest

import numfmt.arith as arith
from numfmt.errors import NumfmtError


def test_operators_round_after_every_operation():
    ctx = arith.Context("bf16", rounding="down")
    x = ctx.array(np.array([1.0, 3.0, 0.1]))
    y = np.array([2.0**-60, 0.1, 3.0])
    assert (x + y).values.tolist() == arith.add(x.values, y, "bf16", rounding="down").tolist()
    assert (y - x).values.tolist() == arith.sub(y, x.values, "bf16", rounding="down").tolist()
    assert (x * y).values.tolist() == arith.mul(x.values, y, "bf16", rounding="down").tolist()
    assert (1 / x).values.tolist() == arith.div(1.0, x.values, "bf16", rounding="down").tolist()
    assert x.sqrt().values.tolist() == arith.sqrt(x.values, "bf16", rounding="down").tolist()
    assert (-x).values.tolist() == (-x.values).tolist()
    assert abs(-x).values.tolist() == x.values.tolist()
    assert ctx.flags.inexact > 0


def test_values_go_into_the_format_once():
    x = arith.Array([0.1], "fp16")
    assert x.values.tolist() == [0.0999755859375]
    assert (x + 0.0).values.tolist() == [0.0999755859375]


def test_association_in_fp16():
    x = arith.Array([0.5, 512.0, 512.5], "fp16")
    assert ((x[0] + x[1]) + x[2]).item() == 1025.0
    assert (x[0] + (x[1] + x[2])).item() == 1024.0


def test_matmul_rounds_products_and_sums():
    ctx = arith.Context("fp16")
    a = ctx.array(np.array([[1.0, 2.0**-11], [3.0, 4.0]]))
    v = ctx.array(np.array([1.0, 1.0]))
    out = a @ v
    assert out.values.tolist() == [1.0, 7.0]  # 1 + 2^-11 is a tie: even keeps 1
    assert out.values.tolist() == [float(arith.dot(row, v.values, "fp16")) for row in a.values]
    with pytest.raises(NumfmtError, match="cannot multiply"):
        a @ ctx.array(np.ones(3))


def test_formats_do_not_mix_silently():
    with pytest.raises(NumfmtError, match="put one into the other's format"):
        arith.Array([1.0], "fp16") + arith.Array([1.0], "bf16")


def test_torch_values_stay_torch():
    torch = pytest.importorskip("torch")
    x = arith.Array(torch.tensor([1.0, 2.0]), "bf16")
    y = x * torch.tensor([0.1, 0.1])
    assert isinstance(y.values, torch.Tensor) and y.values.dtype == torch.float32


def test_numpy_functions_refuse_rather_than_leave_the_format():
    x = arith.Array([1.0, 2.0], "bf16")
    with pytest.raises(TypeError):
        np.add(x, x)
    assert float(np.sum(x).item()) == 3.0  # np.sum comes to Array.sum
    assert (np.float32(1.0) + x).values.tolist() == [2.0, 3.0]
    with pytest.raises(NumfmtError, match="vectors and matrices"):
        arith.Array(np.ones((2, 2, 2)), "bf16") @ arith.Array(np.ones((2, 2)), "bf16")
