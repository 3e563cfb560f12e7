"""Every lesson page ends with its exercises, in both languages: the commands it shows run,
pose the lesson's exercises in the page's language, and the answer it gives is accepted."""

import re
import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.lessons import exercise_list
from numfmt.lessons.catalog import LESSONS

ROOT = Path(__file__).resolve().parents[2]
SECTIONS = {"en": "## Exercises", "es": "## Ejercicios"}


def _section(lesson, lang: str) -> str:
    page = ROOT / (lesson.page if lang == "en" else lesson.page.replace(".md", ".es.md"))
    text = page.read_text(encoding="utf-8")
    assert SECTIONS[lang] in text, f"{page.name} has no exercises section"
    return text.split(SECTIONS[lang], 1)[1]


@pytest.mark.parametrize("lang", ["en", "es"])
@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.name for lesson in LESSONS])
def test_each_lesson_page_ends_with_exercises_that_run_as_shown(lesson, lang):
    section = _section(lesson, lang)
    count = len(exercise_list(lesson.name).to_dict()["exercises"])
    assert re.search(rf"\b{count}\b", section.split("\n\n", 2)[1]), "the count is the catalog's"
    block = section.split("```text\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("  #", 1)[0]) for line in block.strip().splitlines()]
    assert len(commands) == 3
    for words in commands:
        assert words[:3] == ["numfmt", "exercise", lesson.name]
        assert ("--lang" in words) == (lang == "es")
        r = CliRunner().invoke(main, words[1:], env={"NO_COLOR": "1"})
        assert r.exit_code == 0, (words, r.output)  # posed, right (0), or solved
    answered = CliRunner().invoke(main, commands[1][1:], env={"NO_COLOR": "1"})
    right = "Correcto." if lang == "es" else "Correct."
    assert "--answer" in commands[1] and right in answered.output
    python = re.search(r'ex\.check\("([^"]*)"\)', section)
    assert python is not None and python.group(1) == commands[1][commands[1].index("--answer") + 1]
