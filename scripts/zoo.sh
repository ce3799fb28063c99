#!/usr/bin/env bash
# Build the real-library model zoo's environment (.zoo-venv, git-ignored; the main .venv is never touched) and run the
# zoo harness: every zoo/models/*.py through lstm-onnx export-module and plain torch.onnx (TorchScript and dynamo),
# checked with ONNX Runtime against eager PyTorch on shapes the export never saw. Prints the Markdown table.
#
#   scripts/zoo.sh                        # install (idempotent) and run every model
#   scripts/zoo.sh --only pyannote_pyannet --json zoo.json   # arguments go to zoo/run.py
#   ZOO_SKIP_INSTALL=1 scripts/zoo.sh     # reuse .zoo-venv as it is
#   ZOO_INSTALL_ONLY=1 scripts/zoo.sh     # build .zoo-venv and stop
#
# Order matters: torch==2.13.0 first (the CPU build), then the project, then the libraries, all constrained to that
# torch so no library drags in another one.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.zoo-venv
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --quiet)

# The versions that worked together (torch 2.13.0 CPU, Python 3.11, December 2026).
LIBRARIES=(
  "pyannote.audio==4.0.7"
  "speechbrain==1.1.2"
  "flair==0.15.1"
  "torchaudio==2.11.1"
  # asteroid 0.7.0 pins torchmetrics<=0.11.4, which conflicts with pyannote.audio's and lightning's; it is installed
  # with --no-deps below, and these are what importing asteroid.models really needs (pb-bss-eval, torch-optimizer
  # and torch-stoi, its other requirements, serve only its metrics and training engine).
  "asteroid-filterbanks==0.4.0"
  "julius==0.2.8"
  "pytorch-lightning==2.6.6"
  "torchmetrics==1.9.0"
  "huggingface-hub==0.36.2"
  "pandas==3.1.2"
  "scipy==1.17.1"
  "soundfile==0.14.0"
  "pyyaml==6.0.4"
  "ruff==0.17.6"
)
ASTEROID="asteroid==0.7.0"

if [ -z "${ZOO_SKIP_INSTALL:-}" ]; then
  start=$SECONDS
  constraints=$(mktemp)
  trap 'rm -f "$constraints"' EXIT
  echo "torch==2.13.0" >"$constraints"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "${PIP[@]}" install --upgrade pip
  "${PIP[@]}" install "torch==2.13.0"
  "${PIP[@]}" install -c "$constraints" -e ".[export,cpu]"
  "${PIP[@]}" install -c "$constraints" "${LIBRARIES[@]}"
  "${PIP[@]}" install --no-deps "$ASTEROID"
  # torchaudio: PyPI's Linux wheels (2.11.1 is the newest) are CUDA builds whose native extension links
  # libc10_cuda.so/libtorch_cuda.so, absent from CPU torch, so `import torchaudio` fails with OSError. torchaudio's
  # own loader (torchaudio/_extension/utils.py, _load_lib) treats a *missing* extension file as "no extension" and
  # imports pure Python, so the CUDA-linked .so files are removed: torchaudio.models (Tacotron2, WaveRNN, DeepSpeech,
  # RNN-T), transforms and functional import and run; only the ops of the C++ extension (forced alignment, CTC
  # prefix decoder) are unavailable, and the zoo uses none.
  ta_dir=$("$VENV/bin/python" -c "import importlib.util, os; print(os.path.dirname(importlib.util.find_spec('torchaudio').origin))")
  rm -f "$ta_dir"/lib/*.so
  "$VENV/bin/python" -W ignore -c "import torchaudio.models, pyannote.audio, speechbrain, flair, asteroid.models"
  echo "zoo environment ready in $((SECONDS - start)) s" >&2
fi

[ -z "${ZOO_INSTALL_ONLY:-}" ] || exit 0
exec "$VENV/bin/python" zoo/run.py "$@"
