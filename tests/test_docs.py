"""The docs stay true to the code: examples run, outputs match, the CLI reference is current."""

import doctest
import importlib
import importlib.util
import re
import runpy
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

import numfmt
from numfmt.cli import main

ROOT = Path(__file__).resolve().parent.parent
MODULES = [
    "numfmt.formats.types",
    "numfmt.formats.registry",
    "numfmt.formats.value",
    "numfmt.formats.encode",
    "numfmt.formats.decode",
    "numfmt.formats.explain.show",
    "numfmt.formats.explain.summary",
    "numfmt.arith.context",
    "numfmt.arith.elementwise",
    "numfmt.arith.sums",
    "numfmt.arith.calc",
    "numfmt.arith.expr",
    "numfmt.quant.granularity",
    "numfmt.quant.schemes",
    "numfmt.quant.qparams",
    "numfmt.quant.fake",
    "numfmt.quant.report",
    "numfmt.quant.tensor",
    "numfmt.quant.observer",
    "numfmt.quant.packing",
    "numfmt.quant.analysis",
    "numfmt.quant.synthetic",
    "numfmt.lessons.matmul",
]
if importlib.util.find_spec("torch") is not None:  # the model layer's examples need torch
    MODULES += [
        "numfmt.nn.recipe",
        "numfmt.nn.quantize",
        "numfmt.eval.scoring",
        "numfmt.eval.embeddings",
        "numfmt.eval.memory",
        "numfmt.lessons.integer_mlp",
        "numfmt.nn.lsq",
        "numfmt.nn.qat",
        "numfmt.nn.algorithms.gptq",
        "numfmt.nn.algorithms.importance",
        "numfmt.nn.training",
    ]


def _doctested_pages() -> list[str]:
    """README and the pages whose Python is all doctest (lesson 6's examples read the result
    of a run above them: the full site build checks those, docs/hooks/run_pages.py). A
    Spanish twin (NAME.es.md) holds the same examples (tests/test_i18n.py)."""
    out = ["README.md"]
    for page in sorted((ROOT / "docs").glob("*.md")):
        if page.name.endswith(".es.md"):
            continue
        blocks = re.findall(r"^```python\n(.*?)^```", page.read_text(), flags=re.M | re.S)
        if blocks and all(">>>" in b for b in blocks):
            out.append(f"docs/{page.name}")
    return out


@pytest.mark.parametrize("doc", _doctested_pages())
def test_python_examples_in_the_docs_run(doc):
    result = doctest.testfile(str(ROOT / doc), module_relative=False)
    assert result.attempted >= 3 and result.failed == 0


@pytest.mark.parametrize("module", MODULES)
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0, f"{module} lost its examples"
    assert result.failed == 0


def _commands(path: Path) -> list[str]:
    return re.findall(r"^\$ ((?:numfmt|python) .+)$", path.read_text(), flags=re.MULTILINE)


@pytest.mark.slow
def test_every_command_in_the_readme_runs_in_order(tmp_path, monkeypatch):
    """The README's commands run one after the other in an empty folder, as a reader would run
    them (the pages under docs/ run at build time, in a kernel)."""
    import subprocess
    import sys

    monkeypatch.chdir(tmp_path)
    commands = _commands(ROOT / "README.md")
    for command in commands:
        args = shlex.split(command)
        if args[0] == "python":
            done = subprocess.run([sys.executable, *args[1:]], capture_output=True, text=True)
            assert done.returncode == 0, f"{command}\n{done.stderr}"
            continue
        r = CliRunner().invoke(main, args[1:])
        assert r.exit_code == 0, f"{command}\n{r.output}"


def test_readme_show_output_is_what_the_command_prints():
    text = (ROOT / "README.md").read_text()
    block = text.split("$ numfmt show 3.14 --format bf16\n", 1)[1].split("```", 1)[0]
    out = CliRunner().invoke(main, ["show", "3.14", "--format", "bf16"]).output
    printed = [line.rstrip() for line in out.splitlines()]
    for line in block.splitlines():
        assert line.rstrip() in printed


def test_cli_reference_is_current():
    module = runpy.run_path(str(ROOT / "docs" / "make_cli_reference.py"))
    assert (ROOT / "docs" / "cli.md").read_text() == module["reference"](), (
        "docs/cli.md is out of date: run python docs/make_cli_reference.py"
    )


def test_formats_at_a_glance_is_current_and_agrees_with_ml_dtypes():
    module = runpy.run_path(str(ROOT / "docs" / "make_formats_page.py"))
    text = (ROOT / "docs" / "formats-at-a-glance.md").read_text()
    assert text == module["page"](), (
        "docs/formats-at-a-glance.md is out of date: run python docs/make_formats_page.py"
    )
    import ml_dtypes

    rows = {line.split("|")[1].strip(" `"): line for line in text.splitlines() if "| `" in line}
    for name in ("float8_e4m3fn", "float8_e5m2", "float6_e2m3fn", "float4_e2m1fn", "bfloat16"):
        finfo = ml_dtypes.finfo(getattr(ml_dtypes, name))
        cells = [c.strip() for c in rows[name].split("|")]

        def power(cell: str) -> float:
            return 1.0 if cell == "1" else 2.0 ** int(cell.removeprefix("2^"))

        assert power(cells[7]) == float(finfo.smallest_normal), name  # min normal
        assert power(cells[9]) == float(finfo.eps), name  # epsilon


def test_the_gallery_shows_every_figure_and_the_command_that_drew_it():
    module = runpy.run_path(str(ROOT / "docs" / "make_gallery.py"))
    text = (ROOT / "docs" / "gallery.md").read_text()
    assert text == module["page"](), "docs/gallery.md is out of date: run docs/make_gallery.py"
    from numfmt.cli.plot import plot

    for command in plot.list_commands(None):
        assert f"$ numfmt plot {command} " in text, f"the gallery lacks numfmt plot {command}"
    for name, *_ in module["FIGURES"]:
        assert f" {name}\n" in text, name  # drawn by its command when the site is built


def test_the_explorers_format_table_is_current():
    module = runpy.run_path(str(ROOT / "docs" / "make_explorer_formats.py"))
    assert (ROOT / "docs" / "javascripts" / "formats.js").read_text() == module["source"](), (
        "docs/javascripts/formats.js is out of date: run python docs/make_explorer_formats.py"
    )


@pytest.mark.parametrize("lang", [None, "es"], ids=["en", "es"])
def test_the_notebooks_are_current(lang):
    """notebooks/NN-NAME.ipynb from docs/NAME.md; notebooks/es/ from the Spanish twins."""
    pytest.importorskip("nbformat")
    module = runpy.run_path(str(ROOT / "docs" / "make_notebooks.py"))
    made = module["lessons"](lang)
    folder = module["folder"](lang)
    assert len(made) == 10 and made[0][0] == "01-lesson-bits.ipynb"
    assert {p.name for p in folder.glob("*.ipynb")} == {name for name, _ in made}
    for name, page in made:
        assert (folder / name).read_text() == module["source"](page), (
            f"{(folder / name).relative_to(ROOT)} is out of date: run python docs/make_notebooks.py"
        )


def test_formats_doc_lists_every_named_format():
    text = (ROOT / "docs" / "formats.md").read_text()
    for name in numfmt.formats.NAMED:
        assert f"`{name}`" in text
