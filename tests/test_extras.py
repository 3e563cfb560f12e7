"""Optional libraries: without torch, matplotlib, scikit-learn or transformers, every command
that needs one says in one line which extra to install, and the line installs it."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

from numfmt import _extras
from numfmt.errors import MissingDependency, NumfmtError

ROOT = Path(__file__).resolve().parents[1]

#: Runs numfmt's CLI through click's CliRunner in a process where the named modules cannot be
#: imported (a finder refuses them, as if they were not installed), one invocation per line
#: of arguments, and prints each exit code and output as JSON.
BLOCKED_RUN = """
import importlib.abc, json, sys
blocked = set(sys.argv[1].split(","))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotInstalled())
from click.testing import CliRunner
from numfmt.cli import main
out = []
for args in json.loads(sys.argv[2]):
    r = CliRunner().invoke(main, args, prog_name="numfmt")
    out.append({"args": args, "code": r.exit_code, "stdout": r.stdout, "stderr": r.stderr,
                "exception": repr(r.exception) if r.exit_code not in (0, 2) else None})
print(json.dumps(out))
"""


def _run_without(blocked: str, commands: list[list[str]], tmp_path) -> list[dict]:
    proc = subprocess.run(
        [sys.executable, "-c", BLOCKED_RUN, blocked, json.dumps(commands)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
        env={"MPLBACKEND": "Agg", "PATH": "", "HOME": str(tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


NEEDS = [
    # (what is missing, command, the library the line names, the extra it installs)
    ("torch,sklearn", ["lesson", "qat"], "PyTorch", "lessons"),
    ("sklearn", ["lesson", "qat"], "scikit-learn", "lessons"),
    ("torch,sklearn", ["lesson", "integer-mlp"], "PyTorch", "lessons"),
    ("torch,transformers", ["lesson", "language-model"], "PyTorch", "models"),
    ("torch", ["lesson", "beyond-rtn"], "PyTorch", "torch"),
    (
        "torch,transformers",
        ["model", "compare", "smollm2-135m", "--text", "t.txt"],
        "PyTorch",
        "models",
    ),
    (
        "torch,transformers",
        ["model", "quantize", "smollm2-135m", "-r", "int8"],
        "PyTorch",
        "models",
    ),
    (
        "torch,transformers",
        ["model", "perplexity", "smollm2-135m", "--text", "t.txt"],
        "PyTorch",
        "models",
    ),
    ("torch,transformers", ["memory", "smollm2-135m"], "transformers", "models"),
    ("matplotlib", ["plot", "grid", "--dist", "normal", "--out", "g.png"], "matplotlib", "plot"),
    ("matplotlib", ["plot", "ranges", "--out", "r.png"], "matplotlib", "plot"),
]


@pytest.mark.slow
def test_each_command_names_the_extra_it_needs_in_one_line(tmp_path):
    (tmp_path / "t.txt").write_text("A short text to score. " * 20)
    by_block: dict[str, list] = {}
    for blocked, args, _, _ in NEEDS:
        by_block.setdefault(blocked, []).append(args)
    results = {}
    for blocked, commands in by_block.items():
        for r in _run_without(blocked, commands, tmp_path):
            results[(blocked, tuple(r["args"]))] = r
    folder, _ = _extras._installed_from()
    for blocked, args, what, extra in NEEDS:
        r = results[(blocked, tuple(args))]
        assert r["code"] == 2, (args, r)
        lines = r["stderr"].strip().splitlines()
        assert len(lines) == 1, (args, r["stderr"])
        assert "Traceback" not in r["stderr"] + r["stdout"]
        assert f"needs {what}, which is not installed: " in lines[0], (args, lines[0])
        hint = f" (without a GPU, first {_extras.CPU_TORCH}: several GB smaller)"
        torch = "torch" in _extras.BRINGS[extra]
        assert lines[0].endswith(_extras.install_line(extra) + hint * torch), (args, lines[0])
        if folder is not None:  # installed from a checkout, as the README says
            assert f"{folder}[{extra}]" in lines[0]
    assert not list(tmp_path.glob("*.png"))  # nothing drawn, nothing half-written


def test_commands_that_need_no_extra_run_without_any(tmp_path):
    import numpy as np

    np.save(tmp_path / "w.npy", np.linspace(-1, 1, 64, dtype=np.float32))
    commands = [
        ["show", "3.14", "-f", "bf16"],
        ["quantize", "w.npy", "-b", "4", "--json"],
        ["memory", "8e9", "--format", "bf16"],
        ["lesson"],
        ["lesson", "bits", "--json"],
    ]
    for r in _run_without("torch,matplotlib,sklearn,transformers", commands, tmp_path):
        assert r["code"] == 0, r


def test_the_install_line_names_the_folder_numfmt_came_from():
    folder, editable = _extras._installed_from()
    if folder is None:
        pytest.skip("numfmt is not installed from a folder here")
    assert Path(folder).resolve() == ROOT
    line = _extras.install_line("lessons")
    assert line == f"pip install {'-e ' if editable else ''}'{folder}[lessons]'"


def test_without_a_folder_the_line_names_the_packages(monkeypatch):
    monkeypatch.setattr(_extras, "_installed_from", lambda: (None, False))
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = declared["optional-dependencies"]
    assert _extras.install_line("lessons") == "pip install " + " ".join(
        f"'{r}'" for r in [*extras["torch"], *extras["lessons"][1:]]
    )
    assert _extras.install_line("plot") == f"pip install '{extras['plot'][0]}'"


def test_what_each_extra_brings_is_what_pyproject_declares():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    module = {"scikit-learn": "sklearn"}

    def brings(extra: str) -> set[str]:
        found = set()
        for req in extras[extra]:
            name = re.match(r"[\w.-]+", req).group(0)
            inner = re.fullmatch(r"numfmt-sim\[([\w,]+)\]", req)
            if inner:
                for e in inner.group(1).split(","):
                    found |= brings(e)
            else:
                found.add(module.get(name, name))
        return found

    for extra, modules in _extras.BRINGS.items():
        assert brings(extra) == modules, extra
    for name, (_, extra) in _extras.EXTRAS.items():
        assert name in _extras.BRINGS[extra]


def test_the_distribution_is_ours_and_the_import_name_stays():
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert declared["name"] == _extras.DISTRIBUTION == "numfmt-sim"
    assert declared["scripts"] == {"numfmt": "numfmt.cli:main"}


def test_require_raises_one_error_that_is_both_numfmts_and_an_import_error():
    with pytest.raises(MissingDependency) as caught:
        _extras.require("numfmt_no_such_library_anywhere", "drawing a test")
    assert isinstance(caught.value, NumfmtError) and isinstance(caught.value, ImportError)
    assert str(caught.value) == (
        "drawing a test needs the Python module 'numfmt_no_such_library_anywhere', "
        "which is not installed"
    )
    assert caught.value.name == "numfmt_no_such_library_anywhere"
    assert _extras.require("json", "reading").dumps([1]) == "[1]"


def test_a_missing_numfmt_module_is_a_bug_not_a_missing_extra():
    with pytest.raises(ModuleNotFoundError) as caught:
        _extras.require("numfmt.no_such_module", "testing")
    assert not isinstance(caught.value, MissingDependency)
