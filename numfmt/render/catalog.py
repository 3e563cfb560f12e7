"""The lesson list in a terminal (rich only: no torch, no scikit-learn)."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from numfmt._display import renderer
from numfmt.lessons.catalog import LessonList
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL

PROSE = "what it shows, and where"


@renderer(LessonList)
def render_lessons(c: LessonList) -> Group:
    t = Table(box=None, header_style="bold", pad_edge=False, show_lines=False)
    t.add_column("#", justify="right")
    t.add_column("lesson", no_wrap=True)
    t.add_column(PROSE)
    for i, lesson in enumerate(c.lessons, 1):
        body = Text(lesson.title)
        body.append(f"\n{lesson.page}", style=LABEL)
        body.append(f"\ntime: {lesson.expected_time}", style=LABEL)
        for command in lesson.commands:
            body.append(f"\n  $ {command}")
        t.add_row(str(i), lesson.name, body)
    note = Text(
        "numfmt lesson NAME prints a lesson's key results here (qat, integer-mlp and "
        "language-model run their experiments; times measured on two idle cores); the pages "
        "run every command and code block they show when the site is built. --text and "
        "--calibration default to the essay that ships with numfmt: numfmt lesson --text-path "
        "prints where it is.",
        style=LABEL,
    )
    return Group(fit(t, wrap=[PROSE]), note)
