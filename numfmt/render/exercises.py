"""Exercises in a terminal (and, through rich, in a notebook): the question, the verdict, the
list. Every word of them comes from the exercise; this module only lays them out."""

from __future__ import annotations

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from numfmt._display import GROUP_SEPARATOR, renderer
from numfmt.lessons.exercises.core import Exercise, ExerciseList, Verdict
from numfmt.render.catalog import Command
from numfmt.render.fit import fit
from numfmt.render.quant import LABEL

#: The view's own words, in each language.
WORDS = {
    "en": {
        "seed": "seed",
        "answer": "answer",
        "explore": "explore",
        "check": "check",
        "correct": "Correct.",
        "wrong": "Not right.",
        "you": "You answered {given}; the answer is {expected}.",
        "right": "The answer is {expected}.",
        "why": "Why:",
        "lesson": "lesson",
        "kind": "kind",
        "exercise": "exercise",
        "list_note": "numfmt exercise LESSON N poses one (add --seed S for a given question, "
        "--lang es for Spanish); --answer X checks an answer.",
    },
    "es": {
        "seed": "semilla",
        "answer": "respuesta",
        "explore": "explora",
        "check": "comprueba",
        "correct": "Correcto.",
        "wrong": "No es correcto.",
        "you": "Respondiste {given}; la respuesta es {expected}.",
        "right": "La respuesta es {expected}.",
        "why": "Por qué:",
        "lesson": "lección",
        "kind": "tipo",
        "exercise": "ejercicio",
        "list_note": "numfmt exercise LECCIÓN N plantea uno (añade --seed S para una pregunta "
        "concreta, --lang en para inglés); --answer X comprueba una respuesta.",
    },
}


#: Stands in for the narrow space between groups of digits while a line is wrapped: rich
#: breaks lines at any whitespace, and 70 553 / 706 496 would read as two numbers.
_HELD = "\ue000"


class Prose:
    """A text that wraps between words, never inside a number grouped by narrow spaces."""

    def __init__(self, text: Text):
        self.text = text

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        held = self.text.copy()
        held.plain = held.plain.replace(GROUP_SEPARATOR, _HELD)
        for line in held.wrap(console, options.max_width):
            line.plain = line.plain.replace(_HELD, GROUP_SEPARATOR)
            yield line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.text)


def _prose(text: str, style: str = "") -> Prose:
    return Prose(Text(text, style=style))


def _labelled(label: str, value: str) -> Text:
    t = Text(f"{label}: ", style=LABEL)
    t.append(value)
    return t


def _head(ex: Exercise) -> Text:
    head = Text(f"{ex.lesson} {ex.number}: {ex.title}", style="bold")
    head.append(f"   ({WORDS[ex.lang]['seed']} {ex.seed})", style=LABEL)
    return head


@renderer(Exercise)
def render_exercise(ex: Exercise) -> Group:
    w = WORDS[ex.lang]
    return Group(
        _head(ex),
        Text(""),
        _prose(ex.question),
        Text(""),
        _labelled(w["answer"], ex.form),
        Text(f"{w['explore']}:", style=LABEL),
        Command(ex.hint),
        Text(f"{w['check']}:", style=LABEL),
        Command(ex.command + " ..."),
    )


@renderer(Verdict)
def render_verdict(v: Verdict) -> Group:
    w = WORDS[v.exercise.lang]
    if v.correct:
        head = Text(w["correct"], style="bold green")
        head.append(" " + w["right"].format(expected=v.expected))
    else:
        head = Text(w["wrong"], style="bold red")
        head.append(" " + w["you"].format(given=v.given, expected=v.expected))
    parts: list = [_head(v.exercise), _prose(v.exercise.question, LABEL), Text(""), Prose(head)]
    if v.diagnosis:
        parts.append(_prose(v.diagnosis, "yellow"))
    parts += [Text(""), Text(w["why"], style=LABEL), _prose(v.explanation)]
    return Group(*parts)


@renderer(ExerciseList)
def render_exercise_list(c: ExerciseList) -> Group:
    w = WORDS[c.lang]
    t = Table(box=None, header_style="bold", pad_edge=False)
    t.add_column(w["lesson"], no_wrap=True)
    t.add_column("#", justify="right")
    t.add_column(w["kind"], no_wrap=True)
    t.add_column(w["exercise"])
    previous = None
    for e in c.entries:
        t.add_row(e.lesson if e.lesson != previous else "", str(e.number), e.kind_name, e.title)
        previous = e.lesson
    return Group(fit(t, wrap=[w["exercise"]]), Text(w["list_note"], style=LABEL))
