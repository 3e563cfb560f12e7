"""The lesson list in a terminal (rich only: no torch, no scikit-learn)."""

from __future__ import annotations

import shlex

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from numfmt._display import renderer
from numfmt.lessons.catalog import LessonList
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL

PROSE = "what it shows, and where"


class Command:
    """``$ command`` that, where it is too long for its column, breaks between words with a
    shell continuation (`` \\``) and indents the rest: copied whole, it still runs."""

    def __init__(self, command: str):
        self.words = ["$", *(shlex.quote(w) for w in shlex.split(command))]  # 'I have a dream'
        self.plain = " ".join(self.words)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        lines, line = [], "  "
        for word in self.words:
            if line.strip() and len(line) + 1 + len(word) + 2 > width:
                lines.append(line + " \\")
                line = "      " + word
            else:
                line = f"{line} {word}" if line.strip() else line + word
        lines.append(line)
        yield Text("\n".join(lines))

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max(len(w) for w in self.words)
        return Measurement(min(longest + 8, len(self.plain) + 2), len(self.plain) + 2)


@renderer(LessonList)
def render_lessons(c: LessonList) -> Group:
    t = Table(box=None, header_style="bold", pad_edge=False, show_lines=False)
    t.add_column("#", justify="right")
    t.add_column("lesson", no_wrap=True)
    t.add_column(PROSE)
    for i, lesson in enumerate(c.lessons, 1):
        about = Text(lesson.title)
        about.append(f"\n{lesson.page}", style=LABEL)
        about.append(f"\ntime: {lesson.expected_time}", style=LABEL)
        t.add_row(str(i), lesson.name, Group(about, *map(Command, lesson.commands)))
    note = Text(
        "numfmt lesson NAME prints a lesson's key results here (qat, integer-mlp, "
        "language-model, training and matmul run their experiments; times measured on two "
        "idle cores); the pages "
        "run every command and code block they show when the site is built. --text and "
        "--calibration default to the essay that ships with numfmt: numfmt lesson --text-path "
        "prints where it is.",
        style=LABEL,
    )
    return Group(fit(t, wrap=[PROSE]), note)
