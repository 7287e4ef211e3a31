#!/usr/bin/env bash
# The GPU measurements of the performance issue, for a session that is lent a GPU machine.
# Each stage fits one 10-minute device command; results go to $OUT (the device tool's folder)
# or benchmarks/results/gpu. The machine's own python3 (with CUDA torch) is used unless PYTHON is set.
#
#   bash benchmarks/gpu_session.sh tests      # CUDA tests: no host sync inside an update, compiled == eager
#   bash benchmarks/gpu_session.sh eager      # s/update at 1m, 12m, 200m, vector and image, bf16 and fp32
#   bash benchmarks/gpu_session.sh compiled   # the same with compile=update (CUDA graphs), 12m and 200m
set -euo pipefail
stage=${1:?"usage: $0 tests|eager|compiled"}
python=${PYTHON:-python3}
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt"

case $stage in
tests)
    "$python" -m pytest -q -p no:cacheprovider agent/tests/test_fast_paths.py -k "cuda" 2>&1 | tee "$out/cuda_tests.txt"
    ;;
eager)
    "$python" benchmarks/train_step.py --device cuda --sizes 1m 12m 200m --obs vector image \
        --precision bfloat16 float32 --repeats 10 --warmup 2 \
        --json "$out/cuda_eager.json" --markdown "$out/cuda_eager.md"
    ;;
compiled)
    "$python" benchmarks/train_step.py --device cuda --sizes 12m 200m --obs vector image \
        --precision bfloat16 --compile update --repeats 10 --warmup 2 \
        --json "$out/cuda_compiled.json" --markdown "$out/cuda_compiled.md"
    ;;
*)
    echo "unknown stage $stage: tests, eager or compiled" >&2
    exit 2
    ;;
esac
