"""README block of which Whisper layers the recipe's teacher reads (``--audio_layer_mix``): the searches
(scripts/validation_search.py) on validation dialogues of each KEMDy19 fold's training session and on whole KEMDy19
sessions (each trained on the other: the choice for sessions outside the development set), then the teacher trained
with each setting on every training row of each fold (seeds 1-3, one commit and machine) beside TF-IDF."""

from __future__ import annotations

from typing import Any

from readme_audio_weight import option_search_table
from readme_lib import from_file, table
from readme_recipe import (
    CROSS_CORPUS,
    RECIPE_FOLDS,
    _macro,
    _paired,
    _row,
    _seed_values,
    _ua,
    _versus,
    check_run_made_with,
    last_option,
    session_title,
)

from multistill.configuration_multistill import AUDIO_LAYER_CHOICES

LAYER_MIX_ROOT = "results/audio_layer_mix"
#: The settings of ``--audio_layer_mix`` (the recipe's, the config's default, first).
LAYER_MIXES = AUDIO_LAYER_CHOICES
#: Each fold's search on validation dialogues of its training session, and the search on whole KEMDy19 sessions.
LAYER_MIX_SEARCH = {**{fold: f"{LAYER_MIX_ROOT}/{fold}.json" for fold, _ in RECIPE_FOLDS},
                    "sessions": f"{LAYER_MIX_ROOT}/sessions_test_kemdy20.json"}
#: The teacher with each setting on each fold, every training row, seeds 1-3 (one commit, one machine).
LAYER_MIX_RUNS = {(fold, mix): f"{LAYER_MIX_ROOT}/{fold}_{mix}/results.json" for fold, _ in RECIPE_FOLDS
                  for mix in LAYER_MIXES}
#: The recipe trained on both KEMDy19 sessions with the whole-session search's choice, tested on KEMDy20.
LAYER_MIX_SESSIONS_TEST = f"{LAYER_MIX_ROOT}/sessions_test_kemdy20_chosen/results.json"
TFIDF = "baseline_text_tfidf"


def audio_layer_mix_files() -> tuple[str, ...]:
    return (*LAYER_MIX_SEARCH.values(), *LAYER_MIX_RUNS.values(), LAYER_MIX_SESSIONS_TEST, CROSS_CORPUS[0])


def check_layer_mix_run(run: dict[str, Any], source: str, mix: str, test_sessions: str) -> None:
    """Refuse a run whose command does not set ``mix`` (the recipe's ``weighted``: set or left out) and the fold's
    test session."""
    given = last_option(run["provenance"]["command"], "audio_layer_mix") or LAYER_MIXES[0]
    if given != mix or last_option(run["provenance"]["command"], "test_sessions") != test_sessions:
        raise ValueError(f"{source}: not a run of --audio_layer_mix {mix} tested on session {test_sessions}.")
    if _row(run, "teacher") is None:
        raise ValueError(f"{source}: no teacher run.")


def render_audio_layer_mix(files: dict[str, Any]) -> str:
    """Validation macro-F1 of each setting per search (the choice in bold); each setting on each fold's test session;
    what the whole-session choice scores on KEMDy20."""
    searches = {name: files[source] for name, source in LAYER_MIX_SEARCH.items()}
    columns = {fold: f"validation macro-F1, {title.split(' -> ')[0].removeprefix('train ')}'s dialogues (mean ± std "
                     f"over {len(searches[fold]['settings']['split_seeds'])} draws)" for fold, title in RECIPE_FOLDS}
    sessions = list(searches["sessions"]["points"][0]["draws"])
    columns["sessions"] = (f"validation macro-F1, whole sessions: {' and '.join(session_title(s) for s in sessions)}, "
                           f"each trained on the other (mean ± std over {len(sessions)} sessions)")
    lines = [option_search_table("audio_layer_mix", searches, LAYER_MIX_SEARCH, columns), ""]
    header = ["test session (KEMDy19, macro-F1, seeds 1-3)", "teacher, weighted (the recipe)", "teacher, last",
              "last − weighted (seeds ahead)", "TF-IDF", "teacher − TF-IDF, weighted", "teacher − TF-IDF, last"]
    rows = []
    for fold, title in RECIPE_FOLDS:
        test = searches[fold]["settings"]["test_sessions"]
        runs = {mix: files[LAYER_MIX_RUNS[fold, mix]] for mix in LAYER_MIXES}
        for mix, run in runs.items():
            check_layer_mix_run(run, LAYER_MIX_RUNS[fold, mix], mix, test)
        rows.append([title, _macro(runs["weighted"], "teacher"), _macro(runs["last"], "teacher"),
                     _paired(_seed_values(runs["last"], "teacher"), _seed_values(runs["weighted"], "teacher")),
                     _macro(runs["weighted"], TFIDF), _versus(runs["weighted"], TFIDF), _versus(runs["last"], TFIDF)])
    lines += [table(header, rows), "", sessions_sentence(files, searches["sessions"]), ""]
    lines += [from_file(files[source], source) for source in (*LAYER_MIX_SEARCH.values(), *LAYER_MIX_RUNS.values(),
                                                              LAYER_MIX_SESSIONS_TEST)]
    return "\n".join(lines)


def sessions_sentence(files: dict[str, Any], search: dict[str, Any]) -> str:
    """What the whole-session search chose, and the recipe trained with it on both sessions, tested on KEMDy20."""
    chosen, test = search["chosen_point"]["audio_layer_mix"], search["settings"]["test_sessions"]
    tested = files[LAYER_MIX_SESSIONS_TEST]
    check_run_made_with({**search["chosen_point"], "test_sessions": test}, tested, LAYER_MIX_SESSIONS_TEST,
                        LAYER_MIX_SEARCH["sessions"])
    own = "the recipe's own setting, which" if chosen == LAYER_MIXES[0] else "against the recipe's `weighted`, which"
    return (f"Validation on whole sessions chose `{chosen}`. The recipe trained with it on both KEMDy19 sessions scores "
            f"UA {_ua(tested, 'teacher')} on {session_title(test)} (macro-F1 {_macro(tested, 'teacher')}; seeds 1-3; "
            f"{own} scores UA {_ua(files[CROSS_CORPUS[0]], 'teacher')} in the [cross-corpus table]"
            "(#a-conversation-that-does-not-re-act-the-training-scripts-kemdy20-session-01)) and, on the same rows, "
            f"TF-IDF UA {_ua(tested, TFIDF)}, Whisper-LR UA {_ua(tested, 'baseline_audio_whisper')}, their late "
            f"fusion UA {_ua(tested, 'baseline_late_fusion')}.")
