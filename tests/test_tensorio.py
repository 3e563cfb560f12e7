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
    (tmp_path / "bad.npy").write_bytes(b"\x00\x01not numpy")
    with pytest.raises(NumfmtError, match=r"not a \.npy file \(no NumPy magic header\)$"):
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
    if b"Q9" in header:  # an unknown dtype is listed (the other tensors stay readable)
        assert list_tensors(p) == {"w": ("Q9", (2,))}
        return
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


# Files that are not what their names say (issue 18): one message that says what they are.


@pytest.mark.parametrize(
    ("name", "message"),
    [
        (
            "w.npy",
            "w.npy: not a .npy file (no NumPy magic header): it is a text file, beginning 'hello'",
        ),
        (
            "w.npz",
            "w.npz: not an .npz file (not a zip archive): it is a text file, beginning 'hello'",
        ),
        (
            "w.safetensors",
            "w.safetensors: not a safetensors file (its first 8 bytes are no header length): it is a text file, beginning 'hello'",
        ),
    ],
)
def test_a_text_file_is_called_a_text_file(tmp_path, name, message):
    p = tmp_path / name
    p.write_text("hello\n")
    for read in (load_tensor, list_tensors):
        with pytest.raises(NumfmtError) as caught:
            read(p)
        assert str(caught.value) == message


def test_a_long_text_is_cut_in_the_message(tmp_path):
    p = tmp_path / "w.npy"
    p.write_text("name,value\n" + "x,1.5\n" * 1000)
    with pytest.raises(NumfmtError, match=r"text file, beginning 'name,value\.\.\.'$"):
        load_tensor(p)


class _Touch:
    """An object whose unpickling creates a file: proof that nothing was unpickled."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.path),))


def test_pickled_arrays_are_refused_without_unpickling(tmp_path):
    touched = tmp_path / "unpickled"
    objects = np.array([_Touch(touched), None], dtype=object)
    np.save(tmp_path / "obj.npy", objects, allow_pickle=True)
    np.savez(tmp_path / "obj.npz", w=objects)
    for path, where in [("obj.npy", "obj.npy"), ("obj.npz", "obj.npz: 'w'")]:
        for read in (load_tensor, list_tensors):
            with pytest.raises(NumfmtError) as caught:
                read(tmp_path / path)
            message = str(caught.value)
            assert message.startswith(
                f"{where} holds Python objects (a pickled array), not numbers"
            )
            assert "allow_pickle" not in message and "pickle.load" not in message
    assert not touched.exists()


def test_damaged_and_misnamed_files(tmp_path):
    good = np.arange(16.0).reshape(4, 4)
    np.save(tmp_path / "good.npy", good)
    np.savez(tmp_path / "good.npz", w=good)
    data = (tmp_path / "good.npy").read_bytes()
    files = {
        "empty.npy": b"",
        "empty.safetensors": b"",
        "cut-header.npy": data[:20],
        "cut-data.npy": data[:140],
        "noise.npy": bytes(range(256)),
        "zip.npy": (tmp_path / "good.npz").read_bytes(),
        "npy.npz": data,
        "npy.safetensors": data,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    import zipfile

    with zipfile.ZipFile(tmp_path / "not-arrays.npz", "w") as z:
        z.writestr("w.npy", b"hello")
    expected = {
        "empty.npy": "empty.npy: not a .npy file: it is empty",
        "empty.safetensors": "empty.safetensors: not a safetensors file: it is empty",
        "cut-header.npy": "cut-header.npy: a damaged .npy file (",
        "cut-data.npy": "cut-data.npy: a damaged .npy file (",
        "noise.npy": "noise.npy: not a .npy file (no NumPy magic header)",
        "zip.npy": "zip.npy: not a .npy file (no NumPy magic header): it is a zip archive, as .npz files are",
        "npy.npz": "npy.npz: not an .npz file (not a zip archive): it is a .npy file (rename it npy.npy)",
        "npy.safetensors": "npy.safetensors: not a safetensors file (its first 8 bytes are no header length): it is a .npy file (rename it npy.npy)",
        "not-arrays.npz": "not-arrays.npz: 'w' in the archive is not a NumPy array (no NumPy magic header)",
    }
    for name, message in expected.items():
        with pytest.raises(NumfmtError) as caught:
            load_tensor(tmp_path / name)
        assert str(caught.value).startswith(message), name
        assert "\n" not in str(caught.value)


def test_listing_reads_headers_only(tmp_path):
    np.save(tmp_path / "w.npy", np.zeros((3, 5), dtype=np.float16))
    np.savez(tmp_path / "m.npz", a=np.zeros(2, dtype=np.int8), b=np.ones((2, 2)))
    assert list_tensors(tmp_path / "w.npy") == {"w": ("float16", (3, 5))}
    assert list_tensors(tmp_path / "m.npz") == {"a": ("int8", (2,)), "b": ("float64", (2, 2))}
    cut = tmp_path / "cut.npy"  # the header whole, the data cut short: listed, not loaded
    cut.write_bytes((tmp_path / "w.npy").read_bytes()[:-4])
    assert list_tensors(cut) == {"cut": ("float16", (3, 5))}
    with pytest.raises(NumfmtError, match="damaged"):
        load_tensor(cut)
