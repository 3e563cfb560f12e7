"""numfmt quantize and numfmt plot: outputs, files, and one-line errors."""

import json

import numpy as np
import pytest
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.tensorio import load_tensor


@pytest.fixture
def weights(tmp_path):
    p = tmp_path / "w.npy"
    np.save(p, np.random.default_rng(0).standard_normal((64, 576)).astype(np.float32))
    return p


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_quantize_report(weights):
    r = run(
        "quantize",
        weights,
        "--bits",
        "4",
        "--scheme",
        "asym",
        "--granularity",
        "group:128",
        "--method",
        "mse",
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["quantized"]["scheme"] == "int4/asym/group:128/mse"
    assert d["quantized"]["bits_per_value"] == pytest.approx(4 + 5 * 36 / 576)
    assert 15 < d["report"]["sqnr_db"] < 25
    assert d["report"]["per_group"]["sqnr_db"]["groups"] == 64 * 5
    text = run("quantize", weights, "-b", "4").stdout
    assert "SQNR" in text and "bits per value" in text


def test_quantize_formats_and_presets(weights):
    for target in ["fp8_e4m3", "mxfp4", "nvfp4", "nf4", "mxfp6"]:
        r = run("quantize", weights, "-f", target, "--json")
        assert r.exit_code == 0, r.output
        assert json.loads(r.stdout)["report"]["cosine"] > 0.98


def test_compare(weights):
    r = run(
        "quantize", weights, "--compare", "int8,int4/group:128/scale:fp16", "-c", "nf4", "--json"
    )
    rows = json.loads(r.stdout)["schemes"]
    assert [row["scheme"] for row in rows] == [
        "int8",
        "int4/group:128/scale:float16",
        "nf4",
    ]
    assert rows[1]["bits_per_value"] == pytest.approx(4 + 5 * 16 / 576)


def test_out_writes_codes_scales_and_zero_points(weights, tmp_path):
    out = tmp_path / "w.int4.safetensors"
    r = run("quantize", weights, "-b", "4", "-s", "asym", "-g", "group:128", "--out", out)
    assert r.exit_code == 0 and f"wrote {out}" in r.stderr
    _, codes = load_tensor(out, "w.codes")
    _, scale = load_tensor(out, "w.scale")
    _, zero = load_tensor(out, "w.zero_point")
    assert codes.dtype == np.uint8 and codes.size == 64 * 576 // 2
    assert scale.shape == (64, 5) and zero.shape == (64, 5)
    again = run("quantize", weights, "-b", "4", "--out", out)
    assert again.exit_code == 2 and "does not overwrite" in again.stderr


def test_out_is_the_librarys_file_format(weights, tmp_path):
    from numfmt.quant import load, quantize_tensor

    out = tmp_path / "w.q4_1.safetensors"
    assert run("quantize", weights, "-f", "q4_1", "--out", out, "--order", "torchao").exit_code == 0
    back = load(out)
    x = np.load(weights)
    same = quantize_tensor(x, "q4_1")
    assert back.scheme == same.scheme and np.array_equal(back.codes, same.codes)
    assert np.array_equal(back.dequantize(), same.dequantize())


def test_an_all_zero_tensor_is_quantized_not_refused(tmp_path):
    np.save(tmp_path / "z.npy", np.zeros((4, 64), np.float32))
    r = run("quantize", tmp_path / "z.npy", "-b", "4", "-g", "group:32", "--json")
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["report"]["sqnr_db"] is None and d["report"]["mse"] == 0.0
    assert d["quantized"]["qparams"]["scale"]["max"] == 0.0


def test_the_view_shows_scales_zero_points_and_worked_elements(weights):
    text = run("quantize", weights, "-b", "4", "-s", "asym", "-g", "group:128").stdout
    assert "zero point" in text and "scale" in text and "worked through" in text
    assert "4-bit (held in uint8" in text  # an int4 scheme is not shown as int8 codes
    assert all(line == line.rstrip() for line in text.splitlines())  # no trailing spaces
    d = json.loads(run("quantize", weights, "-b", "4", "--json").stdout)
    sample = d["samples"][0]
    assert sample["value"] == pytest.approx(sample["code"] * sample["scale"])
    assert d["quantized"]["code_bits"] == 4 and d["quantized"]["code_dtype"] == "int8"


def test_token_min_and_wide_integer_schemes(weights):
    r = run("quantize", weights, "-b", "8", "-g", "token", "--json")
    assert json.loads(r.stdout)["quantized"]["scheme"] == "int8/token"
    r = run("quantize", weights, "-b", "4", "-s", "min", "-g", "group:32", "--json")
    assert json.loads(r.stdout)["quantized"]["scheme"] == "int4/min/group:32"
    r = run("quantize", weights, "-b", "24", "--json")
    assert json.loads(r.stdout)["report"]["sqnr_db"] > 130


def test_a_scale_that_does_not_fit_is_one_warning_line(tmp_path):
    np.save(tmp_path / "big.npy", np.array([1e8, -3.0, 0.5]))
    r = run("quantize", tmp_path / "big.npy", "--scale-format", "fp16", "--json")
    assert r.exit_code == 0
    assert r.stderr.startswith("warning: 1 of 1 scales do not fit float16")
    assert json.loads(r.stdout)["report"]["clipped_fraction"] > 0.3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["quantize", "missing.npy"], "no such file"),
        (["quantize", "{w}", "-g", "rows"], "unknown granularity"),
        (["quantize", "{w}", "-m", "magic"], "unknown calibration method"),
        (["quantize", "{w}", "-f", "fp8_e4m3", "-s", "asym"], "symmetric grid"),
        (["quantize", "{w}", "-c", "int8", "--out", "x.safetensors"], "drop --compare"),
        (["quantize", "{w}", "-c", "int8/oops"], "cannot read 'oops'"),
        (["quantize", "{w}", "--out", "x.bin"], "must end in .safetensors"),
        (["quantize", "{w}", "--out", "{w}"], "never writes over its input"),
        (["quantize", "{w}", "--out", "/proc/nope/w.safetensors"], "cannot write"),
        (["quantize", "{w}", "-m", "search"], "unknown calibration method"),
        (["quantize", "{empty}"], "empty"),
        (["quantize", "{nan}"], "NaN or infinite"),
        (["quantize", "{w}", "-t", "nope"], "has no tensor"),
    ],
)
def test_bad_input_gets_one_line_and_status_2(weights, tmp_path, args, message):
    np.save(tmp_path / "zeros.npy", np.zeros((4, 4)))
    np.save(tmp_path / "empty.npy", np.zeros((0, 4)))
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan]))
    np.savez(tmp_path / "m.npz", w=np.ones(3))
    paths = {
        "w": weights,
        "zeros": tmp_path / "zeros.npy",
        "empty": tmp_path / "empty.npy",
        "nan": tmp_path / "nan.npy",
    }
    args = [a.format(**paths) for a in args]
    if "-t" in args:
        args[1] = str(tmp_path / "m.npz")
    r = run(*args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["error-curve", "--dist", "outliers", "--bits", "2,4,8"],
        ["clipping", "{w}", "--scheme", "int4/channel", "--ratios", "20"],
        ["grid", "--dist", "laplace", "--scheme", "int4/asym"],
        ["ranges"],
        ["rel-error", "--format", "bf16"],
    ],
)
def test_plot_commands_draw_files(weights, tmp_path, args):
    pytest.importorskip("matplotlib")
    out = tmp_path / "figure.png"
    r = run("plot", *[a.format(w=weights) for a in args], "--out", out)
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 5000
    again = run("plot", *[a.format(w=weights) for a in args], "--out", out)
    assert again.exit_code == 2 and "does not overwrite" in again.stderr


def test_plot_refusals(tmp_path):
    assert "draw to a .png" in run("plot", "ranges", "--out", tmp_path / "x.txt").stderr
    r = run("plot", "rel-error", "--format", "int8", "--out", tmp_path / "x.png")
    assert r.exit_code == 2 and "float formats" in r.stderr
    r = run("plot", "grid", "--dist", "normal", "--bits", "3", "--out", tmp_path / "y.png")
    assert r.exit_code == 2


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("w.npy", b"hello\n", "not a .npy file (no NumPy magic header): it is a text file"),
        ("w.npz", b"hello\n", "not an .npz file (not a zip archive): it is a text file"),
        ("w.safetensors", b"hello\n", "not a safetensors file"),
        ("w.safetensors", b"\x10" + b"\0" * 7 + b'{"a": 1}', "not a readable safetensors file"),
        ("obj.npy", None, "holds Python objects (a pickled array), not numbers"),
    ],
    ids=["text-npy", "text-npz", "text-safetensors", "bad-safetensors-header", "pickled"],
)
@pytest.mark.parametrize("command", [["quantize"], ["plot", "grid"]])
def test_a_file_that_is_no_tensor_file_gets_one_line(tmp_path, name, content, message, command):
    p = tmp_path / name
    if content is None:
        np.save(p, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    else:
        p.write_bytes(content)
    extra = ["--out", tmp_path / "x.png"] if command[0] == "plot" else []
    r = run(*command, p, *extra)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.stderr
    assert "allow_pickle" not in r.stderr and len(r.stderr.strip().splitlines()) == 1


# numfmt quantize --values: numbers typed on the command line (issue 18)


def test_values_are_quantized_as_a_file_of_them_would_be(tmp_path):
    np.save(tmp_path / "three.npy", np.array([1.5, -0.5, 3.0]))
    for options in (["-b", "4"], ["-b", "3", "-s", "asym", "-m", "mse"], ["-f", "nf4"]):
        typed = run("quantize", "--values", "1.5,-0.5,3", *options, "--json")
        filed = run("quantize", tmp_path / "three.npy", *options, "--json")
        assert typed.exit_code == 0, typed.output
        a, b = json.loads(typed.stdout), json.loads(filed.stdout)
        assert a["tensor"] == "values" and b["tensor"] == "three"
        assert (a["quantized"], a["report"], a["samples"]) == (
            b["quantized"],
            b["report"],
            b["samples"],
        )


def test_values_are_read_by_the_exact_number_parser(tmp_path):
    typed = " 1/3, 2^-10 ,0x1.8p3,-0, 0b1.1, 1e-3 "
    np.save(tmp_path / "v.npy", np.array([1 / 3, 2**-10, 12.0, -0.0, 1.5, 1e-3]))
    a = run("quantize", "--values", typed, "-b", "4", "-g", "group:2", "--json")
    b = run("quantize", tmp_path / "v.npy", "-b", "4", "-g", "group:2", "--json")
    assert a.exit_code == 0, a.output
    a, b = json.loads(a.stdout), json.loads(b.stdout)
    assert a["quantized"]["shape"] == [6]
    assert (a["quantized"], a["report"]) == (b["quantized"], b["report"])


def test_negative_values_first_need_no_equals_sign():
    r = run("quantize", "--values", "-1.5,2", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["quantized"]["shape"] == [2]


def test_values_with_compare_and_out(tmp_path):
    r = run("quantize", "--values", "0.1,1/3,2^-10,100", "--compare", "int8,fp8_e4m3,nf4", "--json")
    assert r.exit_code == 0, r.output
    assert [row["scheme"] for row in json.loads(r.stdout)["schemes"]] == [
        "int8",
        "fp8_e4m3",
        "nf4",
    ]
    out = tmp_path / "v.safetensors"
    r = run("quantize", "--values", "1,-2,0.5", "-b", "4", "-s", "asym", "--out", out)
    assert r.exit_code == 0 and f"wrote {out}" in r.stderr
    from numfmt.quant import load

    qt = load(out)
    assert qt.shape == (3,) and str(qt.scheme) == "int4/asym"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--values", ""], "--values: no numbers given"),
        (["--values", " , "], "--values: no numbers given"),
        (["--values", "1,,2"], "--values: '1,,2' has an empty place between commas"),
        (["--values", "1,abc"], "--values: cannot read 'abc' as a number; accepted forms"),
        (["--values", "1e400,1"], "--values: 1e+400 is beyond float64's range"),
        (
            ["--values", "nan,1"],
            "holds 1 NaN or infinite value of 2; drop it, or give --nan-policy omit",
        ),
        (["--values", "inf,-inf,1"], "holds 2 NaN or infinite values of 3"),
        (["--values", "nan,inf", "--nan-policy", "omit"], "holds only NaN and infinities"),
        (["--values", "1", "{w}"], "give a tensor file or --values, not both"),
        ([], "give a tensor file, or numbers with --values"),
        (["--values", "1,2", "-t", "w"], "--tensor chooses a tensor in a file"),
        (["--values", "1,2", "-c", "int8", "--out", "x.safetensors"], "drop --compare"),
    ],
    ids=[
        "empty",
        "only-commas",
        "empty-place",
        "malformed",
        "too-big",
        "nan",
        "infinities",
        "nothing-left",
        "both",
        "neither",
        "tensor",
        "compare-out",
    ],
)
def test_bad_values_get_one_line_and_status_2(weights, args, message):
    r = run("quantize", *[a.format(w=weights) for a in args])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and "nan_policy=" not in r.stderr


def test_a_nan_in_a_file_is_refused_in_the_commands_words(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan, 3.0]))
    r = run("quantize", tmp_path / "nan.npy")
    assert r.exit_code == 2 and "give --nan-policy omit" in r.stderr
    assert "nan_policy=" not in r.stderr  # the library's keyword, which the command has not
    assert run("quantize", tmp_path / "nan.npy", "--nan-policy", "omit").exit_code == 0


def test_quantize_help_teaches_values():
    text = run("quantize", "--help").stdout
    assert "--values NUMBERS" in text and 'numfmt quantize --values "1.5,-0.5,3"' in text
    assert "[TENSOR_FILE]" in text


def test_out_refuses_an_order_the_codes_cannot_take_before_reporting(tmp_path):
    np.save(tmp_path / "w.npy", np.linspace(-1, 1, 50, dtype=np.float32))
    out = tmp_path / "w.safetensors"
    r = run("quantize", tmp_path / "w.npy", "-b", "4", "--order", "ggml", "--out", out)
    assert r.exit_code == 2 and "blocks of 32" in r.stderr and r.stdout == ""
    assert not out.exists()


def test_elements_left_out_by_nan_policy_omit_are_shown_as_omitted():
    from numfmt.quant import quantize_tensor

    x = np.array([np.nan, 1, 2, 3, -1, 0.5, np.inf, 7], dtype=np.float32)
    rows = quantize_tensor(x, "int4/asym", nan_policy="omit").samples(x)
    assert (
        rows[0]["omitted"]
        and np.isnan(rows[0]["x"])
        and rows[0].keys() == {"index", "x", "omitted"}
    )
    assert [r["index"] for r in rows[1:3]] == [[7], [4]]  # the largest and smallest finite
    assert all("omitted" not in r and np.isfinite(r["value"] - r["x"]) for r in rows[1:])
    r = run("quantize", "--values", "nan,1,2,3,-1,0.5,inf,7", "-b", "4", "--nan-policy", "omit")
    assert r.exit_code == 0 and "omitted" in r.stdout, r.output
    first = r.stdout.split("worked through")[1].splitlines()[2]
    assert first.split() == ["[0]", "nan", "-", "-", "-", "omitted"]  # code, scale, value


# options a format fixes, scheme options with --compare, --order without --out, values too
# large to measure: refused in one line, never dropped


def _refused(r, message):
    assert r.exit_code == 2, r.output
    assert message in r.stderr, r.stderr
    assert r.stderr.count("Error:") == 1 and len(r.stderr.strip().splitlines()) == 1
    assert r.stdout == "" and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["-f", "mxfp4", "--scale-format", "float16", "-g", "group:16", "-s", "asym"],
            "-f mxfp4 fixes its own granularity (group:32, not group:16), mapping (sym, not "
            "asym) and scale format (float8_e8m0fnu, not float16): drop -g/--granularity, "
            "-s/--scheme and --scale-format",
        ),
        (["-f", "q4_0", "-s", "min"], "-f q4_0 fixes its own mapping (sym, not min): drop -s"),
        (["-f", "nf4", "-g", "group:128"], "granularity (group:64, not group:128)"),
        (["-f", "q8_0", "--full"], "code range (-127..127, not -128..127): drop --full"),
        (["-b", "8", "-f", "nf4"], "-b 8 conflicts with -f nf4, whose codes are 4-bit"),
        (["-f", "int8", "-b", "4"], "-b 4 conflicts with -f int8, whose codes are 8-bit"),
        (["-f", "fp8_e4m3", "-b", "4"], "-b 4 conflicts with -f fp8_e4m3, whose codes are 8-bit"),
        (["-f", "fp8_e4m3", "--full"], "-f fp8_e4m3 is not an integer grid: drop --full"),
        (["-f", "mxfp4", "--full"], "-f mxfp4 is not an integer grid"),
        (["-s", "asym", "--full"], "-s asym codes already run from 0 to 2^b - 1"),
        (["-f", "uint8", "-s", "sym"], "uint8 codes are unsigned"),
        (["-f", "q4_0", "-m", "mse"], "reference quantizer"),
        (
            ["-c", "int8,int4", "-m", "mse", "-b", "2", "-g", "group:32", "--full"],
            "--compare takes whole schemes, so -b/--bits, -g/--granularity, -m/--method and "
            "--full would apply to none of them: write each scheme in full in the list "
            "(e.g. int4/asym/group:32/mse)",
        ),
        (["-c", "int8", "-f", "nf4"], "so -f/--format would apply to none"),
        (["-c", "int8", "--scale-format", "fp16"], "so --scale-format would apply"),
        (["-c", "int8", "-r", "stochastic"], "so -r/--rounding would apply"),
        (["-c", "int8", "-s", "sym"], "so -s/--scheme would apply"),  # even its default
        (["--order", "high_first"], "--order says how --out packs the codes: give --out too"),
        (["-c", "int8", "--order", "ggml"], "--order says how --out packs the codes"),
        (["-c", "int4/group:32/group:64"], "gives the granularity twice (group:32 and group:64)"),
    ],
)
def test_options_that_would_be_dropped_are_refused(weights, args, message):
    _refused(run("quantize", weights, *args), message)


@pytest.mark.parametrize(
    ("args", "scheme"),
    [
        (["-b", "4", "-f", "nf4"], "nf4"),  # the width nf4 has: nothing is lost
        (["-f", "mxfp4", "-g", "group:32", "-s", "sym"], "mxfp4"),  # what mxfp4 fixes anyway
        (["-f", "q4_0", "--full"], "q4_0"),  # q4_0's codes run from -8 already
        (["-f", "mxfp4", "-m", "mse", "-r", "stochastic"], "mxfp4/mse/stochastic"),
        (["-f", "fp8_e4m3", "-g", "group:32", "--scale-format", "fp16"], None),
        (["-f", "int4", "-s", "asym", "-g", "channel"], "int4/asym/channel"),
        (["-f", "uint8"], "int8/asym"),  # was int8: -s's default replaced uint8's mapping
    ],
)
def test_options_a_format_can_take_are_applied(weights, args, scheme):
    r = run("quantize", weights, *args, "--json")
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)["quantized"]["scheme"]
    assert got == (scheme or "fp8_e4m3/group:32/scale:float16")


def test_order_with_out_is_taken(weights, tmp_path):
    out = tmp_path / "w.safetensors"
    r = run("quantize", weights, "-b", "4", "--order", "high_first", "--out", out)
    assert r.exit_code == 0 and out.exists(), r.output


@pytest.mark.parametrize(
    "args",
    [
        ["--values", "1e300,1"],
        ["--values", "1e300,1", "-f", "mxfp4"],
        ["--values", "1e300,1", "--scale-format", "float64"],
        ["--values", "-1e200,1e200", "--compare", "int8,nf4"],
        ["{huge}"],
        ["{many}", "-g", "group:100"],
        ["{nan}", "--nan-policy", "omit"],
    ],
)
def test_values_too_large_to_measure_are_one_line_not_inf_and_nan(tmp_path, args):
    np.save(tmp_path / "huge.npy", np.array([1.0, -3e250, 2.0]))
    np.save(tmp_path / "many.npy", np.full(1000, 1e153))  # each square fits, the sum not
    np.save(tmp_path / "nan.npy", np.array([np.nan, 1e300, 1.0]))
    paths = {k: tmp_path / f"{k}.npy" for k in ("huge", "many", "nan")}
    r = run("quantize", *[a.format(**paths) for a in args])
    _refused(r, "holds values too large to measure")
    assert "beyond about 1e154 in magnitude" in r.stderr


def test_values_just_small_enough_are_reported_finitely():
    r = run("quantize", "--values", "1e154,-1", "--scale-format", "float64", "--json")
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)["report"]
    assert all(
        v is None or np.isfinite(v) for k, v in report.items() if isinstance(v, float | None)
    )
    assert "warning" not in r.stderr


def test_a_big_endian_npy_reads_as_the_same_numbers(tmp_path):
    x = np.linspace(-1, 1, 64)
    np.save(tmp_path / "be.npy", x.astype(">f4"))
    np.save(tmp_path / "le.npy", x.astype("<f4"))
    big, little = (run("quantize", tmp_path / f, "-b", "4", "--json") for f in ("be.npy", "le.npy"))
    assert big.exit_code == 0, big.output
    assert json.loads(big.stdout)["report"] == json.loads(little.stdout)["report"]
