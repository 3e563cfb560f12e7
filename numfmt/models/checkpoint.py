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

import contextlib
import json
import os
import shutil
import struct
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from numfmt.errors import NumfmtError
from numfmt.nn.progress import Progress, tracker
from numfmt.nn.recipe import parse_recipe
from numfmt.nn.report import LayerRow, ModelReport
from numfmt.models.saving import origin

#: safetensors' dtype names <-> numpy's.
_DTYPES = {
    "F64": np.float64,
    "F32": np.float32,
    "F16": np.float16,
    "I64": np.int64,
    "I32": np.int32,
    "I16": np.int16,
    "I8": np.int8,
    "U8": np.uint8,
    "U16": np.uint16,
    "U32": np.uint32,
    "U64": np.uint64,
    "BOOL": np.bool_,
}
INDEX = "model.safetensors.index.json"


def _dtype(name: str):
    if name == "BF16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    if name not in _DTYPES:
        raise NumfmtError(f"numfmt cannot read safetensors tensors of dtype {name}")
    return np.dtype(_DTYPES[name])


def _dtype_name(dtype: np.dtype) -> str:
    if dtype.name == "bfloat16":
        return "BF16"
    for name, d in _DTYPES.items():
        if np.dtype(d) == dtype:
            return name
    raise NumfmtError(f"cannot store a {dtype} tensor in safetensors")


class _Shard:
    """One safetensors file: its header read with struct, tensors read one at a time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            size = path.stat().st_size
            with path.open("rb") as f:
                head = f.read(8)
                if len(head) < 8:
                    raise NumfmtError(f"{path.name}: not a safetensors file (too short)")
                (n,) = struct.unpack("<Q", head)
                if n > size - 8 or n > 100_000_000:
                    raise NumfmtError(f"{path.name}: not a safetensors file (bad header length)")
                header = json.loads(f.read(n))
        except OSError as exc:
            raise NumfmtError(f"{path}: cannot read ({exc.strerror or exc})") from None
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise NumfmtError(f"{path.name}: not a safetensors file (unreadable header)") from None
        self.metadata = header.pop("__metadata__", {}) or {}
        self.start = 8 + n
        self.entries: dict[str, dict[str, Any]] = header
        for name, e in header.items():
            if self.start + e["data_offsets"][1] > size:
                raise NumfmtError(f"{path.name} is truncated: {name} runs past its end")

    def read(self, name: str) -> np.ndarray:
        e = self.entries[name]
        dtype = _dtype(e["dtype"])
        begin, end = e["data_offsets"]
        out = np.empty(int(np.prod(e["shape"], dtype=np.int64)), dtype=dtype)
        with self.path.open("rb") as f:
            f.seek(self.start + begin)
            got = f.readinto(memoryview(out.view(np.uint8)))
        if got != end - begin:
            raise NumfmtError(f"{self.path.name} is truncated: {name} is cut short")
        return out.reshape(e["shape"])


def checkpoint_files(source: str | Path) -> tuple[dict[str, _Shard], Path]:
    """tensor name -> the shard that holds it, for a ``.safetensors`` file or a folder
    (sharded with its index, or files without one); and the folder."""
    p = Path(source)
    if p.is_file():
        if p.suffix != ".safetensors":
            raise NumfmtError(f"{p.name}: streaming reads .safetensors checkpoints")
        shard = _Shard(p)
        return dict.fromkeys(shard.entries, shard), p.parent
    if not p.is_dir():
        raise NumfmtError(f"{p}: no such file or folder")
    index = p / INDEX
    shards: dict[str, _Shard] = {}
    out: dict[str, _Shard] = {}
    if index.exists():
        try:
            weight_map = json.loads(index.read_text())["weight_map"]
        except (OSError, ValueError, KeyError):
            raise NumfmtError(f"{index.name}: not a safetensors index (no weight_map)") from None
        for name, file in weight_map.items():
            if file not in shards:
                if not (p / file).is_file():
                    raise NumfmtError(f"{INDEX} names the shard {file}, which is missing")
                shards[file] = _Shard(p / file)
            if name not in shards[file].entries:
                raise NumfmtError(f"{INDEX} puts {name} in {file}, which does not hold it")
            out[name] = shards[file]
        return out, p
    files = sorted(p.glob("*.safetensors"))
    if not files:
        raise NumfmtError(f"{p}: no .safetensors files to stream")
    for f in files:
        shard = _Shard(f)
        for name in shard.entries:
            out[name] = shard
    return out, p


def _layer_kinds(folder: Path, names: list[str]) -> tuple[dict[str, str], dict[str, str], Any]:
    """layer name -> kind (linear, conv1d, embedding), tied parameter -> its owner, and the
    config text: from config.json through the architecture on the meta device, or by the
    tensors' names and shapes."""
    config_path = folder / "config.json"
    if config_path.exists():
        from transformers import AutoConfig, AutoModel, AutoModelForCausalLM

        from numfmt.nn.quantize import candidates

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
    from numfmt._files import check_output
    from numfmt.quant.io import LAYOUT, _tensor_entries
    from numfmt.quant.tensor import quantize_tensor

    start = time.perf_counter()
    r = parse_recipe(recipe, **recipe_args)
    where, folder = checkpoint_files(source)
    inputs = {shard.path for shard in where.values()}
    target = check_output(out, inputs=inputs, overwrite=overwrite, suffix=".safetensors")
    names = list(where)
    kinds, tied, config = _layer_kinds(folder, names)
    rows: list[LayerRow] = []
    kept: list[tuple[str, str]] = []
    layers: dict[str, dict[str, Any]] = {}
    layout: dict[str, Any] = {}
    header: dict[str, Any] = {}
    before = after = parameters = 0
    fd, data_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".data", dir=target.parent)
    data_path = Path(data_name)
    try:
        with os.fdopen(fd, "wb") as data, tracker(len(names), "quantizing", progress) as step:

            def put(key: str, array: np.ndarray) -> int:
                a = np.ascontiguousarray(array)
                begin = data.tell()
                data.write(a.reshape(-1).view(np.uint8).data)  # the array's memory: no copy
                header[key] = {
                    "dtype": _dtype_name(a.dtype),
                    "shape": list(a.shape),
                    "data_offsets": [begin, data.tell()],
                }
                return a.nbytes

            for name in names:
                array = where[name].read(name)
                nbytes = array.nbytes
                before += nbytes
                if array.dtype.kind == "f":
                    parameters += array.size
                layer = name[: -len(".weight")] if name.endswith(".weight") else None
                kind = kinds.get(layer) if layer else None
                scheme = r.scheme_for(layer) if kind is not None else None
                if kind is None or scheme is None or kind not in r.kinds:
                    if kind is not None and scheme is None and not r.is_float:
                        kept.append((layer, r.why_float(layer)))
                    stored = array.astype(np.float32) if array.dtype.name == "bfloat16" else array
                    after += put(name, stored)
                else:
                    w = torch.from_numpy(np.asarray(array, dtype=np.float32))
                    w = w.t() if kind == "conv1d" else w
                    qt = quantize_tensor(w, scheme)
                    entries, info = _tensor_entries(layer, qt, "low_first")
                    written = sum(put(k, v) for k, v in entries.items())
                    after += written
                    layout[layer] = info
                    layers[layer] = {"kind": kind, "activations": None, "bias": "float"}
                    rows.append(
                        LayerRow.measure(
                            layer, kind, w, qt, bytes_before=nbytes, bytes_after=written
                        )
                    )
                del array
                step(name)
            data.flush()
        if not layers:
            raise NumfmtError(f"the recipe {r} quantizes no tensor of this checkpoint")
        architecture = (getattr(config, "architectures", None) or [""])[0] if config else ""
        meta = {
            "format": "numfmt.model/1",
            "layers": json.dumps(layers),
            "tied": json.dumps(tied),
            "recipe": json.dumps(str(r)),
            "config": config.to_json_string() if config is not None else "null",
            "architecture": architecture,
            "source": origin(source),
            "numfmt": json.dumps({"layout": LAYOUT, "tensors": layout}, separators=(",", ":")),
        }
        _assemble(target, header, meta, data_path, overwrite)
    except OSError as exc:
        raise NumfmtError(f"cannot write {target}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            data_path.unlink()
    seconds = time.perf_counter() - start
    return ModelReport(str(r), tuple(rows), tuple(kept), before, after, parameters, seconds)


def _assemble(target: Path, header: dict, meta: dict, data_path: Path, overwrite: bool) -> None:
    """Header, then the data file's bytes, into a temporary file renamed over ``target``."""
    from numfmt._files import _new_file_mode

    text = json.dumps({"__metadata__": meta, **header}, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f, data_path.open("rb") as data:
            f.write(struct.pack("<Q", len(text)))
            f.write(text)
            shutil.copyfileobj(data, f, 16 << 20)
            f.flush()
            os.fsync(f.fileno())
        if target.exists() and not overwrite:
            raise NumfmtError(f"{target} appeared while writing; numfmt does not overwrite files")
        os.chmod(tmp, _new_file_mode())
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()
