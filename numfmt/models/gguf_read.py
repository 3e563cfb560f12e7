"""A Llama GGUF file read straight into a transformers model, its blocks decoded by numfmt.

transformers can load a GGUF file itself (``gguf_file=``), through accelerate, in 15 to 95 s
for SmolLM2 here. This reader maps the file into memory, reads its header with a parser of
its own (which steps over the vocabulary rather than decoding it), decodes each quantized
block with the quantization layer's GGUF types (``numfmt.quant.gguf_bytes``, byte-exact with
llama.cpp), and builds the model from a config made from the file's metadata. Like
transformers, it undoes the row order that llama.cpp's converter gives the query and key
projections (it interleaves the two halves of each rotary head). Blocks run along rows, so
that reordering keeps every block whole: a weight read here and quantized again with the same
type gives the file's bytes back.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from numfmt.errors import NumfmtError
from numfmt.quant import gguf_bytes

#: GGUF's names -> transformers' (Llama); per block, then for the whole model.
BLOCK_NAMES = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
MODEL_NAMES = {"token_embd": "model.embed_tokens", "output_norm": "model.norm", "output": "lm_head"}
#: GGUF's tensor types numfmt decodes (the quantization layer's GGUF presets, and floats).
QUANTIZED = ("q8_0", "q4_0", "q5_0", "q4_1", "q5_1")
FLOATS: dict[str, type[np.floating[Any]]] = {"f32": np.float32, "f16": np.float16}


@dataclass(frozen=True)
class GGUFTensor:
    """One tensor of the file: transformers' ``name``, its GGUF ``kind`` (``q4_1``, ``f32``,
    ...), its ``shape`` in torch's order (rows first) and its ``data`` as stored (uint8 blocks
    for quantized kinds, rows in the file's order)."""

    name: str
    gguf_name: str
    kind: str
    shape: tuple[int, ...]
    data: np.ndarray


def hf_name(gguf_name: str) -> str:
    """transformers' name of a GGUF tensor: ``blk.3.attn_q.weight`` ->
    ``model.layers.3.self_attn.q_proj.weight``."""
    stem, _, suffix = gguf_name.rpartition(".")
    m = re.fullmatch(r"blk\.(\d+)\.(\w+)", stem)
    if m and m.group(2) in BLOCK_NAMES:
        return f"model.layers.{m.group(1)}.{BLOCK_NAMES[m.group(2)]}.{suffix}"
    if stem in MODEL_NAMES:
        return f"{MODEL_NAMES[stem]}.{suffix}"
    raise NumfmtError(f"numfmt does not know the GGUF tensor '{gguf_name}' of a Llama model")


#: GGML's type ids -> numfmt's names, for the types numfmt decodes.
GGML_TYPES = {0: "f32", 1: "f16", 2: "q4_0", 3: "q4_1", 6: "q5_0", 7: "q5_1", 8: "q8_0"}
_BLOCK_BYTES = {"q8_0": 34, "q4_0": 18, "q5_0": 22, "q4_1": 20, "q5_1": 24}
#: Values per quantized block: blocks run along a row (GGUF's first dimension).
_BLOCK = 32
#: GGUF's metadata value types: id -> struct format (8 string, 9 array: read apart).
_SCALARS = {
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_TYPE_NAMES = {
    0: "uint8",
    1: "int8",
    2: "uint16",
    3: "int16",
    4: "uint32",
    5: "int32",
    6: "float32",
    7: "bool",
    8: "string",
    9: "array",
    10: "uint64",
    11: "int64",
    12: "float64",
}
_INTEGERS = frozenset({0, 1, 2, 3, 4, 5, 10, 11})
_FLOATS = frozenset({6, 12})
#: GGML tensors have at most 4 dimensions; arrays nest no deeper than this in a sane file.
_MAX_DIMS = 4
_MAX_NESTING = 8
#: The longest context numfmt believes (16M tokens; the longest Llamas have about 10M).
MAX_CONTEXT = 1 << 24


@dataclass(frozen=True)
class _Entry:
    """One row of the tensor table: GGUF's dims (``ne``, fastest first), numfmt's kind, the
    absolute offset of its data and the bytes that type and shape make."""

    name: str
    ne: tuple[int, ...]
    kind: str
    offset: int
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.ne))

    def describe(self) -> str:
        return f"{self.kind.upper()} of shape {_shape(self.shape)}"


def _shape(shape: tuple[Any, ...]) -> str:
    return "x".join(str(n) for n in shape)


def _nbytes(kind: str, ne: tuple[int, ...]) -> int:
    """The bytes a tensor of GGUF dims ``ne`` takes, counted with Python ints (no overflow)."""
    count = math.prod(ne)
    if kind in FLOATS:
        return count * np.dtype(FLOATS[kind]).itemsize
    return count // _BLOCK * _BLOCK_BYTES[kind]


class _Header:
    """GGUF's header read with ``struct`` from a memory map: the metadata entries (arrays of
    strings, the tokenizer's vocabulary, are stepped over, not decoded) and the tensor table.
    ``gguf.GGUFReader`` decodes every string of the vocabulary in Python, which takes
    longer than decoding every weight.

    Everything the header says about the data is checked here, before any of it is read: the
    alignment, and for each tensor a known type, sane dims, an aligned offset, and data that
    fill exactly its span of the file (up to the next tensor, or the end), overlapping none."""

    def __init__(self, path: Path) -> None:
        import mmap
        import struct

        self.struct = struct
        self.file = path.name
        try:
            with path.open("rb") as f:
                if os.fstat(f.fileno()).st_size == 0:
                    raise NumfmtError(f"{self.file} is not a GGUF file (it is empty)")
                self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except OSError as exc:
            raise NumfmtError(f"{self.file}: cannot read it ({exc.strerror or exc})") from None
        self.at = 0
        if self._take(4) != b"GGUF":
            raise NumfmtError(f"{self.file} is not a GGUF file (it does not start with 'GGUF')")
        version, tensor_count, kv_count = self._unpack("<IQQ")
        if version not in (2, 3):
            raise NumfmtError(f"{self.file}: GGUF version {version}; numfmt reads versions 2 and 3")
        self.fields: dict[str, Any] = {}
        #: each entry's GGUF type id (9 for arrays, whatever their items).
        self.types: dict[str, int] = {}
        #: arrays' item type ids.
        self.items: dict[str, int] = {}
        for _ in range(kv_count):
            key = self._string()
            if key in self.fields:
                raise NumfmtError(f"{self.file}: the GGUF entry '{key}' appears twice")
            (kind,) = self._unpack("<I")
            self.types[key] = kind
            if kind == 9 and self.at + 4 <= len(self.buf):  # else refused as truncated below
                self.items[key] = struct.unpack_from("<I", self.buf, self.at)[0]
            self.fields[key] = self._value(kind)
        infos = []
        for _ in range(tensor_count):
            name = self._string()
            (dims,) = self._unpack("<I")
            if not 1 <= dims <= _MAX_DIMS:
                raise NumfmtError(
                    f"{self.file}: the tensor '{name}' has {dims} dimensions in the GGUF file's "
                    f"tensor table; GGUF tensors have 1 to {_MAX_DIMS}"
                )
            ne = tuple(int(n) for n in self._unpack(f"<{dims}Q"))
            type_id, offset = self._unpack("<IQ")
            infos.append((name, ne, type_id, offset))
        self.alignment = self.integer("general.alignment", 32)
        if self.alignment < 8 or self.alignment & (self.alignment - 1):
            raise NumfmtError(
                f"{self.file}: general.alignment is {self.alignment}; GGUF's alignment is a "
                "power of two and a multiple of 8 (32 by default)"
            )
        self.start = -(-self.at // self.alignment) * self.alignment
        self.tensors = [self._entry(*info) for info in infos]
        self._check_spans()

    def _entry(self, name: str, ne: tuple[int, ...], type_id: int, offset: int) -> _Entry:
        where = f"{self.file}: the tensor '{name}'"
        kind = GGML_TYPES.get(type_id)
        if kind is None:
            raise NumfmtError(
                f"{where} is stored as GGML type {type_id}; numfmt decodes "
                f"{', '.join(k.upper() for k in GGML_TYPES.values())}"
            )
        if min(ne) < 1:
            raise NumfmtError(
                f"{where} has a dimension of 0 (GGUF dims {list(ne)}): the header is damaged"
            )
        if kind not in FLOATS and ne[0] % _BLOCK:
            raise NumfmtError(
                f"{where} is {kind.upper()}, whose blocks hold {_BLOCK} values along a row, but "
                f"its rows hold {ne[0]} (GGUF dims {list(ne)}): the header is damaged"
            )
        if offset % self.alignment:
            raise NumfmtError(
                f"{where} starts at data offset {offset}, not a multiple of the file's "
                f"alignment ({self.alignment}): the header is damaged"
            )
        entry = _Entry(name, ne, kind, self.start + offset, _nbytes(kind, ne))
        size = len(self.buf)
        if entry.offset + entry.nbytes > size:
            if entry.nbytes > size - self.start:
                raise NumfmtError(
                    f"{where} is {entry.describe()}, {entry.nbytes} bytes: more than the "
                    f"file's whole data section ({max(size - self.start, 0)} bytes); "
                    "the header is damaged"
                )
            raise NumfmtError(
                f"{where} runs past the end of the file ({entry.nbytes} bytes from byte "
                f"{entry.offset}; the file has {size}): the GGUF file is truncated, or its "
                "header damaged"
            )
        return entry

    def _check_spans(self) -> None:
        """Each tensor's data fill its span of the file (to the next tensor by offset, or to
        the end), with no more than the alignment's padding after them; none overlap."""
        names: set[str] = set()
        for t in self.tensors:
            if t.name in names:
                raise NumfmtError(f"{self.file}: the tensor '{t.name}' appears twice in its table")
            names.add(t.name)
        ordered = sorted(self.tensors, key=lambda t: t.offset)
        if ordered and ordered[0].offset != self.start:
            raise NumfmtError(
                f"{self.file}: the GGUF data section starts with {ordered[0].offset - self.start} "
                "bytes that no tensor uses: the header is damaged"
            )
        for t, after in zip(ordered, [*ordered[1:], None], strict=True):
            end = len(self.buf) if after is None else after.offset
            span = end - t.offset
            padded = -(-t.nbytes // self.alignment) * self.alignment
            if after is not None and span < t.nbytes:
                raise NumfmtError(
                    f"{self.file}: the tensors '{t.name}' and '{after.name}' overlap: "
                    f"'{t.name}' ({t.describe()}) takes {t.nbytes} bytes from byte {t.offset}, "
                    f"'{after.name}' starts at byte {after.offset}: the header is damaged"
                )
            if not t.nbytes <= span <= padded:
                if after is None:
                    upto, why = "the end of the file", ", or bytes follow the last tensor's data"
                else:
                    upto, why = f"the next tensor, '{after.name}'", ""
                raise NumfmtError(
                    f"{self.file}: the tensor '{t.name}' is {t.describe()}, which takes "
                    f"{t.nbytes} bytes, but the file has {span} bytes from its start to {upto}: "
                    f"its type or shape in the header does not match its data{why}"
                )

    def _truncated(self) -> NumfmtError:
        return NumfmtError(
            f"{self.file}: the GGUF file is truncated (its header runs past its end)"
        )

    def _take(self, n: int) -> bytes:
        if self.at + n > len(self.buf):
            raise self._truncated()
        out = self.buf[self.at : self.at + n]
        self.at += n
        return out

    def _unpack(self, fmt: str) -> tuple:
        size = self.struct.calcsize(fmt)
        return self.struct.unpack(fmt, self._take(size))

    def _string(self, decode: bool = True):
        (n,) = self._unpack("<Q")
        raw = self._take(n)
        return raw.decode("utf-8", "replace") if decode else None

    def _value(self, kind: int, depth: int = 0) -> Any:
        if kind in _SCALARS:
            return self._unpack(_SCALARS[kind])[0]
        if kind == 8:
            return self._string()
        if kind == 9 and depth >= _MAX_NESTING:
            raise NumfmtError(f"{self.file}: GGUF arrays nested {depth} deep: the file is damaged")
        if kind == 9:
            item, count = self._unpack("<IQ")
            least = 8 if item in (8, 9) else self.struct.calcsize(_SCALARS.get(item, "<B"))
            if count * least > len(self.buf) - self.at:  # each item takes at least that
                raise self._truncated()
            if item == 8:  # strings: step over them
                for _ in range(count):
                    self._string(decode=False)
                return count
            if item in _SCALARS:
                return list(self._unpack(f"<{count}{_SCALARS[item][1]}"))
            return [self._value(item, depth + 1) for _ in range(count)]
        raise NumfmtError(f"{self.file}: unknown GGUF metadata type {kind}: the file is damaged")

    def _wrong(self, key: str, what: str) -> NumfmtError:
        kind = self.types[key]
        name = _TYPE_NAMES.get(kind, str(kind))
        if kind == 9:
            name = f"array of {_TYPE_NAMES.get(self.items.get(key, -1), 'unknown')}"
        value = self.fields[key]
        shown = "" if kind == 9 else f" ({str(value)[:40]!r})" if kind == 8 else f" ({value})"
        article = "an" if name[0] in "aeiou" else "a"
        return NumfmtError(
            f"{self.file}: the GGUF entry '{key}' is {article} {name}{shown}; it should be {what}"
        )

    def _missing(self, key: str) -> NumfmtError:
        return NumfmtError(f"{self.file}: the GGUF file has no '{key}' entry")

    def integer(
        self, key: str, default: int | None = None, low: int | None = None, high: int | None = None
    ) -> int:
        """An integer entry (any of GGUF's integer types), within [low, high]."""
        if key not in self.fields:
            if default is None:
                raise self._missing(key)
            return default
        if self.types[key] not in _INTEGERS:
            raise self._wrong(key, "an integer")
        value = int(self.fields[key])
        if (low is not None and value < low) or (high is not None and value > high):
            bounds = f"at least {low}" if high is None else f"from {low} to {high}"
            raise NumfmtError(
                f"{self.file}: the GGUF entry '{key}' is {value}; it should be {bounds}"
            )
        return value

    def number(self, key: str, default: float) -> float:
        """A float entry (GGUF's float or integer types), finite and positive."""
        if key not in self.fields:
            return default
        if self.types[key] not in _FLOATS | _INTEGERS:
            raise self._wrong(key, "a number")
        value = float(self.fields[key])
        if not (math.isfinite(value) and value > 0):
            raise NumfmtError(
                f"{self.file}: the GGUF entry '{key}' is {value}; it should be a positive number"
            )
        return value

    def text(self, key: str, default: str | None = None) -> str:
        """A string entry."""
        if key not in self.fields:
            if default is None:
                raise self._missing(key)
            return default
        if self.types[key] != 8:
            raise self._wrong(key, "a string")
        return str(self.fields[key])

    def data(self, t: _Entry) -> np.ndarray:
        """A tensor's bytes as stored (checked against the file when the header was read)."""
        dtype = np.dtype(FLOATS.get(t.kind, np.uint8))
        n = t.nbytes // dtype.itemsize
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=t.offset)


def _expected_shape(name: str, meta: dict[str, Any]) -> tuple[int, ...] | None:
    """The shape (torch's order) the metadata gives a tensor, or None for one a Llama of that
    many blocks does not have."""
    hidden, ffn = meta["hidden"], meta["ffn"]
    kv = hidden // meta["heads"] * meta["kv_heads"]
    whole = {
        "token_embd.weight": (meta["vocab"], hidden),
        "output.weight": (meta["vocab"], hidden),
        "output_norm.weight": (hidden,),
    }
    if name in whole:
        return whole[name]
    m = re.fullmatch(r"blk\.(0|[1-9]\d*)\.(\w+)\.weight", name)
    if m is None or int(m.group(1)) >= meta["layers"]:
        return None
    block = {
        "attn_q": (hidden, hidden),
        "attn_k": (kv, hidden),
        "attn_v": (kv, hidden),
        "attn_output": (hidden, hidden),
        "ffn_gate": (ffn, hidden),
        "ffn_up": (ffn, hidden),
        "ffn_down": (hidden, ffn),
        "attn_norm": (hidden,),
        "ffn_norm": (hidden,),
    }
    return block.get(m.group(2))


def read_tensors(path: str | Path) -> tuple[dict[str, Any], list[GGUFTensor]]:
    """The metadata (a dict of the entries numfmt uses) and the tensors of a Llama GGUF file.

    Every check is made on the header, before any tensor's data is read: the entries' types and
    ranges, the heads against the embedding, and each tensor's name and shape against the
    shape the metadata gives it. A file that fails one is refused with one NumfmtError."""
    header = _Header(Path(path))
    file = header.file
    arch = header.text("general.architecture")
    if arch != "llama":
        raise NumfmtError(f"{file}: numfmt reads Llama GGUF files; this one is '{arch}'")
    meta: dict[str, Any] = {
        "name": header.text("general.name", ""),
        "layers": header.integer("llama.block_count", low=1),
        "hidden": header.integer("llama.embedding_length", low=1),
        "ffn": header.integer("llama.feed_forward_length", low=1),
        "heads": header.integer("llama.attention.head_count", low=1),
    }
    meta["kv_heads"] = header.integer("llama.attention.head_count_kv", meta["heads"], low=1)
    meta["context"] = header.integer("llama.context_length", 2048, low=1, high=MAX_CONTEXT)
    meta["eps"] = header.number("llama.attention.layer_norm_rms_epsilon", 1e-5)
    meta["rope_theta"] = header.number("llama.rope.freq_base", 10000.0)
    meta["bos"] = header.integer("tokenizer.ggml.bos_token_id", 1, low=0)
    meta["eos"] = header.integer("tokenizer.ggml.eos_token_id", 2, low=0)
    if meta["eps"] >= 1:
        raise NumfmtError(
            f"{file}: the GGUF entry 'llama.attention.layer_norm_rms_epsilon' is "
            f"{meta['eps']}; an RMS norm's epsilon is a small positive number, below 1"
        )
    hidden, heads, kv_heads = meta["hidden"], meta["heads"], meta["kv_heads"]
    if hidden % heads or (hidden // heads) % 2:
        raise NumfmtError(
            f"{file}: llama.attention.head_count is {heads}, which does not split "
            f"llama.embedding_length ({hidden}) into heads of an even length"
        )
    if heads % kv_heads:
        raise NumfmtError(
            f"{file}: llama.attention.head_count_kv is {kv_heads}, which does not divide "
            f"llama.attention.head_count ({heads})"
        )
    rope = header.integer("llama.rope.dimension_count", hidden // heads)
    if rope != hidden // heads:
        raise NumfmtError(
            f"{file}: llama.rope.dimension_count is {rope}, but a head is {hidden // heads} "
            "long; numfmt's Llama rotates whole heads"
        )
    entries = {t.name: t for t in header.tensors}
    embedding = entries.get("token_embd.weight")
    if embedding is None:
        raise NumfmtError(f"{file}: the GGUF file holds no token embedding (token_embd.weight)")
    meta["vocab"] = embedding.shape[0]
    meta["tied"] = "output.weight" not in entries
    for t in header.tensors:
        try:
            hf_name(t.name)
        except NumfmtError as exc:
            raise NumfmtError(f"{file}: {exc}") from None
        want = _expected_shape(t.name, meta)
        if want is None:
            block = re.match(r"blk\.(\d+)\.", t.name)
            if block and int(block.group(1)) >= meta["layers"]:
                raise NumfmtError(
                    f"{file}: the tensor '{t.name}' is in block {int(block.group(1))}, but "
                    f"llama.block_count is {meta['layers']} (blocks 0 to {meta['layers'] - 1})"
                )
            raise NumfmtError(f"{file}: numfmt's Llama has no tensor '{t.name}'")
        if t.shape != want:
            raise NumfmtError(
                f"{file}: the tensor '{t.name}' has shape {_shape(t.shape)}, but the file's "
                f"metadata make it {_shape(want)}"
            )
    for i in range(meta["layers"]):  # stops at the first missing block, whatever the count
        for key in BLOCK_NAMES:
            if f"blk.{i}.{key}.weight" not in entries:
                raise NumfmtError(
                    f"{file}: the GGUF file has no tensor 'blk.{i}.{key}.weight', though "
                    f"llama.block_count is {meta['layers']}"
                )
    if "output_norm.weight" not in entries:
        raise NumfmtError(f"{file}: the GGUF file has no tensor 'output_norm.weight'")
    tensors = []
    for t in header.tensors:
        data = header.data(t)
        if t.kind not in FLOATS:
            data = data.reshape(*t.shape[:-1], -1)
        tensors.append(GGUFTensor(hf_name(t.name), t.name, t.kind, t.shape, data))
    return meta, tensors


def unpermute_rows(w: np.ndarray, heads: int) -> np.ndarray:
    """The rows of a query or key projection in transformers' order (llama.cpp's converter
    interleaves the two rotary halves of each head)."""
    half = w.shape[0] // heads // 2
    return w.reshape(heads, half, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def decode(t: GGUFTensor) -> np.ndarray:
    """A tensor's values as float32, in the file's row order."""
    if t.kind in FLOATS:
        return np.asarray(t.data, dtype=FLOATS[t.kind]).astype(np.float32).reshape(t.shape)
    qt = gguf_bytes.from_bytes(t.data, t.kind, t.shape)
    return np.asarray(qt.dequantize(np.float32))


def config(meta: dict[str, Any]):
    """The transformers LlamaConfig of a GGUF file's metadata."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=meta["vocab"],
        hidden_size=meta["hidden"],
        intermediate_size=meta["ffn"],
        num_hidden_layers=meta["layers"],
        num_attention_heads=meta["heads"],
        num_key_value_heads=meta["kv_heads"],
        max_position_embeddings=meta["context"],
        rms_norm_eps=meta["eps"],
        rope_parameters={"rope_type": "default", "rope_theta": meta["rope_theta"]},
        tie_word_embeddings=meta["tied"],
        bos_token_id=meta["bos"],
        eos_token_id=meta["eos"],
    )


def state_dict(meta: dict[str, Any], tensors: list[GGUFTensor]) -> dict[str, Any]:
    """transformers' state dict (float32 torch tensors) of the file's tensors."""
    import torch

    state = {}
    for t in tensors:
        w = decode(t)
        if ".attn_q." in t.gguf_name:
            w = unpermute_rows(w, meta["heads"])
        elif ".attn_k." in t.gguf_name:
            w = unpermute_rows(w, meta["kv_heads"])
        state[t.name] = torch.from_numpy(np.ascontiguousarray(w))
    return state


def load(path: str | Path):
    """The model of a Llama GGUF file, in float32, on the CPU, in eval mode."""
    import torch
    from transformers import LlamaForCausalLM

    meta, tensors = read_tensors(path)
    state = state_dict(meta, tensors)
    with torch.device("meta"):
        model = LlamaForCausalLM(config(meta))
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [m for m in missing if not (meta["tied"] and m == "lm_head.weight")]
    if missing or unexpected:
        raise NumfmtError(
            f"{Path(path).name}: the GGUF file does not hold a whole Llama: missing {missing[:3]}, "
            f"unknown {unexpected[:3]}"
        )
    if meta["tied"]:
        model.lm_head.weight = model.model.embed_tokens.weight
    # buffers made at construction (the rotary frequencies) are rebuilt on the CPU
    rotary = type(model.model.rotary_emb)
    model.model.rotary_emb = rotary(config=model.config)
    return model.eval()
