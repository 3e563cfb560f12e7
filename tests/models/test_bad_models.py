"""Damaged and hostile model folders, built on the fly from the tiny Llama: each gets one clear
message and a non-zero exit (a NumfmtError from Python), and no input file changes.

The catalogue so far: damaged safetensors shards (cut short, an absurd header length, a header
that is not JSON, not UTF-8, an empty file), a sharded index pointing outside the folder (a
relative path up, an absolute path), a checkpoint missing a weight or holding an unknown one;
each through the in-memory path and, where it applies, ``--stream``.
"""

import hashlib
import json
import pathlib
import re
import shutil
import struct

import pytest
from click.testing import CliRunner
from safetensors.torch import load_file, save_file

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.nn import load_model


def _run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _hashes(*roots):
    return {
        p: hashlib.sha256(p.read_bytes()).hexdigest()
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, tiny_llama):
    path = tmp_path_factory.mktemp("sharded") / "tiny"
    tiny_llama.save_pretrained(path, safe_serialization=True, max_shard_size="100KB")
    return path


def _copy(src, tmp_path, name="model"):
    dst = tmp_path / name
    shutil.copytree(src, dst)
    return dst


def _first_shard(folder):
    return sorted(folder.glob("*.safetensors"))[0]


def _cut_short(f):
    f.write_bytes(f.read_bytes()[:-100])


def _absurd_header(f):
    data = f.read_bytes()
    f.write_bytes(struct.pack("<Q", 2**62) + data[8:])


def _not_json(f):
    data = f.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    f.write_bytes(data[:8] + b"{" * n + data[8 + n :])


def _not_utf8(f):
    data = f.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    f.write_bytes(data[:8] + b"\xff" * n + data[8 + n :])


def _empty(f):
    f.write_bytes(b"")


DAMAGE = {
    "cut short": _cut_short,
    "absurd header length": _absurd_header,
    "header not JSON": _not_json,
    "header not UTF-8": _not_utf8,
    "empty file": _empty,
}


def _index_outside(folder, tmp_path, absolute):
    index = folder / "model.safetensors.index.json"
    data = json.loads(index.read_text())
    shard = sorted(set(data["weight_map"].values()))[0]
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.move(folder / shard, outside / shard)
    target = str(outside / shard) if absolute else f"../outside/{shard}"
    data["weight_map"] = {k: target if v == shard else v for k, v in data["weight_map"].items()}
    index.write_text(json.dumps(data))
    return outside


@pytest.mark.parametrize("kind", list(DAMAGE))
@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_a_damaged_shard_is_refused_in_one_line(sharded, tmp_path, kind, stream):
    folder = _copy(sharded, tmp_path)
    shard = _first_shard(folder)
    DAMAGE[kind](shard)
    before = _hashes(folder)
    extra = ["--stream", "--out", tmp_path / "q.safetensors"] if stream else []
    r = _run("model", "quantize", folder, "--recipe", "int8", *extra)
    assert r.exit_code == 2, r.output
    assert shard.name in r.stderr and "Traceback" not in r.output  # the file, named
    assert ("not a readable safetensors file" in r.stderr) != ("truncated" in r.stderr)
    assert r.stderr.count("Error:") == 1
    assert _hashes(folder) == before and not (tmp_path / "q.safetensors").exists()


@pytest.mark.parametrize("absolute", [False, True], ids=["relative", "absolute"])
@pytest.mark.parametrize("stream", [False, True], ids=["memory", "stream"])
def test_an_index_pointing_outside_the_folder_is_refused(sharded, tmp_path, absolute, stream):
    folder = _copy(sharded, tmp_path)
    outside = _index_outside(folder, tmp_path, absolute)
    before = _hashes(folder, outside)
    out = tmp_path / "q.safetensors"
    extra = ["--stream", "--out", out] if stream else []
    r = _run("model", "quantize", folder, "--recipe", "int8", *extra)
    assert r.exit_code == 2 and "outside the model's folder" in r.stderr, r.output
    assert _hashes(folder, outside) == before and not out.exists()
    with pytest.raises(NumfmtError, match="outside the model's folder"):
        load_model(folder, tokenizer=False)


def _edit_weights(folder, edit):
    f = folder / "model.safetensors"
    tensors = load_file(f)
    edit(tensors)
    save_file(tensors, f, metadata={"format": "pt"})


@pytest.mark.parametrize(
    "edit, message",
    [
        (
            lambda t: t.pop("model.layers.0.self_attn.q_proj.weight"),
            "lacks weights the model needs (they would start random): "
            "model.layers.0.self_attn.q_proj.weight",
        ),
        (
            lambda t: t.update(extra=t["model.norm.weight"].clone()),
            "holds weights the model does not have: extra",
        ),
    ],
    ids=["missing", "unexpected"],
)
def test_a_checkpoint_that_does_not_match_its_model_is_refused(folder, tmp_path, edit, message):
    damaged = _copy(folder, tmp_path)
    _edit_weights(damaged, edit)
    before = _hashes(damaged)
    r = _run("model", "quantize", damaged, "--recipe", "int8")
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert "MISSING" not in r.stderr and "Traceback" not in r.output  # transformers' report
    assert _hashes(damaged) == before


def test_a_model_with_a_nan_weight_is_refused_by_compare(folder_with_tokenizer, tmp_path):
    damaged = _copy(folder_with_tokenizer, tmp_path)
    _edit_weights(damaged, lambda t: t["model.layers.0.mlp.down_proj.weight"].__setitem__(
        (0, 0), float("nan")))  # fmt: skip
    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog. " * 4)
    before = _hashes(damaged)
    r = _run("model", "compare", damaged, "-r", "fp32", "--text", text, "-n", "40", "-c", "32")
    assert r.exit_code == 2 and "logits hold NaN or infinity" in r.stderr, r.output
    assert "nan" not in r.stdout and _hashes(damaged) == before


class _RunsCode:
    """A pickle that would create a file when unpickled by a loader that runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


@pytest.mark.parametrize("kind", ["runs code", "not a pickle"])
def test_allow_pickle_on_weights_torch_will_not_load_is_refused(folder, tmp_path, kind):
    import torch

    damaged = _copy(folder, tmp_path)
    (damaged / "model.safetensors").unlink()
    marker = tmp_path / "ran"
    weights = damaged / "pytorch_model.bin"
    if kind == "runs code":
        torch.save({"model.norm.weight": _RunsCode(marker)}, weights)
    else:
        weights.write_bytes(b"not a pickle at all " * 8)
    before = _hashes(damaged)
    refused = _run("model", "quantize", damaged, "--recipe", "int8")
    assert refused.exit_code == 2 and "--allow-pickle" in refused.stderr  # asked for first
    r = _run("model", "quantize", damaged, "--recipe", "int8", "--allow-pickle")
    assert r.exit_code == 2 and "weights_only" in r.stderr, r.output
    assert r.stderr.count("Error:") == 1 and "Traceback" not in r.output
    assert not marker.exists() and _hashes(damaged) == before


@pytest.fixture(scope="module")
def saved(tmp_path_factory, tiny_llama):
    from numfmt.nn import quantize_model, save_model

    path = tmp_path_factory.mktemp("saved") / "q.safetensors"
    q, _ = quantize_model(tiny_llama, "int8/channel")
    save_model(q, path)
    return path


def _with_metadata(src, dst, **changes):
    from numfmt._safetensors import SafetensorsFile

    f = SafetensorsFile(src)
    data = src.read_bytes()
    header = json.loads(data[8 : f.start])
    header["__metadata__"].update(changes)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + data[f.start :])
    return dst


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"layers": "{not json"}, "its layout (the layers metadata) is damaged"),
        ({"layers": "[1, 2]"}, "its layout (the layers metadata) is damaged"),
        ({"tied": "7"}, "tied-weights metadata is damaged"),
        ({"config": "{broken"}, "its transformers config (metadata) is damaged"),
    ],
)
def test_a_saved_model_with_damaged_metadata_is_refused(saved, tmp_path, changes, message):
    from numfmt.nn import load_quantized

    damaged = _with_metadata(saved, tmp_path / "bad.safetensors", **changes)
    before = _hashes(tmp_path)
    with pytest.raises(NumfmtError, match=re.escape(message)):
        load_quantized(damaged)
    assert _hashes(tmp_path) == before


def test_options_a_path_cannot_honour_are_refused(saved, sharded, tmp_path):
    from numfmt.nn import load_quantized

    with pytest.raises(NumfmtError, match="device_map='banana'"):
        load_quantized(saved, device_map="banana")
    out = tmp_path / "q.safetensors"
    r = _run("model", "quantize", sharded, "--recipe", "w8a8-token", "--stream", "--out", out)
    assert r.exit_code == 2 and "quantizes activations on the fly" in r.stderr, r.output
    assert not out.exists()


def _header(path):
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    return data, n, json.loads(data[8 : 8 + n])


def _flip_bytes(src, dst, name, count=16):
    """``count`` bytes of tensor ``name`` inverted in a copy of ``src``."""
    data, n, header = _header(src)
    begin = 8 + n + header[name]["data_offsets"][0]
    out = bytearray(data)
    for i in range(begin, begin + count):
        out[i] ^= 0xFF
    dst.write_bytes(bytes(out))
    return dst


def _edit_header(src, dst, edit):
    data, n, header = _header(src)
    edit(header)
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    dst.write_bytes(struct.pack("<Q", len(raw)) + raw + data[8 + n :])
    return dst


def _nan_scale(src, dst, name):
    """The first scale of ``name`` made NaN, and the file's checksums dropped (as a file from
    before numfmt kept them, or a careful forger, would have it)."""
    data, n, header = _header(src)
    begin = 8 + n + header[f"{name}.scale"]["data_offsets"][0]
    out = bytearray(data)
    out[begin : begin + 4] = struct.pack("<f", float("nan"))
    dst.write_bytes(bytes(out))
    return _edit_header(dst, dst, lambda h: h["__metadata__"].pop("checksums"))


LAYER = "model.layers.0.mlp.down_proj"
TAMPERED = {
    "flipped code bytes": (
        lambda s, d: _flip_bytes(s, d, f"{LAYER}.codes"),
        f"tensor '{LAYER}.codes' was changed or damaged since numfmt wrote it (its bytes do not "
        "match their checksum)",
        None,
    ),
    "flipped float weight": (
        lambda s, d: _flip_bytes(s, d, "model.norm.weight", 4),
        "tensor 'model.norm.weight' was changed or damaged",
        None,
    ),
    "scale dtype changed at the same size": (
        lambda s, d: _edit_header(s, d, lambda h: h[f"{LAYER}.scale"].update(dtype="I32")),
        "its header says I32 [64]; it was written as F32 [64]",
        f"'{LAYER}.scale' is int32; the layout stores it as float32",
    ),
    "NaN scale, no checksums": (
        lambda s, d: _nan_scale(s, d, LAYER),
        f"'{LAYER}.scale' holds 1 NaN or infinite value",
        f"'{LAYER}.scale' holds 1 NaN or infinite value",
    ),
    "checksums damaged": (
        lambda s, d: _with_metadata(s, d, checksums="{broken"),
        "its checksums (metadata) are damaged",
        "its checksums (metadata) are damaged",
    ),
    "a tensor added": (
        lambda s, d: _add_tensor(s, d),
        "tensor 'model.norm.weight' was changed or damaged since numfmt wrote it (it has no "
        "checksum",
        None,
    ),
}


def _add_tensor(src, dst):
    """The checksums' entry of a float weight dropped, as if the tensor had been added."""

    def drop(h):
        sums = json.loads(h["__metadata__"]["checksums"])
        del sums["model.norm.weight"]
        h["__metadata__"]["checksums"] = json.dumps(sums)

    return _edit_header(src, dst, drop)


@pytest.mark.parametrize("kind", list(TAMPERED))
def test_a_tampered_quantized_file_is_refused(saved, tmp_path, kind):
    """numfmt's own file keeps each tensor's dtype, shape and SHA-256: changed bytes or header
    entries are refused on load; without the sums (verify=False), the layout's own checks
    still refuse a part of the wrong dtype and a non-finite scale."""
    from numfmt.nn import load_quantized

    make, message, unverified = TAMPERED[kind]
    damaged = make(saved, tmp_path / "bad.safetensors")
    before = _hashes(tmp_path)
    with pytest.raises(NumfmtError, match=re.escape(message)):
        load_quantized(damaged)
    if unverified is None:  # the layout cannot see it: loads, and differs from the original
        loaded = load_quantized(damaged, verify=False)
        original = load_quantized(saved)
        changed = [
            k
            for k, v in loaded.state_dict().items()
            if not (v.shape == original.state_dict()[k].shape and v.equal(original.state_dict()[k]))
        ]
        assert changed or kind == "a tensor added"
    else:
        with pytest.raises(NumfmtError, match=re.escape(unverified)):
            load_quantized(damaged, verify=False)
    assert _hashes(tmp_path) == before


def test_a_tampered_file_is_refused_through_the_offloading_path(saved, tmp_path):
    from numfmt.nn import load_quantized

    damaged = _flip_bytes(saved, tmp_path / "bad.safetensors", f"{LAYER}.codes")
    placement = {"model.embed_tokens": "cpu", "lm_head": "cpu", "model.norm": "cpu",
                 "model.rotary_emb": "cpu", "model.layers.0": "disk", "model.layers.1": "disk"}  # fmt: skip
    with pytest.raises(NumfmtError, match="changed or damaged since numfmt wrote it"):
        load_quantized(damaged, device_map=placement, offload_folder=tmp_path / "off")
    assert not (tmp_path / "off").exists() or not any((tmp_path / "off").iterdir())


def test_the_cli_refuses_a_tampered_file_and_no_verify_skips_the_sums(saved, tmp_path):
    damaged = _flip_bytes(saved, tmp_path / "bad.safetensors", f"{LAYER}.codes")
    r = _run("memory", damaged)
    assert r.exit_code == 2 and "--no-verify" in r.stderr and "Traceback" not in r.output
    assert r.stderr.count("Error:") == 1
    skipped = _run("memory", damaged, "--no-verify")
    assert skipped.exit_code == 0, skipped.output


@pytest.fixture(scope="module")
def writers(tmp_path_factory, tiny_llama, sharded):
    """Each of numfmt's writers, as (arguments before --out, output suffix)."""
    import numpy as np

    from tests.models.test_gguf_read import _write

    root = tmp_path_factory.mktemp("sources")
    gguf_source = root / "tiny.gguf"
    _write(gguf_source, tiny_llama, quantized=())
    weights = root / "w.npy"
    np.save(weights, np.linspace(-1, 1, 64, dtype=np.float32))
    return {
        "model": (["model", "quantize", sharded, "-r", "int8"], ".safetensors"),
        "stream": (["model", "quantize", sharded, "-r", "int8", "--stream"], ".safetensors"),
        "gguf": (["model", "quantize", gguf_source, "-r", "q8_0"], ".gguf"),
        "tensor": (["quantize", weights, "-b", "4"], ".safetensors"),
    }


@pytest.mark.parametrize("writer", ["model", "stream", "gguf", "tensor"])
@pytest.mark.parametrize("place", ["missing folder", "under a file", "read-only folder"])
def test_every_writer_treats_its_output_folder_alike(writers, tmp_path, monkeypatch, writer, place):
    """A missing folder is made; a path under a file, or in a folder that cannot be written,
    is refused in one line before any work, and nothing is left behind."""
    import os

    args, suffix = writers[writer]
    folder = tmp_path / "out" / "deeper"
    if place == "under a file":
        (tmp_path / "out").write_text("a file where a folder should be")
    elif place == "read-only folder":
        folder.mkdir(parents=True)
        folder.chmod(0o500)
        if os.access(folder, os.W_OK):  # root writes anywhere: say the folder is read-only
            real = os.access
            monkeypatch.setattr(os, "access", lambda p, mode: real(p, mode) and p != folder)
    out = folder / f"q{suffix}"
    r = _run(*args, "--out", out)
    if place == "missing folder":
        assert r.exit_code == 0 and out.is_file(), r.output
        return
    why = "is a file, not a folder" if place == "under a file" else "is not writable"
    assert r.exit_code == 2 and f"cannot write {out}" in r.stderr and why in r.stderr, r.output
    assert r.stderr.count("Error:") == 1 and "Traceback" not in r.output
    assert "loading" not in r.stderr  # refused before the model was read
    assert not out.exists() and (not folder.exists() or not any(folder.iterdir()))
    if folder.exists():
        folder.chmod(0o700)  # for the cleanup


def _edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    for k, v in changes.items():
        if v is None:
            config.pop(k, None)
        else:
            config[k] = v
    path.write_text(json.dumps(config))


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"hidden_size": "abc"}, "its config.json does not describe a model"),
        ({"num_attention_heads": 3}, "its config.json does not describe a model"),
        ({"architectures": None}, "its config.json names no architecture"),
    ],
    ids=["a size of the wrong type", "heads that do not divide", "no architecture"],
)
def test_a_config_that_does_not_describe_the_model_is_refused(folder, tmp_path, changes, message):
    damaged = _copy(folder, tmp_path)
    _edit_config(damaged, **changes)
    before = _hashes(damaged)
    r = _run("model", "quantize", damaged, "-r", "int8")
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert r.stderr.count("Error:") == 1 and "Traceback" not in r.output
    assert _hashes(damaged) == before


def test_calibration_windows_fit_the_models_positions(folder_with_tokenizer, tmp_path):
    """The tiny model reads 128 positions: calibration windows of 512 would run past them."""
    from numfmt.nn.algorithms.calibration import calibration_windows

    loaded = load_model(folder_with_tokenizer)
    text = "The quick brown fox jumps over the lazy dog. " * 20
    windows = calibration_windows(loaded.tokenizer, text, 512, model=loaded.model)
    assert [tuple(w.shape) for w in windows] == [(1, 128)] * 4
    with pytest.raises(NumfmtError, match="64 calibration tokens do not fill one window of 128"):
        calibration_windows(loaded.tokenizer, text, 64, model=loaded.model)
    calibration = tmp_path / "c.txt"
    calibration.write_text(text)
    r = _run("model", "quantize", folder_with_tokenizer, "-r", "int4/group:32", "--gptq",
             "--calibration", calibration, "--calibration-tokens", "256")  # fmt: skip
    assert r.exit_code == 0, r.output


def test_a_stream_reads_what_the_in_memory_path_reads(folder, tmp_path):
    """model.safetensors alone, as transformers reads it: a stray file beside it changes
    nothing; several files and no index are refused."""
    from numfmt.nn import load_quantized

    stray = _copy(folder, tmp_path)
    doubled = {k: v * 2 for k, v in load_file(stray / "model.safetensors").items()}
    save_file(doubled, stray / "z-other.safetensors")
    streamed, whole = tmp_path / "s.safetensors", tmp_path / "m.safetensors"
    assert _run("model", "quantize", stray, "-r", "int8", "--stream", "-o", streamed).exit_code == 0
    assert _run("model", "quantize", stray, "-r", "int8", "-o", whole).exit_code == 0
    a, b = load_quantized(streamed).state_dict(), load_quantized(whole).state_dict()
    assert a.keys() == b.keys() and all(torch_equal(a[k], b[k]) for k in a)
    (stray / "model.safetensors").rename(stray / "a-model.safetensors")
    r = _run("model", "quantize", stray, "-r", "int8", "--stream", "-o", tmp_path / "x.safetensors")
    assert r.exit_code == 2 and "is in both a-model.safetensors and z-other" in r.stderr, r.output


def torch_equal(a, b):
    return a.shape == b.shape and bool((a == b).all())


def test_a_stream_refuses_a_tied_head_it_cannot_quantize(folder, tmp_path):
    out = tmp_path / "q.safetensors"
    args = ("model", "quantize", folder, "-r", "int4/group:32", "--include-head", "-o", out)
    r = _run(*args, "--stream")
    assert r.exit_code == 2 and "lm_head shares its weight with model.embed_tokens" in r.stderr
    assert not out.exists()
    assert _run(*args).exit_code == 0  # in memory the head gets its own quantized weight


@pytest.mark.parametrize(
    "args, message",
    [
        (["quantize", "-r", "int8", "--damp", "0.1"], "--damp goes with --algorithm gptq"),
        (
            ["quantize", "-r", "int8", "--kl-per", "model"],
            "--kl-per goes with --algorithm model-kl",
        ),
        (
            ["quantize", "-r", "int8", "--calibration-tokens", "600"],
            "--calibration-tokens goes with",
        ),
        (["compare", "-r", "int8", "--layer", "model.norm"], "--layer chooses the layer --plots"),
        (["compare", "-r", "int8", "--new-tokens", "4"], "--new-tokens goes with --prompt"),
        (["compare", "-r", "int8", "--prompt", " "], "--prompt is empty"),
        (["perplexity", "--offload-folder", "OUT"], "--offload-folder goes with --max-memory"),
        (["sensitivity", "--high", "int4"], "--high goes with --budget"),
        (["sensitivity", "--budget", "6", "--high", "int4/bogus"], "bogus"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_options_a_command_would_ignore_are_refused(folder_with_tokenizer, tmp_path, args, message):
    args = [str(tmp_path / "off") if a == "OUT" else a for a in args]
    r = _run("model", args[0], folder_with_tokenizer, *args[1:])
    assert r.exit_code == 2 and message in r.stderr, r.output
    assert r.stdout == "" and "loading" not in r.stderr  # before any work
    assert not (tmp_path / "off").exists()


def test_compare_refuses_a_missing_layer_before_scoring_and_an_encoders_options(
    folder_with_tokenizer, tmp_path
):
    text = tmp_path / "t.txt"
    text.write_text("The quick brown fox jumps over the lazy dog.\nA second line.\n")
    plots = tmp_path / "plots"
    r = _run("model", "compare", folder_with_tokenizer, "-r", "int8", "-t", text,
             "--plots", plots, "--layer", "nowhere")  # fmt: skip
    assert r.exit_code == 2 and "--layer nowhere: no such layer" in r.stderr, r.output
    assert "compare: int8" not in r.stderr and not plots.exists()  # no scoring, no folder
    r = _run("model", "compare", "minilm-l6", "-r", "int8", "-t", text, "--context", "64",
             "--plots", plots)  # fmt: skip
    assert r.exit_code == 2 and "--context, --plots only apply to a language model" in r.stderr
    assert not plots.exists()


def test_memory_measures_a_quantized_file_as_it_is_held(saved, tiny_llama):
    r = _run("memory", saved, "--json")
    assert r.exit_code == 0, r.output
    held = json.loads(r.stdout)
    floats = sum(t.numel() for t in [*tiny_llama.parameters(), *tiny_llama.buffers()]
                 if t.is_floating_point())  # fmt: skip
    assert held["parameters"] == floats  # the quantized layers' weights counted too
    made = sum(b.numel() * b.element_size() for b in tiny_llama.model.rotary_emb.buffers())
    stored = saved.stat().st_size - 8 - _header(saved)[1]  # the file's tensors, then the
    assert held["bytes"] == stored + made  # rotary frequencies the model makes itself
    assert held["bits_per_weight"] < 16
    r = _run("memory", saved, "-r", "int4")
    assert r.exit_code == 2 and "quantized already" in r.stderr
    r = _run("memory", "1e400")
    assert r.exit_code == 2 and "counts up to 1e100" in r.stderr and "Traceback" not in r.output
