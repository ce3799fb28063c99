#!/usr/bin/env bash
# Prepare, on a CPU machine with network, what the GPU machine lacks, in git-ignored folders of one device call each
# (.device/c1, .device/c2, ...), and print the device calls to make (README "GPU"):
#   - ONNX Runtime's CUDA build for the machine's Python 3.12 (repacked and xz'd: 203 MB instead of 255.6 MB),
#   - this checkout as a wheel, rebuilt on every run (so run this again after changing the code),
#   - spaCy's tokenizer rules, dumped here: the machine has no spaCy, and training needs nothing else of it,
#   - the labelled IMDB reviews (train + test, no unsup; xz'd), the GloVe subset and UD EWT.
#
# Usage: bash scripts/gpu_carry.sh [IMDB_ARCHIVE] [GLOVE] [UD_EWT_DIR]
#   defaults: ../shared/data/imdb/aclImdb_v1.tar.gz, ../shared/data/glove/glove.6B.50d.imdb.txt.gz, ../shared/data/ud-ewt
# Repacked and compressed files are cached in .device/cache (the first run takes minutes: xz -9 on 350 MB).
set -euo pipefail
cd "$(dirname "$0")/.."
ORT_GPU=${ORT_GPU:-onnxruntime-gpu==1.31.1}
IMDB=${1:-../shared/data/imdb/aclImdb_v1.tar.gz}
GLOVE=${2:-../shared/data/glove/glove.6B.50d.imdb.txt.gz}
EWT=${3:-../shared/data/ud-ewt}
CACHE=.device/cache
for path in "$IMDB" "$GLOVE" "$EWT"; do [ -e "$path" ] || { echo "error: $path not found" >&2; exit 1; }; done
[ -x .venv/bin/python ] || bash scripts/setup-env.sh
PY=.venv/bin/python
mkdir -p "$CACHE/wheels" "$CACHE/project"

ORT_WHEEL=$(ls "$CACHE"/wheels/onnxruntime_gpu-"${ORT_GPU#*==}"-cp312-*.whl 2>/dev/null | head -1 || true)
if [ -z "$ORT_WHEEL" ]; then
  "$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d "$CACHE/wheels" "$ORT_GPU"
  ORT_WHEEL=$(ls "$CACHE"/wheels/onnxruntime_gpu-"${ORT_GPU#*==}"-cp312-*.whl | head -1)
fi
rm -f "$CACHE"/project/*.whl
"$PY" -m pip wheel --quiet --no-deps -w "$CACHE/project" .
"$PY" -c 'import sys; from lstm_onnx.runtime.tokenizer_rules import dump_spacy_rules as d, save_rules as s; s(d(), sys.argv[1])' \
  "$CACHE/tokenizer.json"

"$PY" scripts/gpu_carry.py prepare --out .device --cache "$CACHE" \
  --wheel-xz "$ORT_WHEEL" --imdb "$IMDB" --embeddings "$GLOVE" --tag-data "$EWT" --rules "$CACHE/tokenizer.json" \
  --wheel "$(ls "$CACHE"/project/lstm_onnx-*.whl)"
