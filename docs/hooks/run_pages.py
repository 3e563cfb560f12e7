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

A page may have twins in other languages (``lesson-bits.es.md`` beside ``lesson-bits.md``,
mkdocs-static-i18n's suffix layout, built as one more pass over the pages for each language).
A twin runs the same code (tests/test_i18n.py sees to it), so its code runs once: the first
page of a build with that code runs it, and every later page with the same cells, comments
aside, is given that run's outputs, figures and executed cells, under its own prose
(``reuse``). The Spanish notebook of a lesson is ``es/notebooks/NAME.ipynb`` on the site.

A command that fails, an output that differs, or a block the hook cannot run stops the build
with one message naming the page and the command. Running every lesson takes a minute or two
(lesson 6 quantizes SmolLM2 eight ways); ``NUMFMT_DOCS_RUN=0 mkdocs serve`` skips the runs
while editing prose (the commands then show no output). ``docs/make_notebooks.py`` writes the same
notebooks, unexecuted, into ``notebooks/``.
"""

from __future__ import annotations

import doctest
import io
import logging
import os
import re
import shlex
import shutil
import tempfile
import time
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LOG = logging.getLogger("mkdocs.hooks.run_pages")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*\n?", re.M | re.S)
FIGURES = (".png", ".svg", ".jpg")
#: The kernel prints values as doctest does (repr, not IPython's pretty printer).
SETUP = "%config PlainTextFormatter.pprint = False"
LOAD = "%load_ext numfmt"
#: A page's twin in another language: NAME.LANG.md beside NAME.md.
TWIN = re.compile(r"^(?P<name>.+)\.(?P<lang>[a-z]{2})\.md$")
#: What the build writes on a page, in the languages the pages are written in.
WORDS = {
    "en": {
        "notebook": "This page is also a Jupyter notebook: {link}, executed when the site was "
        "built.",
        "drawn": "{rel}, drawn by the block above when this page was built",
        "output": "output",
    },
    "es": {
        "notebook": "Esta página es también un cuaderno de Jupyter: {link}, ejecutado al "
        "construir el sitio.",
        "drawn": "{rel}, dibujada por el bloque de arriba al construir esta página",
        "output": "salida",
    },
}


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
    origin: list[tuple[int, int] | None] = field(default_factory=list)  # a notebook cell's part


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
    origin.pop(0)
    return Run(nb, outputs, figures, folder, origin)


def _code_key(source: str) -> str:
    """A cell's code without its comments (a twin page translates them) nor blank lines."""
    if source.lstrip().startswith("%"):  # a magic's line is its argument, '#' included
        return source.strip()
    try:
        tokens = [
            (tok.type, tok.string)
            for tok in tokenize.generate_tokens(io.StringIO(source + "\n").readline)
            if tok.type not in (tokenize.COMMENT, tokenize.NL)
        ]
    except (tokenize.TokenError, SyntaxError):
        return source.strip()
    return tokenize.untokenize(tokens)


def cells_key(parts: list[Part]) -> tuple[str, ...]:
    """What a page runs, cell by cell, comments aside: pages of one key print the same."""
    nb, _ = notebook(parts)
    return tuple(_code_key(c.source) for c in nb.cells if c.cell_type == "code")


def reuse(run: Run, parts: list[Part]) -> Run:
    """``run``'s outputs, figures and executed cells for a page of the same cells (its twin
    in another language): the twin's own notebook (its prose, its comments) with the outputs
    and execution counts of ``run``'s."""
    nb, origin = notebook(parts)
    done = [c for c in run.notebook.cells if c.cell_type == "code"]
    mine = [c for c in nb.cells if c.cell_type == "code"]
    if [_code_key(c.source) for c in done] != [_code_key(c.source) for c in mine]:
        raise PageError("reuse: the two pages do not run the same cells")
    for cell, ran in zip(mine, done, strict=True):
        cell.outputs = ran.outputs
        cell.execution_count = ran.execution_count
    theirs = [o for o in run.origin if o is not None]
    ours = [o for o in origin if o is not None]
    if len(theirs) != len(ours):
        raise PageError("reuse: the two pages do not run the same blocks")
    where = dict(zip(theirs, ours, strict=True))
    outputs = {where[k]: v for k, v in run.outputs.items()}
    part_of = {a[0]: b[0] for a, b in where.items()}
    figures = {part_of[i]: paths for i, paths in run.figures.items()}
    return Run(nb, outputs, figures, run.folder, origin)


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


def render(parts: list[Part], run: Run, figure_url: Any, lang: str = "en") -> str:
    """The page's markdown with each command's output under it and the figures drawn."""
    words = WORDS.get(lang, WORDS["en"])
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
                out.append(f'\n```text title="{words["output"]}"\n{body}\n```\n')
        else:
            out.append(part.source)
        for path in run.figures.get(i, []):
            rel = path.relative_to(run.folder).as_posix()
            out.append(
                f'\n<figure class="nf-drawn"><img src="{figure_url(rel)}" alt="{rel}">'
                f"<figcaption>{words['drawn'].format(rel=rel)}</figcaption></figure>\n\n"
            )
    return "".join(out)


# --- the mkdocs hook -------------------------------------------------------------------------

_PENDING: dict[str, Path] = {}  # site path -> file to copy there after the build
_TEMP: list[tempfile.TemporaryDirectory] = []
#: The runs of this build, by what they run (cells_key): a twin page reuses its original's.
_RUNS: dict[tuple[str, ...], Run] = {}


def _lesson_pages() -> set[str]:
    from numfmt.lessons.catalog import LESSONS

    return {Path(lesson.page).name for lesson in LESSONS}


def page_language(src_uri: str) -> tuple[str, str | None]:
    """``lesson-bits.es.md`` -> (``lesson-bits.md``, ``es``); a page in English has no suffix."""
    m = TWIN.match(src_uri)
    if m is None:
        return src_uri, None
    return f"{m.group('name')}.md", m.group("lang")


def _forget() -> None:
    """Drop the runs of the last build and their folders."""
    _RUNS.clear()
    _PENDING.clear()
    for temp in _TEMP:
        temp.cleanup()
    _TEMP.clear()


def on_startup(command: str, dirty: bool) -> None:
    os.environ.setdefault("MPLBACKEND", "Agg")
    os.environ["NO_COLOR"] = "1"


def on_config(config: Any) -> None:
    # The i18n plugin builds each further language from inside the first build's on_post_build
    # ("building" is then true): those passes reuse the first one's runs. A new build starts
    # afresh (mkdocs serve rebuilds run the pages again).
    i18n = config.plugins.get("i18n")
    if not getattr(i18n, "building", False):
        _forget()


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    from mkdocs.exceptions import PluginError

    src = page.file.src_uri
    if os.environ.get("NUMFMT_DOCS_RUN", "1") == "0":
        return markdown
    try:
        parts = split(markdown)
        key = cells_key(parts) if any(p.kind != "text" for p in parts) else None
    except PageError as exc:
        raise PluginError(f"{src}: {exc}") from None
    if key is None:
        return markdown
    original, lang = page_language(src)
    stem = Path(original).stem
    start = time.perf_counter()
    reused = key in _RUNS
    try:
        if reused:
            run = reuse(_RUNS[key], parts)
        else:
            temp = tempfile.TemporaryDirectory(prefix=f"numfmt-{stem}-")
            _TEMP.append(temp)
            folder = Path(temp.name) / "run"
            folder.mkdir()
            run = execute(parts, folder)
            _RUNS[key] = run
        check_doctests(parts, run)
    except PageError as exc:
        raise PluginError(f"{src}: {exc}") from None
    if reused:
        LOG.info("%s: the outputs of the same cells, run earlier in this build", src)
    else:
        LOG.info("ran %s in %.1f s", src, time.perf_counter() - start)
    page_dir = Path(page.file.dest_uri).parent

    def figure_url(rel: str) -> str:
        # a twin's figures are its original's: one file on the site for both
        target = f"run/{stem}/{rel}"
        _PENDING[target] = run.folder / rel
        return os.path.relpath(target, page_dir.as_posix() or ".").replace(os.sep, "/")

    words = WORDS.get(lang or "en", WORDS["en"])
    text = render(parts, run, figure_url, lang or "en")
    if original in _lesson_pages():
        import nbformat

        nb_path = Path(run.folder).parent / f"{stem}.{lang or 'en'}.ipynb"
        nbformat.write(run.notebook, nb_path)
        target = f"{lang}/notebooks/{stem}.ipynb" if lang else f"notebooks/{stem}.ipynb"
        _PENDING[target] = nb_path
        link = os.path.relpath(target, page_dir.as_posix() or ".").replace(os.sep, "/")
        anchor = f'<a href="{link}" download>{stem}.ipynb</a>'
        note = f'<p class="nf-notebook">{words["notebook"].format(link=anchor)}</p>\n'
        head, sep, rest = text.partition("\n")
        text = head + sep + "\n" + note + rest if head.startswith("# ") else note + text
    return text


def on_page_context(context: Any, page: Any, config: Any, nav: Any) -> Any:
    # The language switch of the two home pages links "/" and "/es/" (mkdocs-static-i18n's
    # absolute links): from the site's root, not the repository's GitHub Pages folder, and
    # nowhere on a copy opened from disk. Relative to the site, mkdocs' url filter makes them
    # relative to the page, as the other pages' links are.
    from urllib.parse import urlsplit

    base = urlsplit(config.site_url or "").path.rstrip("/") + "/"
    # the plugin sets the attribute (config.extra.alternate), which the theme reads first
    for alternates in (getattr(config.extra, "alternate", None), config.extra.get("alternate")):
        for alternate in alternates or []:
            link = alternate.get("link", "")
            if link.startswith(base):
                alternate["link"] = link[len(base) :] or "./"
    return context


def on_post_build(config: Any) -> None:
    # The runs' folders stay until the build is over (on_shutdown, or the next build's
    # on_config): the other languages' passes, built after this one, copy from them too.
    site = Path(config.site_dir)
    for target, source in _PENDING.items():
        dest = site / target
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, dest)
    _PENDING.clear()


def on_shutdown() -> None:
    _forget()
