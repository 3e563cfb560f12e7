"""Peak memory of quantizing a checkpoint tensor by tensor, against its size and against the
in-memory path (load the model, quantize_model, save_model), each in a fresh process; then
of running the quantized file (one forward pass over 256 tokens) loaded whole, and through
accelerate's big-model loading within ``--cap`` x the file's size of memory (the rest
offloaded to disk). Memory read through mapped files counts in the resident set but can be
dropped at any time; the anonymous part cannot, and is the one a cap must bound.

    python bench/streaming.py [MODEL] [--recipe int4/group:64] [--cap 0.25]

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

WATCH = r"""
def resident(key="VmRSS"):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith(key))
before, peak, done = resident(), [0], threading.Event()
anon_before, anon_peak = resident("RssAnon"), [0]
def watch():
    while not done.is_set():
        peak[0] = max(peak[0], resident())
        anon_peak[0] = max(anon_peak[0], resident("RssAnon"))
        time.sleep(0.002)
watcher = threading.Thread(target=watch)
watcher.start()
t0 = time.perf_counter()
"""

WORK = (
    r"""
import sys, threading, time
mode, source, out, recipe = sys.argv[1:5]
import torch
import transformers  # both paths read the config through it: imported before measuring
from transformers import AutoModel, AutoModelForCausalLM
from numfmt.quant import quantize_tensor
warm = torch.ones(384, 1536)
quantize_tensor(warm, recipe).report(warm)  # imports, pools, compiled kernels
"""
    + WATCH
    + r"""
try:
    if mode == "stream":
        from numfmt.models.checkpoint import quantize_checkpoint
        quantize_checkpoint(source, out, recipe, progress=False)
    else:
        from numfmt.nn import load_model, quantize_model
        from numfmt.models.saving import save_model
        loaded = load_model(source, tokenizer=False)
        q, report = quantize_model(loaded.model, recipe, inplace=True, progress=False)
        save_model(q, out, report=report)
finally:
    done.set()
    watcher.join()
print(max(peak[0], resident()) - before, time.perf_counter() - t0)
"""
)

RUN = (
    r"""
import sys, json, tempfile, threading, time
mode, path, cap = sys.argv[1:4]
import torch, transformers, accelerate
from numfmt.models.saving import load_quantized
from numfmt.tensorio import read_metadata
vocab = json.loads(read_metadata(path)["config"])["vocab_size"]
# the model's classes (transformers imports them lazily, ~160 MB of code and tables): imported
# before measuring, so that both runs count the weights and the work, not the import
getattr(transformers, read_metadata(path)["architecture"])
import numfmt.models.saving, numfmt.nn.modules, accelerate.big_modeling  # noqa: E401
from numfmt.quant import quantize_tensor
quantize_tensor(torch.ones(64, 64), "int4/group:32").dequantize()  # compiled kernels, pools
ids = torch.randint(0, vocab, (1, 256), generator=torch.Generator().manual_seed(0))
offload = tempfile.TemporaryDirectory()
"""
    + WATCH
    + r"""
try:
    if mode == "whole":
        model = load_quantized(path)
    else:
        model = load_quantized(
            path, device_map="auto", max_memory={"cpu": int(cap)}, offload_folder=offload.name
        )
    with torch.no_grad():
        out = model(ids)[0]
finally:
    done.set()
    watcher.join()
placed = getattr(model, "hf_device_map", {"": "cpu"})
on_disk = sum(d == "disk" for d in placed.values())
anon = max(anon_peak[0], resident("RssAnon")) - anon_before
print(max(peak[0], resident()) - before, anon, time.perf_counter() - t0,
      float(out.double().sum()), on_disk, len(placed))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="minilm-l6")
    parser.add_argument("--recipe", default="int4/group:64")
    parser.add_argument(
        "--cap", type=float, default=0.75, help="memory for the capped run, x the quantized file"
    )
    args = parser.parse_args()
    from numfmt.models.sources import resolve

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
        quantized = Path(tmp) / "stream.safetensors"
        if quantized.exists():
            run_quantized(quantized, args.cap)
    tmp_model.cleanup()


def run_quantized(path: Path, cap: float) -> None:
    """One forward pass of the quantized file, loaded whole and within a memory cap."""
    size = path.stat().st_size
    limit = int(cap * size)
    print(f"\nrunning {path.name} ({size / 1e6:.1f} MB), 256 tokens, one forward pass")
    sums = {}
    for mode in ("whole", "capped"):
        done = subprocess.run(
            [sys.executable, "-c", RUN, mode, str(path), str(limit)],
            capture_output=True,
            text=True,
        )
        if done.returncode:
            print(f"{mode}: failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        peak, anon, seconds, total, on_disk, modules = done.stdout.split()[-6:]
        sums[mode] = total
        where = "" if mode == "whole" else f", {on_disk} of {modules} modules on disk"
        label = "whole" if mode == "whole" else f"cap {limit / 1e6:.0f} MB"
        print(
            f"{label:>12}: peak {float(peak) / 1e6:7.1f} MB resident, {float(anon) / 1e6:7.1f} MB "
            f"anonymous (not file pages) above the start, {float(seconds):.1f} s{where}"
        )
    if len(sums) == 2:
        print(f"same logits: {sums['whole'] == sums['capped']}")


if __name__ == "__main__":
    main()
