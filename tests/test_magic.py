"""%numfmt in IPython and Jupyter: the command runs in the kernel; failures are one line."""

import pytest

import numfmt

pytest.importorskip("IPython")


def test_the_magic_runs_a_command_in_process(capsys):
    from numfmt.cli.magic import run

    run("show 1.5 -f fp8_e4m3")
    out = capsys.readouterr().out
    assert "0_0111_100" in out and "1.5" in out


@pytest.mark.parametrize(
    "line, message",
    [
        ("show 1.5 -f fp7", "unknown format"),
        ("show 1.5 --no-such-option", "No such option"),
        ("show '1.5", "No closing quotation"),
    ],
)
def test_a_failing_command_is_one_usage_error(line, message):
    from IPython.core.error import UsageError

    from numfmt.cli.magic import run

    with pytest.raises(UsageError, match=message):
        run(line)


def test_load_ext_registers_the_line_magic():
    registered = {}

    class Shell:
        def register_magic_function(self, fn, magic_kind, magic_name):
            registered[magic_name] = (fn, magic_kind)

    numfmt.load_ipython_extension(Shell())
    fn, kind = registered["numfmt"]
    assert kind == "line" and fn.__module__ == "numfmt.cli.magic"
