"""``numfmt show`` in a pipe is laid out without rich: the same characters as rich's view."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import numfmt
from numfmt.cli.base import pipe_text
from numfmt.render.showtext import plain_show

FORMATS = [
    "bf16",
    "fp16",
    "fp32",
    "fp64",
    "fp8_e4m3",
    "fp8_e5m2",
    "fp4",
    "e8m0",
    "int8",
    "uint4",
    "int32",
    "q3.4",
    "e3m3fn",
]
VALUES = [
    "3.14",
    "-0",
    "0",
    "1e-40",
    "65504",
    "1e9",
    "-7.5",
    "nan",
    "inf",
    "0.1",
    "200",
    "-129",
    "1/3",
    "6e-8",
]


@pytest.mark.parametrize("fmt", FORMATS)
def test_plain_show_is_riches_text(fmt):
    compared = 0
    for value in VALUES:
        for overflow in (None, "saturate"):
            try:
                r = numfmt.show(value, fmt, overflow=overflow)
            except numfmt.NumfmtError:
                continue
            plain = plain_show(r)
            if plain is None:  # a layout only rich draws (wrapped lines, the policy table)
                continue
            assert plain == pipe_text(r), (fmt, value, overflow)
            compared += 1
    assert compared >= 3  # fp64 lines are often wider than a pipe: rich wraps those


@settings(max_examples=60, deadline=None)
@given(x=st.floats(allow_nan=False, width=64), fmt=st.sampled_from(FORMATS))
def test_plain_show_of_any_number_is_riches_text(x, fmt):
    try:
        r = numfmt.show(repr(x), fmt)
    except numfmt.NumfmtError:
        return
    plain = plain_show(r)
    if plain is not None:
        assert plain == pipe_text(r)


def test_show_in_a_pipe_loads_no_rich():
    import subprocess
    import sys

    code = (
        "import sys; from numfmt.cli import main; sys.argv = ['numfmt', 'show', '3.14', '-f', 'bf16'];\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('rich' in sys.modules, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip() == "False", done.stderr
    assert done.stdout.splitlines()[1].startswith("bits        0_10000000_1001001")
