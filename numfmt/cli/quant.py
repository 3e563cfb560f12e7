"""``numfmt quantize``: a tensor from a file onto a grid, with the error report."""

from __future__ import annotations

import sys

import click
import numpy as np

from numfmt.cli import main
from numfmt.cli.base import UsageFailure, emit, fail_cleanly, json_option, note
from numfmt.errors import NumfmtError
from numfmt.quant import QuantizedTensor, compare_schemes, parse_scheme, quantize_tensor
from numfmt.quant.packing import ORDERS
from numfmt.quant.scheme import PRESETS, QuantScheme, scheme
from numfmt.tensorio import load_tensor, save_safetensors


def build_scheme(bits, mapping, granularity, method, target, scale_format, full, rounding):
    """One scheme from the command's options (a preset or float target replaces int{bits})."""
    name = target or f"int{bits}"
    method_name, _, arg = (method or "minmax").partition(":")
    from numfmt.quant import calibration

    options = calibration.parse_argument(method_name, arg) if arg else {}
    if name.lower() in PRESETS or name.lower() in ("mxfp6",):
        return scheme(name, method=method_name, rounding=rounding, **options)
    return scheme(
        name,
        mapping=mapping,
        granularity=granularity,
        method=method_name,
        restricted=not full,
        rounding=rounding,
        scale_format=scale_format,
        **options,
    )


def check_tensor(name: str, x: np.ndarray) -> None:
    """Refuse tensors there is nothing to learn from: empty or all zeros."""
    if x.size == 0:
        raise NumfmtError(f"tensor '{name}' is empty: there is nothing to quantize")
    if x.dtype.kind not in "fiu" and x.dtype.itemsize > 2:
        raise NumfmtError(f"tensor '{name}' has dtype {x.dtype}, not numbers")
    if np.all(x == 0):
        raise NumfmtError(
            f"tensor '{name}' is all zeros: every scheme stores it exactly (scale 0), "
            "so there is no error to measure"
        )


@main.command()
@click.argument("path", metavar="TENSOR_FILE", type=click.Path(dir_okay=False))
@click.option("--tensor", "-t", "name", help="The tensor to read, when the file holds several.")
@click.option(
    "--bits",
    "-b",
    default=8,
    show_default=True,
    type=click.IntRange(2, 16),
    help="Integer width of the codes (int targets).",
)
@click.option(
    "--scheme",
    "-s",
    "mapping",
    default="sym",
    show_default=True,
    type=click.Choice(["sym", "asym"]),
    help="Symmetric (absmax) or asymmetric (zero point).",
)
@click.option(
    "--granularity",
    "-g",
    default="tensor",
    show_default=True,
    help="tensor, channel (axis 0), channel:AXIS, group:SIZE or group:SIZE:AXIS.",
)
@click.option(
    "--method",
    "-m",
    default="minmax",
    show_default=True,
    help="minmax, percentile[:P], mse[:RATIOS], entropy, l2_histogram.",
)
@click.option(
    "--format",
    "-f",
    "target",
    default=None,
    help="A float grid (fp8_e4m3, fp4 ...) or a block format (mxfp8, mxfp6, mxfp4, "
    "mxint8, nvfp4, nf4) instead of int{bits}.",
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
    help="Refuse NaN/inf, or leave them out of the range.",
)
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(dir_okay=False),
    help="Write codes, scales and zero points to this .safetensors file.",
)
@click.option(
    "--order",
    default="torchao",
    show_default=True,
    type=click.Choice(ORDERS),
    help="Nibble order for packed 4-bit codes in --out.",
)
@json_option
@fail_cleanly
def quantize(
    path,
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
    """Quantize a tensor from a .npy, .npz or .safetensors file and report the error.

    \b
    Examples:
      numfmt quantize weights.npy --bits 4 --scheme asym --granularity group:128 --method mse
      numfmt quantize model.safetensors -t layers.0.mlp.down_proj.weight -f nf4
      numfmt quantize w.npy --compare int8,int8/channel,int4/group:128/scale:fp16,mxfp4,nvfp4
      numfmt quantize w.npy -b 4 -g group:128 --out w.int4.safetensors

    The report gives MSE, RMSE, MAE, the largest error, SQNR, cosine similarity, the share of
    values clipped and how much of the error clipping caused, and bits per value counting the
    scales and zero points; per channel or group figures where the scheme has groups.
    """
    tensor_name, x = load_tensor(path, name)
    check_tensor(tensor_name, x)
    if compare:
        if out:
            raise UsageFailure("--out writes one scheme; drop --compare to write it")
        specs = [s.strip() for item in compare for s in item.split(",") if s.strip()]
        schemes = [parse_scheme(s) for s in specs]
        emit(_compare(x, schemes, nan_policy, quiet=as_json), as_json)
        return
    s = build_scheme(bits, mapping, granularity, method, target, scale_format, full, rounding)
    qt = quantize_tensor(x, s, nan_policy=nan_policy)
    report = qt.report(np.nan_to_num(x.astype(np.float64), nan=0.0) if nan_policy == "omit" else x)
    if out:
        written = save_safetensors(out, _tensors(tensor_name, qt, order), _metadata(qt, order))
        note(f"wrote {written}")
    emit(_Result(tensor_name, qt, report), as_json)


def _compare(x, schemes: list[QuantScheme], nan_policy: str, quiet: bool):
    if quiet or not sys.stderr.isatty() or len(schemes) < 2:
        return compare_schemes(x, schemes, nan_policy=nan_policy)
    from rich.progress import Progress

    from numfmt.quant.report import SchemeComparison

    rows = []
    with Progress(transient=True) as progress:
        task = progress.add_task("quantizing", total=len(schemes))
        for s in schemes:
            progress.update(task, description=str(s))
            rows.append(quantize_tensor(x, s, nan_policy=nan_policy).report(x))
            progress.advance(task)
    return SchemeComparison(tuple(x.shape), tuple(rows))


def _tensors(name: str, qt: QuantizedTensor, order: str) -> dict[str, np.ndarray]:
    s = qt.scheme
    codes = qt.pack(order) if s.bits in (2, 4, 6) else qt.codes
    from numfmt.formats import encode, get_format

    scale_fmt = get_format(s.scale_format)
    scale = qt.qparams.scale
    stored = scale.astype(scale_fmt.ml_dtype) if scale_fmt.ml_dtype is not None else scale
    tensors = {f"{name}.codes": codes, f"{name}.scale": np.asarray(stored)}
    if scale_fmt.ml_dtype is None:  # a format numpy cannot hold: store its codes
        tensors[f"{name}.scale"] = encode(scale, scale_fmt)
    if qt.qparams.zero_point is not None:
        tensors[f"{name}.zero_point"] = qt.qparams.zero_point.astype(np.int32)
    if qt.qparams.tensor_scale is not None:
        tensors[f"{name}.tensor_scale"] = np.array(qt.qparams.tensor_scale, dtype=np.float32)
    return tensors


def _metadata(qt: QuantizedTensor, order: str) -> dict[str, str]:
    s = qt.scheme
    return {
        "numfmt.scheme": str(s),
        "numfmt.shape": ",".join(map(str, qt.shape)),
        "numfmt.element": s.target,
        "numfmt.granularity": str(s.granularity),
        "numfmt.packing": order if s.bits in (2, 4, 6) else "none",
        "numfmt.scale_format": s.scale_format,
    }


class _Result:
    """The quantized tensor and its report, shown together."""

    def __init__(self, name: str, qt: QuantizedTensor, report) -> None:
        self.name, self.qt, self.report = name, qt, report

    def to_json(self) -> str:
        import json

        from numfmt._display import _jsonable

        data = {
            "tensor": self.name,
            "quantized": self.qt.to_dict(),
            "report": self.report.to_dict(),
        }
        return json.dumps(_jsonable(data), indent=2, allow_nan=False)

    def __rich__(self):
        from rich.console import Group
        from rich.text import Text

        return Group(Text(f"tensor '{self.name}'", style="bold"), self.qt, self.report)
