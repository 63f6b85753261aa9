#!/usr/bin/env bash
# The recipe's published checkpoints: the recommended teacher (the 4 previous utterances as context) and its text
# student (with KD), trained with scripts/recipe.sh on every KEMDy19 utterance of the development set (Sessions 01-02:
# validation dialogues are drawn from them for the log and then trained on too, as in the recipe), KEMDy20 Session 01
# held out as a cross-corpus test, seed 1; then one Hub folder per model (push_to_hub.py --local_dir), whose model card
# shows the cross-corpus test and the recipe's held-out-session table (both KEMDy19 folds, every baseline).
#
# usage: bash scripts/publish_recipe.sh DATA_DIR OUTPUT_DIR HUB_DIR [more options of python -m multistill.tools.experiment]
# e.g.   bash ../shared/make_kemdy_dev.sh /tmp/kemdy_dev
#        bash scripts/publish_recipe.sh /tmp/kemdy_dev outputs/published hub
# writes HUB_DIR/multistill-kemdy-teacher and HUB_DIR/multistill-kemdy-text-student (new or empty folders); upload one
# with `python push_to_hub.py --model_dir OUTPUT_DIR/seed_1/teacher --repo_id me/multistill-kemdy-teacher`.
# HUB_OWNER (default your-username) names the owner in the cards' repo ids.
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: bash scripts/publish_recipe.sh DATA_DIR OUTPUT_DIR HUB_DIR [experiment options]" >&2
  exit 2
fi
DATA_DIR="$1"; OUTPUT_DIR="$2"; HUB_DIR="$3"; shift 3
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OWNER="${HUB_OWNER:-your-username}"
# the published models: Hub folder name -> run folder under OUTPUT_DIR
declare -A RUNS=([multistill-kemdy-teacher]=seed_1/teacher [multistill-kemdy-text-student]=seed_1/text_student_kd)
TABLES=(results/recipe_v9_students/fold1_test2_context4/results.json results/recipe_v9_students/fold2_test1_context4/results.json)
# 1. Check every argument before anything trains
if [ ! -d "$DATA_DIR/KEMDy19" ] || [ ! -d "$DATA_DIR/KEMDy20" ]; then
  echo "error: DATA_DIR $DATA_DIR must hold KEMDy19/ and KEMDy20/ (bash ../shared/make_kemdy_dev.sh DIR makes it)" >&2
  exit 2
fi
for name in "${!RUNS[@]}"; do
  if [ -n "$(ls -A "$HUB_DIR/$name" 2>/dev/null)" ]; then
    echo "error: HUB_DIR $HUB_DIR/$name is not empty (push_to_hub.py writes only into a new or empty folder)" >&2
    exit 2
  fi
done
for table in "${TABLES[@]}"; do
  [ -f "$ROOT/$table" ] || { echo "error: $table is missing from this checkout" >&2; exit 2; }
done
DATA_DIR="$(cd "$DATA_DIR" && pwd)"
mkdir -p "$OUTPUT_DIR" "$HUB_DIR"
OUTPUT_DIR="$(cd "$OUTPUT_DIR" && pwd)"; HUB_DIR="$(cd "$HUB_DIR" && pwd)"

# 2. Train the teacher and its text student (KD and no KD) on KEMDy19, test on KEMDy20 Session 01
bash "$ROOT/scripts/recipe.sh" "$DATA_DIR" "$OUTPUT_DIR" --corpus all --test_sessions KEMDy20:1 --seeds 1 \
    --context_size 4 --baseline_context_sizes 0 4 --students text_student "$@"

# 3. One Hub folder per model, each reloaded and checked to predict the same (push_to_hub.py --verify)
cd "$ROOT"
# shellcheck disable=SC1091
. scripts/setup.sh
for name in "${!RUNS[@]}"; do
  python push_to_hub.py --model_dir "$OUTPUT_DIR/${RUNS[$name]}" --repo_id "$OWNER/$name" --local_dir "$HUB_DIR/$name" \
      --session_results "${TABLES[@]}"
  echo "Hub folder: $HUB_DIR/$name"
done
