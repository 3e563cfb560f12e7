"""Peak memory of quantizing a checkpoint tensor by tensor, against its size and against the
in-memory path (load the model, quantize_model, save_model), each in a fresh process; then
of running the quantized file loaded whole and through accelerate's big-model loading
(``load_model(..., max_memory=)``) within each of ``--caps`` x the file's size (the rest
offloaded to disk): the perplexity of one window of ``--tokens`` random tokens (an
encoder's output, summed), its peak anonymous memory against the cap plus one layer and one
window's logits, which a cap must hold, and the result beside the whole load's. Memory read
through mapped files counts in the resident set but can be dropped at any time; the
anonymous part cannot, and is the one a cap must bound.

    python bench/streaming.py [MODEL] [--recipe int4/group:64] [--caps 0.9,0.75,0.6]
    python bench/streaming.py --quantized q.safetensors --caps 0.75,0.55

MODEL: a safetensors file or folder (default: minilm-l6's folder), ``smollm2-135m``, or
``smollm2-shaped``: a Llama of SmolLM2-135M's shape with random weights, saved in shards of
100 MB (540 MB). Memory is sampled every 2 ms while the work runs, and printed above what
the process held before it (after imports and a warm-up of torch's kernels on the window's
shapes, whose working buffers torch keeps for the process's life).
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
path, cap, tokens = sys.argv[1], sys.argv[2], int(sys.argv[3])
import torch, transformers, accelerate
from numfmt.errors import NumfmtError
from numfmt.models.loading import load_model
from numfmt.eval.scoring import score
from numfmt.nn.modules import QuantLinear
from numfmt.tensorio import read_metadata
config = json.loads(read_metadata(path)["config"])
vocab, width = config["vocab_size"], config.get("hidden_size", 64)
# imported and warmed before measuring, so that every run counts the weights and the work,
# not the import of the model's classes (~160 MB of code and tables) or torch's first calls
getattr(transformers, read_metadata(path)["architecture"])
import numfmt.models.saving, accelerate.big_modeling  # noqa: E401
from numfmt.quant import quantize_tensor
warm = QuantLinear(quantize_tensor(torch.randn(64, width), "int8/channel"), None)
warm(torch.randn(tokens, width)), warm(torch.randn(2, width))
torch.nn.functional.linear(torch.randn(tokens, width), torch.randn(vocab, width))
# torch's (MKL's) working buffers for the window's products, kept for the process's life
# (some MB): made here, so that the runs count the weights and the work, not them
inner = config.get("intermediate_size", 4 * width)
heads = config.get("num_attention_heads", 1)
for a, b in ((width, inner), (inner, width), (width, width)):
    torch.nn.functional.linear(torch.randn(tokens, a), torch.randn(b, a))
qk = torch.randn(1, heads, tokens, width // heads)
torch.nn.functional.scaled_dot_product_attention(qk, qk, qk, is_causal=True)
del warm, qk
ids = torch.randint(0, vocab, (tokens,), generator=torch.Generator().manual_seed(0))
offload = tempfile.TemporaryDirectory()
"""
    + WATCH
    + r"""
try:
    try:
        loaded = load_model(
            path,
            tokenizer=False,
            max_memory=None if cap == "none" else f"{int(cap) // 1000}KB",
            offload_folder=None if cap == "none" else offload.name,
        )
    except NumfmtError as exc:
        print(json.dumps({"refused": str(exc)}))
        raise SystemExit(0)
    model = loaded.model
    load_anon = max(anon_peak[0], resident("RssAnon")) - anon_before
    storages = {  # the weights held in memory, each storage once (numfmt's resident_bytes)
        t.untyped_storage().data_ptr(): t.untyped_storage().nbytes()
        for t in [*model.parameters(), *model.buffers()]
        if t.device.type != "meta"
    }
    held = sum(storages.values())
    if loaded.is_causal:
        result = score(model, ids, context=tokens).perplexity
    else:
        with torch.no_grad():
            result = float(model(ids[None])[0].double().sum())
finally:
    done.set()
    watcher.join()
import math
def running(unit):  # a layer as it runs: its weights decoded to float32, and its parameters
    shapes = [m.weight_shape for m in unit.modules() if hasattr(m, "weight_shape")]
    decoded = sum(4 * math.prod(shape) for shape in shapes)
    return decoded + sum(4 * t.numel() for t in unit.parameters())
whole = set(getattr(model, "_no_split_modules", None) or ())
layer = max([running(m) for m in model.modules() if type(m).__name__ in whole] or [0])
placed = getattr(model, "hf_device_map", {"": "cpu"})
print(json.dumps({
    "anon": max(anon_peak[0], resident("RssAnon")) - anon_before, "load_anon": load_anon,
    "held": held, "seconds": time.perf_counter() - t0, "result": repr(result),
    "causal": loaded.is_causal, "layer": layer, "logits": tokens * vocab * 4 * loaded.is_causal,
    "on_disk": sum(d == "disk" for d in placed.values()), "modules": len(placed),
}))
"""
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default="minilm-l6")
    parser.add_argument("--recipe", default="int4/group:64")
    parser.add_argument(
        "--caps",
        default="0.9,0.75,0.6",
        help="memory caps for the capped runs, x the quantized file, comma-separated",
    )
    parser.add_argument("--tokens", type=int, default=256, help="tokens of the scored window")
    parser.add_argument(
        "--quantized", type=Path, default=None, help="run this quantized file; quantize nothing"
    )
    args = parser.parse_args()
    caps = [float(c) for c in args.caps.split(",") if c]
    if args.quantized is not None:
        run_quantized(args.quantized, caps, args.tokens)
        return
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
            run_quantized(quantized, caps, args.tokens)
    tmp_model.cleanup()


def run_quantized(path: Path, caps: list[float], tokens: int) -> None:
    """The quantized file loaded whole, then within each cap, each in a fresh process: the
    peak anonymous memory against the cap plus one layer and one window's logits."""
    import json

    size = path.stat().st_size
    print(
        f"\nrunning {path.name} ({size / 1e6:.1f} MB) on {tokens} random tokens (one window; "
        "result: the perplexity, or an encoder's output summed), each load in a fresh "
        "process; memory is anonymous, above the start"
    )
    print(
        f"{'cap':>18} {'weights held':>13} {'load peak':>10} {'peak':>9} "
        f"{'cap+layer+logits':>17} {'within':>7} {'on disk':>8} {'s':>6}  result"
    )
    reference = None
    for cap in [None, *caps]:
        limit = None if cap is None else int(cap * size) // 1000 * 1000
        done = subprocess.run(
            [sys.executable, "-c", RUN, str(path), str(limit or "none"), str(tokens)],
            capture_output=True,
            text=True,
        )
        label = "whole" if limit is None else f"{limit / 1e6:.0f} MB ({cap:.2f}x)"
        if done.returncode:
            print(f"{label:>18}: failed: {done.stderr.strip().splitlines()[-1]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        if "refused" in r:
            print(f"{label:>18}: refused: {r['refused']}")
            continue
        mb = 1e6
        bound = "" if limit is None else f"{(limit + r['layer'] + r['logits']) / mb:.1f} MB"
        within = "" if limit is None else str(r["anon"] <= limit + r["layer"] + r["logits"])
        same = "" if reference is None else ("(same)" if r["result"] == reference else "(DIFFERS)")
        reference = r["result"] if reference is None else reference
        print(
            f"{label:>18} {r['held'] / mb:10.1f} MB {r['load_anon'] / mb:7.1f} MB "
            f"{r['anon'] / mb:6.1f} MB {bound:>17} {within:>7} "
            f"{r['on_disk']:>3} of {r['modules']:<3} {r['seconds']:6.1f}  {r['result']} {same}"
        )
    print(
        "layer: the largest decoder layer as it runs (its weights decoded to float32); "
        "logits: one window's, float32"
    )


if __name__ == "__main__":
    main()
