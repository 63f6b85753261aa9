#!/usr/bin/env bash
# Main job on the embedded synthetic corpus: build it in ETRI's layout and summarise the dataset.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
python -c "
from multistill.data import load_kemdy
from multistill.splits import summarize
print(summarize(load_kemdy('synthetic', cache_dir='outputs/cache')))
"
