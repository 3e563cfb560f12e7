"""The command line: exit codes, text on stdout, one-line errors on stderr, --json."""

import io
import json
import os
import re
import subprocess
import sys

import pytest
from click.testing import CliRunner

from numfmt.cli import main


@pytest.fixture
def run():
    def invoke(*args, env=None):
        return CliRunner().invoke(main, list(args), env=env or {}, catch_exceptions=False)

    return invoke


def test_show(run):
    r = run("show", "3.14", "--format", "bf16")
    assert r.exit_code == 0
    assert "0_10000000_1001001" in r.stdout and "3.140625" in r.stdout and "201/64" in r.stdout


@pytest.mark.parametrize("value", ["-1.5", "-0", "-inf", "-1/3", "-0x1.8p3", "-1e-8"])
def test_negative_values_need_no_double_dash(run, value):
    before = run("show", value, "-f", "fp16", "--json")
    after = run("show", "-f", "fp16", value, "--json")
    assert before.exit_code == 0 and after.exit_code == 0
    assert json.loads(before.stdout) == json.loads(after.stdout)
    assert json.loads(before.stdout)["input"] == value


def test_show_json(run):
    r = run("show", "3.14", "--format", "bf16", "--json")
    d = json.loads(r.stdout)
    assert (d["code"], d["hex"], d["bits"], d["stored"], d["class"]) == (
        16457,
        "0x4049",
        "0100000001001001",
        "3.140625",
        "normal",
    )


def test_integers(run):
    r = run("show", "-5", "--format", "int8")
    assert r.exit_code == 0 and "1111_1011" in r.stdout and "invert" in r.stdout


def test_refused_value_shows_the_alternatives_and_fails(run):
    r = run("show", "200", "--format", "int8")
    assert r.exit_code == 2
    assert "wrap" in r.stdout and "-56" in r.stdout and "saturate" in r.stdout
    assert r.stderr.count("\n") == 1 and "does not fit in int8" in r.stderr
    assert run("show", "200", "-f", "int8", "--overflow", "wrap").exit_code == 0


def test_nan_into_fp4_is_an_error(run):
    r = run("show", "nan", "-f", "fp4")
    assert r.exit_code == 2 and "no NaN" in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "abc", "-f", "bf16"], "accepted forms"),
        (["show", "1", "-f", "bf61"], "Did you mean bf16"),
        (["decode", "0x1FF", "-f", "fp8_e4m3"], "does not fit in the 8 bits"),
        (["decode", "1.5", "-f", "bf16"], "non-negative integer"),
        (["table", "bf16"], "8 bits or fewer"),
        (["info", "fp8"], "fp8_e4m3 or fp8_e5m2"),
        (["show", "1", "-f", "bf16", "-r", "sideways"], "unknown rounding mode"),
        (["show", "1", "-f", "bf16", "-o", "wrap"], "applies to integer formats"),
    ],
)
def test_bad_input_gets_one_line_and_exit_status_2(run, args, message):
    r = run(*args)
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_missing_format_is_a_usage_error(run):
    r = run("show", "1")
    assert r.exit_code == 2 and "--format" in r.stderr


def test_compare(run):
    r = run("compare", "3.14", "--json")
    rows = json.loads(r.stdout)["rows"]
    assert [row["format"] for row in rows][:3] == ["float32", "float16", "bfloat16"]
    r = run("compare", "0.1", "-f", "bf16,fp8_e4m3", "-f", "int8", "--json")
    assert [row["format"] for row in json.loads(r.stdout)["rows"]] == [
        "bfloat16",
        "float8_e4m3fn",
        "int8",
    ]
    text = run("compare", "-2.5", "-f", "fp4,int4").stdout
    assert "-2" in text and "int4" in text


def test_decode(run):
    for code in ("0x4049", "0b0100000001001001", "16457", "0b0_10000000_1001001"):
        d = json.loads(run("decode", code, "-f", "bf16", "--json").stdout)
        assert d["stored"] == "3.140625"


def test_info_table_formats(run):
    assert json.loads(run("info", "bf16", "--json").stdout)["max"] == pytest.approx(
        3.3895e38, rel=1e-4
    )
    codes = json.loads(run("table", "fp4", "--json").stdout)["codes"]
    assert [c["value"] for c in codes][:8] == ["0", "0.5", "1", "1.5", "2", "3", "4", "6"]
    assert "float8_e4m3fn" in run("formats").stdout
    assert len(json.loads(run("formats", "--json").stdout)["formats"]) == 16


def test_help_teaches(run):
    r = run("--help")
    assert "numfmt show 3.14 --format bf16" in r.stdout
    r = run("show", "--help")
    assert "0x1.8p3" in r.stdout and "--overflow" in r.stdout


def test_no_colour_in_pipes_and_with_no_color(run):
    assert "\x1b[" not in run("show", "3.14", "-f", "bf16").stdout
    assert "\x1b[" not in run("show", "3.14", "-f", "bf16", env={"NO_COLOR": "1"}).stdout


def test_colour_on_a_terminal_unless_no_color():
    from rich.console import Console

    import numfmt

    def render(**env):
        console = Console(force_terminal=True, record=False, width=100, _environ=env)
        with console.capture() as cap:
            console.print(numfmt.show("3.14", "bf16"))
        return cap.get()

    colour = re.compile(r"\x1b\[[0-9;]*3[0-7]m")  # a foreground colour (bold and dim are not)
    assert colour.search(render())
    assert not colour.search(render(NO_COLOR="1"))


def _project_cli(*args: str) -> subprocess.CompletedProcess:
    """The project's own CLI, as `python -m numfmt` (GNU coreutils' numfmt may be on PATH)."""
    return subprocess.run(
        [sys.executable, "-m", "numfmt", *args], capture_output=True, text=True, check=False
    )


def test_python_dash_m_numfmt_runs_the_project_cli():
    out = _project_cli("show", "3.14", "--format", "bf16", "--json")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["hex"] == "0x4049"
    bad = _project_cli("show", "nan", "-f", "fp4")
    assert bad.returncode == 2 and bad.stderr.startswith("Error:")
    assert "Traceback" not in bad.stderr
    assert _project_cli("--version").stdout.startswith("numfmt, version")


def test_show_loads_neither_the_quantization_layer_nor_numba():
    code = (
        "import sys, runpy; sys.argv = ['numfmt', 'show', '3.14', '-f', 'bf16'];"
        "from numfmt.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numba', 'torch', 'matplotlib', 'numfmt.quant.qparams',"
        " 'array_api_compat', 'safetensors') if m in sys.modules]\n"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr


def test_import_numfmt_is_light():
    code = (
        "import sys, numfmt; numfmt.show('3.14', 'bf16');"
        "print([m for m in ('rich', 'matplotlib', 'torch', 'numba') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_installed_console_script_is_ours():
    script = os.path.join(os.path.dirname(sys.executable), "numfmt")
    if not os.path.exists(script):
        pytest.skip("no console script beside this interpreter (not installed in a venv)")
    out = subprocess.run(
        [script, "show", "1", "-f", "fp4", "--json"], capture_output=True, text=True, check=False
    )
    assert out.returncode == 0 and json.loads(out.stdout)["hex"] == "0x2"


@pytest.mark.parametrize(
    "args",
    [["show", "3,14", "-f", "bf16"], ["show", "-2,5", "-f", "bf16"], ["compare", "3,14"]],
    ids=["show", "show-negative", "compare"],
)
def test_a_decimal_comma_gets_a_hint(run, args):
    r = run(*args)
    value = args[1]
    assert r.exit_code == 2 and "Traceback" not in r.stderr
    expected = f"{value} is not a number: write the decimal point as a dot"
    assert expected in r.stderr and f"({value.replace(',', '.')})" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_a_library_warning_inside_a_command_is_one_line_and_the_command_ends():
    import warnings

    import click

    from numfmt.cli.base import show_warnings

    @click.command()
    def warns():
        with show_warnings():
            warnings.warn("invalid value encountered in divide", RuntimeWarning, stacklevel=1)
            click.echo("done")

    r = CliRunner().invoke(warns, [])
    assert r.exit_code == 0 and r.stdout == "done\n"
    assert r.stderr == "warning: invalid value encountered in divide\n"


class _Terminal:
    def isatty(self):
        return True


def test_a_message_on_a_terminal_folds_between_words_and_keeps_a_path_whole(monkeypatch):
    import os

    from numfmt.cli.base import fold

    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: os.terminal_size((80, 24)))
    path = "/tmp/stu-venv/lib/python3.11/site-packages/numfmt/lessons/data/sample.txt"
    message = f"no --text given: scoring on the essay that ships with numfmt ({path})"
    folded = fold(message, _Terminal())
    assert all(len(line) <= 80 for line in folded.splitlines())
    assert f"({path})" in folded.splitlines()[1]
    assert folded.replace("\n", " ") == message
    assert fold(message, io.StringIO()) == message  # a pipe or a log: one line


def test_print_of_a_result_is_as_wide_as_the_terminal(monkeypatch):
    import os
    import sys

    import numfmt

    class Out(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stdout", Out())
    monkeypatch.setattr("shutil.get_terminal_size", lambda *a: os.terminal_size((80, 24)))
    text = str(numfmt.compare("0.1"))
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "0_01111011_10011001100110011001101" in text
