"""Lesson 9, training in fewer bits: the result's parts agree with each other and with the
formats, the command runs, and (slow) the full run shows the facts the page states."""

import json
import math

import pytest
import torch
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.lessons import training_in_fewer_bits
from numfmt.lessons.training import RUN_NAMES

SHORT = ["bf16-nearest", "mixed-fp16-scaled", "mixed-bf16"]


@pytest.fixture(scope="module")
def short():
    """One epoch of four runs (fp32 always runs): a few seconds."""
    return training_in_fewer_bits(runs=SHORT, epochs=1, progress=False)


def test_the_runs_are_those_asked_for_fp32_first(short):
    assert short.names == ["fp32", *SHORT]
    assert all(len(row.curve) == 1 and row.steps + row.skipped == 22 for row in short.rows)
    fp32 = short.run("fp32")
    assert (fp32.weights, fp32.grads, fp32.lost, fp32.underflowed) == ("float32", None, 0, 0)
    assert short.run("mixed-fp16-scaled").grads == "float16"
    assert short.run("mixed-bf16").grads == "bfloat16"
    assert short.run("mixed-fp16-scaled").final_scale in (2.0**16, 2.0**15)
    assert short.config["train"] == 1347 and short.config["epochs"] == 1
    with pytest.raises(NumfmtError, match="no run 'bf16-kahan'"):
        short.run("bf16-kahan")


def test_the_histogram_counts_every_nonzero_gradient_of_the_fp32_run(short):
    h, fp32 = short.histogram, short.run("fp32")
    assert h.nonzero == fp32.gradients
    assert h.nonzero + h.zeros == 22 * sum(a * b + b for a, b in [(64, 32), (32, 32), (32, 10)])
    assert h.exponents == list(range(h.exponents[0], h.exponents[-1] + 1))
    assert 2.0 ** h.exponents[0] <= h.smallest < 2.0 ** (h.exponents[0] + 1)
    assert 2.0 ** h.exponents[-1] <= h.largest < 2.0 ** (h.exponents[-1] + 1)


@pytest.mark.parametrize(
    "fmt, smallest, largest, overflows_at",
    [("fp16", 2.0**-24, 65504.0, 65520.0), ("bf16", 2.0**-133, 255 * 2.0**120, 511 * 2.0**119)],
    ids=["fp16", "bf16"],
)
def test_the_range_rows_follow_from_the_formats_and_the_gradients(
    short, fmt, smallest, largest, overflows_at
):
    """Each format's limits as lesson 2 gives them, and the loss scales that fit: the lowest
    power of two lifting the smallest gradient to the smallest subnormal, the highest keeping
    the largest below where rounding gives inf (the largest value plus half an ulp)."""
    r, h = short.range(fmt), short.histogram
    assert (r.smallest, r.largest) == (smallest, largest)
    assert h.smallest * 2.0**r.fit_low >= smallest > h.smallest * 2.0 ** (r.fit_low - 1)
    assert h.largest * 2.0**r.fit_high < overflows_at <= h.largest * 2.0 ** (r.fit_high + 1)
    assert r.binades == pytest.approx(math.log2(largest / smallest))
    below = sum(c for e, c in zip(h.exponents, h.counts, strict=True) if 2.0**e < smallest)
    assert r.below_smallest == below / h.nonzero


def test_json_and_the_view(short):
    d = json.loads(short.to_json())
    assert [row["name"] for row in d["rows"]] == short.names
    assert d["rows"][0]["curve"][0]["epoch"] == 1
    assert {r["format"] for r in d["ranges"]} == {"float16", "bfloat16", "float32"}
    assert d["histogram"]["counts"] == short.histogram.counts
    text = str(short)
    for name in short.names:
        assert name in text
    assert "2^-24" in text and "2^-133" in text and "scales that fit" in text


def test_the_lesson_leaves_torchs_threads_as_it_found_them():
    before = torch.get_num_threads()
    training_in_fewer_bits(runs=[], epochs=1, progress=False)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    "options, message",
    [
        ({"runs": ["bf16-odd"]}, "unknown run"),
        ({"epochs": 0}, "epochs"),
        ({"lr": math.nan}, "learning rate"),
        ({"batch": 0}, "batch"),
    ],
    ids=["unknown-run", "no-epochs", "nan-lr", "no-batch"],
)
def test_bad_input_is_one_clear_error(options, message):
    with pytest.raises(NumfmtError, match=message):
        training_in_fewer_bits(progress=False, **options)


def test_the_command_gives_json_without_progress_and_refuses_an_unknown_run():
    r = CliRunner().invoke(
        main, ["lesson", "training", "-r", "bf16-stochastic", "--epochs", "1", "--json"]
    )
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    assert [row["name"] for row in json.loads(r.stdout)["rows"]] == ["fp32", "bf16-stochastic"]
    bad = CliRunner().invoke(main, ["lesson", "training", "--runs", "bf16,fp8"])
    assert bad.exit_code == 2 and "'bf16' is not one" in bad.output


def test_the_command_draws_its_figure_and_never_overwrites(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "training.png"
    args = ["lesson", "training", "-r", "mixed-fp16-scaled", "--epochs", "1", "--plot", str(target)]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert r.stderr.splitlines()[0] == "training: the digits MLP 2 ways, 1 epoch each ..."
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2 and "exists" in again.output


@pytest.mark.slow
def test_the_full_run_shows_what_the_page_says():
    """The page's claims, with margins: bf16 nearest stalls (about twice the loss, a point
    of accuracy), stochastic rounding, Kahan and master weights follow float32; fp16
    gradients underflow without scaling and not with it; bf16's need nothing."""
    r = training_in_fewer_bits(progress=False)
    assert r.names == list(RUN_NAMES)
    run = {row.name: row for row in r.rows}
    base = run["fp32"]
    assert run["bf16-nearest"].loss > 1.5 * base.loss
    assert run["bf16-nearest"].accuracy < base.accuracy
    for name in ("bf16-stochastic", "bf16-kahan", "bf16-master", "mixed-bf16"):
        assert abs(run[name].loss - base.loss) < 0.1 * base.loss, name
        assert run[name].accuracy >= base.accuracy - 0.01, name
    assert run["bf16-nearest"].lost_share > 0.5
    assert run["mixed-fp16"].underflowed > 0 == run["mixed-fp16-scaled"].underflowed
    assert run["mixed-fp16-scaled"].skipped >= 1 and run["mixed-fp16-scaled"].final_scale < 2.0**16
    assert (run["mixed-bf16"].underflowed, run["mixed-bf16"].overflowed) == (0, 0)
    fp16, bf16 = r.range("fp16"), r.range("bf16")
    assert 0 < fp16.below_smallest < 0.001 and bf16.below_smallest == 0
    assert fp16.fit_high - fp16.fit_low < 16 and bf16.fit_low < 0 < bf16.fit_high
