#!/usr/bin/env bash
# Record the course's full runs on a GPU, one JSON history per named experiment (alexnet_lib/experiments.py):
#   python -m alexnet_lib train --preset NAME --profile full --out OUTDIR/NAME.json
# Usage: book/runs/record.sh OUTDIR [NAME ...]   (default: every experiment without a JSON in book/runs yet)
# Starts no new run once BUDGET seconds (default 500) have passed, so it fits one device call.
set -u
out=${1:?usage: record.sh OUTDIR [NAME ...]}; shift
cd "$(dirname "$0")/../.."
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  mapfile -t names < <(python -c "from alexnet_lib.experiments import EXPERIMENTS; print('\n'.join(EXPERIMENTS))")
fi
start=$SECONDS
for name in "${names[@]}"; do
  [ -f "book/runs/$name.json" ] && { echo "skip $name (recorded)"; continue; }
  if (( SECONDS - start > ${BUDGET:-500} )); then echo "budget spent: not started $name"; continue; fi
  mkdir -p "$out/$(dirname "$name")"
  echo "=== $name"
  extra=()
  [ "$name" = zoo/d2l_alexnet ] && extra=(--checkpoint /tmp/zoo_d2l.pt)
  python -m alexnet_lib train --preset "$name" --profile full --out "$out/$name.json" "${extra[@]}" || echo "FAILED $name"
  if [ "$name" = zoo/d2l_alexnet ] && [ -f /tmp/zoo_d2l.pt ]; then  # keep the trained conv1 filters (fp16, 23 KB)
    python -c "import torch; m = torch.load('/tmp/zoo_d2l.pt', weights_only=True)['model']; torch.save({k: v.half() for k, v in m.items() if k.startswith('features.0.')}, '$out/zoo/d2l_alexnet_conv1.pt')"
  fi
done
