#!/usr/bin/env bash
# The main job, end to end on a fresh machine:
#   set up .venv → train the `cpu` preset on IMDB → export + verify parity → evaluate and predict torch-free.
#
# Usage: bash scripts/quickstart.sh [IMDB_PATH] [GLOVE_PATH]
#   IMDB_PATH   aclImdb_v1.tar.gz or an unpacked aclImdb/ directory. Default: ../shared/data/imdb/aclImdb_v1.tar.gz,
#               else data/aclImdb_v1.tar.gz, downloaded from the official address when absent.
#   GLOVE_PATH  GloVe text vectors (.txt or .txt.gz). Default: ../shared/data/glove/glove.6B.50d.imdb.txt.gz if present;
#               without vectors the model trains from scratch and scores about 2-3 points lower.
# Outputs: runs/cpu (trained run), bundles/sentiment-bilstm (fp32 bundle) and bundles/sentiment-bilstm-int8.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFICIAL_URL="https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"

IMDB=${1:-}
if [ -z "$IMDB" ]; then
  for candidate in ../shared/data/imdb/aclImdb_v1.tar.gz data/aclImdb_v1.tar.gz; do
    if [ -e "$candidate" ]; then IMDB=$candidate; break; fi
  done
fi
if [ -z "$IMDB" ]; then
  IMDB=data/aclImdb_v1.tar.gz
  echo "Downloading the IMDB archive (84 MB) from $OFFICIAL_URL ..." >&2
  mkdir -p data
  curl -fL --retry 3 -o "$IMDB.part" "$OFFICIAL_URL"
  mv "$IMDB.part" "$IMDB"
fi
[ -e "$IMDB" ] || { echo "error: IMDB data not found at $IMDB" >&2; exit 1; }

GLOVE=${2:-../shared/data/glove/glove.6B.50d.imdb.txt.gz}
EMB_ARGS=()
if [ -e "$GLOVE" ]; then EMB_ARGS=(--embeddings "$GLOVE"); else echo "warning: no GloVe vectors at $GLOVE; training embeddings from scratch" >&2; fi

bash scripts/setup-env.sh
BIN=.venv/bin

# The script owns runs/cpu: a rerun starts the run afresh (use `lstm-onnx train --resume` to continue one instead).
rm -rf runs/cpu
"$BIN/lstm-onnx" train "$IMDB" --preset cpu --out runs/cpu "${EMB_ARGS[@]}"
"$BIN/lstm-onnx" export runs/cpu --out bundles/sentiment-bilstm --data "$IMDB" --limit 2000 --quantize int8 --force
"$BIN/lstm-onnx" evaluate bundles/sentiment-bilstm "$IMDB" --split test --format table
"$BIN/lstm-onnx" predict bundles/sentiment-bilstm "A moving, beautifully acted film." "A dull, badly acted waste of two hours." --format table
