#!/usr/bin/env bash
# Create .venv (if needed) and install lstm-onnx with everything training, export and tests need.
# torch==2.13.0 is installed first so the CPU build is used where no GPU build is wanted.
# EXTRAS picks the extras. The default is what the test command needs so that no test of the suite skips for a missing
# package: dev (cpu + export + test tools), ray (the Ray Data / Ray Serve tests run on a local cluster) and openvino
# (the second engine of the parity tests). E.g. EXTRAS=gpu,export on a CUDA machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
EXTRAS=${EXTRAS:-dev,ray,openvino}
PIP=(.venv/bin/python -m pip --disable-pip-version-check)
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
"${PIP[@]}" install --quiet --upgrade pip
"${PIP[@]}" install --quiet "torch==2.13.0"
# onnxruntime and onnxruntime-gpu share one import name: an env made for the other build must lose it first.
case ",$EXTRAS," in
  *,gpu,*) unwanted=onnxruntime ;;
  *) unwanted=onnxruntime-gpu ;;
esac
if "${PIP[@]}" show --quiet "$unwanted" >/dev/null 2>&1; then "${PIP[@]}" uninstall --quiet --yes "$unwanted"; fi
"${PIP[@]}" install --quiet -e ".[$EXTRAS]"
