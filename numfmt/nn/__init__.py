"""The model layer: quantize a model's weights by a recipe, measure the damage, load models.

``quantize_model(model, recipe)`` -> (quantized copy, ModelReport); ``load_model(MODEL)``
reads a Hugging Face folder, a Llama ``.gguf`` or an installed name (``smollm2-135m``,
``minilm-l6``). Beyond round-to-nearest: ``gptq_weight`` / ``GPTQ``, ``weighted_qparams``
(importance matrix), ``output_qparams``, ``ModelKL`` (ranges by the model's own KL);
``sensitivity`` and ``allocate`` for mixed precision; ``write_gguf``; ``quantize_checkpoint``
for checkpoints larger than memory, and ``load_quantized(..., device_map="auto")`` to run
them through accelerate's big-model loading. ``LowPrecisionOptimizer`` and ``LossScaler``
train with weights, gradients and optimizer state stored in a format (bf16, fp16, FP8).
``simulate_matmuls(model, "hopper-fp8")`` runs every linear layer's product through a
simulated accumulator (``numfmt.arith.hardware``'s models).

This package is the model floor's core (the quantized layers, recipes, and the one quantize
path, ``numfmt.nn.path``, with its code choosers in ``numfmt.nn.algorithms``) and the floor's
facade: the names above that live in ``numfmt.models`` (sources and sinks) and
``numfmt.eval`` (measurement) load from here too. Everything here needs torch; the names load
on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "quantize_model": "numfmt.nn.quantize",
    "Recipe": "numfmt.nn.recipe",
    "parse_recipe": "numfmt.nn.recipe",
    "ModelReport": "numfmt.nn.report",
    "LayerRow": "numfmt.nn.report",
    "QuantLinear": "numfmt.nn.modules",
    "QuantEmbedding": "numfmt.nn.modules",
    "resolve": "numfmt.models.sources",
    "ModelSource": "numfmt.models.sources",
    "load_model": "numfmt.models.loading",
    "LoadedModel": "numfmt.models.loading",
    "compare_recipes": "numfmt.eval.compare",
    "ModelComparison": "numfmt.eval.compare",
    "score_models": "numfmt.eval.scoring",
    "perplexity": "numfmt.eval.scoring",
    "generate": "numfmt.eval.generation",
    "tokenize": "numfmt.eval.scoring",
    "embed": "numfmt.eval.embeddings",
    "compare_embeddings": "numfmt.eval.embeddings",
    "prepare_qat": "numfmt.nn.qat",
    "convert": "numfmt.nn.qat",
    "QATLinear": "numfmt.nn.qat",
    "lsq_quantize": "numfmt.nn.lsq",
    "lsq_init": "numfmt.nn.lsq",
    "estimate": "numfmt.eval.memory",
    "MemoryEstimate": "numfmt.eval.memory",
    "GPTQ": "numfmt.nn.algorithms.gptq",
    "gptq_weight": "numfmt.nn.algorithms.gptq",
    "weighted_qparams": "numfmt.nn.algorithms.importance",
    "output_qparams": "numfmt.nn.algorithms.importance",
    "clipped_qparams": "numfmt.nn.algorithms.importance",
    "ModelKL": "numfmt.nn.algorithms.model_kl",
    "load_quantized": "numfmt.models.saving",
    "save_model": "numfmt.models.saving",
    "score": "numfmt.eval.scoring",
    "sensitivity": "numfmt.eval.sensitivity",
    "allocate": "numfmt.eval.sensitivity",
    "mixed_precision": "numfmt.eval.sensitivity",
    "write_gguf": "numfmt.models.gguf_write",
    "quantize_checkpoint": "numfmt.models.checkpoint",
    "quantize_weights": "numfmt.nn.path",
    "calibration_windows": "numfmt.nn.algorithms.calibration",
    "LowPrecisionOptimizer": "numfmt.nn.training",
    "LossScaler": "numfmt.nn.training",
    "TrainingStats": "numfmt.nn.training",
    "simulate_matmuls": "numfmt.nn.matmuls",
    "SimulatedLinear": "numfmt.nn.matmuls",
}

__all__ = sorted(_EXPORTS)


#: Names that moved out of the model floor, and where they live now.
_MOVED = dict.fromkeys(
    ("integer_mlp", "IntegerMLP", "IntegerLinear", "fixed_point", "layer_stats"),
    "numfmt.lessons.integer_mlp",
)


def __getattr__(name: str) -> Any:
    if name in _MOVED:
        raise AttributeError(
            f"numfmt.nn.{name} is lesson material and moved beside its lesson: "
            f"from {_MOVED[name]} import {name}"
        )
    if name not in _EXPORTS:
        raise AttributeError(f"module 'numfmt.nn' has no attribute '{name}'")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
