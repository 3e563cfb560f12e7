"""numfmt's quantized tensor files: what is saved loads back the same, bad files get one line."""

import json
import re

import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.quant import load, load_all, quantize_tensor, save
from numfmt.tensorio import list_tensors, load_tensor, read_metadata, save_safetensors

SPECS = [
    "int8",
    "int8/channel",
    "int4/asym/group:32",
    "int4/min/group:32/scale:fp16",
    "int3/channel",
    "int2/group:16",
    "int12/asym/channel",
    "int32/channel",
    "fp8_e4m3/group:32/scale:bf16",
    "fp6_e3m2/group:32",
    "mxfp4",
    "mxfp6_e2m3",
    "mxint8",
    "nvfp4",
    "nf4",
    "q4_0",
    "q4_1",
    "q5_1",
    "q8_0",
    "int4/group:48",  # a ragged last group
]


def _x():
    rng = np.random.default_rng(0)
    return (rng.standard_normal((8, 96)) * np.exp(rng.standard_normal((8, 1)))).astype(np.float32)


@pytest.mark.parametrize("spec", SPECS)
def test_saved_tensors_load_back_the_same(spec, tmp_path):
    x = _x()
    qt = quantize_tensor(x, spec)
    path = qt.save(tmp_path / "q.safetensors", name="w")
    back = load(path)
    assert back.scheme == qt.scheme and back.shape == qt.shape and back.dtype == "float32"
    assert np.array_equal(back.codes, qt.codes) and back.codes.dtype == qt.codes.dtype
    assert np.array_equal(back.dequantize(), qt.dequantize())
    assert back.nbytes == qt.nbytes
    if qt.scheme.bits % 8:  # packed: the file is about as small as the count says
        assert list_tensors(path)["w.codes"][1][0] == -(-x.size * qt.scheme.bits // 8)


def test_the_layout_is_written_in_the_metadata(tmp_path):
    qt = quantize_tensor(_x(), "int4/asym/group:32/scale:fp16")
    path = qt.save(tmp_path / "q.safetensors", name="layers.0.weight")
    doc = json.loads(read_metadata(path)["numfmt"])
    entry = doc["tensors"]["layers.0.weight"]
    assert doc["layout"] == 1
    assert entry["scheme"] == "int4/asym/group:32/scale:float16"
    assert entry["shape"] == [8, 96] and entry["dtype"] == "float32"
    assert entry["packing"] == "low_first" and entry["scale_storage"] == "float"
    assert set(list_tensors(path)) == {
        "layers.0.weight.codes",
        "layers.0.weight.scale",
        "layers.0.weight.zero_point",
    }


def test_several_tensors_in_one_file_and_torch_tensors(tmp_path):
    torch = pytest.importorskip("torch")
    a = quantize_tensor(torch.from_numpy(_x()).to(torch.bfloat16), "nf4")
    b = quantize_tensor(_x(), "int8/channel")
    path = save(tmp_path / "m.safetensors", {"a": a, "b": b})
    both = load_all(path)
    assert set(both) == {"a", "b"} and both["a"].dtype == "bfloat16"
    assert np.array_equal(both["a"].codes, a.codes.numpy())
    moved = both["b"].to("cpu")
    assert isinstance(moved.codes, torch.Tensor)
    assert torch.equal(moved.dequantize(), torch.from_numpy(b.dequantize()))
    with pytest.raises(NumfmtError, match="holds 2 quantized tensors"):
        load(path)
    with pytest.raises(NumfmtError, match="no quantized tensor 'c'"):
        load(path, "c")


def test_writes_are_atomic_and_never_over_a_file(tmp_path):
    qt = quantize_tensor(_x(), "int8")
    path = qt.save(tmp_path / "q.safetensors")
    before = path.read_bytes()
    with pytest.raises(NumfmtError, match="does not overwrite"):
        qt.save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["q.safetensors"]  # no temporary left
    qt.save(path, overwrite=True)
    with pytest.raises(NumfmtError, match="cannot write"):
        qt.save("/proc/numfmt-cannot-write-here/q.safetensors")


def test_files_that_are_not_numfmt_files(tmp_path):
    plain = save_safetensors(tmp_path / "plain.safetensors", {"w": np.zeros(3)})
    with pytest.raises(NumfmtError, match="not a numfmt quantized file"):
        load(plain)
    wrong = save_safetensors(
        tmp_path / "v9.safetensors",
        {"w.codes": np.zeros(3, np.int8)},
        {"numfmt": json.dumps({"layout": 9, "tensors": {}})},
    )
    with pytest.raises(NumfmtError, match="layout 9"):
        load(wrong)
    broken = save_safetensors(
        tmp_path / "broken.safetensors",
        {"w.codes": np.zeros(3, np.int8)},
        {"numfmt": "{not json"},
    )
    with pytest.raises(NumfmtError, match="unreadable numfmt metadata"):
        load(broken)
    qt = quantize_tensor(_x(), "int8/channel")
    good = qt.save(tmp_path / "good.safetensors", name="w")
    meta = read_metadata(good)
    missing = save_safetensors(
        tmp_path / "missing.safetensors", {"w.codes": np.asarray(qt.codes)}, meta
    )
    with pytest.raises(NumfmtError, match=r"'w.scale' is missing"):
        load(missing)
    short = save_safetensors(
        tmp_path / "short.safetensors",
        {"w.codes": np.asarray(qt.codes)[:2], "w.scale": np.ones(8)},
        meta,
    )
    with pytest.raises(NumfmtError, match="holds 192 codes"):
        load(short)


@pytest.mark.parametrize(
    "spec, size, order, message",
    [
        ("int4", 50, "ggml", "this tensor has 50 codes (18 past the last whole block)"),
        ("int3", 64, "ggml", "packs 4-bit codes, not 3-bit ones"),
        ("int2", 64, "ggml", "packs 4-bit codes, not 2-bit ones"),
        ("int3", 64, "high_first", "3-bit codes are stored as a little-endian bit stream"),
    ],
)
def test_an_order_the_codes_cannot_take_is_refused_not_replaced(
    tmp_path, spec, size, order, message
):
    qt = quantize_tensor(np.linspace(-1, 1, size, dtype=np.float32), spec)
    with pytest.raises(NumfmtError, match=re.escape(message)):
        save(tmp_path / "t.safetensors", {"t": qt}, order=order)
    assert not (tmp_path / "t.safetensors").exists()


@pytest.mark.parametrize("order", ["ggml", "high_first", "low_first"])
def test_each_order_is_stored_as_asked_and_reads_back(tmp_path, order):
    qt = quantize_tensor(np.linspace(-1, 1, 64, dtype=np.float32), "int4")
    path = save(tmp_path / "t.safetensors", {"t": qt}, order=order)
    info = json.loads(read_metadata(path)["numfmt"])["tensors"]["t"]
    assert info["packing"] == order
    codes = np.asarray(qt.codes).astype(np.uint8) & 0xF
    raw = load_tensor(path, "t.codes")[1]
    first = {"low_first": codes[0] | codes[1] << 4, "high_first": codes[0] << 4 | codes[1]}
    first["ggml"] = codes[0] | codes[16] << 4  # llama.cpp: element j and j + 16 share a byte
    assert raw[0] == first[order]
    assert np.array_equal(load(path).codes, qt.codes)
