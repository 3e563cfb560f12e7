"""A Llama model written as a GGUF file that llama.cpp-family tools run.

``write_gguf(model, path, "q4_1", metadata=source.gguf)`` lays the model's weights out as
llama.cpp's converter does (GGUF names, the query and key rows in its interleaved rotary
order, tensors in the source file's order), quantizes every matrix to the GGUF type with the
quantization layer (``numfmt.quant.gguf_bytes``: the bytes llama.cpp's own quantizer writes)
and keeps vectors (the norms) in float32. The metadata and the tokenizer are copied from a
Llama GGUF file (the model's source), with ``general.file_type`` set to the new type. The file
is written under a temporary name in the destination's folder and renamed once complete.

From a Hugging Face folder (``metadata=folder``), the metadata is built from the model's
config, and the tokenizer is converted by the gguf package's own readers (``BpeVocab`` for the
vocabulary, ``SpecialVocab`` for the merges and special tokens): byte-level BPE tokenizers
(``tokenizer.json``, as GPT-2, Llama 3 and SmolLM have); a SentencePiece tokenizer is refused.
The pre-tokenizer's name (``tokenizer.ggml.pre``, which llama.cpp looks up in a table of
known tokenizers) is not set, so llama.cpp falls back to its default pre-tokenizer with a
warning.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from numfmt._display import Displayable
from numfmt._extras import require
from numfmt._files import atomic_path, check_output
from numfmt.errors import NumfmtError
from numfmt.models.gguf_read import (
    BLOCK_NAMES,
    MODEL_NAMES,
    QUANTIZED,
    GGUFTensor,
    read_tensors,
)
from numfmt.nn.algorithms.chooser import RoundToNearest
from numfmt.nn.path import Weight, quantize_weights
from numfmt.nn.progress import Progress
from numfmt.nn.recipe import parse_recipe
from numfmt.nn.report import ModelReport
from numfmt.quant import gguf_bytes

#: GGUF's file types (llama.cpp's ``LlamaFileType``) of the types numfmt writes.
FILE_TYPES = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q8_0": 7, "q5_0": 8, "q5_1": 9}
#: Keys the writer sets itself, or that describe the source file rather than the model.
_OWN_KEYS = ("general.architecture", "general.file_type", "general.quantization_version")


@dataclass(frozen=True, eq=False)
class GGUFExport(Displayable):
    """What was written: the file, its type, its tensors (name, GGUF type) and size."""

    path: str
    kind: str
    tensors: tuple[tuple[str, str], ...]
    nbytes: int
    #: The quantize path's report of the matrices written (a row a quantized matrix).
    report: ModelReport | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "type": self.kind,
            "tensors": [{"name": n, "type": t} for n, t in self.tensors],
            "bytes": self.nbytes,
        }


def gguf_name(name: str) -> str:
    """GGUF's name of a transformers Llama tensor (the inverse of ``gguf_read.hf_name``)."""
    stem, _, suffix = name.rpartition(".")
    for gguf, hf in MODEL_NAMES.items():
        if stem == hf:
            return f"{gguf}.{suffix}"
    parts = stem.split(".")
    if len(parts) >= 4 and parts[:2] == ["model", "layers"]:
        inner = ".".join(parts[3:])
        for gguf, hf in BLOCK_NAMES.items():
            if inner == hf:
                return f"blk.{parts[2]}.{gguf}.{suffix}"
    raise NumfmtError(f"numfmt does not know the GGUF name of the Llama tensor '{name}'")


def permute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """A query or key projection's rows in llama.cpp's order (the inverse of
    ``gguf_read.unpermute_rows``)."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, 2, half, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _copy_metadata(reader, writer, kind: str) -> None:
    import gguf

    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in _OWN_KEYS:
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vtype, sub_type=sub)
    writer.add_file_type(FILE_TYPES[kind])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def folder_vocabulary(folder: Path, size: int) -> tuple[list[bytes], list[int], Any]:
    """(tokens, token types, gguf SpecialVocab) of a folder's byte-level BPE tokenizer,
    padded with unused tokens to the model's ``size`` rows of embedding."""
    import json

    import gguf
    from gguf.vocab import BpeVocab, SpecialVocab

    try:
        vocab = BpeVocab(folder)
    except (OSError, ValueError, KeyError) as exc:
        raise NumfmtError(
            f"{folder}: numfmt converts byte-level BPE tokenizers (tokenizer.json, as GPT-2, "
            f"Llama 3 and SmolLM have) to GGUF, and this folder has none ({exc})"
        ) from None
    tokens, types = [], []
    for text, _, kind in vocab.all_tokens():
        tokens.append(text.encode("utf-8") if isinstance(text, str) else text)
        types.append(int(kind))
    special = set()
    path = folder / "tokenizer.json"
    if path.is_file():
        added = json.loads(path.read_text(encoding="utf-8")).get("added_tokens") or []
        special = {int(t["id"]) for t in added if t.get("special")}
    for i in special:
        if i < len(types):
            types[i] = int(gguf.TokenType.CONTROL)
    if len(tokens) > size:
        raise NumfmtError(
            f"{folder}: the tokenizer has {len(tokens)} tokens and the model's embedding "
            f"{size} rows"
        )
    for i in range(len(tokens), size):  # rows no token reaches (a padded embedding)
        tokens.append(f"[PAD{i}]".encode())
        types.append(int(gguf.TokenType.UNUSED))
    return tokens, types, SpecialVocab(folder, load_merges=True, n_vocab=size)


def _folder_metadata(writer, cfg, folder: Path, vocab, kind: str) -> None:
    """GGUF's Llama metadata from a transformers config, and the converted tokenizer."""
    import gguf

    rope = getattr(cfg, "rope_parameters", None) or {}
    scaling = rope.get("rope_type", "default")
    if scaling != "default":
        raise NumfmtError(
            f"{folder}: the model scales its rotary embedding ({scaling}), which numfmt "
            "does not write to GGUF"
        )
    theta = rope.get("rope_theta", getattr(cfg, "rope_theta", 10000.0))
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    writer.add_name(folder.name)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(float(theta))
    writer.add_rope_dimension_count(head_dim)
    if head_dim != cfg.hidden_size // heads:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_vocab_size(cfg.vocab_size)
    writer.add_file_type(FILE_TYPES[kind])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    tokens, types, special = vocab
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    special.add_to_gguf(writer, quiet=True)


class StateTensors:
    """A Llama model's state as a source of the quantize path, in the GGUF file's order:
    each matrix a layer's weight (the embedding an ``embedding``, the rest ``linear``),
    vectors (the norms) passed through."""

    def __init__(self, state: dict[str, torch.Tensor], order: list[str], kind: str) -> None:
        self.state, self.order, self.kind = state, order, kind
        self.bytes_before = sum(t.numel() * t.element_size() for t in state.values())
        self.parameters = sum(t.numel() for t in state.values() if t.is_floating_point())

    def __len__(self) -> int:
        return len(self.order)

    def __iter__(self) -> Iterator[Weight]:
        for name in self.order:
            tensor = self.state[name]
            nbytes = tensor.numel() * tensor.element_size()
            w = tensor.detach().to(torch.float32).cpu()
            if w.dim() != 2:
                yield Weight(name, w, nbytes)
                continue
            if self.kind in QUANTIZED and w.shape[1] % 32:
                raise NumfmtError(
                    f"{name} has rows of {w.shape[1]}; GGUF's {self.kind} blocks take "
                    "multiples of 32"
                )
            layer = name.removesuffix(".weight")
            kind = "embedding" if "embed" in layer else "linear"
            yield Weight(name, w, nbytes, layer=layer, kind=kind)


class GGUFTensors:
    """A GGUF file as a sink of the quantize path: each quantized matrix as GGUF's blocks
    (``numfmt.quant.gguf_bytes``: the bytes llama.cpp's quantizer writes), the query and
    key rows in llama.cpp's order; matrices kept in float as ``f16`` or ``f32``, vectors
    in float32. Blocks run along rows, so reordering rows after quantizing is exact."""

    def __init__(self, writer: Any, kind: str, meta: dict[str, Any]) -> None:
        self.writer, self.kind, self.meta = writer, kind, meta
        self.written: list[tuple[str, str]] = []

    def _rows(self, gname: str, rows: np.ndarray) -> np.ndarray:
        if ".attn_q." in gname:
            return permute_rows(rows, self.meta["heads"])
        if ".attn_k." in gname:
            return permute_rows(rows, self.meta["kv_heads"])
        return rows

    def put(self, item: Weight, qt: Any) -> int:
        import gguf

        gname = gguf_name(item.name)
        raw = self._rows(gname, gguf_bytes.to_bytes(qt))
        qtype = gguf.GGMLQuantizationType[self.kind.upper()]
        self.writer.add_tensor(gname, raw, raw_shape=raw.shape, raw_dtype=qtype)
        self.written.append((gname, self.kind))
        return int(raw.nbytes)

    def keep(self, item: Weight) -> int:
        gname = gguf_name(item.name)
        w = self._rows(gname, np.asarray(item.tensor))
        stored = self.kind if w.ndim == 2 and self.kind in ("f16", "f32") else "f32"
        data = w.astype(np.float16 if stored == "f16" else np.float32)
        self.writer.add_tensor(gname, data)
        self.written.append((gname, stored))
        return int(data.nbytes)


def write_gguf(
    model: torch.nn.Module,
    path: str | Path,
    kind: str,
    *,
    metadata: str | Path,
    overwrite: bool = False,
    progress: Progress = False,
) -> GGUFExport:
    """Write a Llama model's weights as a GGUF file of type ``kind`` (q8_0, q4_0, q4_1, q5_0,
    q5_1, f16, f32), its metadata and tokenizer copied from the Llama GGUF file ``metadata``,
    or built from the Hugging Face folder ``metadata`` (its config and tokenizer). Every
    matrix (the embedding included) is quantized once, on the quantize path; the export's
    ``report`` is that quantization's."""

    gguf = require("gguf", "writing GGUF")

    kind = kind.lower()
    if kind not in FILE_TYPES:
        raise NumfmtError(f"numfmt writes GGUF files of type {', '.join(FILE_TYPES)}; not {kind!r}")
    target = check_output(path, inputs=[metadata], overwrite=overwrite, suffix=".gguf")
    cfg = getattr(model, "config", None)
    if cfg is None or getattr(cfg, "model_type", None) != "llama":
        raise NumfmtError("numfmt writes GGUF files of Llama models only")
    folder = Path(metadata) if Path(metadata).is_dir() else None
    source_tensors: list[GGUFTensor]
    if folder is not None:
        meta = {"heads": cfg.num_attention_heads, "kv_heads": cfg.num_key_value_heads}
        source_tensors, reader = [], None
        vocab = folder_vocabulary(folder, cfg.vocab_size)  # checked before anything is written
    else:
        meta, source_tensors = read_tensors(metadata)  # a Llama GGUF file, or one message
        reader = gguf.GGUFReader(str(metadata))
    state = {k: v for k, v in model.state_dict().items() if not k.endswith("rotary_emb.inv_freq")}
    tied = bool(getattr(cfg, "tie_word_embeddings", False))
    if tied:
        state.pop("lm_head.weight", None)
    order = [t.name for t in source_tensors if t.name in state]
    order += [n for n in state if n not in order]
    if kind in QUANTIZED:
        recipe = parse_recipe(kind, kinds=("linear", "embedding"), exclude=())
    else:  # f16, f32: every matrix kept in float, as that type
        recipe = parse_recipe("fp32")
    source = StateTensors(state, order, kind)
    with atomic_path(target, overwrite=overwrite) as tmp:
        writer = gguf.GGUFWriter(str(tmp), "llama")
        try:
            if reader is None:
                assert folder is not None
                _folder_metadata(writer, cfg, folder, vocab, kind)
            else:
                _copy_metadata(reader, writer, kind)
            sink = GGUFTensors(writer, kind, meta)
            report = quantize_weights(
                source, recipe, sink, RoundToNearest(), progress=progress, label=kind
            )
            writer.write_header_to_file()
            writer.write_kv_data_to_file()
            writer.write_tensors_to_file()
        finally:
            writer.close()
    return GGUFExport(str(target), kind, tuple(sink.written), target.stat().st_size, report)
