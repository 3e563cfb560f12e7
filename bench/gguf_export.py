"""SmolLM2-135M (its Q4_1 GGUF file) rewritten by numfmt as GGUF: the tensors that were Q4_1
must come back byte for byte, the rest in the asked type; the time it takes.

    python bench/gguf_export.py [--type q4_1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from numfmt.models import gguf_read as gguf_model
from numfmt.models import sources
from numfmt.models.gguf_write import write_gguf


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--type", default="q4_1")
    args = parser.parse_args()
    path = sources.resolve("smollm2-135m").path
    t0 = time.perf_counter()
    model = gguf_model.load(path)
    loaded = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / f"smollm2-{args.type}.gguf"
        t0 = time.perf_counter()
        export = write_gguf(model, out, args.type, metadata=path)
        written = time.perf_counter() - t0
        _, original = gguf_model.read_tensors(path)
        _, mine = gguf_model.read_tensors(out)
        by_name = {t.gguf_name: t for t in mine}
        same = [t for t in original if t.kind == args.type]
        equal = sum(np.array_equal(t.data, by_name[t.gguf_name].data) for t in same)
    print(f"SmolLM2-135M loaded in {loaded:.1f} s; written as {args.type} in {written:.1f} s")
    print(f"{export.nbytes / 1e6:.1f} MB, {len(export.tensors)} tensors")
    print(f"tensors stored as {args.type} in the source: {equal} of {len(same)} byte for byte")


if __name__ == "__main__":
    main()
