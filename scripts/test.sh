#!/usr/bin/env bash
# Run the test suite (sets up .venv first; idempotent). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
ruff check .
# tests/test_hub_user.py: the published folder in a bare torch + transformers venv (about 80 s the first time)
MULTISTILL_HUB_USER_PYTHON="$(bash scripts/hub_user_venv.sh)"
export MULTISTILL_HUB_USER_PYTHON
python -m pytest "$@"
