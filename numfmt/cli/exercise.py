"""``numfmt exercise``: the lessons' exercises (``numfmt.lessons.exercises``), posed and checked."""

from __future__ import annotations

import click

from numfmt.cli.base import UsageFailure, emit, fail_cleanly, json_option


@click.command()
@click.argument("lesson", required=False, metavar="[LESSON]")
@click.argument("number", required=False, type=int, metavar="[N]")
@click.option(
    "--seed",
    "-s",
    type=click.IntRange(min=0),
    default=None,
    help="Draw the question's values from this seed (the same seed, the same question). "
    "Without it one is chosen and printed.",
)
@click.option(
    "--answer",
    "-a",
    default=None,
    metavar="X",
    help="Check this answer to the question of --seed: exit status 0 if right, 1 if wrong "
    "(with the working), 2 if it is not in the asked form.",
)
@click.option(
    "--solution",
    is_flag=True,
    help="Show the answer and its working for the question of --seed.",
)
@click.option(
    "--lang",
    "-l",
    type=click.Choice(["en", "es"]),
    default="en",
    show_default=True,
    envvar="NUMFMT_LANG",
    help="The language of the questions and the working: en or es (NUMFMT_LANG=es makes "
    "Spanish the default).",
)
@json_option
@click.pass_context
@fail_cleanly
def exercise(ctx, lesson, number, seed, answer, solution, lang, as_json) -> None:
    """Exercises that check themselves: each lesson ends with a few. Yours has its own values,
    drawn from a seed; answer with the same seed and numfmt says whether you are right, and
    shows the working.

    With no LESSON, every lesson's exercises; with a LESSON and no N, that lesson's. Every
    question gives the form its answer takes (8 bits, an integer, a decimal to 3
    significant digits, a letter) and a numfmt command to explore it with. Decimals are
    written with a dot: 3.14, not 3,14.

    \b
    Examples:
      numfmt exercise                          every lesson's exercises
      numfmt exercise bits                     lesson 1's
      numfmt exercise bits 1                   a question, with a seed chosen for you
      numfmt exercise bits 1 --seed 7          the question of seed 7
      numfmt exercise bits 1 --seed 7 --answer 10100011
                                               right (status 0) or wrong (1), and why
      numfmt exercise bits 1 --seed 7 --solution    the answer and its working
      numfmt exercise quantization 2 --seed 3 --lang es     en español
      numfmt exercise floats 3 --seed 5 --json
    """
    es = lang == "es"
    if lesson is None or number is None:
        given = [
            name
            for name, value in (("--seed", seed), ("--answer", answer), ("--solution", solution))
            if value not in (None, False)
        ]
        if given:
            example = f"numfmt exercise {lesson or 'bits'} 1 --seed 7"
            raise UsageFailure(
                f"{', '.join(given)} "
                + (
                    f"{'es' if len(given) == 1 else 'son'} para un ejercicio: da su lección "
                    f"y su número, p. ej. {example} --lang es"
                    if es
                    else f"{'is' if len(given) == 1 else 'are'} about one exercise: give its "
                    f"lesson and number, e.g. {example}"
                )
            )
        from numfmt.lessons.exercises import exercise_list

        emit(exercise_list(lesson, lang=lang), as_json)
        return
    from numfmt.lessons.exercises import exercise as pose

    if (answer is not None or solution) and seed is None:
        option = "--answer" if answer is not None else "--solution"
        example = f"numfmt exercise {lesson} {number} --seed 7" + (" --lang es" if es else "")
        example += f" {option}" + (" X" if answer is not None else "")
        raise UsageFailure(
            f"{option} es para una pregunta: da la --seed con la que se planteó, p. ej. {example}"
            if es
            else f"{option} is about one question: give the --seed it was posed with, e.g. "
            f"{example}"
        )
    if answer is not None and solution:
        raise UsageFailure(
            "da --answer o --solution, no las dos"
            if es
            else "give --answer or --solution, not both"
        )
    ex = pose(lesson, number, seed=seed, lang=lang)
    if answer is None and not solution:
        emit(ex, as_json)
        return
    verdict = ex.solution() if solution else ex.check(answer)
    emit(verdict, as_json)
    ctx.exit(verdict.exit_code)
