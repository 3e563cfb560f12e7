"""Quantizing a checkpoint larger than memory: tensor by tensor, from its files to one file.

``quantize_checkpoint(source, out, recipe)`` reads a ``.safetensors`` file, or a folder of them
(sharded, with ``model.safetensors.index.json``, or not), one tensor at a time with plain reads
(never the whole file, never a memory map that grows with what was read), quantizes each
weight the recipe chooses, and appends the result to a temporary data file; the output (the
same ``numfmt.model/1`` file that ``saving.save_model`` writes, read back by
``load_quantized``) is then assembled beside the destination and renamed into place. Peak
memory stays near the largest tensor, not the model. The layers' kinds (Linear, GPT-2's
Conv1D, Embedding) come from the folder's ``config.json`` (an architecture built on the meta
device, which holds no memory); without one, 2-D ``.weight`` tensors are Linear weights and
those named like embeddings are embeddings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from numfmt._safetensors import SafetensorsFile
from numfmt.errors import NumfmtError
from numfmt.models.saving import NumfmtFile, origin
from numfmt.models.sources import sharded_index
from numfmt.nn.algorithms.chooser import RoundToNearest
from numfmt.nn.layers import candidates
from numfmt.nn.path import Weight, quantize_weights
from numfmt.nn.progress import Progress
from numfmt.nn.recipe import Recipe, parse_recipe
from numfmt.nn.report import ModelReport

INDEX = "model.safetensors.index.json"
#: The dtypes of the weights a checkpoint may hold to be quantized here.
FLOAT_WEIGHTS = ("F32", "F16", "BF16", "F64")


def checkpoint_files(source: str | Path) -> tuple[dict[str, SafetensorsFile], Path]:
    """tensor name -> the shard that holds it, for a ``.safetensors`` file or a folder
    (sharded with its index, or files without one); and the folder."""
    p = Path(source)
    if p.is_file():
        if p.suffix != ".safetensors":
            raise NumfmtError(f"{p.name}: streaming reads .safetensors checkpoints")
        shard = SafetensorsFile(p)
        return dict.fromkeys(shard.entries, shard), p.parent
    if not p.is_dir():
        raise NumfmtError(f"{p}: no such file or folder")
    index = p / INDEX
    shards: dict[str, SafetensorsFile] = {}
    out: dict[str, SafetensorsFile] = {}
    if index.exists():
        for name, file in sharded_index(p, INDEX).items():
            key = str(file)
            if key not in shards:
                shards[key] = SafetensorsFile(file)
            if name not in shards[key].entries:
                raise NumfmtError(f"{INDEX} puts {name} in {file.name}, which does not hold it")
            out[name] = shards[key]
        return out, p
    files = sorted(p.glob("*.safetensors"))
    if not files:
        raise NumfmtError(f"{p}: no .safetensors files to stream")
    if (p / "model.safetensors").is_file():  # what transformers reads, and nothing beside it
        files = [p / "model.safetensors"]
    for f in files:  # shards without an index: each tensor in one of them, never two
        shard = SafetensorsFile(f)
        for name in shard.entries:
            if name in out:
                raise NumfmtError(
                    f"{p}: {name} is in both {out[name].path.name} and {f.name}, and no "
                    f"{INDEX} says which to read: give the file to stream, or add the index"
                )
            out[name] = shard
    return out, p


def _layer_kinds(folder: Path, names: list[str]) -> tuple[dict[str, str], dict[str, str], Any]:
    """layer name -> kind (linear, conv1d, embedding), tied parameter -> its owner, and the
    config text: from config.json through the architecture on the meta device, or by the
    tensors' names and shapes."""
    config_path = folder / "config.json"
    if config_path.exists():
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

        config = AutoConfig.from_pretrained(folder)
        present = set(names)
        best = None
        for auto in (AutoModelForCausalLM, AutoModel):  # the one whose names the file uses
            try:
                with torch.device("meta"):
                    skeleton = auto.from_config(config)
            except (ValueError, KeyError):
                continue
            found = {name: kind for name, _, kind in candidates(skeleton)}
            hits = sum(f"{name}.weight" in present for name in found)
            if best is None or hits > best[0]:
                best = (hits, found, skeleton)
        if best is None or best[0] == 0:
            return _by_names(names), {}, config
        _, kinds, skeleton = best
        seen: dict[int, str] = {}
        tied = {}
        for name, param in skeleton.named_parameters(remove_duplicate=False):
            if id(param) in seen and name not in present:
                tied[name] = seen[id(param)]
            seen.setdefault(id(param), name)
        return kinds, tied, config
    return _by_names(names), {}, None


def _by_names(names: list[str]) -> dict[str, str]:
    """Without an architecture: ``.weight`` tensors are Linear weights, embeddings by name
    (their 2-D shape is checked when they are read)."""
    kinds = {}
    for name in names:
        if name.endswith(".weight"):
            layer = name[: -len(".weight")]
            kinds[layer] = "embedding" if "embed" in layer or layer.endswith("wte") else "linear"
    return kinds


class CheckpointWeights:
    """A safetensors checkpoint as a source of the quantize path, read a tensor at a time:
    each layer's weight (kinds from the folder's config.json, or by names) as float32 in
    Linear's layout, every other tensor as it is stored."""

    def __init__(self, source: str | Path) -> None:
        self.where, self.folder = checkpoint_files(source)
        self.names = list(self.where)
        self.kinds, self.tied, self.config = _layer_kinds(self.folder, self.names)
        self.bytes_before = self.parameters = 0
        for name in self.names:  # before any work: weights numfmt can quantize
            layer = name.removesuffix(".weight")
            dtype = self.where[name].entries[name][0]
            if name.endswith(".weight") and layer in self.kinds and dtype not in FLOAT_WEIGHTS:
                raise NumfmtError(
                    f"{name} is stored as {dtype}; numfmt quantizes checkpoints whose weights "
                    f"are floats ({', '.join(FLOAT_WEIGHTS)}), not already quantized ones "
                    "(an FP8 weight has scales of its own)"
                )

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[Weight]:
        for name in self.names:
            array = self.where[name].read(name)
            self.bytes_before += array.nbytes
            if array.dtype.kind == "f" or array.dtype.name == "bfloat16":
                self.parameters += array.size
            layer = name[: -len(".weight")] if name.endswith(".weight") else None
            kind = self.kinds.get(layer) if layer else None
            if kind is None:
                yield Weight(name, array, array.nbytes)
                continue
            w = torch.from_numpy(np.asarray(array, dtype=np.float32))
            w = w.t() if kind == "conv1d" else w
            yield Weight(name, w, array.nbytes, layer=layer, kind=kind, raw=array)
            del array, w

    def metadata(self, recipe: Recipe, source: str | Path) -> dict[str, str]:
        """What the written file says of its model: the config, architecture and origin."""
        config = self.config
        architecture = (getattr(config, "architectures", None) or [""])[0] if config else ""
        return {
            "tied": json.dumps(self.tied),
            "recipe": json.dumps(str(recipe)),
            "config": config.to_json_string() if config is not None else "null",
            "architecture": architecture,
            "source": origin(source),
        }


def quantize_checkpoint(
    source: str | Path,
    out: str | Path,
    recipe: Any = "int8/channel",
    *,
    overwrite: bool = False,
    progress: Progress = None,
    **recipe_args: Any,
) -> ModelReport:
    """Quantize a safetensors checkpoint into one ``numfmt.model/1`` file, a tensor at a time.

    Args:
        source: a ``.safetensors`` file, or a folder (sharded with its index, or not).
        out: the ``.safetensors`` file to write (never one of the inputs, never an existing
            file unless ``overwrite``).
        recipe: as for ``quantize_model``.
    """
    r = parse_recipe(recipe, **recipe_args)
    if r.activations is not None:
        raise NumfmtError(
            f"the recipe {r} quantizes activations on the fly ({r.activations}); a checkpoint "
            "quantized tensor by tensor holds weights only: quantize it in memory instead"
        )
    weights = CheckpointWeights(source)
    for name, owner in weights.tied.items():  # not stored: tied to the tensor it shares
        layer = name.removesuffix(".weight")
        if r.decide(layer, "linear")[0] is not None:  # a head: a Linear of its own
            raise NumfmtError(
                f"{layer} shares its weight with {owner} and the checkpoint stores it once; "
                f"the recipe {r} would quantize {layer} on its own, which a checkpoint read "
                "tensor by tensor cannot do (exclude it, drop --include-head, or quantize "
                "the model in memory)"
            )
    inputs = tuple({shard.path for shard in weights.where.values()})
    with NumfmtFile(out, overwrite=overwrite, inputs=inputs) as sink:
        try:
            report = quantize_weights(weights, r, sink, RoundToNearest(), progress=progress)
        except OSError as exc:
            raise NumfmtError(f"cannot write {sink.path}: {exc.strerror or exc}") from None
        if not sink.layers:
            raise NumfmtError(f"the recipe {r} quantizes no tensor of this checkpoint")
        sink.close(weights.metadata(r, source))
    return report
