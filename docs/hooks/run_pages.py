"""Every page runs when the site is built: an mkdocs hook, and the notebooks it makes.

A page's ```console blocks hold commands only (``$ numfmt ...``, ``$ python -c ...``); its
```python blocks are doctest transcripts (``>>>``), checked, or plain code, whose output the
page shows. The page becomes a Jupyter notebook: prose as
markdown cells, each command as a code cell (``%numfmt ...``, numfmt's own magic), each
doctest example as a code cell. At build time the notebook runs in a fresh kernel in an empty
folder, as a reader would run it; then

* each command's output is printed under it on the page,
* each doctest's output is checked against the page (doctest's own checker and directives),
* each figure a cell draws is put on the page under the block that drew it,
* a lesson's page links its notebook, executed, for download (``notebooks/NAME.ipynb``).

A command that fails, an output that differs, or a block the hook cannot run stops the build
with one message naming the page and the command. Running every lesson takes a minute or two
(lesson 6 quantizes SmolLM2 eight ways); ``NUMFMT_DOCS_RUN=0 mkdocs serve`` skips the runs
while editing prose (the commands then show no output). ``docs/make_notebooks.py`` writes the same
notebooks, unexecuted, into ``notebooks/``.
"""

from __future__ import annotations

import doctest
import logging
import os
import re
import shlex
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger("mkdocs.hooks.run_pages")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*\n?", re.M | re.S)
FIGURES = (".png", ".svg", ".jpg")
#: The kernel prints values as doctest does (repr, not IPython's pretty printer).
SETUP = "%config PlainTextFormatter.pprint = False"
LOAD = "%load_ext numfmt"


class PageError(Exception):
    """A page that cannot run, or whose output is not what it says."""


@dataclass
class Part:
    """A piece of a page: prose, a console block (commands) or a doctest block."""

    kind: str  # "text" | "console" | "doctest" | "code"
    source: str  # the markdown as written
    commands: list[str] = field(default_factory=list)  # a console block's, without "$ "
    examples: list[list[doctest.Example]] = field(default_factory=list)  # one list a cell
    code: str = ""  # a plain python block's


def split(markdown: str) -> list[Part]:
    """The page's parts in order; only console and python blocks run."""
    parts: list[Part] = []
    at = 0
    for m in FENCE.finditer(markdown):
        lang, body = m.group(1), m.group(2)
        if lang == "console":
            kind = "console"
        elif lang == "python":
            kind = "doctest" if ">>>" in body else "code"
        else:
            continue
        if m.start() > at:
            parts.append(Part("text", markdown[at : m.start()]))
        part = Part(kind, m.group(0))
        if kind == "console":
            for line in body.splitlines():
                if not line.startswith("$ "):
                    raise PageError(
                        f"a console block holds commands only (the build prints their "
                        f"output): {line!r}"
                    )
                part.commands.append(line[2:])
        elif kind == "doctest":
            part.examples = _cells_of(body)
        else:
            part.code = body.rstrip("\n")
        parts.append(part)
        at = m.end()
    if at < len(markdown):
        parts.append(Part("text", markdown[at:]))
    return parts


def _cells_of(body: str) -> list[list[doctest.Example]]:
    """Doctest examples grouped into cells: each cell ends at an example with output."""
    cells: list[list[doctest.Example]] = []
    current: list[doctest.Example] = []
    for example in doctest.DocTestParser().get_examples(body):
        if example.exc_msg is not None:
            raise PageError("an example that expects an exception cannot run as a cell")
        current.append(example)
        if example.want:
            cells.append(current)
            current = []
    if current:
        cells.append(current)
    return cells


def command_cell(command: str) -> str:
    """The code cell that runs one documented command."""
    args = shlex.split(command)
    if args[0] == "numfmt":
        return "%numfmt " + command[len("numfmt ") :]
    if args[0] == "python" and len(args) == 3 and args[1] == "-c":
        return args[2]
    raise PageError(f"the build runs numfmt and python -c commands only: {command}")


def notebook(parts: list[Part]) -> Any:
    """The page as an (unexecuted) notebook, and for each code cell the part it came from."""
    import nbformat.v4 as nbf

    cells = []
    origin: list[tuple[int, int] | None] = []  # (part index, command or cell index)
    for i, part in enumerate(parts):
        if part.kind == "text":
            text = part.source.strip("\n")
            if text:
                cells.append(nbf.new_markdown_cell(text))
                origin.append(None)
        elif part.kind == "console":
            for j, command in enumerate(part.commands):
                cells.append(nbf.new_code_cell(command_cell(command)))
                origin.append((i, j))
        elif part.kind == "code":
            cells.append(nbf.new_code_cell(part.code))
            origin.append((i, 0))
        else:
            for j, examples in enumerate(part.examples):
                source = "".join(e.source for e in examples).rstrip("\n")
                cells.append(nbf.new_code_cell(source))
                origin.append((i, j))
    if any(p.kind == "console" and any(c.startswith("numfmt ") for c in p.commands) for p in parts):
        at = 1 if cells and cells[0].cell_type == "markdown" else 0  # under the title
        cells.insert(at, nbf.new_code_cell(LOAD))
        origin.insert(at, None)
    nb = nbf.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell in nb.cells:  # stable ids: a notebook regenerated from the same page is the same
        cell.pop("id", None)
    nb.nbformat_minor = 4
    return nb, origin


def _files(folder: Path) -> dict[str, int]:
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns
        for p in folder.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def _text(outputs: list[Any], streams: tuple[str, ...] = ("stdout",)) -> str:
    out = []
    for o in outputs:
        if o.output_type == "stream" and o.name in streams:
            out.append(o.text)
        elif o.output_type in ("execute_result", "display_data") and "text/plain" in o.data:
            out.append(o.data["text/plain"] + "\n")
    return "".join(out)


def _error(outputs: list[Any]) -> str:
    for o in outputs:
        if o.output_type == "error":
            return f"{o.ename}: {o.evalue}"
    return _text(outputs, ("stderr",)).strip()[-2000:]


@dataclass
class Run:
    """What running a page gave: the executed notebook, outputs and figures a cell."""

    notebook: Any
    outputs: dict[tuple[int, int], str]
    figures: dict[int, list[Path]]  # part index -> figures drawn by its cells
    folder: Path


def execute(parts: list[Part], folder: Path, timeout: int = 900) -> Run:
    """Run the page's notebook in ``folder`` (empty); raise PageError at the first failure."""
    import nbformat.v4 as nbf
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    nb, origin = notebook(parts)
    setup = nbf.new_code_cell(SETUP)
    nb.cells.insert(0, setup)
    origin.insert(0, None)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    )
    outputs: dict[tuple[int, int], str] = {}
    figures: dict[int, list[Path]] = {}
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            before = _files(folder)
            try:
                client.execute_cell(cell, index)
            except CellExecutionError:
                where = origin[index]
                what = cell.source if where is None else _describe(parts, where)
                raise PageError(f"{what} failed: {_error(cell.outputs)}") from None
            where = origin[index]
            if where is None:
                continue
            outputs[where] = _text(cell.outputs)
            after = _files(folder)
            drawn = [
                folder / name
                for name, stamp in after.items()
                if name.lower().endswith(FIGURES) and before.get(name) != stamp
            ]
            figures.setdefault(where[0], []).extend(sorted(drawn))
    nb.cells.pop(0)  # the setup is the build's, not the reader's
    return Run(nb, outputs, figures, folder)


def _describe(parts: list[Part], where: tuple[int, int]) -> str:
    part = parts[where[0]]
    if part.kind == "console":
        return f"$ {part.commands[where[1]]}"
    if part.kind == "code":
        return "the code block\n" + part.code
    return ">>> " + part.examples[where[1]][-1].source.strip()


def check_doctests(parts: list[Part], run: Run) -> None:
    """Each doctest cell printed what the page says it prints."""
    checker = doctest.OutputChecker()
    for i, part in enumerate(parts):
        if part.kind != "doctest":
            continue
        for j, examples in enumerate(part.examples):
            last = examples[-1]
            flags = 0
            for flag, on in last.options.items():
                flags = flags | flag if on else flags & ~flag
            got = run.outputs.get((i, j), "")
            if not checker.check_output(last.want, got, flags):
                said = f"the page says:\n{last.want}the kernel printed:\n{got}"
                raise PageError(f">>> {last.source.strip()}\n{said}")


def render(parts: list[Part], run: Run, figure_url: Any) -> str:
    """The page's markdown with each command's output under it and the figures drawn."""
    out = []
    for i, part in enumerate(parts):
        if part.kind == "console":
            lines = []
            for j, command in enumerate(part.commands):
                lines.append(f"$ {command}")
                printed = run.outputs.get((i, j), "").rstrip("\n")
                if printed:
                    lines.append("\n".join(line.rstrip() for line in printed.splitlines()))
            out.append("```console\n" + "\n".join(lines) + "\n```\n")
        elif part.kind == "code":
            out.append(part.source)
            printed = run.outputs.get((i, 0), "").rstrip("\n")
            if printed:
                body = "\n".join(line.rstrip() for line in printed.splitlines())
                out.append(f'\n```text title="output"\n{body}\n```\n')
        else:
            out.append(part.source)
        for path in run.figures.get(i, []):
            rel = path.relative_to(run.folder).as_posix()
            out.append(
                f'\n<figure class="nf-drawn"><img src="{figure_url(rel)}" alt="{rel}">'
                f"<figcaption>{rel}, drawn by the block above when this page was built"
                "</figcaption></figure>\n\n"
            )
    return "".join(out)


# --- the mkdocs hook -------------------------------------------------------------------------

_PENDING: dict[str, Path] = {}  # site path -> file to copy there after the build
_TEMP: list[tempfile.TemporaryDirectory] = []


def _lesson_pages() -> set[str]:
    from numfmt.lessons.catalog import LESSONS

    return {Path(lesson.page).name for lesson in LESSONS}


def on_startup(command: str, dirty: bool) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["NO_COLOR"] = "1"


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    src = page.file.src_uri
    if os.environ.get("NUMFMT_DOCS_RUN", "1") == "0":
        return markdown
    try:
        parts = split(markdown)
    except PageError as exc:
        raise PluginError(f"{src}: {exc}") from None
    if not any(p.kind != "text" for p in parts):
        return markdown
    stem = Path(src).stem
    temp = tempfile.TemporaryDirectory(prefix=f"numfmt-{stem}-")
    _TEMP.append(temp)
    folder = Path(temp.name) / "run"
    folder.mkdir()
    start = time.perf_counter()
    try:
        run = execute(parts, folder)
        check_doctests(parts, run)
    except PageError as exc:
        raise PluginError(f"{src}: {exc}") from None
    LOG.info("ran %s in %.1f s", src, time.perf_counter() - start)
    page_dir = Path(page.file.dest_uri).parent

    def figure_url(rel: str) -> str:
        target = f"run/{stem}/{rel}"
        _PENDING[target] = folder / rel
        return os.path.relpath(target, page_dir.as_posix() or ".").replace(os.sep, "/")

    text = render(parts, run, figure_url)
    if Path(src).name in _lesson_pages():
        import nbformat

        nb_path = Path(temp.name) / f"{stem}.ipynb"
        nbformat.write(run.notebook, nb_path)
        target = f"notebooks/{stem}.ipynb"
        _PENDING[target] = nb_path
        link = os.path.relpath(target, page_dir.as_posix() or ".").replace(os.sep, "/")
        note = (
            f'<p class="nf-notebook">This page is also a Jupyter notebook: '
            f'<a href="{link}" download>{stem}.ipynb</a>, executed when the site was built.</p>\n'
        )
        head, sep, rest = text.partition("\n")
        text = head + sep + "\n" + note + rest if head.startswith("# ") else note + text
    return text


def on_post_build(config: Any) -> None:
    site = Path(config.site_dir)
    for target, source in _PENDING.items():
        dest = site / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    _PENDING.clear()
    for temp in _TEMP:
        temp.cleanup()
    _TEMP.clear()
