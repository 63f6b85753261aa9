#!/usr/bin/env bash
# Run the test suite (sets up .venv first; idempotent). Extra arguments go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
ruff check .
python -m pytest "$@"
