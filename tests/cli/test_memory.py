"""numfmt memory COUNT answers from the count alone: nothing of torch or transformers loads
(a MODEL still loads what it needs: tests/cli/test_model.py)."""

import subprocess
import sys

import pytest

HEAVY = ("torch", "transformers", "numba", "safetensors")


def _modules_after(*args: str) -> str:
    code = (
        f"import sys; sys.argv = ['numfmt', *{list(args)!r}]\n"
        "from numfmt.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        f"print('HEAVY', [m for m in {HEAVY!r} if m in sys.modules])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return done.stdout + done.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("memory", "8e9", "--format", "bf16", "--json"),
        ("memory", "8e9", "--recipe", "int4/group:128", "--json"),
    ],
    ids=["format-json", "recipe-json"],
)
def test_a_count_as_json_loads_no_model_library(args):
    out = _modules_after(*args)
    assert "HEAVY []" in out and '"bytes": ' in out, out


def test_a_count_as_a_view_loads_no_model_library():
    out = _modules_after("memory", "8e9", "--format", "bf16")
    assert "HEAVY []" in out and "16 GB" in out, out


def test_a_count_is_read_as_numfmt_reads_any_number():
    from click.testing import CliRunner

    from numfmt.cli import main

    r = CliRunner().invoke(main, ["memory", "2^33", "--format", "int8"])
    assert r.exit_code == 0 and "8 589 934 592 parameters" in r.stdout
    r = CliRunner().invoke(main, ["memory", "8,5e9", "--format", "bf16"])
    assert r.exit_code == 2 and "write the decimal point as a dot (8.5e9)" in r.stderr
    r = CliRunner().invoke(main, ["memory", "1.5", "--format", "bf16"])
    assert r.exit_code == 2 and "whole number of at least 1, not 1.5" in r.stderr


@pytest.mark.parametrize(("encoding", "space"), [("utf-8", "\u202f"), ("ascii", " ")])
def test_thousands_are_grouped_by_spaces_not_commas(encoding, space):
    """8,000,000,000 reads as eight with decimals in Spanish: digits are grouped by a narrow
    no-break space, spelled as a plain space where the console cannot print it."""
    import os

    done = subprocess.run(
        [sys.executable, "-m", "numfmt", "memory", "8e9", "--format", "bf16"],
        capture_output=True,
        env={**os.environ, "PYTHONIOENCODING": encoding, "NO_COLOR": "1"},
    )
    out = done.stdout.decode(encoding)
    assert done.returncode == 0
    assert f"8{space}000{space}000{space}000 parameters" in out and "," not in out
