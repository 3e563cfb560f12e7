"""Damaged and hostile model folders, built on the fly from the tiny Llama: each gets one clear
message and a non-zero exit (a NumfmtError from Python), and no input file changes.

The catalogue so far: damaged safetensors shards (cut short, an absurd header length, a header
that is not JSON, not UTF-8, an empty file), a sharded index pointing outside the folder (a
relative path up, an absolute path), a checkpoint missing a weight or holding an unknown one;
each through the in-memory path and, where it applies, ``--stream``.
"""

import hashlib
import json
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
