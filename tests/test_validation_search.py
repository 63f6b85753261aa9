"""scripts/validation_search.py: every grid point on every validation draw, the choice by validation alone."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import validation_search  # noqa: E402

#: Validation macro-F1 of the fake runs by (l2_penalty, split_seed): 2 is best on average, 0.5 best on draw 1.
SCORES = {("0.5", "1"): 0.50, ("0.5", "2"): 0.20, ("1", "1"): 0.30, ("1", "2"): 0.30, ("2", "1"): 0.40,
          ("2", "2"): 0.36}


def _option(command: list[str], name: str) -> str:
    """The last value of --NAME in a command line (the one argparse keeps)."""
    return command[len(command) - 1 - command[::-1].index(f"--{name}") + 1]


def _fake_run(commands: list[list[str]]):
    """A stand-in for the recipe: a finished experiment folder whose validation score SCORES gives."""

    def run(command: list[str], folder: Path) -> None:
        commands.append(command)
        draw = "validation_sessions" if "--validation_sessions" in command else "split_seed"
        score = SCORES[(_option(command, "l2_penalty"), _option(command, draw))]
        run_dir = folder / "seed_1" / "teacher"
        run_dir.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps({
            "provenance": {"command": " ".join(command), "git_commit": "abc"},
            "splits": {"1": {"validation_examples": 120}}}))
        history = [{"eval_macro_f1": score - 0.1, "eval_unweighted_accuracy": 0.3, "step": 300},
                   {"eval_macro_f1": score, "eval_unweighted_accuracy": 0.4, "step": 600}]
        (run_dir / "trainer_state.json").write_text(json.dumps({"log_history": history}))

    return run


def _argv(tmp_path: Path, grid: str, *more: str, layout: bool = True) -> list[str]:
    for folder in ("annotation", "wav") if layout else ():  # the corpus's layout, which the recipe's parser checks
        (tmp_path / "KEMDy19" / folder).mkdir(parents=True, exist_ok=True)
    return ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "search"), "--test_sessions", "2",
            "--grid", grid, "--split_seeds", "1", "2", *more]


def test_grid_points_cover_every_combination_in_order():
    assert validation_search.grid_points('{"context_size": [0, 4], "freeze_audio_encoder": [true]}') == [
        {"context_size": "0", "freeze_audio_encoder": "true"}, {"context_size": "4", "freeze_audio_encoder": "true"}]


def test_the_best_mean_validation_score_is_chosen_and_its_recipe_command_given(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    commands: list[list[str]] = []
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run(commands))
    argv = _argv(tmp_path, '{"l2_penalty": [0.5, 1, 2]}', "--context_size", "4")
    assert validation_search.main(argv) == 0
    assert len(commands) == 6
    for command in commands:  # validation runs of the recipe: training dialogues only, one seed, nothing else
        assert command[:2] == ["bash", "scripts/recipe.sh"] and _option(command, "test_sessions") == "2"
        assert _option(command, "refit_on_validation") == "false" and _option(command, "students") == "none"
        assert _option(command, "validation_fraction") == "0.5" and _option(command, "context_size") == "4"
        assert _option(command, "latency_utterances") == "0"  # nothing timed: the search reads validation only
    report = json.loads((tmp_path / "search" / "search.json").read_text())
    assert [row["macro_f1_mean"] for row in report["points"]] == pytest.approx([35.0, 30.0, 38.0])
    assert report["points"][0]["draws"]["1"]["macro_f1"] == pytest.approx(50.0)  # the last evaluation, not the best
    assert report["chosen_point"] == {"l2_penalty": "2"}
    assert report["recipe_command"].endswith("--test_sessions 2 --context_size 4 --l2_penalty 2")
    assert "--refit_on_validation" not in report["recipe_command"]
    assert report["provenance"]["command"].startswith("python scripts/validation_search.py --data_dir")
    assert "* {'l2_penalty': '2'}: validation macro-F1 38.0" in capsys.readouterr().out
    # finished runs are kept: a second call scores the same folders without running anything
    assert validation_search.main(argv) == 0 and len(commands) == 6


def test_a_kept_run_of_another_point_is_refused_not_scored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture):
    # point0_split1 was reused whatever run it held: a new grid in the same folder scored the old grid's runs
    commands: list[list[str]] = []
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run(commands))
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [0.5, 1]}')) == 0 and len(commands) == 4
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [1, 0.5]}')) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith(f"error: {tmp_path / 'search' / 'point0_split1'} holds a finished run with other options")
    assert "{'--l2_penalty': '1'} planned" in error and len(commands) == 4


def test_equal_scores_choose_the_earlier_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(SCORES, ("0.5", "1"), 0.30)
    monkeypatch.setitem(SCORES, ("0.5", "2"), 0.30)
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run([]))
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [1, 0.5]}')) == 0
    assert json.loads((tmp_path / "search" / "search.json").read_text())["chosen_point"] == {"l2_penalty": "1"}


@pytest.mark.parametrize(("grid", "message"), [
    ('{"l2_penalty": 1}', "--grid l2_penalty: give a non-empty list of values"),
    ('{"l2_penalty": [1, 1.0]}', "--grid l2_penalty: a value is repeated"),
    ('{"l2_penalty": ["1", 1]}', "--grid l2_penalty: a value is repeated"),
    ('{"seeds": [1, 2]}', "--grid ['seeds']: the search sets these itself"),
    ('{"l2_penalty": ["strong"]}', "invalid float value: 'strong'"),
    ('{"no_such_option": [1]}', "unrecognized arguments: --no_such_option 1"),
    ('{"context_size": [-1]}', "--context_size must be between 0 and 64"),
    ('{"audio_weight": [0]}', "--audio_weight must be in (0, 100]"),
    ('{"audio_weight": [2], "fusion_type": ["cross_attention"]}', "--audio_weight 2 scales the pooled audio branch"),
    ('{"audio_layer_mix": ["first"]}', "invalid choice: 'first'"),
    ('{"audio_layer_mix": ["last"], "fusion_type": ["cross_attention"]}', "--audio_layer_mix last chooses the layers"),
    ("l2_penalty=1", "--grid is not JSON"),
])
def test_bad_grids_get_one_error_line_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, grid: str, message: str):
    commands: list[list[str]] = []
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run(commands))
    assert validation_search.main(_argv(tmp_path, grid)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ") and message in line
    assert not commands and not (tmp_path / "search").exists()


def test_pooled_audio_grids_are_checked_against_the_recipes_fusion(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    # it was refused: the dry parse did not know that scripts/recipe.sh fuses by concatenation
    commands: list[list[str]] = []
    monkeypatch.setattr(validation_search, "run_recipe", lambda command, folder: commands.append(command))
    parser = validation_search.HfArgumentParser(validation_search.Arguments)
    grid = '{"audio_weight": [1, 2, 4], "audio_layer_mix": ["weighted", "last"]}'
    args, extra = parser.parse_args_into_dataclasses(args=_argv(tmp_path, grid), return_remaining_strings=True)
    points = validation_search.check_arguments(args, extra)
    assert [(point["audio_weight"], point["audio_layer_mix"]) for point in points] == [
        (weight, mix) for weight in ("1", "2", "4") for mix in ("weighted", "last")] and not commands


def test_the_recipe_fusion_the_search_assumes_is_the_recipes():
    recipe = (REPO_ROOT / "scripts" / "recipe.sh").read_text(encoding="utf-8")
    assert " ".join(validation_search.RECIPE_FUSION) in recipe and " ".join(validation_search.RECIPE_CORPUS) in recipe


def test_a_missing_data_folder_is_named(tmp_path: Path, capsys: pytest.CaptureFixture):
    argv = _argv(tmp_path / "nowhere", '{"l2_penalty": [1]}', layout=False)
    assert validation_search.main(argv) == 2
    assert f"error: --data_dir {tmp_path / 'nowhere'}: no such folder." in capsys.readouterr().err


def test_a_data_folder_without_the_corpus_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    # it was the first run's failure, after that run had started
    commands: list[list[str]] = []
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run(commands))
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [1]}', layout=False)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --grid {'l2_penalty': '1'} with the recipe options: --data_dir ")
    assert "KEMDy19" in line and not commands


def test_whole_training_sessions_validate_in_turn(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    commands: list[list[str]] = []
    session_scores = {("1", "KEMDy19:1"): 0.30, ("1", "KEMDy19:2"): 0.50, ("2", "KEMDy19:1"): 0.45,
                      ("2", "KEMDy19:2"): 0.40}  # penalty 1 is best on one session, 2 on average
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run(commands))
    for key, score in session_scores.items():
        monkeypatch.setitem(SCORES, key, score)
    argv = ["--data_dir", str(tmp_path), "--output_dir", str(tmp_path / "search"), "--test_sessions", "KEMDy20:1",
            "--validation_from", "sessions", "--validation_sessions", "KEMDy19:1", "KEMDy19:2",
            "--grid", '{"l2_penalty": [1, 2]}', "--corpus", "all"]
    for corpus in ("KEMDy19", "KEMDy20"):
        for folder in ("annotation", "wav"):
            (tmp_path / corpus / folder).mkdir(parents=True)
    assert validation_search.main(argv) == 0
    assert sorted(path.name for path in (tmp_path / "search").iterdir() if path.is_dir()) == [
        "point0_sessionKEMDy19_1", "point0_sessionKEMDy19_2", "point1_sessionKEMDy19_1", "point1_sessionKEMDy19_2"]
    for command in commands:  # trained on the other training sessions, validated on one whole session
        assert _option(command, "validation_from") == "sessions" and _option(command, "test_sessions") == "KEMDy20:1"
        assert _option(command, "validation_sessions") in ("KEMDy19:1", "KEMDy19:2")
    report = json.loads((tmp_path / "search" / "search.json").read_text())
    assert [row["macro_f1_mean"] for row in report["points"]] == pytest.approx([40.0, 42.5])
    assert set(report["points"][0]["draws"]) == {"KEMDy19:1", "KEMDy19:2"}
    assert report["recipe_command"].endswith("--test_sessions KEMDy20:1 --corpus all --l2_penalty 2")


@pytest.mark.parametrize(("more", "message"), [
    (["--validation_from", "sessions"], "--validation_sessions lists the sessions validated on"),
    (["--validation_sessions", "1"], "--validation_sessions lists the sessions validated on"),
    (["--validation_from", "sessions", "--validation_sessions", "1", "1"], "must be distinct training sessions"),
    (["--validation_from", "sessions", "--validation_sessions", "1", "2"], "not the test session 2"),
])
def test_bad_validation_sessions_get_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture, more, message):
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [1]}', *more)) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: --validation_sessions") and message in line


def test_a_failed_run_names_its_folder_and_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture):
    monkeypatch.setattr(validation_search.subprocess, "run",
                        lambda *args, **kwargs: validation_search.subprocess.CompletedProcess(args, 3))
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [1]}')) == 1
    error = capsys.readouterr().err
    assert f"error: {tmp_path / 'search' / 'point0_split1'}: the recipe run failed (exit 3)" in error
    assert "run.log" in error and not (tmp_path / "search" / "search.json").exists()


def test_an_output_json_that_cannot_be_written_is_refused_before_anything_runs(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    # it failed only after every run of the grid, when search.json was written
    commands: list[list[str]] = []
    monkeypatch.setattr(validation_search, "run_recipe", _fake_run(commands))
    assert validation_search.main(_argv(tmp_path, '{"l2_penalty": [1]}', "--output_json", str(tmp_path))) == 2
    assert capsys.readouterr().err.strip() == f"error: --output_json {tmp_path} is a folder; give a file name."
    assert not commands
