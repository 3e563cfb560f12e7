"""numfmt's Triton kernels compile for a Hopper GPU (sm_90a) on a machine without one, at the
block sizes the dispatch chooses, and ptxas keeps their registers (no spills to local
memory). Triton's interpreter, which runs the other kernel tests without a GPU, accepts
code the compiler refuses; this catches that before a GPU does. Skipped without Triton (CI)
or its bundled ptxas."""

from __future__ import annotations

import importlib.util
import re
import subprocess
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
if importlib.util.find_spec("triton") is None:
    pytest.skip("Triton is not installed", allow_module_level=True)

import triton  # noqa: E402

PTXAS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin" / "ptxas"
if not PTXAS.exists():
    pytest.skip("Triton's ptxas is not bundled here", allow_module_level=True)

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from numfmt.nn import _linear_triton  # noqa: E402
from numfmt.quant import _gpu, _kernels  # noqa: E402
from numfmt.quant import _triton as kernels  # noqa: E402
from numfmt.quant.qparams import as_scheme  # noqa: E402

HOPPER = GPUTarget("cuda", 90, 32)


def compiled(fn, pointers: dict[str, str], constants: dict, **options) -> tuple[int, int]:
    """(registers a thread, bytes spilled) of fn compiled for sm_90a: every argument not in
    ``pointers`` or ``constants`` is an int32, OUTER a float32."""
    signature = {
        name: "constexpr" if name in constants else pointers.get(name, "i32")
        for name in fn.arg_names
    }
    if "OUTER" in signature:
        signature["OUTER"] = "fp32"
    source = ASTSource(fn=fn, signature=signature, constexprs=constants)
    ptx = triton.compile(source, target=HOPPER, options=options).asm["ptx"]
    run = subprocess.run(
        [str(PTXAS), "-arch=sm_90a", "-v", "-", "-o", "/dev/null"],
        input=ptx, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    registers = int(re.search(r"Used (\d+) registers", run.stderr).group(1))
    spilled = int(re.search(r"(\d+) bytes spill stores", run.stderr).group(1))
    return registers, spilled


def _scale_constants(spec: str) -> dict:
    steps, qmin, qmax, asymmetric, top = _kernels._scale_args(as_scheme(spec))
    return {"STEPS": steps, "QMIN": qmin, "QMAX": qmax, "ASYM": asymmetric, "TOP": top}


F64 = "*fp64"


@pytest.mark.parametrize("spec", ["int8/channel", "uint4/asym/group:128"])
@pytest.mark.parametrize("width", [128, 4096])
@pytest.mark.parametrize("what", ["values", "mask", "codes-omit", "bfloat16"])
def test_the_range_kernel_compiles_without_spills(spec, width, what):
    rows = torch.empty(8, width, device="meta")
    block_r, block_c, *_ = _gpu._layout(rows)
    dtype = "*bf16" if what == "bfloat16" else "*fp32"
    pointers = {
        "x_ptr": dtype, "lo_in_ptr": F64, "hi_in_ptr": F64,
        "out_ptr": "*i8" if what == "codes-omit" else dtype, "inside_ptr": "*i8",
        "scale_ptr": F64, "zero_ptr": "*i64", "lo_ptr": F64, "hi_ptr": F64, "refused_ptr": "*i8",
    }  # fmt: skip
    constants = {
        **_scale_constants(spec), "CODES": what == "codes-omit", "MASK": what == "mask",
        "RANGE_IN": False, "F32": True, "OMIT": what == "codes-omit",
        "BLOCK_R": block_r, "BLOCK_C": block_c,
    }  # fmt: skip
    warps = 8 if block_r * block_c >= _gpu.ROWS_TILE else 4
    _, spilled = compiled(
        kernels.minmax_kernel, pointers, constants, num_warps=warps, enable_fp_fusion=False
    )
    assert spilled == 0


@pytest.mark.parametrize("spec", ["int8/channel", "uint8/asym/channel"])
@pytest.mark.parametrize("width", [32, 128, 4096])
def test_the_mse_kernels_compile_without_spilling_in_their_loop(spec, width):
    rows = torch.empty(8, width, device="meta")
    chunk, block_c, kb, _ = _gpu._mse_layout(rows, 100)
    layout = {"K": 100, "CHUNK": chunk, "KB": kb, "BLOCK_C": block_c}
    pointers = {"x_ptr": "*fp32", "lo_ptr": F64, "hi_ptr": F64, "errors_ptr": F64}
    _, spilled = compiled(
        kernels.search_kernel, pointers, {**layout, **_scale_constants(spec)}, num_warps=8
    )
    assert spilled <= 8  # (a few bytes outside the loop, where ptxas holds 128 registers)
    pointers = {"x_ptr": "*fp32", "scales_ptr": F64, "zeros_ptr": "*i64", "errors_ptr": F64}
    s = as_scheme(spec)
    constants = {**layout, "QMIN": s.qmin, "QMAX": s.qmax}
    assert compiled(kernels.mse_kernel, pointers, constants, num_warps=8)[1] == 0


def test_the_pick_and_scale_kernels_compile():
    pointers = {n: F64 for n in ("errors_ptr", "lo_ptr", "hi_ptr", "lo_out", "hi_out")}
    constants = {"CHUNKS": 2, "K": 100, "BLOCK_R": 32, "BLOCK_K": 128}
    assert compiled(kernels.pick_kernel, pointers, constants, enable_fp_fusion=False)[1] == 0
    pointers = {"lo_ptr": F64, "hi_ptr": F64, "scale_ptr": F64, "zero_ptr": "*i64"}
    pointers["saturated_ptr"] = "*i8"
    constants = {**_scale_constants("uint8/asym"), "BLOCK": 1024}
    assert compiled(kernels.scales_kernel, pointers, constants)[1] == 0


@pytest.mark.parametrize(
    "bits, codes, table, zero, minimum, rows",
    [(8, "*i8", False, False, False, 1), (4, "*u8", False, True, False, 8),
     (4, "*u8", False, False, True, 3), (4, "*u8", True, False, False, 1)],
)  # fmt: skip
def test_the_packed_product_compiles_without_spills(bits, codes, table, zero, minimum, rows):
    pointers = {
        "x_ptr": "*fp32", "q_ptr": codes, "lv_ptr": "*fp32", "s_ptr": "*fp32",
        "z_ptr": "*i32", "m_ptr": "*fp32", "b_ptr": "*bf16", "out_ptr": "*fp32",
    }  # fmt: skip
    block_m = triton.next_power_of_2(rows)
    constants = {
        "G": 9, "GROUP": 64, "BITS": bits, "SIGNED": not (table or minimum), "TABLE": table,
        "ZERO": zero, "MIN": minimum, "SCALED": table, "BIAS": zero, "BLOCK_M": block_m, "BLOCK_N": 16,
        "BLOCK_K": max(16, min(128, 64, 4096 // (block_m * 16))),
    }  # fmt: skip
    assert compiled(_linear_triton.linear_kernel, pointers, constants)[1] == 0
