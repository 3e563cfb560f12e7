"""``compare_recipes``: one model under several recipes, scored side by side on one text."""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from torch import nn

from numfmt._display import Displayable
from numfmt.arith.matmul import plan
from numfmt.errors import NumfmtError
from numfmt.eval.embeddings import compare_embeddings, embed
from numfmt.eval.generation import generate, own_text_perplexity
from numfmt.eval.scoring import Reference, Score, score
from numfmt.models.gguf_read import read_tensors
from numfmt.nn.layers import layer_weights, model_bytes
from numfmt.nn.matmuls import simulate_matmuls
from numfmt.nn.modules import decoded_weights
from numfmt.nn.progress import Progress, tracker
from numfmt.nn.quantize import quantize_model
from numfmt.nn.recipe import parse_recipe
from numfmt.nn.report import ModelReport, rows_csv

REFERENCE = "fp32"


@dataclass(frozen=True)
class RecipeRow:
    """One recipe on the text: storage (bits per quantized weight, bytes of the whole model),
    perplexity, KL from the reference and top-1 agreement with it, and times."""

    recipe: str
    bits_per_weight: float | None
    bytes: int
    perplexity: float
    kl: float | None
    top1: float | None
    quantize_seconds: float
    tokens_per_second: float
    own_text_perplexity: float | None = None
    matmul: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class ModelComparison(Displayable):
    """Recipes compared on one model and one text: a row a recipe (the float model first, the
    reference of KL and top-1), and each recipe's greedy continuation of the prompt."""

    model: str
    tokens: int
    context: int
    rows: tuple[RecipeRow, ...]
    prompt: str | None = None
    generations: tuple[tuple[str, str], ...] = ()
    reports: dict[str, ModelReport] = field(default_factory=dict, repr=False)
    layer: str | None = None
    layer_weights: dict[str, Any] = field(default_factory=dict, repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "tokens": self.tokens,
            "context": self.context,
            "recipes": [r.to_dict() for r in self.rows],
            "prompt": self.prompt,
            "generations": [{"recipe": r, "text": t} for r, t in self.generations],
        }

    def to_csv(self) -> str:
        """One line a recipe, with a header (the fields of RecipeRow)."""
        return rows_csv(self.rows)


def compare_recipes(
    model: Any,
    recipes: list[Any],
    ids: Any,
    *,
    tokenizer: Any = None,
    prompt: str | None = None,
    max_new_tokens: int = 30,
    context: int = 512,
    stride: int | None = None,
    name: str = "model",
    layer: str | None = None,
    own_text: bool = False,
    progress: Progress = None,
    description: str = "compare",
    matmuls: list[str] | None = None,
) -> ModelComparison:
    """Quantize ``model`` by each recipe and score all on the token ids ``ids`` (the float
    model is the reference; ``fp32`` in ``recipes`` names its row). With a tokenizer and a
    prompt, each model's greedy continuation of it too, and with ``own_text`` the perplexity
    of each on a text it sampled itself from the prompt (the way not to compare models: see
    ``own_text_perplexity``); with ``layer``, that layer's weights in each model
    (``layer_weights``, for ``numfmt.plot.models.weight_histogram``).

    One model at a time: the float model's log-probabilities on the text are computed once
    (:class:`~numfmt.eval.scoring.Reference`), then each recipe's model is built (sharing the
    float model's unquantized tensors: the embedding, the norms), its weights decoded once
    for all its measurements, measured, and dropped. ``progress`` tells a line per recipe
    off a terminal (``description: [k/n] recipe quantized, scored (seconds)``).

    With ``matmuls`` (names of ``numfmt.arith.hardware``'s models), each recipe's model is
    also scored with its linear layers multiplying through each of them
    (``numfmt.nn.simulate_matmuls``, operands scaled as its ``auto`` says): rows
    ``recipe @ matmul``, the cost of the accumulator beside the cost of the weights.
    """
    parsed = []
    for r in recipes:
        if str(r) == REFERENCE:
            continue
        parsed.append(parse_recipe(r))
    labels = [str(r) for r in parsed]
    if len(set(labels)) != len(labels):
        raise NumfmtError(f"a recipe is listed twice: {', '.join(labels)}")
    if own_text and not (prompt and tokenizer is not None):
        raise NumfmtError("the own-text perplexity needs a prompt and a tokenizer")
    talk = prompt and tokenizer is not None
    plans = _matmul_plans(matmuls)
    reference = Reference(model, ids, context=context, stride=stride)
    scores: list[Score] = []
    reports: dict[str, ModelReport] = {}
    seconds: dict[str, float] = {REFERENCE: 0.0}
    own: dict[str, float] = {}
    generations: list[tuple[str, str]] = []
    weights: dict[str, Any] = {}
    done = ["scored"] + ["generated"] * bool(talk) + ["own text scored"] * own_text
    simulated: list[tuple[str, str, Score]] = []  # (recipe, matmul, score)
    with tracker((1 + len(parsed)) * (1 + len(plans)), description, progress, every=0) as step:
        for recipe in [None, *parsed]:
            label = REFERENCE if recipe is None else str(recipe)
            if recipe is None:
                q = model
                scores.append(reference.score(REFERENCE))
            else:
                start = time.perf_counter()
                q, reports[label] = quantize_model(
                    _sharing(model), recipe, inplace=True, progress=progress
                )
                seconds[label] = time.perf_counter() - start
            with decoded_weights(q):
                if recipe is not None:
                    scores.append(
                        score(
                            q, ids, context=context, stride=stride, reference=reference, name=label
                        )
                    )
                if talk:
                    assert prompt is not None  # talk needs a prompt
                    generations.append((label, generate(q, tokenizer, prompt, max_new_tokens)))
                if own_text:
                    assert prompt is not None  # checked above: own_text needs a prompt
                    own[label] = own_text_perplexity(q, tokenizer, prompt, max_new_tokens)
                if layer:
                    weights.update(layer_weights({label: q}, layer))
            step(f"{label} " + ", ".join((["quantized"] if recipe else []) + done))
            for mm_name, mm_plan in plans:  # a step each: minutes apiece on a CPU
                sim = simulate_matmuls(q, mm_plan)
                simulated.append(
                    (
                        label,
                        mm_name,
                        score(
                            sim,
                            ids,
                            context=context,
                            stride=stride,
                            reference=reference,
                            name=f"{label} @ {mm_name}",
                        ),
                    )
                )
                del sim
                step(f"{label} @ {mm_name} scored")
            del q  # one quantized model in memory at a time
    rows = []
    owner = {sim.name: (r, m) for r, m, sim in simulated}
    for s in _interleaved(scores, simulated):
        recipe_label, matmul_name = owner.get(s.name, (s.name, None))
        report = reports.get(recipe_label)
        rows.append(
            RecipeRow(
                recipe=s.name,
                bits_per_weight=report.bits_per_weight if report else None,
                bytes=report.bytes_after if report else model_bytes(model)[0],
                perplexity=s.perplexity,
                kl=s.kl,
                top1=s.top1,
                quantize_seconds=seconds[recipe_label],
                tokens_per_second=s.tokens_per_second
                if math.isfinite(s.tokens_per_second)
                else 0.0,
                own_text_perplexity=own.get(s.name),
                matmul=matmul_name,
            )
        )
    return ModelComparison(
        name,
        int(scores[0].tokens),
        context,
        tuple(rows),
        prompt,
        tuple(generations),
        reports,
        layer,
        weights,
    )


def _matmul_plans(matmuls: list[str] | None) -> list[tuple[str, Any]]:
    """(name, Plan) of each matmul model, checked before any work."""
    names = [str(m).strip() for m in matmuls or [] if str(m).strip()]
    if len(set(names)) != len(names):
        raise NumfmtError(f"a matmul model is listed twice: {', '.join(names)}")
    return [(n, plan(model=n)) for n in names]


def _interleaved(scores: list[Score], simulated: list[tuple[str, str, Score]]) -> list[Score]:
    """Each recipe's row, then its rows under each matmul model."""
    out = []
    for s in scores:
        out.append(s)
        out.extend(sim for r, _, sim in simulated if r == s.name)
    return out


def _sharing(model: nn.Module) -> nn.Module:
    """A copy of ``model``'s modules that shares its parameters and buffers: quantizing it in
    place replaces the copy's layers and leaves the original whole, without copying the
    tensors a recipe does not replace (SmolLM2's 113 MB embedding, the norms)."""
    memo = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    return copy.deepcopy(model, memo)


#: GGUF's weight types, in words (float_model).
_GGUF_TYPES = {
    "q4_0": "llama.cpp's 4-bit format",
    "q4_1": "llama.cpp's 4-bit format",
    "q5_0": "llama.cpp's 5-bit format",
    "q5_1": "llama.cpp's 5-bit format",
    "q8_0": "llama.cpp's 8-bit format",
    "f16": "float16",
}


def float_model(source: Any) -> str:
    """What the float model of a loaded source is: its name, and for a GGUF file the formats
    its weights were stored in before they were decoded into float32 (the "fp32" row is
    those values, not the original training's)."""
    if source.kind != "gguf":
        return source.name
    from collections import Counter

    _, tensors = read_tensors(source.path)
    stored = {t.gguf_name: t.kind for t in tensors if len(t.shape) == 2}
    embedding = stored.pop("token_embd.weight", None)
    assert embedding is not None  # read_tensors refuses a file without it
    coded = Counter(k for k in [*stored.values(), embedding] if k not in ("f32", "f16", None))
    if not coded:
        return source.name  # stored in float: nothing was decoded
    common = Counter(k for k in stored.values() if k in coded).most_common(1)
    main = common[0][0] if common else embedding
    what = f"{main.upper()}, {_GGUF_TYPES.get(main, main)}"
    if embedding != main:
        what += f"; the embedding {embedding.upper()}"
    return f"{source.name}, float32 decoded from its GGUF file ({what})"


@dataclass(frozen=True)
class EncoderRow:
    """One recipe on a sentence encoder: storage, and how far its embeddings moved."""

    recipe: str
    bits_per_weight: float | None
    bytes: int
    mean_cosine: float
    worst_cosine: float
    same_neighbour: float
    quantize_seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class EncoderComparison(Displayable):
    """Recipes compared on a sentence encoder: cosine of each sentence's embedding with the
    float model's (mean and worst), and the share whose nearest neighbour stays the same."""

    model: str
    sentences: int
    rows: tuple[EncoderRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "sentences": self.sentences,
            "recipes": [r.to_dict() for r in self.rows],
        }

    def to_csv(self) -> str:
        return rows_csv(self.rows)


def compare_encoder_recipes(
    model: Any,
    tokenizer: Any,
    recipes: list[Any],
    sentences: list[str],
    *,
    name: str = "model",
    progress: Progress = None,
) -> EncoderComparison:
    """Quantize a sentence encoder by each recipe and compare its embeddings of
    ``sentences`` with the float model's (``fp32`` in ``recipes`` names the float row)."""

    if len(sentences) < 2:
        raise NumfmtError("give at least two sentences (one a line) to compare embeddings")
    reference = embed(model, tokenizer, sentences)
    rows = [EncoderRow(REFERENCE, None, model_bytes(model)[0], 1.0, 1.0, 1.0, 0.0)]
    for r in recipes:
        if str(r) == REFERENCE:
            continue
        recipe = parse_recipe(r)
        start = time.perf_counter()
        q, report = quantize_model(model, recipe, progress=progress)
        seconds = time.perf_counter() - start
        s = compare_embeddings(reference, embed(q, tokenizer, sentences), str(recipe))
        rows.append(
            EncoderRow(
                str(recipe),
                report.bits_per_weight,
                report.bytes_after,
                s.mean_cosine,
                s.worst_cosine,
                s.same_neighbour,
                seconds,
            )
        )
    return EncoderComparison(name, len(sentences), tuple(rows))
