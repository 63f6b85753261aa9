"""README block of the teacher's audio weight (``--audio_weight``) chosen on validation dialogues: the searches
(scripts/validation_search.py) of the two KEMDy19 folds and of the KEMDy20 test, and what each choice scores on
its test session next to the recipe's own teacher (audio weight 1) and the baselines on the same rows."""

from __future__ import annotations

from typing import Any

from readme_lib import from_file, pm, table
from readme_recipe import (
    CROSS_CORPUS,
    RECIPE_FOLDS,
    _macro,
    _row,
    _teacher_versus,
    _ua,
    check_run_made_with,
    option_label,
    recipe_file,
    session_title,
)

#: Search name -> (its title, the recipe's own run on the same rows: audio weight 1, no context).
AUDIO_WEIGHT_SETUPS: dict[str, tuple[str, str]] = {
    **{fold: (title, recipe_file(fold)) for fold, title in RECIPE_FOLDS},
    "kemdy20": ("train KEMDy19 Sessions 01-02 -> test KEMDy20 Session 01", CROSS_CORPUS[0]),
}
#: Each setup's grid search of ``--audio_weight`` on validation dialogues of its training sessions.
AUDIO_WEIGHT_SEARCH = {name: f"results/audio_weight/{name}.json" for name in AUDIO_WEIGHT_SETUPS}
#: Each setup's recipe trained on every training row with the weight its search chose (seeds 1-3).
AUDIO_WEIGHT_CHOSEN = {name: f"results/audio_weight/{name}_chosen/results.json" for name in AUDIO_WEIGHT_SETUPS}
#: Baselines named in each setup's sentence: TF-IDF always, the audio-reading ones where UA is read (KEMDy20).
BASELINES = (("TF-IDF", "baseline_text_tfidf"), ("Whisper-LR", "baseline_audio_whisper"),
             ("their late fusion", "baseline_late_fusion"))


def audio_weight_files() -> tuple[str, ...]:
    return (*AUDIO_WEIGHT_SEARCH.values(), *AUDIO_WEIGHT_CHOSEN.values(),
            *dict.fromkeys(own for _, own in AUDIO_WEIGHT_SETUPS.values()))


def training_label(name: str) -> str:
    """The sessions whose dialogues a setup's search validated on: the training side of its title."""
    return AUDIO_WEIGHT_SETUPS[name][0].split(" -> ")[0].removeprefix("train ")


def _versus(tested: dict[str, Any], baseline: str, metric: str) -> str:
    difference = _teacher_versus(tested, baseline)["differences"][metric]
    return f"{pm(difference, digits=1, signed=True)}, ahead in {difference['ahead']} of {difference['n']} seeds"


def chosen_sentence(name: str, search: dict[str, Any], tested: dict[str, Any], own: dict[str, Any]) -> str:
    """What the weight a search chose scores on its test session, next to the recipe's weight 1 and baselines."""
    title, _ = AUDIO_WEIGHT_SETUPS[name]
    weight = search["chosen_point"]["audio_weight"]
    if name == "kemdy20":
        test = session_title(search["settings"]["test_sessions"])
        scores = (f"UA {_ua(tested, 'teacher')} on {test} (macro-F1 {_macro(tested, 'teacher')}), against UA "
                  f"{_ua(own, 'teacher')} for the recipe's weight 1 and, on the same rows, "
                  + ", ".join(f"{label} UA {_ua(tested, base)} (teacher − it {_versus(tested, base, 'unweighted_accuracy')})"
                              for label, base in BASELINES))
    else:
        scores = (f"macro-F1 {_macro(tested, 'teacher')} on the test session, against {_macro(own, 'teacher')} for the "
                  f"recipe's weight 1 and {_macro(tested, BASELINES[0][1])} for TF-IDF on the same rows (teacher − "
                  f"TF-IDF {_versus(tested, BASELINES[0][1], 'macro_f1')})")
    return f"* {title}: validation chose audio weight {weight}; trained with it on every training row (seeds 1-3): {scores}."


def option_search_table(option: str, searches: dict[str, dict[str, Any]], sources: dict[str, str],
                        columns: dict[str, str]) -> str:
    """One row per value of OPTION, one column per search (``columns[name]`` its header): the mean ± std
    validation macro-F1 of each value, the search's choice in bold. The searches must share their grid."""
    first = next(iter(searches.values()))
    rows = []
    for index, row in enumerate(first["points"]):
        cells = [row["point"][option]]
        for name, search in searches.items():
            scored = search["points"][index]
            if scored["point"] != row["point"]:
                raise ValueError(f"{sources[name]}: its grid differs from the others'.")
            bold = "**" if search["chosen"] == index else ""
            cells.append(f"{bold}{scored['macro_f1_mean']:.1f} ± {scored['macro_f1_std']:.1f}{bold}")
        rows.append(cells)
    return table([option_label(option), *(columns[name] for name in searches)], rows)


def render_audio_weight(files: dict[str, Any]) -> str:
    """Validation macro-F1 of every audio weight per setup (the choice in bold), then each choice on its test."""
    searches = {name: files[source] for name, source in AUDIO_WEIGHT_SEARCH.items()}
    columns = {name: f"validation macro-F1, {training_label(name)}'s dialogues (mean ± std over "
                     f"{len(search['settings']['split_seeds'])} draws)" for name, search in searches.items()}
    lines = [option_search_table("audio_weight", searches, AUDIO_WEIGHT_SEARCH, columns), ""]
    for name, search in searches.items():
        tested = files[AUDIO_WEIGHT_CHOSEN[name]]
        check_run_made_with({**search["chosen_point"], "test_sessions": search["settings"]["test_sessions"]}, tested,
                            AUDIO_WEIGHT_CHOSEN[name], AUDIO_WEIGHT_SEARCH[name])
        if _row(tested, "teacher") is None:
            raise ValueError(f"{AUDIO_WEIGHT_CHOSEN[name]}: no teacher run.")
        lines.append(chosen_sentence(name, search, tested, files[AUDIO_WEIGHT_SETUPS[name][1]]))
    lines.append("")
    lines += [from_file(files[source], source) for source in (*AUDIO_WEIGHT_SEARCH.values(),
                                                              *AUDIO_WEIGHT_CHOSEN.values())]
    return "\n".join(lines)
