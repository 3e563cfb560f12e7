#!/usr/bin/env bash
# The CUDA checks of a session that is lent a device machine, as one script:
#   bash bench/cuda_checks.sh OUTDIR [quant|models|all]
# It runs the tests that skip without a GPU, then the benchmarks with --device cuda, writing
# each log into OUTDIR. "quant" (the default) runs the quantization engine's kernels, tests
# and benchmarks (about 4 minutes); "models" the quantized layers' (the packed product on
# CUDA, W8A8, generation; about 5 minutes): each fits one call of the device tool. "all"
# runs both, then arithmetic, GPTQ and the matmul models.
# Python packages missing on that machine travel as wheels in .whl/ (see the device notes);
# numfmt itself runs from this checkout.
set -u
out=${1:-out}
what=${2:-quant}
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:${PYTHONPATH:-}
fi
export PYTHONPATH=$PWD:${PYTHONPATH:-} PYTHONUNBUFFERED=1 MPLBACKEND=Agg
nvidia-smi -L | tee "$out/device.txt"
python3 -c "import torch, numpy, numba, triton; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'numba', numba.__version__, 'triton', triton.__version__)" | tee -a "$out/device.txt"
if [ "$what" = quant ] || [ "$what" = all ]; then
  # the fused quantization kernels against the host's results, then their speed
  timeout 200 python3 -m pytest -p no:cacheprovider -q -o addopts="" -W ignore::DeprecationWarning \
    tests/quant/test_gpu.py tests/quant/test_ste.py 2>&1 | tail -25 | tee "$out/cuda_tests_quant.txt"
  # the engine's tests with a CUDA variant (the public API on CUDA tensors)
  timeout 150 python3 -m pytest -p no:cacheprovider -q -o addopts="" -W ignore::DeprecationWarning \
    tests/quant -k cuda --deselect tests/quant/test_gpu.py 2>&1 | tail -15 | tee -a "$out/cuda_tests_quant.txt"
  timeout 150 python3 bench/quant.py --device cuda 2>&1 | tee "$out/bench_quant_cuda.txt"
  timeout 100 python3 bench/qat.py --device cuda --seeds 3 2>&1 | grep -v -i "deprecat\|migrat\|torchao\|pt2e\|^[0-9]\. \|prepare_qat\|issues/2259" | tee "$out/bench_qat_cuda.txt"
fi
if [ "$what" = models ] || [ "$what" = all ]; then
  # quantized layers on CUDA: the packed product, W8A8's integer matmul, QAT's layers
  timeout 200 python3 -m pytest -p no:cacheprovider -q -o addopts="" -W ignore::DeprecationWarning \
    tests/nn/test_packed_gpu.py 2>&1 | tail -15 | tee "$out/cuda_tests_models.txt"
  timeout 120 python3 -m pytest -p no:cacheprovider -q -o addopts="" -W ignore::DeprecationWarning \
    tests/nn/test_packed_integer.py tests/nn/test_qat.py tests/lessons/test_integer_mlp.py -k cuda 2>&1 | tail -15 | tee -a "$out/cuda_tests_models.txt"
  timeout 60 python3 bench/packed_layer.py --device cuda --calls 1000 2>&1 | tee "$out/bench_packed_layer_cuda.txt"
  # a SmolLM2-shaped model with random weights (the GGUF is too large to travel): what quantized
  # layers cost per generated token on CUDA, beside the float model
  timeout 150 python3 bench/generation.py --model smollm2-shaped --device cuda \
    --recipes int8/channel,int4/group:128,w8a8-token --tokens 32 2>&1 | grep -v -i "warn\|pytree\|torchao" | tee "$out/bench_generation_cuda.txt"
fi
[ "$what" = all ] || exit 0
timeout 240 python3 -m pytest -p no:cacheprovider -q -o addopts="" -W ignore::DeprecationWarning \
  tests/arith tests/nn/algorithms/test_gptq.py -k cuda 2>&1 | tail -25 | tee -a "$out/cuda_tests.txt"
timeout 240 python3 bench/arith.py --device cuda --repeat 3 2>&1 | tee "$out/bench_arith_cuda.txt"
timeout 240 python3 bench/gptq_speed.py --device cuda 2>&1 | tee "$out/bench_gptq_cuda.txt"
timeout 300 python3 bench/matmul.py --device cuda --repeat 2 --models hopper-fp8,hopper-fp8-promote128,fp32 2>&1 | tee "$out/bench_matmul_cuda.txt"
timeout 420 python3 bench/matmul_model.py --device cuda --tokens 1024 --models hopper-fp8,hopper-fp8-promote128,fp8-fp32 2>&1 | grep -v -i "torchao\|pytree" | tee "$out/bench_matmul_model_cuda.txt"
