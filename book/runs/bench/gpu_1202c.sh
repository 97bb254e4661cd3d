#!/usr/bin/env bash
# One device call of 2026-12-02 (afternoon), each run alone on the GPU, each with empty compiler caches:
#   fast  three seeds of the 14-epoch fast schedule stretched to 16 epochs, without the fused ReLU + max-pool (whose
#         cold Triton build cost ~7.4 s in h200_1202_first_epoch.json) and without cuDNN's algorithm trials
#   best  two candidates for the best accuracy, judged on the 5,000 held-out training images: weight decay 1e-3, and
#         Cutout (a 10x10 square of each 28x28 training image blanked, --erase 10)
#   erase_seeds, best_seeds  seeds 1 and 2 of Cutout's and of the plain best setting, two runs side by side
#     bash book/runs/bench/gpu_1202c.sh OUT [fast] [best] [erase_seeds] [best_seeds]
# Writes OUT/NAME.json (each run's history) and OUT/session.log (every command, its exit code and wall seconds).
set -u
OUT=${1:?usage: gpu_1202c.sh OUT [fast] [best] [erase_seeds] [best_seeds]}
shift
mkdir -p "$OUT"
export ALEXNET_CACHE=${ALEXNET_CACHE:-$(mktemp -d)} PYTHONUNBUFFERED=1
source "$(dirname "$0")/gpu_common.sh"
run() {  # NAME LIMIT_S ARGS...: one training run with cold caches (timed, gpu_common.sh)
  local name=$1 limit=$2
  shift 2
  timed "$name" "$limit" python -m alexnet_lib train "$@" --profile full --out "$OUT/$name.json"
}
log "gpu_1202c: $(date -u) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)"
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(fast best)
for part in "${parts[@]}"; do
  case $part in
    fast) for seed in 0 1 2; do
            run "fast_nofused_e16_seed$seed" 75 --preset fast_h200_b512 --epochs 16 --no-fused-pool \
              --no-cudnn-benchmark --seed "$seed"
          done ;;
    best) run best_wd1e3 290 --preset best --weight-decay 0.001
          run best_erase10 290 --preset best --erase 10 ;;
    # two more seeds of a best-accuracy setting, the two side by side on the GPU (their accuracy, not their time)
    erase_seeds) run best_erase10_seed1 560 --preset best --erase 10 --seed 1 &
                 run best_erase10_seed2 560 --preset best --erase 10 --seed 2 &
                 wait ;;
    best_seeds) run best_seed1 560 --preset best --seed 1 &
                run best_seed2 560 --preset best --seed 2 &
                wait ;;
    *) log "unknown part $part" ;;
  esac
done
