"""Write each lesson as a Jupyter notebook into notebooks/, unexecuted.

The notebooks are made from the lesson pages by the same code the site build runs them with
(docs/hooks/run_pages.py): prose as markdown cells, each command as a ``%numfmt`` cell, each
example as a code cell. A test keeps them current: after editing a lesson, run
``python docs/make_notebooks.py``.
"""

from __future__ import annotations

import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOOK = runpy.run_path(str(ROOT / "docs" / "hooks" / "run_pages.py"))


def lessons() -> list[tuple[str, Path]]:
    """(notebook file name, lesson page) in the course's order."""
    from numfmt.lessons.catalog import LESSONS

    out, seen = [], set()
    for lesson in LESSONS:
        page = ROOT / lesson.page
        if page in seen:
            continue
        seen.add(page)
        out.append((f"{len(out) + 1:02d}-{page.stem}.ipynb", page))
    return out


def source(page: Path) -> str:
    """The notebook of one page, as the JSON text written to disk."""
    import nbformat

    nb, _ = HOOK["notebook"](HOOK["split"](page.read_text()))
    return nbformat.writes(nb) + "\n"


def main() -> None:
    out = ROOT / "notebooks"
    out.mkdir(exist_ok=True)
    wanted = {name for name, _ in lessons()}
    for stale in out.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()
    for name, page in lessons():
        (out / name).write_text(source(page))
        print(f"wrote notebooks/{name}")


if __name__ == "__main__":
    main()
