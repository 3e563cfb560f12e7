"""``numfmt lesson``: the two lessons from the command line, and its refusals."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from numfmt.cli import main


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def test_lesson_qat_json_gives_a_row_per_method_and_bits():
    r = _run("lesson", "qat", "--bits", "2", "--json")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""  # no progress with --json
    rows = json.loads(r.stdout)["rows"]
    assert rows[0]["method"] == "float" and rows[0]["bits"] is None
    acc = {(row["method"], row["bits"]): row["accuracy"] for row in rows}
    assert set(acc) == {
        ("float", None),
        *((m, 2) for m in ("ptq-minmax", "ptq-mse", "qat", "qat-lsq")),
    }
    assert acc[("ptq-minmax", 2)] < acc[("qat", 2)] < acc[("float", None)]


def test_lesson_qat_draws_its_figure_and_never_overwrites(tmp_path):
    pytest.importorskip("matplotlib")
    target = tmp_path / "qat.png"
    r = _run("lesson", "qat", "--bits", "3", "--qat-epochs", "1", "--plot", target)
    assert r.exit_code == 0, r.output
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "int3" in r.stdout and f"wrote {target}" in r.stderr
    # off a terminal, a line on stderr as it starts and one per model
    lines = r.stderr.splitlines()
    assert lines[0] == "qat: training the float MLP on the digits (60 epochs) ..."
    assert [line.split(" (")[0] for line in lines[1:6]] == [
        "qat: [1/5] float",
        "qat: [2/5] ptq-minmax int3",
        "qat: [3/5] ptq-mse int3",
        "qat: [4/5] qat int3",
        "qat: [5/5] qat-lsq int3",
    ]
    again = _run("lesson", "qat", "--bits", "3", "--plot", target)
    assert again.exit_code == 2 and "exists" in again.stderr


def test_lesson_integer_mlp_json_walks_three_layers():
    r = _run("lesson", "integer-mlp", "--sample", "5", "--json")
    assert r.exit_code == 0, r.output
    assert r.stderr == ""
    d = json.loads(r.stdout)
    assert d["sample"] == 5 and len(d["layers"]) == 3 and d["accumulator_bits"] == 32
    assert d["layers"][1]["input_codes"] == d["layers"][0]["output_codes"]
    view = _run("lesson", "integer-mlp", "--sample", "5")
    assert "int32 accumulator" in view.stdout and "M0" in view.stdout
    steps = [line.split(" (")[0] for line in view.stderr.splitlines()[1:]]
    assert steps == [
        "integer-mlp: [1/3] float MLP trained, 60 epochs",
        "integer-mlp: [2/3] converted to integers",
        "integer-mlp: [3/3] test digits scored",
    ]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["qat", "--bits", "1,2"], "from 2 to 16; 1 does not"),
        (["qat", "--bits", "four"], "separated by commas"),
        (["qat", "--activations", "1"], "--activations"),
        (["qat", "--plot", "figure.txt"], ".png, .svg or .pdf"),
        (["integer-mlp", "--sample", "999"], "0 to 449"),
        (["integer-mlp", "--accumulator", "8"], "--accumulator"),
    ],
)
def test_misuse_exits_2_with_one_message(args, message):
    r = _run("lesson", *args)
    assert r.exit_code == 2
    assert message in r.stderr and "Traceback" not in r.output
    assert f"{args[0]}:" not in r.stderr  # refused before any progress line


def test_text_path_prints_where_the_essay_lies():
    from numfmt.lessons import sample_text

    r = _run("lesson", "--text-path")
    assert r.exit_code == 0, r.output
    path = Path(r.stdout.strip())
    assert path.name == "sample.txt" and path.read_text(encoding="utf-8") == sample_text()
    assert json.loads(_run("lesson", "--text-path", "--json").stdout) == {"text_path": str(path)}
    assert "--text-path" in _run("lesson", "--help").stdout
    wrong = _run("lesson", "--text-path", "bits")
    assert wrong.exit_code == 2 and "without a lesson's NAME" in wrong.stderr
