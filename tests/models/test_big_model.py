"""Models larger than memory, evaluated through accelerate's big-model loading: a quantized
file placed by ``device_map="auto"`` within a memory cap (the rest offloaded to disk) gives
the logits of the same file loaded whole, and ``numfmt model perplexity`` scores it."""

import collections
import gc
import json

import pytest
import torch
from click.testing import CliRunner

pytest.importorskip("accelerate")

from numfmt.cli import main
from numfmt.errors import NumfmtError
from numfmt.eval.scoring import score
from numfmt.models.loading import load_model
from numfmt.models.placement import largest_unit, resident_bytes
from numfmt.models.saving import load_quantized, save_model
from numfmt.nn import quantize_model

pytestmark = pytest.mark.slow

TEXT = "A model larger than memory runs a layer at a time, read back from the disk. " * 12


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def source(tmp_path, tiny_llama):
    """The tiny Llama saved with a character tokenizer over its 96 ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    folder = tmp_path / "tiny"
    tiny_llama.save_pretrained(folder, safe_serialization=True)
    vocab = {"<unk>": 0} | {chr(c): c - 31 for c in range(32, 127)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(folder)
    return folder


@pytest.fixture
def quantized(tmp_path, source, tiny_llama):
    q, report = quantize_model(tiny_llama, "int4/asym/group:32", exclude=())
    return save_model(q, tmp_path / "q.safetensors", report=report, source=str(source))


def test_a_capped_load_offloads_to_disk_and_gives_the_same_logits(quantized, tmp_path, ids):
    whole = load_quantized(quantized)
    offload = tmp_path / "offload"
    in_memory = ["model.embed_tokens", "model.layers.0", "model.norm", "model.rotary_emb"]
    device_map = dict.fromkeys(in_memory, "cpu") | {"model.layers.1": "disk", "lm_head": "disk"}
    placed = load_quantized(quantized, device_map=device_map, offload_folder=offload)
    assert placed.hf_device_map == device_map
    on_disk = ["model.layers.1.mlp.up_proj", "lm_head"]
    assert (offload / "index.json").is_file() and any(offload.glob("*.codes.dat"))
    with torch.no_grad():
        assert torch.equal(placed(ids).logits, whole(ids).logits)
    # the offloaded layers hold no codes in memory: they are read back when run
    for name in on_disk:
        assert all(b.device.type == "meta" for b in placed.get_submodule(name).buffers())
    assert placed.get_submodule("model.layers.0.mlp.up_proj").codes.device.type == "cpu"
    auto = load_quantized(
        quantized, device_map="auto", max_memory={"cpu": "60KB"}, offload_folder=tmp_path / "b"
    )
    assert set(auto.hf_device_map.values()) == {"cpu", "disk"}  # accelerate's own choice
    with torch.no_grad():
        assert torch.equal(auto(ids).logits, whole(ids).logits)


def _live_tensor_bytes() -> int:
    """Bytes of every CPU tensor alive in the process (each storage once): what a model keeps,
    including what its layers hold outside their parameters and buffers."""
    gc.collect()
    storages = {}
    for o in gc.get_objects():
        if issubclass(type(o), torch.Tensor) and o.device.type == "cpu":  # (isinstance asks
            # some objects for a __class__ that warns)
            storages[o.untyped_storage().data_ptr()] = o.untyped_storage().nbytes()
    return sum(storages.values())


def test_a_capped_load_reads_each_tensor_once_and_holds_only_what_the_cap_allows(
    quantized, tmp_path, monkeypatch, ids
):
    from numfmt._safetensors import SafetensorsFile

    reads: collections.Counter[str] = collections.Counter()
    read = SafetensorsFile.read

    def counted(self, name, **options):
        reads[name] += 1
        return read(self, name, **options)

    monkeypatch.setattr(SafetensorsFile, "read", counted)
    cap = 60_000
    placed = load_quantized(
        quantized, device_map="auto", max_memory={"cpu": cap}, offload_folder=tmp_path / "o"
    )
    # the layers were sized from the header: no tensor was read to size one, then again
    assert reads and max(reads.values()) == 1, reads.most_common(3)
    whole = load_quantized(quantized)
    assert resident_bytes(placed) <= cap < resident_bytes(whole)
    # a forward pass reads the offloaded layers back and keeps none of them (nor the
    # packed product's views of their codes)
    unit = largest_unit(placed)[1]
    before = _live_tensor_bytes()
    with torch.no_grad():
        placed(ids)
    assert _live_tensor_bytes() - before < unit
    assert resident_bytes(placed) <= cap


def test_a_capped_model_scores_to_the_last_digit_of_a_whole_one(quantized, tmp_path):
    row = torch.randint(0, 96, (200,), generator=torch.Generator().manual_seed(1))
    whole = score(load_quantized(quantized), row, context=64)
    for cap in ("60KB", "150KB", "1GB"):
        placed = load_model(
            quantized, tokenizer=False, max_memory=cap, offload_folder=tmp_path / cap
        ).model
        capped = score(placed, row, context=64)
        assert (capped.perplexity, capped.nll) == (whole.perplexity, whole.nll), cap


def test_a_tied_head_split_from_its_embedding_still_runs(tmp_path, tiny_llama, ids):
    q, report = quantize_model(tiny_llama, "int4/group:32")  # the head stays tied, in float
    path = save_model(q, tmp_path / "tied.safetensors", report=report)
    in_memory = ["model.embed_tokens", "model.layers", "model.norm", "model.rotary_emb"]
    device_map = dict.fromkeys(in_memory, "cpu") | {"lm_head": "disk"}
    placed = load_quantized(path, device_map=device_map, offload_folder=tmp_path / "off")
    with torch.no_grad():
        assert torch.equal(placed(ids).logits, load_quantized(path)(ids).logits)


def test_a_roomy_load_keeps_everything_in_memory(quantized, ids):
    placed = load_quantized(quantized, device_map="auto", max_memory={"cpu": "1GB"})
    assert set(placed.hf_device_map.values()) == {"cpu"}
    with torch.no_grad():
        assert torch.equal(placed(ids).logits, load_quantized(quantized)(ids).logits)


def test_a_disk_map_without_a_folder_is_refused(quantized):
    with pytest.raises(NumfmtError, match="give an offload_folder"):
        load_quantized(quantized, device_map="auto", max_memory={"cpu": "60KB"})
    with pytest.raises(NumfmtError, match="places no module that holds lm_head"):
        load_quantized(quantized, device_map={"model": "cpu"})


def test_load_model_takes_quantized_files_and_folders_within_a_cap(quantized, source, tmp_path):
    loaded = load_model(quantized, max_memory="60KB", offload_folder=tmp_path / "a")
    assert loaded.source.kind == "quantized" and "disk" in loaded.model.hf_device_map.values()
    assert loaded.tokenizer("ab")["input_ids"] == [66, 67]  # the source's tokenizer
    folder = load_model(source, max_memory="200KB", offload_folder=tmp_path / "b")
    assert "disk" in folder.model.hf_device_map.values()  # transformers' own big-model load
    with pytest.raises(NumfmtError, match="a size such as 2GB"):
        load_model(quantized, max_memory="lots")


def test_a_quantized_file_whose_source_is_gone_asks_for_a_tokenizer(tmp_path, tiny_llama):
    q, report = quantize_model(tiny_llama, "int8/channel")
    path = save_model(q, tmp_path / "q.safetensors", report=report, source="/nowhere/model")
    with pytest.raises(NumfmtError, match=r"/nowhere/model.*tokenizer_from, --tokenizer"):
        load_model(path)
    assert load_model(path, tokenizer=False).tokenizer is None


def test_the_perplexity_command_scores_a_file_within_a_cap(quantized, source, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    window = ("-c", "128")  # the tiny model's positions
    capped = run(
        "model", "perplexity", quantized, "-t", text, *window, "--max-memory", "60KB", "--json"
    )
    assert capped.exit_code == 0, capped.output
    assert "placed by accelerate within 60KB" in capped.stderr and "on disk" in capped.stderr
    whole = run("model", "perplexity", quantized, "-t", text, *window, "--json")
    a, b = json.loads(capped.stdout), json.loads(whole.stdout)
    assert a["perplexity"] == b["perplexity"] and a["tokens"] == b["tokens"] > 800
    float_run = run("model", "perplexity", source, "-t", text, *window, "--json")
    assert json.loads(float_run.stdout)["perplexity"] != a["perplexity"]
    shown = run("model", "perplexity", quantized, "-t", text, "-n", "64", "-c", "64")
    assert shown.exit_code == 0 and "perplexity" in shown.stdout and " 63 " in shown.stdout


def test_the_perplexity_command_refuses_bad_input(quantized, tmp_path):
    text = tmp_path / "t.txt"
    text.write_text(TEXT)
    gguf = tmp_path / "fake.gguf"
    gguf.write_bytes(b"GGUF" + bytes(60))
    for args, message in [
        (["--max-memory", "lots"], "a size such as 2GB"),
        (["--tokenizer", tmp_path / "none"], "no model at"),
        (["--max-memory", "20KB"], "cannot hold model.layers.0 ("),  # smaller than a layer
    ]:
        bad = run("model", "perplexity", quantized, "-t", text, *args)
        assert bad.exit_code == 2 and message in bad.stderr, bad.output
        assert "Traceback" not in bad.output
    bad = run("model", "perplexity", gguf, "-t", text, "--max-memory", "1GB")
    assert bad.exit_code == 2 and "dequantized whole into memory" in bad.stderr
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a safetensors file")
    bad = run("model", "perplexity", junk, "-t", text)
    assert bad.exit_code == 2 and "Traceback" not in bad.output
