#!/usr/bin/env bash
# One device call of 2026-12-02 (evening), after the training step stopped waiting for the GPU at every step (it made
# its image count with torch.tensor(n, device=...), a host-to-device copy that waits):
#   test   tests/test_gpu.py: no step of the eager, fused-pool and compiled loops waits for the GPU
#   bench  gpu_session.py kernels bench: the fused operator's check, then the bench (5 windows of 20 steps)
#   fast   three seeds of the 16-epoch fast schedule without the fused operator and cuDNN's trials (as gpu_1202c.sh),
#          each alone on the GPU with empty compiler caches
#     bash book/runs/bench/gpu_1202d.sh OUT [test] [bench] [fast]
# Writes OUT/session.log (every command, its exit code and wall seconds), OUT/s/ (gpu_session.py) and OUT/NAME.json.
set -u
OUT=${1:?usage: gpu_1202d.sh OUT [test] [bench] [fast]}
shift
mkdir -p "$OUT"
export ALEXNET_CACHE=${ALEXNET_CACHE:-$(mktemp -d)} PYTHONUNBUFFERED=1
source "$(dirname "$0")/gpu_common.sh"
log "gpu_1202d: $(date -u) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(test bench fast)
for part in "${parts[@]}"; do
  case $part in
    test) timed test_gpu 240 python3 -m pytest -v -p no:cacheprovider -o addopts= tests/test_gpu.py ;;
    bench) timed session 480 python3 book/runs/bench/gpu_session.py "$OUT/s" kernels bench ;;
    fast) for seed in 0 1 2; do
            timed "fast_nofused_e16_seed$seed" 75 python3 -m alexnet_lib train --preset fast_h200_b512 --epochs 16 \
              --no-fused-pool --no-cudnn-benchmark --seed "$seed" --profile full --out "$OUT/fast_nofused_e16_seed$seed.json"
          done ;;
    *) log "unknown part $part" ;;
  esac
done
