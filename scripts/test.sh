#!/usr/bin/env bash
# The test command: set up the environment from scratch if needed, then run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
.venv/bin/python -m pytest "$@"
