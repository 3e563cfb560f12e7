"""``numfmt quantize``: a tensor from a file onto a grid, with the error report."""

from __future__ import annotations

import sys

import click
import numpy as np

from numfmt.cli.base import (
    UsageFailure,
    emit,
    fail_cleanly,
    given_options,
    json_option,
    note,
    show_warnings,
)
from numfmt.errors import NumfmtError
from numfmt.quant.packing import ALIASES, ORDERS
from numfmt.quant.schemes import MAX_INT_BITS, PRESETS, SPELLED_METHODS

METHOD_HELP = (
    "A range method: minmax, percentile[:P], mse[:RATIOS], entropy[:BINS], l2_histogram[:BINS]."
)


#: The options that build one scheme, as the command line spells them.
SCHEME_FLAGS = {
    "target": "-f/--format",
    "bits": "-b/--bits",
    "mapping": "-s/--scheme",
    "granularity": "-g/--granularity",
    "method": "-m/--method",
    "scale_format": "--scale-format",
    "full": "--full",
    "rounding": "-r/--rounding",
}


def _and(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def build_scheme(
    bits,
    mapping,
    granularity,
    method,
    target,
    scale_format,
    full,
    rounding,
    given: frozenset[str] | set[str] = frozenset(SCHEME_FLAGS),
):
    """One scheme from the command's options (a preset or float target replaces int{bits}).

    ``given`` names the options given on the command line (``SCHEME_FLAGS``' keys). With -f,
    an option the format fixes is refused unless it agrees with the format (never dropped);
    the method and rounding apply to every format (llama.cpp's presets refuse them)."""
    from numfmt.formats import get_format
    from numfmt.quant import scheme
    from numfmt.quant.granularity import parse_granularity
    from numfmt.quant.schemes import PRESET_ALIASES, Mapping, parse_method_argument

    method_name, _, arg = (method or "minmax").partition(":")
    if method_name not in SPELLED_METHODS:
        raise NumfmtError(
            f"unknown calibration method '{method_name}'; use {', '.join(SPELLED_METHODS)}"
        )
    options = parse_method_argument(method_name, arg) if arg else {}
    if target is None:
        if full and Mapping.parse(mapping) is not Mapping.SYMMETRIC:
            raise NumfmtError(
                f"--full widens symmetric codes to -2^(b-1); -s {mapping} codes already run "
                "from 0 to 2^b - 1: drop one of them"
            )
        return scheme(
            f"int{bits}",
            mapping=mapping,
            granularity=granularity,
            method=method_name,
            restricted=not full,
            rounding=rounding,
            scale_format=scale_format,
            **options,
        )
    base = scheme(target)  # the format alone: an unknown name is refused here
    if "bits" in given and bits != base.bits:
        raise NumfmtError(
            f"-b {bits} conflicts with -f {target}, whose codes are {base.bits}-bit: -b sets "
            "the width of the int target used without -f; drop one of them"
        )
    if full and base.kind != "int":
        raise NumfmtError(
            f"--full widens symmetric integer codes to -2^(b-1); -f {target} is not an "
            "integer grid: drop --full"
        )
    name = target.strip().lower()
    if PRESET_ALIASES.get(name, name) in PRESETS:
        asked = {  # what the option says, and what the format has
            "granularity": (
                lambda: str(parse_granularity(granularity)),
                str(base.granularity),
                "granularity",
            ),
            "mapping": (lambda: Mapping.parse(mapping).short, base.mapping.short, "mapping"),
            "scale_format": (
                lambda: get_format(scale_format).name,
                base.scale_format,
                "scale format",
            ),
        }
        if full and base.restricted:  # --full asks for -2^(b-1): the format stops short
            asked["full"] = (
                lambda: f"{base.qmin - 1}..{base.qmax}",
                f"{base.qmin}..{base.qmax}",
                "code range",
            )
        clashes, flags = [], []
        for key, (read, own, what) in asked.items():
            if key in given and (got := read()) != own:
                clashes.append(f"{what} ({own}, not {got})")
                flags.append(SCHEME_FLAGS[key])
        if clashes:
            raise NumfmtError(f"-f {target} fixes its own {_and(clashes)}: drop {_and(flags)}")
        return scheme(target, method=method_name, rounding=rounding, **options)
    return scheme(
        target,
        mapping=mapping if "mapping" in given else None,
        granularity=granularity if "granularity" in given else None,
        method=method_name,
        restricted=False if full else None,
        rounding=rounding,
        scale_format=scale_format if "scale_format" in given else None,
        **options,
    )


def check_tensor(name: str, x: np.ndarray) -> None:
    """Refuse tensors there is nothing to quantize in: empty, or not numbers."""
    if x.size == 0:
        raise NumfmtError(f"tensor '{name}' is empty: there is nothing to quantize")
    if x.dtype.kind not in "fiu" and x.dtype.itemsize > 2:
        raise NumfmtError(f"tensor '{name}' has dtype {x.dtype}, not numbers")


def check_finite(name: str, x: np.ndarray, nan_policy: str) -> None:
    """Refuse NaN and infinities unless --nan-policy omit leaves them out, and a tensor that
    --nan-policy omit would leave empty (said in the command's words, not the library's)."""
    if x.dtype.kind in "iub":
        return  # integers: every value finite
    finite = np.isfinite(x)  # ml_dtypes' floats (bf16, fp8 ...) answer too
    bad = int(finite.size - np.count_nonzero(finite))
    if not bad:
        return
    if nan_policy == "error":
        them = "them" if bad > 1 else "it"
        raise NumfmtError(
            f"tensor '{name}' holds {bad} NaN or infinite value{'s' if bad > 1 else ''} of "
            f"{finite.size}; drop {them}, or give --nan-policy omit to leave {them} out of the "
            "range (NaN then quantizes to zero and infinities clip)"
        )
    if bad == finite.size:
        raise NumfmtError(
            f"tensor '{name}' holds only NaN and infinities: with them left out there is "
            "nothing to quantize"
        )


def check_magnitude(name: str, x: np.ndarray) -> None:
    """Refuse values whose sum of squares overflows float64 (beyond about 1e154 in magnitude):
    the report's MSE, SQNR and cosine are sums of squares, and would be inf or NaN."""
    if x.dtype != np.float64:
        return  # float32 and narrower, and integers: their squares sum finitely
    flat = x.reshape(-1)
    finite = np.isfinite(flat)
    top = float(np.max(np.abs(flat), where=finite, initial=0.0))
    if top * top * flat.size <= sys.float_info.max:
        return
    with np.errstate(over="ignore", under="ignore"):
        scaled = flat / top
        share = float(np.sum(scaled * scaled, where=finite))  # the sum of squares / top^2
    if top * top * share <= sys.float_info.max:  # inf when it overflows
        return
    raise NumfmtError(
        f"tensor '{name}' holds values too large to measure (largest |x| {top:.3g}): the "
        "sums of squares the error report takes overflow float64, which happens beyond about "
        "1e154 in magnitude; scale the tensor down first"
    )


def values_tensor(text: str) -> np.ndarray:
    """The numbers of --values as a float64 tensor: each read exactly, then rounded once to
    float64, as a tensor file holds them."""
    from numfmt.formats.value import parse_values, scientific

    try:
        values = parse_values(text)
    except NumfmtError as exc:
        raise NumfmtError(f"--values: {exc}") from None
    x = np.array([float(v) for v in values], dtype=np.float64)
    for v, f in zip(values, x, strict=True):
        if v.is_finite and not np.isfinite(f):
            too_big = scientific(v.fraction, 3)
            raise NumfmtError(f"--values: {too_big} is beyond float64's range (about 1.8e+308)")
    return x


@click.command()
@click.argument("path", required=False, metavar="[TENSOR_FILE]", type=click.Path(dir_okay=False))
@click.option(
    "--values",
    "values",
    metavar="NUMBERS",
    help="Numbers to quantize instead of a file, separated by commas: '1.5,-0.5,3,1/3,2^-10' "
    "(each read exactly, as numfmt show reads one; the decimal mark is a dot).",
)
@click.option("--tensor", "-t", "name", help="The tensor to read, when the file holds several.")
@click.option(
    "--bits",
    "-b",
    default=8,
    show_default=True,
    type=click.IntRange(2, MAX_INT_BITS),
    help=f"Integer width of the codes (int targets, 2 to {MAX_INT_BITS}).",
)
@click.option(
    "--scheme",
    "-s",
    "mapping",
    default="sym",
    show_default=True,
    type=click.Choice(["sym", "asym", "min"]),
    help="Symmetric (absmax), asymmetric (integer zero point) or min (a float minimum, "
    "x = scale * q + min, as llama.cpp's Q4_1).",
)
@click.option(
    "--granularity",
    "-g",
    default="tensor",
    show_default=True,
    help="tensor, channel (axis 0), channel:AXIS, group:SIZE, group:SIZE:AXIS or token "
    "(one scale per vector along the last axis).",
)
@click.option(
    "--method",
    "-m",
    default="minmax",
    show_default=True,
    help=METHOD_HELP,
)
@click.option(
    "--format",
    "-f",
    "target",
    default=None,
    help="A float grid (fp8_e4m3, fp4 ...) or a block format (mxfp8, mxfp6, mxfp4, "
    "mxint8, nvfp4, nf4, q8_0, q4_0, q4_1, q5_0, q5_1) instead of int{bits}.",
)
@click.option(
    "--scale-format",
    default="float32",
    show_default=True,
    help="The format the scales are stored in: float32, float16, bfloat16, e8m0 ...",
)
@click.option("--full", is_flag=True, help="Symmetric codes from -2^(b-1) (default: -(2^(b-1)-1)).")
@click.option(
    "--rounding",
    "-r",
    default="nearest-even",
    show_default=True,
    type=click.Choice(["nearest-even", "stochastic"]),
)
@click.option(
    "--compare",
    "-c",
    "compare",
    multiple=True,
    help="Compare schemes instead, e.g. 'int8,int4/asym/group:128/mse,mxfp4,nf4' "
    "(repeat or separate with commas).",
)
@click.option(
    "--nan-policy",
    default="error",
    show_default=True,
    type=click.Choice(["error", "omit"]),
    help="Refuse NaN/inf, or leave them out of the range and the report.",
)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(dir_okay=False),
    help="Write the quantized tensor (packed codes, scales, zero points, the scheme) to this "
    ".safetensors file; numfmt.quant.load reads it back.",
)
@click.option(
    "--order",
    default="low_first",
    show_default=True,
    type=click.Choice([*ORDERS, *ALIASES]),
    help="Nibble order of packed 4-bit and 2-bit codes in --out: low_first (ONNX), "
    "high_first (torchao, bitsandbytes) or ggml (llama.cpp's blocks of 32).",
)
@json_option
@fail_cleanly
def quantize(
    path,
    values,
    name,
    bits,
    mapping,
    granularity,
    method,
    target,
    scale_format,
    full,
    rounding,
    compare,
    nan_policy,
    out,
    order,
    as_json,
) -> None:
    """Quantize a tensor, from a file or typed in, and report the error.

    TENSOR_FILE is a .npy, .npz or .safetensors file; --values gives the numbers instead
    (one of the two).

    \b
    Examples:
      numfmt quantize weights.npy --bits 4 --scheme asym --granularity group:128 --method mse
      numfmt quantize model.safetensors -t layers.0.mlp.down_proj.weight -f nf4
      numfmt quantize w.npy --compare int8,int8/channel,int4/group:128/scale:fp16,mxfp4,nvfp4
      numfmt quantize w.npy -b 4 -g group:128 --out w.int4.safetensors
      numfmt quantize --values "1.5,-0.5,3" -b 4       three numbers onto the int4 grid
      numfmt quantize --values "0.1,1/3,2^-10,100" --compare int8,fp8_e4m3,nf4

    The report gives MSE, RMSE, MAE, the largest error, SQNR, cosine similarity, the share of
    values clipped and how much of the error clipping caused, and bits per value counting the
    scales and zero points; per channel or group figures where the scheme has groups.
    """
    from numfmt._files import check_output
    from numfmt.quant import parse_scheme
    from numfmt.tensorio import load_tensor

    if path is None and values is None:
        raise UsageFailure(
            "give a tensor file, or numbers with --values (e.g. --values 1.5,-0.5,3)"
        )
    if path is not None and values is not None:
        raise UsageFailure("give a tensor file or --values, not both")
    if values is not None and name:
        raise UsageFailure("--tensor chooses a tensor in a file; --values makes one of its own")
    given = set(given_options(*SCHEME_FLAGS, "order"))
    if compare and out:
        raise UsageFailure("--out writes one scheme; drop --compare to write it")
    if compare and given & set(SCHEME_FLAGS):
        flags = [flag for key, flag in SCHEME_FLAGS.items() if key in given]
        raise UsageFailure(
            f"--compare takes whole schemes, so {_and(flags)} would apply to none of them: "
            "write each scheme in full in the list (e.g. int4/asym/group:32/mse)"
        )
    if "order" in given and not out:
        raise UsageFailure(
            "--order says how --out packs the codes: give --out too, or drop --order"
        )
    if compare:
        specs = [s.strip() for item in compare for s in item.split(",") if s.strip()]
        schemes = [parse_scheme(s) for s in specs]
    else:
        chosen = build_scheme(
            bits, mapping, granularity, method, target, scale_format, full, rounding, given
        )
    if out:  # before anything is read: never the input, never over a file
        check_output(out, inputs=[path] if path else [], suffix=".safetensors")
    if values is not None:
        tensor_name, x = "values", values_tensor(values)
    else:
        tensor_name, x = load_tensor(path, name)
    check_tensor(tensor_name, x)
    check_finite(tensor_name, x, nan_policy)
    check_magnitude(tensor_name, x)
    if out:  # an order the codes cannot take: refused before the work and the report
        from numfmt.quant.io import check_order

        check_order(chosen.bits, int(np.size(x)), order)
    with show_warnings():
        if compare:
            emit(_compare(x, schemes, nan_policy, quiet=as_json), as_json)
            return
        from numfmt.quant import quantize_tensor

        qt = quantize_tensor(x, chosen, nan_policy=nan_policy)
        report = qt.report(x, nan_policy=nan_policy)
    if out:
        written = qt.save(out, name=tensor_name, order=order)
        note(f"wrote {written}")
    from numfmt.quant.tensor import QuantizeResult

    emit(QuantizeResult(tensor_name, qt, report, tuple(qt.samples(x))), as_json)


def _compare(x, schemes, nan_policy: str, quiet: bool):
    from numfmt.quant import compare_schemes

    if quiet or not sys.stderr.isatty() or len(schemes) < 2:
        return compare_schemes(x, schemes, nan_policy=nan_policy)
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task("quantizing", total=len(schemes))
        return compare_schemes(
            x, schemes, nan_policy=nan_policy, progress=lambda _: progress.advance(task)
        )
