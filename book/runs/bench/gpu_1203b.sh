#!/usr/bin/env bash
# One device call of 2026-12-03 (afternoon): where the seconds outside a run go, and what a smaller input side buys.
#   startup  each of these three times, alone: Python itself; `import torch`; torch with a CUDA context; the
#            library's training module (`import alexnet_lib.experiments`: torch, torchvision, the data and models)
#   sides    the 16-epoch fast schedule (as gpu_1203.sh's eager run: no fused operator, no cuDNN trials) at input
#            sides 112, 128 and 160 instead of 224 -- the same layers; the first dense layer then takes 256x2x2,
#            256x2x2 and 256x3x3 features instead of 256x5x5 -- trained on 55,000 images and judged on the 5,000
#            held out (--val 5000; the test set is evaluated once, at the end), each run alone on the GPU
#     bash book/runs/bench/gpu_1203b.sh OUT [startup] [sides]
# Writes OUT/session.log (every command, its exit code and wall seconds) and OUT/NAME.json.
set -u
OUT=${1:?usage: gpu_1203b.sh OUT [startup] [sides]}
shift
source "$(dirname "$0")/gpu_common.sh"
session_start gpu_1203b
FAST=(python3 -m alexnet_lib train --preset fast_h200_b512 --epochs 16 --no-fused-pool --no-cudnn-benchmark
      --profile full --val 5000 --seed 0)
parts=("$@")
[ ${#parts[@]} -gt 0 ] || parts=(startup sides)
for part in "${parts[@]}"; do
  case $part in
    startup) for k in 1 2 3; do
               timed "python_$k" 60 python3 -c pass
               timed "import_torch_$k" 60 python3 -c "import torch"
               timed "torch_cuda_$k" 60 python3 -c "import torch; torch.zeros(1, device='cuda'); torch.cuda.synchronize()"
               timed "import_experiments_$k" 60 python3 -c "import alexnet_lib.experiments"
             done ;;
    sides) for side in 112 128 160; do
             timed "fast_side${side}_e16_val" 120 "${FAST[@]}" --image-size "$side" --out "$OUT/fast_side${side}_e16_val.json"
           done ;;
    *) log "unknown part $part" ;;
  esac
done
