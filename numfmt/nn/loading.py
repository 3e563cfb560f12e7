"""``load_model``: a MODEL (folder, ``.gguf`` or installed name) as a torch model and tokenizer.

Nothing downloads: transformers is asked for local files only, and weights come from
safetensors or GGUF (pickled weights only when the caller allows them, through torch's
``weights_only`` loader).
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from numfmt.errors import NumfmtError
from numfmt.nn.sources import ModelSource, resolve


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
    try:
        import transformers
    except ImportError:
        raise NumfmtError(
            "loading models needs transformers: pip install 'numfmt[models]'"
        ) from None
    return transformers


def load_model(
    model: str | Path, *, tokenizer: bool = True, allow_pickle: bool = False
) -> LoadedModel:
    """Load a MODEL for quantizing and evaluating.

    Args:
        model: a Hugging Face folder, a Llama ``.gguf`` file, or ``smollm2-135m`` /
            ``minilm-l6`` (installed packages).
        tokenizer: also load its tokenizer (for GGUF files, transformers builds it from the
            vocabulary in the file).
        allow_pickle: accept a folder whose weights are only pickled (see ``resolve``).

    Raises:
        NumfmtError: a missing or damaged model, an architecture numfmt cannot build, or a
            missing package (the message names it).
    """
    source = resolve(model, allow_pickle=allow_pickle)
    start = time.perf_counter()
    with _quiet_transformers():
        if source.kind == "gguf":
            from numfmt.nn import gguf_model

            net = gguf_model.load(source.path)
        else:
            net = _load_folder(source.path, allow_pickle)
        seconds = time.perf_counter() - start
        tok = _load_tokenizer(source) if tokenizer else None
    return LoadedModel(net, tok, source, seconds, time.perf_counter() - start - seconds)


@contextlib.contextmanager
def _quiet_transformers():
    """No progress bars of transformers' own while numfmt loads (numfmt draws its own)."""
    t = _transformers()
    logging = t.utils.logging
    was = logging.is_progress_bar_enabled()
    logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            logging.enable_progress_bar()


def _load_folder(path: Path, allow_pickle: bool):
    t = _transformers()
    try:
        config = t.AutoConfig.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise NumfmtError(f"{path}: its config.json does not describe a model ({exc})") from None
    architectures = getattr(config, "architectures", None) or []
    causal = any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)
    auto = t.AutoModelForCausalLM if causal else t.AutoModel
    try:
        net = auto.from_pretrained(
            str(path),
            local_files_only=True,
            use_safetensors=None if allow_pickle else True,
            dtype="float32",
        )
    except (OSError, ValueError, RuntimeError, KeyError) as exc:
        raise NumfmtError(f"{path}: transformers could not load the model ({exc})") from None
    return net.eval()


def _load_tokenizer(source: ModelSource):
    t = _transformers()
    try:
        if source.kind == "gguf":
            return t.AutoTokenizer.from_pretrained(
                str(source.folder), gguf_file=source.path.name, local_files_only=True
            )
        return t.AutoTokenizer.from_pretrained(str(source.path), local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise NumfmtError(f"{source.name}: no tokenizer could be built ({exc})") from None
