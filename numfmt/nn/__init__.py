"""The model layer: quantize a model's weights by a recipe, measure the damage, load models.

``quantize_model(model, recipe)`` -> (quantized copy, ModelReport); ``load_model(MODEL)``
reads a Hugging Face folder, a Llama ``.gguf`` or an installed name (``smollm2-135m``,
``minilm-l6``). Beyond round-to-nearest: ``gptq_weight`` / ``GPTQ``, ``weighted_qparams``
(importance matrix), ``output_qparams``, ``ModelKL`` (ranges by the model's own KL);
``sensitivity`` and ``allocate`` for mixed precision; ``write_gguf``; ``quantize_checkpoint``
for checkpoints larger than memory, and ``load_quantized(..., device_map="auto")`` to run
them through accelerate's big-model loading.
Everything here needs torch; the names load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "quantize_model": "quantize",
    "Recipe": "recipe",
    "parse_recipe": "recipe",
    "ModelReport": "report",
    "LayerRow": "report",
    "QuantLinear": "modules",
    "QuantEmbedding": "modules",
    "resolve": "sources",
    "ModelSource": "sources",
    "load_model": "loading",
    "LoadedModel": "loading",
    "compare_recipes": "compare",
    "ModelComparison": "compare",
    "score_models": "evaluate",
    "perplexity": "evaluate",
    "generate": "evaluate",
    "tokenize": "evaluate",
    "embed": "evaluate",
    "compare_embeddings": "evaluate",
    "integer_mlp": "integer",
    "IntegerMLP": "integer",
    "IntegerLinear": "integer",
    "fixed_point": "integer",
    "layer_stats": "integer",
    "prepare_qat": "qat",
    "convert": "qat",
    "QATLinear": "qat",
    "lsq_quantize": "lsq",
    "lsq_init": "lsq",
    "estimate": "memory",
    "MemoryEstimate": "memory",
    "GPTQ": "gptq",
    "gptq_weight": "gptq",
    "weighted_qparams": "importance",
    "output_qparams": "importance",
    "clipped_qparams": "importance",
    "ModelKL": "model_kl",
    "load_quantized": "saving",
    "save_model": "saving",
    "score": "evaluate",
    "sensitivity": "sensitivity",
    "allocate": "sensitivity",
    "mixed_precision": "sensitivity",
    "write_gguf": "gguf_writer",
    "quantize_checkpoint": "streaming",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'numfmt.nn' has no attribute '{name}'")
    return getattr(importlib.import_module(f"numfmt.nn.{_EXPORTS[name]}"), name)
