"""numfmt's one safetensors reader and writer, against the safetensors package itself, and
atomic writing (numfmt._files): no half file, no temporary left behind."""

import hashlib
import json
import struct

import ml_dtypes
import numpy as np
import pytest

from numfmt._files import atomic_path
from numfmt._safetensors import SafetensorsFile, SafetensorsWriter, write_safetensors
from numfmt.errors import NumfmtError

ARRAYS = {
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
    "f16": np.linspace(-1, 1, 5).astype(np.float16),
    "bf16": np.array([1.5, -2.25, 3e38], dtype=ml_dtypes.bfloat16),
    "i8": np.array([[-128, 0, 127]], dtype=np.int8),
    "u8": np.arange(7, dtype=np.uint8),
    "i64": np.array([2**62, -5], dtype=np.int64),
    "b": np.array([True, False, True]),
    "scalar": np.asarray(np.float32(0.5)),
}


def test_the_package_reads_what_the_writer_writes(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    plain = {k: v for k, v in ARRAYS.items() if k != "bf16"}  # its numpy API has no bf16
    p = write_safetensors(tmp_path / "a.safetensors", plain, {"who": "numfmt"})
    back = stn.load_file(str(p))
    assert back.keys() == plain.keys()
    for k, v in plain.items():
        assert back[k].dtype == v.dtype and np.array_equal(back[k], v), k
    from safetensors import safe_open

    with safe_open(str(p), framework="np") as f:
        meta = f.metadata()
    sums = json.loads(meta.pop("checksums"))
    assert meta == {"who": "numfmt"}
    for k, v in back.items():  # each tensor's bytes as the package reads them, hashed apart
        kind = {"float32": "F32", "float16": "F16", "int8": "I8", "uint8": "U8"}
        kind |= {"int64": "I64", "bool": "BOOL"}
        digest = hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest()
        assert sums[k] == [kind[str(v.dtype)], list(v.shape), digest], k


def test_the_reader_refuses_bytes_that_do_not_match_their_checksum(tmp_path):
    p = write_safetensors(tmp_path / "a.safetensors", ARRAYS)
    f = SafetensorsFile(p)
    begin = f.start + f._spans["i64"][0]
    data = bytearray(p.read_bytes())
    data[begin] ^= 1  # one bit
    p.write_bytes(bytes(data))
    damaged = SafetensorsFile(p)
    assert np.array_equal(damaged.read("f32"), ARRAYS["f32"])  # the others still read
    with pytest.raises(NumfmtError, match="'i64' was changed or damaged"):
        damaged.read("i64")
    assert damaged.read("i64", verify=False)[0] == 2**62 + 1


def test_the_reader_reads_what_the_package_writes_fp8_and_bf16_included(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    tensors = {
        "bf16": torch.tensor([1.5, -2.25, 7.0], dtype=torch.bfloat16),
        "e4m3": torch.tensor([0.5, -448.0, 3.0]).to(torch.float8_e4m3fn),
        "e5m2": torch.tensor([0.25, 57344.0]).to(torch.float8_e5m2),
        "i32": torch.arange(6, dtype=torch.int32).reshape(2, 3),
    }
    st.save_file(tensors, str(tmp_path / "t.safetensors"), metadata={"k": "v"})
    f = SafetensorsFile(tmp_path / "t.safetensors")
    assert f.metadata == {"k": "v"}
    assert f.entries["i32"] == ("I32", (2, 3)) and f.entries["e4m3"] == ("F8_E4M3", (3,))
    for name, t in tensors.items():
        got = f.read(name)
        assert np.array_equal(got.astype(np.float64), t.double().numpy()), name


def test_a_round_trip_keeps_every_dtype_and_shape(tmp_path):
    p = write_safetensors(tmp_path / "r.safetensors", ARRAYS)
    f = SafetensorsFile(p)
    for k, v in ARRAYS.items():
        got = f.read(k)
        assert got.dtype == v.dtype and got.shape == v.shape and np.array_equal(got, v), k


def _raw(path, header: dict, data: bytes) -> None:
    text = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        ({"w": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8, "8 bytes"),
        ({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\0" * 8, "truncated"),
        ({"w": {"dtype": "F32", "shape": [2], "data_offsets": [4, 0]}}, b"\0" * 8, "byte range"),
        ({"w": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8, "shape"),
        ({"w": {"dtype": ["F32"], "shape": [2], "data_offsets": [0, 8]}}, b"\0" * 8, "dtype"),
        (
            {"w": {"dtype": "F32", "shape": [2**40, 2**40], "data_offsets": [0, 8]}},
            b"\0" * 8,
            "bytes",
        ),
        ({"w": {"dtype": "F32", "shape": [2]}}, b"\0" * 8, "data_offsets"),
        ({"__metadata__": [1, 2]}, b"", "__metadata__"),
    ],
    ids=[
        "size",
        "truncated",
        "reversed",
        "negative",
        "dtype-list",
        "huge",
        "no-offsets",
        "metadata",
    ],
)
def test_a_bad_header_is_one_message_naming_the_file(tmp_path, header, data, message):
    p = tmp_path / "bad.safetensors"
    _raw(p, header, data)
    with pytest.raises(NumfmtError, match=rf"bad\.safetensors.*{message}"):
        SafetensorsFile(p)


def test_a_dtype_numfmt_cannot_read_is_listed_and_refused_only_when_read(tmp_path):
    p = tmp_path / "c.safetensors"
    _raw(
        p,
        {
            "c": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]},
            "w": {"dtype": "F32", "shape": [2], "data_offsets": [8, 16]},
        },
        np.array([0, 0, 1.5, -2], dtype=np.float32).tobytes(),
    )
    f = SafetensorsFile(p)
    assert f.entries["c"] == ("C64", (1,)) and list(f.read("w")) == [1.5, -2.0]
    with pytest.raises(NumfmtError, match="tensor 'c' has dtype C64, which numfmt cannot read"):
        f.read("c")


def test_the_writer_refuses_a_name_twice_and_leaves_nothing_behind(tmp_path):
    target = tmp_path / "w.safetensors"
    with pytest.raises(NumfmtError, match="used twice"), SafetensorsWriter(target) as out:
        out.add("a", np.zeros(3))
        out.add("a", np.ones(3))
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(NumfmtError, match="cannot store"), SafetensorsWriter(target) as out:
        out.add("c", np.zeros(2, dtype=np.complex64))
    assert list(tmp_path.iterdir()) == []


def test_the_writer_never_replaces_a_file_unless_told(tmp_path):
    target = tmp_path / "x.safetensors"
    target.write_bytes(b"mine")
    with pytest.raises(NumfmtError, match="exists"):
        write_safetensors(target, {"a": np.zeros(1)})
    assert target.read_bytes() == b"mine"
    write_safetensors(target, {"a": np.zeros(1)}, overwrite=True)
    assert np.array_equal(SafetensorsFile(target).read("a"), np.zeros(1))


def test_an_atomic_path_is_renamed_in_only_when_its_block_completes(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("Ctrl-C")
    assert list(tmp_path.iterdir()) == []
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")
    assert target.read_bytes() == b"whole" and list(tmp_path.iterdir()) == [target]
