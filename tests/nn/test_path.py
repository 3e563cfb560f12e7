"""The one quantize path: a source's weights, the recipe's decision, a chooser, a sink; the
report built once. A toy source and sink show what the path asks of each."""

import pytest
import torch

from numfmt.nn.algorithms.chooser import RoundToNearest, chooser_for
from numfmt.nn.path import ModuleWeights, SwapLayers, Weight, quantize_weights
from numfmt.nn.quantize import quantize_model
from numfmt.nn.recipe import parse_recipe
from numfmt.quant import quantize_tensor


class ListSource:
    def __init__(self, items):
        self.items = items
        self.bytes_before = sum(i.nbytes for i in items)
        self.parameters = sum(i.tensor.numel() for i in items)

    def __len__(self):
        return len(self.items)

    def __iter__(self):
        return iter(self.items)


class Recorder:
    def __init__(self):
        self.quantized, self.kept = [], []

    def put(self, item, qt):
        self.quantized.append((item.name, str(qt.scheme)))
        return qt.nbytes

    def keep(self, item):
        self.kept.append(item.name)
        return item.nbytes // 2  # as if stored in half the width


def _weight(name, shape, kind, layer=True):
    t = torch.randn(*shape, generator=torch.Generator().manual_seed(len(name)))
    nbytes = t.numel() * 4
    if not layer:
        return Weight(name, t, nbytes)
    return Weight(f"{name}.weight", t, nbytes, layer=name, kind=kind)


def test_the_path_sends_each_weight_where_the_recipe_says_and_the_report_adds_up():
    items = [
        _weight("embed", (16, 64), "embedding"),
        _weight("q", (32, 64), "linear"),
        _weight("down", (64, 32), "linear"),
        _weight("norm", (64,), None, layer=False),
        _weight("lm_head", (16, 64), "linear"),
    ]
    sink = Recorder()
    recipe = parse_recipe({"down": "int8/channel", "*": "int4/group:32"})
    report = quantize_weights(ListSource(items), recipe, sink, RoundToNearest(), progress=False)
    assert sink.quantized == [("q.weight", "int4/group:32"), ("down.weight", "int8/channel")]
    assert sink.kept == ["embed.weight", "norm", "lm_head.weight"]
    assert dict(report.kept) == {
        "embed": "embeddings are left in float unless kinds includes them",
        "lm_head": "excluded by 'lm_head'",
    }
    kept_bytes = sum(i.nbytes for i in items if i.name in sink.kept)
    assert report.bytes_before == sum(i.nbytes for i in items)
    assert report.bytes_after == kept_bytes // 2 + sum(r.bytes_after for r in report.layers)
    assert [r.name for r in report.layers] == ["q", "down"] and report.recipe == str(recipe)


def test_a_chooser_gives_the_codes_and_round_to_nearest_is_the_engines():
    w = torch.randn(8, 64)
    qt = RoundToNearest().choose("x", w, parse_recipe("int4/group:32").scheme_for("x"))
    assert torch.equal(qt.codes, quantize_tensor(w, "int4/group:32").codes)
    with pytest.raises(Exception, match="give calibration"):
        chooser_for("gptq", None)
    with pytest.raises(Exception, match="the algorithm is one of"):
        chooser_for("awq", [torch.zeros(1, 4, dtype=torch.long)])


def test_the_model_source_and_layer_sink_are_quantize_model(tiny_llama, ids):
    import copy

    recipe = parse_recipe("int4/group:32")
    target = copy.deepcopy(tiny_llama)
    report = quantize_weights(
        ModuleWeights(target), recipe, SwapLayers(target, recipe, {}), RoundToNearest()
    )
    q, expected = quantize_model(tiny_llama, recipe, progress=False)
    assert [r.to_dict() | {"seconds": 0} for r in report.layers] == [
        r.to_dict() | {"seconds": 0} for r in expected.layers
    ]
    assert (report.bytes_before, report.bytes_after) == (
        expected.bytes_before,
        expected.bytes_after,
    )
    with torch.no_grad():
        assert torch.equal(target(ids).logits, q(ids).logits)


@pytest.mark.parametrize(
    ("kind", "tied", "expected"),
    [
        ("linear", False, ("int4/group:32", None)),
        ("embedding", False, (None, "embeddings are left in float unless kinds includes them")),
        ("conv1d", False, ("int4/group:32", None)),
    ],
)
def test_the_recipe_decides_each_layer(kind, tied, expected):
    scheme, why = parse_recipe("int4/group:32").decide("model.x", kind, tied=tied)
    assert (str(scheme) if scheme else None, why) == expected


def test_a_kept_layer_says_why_and_whether_it_is_tied():
    r = parse_recipe({"*.q": None, "*": "int8"})
    assert r.decide("a.q", "linear") == (None, "'*.q' keeps it in float")
    assert r.decide("lm_head", "linear", tied=True) == (
        None,
        "excluded by 'lm_head' (its weight is tied to another layer's)",
    )
    assert parse_recipe("fp32").decide("a.q", "linear") == (None, None)


def test_with_method_replaces_every_schemes_range_method():
    r = parse_recipe({"*.q": None, "*": "int4/group:32"}).with_method("mse")
    assert str(r.scheme_for("x")) == "int4/group:32/mse" and r.scheme_for("a.q") is None
    with pytest.raises(Exception, match="unknown calibration method 'guess'"):
        r.with_method("guess")
