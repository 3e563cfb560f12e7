"""numfmt.nn.progress: lines on stderr off a terminal when asked (True), a line per step of
the outermost loop only; nothing by default (None) or with False; a callable instead."""

import pytest

from numfmt.nn.progress import say, tracker


def _run(progress, every=0.0):
    with tracker(3, "lesson", progress, every=every) as step:
        for name in ("fp32", "int8", "int4"):
            with tracker(5, "quantizing", progress) as inner:  # a model's layers: no lines
                for i in range(5):
                    inner(f"layer {i}")
            step(f"{name} scored")


def test_off_a_terminal_true_writes_a_line_per_step_of_the_outer_loop(capsys):
    say("lesson: loading ...", True)
    _run(True)
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and lines[0] == "lesson: loading ..."
    assert [line.rsplit(" (", 1)[0] for line in lines[1:]] == [
        "lesson: [1/3] fp32 scored",
        "lesson: [2/3] int8 scored",
        "lesson: [3/3] int4 scored",
    ]
    assert all(line.endswith(" s)") for line in lines[1:])


def test_a_long_loop_writes_at_most_a_line_each_every_seconds_and_its_last(capsys):
    _run(True, every=3600)
    assert [line.split(" (")[0] for line in capsys.readouterr().err.splitlines()] == [
        "lesson: [1/3] fp32 scored",
        "lesson: [3/3] int4 scored",
    ]


@pytest.mark.parametrize("progress", [None, False], ids=["default", "false"])
def test_nothing_is_written_off_a_terminal_unless_asked(capsys, progress):
    say("lesson: loading ...", progress)
    _run(progress)
    assert capsys.readouterr() == ("", "")


def test_a_callable_gets_every_name_instead(capsys):
    seen = []
    _run(seen.append)
    assert len(seen) == 3 * 5 + 3 and seen[-1] == "int4 scored"
    assert capsys.readouterr() == ("", "")


class _Terminal:
    """A stderr that says it is a terminal, and keeps what is written to it."""

    def __init__(self):
        self.text = []

    def isatty(self):
        return True

    def write(self, s):
        self.text.append(s)
        return len(s)

    def flush(self):
        pass


def test_on_a_terminal_nested_loops_share_one_bar(monkeypatch):
    from numfmt.nn import progress

    terminal = _Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    say("lesson: loading ...", None)  # no bar yet: a plain line
    _run(None)  # a second live display would raise rich's LiveError
    written = "".join(terminal.text)
    assert written.startswith("lesson: loading ...") and "lesson:" not in written[20:]
    assert progress._state == {"bar": None, "depth": 0}


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_bar_keeps_its_counts_and_time_whole_on_a_narrow_terminal(width):
    import io

    from rich.console import Console
    from rich.progress import Progress as Bar

    from numfmt.nn.progress import bar_columns

    console = Console(file=io.StringIO(), width=width, record=True)
    bar = Bar(*bar_columns(width), console=console, auto_refresh=False)
    long = "int8-absmax quantized, scored, generated, own text scored"
    bar.update(bar.add_task("language-model", total=8, item=long), advance=3)
    bar.update(
        bar.add_task("quantizing", total=210, item="model.layers.0.mlp.gate_proj"), advance=50
    )
    console.print(bar.get_renderable())
    lines = console.export_text().splitlines()
    assert all(len(line) <= width for line in lines)
    assert lines[0].startswith("language-model ") and " 3/8 " in lines[0]
    assert lines[1].startswith("quantizing ") and " 50/210 " in lines[1]
    assert all(" 0:00:0" in line for line in lines)
    assert (long in lines[0]) == (width >= 120)  # only the item's name is shortened
