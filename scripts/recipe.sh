#!/usr/bin/env bash
# The recommended recipe on a KEMDy folder: the teacher (Whisper base at the utterance's length, frozen, every
# layer's statistics mixed by learnt weights + the character n-gram text encoder learnt from the transcripts,
# concatenation fusion and a linear classifier without dropout, class-weighted loss on the majority emotion, every
# training row kept, trained full batch for 600 steps at a constant learning rate decayed to zero over the last 100
# (warmup_stable_decay: the last step's model is a settled one), unclipped, towards the
# L2-penalised optimum with the baselines' penalty (--l2_penalty 1: logistic regression's C=1), on every row of the
# training sessions, validation dialogues included (--refit_epochs all: a noisy validation score would stop it
# early)) and its multimodal student with and without KD, over 3 seeds,
# next to the baselines on the same rows (majority, TF-IDF, acoustic statistics, Whisper-LR, late fusion).
#
# usage: bash scripts/recipe.sh DATA_DIR OUTPUT_DIR --test_sessions N [more options of python -m multistill.tools.experiment]
# e.g.   bash scripts/recipe.sh /data/KEMDy outputs/recipe_fold1 --test_sessions 2
#        bash scripts/recipe.sh /data/KEMDy outputs/recipe_fold1_context4 --test_sessions 2 --context_size 4 \
#            --baseline_context_sizes 0 4
# Later options win. Whisper base is converted once from the registry packages into ~/.cache/multistill.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: bash scripts/recipe.sh DATA_DIR OUTPUT_DIR --test_sessions N [experiment options]" >&2
  exit 2
fi
DATA_DIR="$1"; OUTPUT_DIR="$2"; shift 2
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
WHISPER="$(python -c 'from multistill.tools.whisper_base import transformers_folder; print(transformers_folder())')"
OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}" python -m multistill.tools.experiment --output_dir "$OUTPUT_DIR" \
    --corpus kemdy19 --data_dir "$DATA_DIR" --split session --validation_from dialogues --validation_fraction 0.2 \
    --audio_encoder "$WHISPER" --text_encoder ngram --fusion_type concat --fusion_size linear \
    --class_weighting balanced --balance_max_fraction 0 --refit_on_validation true \
    --training_targets majority --l2_penalty 1 --refit_epochs all --num_train_epochs 600 --learning_rate 1e-2 --batch_size 1024 --logging_steps 50 \
    --lr_scheduler_type warmup_stable_decay --lr_scheduler_kwargs '{"num_decay_steps": 100}' --max_grad_norm 0 \
    --students multimodal_student --seeds 1 2 3 \
    --parallel 2 --no_caching_gain --latency_utterances 10 --save_total_limit 1 --threads 1 \
    --data_cache_dir outputs/cache_recipe "$@"
