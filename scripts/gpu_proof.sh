#!/usr/bin/env bash
# The GPU proof kit in one command, run from the repository root on the GPU machine (README "GPU"):
#   1. join and verify what scripts/gpu_carry.sh sent (.device/c1, c2, ...), install its wheels into $DEST/site
#      without network (--no-index --no-deps) and put them first on PYTHONPATH, ahead of the machine's CPU-only
#      onnxruntime;
#   2. run python -m lstm_onnx.bench.gpu_proof (train, export, graphs, verify, parity, speed, end to end, tagger),
#      with NVIDIA_TF32_OVERRIDE=0 (strict fp32 in cuBLAS/cuDNN for parity and timing; training drops it);
#   3. copy the results and the logs into $OUT when it is set (the device tool brings back what is there).
#
# Usage: bash scripts/gpu_proof.sh [--check-carry | kit options]
#   --check-carry   only verify the carry folders that arrived so far (every call before the last one)
#   kit options     passed on, e.g. --device cpu --tiny (the CPU dry run) or --epochs 4; see
#                   python -m lstm_onnx.bench.gpu_proof --help. With a carry, --data, --embeddings,
#                   --tokenizer-rules and --tag-data default to its files.
# Environment: PYTHON (default python3), CARRY (default .device), DEST (default .device/joined), OUT.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
CARRY=${CARRY:-.device}
DEST=${DEST:-.device/joined}

if [ "${1:-}" = "--check-carry" ]; then
  command -v nvidia-smi >/dev/null && nvidia-smi -L || true
  exec "$PYTHON" scripts/gpu_carry.py check "$CARRY"
fi

ARGS=()
if ls "$CARRY"/c*/carry.json >/dev/null 2>&1; then
  echo "joining the carried files into $DEST" >&2
  rm -rf "$DEST"
  "$PYTHON" scripts/gpu_carry.py join "$CARRY" "$DEST" >&2
  "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --disable-pip-version-check \
    --target "$DEST/site" "$DEST"/wheels/*.whl
  # The installed wheels, not this checkout's folders, are what runs (python -m would put the checkout first).
  export PYTHONPATH="$PWD/$DEST/site${PYTHONPATH:+:$PYTHONPATH}" PYTHONSAFEPATH=1
  data=$DEST/data
  [ -e "$data/imdb-labelled.tar" ] && ARGS+=(--data "$data/imdb-labelled.tar")
  [ -e "$data/tokenizer.json" ] && ARGS+=(--tokenizer-rules "$data/tokenizer.json")
  [ -d "$data/tag" ] && ARGS+=(--tag-data "$data/tag")
  for vectors in "$data"/glove*; do [ -e "$vectors" ] && ARGS+=(--embeddings "$vectors"); done
fi
# ONNX Runtime's CUDA provider loads CUDA 13 and cuDNN 9 from the nvidia-* packages PyTorch installed; say where.
NVIDIA_LIBS=$("$PYTHON" -c 'import glob, os, sys
dirs = {os.path.dirname(p) for d in sys.path if d for p in glob.glob(os.path.join(d, "nvidia", "*", "lib", "*.so*"))}
print(":".join(sorted(dirs)))' 2>/dev/null || true)
[ -n "$NVIDIA_LIBS" ] && export LD_LIBRARY_PATH="$NVIDIA_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export NVIDIA_TF32_OVERRIDE=0 PYTHONUNBUFFERED=1
[ -n "${OUT:-}" ] && ARGS+=(--copy-to "$OUT")

set +e
if [ -n "${OUT:-}" ]; then
  "$PYTHON" -m lstm_onnx.bench.gpu_proof "${ARGS[@]}" "$@" 2>&1 | tee "$OUT/gpu-proof-console.log"
  status=${PIPESTATUS[0]}
else
  "$PYTHON" -m lstm_onnx.bench.gpu_proof "${ARGS[@]}" "$@"
  status=$?
fi
exit "$status"
