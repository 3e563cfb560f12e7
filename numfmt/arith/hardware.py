"""Named models of how a matrix multiply accumulates, from real hardware and from papers.

A model is a set of ``numfmt.arith.matmul``'s parameters under one name:
``matmul(a, b, model="hopper-fp8")``. The tensor-core models are MMA-Sim's (Xie, Wang, Yang and
Yang, "MMA-Sim: Bit-Accurate Reference Model of Tensor Cores and Matrix Cores", arXiv
2511.10909, whose models were checked bit for bit against the GPUs): each instruction adds its
K products and the accumulator C as one *fused* group, every term aligned to the largest
exponent among them and truncated to a number of fractional bits, and the sum truncated into
the accumulator. A matrix product longer than one instruction chains them, each instruction's
D the next one's C. numfmt's tests check these models bit for bit against MMA-Sim's reference
code on its instruction shapes.

======================  ======================================================================
fp32                    an FMA unit one term at a time, in binary32 (a CPU loop, a CUDA core)
fp8-fp32                e4m3 inputs with fp32's accumulation: the FP8 models' rounding of the
                        inputs alone, to tell it from their accumulators'
bf16-accumulate         inputs and the running sum in bfloat16, each step rounded to nearest
kahan                   bf16-accumulate with Kahan's compensation (every operation in bf16)
ampere-fp16             A100 ``mma.m16n8k16.f32.f16``: groups of 8, 24 fractional bits, an
                        fp32 accumulator truncated (MMA-Sim: split-K on Ampere)
ampere-bf16             the same for bfloat16 inputs
ada-fp8                 L40 ``mma.m16n8k32.f32.e4m3``: groups of 16, 13 fractional bits, an
                        accumulator of 13 fractional bits (e8m13), truncated
hopper-fp16             H100 ``wgmma.m64nNk16.f32.f16``: groups of 16, 25 fractional bits, fp32
                        accumulator truncated
hopper-bf16             the same for bfloat16 inputs
hopper-fp8              H100 ``wgmma.m64nNk32.f32.e4m3``: groups of 32 truncated to 13
                        fractional bits, an e8m13 accumulator truncated: DeepSeek-V3's "around
                        14 bits"
hopper-fp8-promote128   hopper-fp8 whose partial sums go to an fp32 accumulator every 128 terms
                        (DeepSeek-V3 technical report, section 3.3.2, N_C = 128)
blackwell-fp8           B200 ``tcgen05.mma.kind::f8f6f4``: groups of 32, 25 fractional bits,
                        fp32 accumulator truncated
blackwell-fp16          B200 ``tcgen05.mma.kind::f16``: groups of 16, 25 fractional bits
======================  ======================================================================

Two details follow MMA-Sim's model where hardware documentation is silent: a zero operand
or accumulator counts with exponent -126 when the largest exponent is found (it never wins
against a nonzero term), and a subnormal counts with its format's smallest exponent. Where
the truncated accumulator would reach 2^128, MMA-Sim's model gives infinity; numfmt's
truncation gives the largest finite value, as IEEE 754's rounding toward zero does.
"""

from __future__ import annotations

from dataclasses import dataclass

from numfmt.errors import NumfmtError
from numfmt.formats.rounding import Rounding


@dataclass(frozen=True)
class Fused:
    """A fused group: ``size`` products and the accumulator aligned to the largest exponent,
    each cut to ``bits`` fractional bits by ``rounding`` (toward-zero, nearest-even, down or
    up), then summed exactly."""

    size: int
    bits: int
    rounding: str = "toward-zero"

    @classmethod
    def parse(cls, spec) -> Fused | None:
        """A Fused from itself, None/False, a (size, bits[, rounding]) tuple, or text
        ``"32:13"`` or ``"32:13:toward-zero"``."""
        if spec is None or spec is False:
            return None
        if isinstance(spec, Fused):
            fused = spec
        elif isinstance(spec, (tuple, list)) and 2 <= len(spec) <= 3:
            fused = cls(*spec)
        elif isinstance(spec, str):
            parts = spec.strip().split(":")
            if len(parts) not in (2, 3) or not all(p.strip().isdigit() for p in parts[:2]):
                raise NumfmtError(
                    f"'{spec}': write a fused group as SIZE:BITS (e.g. 32:13) or "
                    "SIZE:BITS:ROUNDING (e.g. 32:13:toward-zero)"
                )
            fused = cls(int(parts[0]), int(parts[1]), *(p.strip() for p in parts[2:]))
        else:
            raise NumfmtError(f"fused takes a Fused, (size, bits) or 'SIZE:BITS', not {spec!r}")
        if not isinstance(fused.size, int) or fused.size < 1:
            raise NumfmtError(f"a fused group holds at least 1 product, not {fused.size!r}")
        if not isinstance(fused.bits, int) or not 0 <= fused.bits <= 40:
            raise NumfmtError(
                f"a fused group keeps 0 to 40 fractional bits (exact sums in float64), "
                f"not {fused.bits!r}"
            )
        mode = Rounding.parse(fused.rounding)
        if mode.value not in TERM_ROUNDINGS:
            raise NumfmtError(
                f"a fused group's terms are cut by {', '.join(TERM_ROUNDINGS)}, not "
                f"'{fused.rounding}'"
            )
        return Fused(fused.size, fused.bits, mode.value)


#: How a fused group's terms may be cut, and the kernels' codes for them.
TERM_ROUNDINGS = {"toward-zero": 0, "nearest-even": 1, "down": 2, "up": 3}


@dataclass(frozen=True)
class MatmulModel:
    """A named accumulation: ``matmul``'s parameters, and where they come from."""

    name: str
    summary: str
    source: str
    inputs: str | None = None
    products: str | None = None
    accumulator: str = "fp32"
    rounding: str = "nearest-even"
    order: str = "sequential"
    fused: Fused | None = None
    promote_every: int | None = None
    promote_to: str = "fp32"

    def to_dict(self) -> dict:
        fused: dict[str, int | str] | None = None
        if self.fused is not None:
            fused = {"size": self.fused.size, "bits": self.fused.bits}
            fused["rounding"] = self.fused.rounding
        return {
            "name": self.name,
            "summary": self.summary,
            "source": self.source,
            "inputs": self.inputs,
            "products": self.products or "exact",
            "accumulator": self.accumulator,
            "rounding": self.rounding,
            "order": self.order,
            "fused": fused,
            "promote_every": self.promote_every,
            "promote_to": self.promote_to if self.promote_every else None,
        }


_MMA_SIM = "MMA-Sim (arXiv 2511.10909), "


def _tensor_core(name, summary, source, inputs, size, bits, accumulator="fp32", **more):
    return MatmulModel(
        name,
        summary,
        _MMA_SIM + source,
        inputs=inputs,
        accumulator=accumulator,
        rounding="toward-zero",
        fused=Fused(size, bits),
        **more,
    )


MODELS: dict[str, MatmulModel] = {
    m.name: m
    for m in [
        MatmulModel(
            "fp32",
            "binary32 fused multiply-add, one term at a time",
            "IEEE 754-2019 fusedMultiplyAdd; a CPU loop or a CUDA core's FFMA",
            inputs="fp32",
        ),
        MatmulModel(
            "fp8-fp32",
            "e4m3 inputs, exact products, binary32 fused multiply-add one term at a time",
            "the FP8 models' inputs with fp32's accumulation: what their accumulator costs",
            inputs="e4m3",
        ),
        MatmulModel(
            "bf16-accumulate",
            "bfloat16 inputs and running sum, each step rounded to nearest",
            "a bf16 accumulator (Zamirai et al., 'Revisiting BFloat16 Training', 2020)",
            inputs="bf16",
            accumulator="bf16",
        ),
        MatmulModel(
            "kahan",
            "bf16-accumulate with Kahan's compensated sum, every operation in bfloat16",
            "Kahan, 'Further remarks on reducing truncation errors', CACM 1965",
            inputs="bf16",
            accumulator="bf16",
            order="kahan",
        ),
        _tensor_core(
            "ampere-fp16",
            "A100 tensor core, fp16 inputs: groups of 8, 24 fractional bits, fp32 truncated",
            "mma.m16n8k16.f32.f16.f16.f32 on Ampere",
            "fp16",
            8,
            24,
        ),
        _tensor_core(
            "ampere-bf16",
            "A100 tensor core, bf16 inputs: groups of 8, 24 fractional bits, fp32 truncated",
            "mma.m16n8k16.f32.bf16.bf16.f32 on Ampere",
            "bf16",
            8,
            24,
        ),
        _tensor_core(
            "ada-fp8",
            "L40 tensor core, e4m3 inputs: groups of 16, 13 fractional bits, e8m13 truncated",
            "mma.m16n8k32.f32.e4m3.e4m3.f32 on Ada Lovelace",
            "e4m3",
            16,
            13,
            accumulator="e8m13",
        ),
        _tensor_core(
            "hopper-fp16",
            "H100 tensor core, fp16 inputs: groups of 16, 25 fractional bits, fp32 truncated",
            "wgmma.m64nNk16.f32.f16.f16 on Hopper",
            "fp16",
            16,
            25,
        ),
        _tensor_core(
            "hopper-bf16",
            "H100 tensor core, bf16 inputs: groups of 16, 25 fractional bits, fp32 truncated",
            "wgmma.m64nNk16.f32.bf16.bf16 on Hopper",
            "bf16",
            16,
            25,
        ),
        _tensor_core(
            "hopper-fp8",
            "H100 tensor core, e4m3 inputs: groups of 32, 13 fractional bits, e8m13 truncated",
            "wgmma.m64nNk32.f32.e4m3.e4m3 on Hopper; DeepSeek-V3 report 3.3.2",
            "e4m3",
            32,
            13,
            accumulator="e8m13",
        ),
        _tensor_core(
            "hopper-fp8-promote128",
            "hopper-fp8, partial sums added into fp32 every 128 terms",
            "wgmma.m64nNk32 on Hopper, promoted as DeepSeek-V3's report (3.3.2) does",
            "e4m3",
            32,
            13,
            accumulator="e8m13",
            promote_every=128,
        ),
        _tensor_core(
            "blackwell-fp8",
            "B200 tensor core, e4m3 inputs: groups of 32, 25 fractional bits, fp32 truncated",
            "tcgen05.mma.kind::f8f6f4 on Blackwell",
            "e4m3",
            32,
            25,
        ),
        _tensor_core(
            "blackwell-fp16",
            "B200 tensor core, fp16 inputs: groups of 16, 25 fractional bits, fp32 truncated",
            "tcgen05.mma.kind::f16 on Blackwell",
            "fp16",
            16,
            25,
        ),
    ]
}


def get_model(name) -> MatmulModel:
    """The model of that name (or the model itself); a NumfmtError listing them otherwise."""
    if isinstance(name, MatmulModel):
        return name
    key = str(name).strip().lower()
    if key not in MODELS:
        raise NumfmtError(f"unknown matmul model '{name}'; choose one of {', '.join(MODELS)}")
    return MODELS[key]
