#!/usr/bin/env bash
# A bare virtual environment with only what a Hub user installs (the model card's install line, at the versions
# the project tests): CPU torch 2.13.0 + transformers 5.25.0 and their own dependencies; no multistill, soundfile,
# torchcodec, scipy or librosa. Idempotent (reused while this file is unchanged). Prints its python.
# tests/test_hub_user.py runs the published folder's code in it (scripts/test.sh sets MULTISTILL_HUB_USER_PYTHON).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${MULTISTILL_HUB_USER_VENV:-$ROOT/.venv-hub-user}"
SPEC=(torch==2.13.0 transformers==5.25.0)
STAMP="$VENV/.hub-user-installed"
_log() { echo "[hub-user venv] $*" >&2; }
if [ ! -f "$STAMP" ] || [ "${BASH_SOURCE[0]}" -nt "$STAMP" ]; then
  _log "creating $VENV with ${SPEC[*]} only"
  rm -rf "$VENV"
  "${PYTHON:-python3}" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q "${SPEC[@]}" 2>&1 | grep -v "is ignored" >&2 || true
  "$VENV/bin/python" -c "import torch, transformers" || { _log "ERROR: installing ${SPEC[*]} failed"; exit 1; }
  touch "$STAMP"
fi
echo "$VENV/bin/python"
