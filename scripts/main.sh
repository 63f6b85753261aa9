#!/usr/bin/env bash
# Main job: the paper's experiment on the embedded synthetic corpus with tiny offline backbones, over three
# seeds: per seed the teacher, the multimodal and the light student with and without distillation, and the
# simple baselines on the same split; ending with outputs/experiment/results.md (mean ± std over seeds, paired
# KD differences, provenance). Nothing is downloaded. To stay near 6 minutes on 2 CPU cores it trains 20 epochs,
# two runs at a time with one thread each, and leaves out the text-only and audio-only students
# (`--students text_student audio_student multimodal_student light_student` brings them back).
# Extra arguments go to `python -m multistill.tools.experiment` (see --help); later options win.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
python -c "
from multistill.training.data import load_kemdy
from multistill.training.splits import summarize
print(summarize(load_kemdy('synthetic', cache_dir='outputs/cache', synthetic_size=(8, 6))))
"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" python -m multistill.tools.experiment --output_dir outputs/experiment \
    --data_cache_dir outputs/cache --synthetic_sessions 8 --synthetic_utterances 6 \
    --seeds 1 2 3 --students multimodal_student light_student --num_train_epochs 20 --parallel 2 \
    --latency_utterances 10 "$@"
