#!/usr/bin/env bash
# One device call of 2026-12-03: how much of the time to 93% a compiled step could save, with the compiler's cold
# build counted and without it. The 16-epoch fast schedule without the fused operator and cuDNN's trials (as
# gpu_1202d.sh), each run alone on the GPU:
#   eager  seed 0, eager, empty compiler caches (the recorded way; the reference of this call)
#   cold   seed 0, --compile, empty compiler caches (Inductor's and Triton's)
#   warm   seeds 0, 1, 2, --compile, with the caches the cold run filled (Dynamo still traces; Inductor's graphs and
#          Triton's kernels come from the cache)
#     bash book/runs/bench/gpu_1203.sh OUT [eager] [cold] [warm]
# Writes OUT/session.log (every command, its exit code and wall seconds) and OUT/NAME.json.
set -u
OUT=${1:?usage: gpu_1203.sh OUT [eager] [cold] [warm]}
shift
source "$(dirname "$0")/gpu_common.sh"
session_start gpu_1203
FAST=(python3 -m alexnet_lib train --preset fast_h200_b512 --epochs 16 --no-fused-pool --no-cudnn-benchmark
      --profile full)
CACHE=$(mktemp -d)  # the compiler caches the cold run fills and the warm runs read
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(eager cold warm)
for part in "${parts[@]}"; do
  case $part in
    eager) timed fast_eager_e16_seed0 90 "${FAST[@]}" --seed 0 --out "$OUT/fast_eager_e16_seed0.json" ;;
    cold) log "=== compiler caches: $CACHE"
          TORCHINDUCTOR_CACHE_DIR=$CACHE/inductor TRITON_CACHE_DIR=$CACHE/triton \
            timed_in_place fast_compile_cold_e16_seed0 150 "${FAST[@]}" --compile --seed 0 \
            --out "$OUT/fast_compile_cold_e16_seed0.json" ;;
    warm) for seed in 0 1 2; do
            TORCHINDUCTOR_CACHE_DIR=$CACHE/inductor TRITON_CACHE_DIR=$CACHE/triton \
              timed_in_place "fast_compile_warm_e16_seed$seed" 90 "${FAST[@]}" --compile --seed "$seed" \
              --out "$OUT/fast_compile_warm_e16_seed$seed.json"
          done ;;
    *) log "unknown part $part" ;;
  esac
done
