"""Granularity: blocks of equal groups, ragged last groups, parameter layout."""

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import Grouping, PerAxis, PerGroup, PerTensor, parse_granularity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tensor", PerTensor()),
        ("channel", PerAxis(0)),
        ("channel:1", PerAxis(1)),
        ("axis:-1", PerAxis(-1)),
        ("group:128", PerGroup(128)),
        ("group:32:0", PerGroup(32, 0)),
    ],
)
def test_parse(text, expected):
    assert parse_granularity(text) == expected


@pytest.mark.parametrize("text", ["row", "group", "tensor:1", "channel:1:2", "group:0"])
def test_parse_refuses_nonsense(text):
    with pytest.raises(NumfmtError):
        parse_granularity(text)


def test_blocks_and_assembly_round_trip_for_every_granularity():
    x = np.arange(3 * 10 * 7, dtype=np.float64).reshape(3, 10, 7)
    for g in [
        PerTensor(),
        PerAxis(0),
        PerAxis(1),
        PerAxis(-1),
        PerGroup(4),
        PerGroup(3, 1),
        PerGroup(16),
    ]:
        grouping = Grouping(x.shape, g)
        blocks = grouping.blocks(x)
        assert np.array_equal(grouping.assemble(blocks), x)
        assert sum(b.size for b in blocks) == x.size
        assert [b.shape[1] for b in blocks] == grouping.block_widths


def test_ragged_last_group_has_its_own_scale_slot():
    # SmolLM2's hidden size: 576 = 4 x 128 + 64
    g = Grouping((2, 576), PerGroup(128))
    assert g.scale_shape == (2, 5) and g.num_groups == 10
    assert g.sizes.tolist() == [[128, 128, 128, 128, 64]] * 2
    x = np.arange(2 * 576).reshape(2, 576)
    full, tail = g.blocks(x)
    assert full.shape == (8, 128) and tail.shape == (2, 64)
    assert np.array_equal(tail[1], x[1, 512:])


def test_params_round_trip_and_expand():
    g = Grouping((3, 10), PerGroup(4))
    p = np.arange(9, dtype=np.float64).reshape(3, 3)
    assert np.array_equal(g.join_params(g.split_params(p)), p)
    expanded = g.expand(p)
    assert expanded[0].tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert expanded[2, -1] == 8


def test_per_axis_scale_layout():
    g = Grouping((4, 10), PerAxis(1))
    assert g.scale_shape == (10,)
    x = np.random.default_rng(0).standard_normal((4, 10))
    (block,) = g.blocks(x)
    assert np.array_equal(block, x.T)


def test_bad_axis():
    with pytest.raises(NumfmtError, match="out of range"):
        Grouping((4, 5), PerAxis(2))


def test_empty_tensor_has_no_blocks():
    assert Grouping((0, 5), PerGroup(4)).blocks(np.zeros((0, 5))) == []
