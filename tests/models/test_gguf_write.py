"""Writing GGUF: a tiny Llama round-trips through gguf's reader, numfmt's reader and
transformers' gguf_file= loader; no half files. (SmolLM2 rewritten as q4_1, its Q4_1 tensors
byte for byte: bench/gguf_export.py.)"""

import numpy as np
import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.models import gguf_read as gguf_model
from numfmt.models.gguf_write import gguf_name, permute_rows, write_gguf
from numfmt.quant import quantize_tensor
from tests.models.test_gguf_read import _write

gguf = pytest.importorskip("gguf")


@pytest.fixture
def source(tmp_path, tiny_llama):
    path = tmp_path / "tiny.gguf"
    _write(path, tiny_llama, quantized=())
    return path


def test_names_and_row_order_invert_the_reader():
    w = np.arange(32 * 3, dtype=np.float32).reshape(32, 3)
    for heads in (1, 2, 4):
        assert np.array_equal(gguf_model.unpermute_rows(permute_rows(w, heads), heads), w)
    for name in ("model.layers.3.self_attn.q_proj.weight", "model.norm.weight", "lm_head.weight"):
        assert gguf_model.hf_name(gguf_name(name)) == name
    with pytest.raises(NumfmtError, match="GGUF name"):
        gguf_name("model.layers.0.mystery.weight")


@pytest.mark.parametrize("kind", ["q8_0", "q4_0", "q4_1", "q5_1", "f16"])
def test_a_tiny_llama_round_trips(tmp_path, source, kind):
    model = gguf_model.load(source)
    out = tmp_path / f"tiny-{kind}.gguf"
    export = write_gguf(model, out, kind, metadata=source)
    assert export.nbytes == out.stat().st_size
    reader = gguf.GGUFReader(str(out))
    assert (
        reader.fields["general.file_type"].contents()
        == {"q8_0": 7, "q4_0": 2, "q4_1": 3, "q5_1": 9, "f16": 1}[kind]
    )
    assert reader.fields["llama.block_count"].contents() == model.config.num_hidden_layers
    assert reader.fields["tokenizer.ggml.tokens"].contents()[:2] == ["t0", "t1"]
    types = {t.name: t.tensor_type.name.lower() for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == kind and types["blk.0.attn_norm.weight"] == "f32"
    back = gguf_model.load(out).state_dict()
    for name, w in model.state_dict().items():
        if name == "lm_head.weight" or "rotary" in name:
            continue
        expected = (
            w
            if w.dim() == 1
            else quantize_tensor(w, kind).dequantize().float()
            if kind != "f16"
            else w.half().float()
        )
        assert torch.equal(back[name], expected), name


def test_transformers_loads_what_numfmt_wrote(tmp_path, source):
    from transformers import LlamaForCausalLM

    model = gguf_model.load(source)
    out = tmp_path / "tiny-q8.gguf"
    write_gguf(model, out, "q8_0", metadata=source)
    theirs = LlamaForCausalLM.from_pretrained(tmp_path, gguf_file=out.name).state_dict()
    ours = gguf_model.load(out).state_dict()
    for name in ours:
        if "rotary" not in name:
            assert torch.allclose(theirs[name].float(), ours[name], atol=0, rtol=0), name


TEXT = "Numbers squeezed into fewer bits still say most of what they said. " * 20


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    """A tiny Llama of 300 embedding rows in a Hugging Face folder, with a byte-level BPE
    tokenizer of 290 tokens trained on a sentence (the last rows are padding)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("hf") / "tiny-bpe"
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=290,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator([TEXT], trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>"
    )
    fast.save_pretrained(folder)
    torch.manual_seed(2)
    config = LlamaConfig(
        vocab_size=300,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=False,
        bos_token_id=0,
        eos_token_id=0,
    )
    LlamaForCausalLM(config).eval().save_pretrained(folder)
    return folder


def test_a_hugging_face_folder_becomes_gguf_with_its_tokenizer(tmp_path, hf_folder):
    from transformers import AutoTokenizer, LlamaForCausalLM

    from numfmt.nn import load_model

    model = load_model(hf_folder, tokenizer=False).model
    out = tmp_path / "tiny-q8_0.gguf"
    write_gguf(model, out, "q8_0", metadata=hf_folder)
    reader = gguf.GGUFReader(str(out))
    assert reader.fields["tokenizer.ggml.model"].contents() == "gpt2"
    tokens = reader.fields["tokenizer.ggml.tokens"].contents()
    assert len(tokens) == 300 and tokens[-1] == "[PAD299]"
    assert reader.fields["llama.attention.head_count_kv"].contents() == 2
    # transformers builds the same weights and the same tokenizer from the file
    theirs = LlamaForCausalLM.from_pretrained(tmp_path, gguf_file=out.name).state_dict()
    for name, w in model.state_dict().items():
        if "rotary" in name:
            continue
        expected = w if w.dim() == 1 else quantize_tensor(w, "q8_0").dequantize().float()
        assert torch.equal(theirs[name].float(), expected), name
    original = AutoTokenizer.from_pretrained(hf_folder)
    converted = AutoTokenizer.from_pretrained(tmp_path, gguf_file=out.name)
    sample = "Numbers squeezed into 4 bits say less! Zebras?"
    ids = converted(sample, add_special_tokens=False)["input_ids"]
    assert ids == original(sample, add_special_tokens=False)["input_ids"]
    assert max(ids) > 256  # merges were used, not bytes alone
    assert converted.decode(original(sample)["input_ids"]) == sample
    # and numfmt's own reader reads it back
    assert gguf_model.load(out).config.vocab_size == 300
    from click.testing import CliRunner

    from numfmt.cli import main

    cli_out = tmp_path / "cli-q4_0.gguf"
    args = ["model", "quantize", str(hf_folder), "-r", "q4_0", "-o", str(cli_out), "--json"]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 0, r.output
    assert gguf.GGUFReader(str(cli_out)).fields["general.file_type"].contents() == 2


def test_folders_gguf_cannot_describe_are_refused(tmp_path, hf_folder, tiny_llama):
    model = tiny_llama  # 96 rows: fewer than the folder's 290 tokens
    with pytest.raises(NumfmtError, match="290 tokens and the model's embedding 96 rows"):
        write_gguf(model, tmp_path / "a.gguf", "q8_0", metadata=hf_folder)
    plain = tmp_path / "plain"
    tiny_llama.save_pretrained(plain)  # no tokenizer at all
    with pytest.raises(NumfmtError, match="byte-level BPE tokenizers"):
        write_gguf(tiny_llama, tmp_path / "b.gguf", "q8_0", metadata=plain)
    assert not (tmp_path / "a.gguf").exists() and not (tmp_path / "b.gguf").exists()


def test_bad_requests_get_one_message_and_leave_no_file(tmp_path, source, tiny_llama, monkeypatch):
    model = gguf_model.load(source)
    with pytest.raises(NumfmtError, match="of type f32, f16, q4_0"):
        write_gguf(model, tmp_path / "a.gguf", "q3_k", metadata=source)
    with pytest.raises(NumfmtError, match="never writes over its input"):
        write_gguf(model, source, "q8_0", metadata=source, overwrite=True)
    with pytest.raises(NumfmtError, match=r"must end in \.gguf"):
        write_gguf(model, tmp_path / "a.bin", "q8_0", metadata=source)
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"not gguf")
    with pytest.raises(NumfmtError, match="not a GGUF file"):
        write_gguf(model, tmp_path / "b.gguf", "q8_0", metadata=junk)
    (tmp_path / "taken.gguf").write_bytes(b"mine")
    with pytest.raises(NumfmtError, match="exists"):
        write_gguf(model, tmp_path / "taken.gguf", "q8_0", metadata=source)
    assert (tmp_path / "taken.gguf").read_bytes() == b"mine"

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf.GGUFWriter, "write_tensors_to_file", full_disk)
    with pytest.raises(NumfmtError, match="No space left on device"):
        write_gguf(model, tmp_path / "c.gguf", "q8_0", metadata=source)
    leftovers = sorted(p.name for p in tmp_path.iterdir())
    assert leftovers == ["junk.gguf", "taken.gguf", "tiny.gguf"]  # no c.gguf, no temporary


def test_model_quantize_writes_gguf_from_the_command_line(tmp_path, source, tiny_llama):
    import json

    from click.testing import CliRunner

    from numfmt.cli import main

    out = tmp_path / "tiny-q4_0.gguf"
    r = CliRunner().invoke(
        main, ["model", "quantize", str(source), "--recipe", "q4_0", "--out", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    assert f"wrote {out}" in r.stderr and json.loads(r.stdout)["recipe"] == "q4_0"
    assert {t.tensor_type.name for t in gguf.GGUFReader(str(out)).tensors} == {"Q4_0", "F32"}
    folder = tmp_path / "hf"
    tiny_llama.save_pretrained(folder)
    for args, message in [
        (
            [str(source), "--recipe", "int4/group:32", "--out", str(tmp_path / "x.gguf")],
            "GGUF type",
        ),
        ([str(folder), "--recipe", "q8_0", "--out", str(tmp_path / "y.gguf")], "byte-level BPE"),
        ([str(source), "--recipe", "q8_0", "--out", str(out)], "exists"),
        (
            [str(source), "-r", "q8_0", "-a", "gptq", "--out", str(tmp_path / "z.gguf")],
            "round-to-nearest; drop --algorithm gptq",
        ),
    ]:
        bad = CliRunner().invoke(main, ["model", "quantize", *args])
        assert bad.exit_code == 2 and message in bad.stderr, bad.output


def test_the_export_quantizes_each_matrix_once_and_reports_what_it_wrote(
    tmp_path, source, tiny_llama, monkeypatch
):
    import json

    from click.testing import CliRunner

    import numfmt.nn.algorithms.chooser as chooser
    from numfmt.cli import main

    calls = []
    original = chooser.quantize_tensor

    def counting(w, scheme):
        calls.append(tuple(w.shape))
        return original(w, scheme)

    monkeypatch.setattr(chooser, "quantize_tensor", counting)
    out = tmp_path / "once.gguf"
    r = CliRunner().invoke(
        main, ["model", "quantize", str(source), "--recipe", "q8_0", "--out", str(out), "--json"]
    )
    assert r.exit_code == 0, r.output
    written = [t for t in gguf.GGUFReader(str(out)).tensors if t.tensor_type.name == "Q8_0"]
    rows = json.loads(r.stdout)["layers"]
    assert len(calls) == len(written) == len(rows)  # once each: the file's and the report's
    assert {row["scheme"] for row in rows} == {"q8_0"}
    assert "model.embed_tokens" in {row["name"] for row in rows}  # the embedding is in the file
    for option in (["--method", "mse"], ["--stream"]):
        args = ["model", "quantize", str(source), "-r", "q8_0", "--out", str(tmp_path / "b.gguf")]
        bad = CliRunner().invoke(main, [*args, *option])
        assert bad.exit_code == 2 and f"drop {option[0]}" in bad.stderr, bad.output
