"""What a module of Triton tests shares: where its kernels run, and its run under Triton's
interpreter on machines without a GPU.

On CUDA the kernels run directly. Without a GPU, Triton's interpreter runs them on the host's
tensors, but Triton reads TRITON_INTERPRET when a kernel is defined, so the module runs
again, whole, in a subprocess of its own with it set: a module imports
``test_the_kernels_in_tritons_interpreter`` from here, and marks its kernel tests with
``kernels`` (skipped in the parent process) and its tests of the public API on CUDA tensors
with ``cuda_only``. Import this after ``pytest.importorskip("torch")``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
#: where the kernel tests put their tensors (the interpreter runs host tensors)
DEVICE = "cuda" if CUDA else "cpu"
cuda_only = pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU")
kernels = pytest.mark.skipif(
    not (CUDA or INTERPRETED), reason="runs in the interpreter's subprocess"
)


def rerun_interpreted(test_file: str) -> tuple[bool, str]:
    """(whether every test of the module passed under the interpreter, the run's output)."""
    env = {**os.environ, "TRITON_INTERPRET": "1"}
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-o", "addopts=",
         str(Path(test_file).resolve().relative_to(ROOT))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    last = run.stdout.strip().splitlines()[-1] if run.stdout.strip() else ""
    ok = run.returncode == 0 and " passed" in last
    return ok, run.stdout[-3000:] + run.stderr[-2000:]


@pytest.mark.skipif(CUDA or INTERPRETED, reason="the kernels run directly here")
def test_the_kernels_in_tritons_interpreter(request):
    ok, output = rerun_interpreted(request.module.__file__)
    assert ok, output
