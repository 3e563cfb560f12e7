"""Peak memory of quantizing a checkpoint tensor by tensor, against its size and against the
in-memory path (load the model, quantize_model, save_model), each in a fresh process.

    python bench/streaming.py [MODEL] [--recipe int4/group:64]

MODEL: a safetensors file or folder (default: minilm-l6's folder), or ``smollm2-shaped``: a
Llama of SmolLM2-135M's shape with random weights, saved in shards of 100 MB (540 MB). The
resident set is sampled every 2 ms while the work runs; printed above what the process held
before it.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

WORK = r"""
import sys, threading, time
mode, source, out, recipe = sys.argv[1:5]
import torch
import transformers  # both paths read the config through it: imported before measuring
from transformers import AutoModel, AutoModelForCausalLM
from numfmt.quant import quantize_tensor
warm = torch.ones(384, 1536)
quantize_tensor(warm, recipe).report(warm)  # imports, pools, compiled kernels
def resident():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))
before, peak, done = resident(), [0], threading.Event()
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], resident())
        time.sleep(0.002)
watcher = threading.Thread(target=watch)
watcher.start()
t0 = time.perf_counter()
try:
    if mode == "stream":
        from numfmt.nn.streaming import quantize_checkpoint
        quantize_checkpoint(source, out, recipe, progress=False)
    else:
        from numfmt.nn import load_model, quantize_model
        from numfmt.nn.saving import save_model
        loaded = load_model(source, tokenizer=False)
        q, report = quantize_model(loaded.model, recipe, inplace=True, progress=False)
        save_model(q, out, report=report)
finally:
    done.set()
    watcher.join()
print(max(peak[0], resident()) - before, time.perf_counter() - t0)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="minilm-l6")
    parser.add_argument("--recipe", default="int4/group:64")
    args = parser.parse_args()
    from numfmt.nn.sources import resolve

    tmp_model = tempfile.TemporaryDirectory()
    if args.model == "smollm2-shaped":
        from gptq_speed import smollm2_shaped

        source = Path(tmp_model.name)
        smollm2_shaped("cpu").save_pretrained(source, max_shard_size="100MB")
    else:
        source = resolve(args.model).path
    files = [source] if source.is_file() else list(source.glob("*.safetensors"))
    size = sum(f.stat().st_size for f in files)
    print(f"{args.model}: {size / 1e6:.1f} MB of safetensors; recipe {args.recipe}")
    with tempfile.TemporaryDirectory() as tmp:
        for mode in ("stream", "memory"):
            out = Path(tmp) / f"{mode}.safetensors"
            done = subprocess.run(
                [sys.executable, "-c", WORK, mode, str(source), str(out), args.recipe],
                capture_output=True,
                text=True,
            )
            if done.returncode:
                print(f"{mode}: failed: {done.stderr.strip().splitlines()[-1]}")
                continue
            peak, seconds = (float(v) for v in done.stdout.split())
            print(
                f"{mode:>7}: peak {peak / 1e6:7.1f} MB above the start "
                f"({peak / size:.2f}x the checkpoint), {seconds:.1f} s"
            )
    tmp_model.cleanup()


if __name__ == "__main__":
    main()
