# Sourced by the gpu_*.sh session scripts (OUT set, the repository root the current folder): a log and a timer.
log() { echo "$*" | tee -a "$OUT/session.log"; }
timed() {  # NAME LIMIT_S CMD...: one command with empty compiler caches, its output into OUT/session.log
  local name=$1 limit=$2 start rc
  shift 2
  log "=== $name: $* (limit $limit s)"
  start=$(date +%s.%N)
  TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) TRITON_CACHE_DIR=$(mktemp -d) timeout "$limit" "$@" >> "$OUT/session.log" 2>&1
  rc=$?
  log "=== $name: rc $rc, $(python3 -c "import time; print(f'{time.time() - $start:.1f}')") s"
}
timed_in_place() {  # NAME LIMIT_S CMD...: as timed, with the compiler caches the caller set (to fill or to reuse)
  local name=$1 limit=$2 start rc
  shift 2
  log "=== $name: $* (limit $limit s; TORCHINDUCTOR_CACHE_DIR=${TORCHINDUCTOR_CACHE_DIR:-unset})"
  start=$(date +%s.%N)
  timeout "$limit" "$@" >> "$OUT/session.log" 2>&1
  rc=$?
  log "=== $name: rc $rc, $(python3 -c "import time; print(f'{time.time() - $start:.1f}')") s"
}
session_start() {  # NAME: OUT created, the environment of a session, and its first log line
  mkdir -p "$OUT"
  export ALEXNET_CACHE=${ALEXNET_CACHE:-$(mktemp -d)} PYTHONUNBUFFERED=1
  if [ -d .fmnist ]; then  # the data carried to the GPU
    export ALEXNET_FASHION_MNIST=${ALEXNET_FASHION_MNIST:-$PWD/.fmnist}
  fi
  log "$1: $(date -u) $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null)"
}
