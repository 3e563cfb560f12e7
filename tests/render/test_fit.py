"""Every result's view at 80 columns, in ASCII and in cp1252: no line longer than the console,
no cell cut short with an ellipsis, no name, number or bit string split across lines."""

import importlib
import io

import numpy as np
import pytest
from rich.console import Console, Group
from rich.table import Table

import numfmt
from numfmt._display import _RENDERERS, text_view
from numfmt.render import VIEWS
from numfmt.render.fit import Fitted, fit

WIDTHS = [80, 100, 120]


def _table(*rows, wrap=()) -> Fitted:
    t = Table(title="a table")
    for header in ("name", "shape", "size", "what happened"):
        t.add_column(header)
    for row in rows:
        t.add_row(*row)
    return fit(t, wrap=wrap)


def _render(renderable, width: int, encoding: str = "utf-8") -> str:
    return text_view(renderable, width, encoding)


ROWS = [
    ("model.layers.0.self_attn.q_proj", "1536x576", "2.36 MB", "rounded up, then saturated"),
    ("float8_e4m3b11fnuz", "576x576", "663 kB", "underflow -> 0"),
]


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_a_fitted_table_keeps_every_cell_whole_at_any_width(width):
    text = _render(_table(*ROWS, wrap=("what happened",)), width)
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= width
    assert "…" not in text
    for name, shape, size, what in ROWS:
        for whole in (name, shape, size):
            assert any(whole in line for line in lines), (width, whole, text)
        for word in what.split():
            assert any(word in line for line in lines)


def test_the_layouts_go_from_framed_to_bare_to_blocks_as_the_console_narrows():
    wide = _render(_table(*ROWS), 120).splitlines()
    assert wide[1].startswith("┏") and "model.layers.0.self_attn.q_proj" in wide[4]
    narrowed = _render(_table(*ROWS, wrap=("what happened",)), 72)
    assert "│ rounded up,   │" in narrowed  # framed, the prose wrapped
    bare = _render(_table(*ROWS, wrap=("what happened",)), 64)
    assert "┃" not in bare and "│" not in bare
    lines = bare.splitlines()
    assert lines[1].split() == ["what"] and lines[2].split() == [
        "name",
        "shape",
        "size",
        "happened",
    ]
    assert lines[3].split() == [
        "model.layers.0.self_attn.q_proj",
        "1536x576",
        "2.36",
        "MB",
        "rounded",
        "up,",
    ]
    blocks = _render(_table(*ROWS), 40).splitlines()
    assert blocks[1] == "model.layers.0.self_attn.q_proj"
    assert blocks[2].startswith("  shape 1536x576   size 2.36 MB")


def test_a_fitted_table_left_alone_where_it_fits_is_what_rich_draws():
    t = Table()
    t.add_column("a")
    t.add_row("1")
    assert _render(fit(t), 80) == _render(t, 80)


# -- every result numfmt shows -----------------------------------------------------------------
def _quant():
    from numfmt.quant import compare_schemes, error_report, quantize_tensor
    from numfmt.quant.analysis import clipping_curve, format_ranges, grid_view
    from numfmt.quant.tensor import QuantizeResult

    x = np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
    qt = quantize_tensor(x, "int4/asym/group:64")
    report = error_report(x, qt.dequantize(), qparams=qt.qparams)
    return [
        compare_schemes(x, ["int8", "int4/group:128", "mxfp4", "nvfp4", "int4/scale:fp16/mse"]),
        QuantizeResult("weights", qt, report, tuple(qt.samples(x))),
        qt,
        report,
        clipping_curve(x, "int4"),
        grid_view(x, "int4/asym/group:64"),
        format_ranges(),
    ]


def _nn():
    from numfmt.eval.compare import EncoderComparison, EncoderRow, ModelComparison, RecipeRow
    from numfmt.eval.memory import MemoryEstimate
    from numfmt.eval.scoring import Score
    from numfmt.eval.sensitivity import Allocation, LayerCost, Sensitivity
    from numfmt.nn.algorithms.model_kl import ClipSearch, ClipStep
    from numfmt.nn.report import LayerRow, ModelReport

    layers = [
        LayerRow(
            f"model.layers.{i}.mlp.down_proj",
            "linear",
            (576, 1536),
            "int4/asym/group:128/scale:fp16",
            4.17,
            3_538_944,
            460_800,
            19.87,
            0.1012,
            0.0004,
        )
        for i in range(3)
    ]
    search = ClipSearch(
        "kind", (0.9, 0.95, 1.0), (ClipStep("down_proj", 30, 0.95, 0.48512),), 0.54, 1024, 31, 90.5
    )
    report = ModelReport(
        "int4/asym/group:128/scale:fp16",
        layers,
        [("lm_head", "the output head stays in float")],
        10_616_832,
        1_382_400,
        2_654_208,
        12.5,
        search,
    )
    rows = [
        RecipeRow(
            "int4/asym/group:128/scale:fp16",
            4.17,
            170_000_000,
            37.5,
            0.4765,
            0.636,
            6.4,
            307.0,
            20.26,
        ),
        RecipeRow("w8a8-tensor", 8.047, 220_000_000, 50.889, 0.66, 0.55, 6.2, 424.0, 13.41),
    ]
    comparison = ModelComparison(
        "smollm2-135m",
        511,
        512,
        rows,
        "I have a dream",
        [("w8a8-tensor", "I have a dream of creating a new world, and I'm excited")],
    )
    encoder = EncoderComparison(
        "minilm-l6",
        64,
        [EncoderRow("int4/group:32", 5.0, 18_000_000, 0.99871, 0.99512, 0.969, 1.2)],
    )
    costs = [
        LayerCost(
            f"model.layers.{i}.self_attn.q_proj",
            "linear",
            (576, 576),
            "int4/group:64",
            4.5,
            0.01234,
            25.9,
            0.97,
        )
        for i in range(3)
    ]
    allocation = Allocation(
        4.5,
        "int8/channel",
        ("model.layers.0.self_attn.q_proj",),
        "mixed",
        4.49,
        25.7,
        0.0101,
        4.5,
        26.1,
        0.0233,
    )
    sensitivity = Sensitivity("int4/group:64", costs, 25.46, 256, 30.0, allocation)
    return [
        report,
        Score("int4/group:128", 37.5, 3.62, 511, 0.4765, 0.636, 1.5),
        comparison,
        encoder,
        sensitivity,
        search,
        MemoryEstimate(8_000_000_000, "bfloat16", 16, 16_000_000_000, True, "a note"),
    ]


def _arith():
    import numpy as np

    from numfmt.arith import summation
    from numfmt.arith.calc import calc
    from numfmt.arith.matmul_error import matmul_error

    return [
        summation(np.full(3000, 0.1), "fp16", orders=("sequential", "pairwise", "blocked:64")),
        calc("fma(0.1, 3, -0.3) + sqrt(2) / 0", "bf16"),
        matmul_error(["fp32", "hopper-fp8-promote128"], k=256, m=4, n=4, dist="normal"),
    ]


def _training():
    """An optimizer's statistics after a step, and lesson 9's result made by hand."""
    import torch

    from numfmt.lessons.training import (
        RUNS,
        FormatRange,
        GradientHistogram,
        TrainingInFewerBits,
        TrainingRun,
    )
    from numfmt.nn.training import LowPrecisionOptimizer

    w = torch.nn.Parameter(torch.ones(4))
    opt = LowPrecisionOptimizer(torch.optim.Adam([w], lr=1e-3), "fp16", grads="fp16", state="bf16")
    w.grad = torch.tensor([1e-9, -2.0, 1e5, 0.5])
    opt.step()
    rows = tuple(
        TrainingRun(
            spec.name,
            spec.weights,
            spec.update,
            spec.grads,
            spec.loss_scaling,
            0.9511,
            0.1339,
            659,
            1,
            1_785_427,
            1_057_972,
            1_778_344,
            118,
            1,
            32768.0 if spec.loss_scaling else None,
            [(2.3, 0.1), (0.13, 0.95)],
        )
        for spec in RUNS
    )
    histogram = GradientHistogram(list(range(-31, 1)), [10] * 32, 509_216, 8.35e-10, 1.26)
    ranges = (
        FormatRange("float16", 2.0**-24, 2.0**-14, 65504.0, 1.3e-4, 0.033, 4, 7, 15),
        FormatRange("bfloat16", 2.0**-133, 2.0**-126, 3.3895e38, 0.0, 0.0, 0, -102, 127),
        FormatRange("float32", 2.0**-149, 2.0**-126, 3.4028e38, 0.0, 0.0, 0, -118, 127),
    )
    config = {"optimizer": "Adam", "lr": 1e-3, "epochs": 30, "test": 450, "init_scale": 2.0**16}
    return [opt.stats, TrainingInFewerBits(rows, histogram, ranges, config, 40.0)]


def _matmul():
    """Lesson 10's result: its curves and worked group on a small draw, the model part by
    hand (its layers' Ks, a row per matmul model)."""
    import dataclasses

    from numfmt.lessons.matmul import ModelRow, ModelRun, inside_the_matmul

    r = inside_the_matmul(model=None, ks=(32, 128, 512, 4096), m=2, n=2, progress=False)
    rows = (
        ModelRow(None, None, 23.36, None, None, 63, 1.4),
        ModelRow("blackwell-fp8", "row", 26.44, 0.0508, 0.873, 63, 48.2),
        ModelRow("hopper-fp8-promote128", "row", 26.06, 0.0475, 0.857, 63, 52.6),
    )
    name = "smollm2-135m, float32 decoded from its GGUF file (Q4_1, llama.cpp's 4-bit format)"
    run = ModelRun(name, 63, 64, rows, {576: 181, 1536: 30}, 160.0)
    return [r, dataclasses.replace(r, model=run, model_note=None)]


def _lessons(request):
    from numfmt.lessons import exercise, exercise_list
    from numfmt.lessons.catalog import lessons
    from numfmt.lessons.summary import SUMMARIES

    out = [lessons(), *(SUMMARIES[name]() for name in ("bits", "floats", "quantization"))]
    posed = exercise("matmul", 1, seed=3)  # the longest working
    out += [
        posed,
        posed.check("0"),
        exercise("floats", 1, seed=5, lang="es").check("0 10000100 0001001"),
    ]
    out += [exercise_list(), exercise_list("bits", lang="es")]
    out += _training()
    out += _matmul()
    if importlib.util.find_spec("sklearn") is not None:
        out += [request.getfixturevalue("ptq_qat"), request.getfixturevalue("walk")]
    return out


@pytest.fixture(scope="module")
def results(request):
    pytest.importorskip("torch")
    return [
        numfmt.show("3.14", "bf16"),
        numfmt.show("1e6", "fp8_e4m3"),
        numfmt.show("-5", "int8"),
        numfmt.show("0.1", "float64"),
        numfmt.compare("0.1"),
        numfmt.compare("70000", ["fp16", "bf16", "fp8_e4m3", "int8", "q3.4"]),
        numfmt.info("fp8_e4m3"),
        numfmt.table("fp4"),
        numfmt.formats_list(),
        *_arith(),
        *_quant(),
        *_nn(),
        *_lessons(request),
    ]


def test_every_kind_of_result_is_checked_here(results):
    for load in set(VIEWS.values()):
        load()
    shown = {type(r) for r in results}
    missing = [cls.__name__ for cls in _RENDERERS if cls not in shown]
    assert not missing, f"add an example of each to results(): {missing}"


def _tables(renderable, wrap=frozenset()):
    """Each table inside a view, with the headers of its columns of prose."""
    if isinstance(renderable, Fitted):
        yield renderable.table, renderable.wrap
    elif isinstance(renderable, Group):
        for part in renderable.renderables:
            yield from _tables(part)
    elif isinstance(renderable, Table):
        yield renderable, None
        for column in renderable.columns:
            for cell in column.cells:
                yield from _tables(cell)
    elif hasattr(renderable, "__rich__"):
        inner = renderable.__rich__()
        if inner is not renderable:
            yield from _tables(inner)


def _plain(cell) -> str:
    if isinstance(cell, Group):
        return "\n".join(_plain(part) for part in cell.renderables)
    return getattr(cell, "plain", None) or str(cell)


@pytest.mark.parametrize("width", WIDTHS)
def test_no_view_is_cut_or_split_at_this_width(results, width):
    wrong = []
    for result in results:
        text = _render(result, width)
        lines = text.splitlines()
        name = type(result).__name__
        if max(len(line) for line in lines) > width:
            wrong.append(f"{name}: a line longer than {width}")
        if "…" in text:
            wrong.append(f"{name}: cut with an ellipsis")
        for table, wrap in _tables(result):
            if wrap is None:  # a bare table: only a layout grid may be one
                if table.box is not None or table.show_header:
                    wrong.append(f"{name}: a table not laid out by fit()")
                continue
            for column in table.columns:
                prose = _plain(column.header) in wrap
                for cell in column.cells:
                    for piece in _plain(cell).split() if prose else [_plain(cell).strip()]:
                        if piece and not any(piece in line for line in lines):
                            wrong.append(f"{name}: {piece!r} split")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("encoding", ["ascii", "cp1252"])
def test_every_view_prints_on_a_console_that_is_not_utf8(results, encoding):
    for result in results:
        text = _render(result, 80, encoding)
        text.encode(encoding)  # raises if a character cannot be printed there
        # every character has a spelling: none fell back to '?'
        assert text.count("?") == _render(result, 80).count("?"), type(result).__name__
        if encoding == "ascii":
            assert text.isascii()
    walk = next(r for r in results if type(r).__name__ == "IntegerWalkthrough")
    assert "acc = sum (x - zero_x)" in _render(walk, 120, "ascii")


def test_str_of_a_model_report_keeps_its_shapes_whole(results):
    report = next(r for r in results if type(r).__name__ == "ModelReport")
    for width in (60, 80, 100):
        text = _render(report, width)
        assert text.count("576x1536") == 3, text


def test_a_console_that_prints_unicode_keeps_the_frames():
    text = _render(_table(*ROWS), 120, "utf-8")
    assert "┏" in text
    ascii_text = _render(_table(*ROWS), 120, "cp1252")
    assert ascii_text.splitlines()[1].startswith("+--")


def test_the_rich_console_measures_a_fitted_table_within_its_width():
    from rich.measure import Measurement

    console = Console(width=50, file=io.StringIO())

    m = Measurement.get(console, console.options, _table(*ROWS))
    assert m.maximum <= 50
