"""The command line on a console that is not UTF-8 (a Windows console in cp1252, a C locale in
ASCII): every command prints, in characters the console has, and never crashes."""

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest

LIGHT = [
    ["show", "3.14", "-f", "bf16"],
    ["show", "-5", "-f", "int8"],
    ["show", "1e6", "-f", "fp8_e4m3"],
    ["compare", "0.1"],
    ["decode", "0x4049", "-f", "bf16"],
    ["info", "fp8_e4m3"],
    ["table", "fp4"],
    ["formats"],
    ["quantize", "w.npy", "-b", "4", "-g", "group:64"],
    ["quantize", "w.npy", "--compare", "int8,int4/group:128,mxfp4,nvfp4,nf4"],
    ["memory", "8e9", "--format", "bf16"],
    ["lesson"],
    ["lesson", "bits"],
    ["lesson", "floats"],
    ["lesson", "quantization"],
    ["show", "nan", "-f", "fp4"],  # an error: its one line must print too
    ["show", "1", "-f", "fp99"],
]


#: Runs each command in one process, as the console runs it (its sys.stdout, in the encoding
#: PYTHONIOENCODING gives), with a line between commands on both streams.
DRIVER = """
import json, sys
from numfmt.cli import main
for args in json.loads(sys.argv[1]):
    try:
        main.main(args, prog_name="numfmt")
    except SystemExit as exc:
        code = exc.code or 0
    else:
        code = 0
    for stream in (sys.stdout, sys.stderr):
        stream.write(f"\\n=== exit {code}\\n")
        stream.flush()
"""


def _run_all(commands, encoding, cwd) -> list[tuple[int, bytes, bytes]]:
    env = {**os.environ, "PYTHONIOENCODING": encoding, "COLUMNS": "80", "MPLBACKEND": "Agg"}
    env.pop("PYTHONUTF8", None)
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(commands)],
        capture_output=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    outs = re.split(rb"\n=== exit (\d+)\n", proc.stdout)
    errs = re.split(rb"\n=== exit \d+\n", proc.stderr)
    return [(int(outs[2 * i + 1]), outs[2 * i], errs[i]) for i in range(len(commands))]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("enc")
    np.save(d / "w.npy", np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32))
    return d


@pytest.mark.parametrize("encoding", ["cp1252", "ascii"])
def test_every_light_command_prints_on_a_console_that_is_not_utf8(encoding, folder):
    for args, (code, out, err) in zip(LIGHT, _run_all(LIGHT, encoding, folder), strict=True):
        assert b"Traceback" not in err, (args, err.decode(encoding, "replace"))
        assert code in (0, 2), (args, code)
        assert out or code, args
        text = out.decode(encoding) + err.decode(encoding)  # raises on a byte it lacks
        if encoding == "ascii":
            assert (out + err).isascii(), args
        assert "?" not in text, (args, text)


def test_a_table_in_a_pipe_has_ascii_borders_where_the_console_has_no_box_characters(folder):
    [(_, utf8, _)] = _run_all([["table", "fp4"]], "utf-8", folder)
    [(_, cp1252, _)] = _run_all([["table", "fp4"]], "cp1252", folder)
    utf8, cp1252 = utf8.decode("utf-8"), cp1252.decode("cp1252")
    assert "┏" in utf8 and "┏" not in cp1252
    assert cp1252.splitlines()[1].startswith("+---")
    assert "|    7 | 0x7 | 0_11_1 |     6 | normal    |" in cp1252
    assert len(utf8.splitlines()) == len(cp1252.splitlines())
