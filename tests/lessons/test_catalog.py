"""numfmt lesson: the course's lessons in order, each page there, each command real."""

import json
import shlex
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from numfmt.cli import main
from numfmt.lessons.catalog import LESSONS, lessons

ROOT = Path(__file__).resolve().parents[2]
ORDER = [
    "bits",
    "floats",
    "quantization",
    "integer-mlp",
    "qat",
    "language-model",
    "beyond-rtn",
    "arithmetic",
    "training",
    "matmul",
]


def test_the_list_is_the_course_in_order():
    r = CliRunner().invoke(main, ["lesson", "--json"])
    assert r.exit_code == 0, r.output
    listed = json.loads(r.stdout)["lessons"]
    assert [lesson["name"] for lesson in listed] == ORDER
    assert all((ROOT / lesson["page"]).is_file() for lesson in listed)
    text = CliRunner().invoke(main, ["lesson"])
    assert text.exit_code == 0 and "numfmt lesson integer-mlp --accumulator 16" in text.stdout


def test_every_command_listed_runs_or_parses(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an empty folder: a command that needs a file of its own fails
    runner = CliRunner()
    for lesson in LESSONS:
        for command in lesson.commands:
            args = shlex.split(command)[1:]
            heavy = args[0] in ("model", "lesson")  # they train or load models: their own tests
            r = runner.invoke(main, [*args, "--help"] if heavy else args)
            assert r.exit_code == 0, f"{command}: {r.output}"


def test_the_list_needs_neither_torch_nor_scikit_learn():
    code = (
        "import sys; from click.testing import CliRunner; from numfmt.cli import main; "
        "r = CliRunner().invoke(main, ['lesson']); assert r.exit_code == 0, r.output; "
        "print(sorted(m for m in ('torch', 'sklearn') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_each_lesson_says_how_long_it_takes_and_when_its_first_run_is_slower():
    listed = json.loads(CliRunner().invoke(main, ["lesson", "--json"]).stdout)["lessons"]
    seconds = {lesson["name"]: lesson["seconds"] for lesson in listed}
    assert all(s > 0 for s in seconds.values())
    # the two that run SmolLM2 take longest
    assert sorted(seconds, key=seconds.get)[-2:] == ["language-model", "matmul"]
    first = {lesson["name"]: lesson["first_run_seconds"] for lesson in listed}
    assert first["integer-mlp"] > seconds["integer-mlp"] and first["bits"] is None
    integer = next(lesson for lesson in listed if lesson["name"] == "integer-mlp")
    assert integer["expected_time"] == "about 6 s; the first run 10 s (numba compiles its kernels)"
    text = CliRunner().invoke(main, ["lesson"]).stdout
    assert "time: under a second" in text and "time: about 75 s" in text


def test_a_long_command_breaks_between_words_with_a_continuation_that_runs():
    from numfmt._display import text_view

    text = text_view(lessons(), 80)
    assert max(len(line) for line in text.splitlines()) <= 80
    commands, current = [], None
    for line in text.splitlines():
        body = line.strip()
        if body.startswith("$ "):
            current = body[2:]
        elif current is not None and line.startswith(" " * 25) and not body.startswith("$"):
            current = current[:-1].rstrip() + " " + body  # a continuation line
        else:
            current = None
            continue
        if not current.endswith("\\"):
            commands.append(current)
            current = None
    listed = [c for lesson in LESSONS for c in lesson.commands]
    assert [shlex.split(c) for c in commands] == [shlex.split(c) for c in listed]
    assert "'I have a dream'" in text  # a quoted argument is never broken
