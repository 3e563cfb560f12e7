"""Run a module of Triton tests again under Triton's interpreter, for machines without a GPU.

Triton reads TRITON_INTERPRET when a kernel is defined, so a test module whose kernels should
run on the host's CPU runs again, whole, in a subprocess of its own with it set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


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
