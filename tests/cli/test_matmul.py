"""numfmt matmul: the models' errors as a table or JSON, the list of models, the figure, and
bad options refused with one line and exit status 2."""

import json

from click.testing import CliRunner

from numfmt.cli import main


def _run(*args):
    return CliRunner().invoke(main, list(args))


def test_json_gives_each_model_and_promotion_helps():
    r = _run(
        "matmul", "--model", "hopper-fp8,hopper-fp8-promote128", "-m", "4", "-n", "4", "--json"
    )
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    err = {row["model"]: row["max_rel"] for row in data["models"]}
    assert set(err) == {"hopper-fp8", "hopper-fp8-promote128"}
    assert err["hopper-fp8"] > 10 * err["hopper-fp8-promote128"] > 0
    assert data["k"] == 4096 and data["curve"] is None


def test_list_names_every_model_with_a_source():
    from numfmt.arith.hardware import MODELS

    r = _run("matmul", "--list", "--json")
    assert r.exit_code == 0
    listed = json.loads(r.output)
    assert [m["name"] for m in listed] == list(MODELS)
    assert all(m["source"] for m in listed)
    text = _run("matmul", "--list").output
    assert "MMA-Sim" in text and "DeepSeek" in text


def test_plot_draws_and_never_overwrites(tmp_path):
    target = tmp_path / "mm.png"
    args = ("matmul", "--model", "fp32,hopper-fp8", "-k", "256", "-m", "4", "-n", "4")
    r = _run(*args, "--plot", str(target))
    assert r.exit_code == 0, r.output
    first = target.read_bytes()
    assert first[:4] == b"\x89PNG"
    again = _run(*args, "--plot", str(target))
    assert again.exit_code == 2 and "does not overwrite" in again.output
    assert target.read_bytes() == first


def test_bad_options_are_one_line_and_exit_2():
    for args, said in [
        (("--model", "tpu-v9"), "unknown matmul model"),
        (("--model", "hopper-fp8", "-k", "100"), "not a multiple of the fused group"),
        (("--model", ","), "names no model"),
        (("-k", "0"), "k is a whole number"),
        (("--dist", "cauchy"), "cauchy"),
    ]:
        r = _run("matmul", *args)
        assert r.exit_code == 2, (args, r.output)
        assert said in r.output
        assert "Traceback" not in r.output
