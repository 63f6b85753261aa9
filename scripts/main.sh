#!/usr/bin/env bash
# Main job: the paper's experiment on the embedded synthetic corpus with tiny offline backbones
# (teacher -> text/audio/multimodal students with and without distillation -> light student),
# ending with the results table in outputs/experiment/results.md. Nothing is downloaded.
# Extra arguments go to `python -m multistill.experiment` (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
python -c "
from multistill.data import load_kemdy
from multistill.splits import summarize
print(summarize(load_kemdy('synthetic', cache_dir='outputs/cache', synthetic_size=(8, 6))))
"
python -m multistill.experiment --output_dir outputs/experiment --data_cache_dir outputs/cache \
    --synthetic_sessions 8 --synthetic_utterances 6 "$@"
