"""The model layer: quantize a model's weights by a recipe, measure the damage, load models.

``quantize_model(model, recipe)`` -> (quantized copy, ModelReport); ``load_model(MODEL)``
reads a Hugging Face folder, a Llama ``.gguf`` or an installed name (``smollm2-135m``,
``minilm-l6``). Everything here needs torch; the names load on first use.
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
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'numfmt.nn' has no attribute '{name}'")
    return getattr(importlib.import_module(f"numfmt.nn.{_EXPORTS[name]}"), name)
