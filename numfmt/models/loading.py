"""``load_model``: a MODEL (folder, ``.gguf`` or installed name) as a torch model and tokenizer.

Nothing downloads: transformers is asked for local files only, and weights come from
safetensors or GGUF (pickled weights only when the caller allows them, through torch's
``weights_only`` loader).
"""

from __future__ import annotations

import contextlib
import pickle
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numfmt._extras import require
from numfmt._safetensors import SafetensorsFile
from numfmt.errors import NumfmtError
from numfmt.models.sources import (
    PICKLED_WEIGHTS,
    SAFE_WEIGHTS,
    ModelSource,
    resolve,
    sharded_index,
)
from numfmt.tensorio import read_metadata


@dataclass
class LoadedModel:
    """A model in eval mode on the CPU (float32), its tokenizer, where it came from, and how
    long loading took (model and tokenizer apart)."""

    model: Any
    tokenizer: Any
    source: ModelSource
    seconds: float
    tokenizer_seconds: float

    @property
    def is_causal(self) -> bool:
        return hasattr(self.model, "generate") and hasattr(self.model, "lm_head")


def _transformers():

    return require("transformers", "loading models")


def load_model(
    model: str | Path,
    *,
    tokenizer: bool = True,
    allow_pickle: bool = False,
    max_memory: str | int | dict[Any, Any] | None = None,
    offload_folder: str | Path | None = None,
    tokenizer_from: str | Path | None = None,
    verify: bool = True,
) -> LoadedModel:
    """Load a MODEL for quantizing and evaluating.

    Args:
        model: a Hugging Face folder, a Llama ``.gguf`` file, a ``.safetensors`` file that
            numfmt quantized (``save_model``, ``model quantize --out``, ``--stream``), or
            ``smollm2-135m`` / ``minilm-l6`` (installed packages).
        tokenizer: also load its tokenizer (for GGUF files, transformers builds it from the
            vocabulary in the file; for a quantized file, from the model it was made from,
            or ``tokenizer_from``).
        allow_pickle: accept a folder whose weights are only pickled (see ``resolve``).
        max_memory: load through accelerate's big-model loading (``device_map="auto"``)
            within this memory (``"2GB"`` of CPU memory, a number of bytes, or accelerate's
            dict such as ``{0: "20GB", "cpu": "8GB"}``); the modules that do not fit go to
            ``offload_folder`` on disk and are read back layer by layer as the model runs,
            and kept no longer (``numfmt.models.placement.release_after_use``). It bounds
            the weights held; the process holds about one layer more while it runs, and
            the logits of a window. It must hold the largest module accelerate moves whole.
            For folders and quantized files (a GGUF file is dequantized whole).
        verify: check a numfmt-quantized file's tensors against their checksums (see
            ``load_quantized``); ``False`` skips it for a file you trust.

    Raises:
        NumfmtError: a missing or damaged model, an architecture numfmt cannot build, or a
            missing package (the message names it).
    """
    source = resolve(model, allow_pickle=allow_pickle)
    start = time.perf_counter()
    budget = _budget(max_memory, source)
    placement: dict[str, Any] = (
        {} if budget is None else {"device_map": "auto", "max_memory": budget}
    )
    if budget is not None and offload_folder is not None:
        placement["offload_folder"] = str(offload_folder)
    with _quiet_transformers():
        if source.kind == "gguf":
            from numfmt.models import gguf_read as gguf_model

            net = gguf_model.load(source.path)
        elif source.kind == "quantized":
            from numfmt.models.saving import load_quantized

            net = load_quantized(source.path, verify=verify, **placement)
        else:
            net = _load_folder(source.path, allow_pickle, placement)
        seconds = time.perf_counter() - start
        words = _tokenizer_source(source, tokenizer_from, allow_pickle) if tokenizer else None
        tok = _load_tokenizer(words) if words is not None else None
    return LoadedModel(net, tok, source, seconds, time.perf_counter() - start - seconds)


def _budget(max_memory: Any, source: ModelSource) -> dict[Any, Any] | None:
    """accelerate's max_memory, from a size for the CPU or a dict."""
    if max_memory is None:
        return None
    if source.kind == "gguf":
        raise NumfmtError(
            "a GGUF file is dequantized whole into memory; max_memory works on Hugging Face "
            "folders and on files numfmt quantized"
        )
    if isinstance(max_memory, dict):
        return max_memory
    from accelerate.utils import convert_file_size_to_int

    bytes_given = isinstance(max_memory, int) and not isinstance(max_memory, bool)
    try:
        if (max_memory if bytes_given else convert_file_size_to_int(str(max_memory))) <= 0:
            raise ValueError
    except ValueError:
        raise NumfmtError(
            f"max_memory is a size such as 2GB or 500MB, not {max_memory!r}"
        ) from None
    return {"cpu": max_memory if bytes_given else str(max_memory)}


def _tokenizer_source(source: ModelSource, given: Any, allow_pickle: bool) -> ModelSource:
    """Where the tokenizer comes from: the model, ``given``, or for a quantized file the
    model it was made from (its metadata says)."""
    if given is not None:
        return resolve(given, allow_pickle=allow_pickle)
    if source.kind != "quantized":
        return source

    origin = read_metadata(source.path).get("source", "")
    if origin:
        with contextlib.suppress(NumfmtError):
            return resolve(origin, allow_pickle=allow_pickle)
    raise NumfmtError(
        f"{source.path.name} was made from '{origin or 'a model it does not name'}', which is "
        "not here: say where its tokenizer is (tokenizer_from, --tokenizer)"
    )


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars or load reports of transformers' own while numfmt loads (numfmt draws
    its own bar and refuses what the report would only mention)."""
    t = _transformers()
    logging = t.utils.logging
    was, verbosity = logging.is_progress_bar_enabled(), logging.get_verbosity()
    logging.disable_progress_bar()
    logging.set_verbosity_error()  # its load report: numfmt checks the loading info itself
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)
        if was:
            logging.enable_progress_bar()


def _load_folder(path: Path, allow_pickle: bool, placement: dict[str, Any]):
    t = _transformers()
    try:
        config = t.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except Exception as exc:  # transformers validates fields with errors of its own kinds
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NumfmtError(f"{path}: its config.json does not describe a model ({why})") from None
    architectures = getattr(config, "architectures", None) or []
    if not architectures:
        raise NumfmtError(
            f'{path}: its config.json names no architecture ("architectures": '
            '["LlamaForCausalLM"], say), so numfmt cannot tell a language model from an '
            "encoder: add the class the checkpoint was saved from"
        )
    for shard in sorted(path.glob("*.safetensors")):
        SafetensorsFile(shard)  # a damaged or truncated file: one message, before transformers
    for index in (SAFE_WEIGHTS[1], PICKLED_WEIGHTS[1]):  # shards only inside the folder
        if (path / index).exists() and (allow_pickle or index == SAFE_WEIGHTS[1]):
            sharded_index(path, index)
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    auto = t.AutoModelForCausalLM if causal else t.AutoModel
    if placement.get("max_memory"):
        from accelerate import init_empty_weights

        from numfmt.models.placement import check_budget

        with init_empty_weights():
            check_budget(auto.from_config(config), placement["max_memory"], str(path))
    try:
        net, info = auto.from_pretrained(
            str(path),
            local_files_only=True,
            use_safetensors=None if allow_pickle else True,
            dtype="float32",
            output_loading_info=True,
            **placement,
        )
    except pickle.UnpicklingError:
        raise NumfmtError(
            f"{path}: its pickled weights are not the plain tensors torch's weights_only "
            "loader accepts (a damaged file, or objects that could run code, which numfmt "
            "does not run): use a safetensors copy of the model"
        ) from None
    except (OSError, ValueError, RuntimeError, KeyError, EOFError) as exc:
        raise NumfmtError(f"{path}: transformers could not load the model ({exc})") from None
    _check_loaded(path, info)
    if placement:
        from numfmt.models.placement import release_after_use

        release_after_use(net)
    return net.eval()


def _check_loaded(path: Path, info: dict[str, Any]) -> None:
    """Refuse a checkpoint that lacks a weight the model has (transformers would start that
    layer from random values) or holds one it does not know, naming them."""
    for key, what in (
        ("missing_keys", "lacks weights the model needs (they would start random)"),
        ("unexpected_keys", "holds weights the model does not have"),
        ("mismatched_keys", "holds weights of the wrong shape"),
    ):
        names = sorted(str(k[0] if isinstance(k, tuple) else k) for k in info.get(key) or ())
        if names:
            shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
            raise NumfmtError(f"{path}: the checkpoint {what}: {shown}")


#: The files a Hugging Face folder's tokenizer is read from (any one of them).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json")


def _load_tokenizer(source: ModelSource):
    t = _transformers()
    try:
        if source.kind == "gguf":
            return t.AutoTokenizer.from_pretrained(
                str(source.folder), gguf_file=source.path.name, local_files_only=True
            )
        if not any((source.folder / f).is_file() for f in TOKENIZER_FILES):
            raise NumfmtError(
                f"{source.name} has no tokenizer (none of {', '.join(TOKENIZER_FILES)}); "
                "give the model it was made from, whose tokenizer it uses"
            )
        return t.AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NumfmtError(f"{source.name}: no tokenizer could be built ({why})") from None
