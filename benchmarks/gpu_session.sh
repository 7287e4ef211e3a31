#!/usr/bin/env bash
# The GPU measurements of the performance issue, for a session that is lent a GPU machine.
# `all` runs the three stages in turn in one device command of under 10 minutes (each stage has its own
# time limit, so a slow one still leaves the others' results); results go to $OUT (the device tool's
# folder) or benchmarks/results/gpu. The machine's own python3 (with CUDA torch) is used unless PYTHON is set.
#
#   bash benchmarks/gpu_session.sh tests      # CUDA tests: no host sync inside an update, compiled == eager
#   bash benchmarks/gpu_session.sh eager      # s/update at 1m, 12m, 200m, vector and image, bf16 and fp32
#   bash benchmarks/gpu_session.sh compiled   # 12m vector bf16, eager next to compile=update (CUDA graphs)
#   bash benchmarks/gpu_session.sh all        # the three, about 9 minutes at most
#
# A fresh device machine has an empty compile cache, so `compiled` includes the whole cold compile.
set -uo pipefail
stage=${1:?"usage: $0 tests|eager|compiled|all"}
python=${PYTHON:-python3}
out=${OUT:-benchmarks/results/gpu}
mkdir -p "$out"
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv >"$out/gpu.txt"

run_tests() {
    timeout 150 "$python" -m pytest -q -p no:cacheprovider agent/tests/test_fast_paths.py -k "cuda" 2>&1 |
        tee "$out/cuda_tests.txt"
}
run_eager() {
    timeout 150 "$python" benchmarks/train_step.py --device cuda --sizes 1m 12m 200m --obs vector image \
        --precision bfloat16 float32 --repeats 10 --warmup 2 \
        --json "$out/cuda_eager.json" --markdown "$out/cuda_eager.md"
}
run_compiled() {
    timeout 240 "$python" benchmarks/train_step.py --device cuda --sizes 12m --obs vector \
        --precision bfloat16 --compile off update --repeats 10 --warmup 2 \
        --json "$out/cuda_compiled.json" --markdown "$out/cuda_compiled.md"
}

case $stage in
tests) run_tests ;;
eager) run_eager ;;
compiled) run_compiled ;;
all)
    failed=0
    for name in tests eager compiled; do
        "run_$name" || { echo "stage $name failed or ran out of time (exit $?)"; failed=1; }
    done
    exit $failed
    ;;
*)
    echo "unknown stage $stage: tests, eager, compiled or all" >&2
    exit 2
    ;;
esac
