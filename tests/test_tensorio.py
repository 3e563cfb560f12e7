"""Tensor files: our safetensors reader and writer against the safetensors package itself."""

import ml_dtypes
import numpy as np
import pytest

from numfmt.errors import NumfmtError
from numfmt.tensorio import list_tensors, load_tensor, save_safetensors


def test_npy_and_npz(tmp_path):
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    np.save(tmp_path / "w.npy", a)
    assert load_tensor(tmp_path / "w.npy")[0] == "w"
    assert np.array_equal(load_tensor(tmp_path / "w.npy")[1], a)
    np.savez(tmp_path / "m.npz", a=a, b=a * 2)
    assert np.array_equal(load_tensor(tmp_path / "m.npz", "b")[1], a * 2)
    with pytest.raises(NumfmtError, match="holds 2 tensors; choose one with --tensor: a, b"):
        load_tensor(tmp_path / "m.npz")


def test_reads_what_the_safetensors_package_writes(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    tensors = {
        "w": torch.randn(4, 8, dtype=torch.bfloat16),
        "b": torch.arange(5, dtype=torch.int32),
    }
    st.save_file(tensors, str(tmp_path / "m.safetensors"))
    _, w = load_tensor(tmp_path / "m.safetensors", "w")
    assert w.dtype == ml_dtypes.bfloat16
    assert np.array_equal(w.astype(np.float32), tensors["w"].float().numpy())
    assert list_tensors(tmp_path / "m.safetensors") == {"w": ("BF16", (4, 8)), "b": ("I32", (5,))}


def test_the_safetensors_package_reads_what_we_write(tmp_path):
    stn = pytest.importorskip("safetensors.numpy")
    data = {"codes": np.arange(10, dtype=np.uint8), "scale": np.array([0.5, 2.0], dtype=np.float16)}
    save_safetensors(tmp_path / "q.safetensors", data, {"numfmt.scheme": "int4"})
    back = stn.load_file(str(tmp_path / "q.safetensors"))
    assert all(np.array_equal(back[k], v) for k, v in data.items())


def test_nothing_is_overwritten(tmp_path):
    p = tmp_path / "q.safetensors"
    save_safetensors(p, {"a": np.zeros(2)})
    with pytest.raises(NumfmtError, match="does not overwrite"):
        save_safetensors(p, {"a": np.ones(2)})
    assert np.array_equal(load_tensor(p)[1], np.zeros(2))
    save_safetensors(p, {"a": np.ones(2)}, overwrite=True)
    assert np.array_equal(load_tensor(p)[1], np.ones(2))


def test_bad_files(tmp_path):
    with pytest.raises(NumfmtError, match="no such file"):
        load_tensor(tmp_path / "missing.npy")
    (tmp_path / "bad.safetensors").write_bytes(b"\x05\x00")
    with pytest.raises(NumfmtError, match="not a readable safetensors"):
        load_tensor(tmp_path / "bad.safetensors")
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(NumfmtError, match=r"not a readable \.npy"):
        load_tensor(tmp_path / "bad.npy")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(NumfmtError, match=r"\.npy, \.npz and \.safetensors"):
        load_tensor(tmp_path / "x.txt")
    save_safetensors(tmp_path / "one.safetensors", {"w": np.zeros(3)})
    with pytest.raises(NumfmtError, match="has no tensor 'v'; it has: w"):
        load_tensor(tmp_path / "one.safetensors", "v")


def _raw_safetensors(path, header: bytes, data: bytes = b"") -> None:
    import struct

    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


@pytest.mark.parametrize(
    "header",
    [
        b"[1, 2, 3]",  # a JSON list, not an object
        b'{"w": {"dtype": "F32", "shape": [2]}}',  # no data_offsets
        b'{"w": {"dtype": "F32", "shape": 2, "data_offsets": [0, 8]}}',  # shape not a list
        b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}',  # data missing
        b'{"w": {"dtype": "Q9", "shape": [2], "data_offsets": [0, 8]}}',  # no such dtype
        b"not json at all",
    ],
    ids=["list", "no-offsets", "shape-int", "truncated", "dtype", "garbage"],
)
def test_malformed_safetensors_get_one_message(tmp_path, header):
    p = tmp_path / "bad.safetensors"
    _raw_safetensors(p, header, b"\0" * 8)
    with pytest.raises(NumfmtError, match=r"bad.safetensors"):
        load_tensor(p)
    with pytest.raises(NumfmtError, match=r"bad.safetensors"):
        list_tensors(p)


def test_fp8_tensors_read_through_ml_dtypes(tmp_path):
    torch = pytest.importorskip("torch")
    st = pytest.importorskip("safetensors.torch")
    w = torch.randn(3, 8).to(torch.float8_e4m3fn)
    st.save_file({"w": w, "s": torch.ones(2)}, str(tmp_path / "f8.safetensors"))
    _, back = load_tensor(tmp_path / "f8.safetensors", "w")
    assert back.dtype == ml_dtypes.float8_e4m3fn
    assert np.array_equal(back.astype(np.float32), w.float().numpy())


def test_writing_is_atomic_and_says_why_it_cannot(tmp_path):
    with pytest.raises(NumfmtError, match="cannot write"):
        save_safetensors("/proc/numfmt/x.safetensors", {"a": np.zeros(2)})
    with pytest.raises(NumfmtError, match="is a folder"):
        save_safetensors(tmp_path, {"a": np.zeros(2)})
    save_safetensors(tmp_path / "a.safetensors", {"a": np.zeros(2)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.safetensors"]


def test_a_written_file_gets_the_mode_a_plain_open_would_give(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        save_safetensors(tmp_path / "a.safetensors", {"a": np.zeros(2)})
        (tmp_path / "plain").write_bytes(b"")
    finally:
        os.umask(old)
    mode = (tmp_path / "a.safetensors").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain").stat().st_mode & 0o777 == 0o644
