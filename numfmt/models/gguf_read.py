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


class _Header:
    """GGUF's header read with ``struct`` from a memory map: the metadata entries (arrays of
    strings, the tokenizer's vocabulary, are stepped over, not decoded) and the tensor table.
    ``gguf.GGUFReader`` decodes every string of the vocabulary in Python, which takes
    longer than decoding every weight."""

    def __init__(self, path: Path) -> None:
        import mmap
        import struct

        self.struct = struct
        with path.open("rb") as f:
            self.buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.at = 0
        if self._take(4) != b"GGUF":
            raise NumfmtError(f"{path.name} is not a GGUF file (it does not start with 'GGUF')")
        version, tensor_count, kv_count = self._unpack("<IQQ")
        if version not in (2, 3):
            raise NumfmtError(f"{path.name}: GGUF version {version}; numfmt reads versions 2 and 3")
        self.fields: dict[str, Any] = {}
        for _ in range(kv_count):
            key = self._string()
            self.fields[key] = self._value(self._unpack("<I")[0])
        infos = []
        for _ in range(tensor_count):
            name = self._string()
            (dims,) = self._unpack("<I")
            shape = self._unpack(f"<{dims}Q")
            kind, offset = self._unpack("<IQ")
            infos.append((name, shape, kind, offset))
        align = int(self.fields.get("general.alignment", 32))
        start = -(-self.at // align) * align
        self.tensors = [(n, s, k, start + o) for n, s, k, o in infos]

    def _take(self, n: int) -> bytes:
        if self.at + n > len(self.buf):
            raise NumfmtError("the GGUF file is truncated (its header runs past its end)")
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

    def _value(self, kind: int) -> Any:
        if kind in _SCALARS:
            return self._unpack(_SCALARS[kind])[0]
        if kind == 8:
            return self._string()
        if kind == 9:
            item, count = self._unpack("<IQ")
            if item == 8:  # strings: step over them
                for _ in range(count):
                    self._string(decode=False)
                return count
            if item in _SCALARS:
                fmt = _SCALARS[item]
                return list(self._unpack(f"<{count}{fmt[1]}"))
            return [self._value(item) for _ in range(count)]
        raise NumfmtError(f"unknown GGUF metadata type {kind}: the file is damaged")

    def data(self, shape: tuple[int, ...], kind: str, offset: int) -> np.ndarray:
        count = int(np.prod(shape))
        dtype: type[np.number[Any]]
        if kind in FLOATS:
            dtype, n = FLOATS[kind], count
        else:
            dtype, n = np.uint8, count // 32 * _BLOCK_BYTES[kind]
        nbytes = n * np.dtype(dtype).itemsize
        if offset + nbytes > len(self.buf):
            raise NumfmtError("the GGUF file is truncated (a tensor runs past its end)")
        return np.frombuffer(self.buf, dtype=dtype, count=n, offset=offset)


def _field(fields: dict[str, Any], key: str, default: Any = None) -> Any:
    if key not in fields:
        if default is None:
            raise NumfmtError(f"the GGUF file has no '{key}' entry")
        return default
    return fields[key]


def read_tensors(path: str | Path) -> tuple[dict[str, Any], list[GGUFTensor]]:
    """The metadata (a dict of the entries numfmt uses) and the tensors of a Llama GGUF file."""
    header = _Header(Path(path))
    f = header.fields
    arch = _field(f, "general.architecture")
    if arch != "llama":
        raise NumfmtError(f"numfmt reads Llama GGUF files; this one is '{arch}'")
    heads = int(_field(f, "llama.attention.head_count"))
    meta = {
        "name": _field(f, "general.name", ""),
        "layers": int(_field(f, "llama.block_count")),
        "hidden": int(_field(f, "llama.embedding_length")),
        "ffn": int(_field(f, "llama.feed_forward_length")),
        "heads": heads,
        "kv_heads": int(_field(f, "llama.attention.head_count_kv", heads)),
        "context": int(_field(f, "llama.context_length", 2048)),
        "eps": float(_field(f, "llama.attention.layer_norm_rms_epsilon", 1e-5)),
        "rope_theta": float(_field(f, "llama.rope.freq_base", 10000.0)),
        "bos": int(_field(f, "tokenizer.ggml.bos_token_id", 1)),
        "eos": int(_field(f, "tokenizer.ggml.eos_token_id", 2)),
    }
    tensors = []
    for name, ne, type_id, offset in header.tensors:
        kind = GGML_TYPES.get(type_id)
        if kind is None:
            raise NumfmtError(
                f"{name} is stored as GGML type {type_id}; numfmt decodes "
                f"{', '.join(k.upper() for k in GGML_TYPES.values())}"
            )
        shape = tuple(int(n) for n in reversed(ne))
        data = header.data(shape, kind, offset)
        if kind not in FLOATS:
            data = data.reshape(*shape[:-1], -1)
        tensors.append(GGUFTensor(hf_name(name), name, kind, shape, data))
    embedding = [t for t in tensors if t.gguf_name == "token_embd.weight"]
    if not embedding:
        raise NumfmtError("the GGUF file holds no token embedding (token_embd.weight)")
    meta["vocab"] = embedding[0].shape[0]
    meta["tied"] = not any(t.gguf_name == "output.weight" for t in tensors)
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
            f"the GGUF file does not hold a whole Llama: missing {missing[:3]}, "
            f"unknown {unexpected[:3]}"
        )
    if meta["tied"]:
        model.lm_head.weight = model.model.embed_tokens.weight
    # buffers made at construction (the rotary frequencies) are rebuilt on the CPU
    rotary = type(model.model.rotary_emb)
    model.model.rotary_emb = rotary(config=model.config)
    return model.eval()
