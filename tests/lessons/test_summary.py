"""numfmt lesson bits|floats|quantization|beyond-rtn: each key result checked against an
independent computation (numpy's integers, ml_dtypes' floats, the formulas by hand)."""

import json
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.lessons import summary


def test_bits_agree_with_numpys_integers():
    s = summary.bits()
    codes = s.table("3 bits")
    assert codes.column("unsigned") == list(range(8))
    assert codes.column("two's complement") == [c - 8 if c >= 4 else c for c in range(8)]
    for n, count, umax, smin, smax in s.table("The usual widths").rows:
        info = np.iinfo(f"int{n}")
        assert (count, umax, smin, smax) == (2**n, np.iinfo(f"uint{n}").max, info.min, info.max)
    for value, fmt, wrapped, saturated in s.table("Overflow").rows:
        info = np.iinfo(fmt)
        assert wrapped == int(np.array(value).astype(np.int64).astype(fmt))  # numpy wraps
        assert saturated == min(max(value, info.min), info.max)
    memory = {fmt: gb for fmt, _, gb in s.table("An 8B").rows}
    assert memory == {"fp32": 32.0, "bf16": 16.0, "int8": 8.0, "int4": 4.0}


@pytest.mark.parametrize(
    "name, dtype",
    [
        ("fp16", np.float16),
        ("bf16", ml_dtypes.bfloat16),
        ("fp8_e4m3", ml_dtypes.float8_e4m3fn),
        ("fp8_e5m2", ml_dtypes.float8_e5m2),
        ("fp6_e2m3", ml_dtypes.float6_e2m3fn),
        ("fp4", ml_dtypes.float4_e2m1fn),
    ],
)
def test_float_layouts_agree_with_ml_dtypes(name, dtype):
    table = summary.floats().table("Layouts")
    row = dict(zip(table.columns, next(r for r in table.rows if r[0] == name), strict=True))
    info = ml_dtypes.finfo(dtype)
    assert row["max"] == float(info.max) and row["min normal"] == float(info.smallest_normal)
    assert row["epsilon"] == float(info.eps) and row["man"] == info.nmant


def test_fp16_against_bf16_on_the_same_numbers_agrees_with_casts():
    table = summary.floats().table("The same numbers")
    for value, f16, f16_err, b16, b16_err in table.rows:
        x = float(value)
        with np.errstate(over="ignore"):
            cast16 = float(np.float64(x).astype(np.float16))
        if np.isinf(cast16):
            assert f16 == "inf" and f16_err is None
        else:
            assert f16 == cast16 and f16_err == pytest.approx(abs(f16 - x) / x, rel=1e-6)
        assert b16 == float(np.float64(x).astype(ml_dtypes.bfloat16))
        assert b16_err == pytest.approx(abs(b16 - x) / x, rel=1e-6)
    assert table.rows[2][:2] == ("70000", "inf") and table.rows[2][3] == 70144.0


def test_quantization_by_hand():
    s = summary.quantization()
    asym = s.table("Asymmetric")
    x = np.array(asym.column("x"))
    scale = (x.max() - x.min()) / 255
    zero = round(-x.min() / scale)
    assert asym.column("code") == np.clip(np.round(x / scale) + zero, 0, 255).astype(int).tolist()
    assert "zero point 85" in asym.title
    sym = s.table("Symmetric")
    y = np.array(sym.column("x"))
    assert sym.column("code") == np.round(y / (np.abs(y).max() / 127)).astype(int).tolist()
    assert max(abs(e) for e in sym.column("error")) <= np.abs(y).max() / 127 / 2 + 1e-7
    rows = {r[0]: r for r in s.table("Schemes").rows}
    assert rows["int4"][2] < rows["int4/channel"][2] < rows["int4/group:128"][2] < rows["int8"][2]
    assert rows["nvfp4"][1] == pytest.approx(4.5, abs=0.01) and rows["mxfp4"][1] == 4.25


def test_beyond_rtn_lowers_the_output_error_not_the_weights():
    pytest.importorskip("torch")
    rows = {r[0].split(":")[0]: r[1:] for r in summary.beyond_rtn().tables[0].rows}
    minmax, mse = (
        rows["round to nearest, min-max ranges"],
        rows["round to nearest, weight-MSE ranges"],
    )
    gptq = rows["GPTQ, weighted ranges"]
    assert mse[0] < minmax[0] and mse[1] < minmax[1]
    assert rows["imatrix"][0] > mse[0] and rows["imatrix"][1] < mse[1]  # the trade
    assert gptq[0] > minmax[0] and gptq[1] < min(
        v[1] for k, v in rows.items() if k != "GPTQ, weighted ranges"
    )


@pytest.mark.parametrize("name", sorted(summary.SUMMARIES))
def test_each_summary_prints_and_gives_json(name):
    r = CliRunner().invoke(main, ["lesson", name, "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["lesson"] == name and data["tables"] and data["page"].startswith("docs/")
    text = CliRunner().invoke(main, ["lesson", name])
    assert text.exit_code == 0 and data["tables"][0]["title"] in text.stdout


def test_the_first_three_need_no_torch():
    code = (
        "import sys; from click.testing import CliRunner; from numfmt.cli import main\n"
        "for n in ('bits', 'floats', 'quantization'):\n"
        "    r = CliRunner().invoke(main, ['lesson', n]); assert r.exit_code == 0, r.output\n"
        "print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_arithmetic_numbers_agree_with_numpy_and_exact_sums():
    import numpy as np

    from numfmt.lessons.summary import arithmetic

    lesson = arithmetic()
    point = lesson.table("0.1 + 0.2")
    # fp32: numpy's own float32 addition is correctly rounded, as the lesson's is
    fp32 = point.rows[point.column("format").index("fp32")]
    assert fp32[3] == float(np.float32(0.1) + np.float32(0.2))
    assert lesson.table("Addition").column("result") == [1025.0, 1024.0]
    sums = lesson.table("Long sums")
    assert sums.column("stalls at")[:2] == [513, 65]
    assert sums.column("sequential")[:2] == [7.0859375, 5.0625]
    numpy_row = lesson.table("What np.sum")
    h = np.full(10_000, 0.1, dtype=np.float16)
    assert numpy_row.rows[0][1] == float(np.sum(h)) and numpy_row.rows[1][1] == 256.0
    for _, down, up, width in lesson.table("Rounding down").rows:
        assert down < up and width == up - down
