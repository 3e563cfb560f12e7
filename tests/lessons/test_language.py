"""Lesson 6 (numfmt.lessons.language, numfmt lesson language-model) on a tiny Llama with a
character tokenizer: the whole path in seconds. The lesson page runs it on SmolLM2."""

import json

import pytest
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.lessons.language import RECIPES, language_model, sample_text

pytest.importorskip("transformers")


def test_the_sample_text_ships_with_numfmt_and_is_plain_english():
    text = sample_text()
    assert 550 < len(text.split()) < 800 and text.isascii()
    assert RECIPES[0] == "fp32" and {"int8-absmax", "int8-zeropoint", "w8a8-tensor"} <= set(RECIPES)


def test_the_lesson_scores_every_recipe_on_one_text_against_float(folder_with_tokenizer):
    r = language_model(
        folder_with_tokenizer,
        recipes=["fp32", "int8/channel", "int2/channel"],
        max_tokens=48,
        new_tokens=3,
        progress=False,
    )
    rows = {row.recipe: row for row in r.rows}
    assert list(rows) == ["fp32", "int8/channel", "int2/channel"] and r.tokens == 47
    assert rows["fp32"].kl is None and rows["int2/channel"].kl > rows["int8/channel"].kl > 0
    assert all(row.own_text_perplexity > 0 for row in r.rows)  # the own-text column
    assert [name for name, _ in r.generations] == list(rows)
    # the character tokenizer decodes with spaces between characters
    assert all("".join(t.split()).startswith("Ihaveadream") for _, t in r.generations)
    assert r.layer == "model.layers.0.self_attn.q_proj" and set(r.layer_weights) == set(rows)


def test_the_lesson_refuses_what_it_cannot_score(folder_with_tokenizer, tmp_path):
    with pytest.raises(NumfmtError, match="at least 2 tokens"):
        language_model(folder_with_tokenizer, max_tokens=1)
    with pytest.raises(NumfmtError):
        language_model(tmp_path / "absent")


def test_the_command_prints_json_draws_and_refuses_misuse(folder_with_tokenizer, tmp_path):
    args = ["lesson", "language-model", "--model", str(folder_with_tokenizer), "-n", "32"]
    r = CliRunner().invoke(main, [*args, "-r", "fp32,int4/group:32", "--new-tokens", "2", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert r.stderr == ""  # no progress with --json
    assert [row["recipe"] for row in data["recipes"]] == ["fp32", "int4/group:32"]
    assert data["prompt"] == "I have a dream" and data["tokens"] == 31
    figures = tmp_path / "figs"
    r = CliRunner().invoke(
        main, [*args, "-r", "fp32,int8/channel", "--new-tokens", "2", "--plots", str(figures)]
    )
    assert r.exit_code == 0, r.output
    assert "int8/channel" in r.stdout and "own-text" in r.stdout
    # off a terminal: a line as it loads, and one per recipe
    lines = r.stderr.splitlines()
    assert lines[0] == f"language-model: loading {folder_with_tokenizer} ..."
    assert [line.split(" (")[0] for line in lines[1:3]] == [
        "language-model: [1/2] fp32 scored, generated, own text scored",
        "language-model: [2/2] int8/channel quantized, scored, generated, own text scored",
    ]
    assert sorted(p.name for p in figures.iterdir()) == ["histogram.png", "pareto.png", "sqnr.png"]
    r = CliRunner().invoke(main, [*args, "-r", " , "])
    assert r.exit_code == 2 and "at least one recipe" in r.output
    r = CliRunner().invoke(main, [*args, "--text", str(tmp_path / "none.txt")])
    assert r.exit_code != 0 and "cannot read the text" in r.output
    r = CliRunner().invoke(main, ["lesson", "language-model", "--model", str(tmp_path / "no")])
    assert r.exit_code != 0 and "Traceback" not in r.output and r.output.count("\n") <= 3
