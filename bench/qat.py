"""numfmt's QAT beside PyTorch's own eager QAT (torch.ao.quantization), on the digits lesson.

    python bench/qat.py [--bits 8,4] [--device cpu|cuda] [--seeds 3] [--epochs 10]

The same float MLP (``numfmt.lessons``: 64-32-32-10 trained on scikit-learn's digits) is
fine-tuned with its weights fake-quantized per output channel, symmetric, int b, two ways:

* numfmt: ``prepare_qat(model, "int<b>/channel")``, trained, then ``convert`` (codes and scales)
  and scored as deployed; and with LSQ's learned scale (``learn_scale=True``);
* torch.ao: ``prepare_qat`` with a QConfig whose weight FakeQuantize has quant_min/quant_max
  -(2^(b-1)-1) .. 2^(b-1)-1, a per-channel symmetric moving-average observer and no
  activation quantization (weights only, as numfmt's), scored in eval mode (fake
  quantization on, observers frozen: what convert would compute).

Printed per bit width: test accuracy (mean over --seeds fine-tune seeds, and the spread),
and milliseconds per training step; the ratio numfmt/torch.ao of step times is measured in
the same run, on the same batches.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from numfmt.lessons.digits import accuracy, load_digits, mlp, train_mlp
from numfmt.nn.qat import convert, prepare_qat


def torch_ao_qat(model: nn.Module, bits: int) -> nn.Module:
    """The model prepared by torch.ao's eager QAT: weights fake-quantized per channel."""
    import copy

    import torch.ao.quantization as tq

    q = 2 ** (bits - 1) - 1
    weight = tq.FakeQuantize.with_args(
        observer=tq.MovingAveragePerChannelMinMaxObserver,
        quant_min=-q,
        quant_max=q,
        dtype=torch.qint8,
        qscheme=torch.per_channel_symmetric,
    )
    target = copy.deepcopy(model).train()
    target.qconfig = tq.QConfig(activation=nn.Identity, weight=weight)
    return tq.prepare_qat(target, inplace=False)


def run(net, data, bits, seed, epochs, lr, how):
    if how == "torch.ao":
        model = torch_ao_qat(net, bits)
    else:
        model = prepare_qat(net, f"int{bits}/channel", learn_scale=how == "numfmt lsq")
    steps = epochs * -(-len(data.y_train) // 64)
    sync = torch.cuda.synchronize if data.x_train.is_cuda else (lambda: None)
    sync()
    t0 = time.perf_counter()
    train_mlp(model, data, epochs=epochs, lr=lr, seed=seed)
    sync()
    ms = (time.perf_counter() - t0) / steps * 1e3
    deployed = model.eval() if how == "torch.ao" else convert(model)
    return accuracy(deployed, data), ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bits", default="8,4")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--lr", type=float, default=1e-3)
    args = parser.parse_args()
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device here")
    bits = [int(b) for b in args.bits.split(",")]
    data = load_digits(0, args.device)
    net = mlp(0).to(args.device)
    train_mlp(net, data, epochs=60, lr=3e-3, seed=0)
    base = accuracy(net, data)
    print(f"device {args.device}; torch {torch.__version__}; float accuracy {base:.2%}")
    print(f"QAT: {args.epochs} epochs, lr {args.lr}, {args.seeds} fine-tune seeds\n")
    head = ("bits", "method", "accuracy", "spread", "ms/step", "vs torch.ao")
    print("{:>4} {:<12} {:>9} {:>7} {:>8} {:>11}".format(*head))
    for b in bits:
        results = {}
        for how in ("torch.ao", "numfmt", "numfmt lsq"):
            accs, times = [], []
            for seed in range(1, args.seeds + 1):
                acc, ms = run(net, data, b, seed, args.epochs, args.lr, how)
                accs.append(acc)
                times.append(ms)
            results[how] = (statistics.mean(accs), max(accs) - min(accs), min(times))
        ref = results["torch.ao"][2]
        for how, (acc, spread, ms) in results.items():
            ratio = "" if how == "torch.ao" else f"{ms / ref:.2f}x"
            print(f"{b:>4} {how:<12} {acc:>9.2%} {spread:>7.2%} {ms:>8.2f} {ratio:>11}")


if __name__ == "__main__":
    main()
