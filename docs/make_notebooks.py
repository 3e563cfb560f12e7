"""Write each lesson as a Jupyter notebook into notebooks/, unexecuted, and its Spanish twin
(docs/NAME.es.md) into notebooks/es/.

The notebooks are made from the lesson pages by the same code the site build runs them with
(docs/hooks/run_pages.py): prose as markdown cells, each command as a ``%numfmt`` cell, each
example as a code cell. A test keeps them current: after editing a lesson, in either
language, run ``python docs/make_notebooks.py``.
"""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOOK = runpy.run_path(str(ROOT / "docs" / "hooks" / "run_pages.py"))


#: The languages the lessons are written in besides English (docs/NAME.LANG.md).
LANGUAGES = ("es",)


def lessons(lang: str | None = None) -> list[tuple[str, Path]]:
    """(notebook file name, lesson page) in the course's order; in ``lang``, the pages' twins
    (``lesson-bits.es.md``), under the same file names."""
    from numfmt.lessons.catalog import LESSONS

    out, seen = [], set()
    for lesson in LESSONS:
        page = ROOT / lesson.page
        if page in seen:
            continue
        seen.add(page)
        name = f"{len(out) + 1:02d}-{page.stem}.ipynb"
        out.append((name, page.with_suffix(f".{lang}.md") if lang else page))
    return out


def source(page: Path) -> str:
    """The notebook of one page, as the JSON text written to disk."""
    import nbformat

    nb, _ = HOOK["notebook"](HOOK["split"](page.read_text()))
    return nbformat.writes(nb) + "\n"


def folder(lang: str | None = None) -> Path:
    """Where the notebooks of a language go: notebooks/, notebooks/es/."""
    return ROOT / "notebooks" / lang if lang else ROOT / "notebooks"


def main() -> None:
    for lang in (None, *LANGUAGES):
        out = folder(lang)
        out.mkdir(exist_ok=True)
        wanted = {name for name, _ in lessons(lang)}
        for stale in out.glob("*.ipynb"):
            if stale.name not in wanted:
                stale.unlink()
        for name, page in lessons(lang):
            (out / name).write_text(source(page))
            print(f"wrote {(out / name).relative_to(ROOT)}")


if __name__ == "__main__":
    main()
