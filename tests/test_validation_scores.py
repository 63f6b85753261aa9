"""scripts/validation_scores.py: each seed's last validation evaluation, with the experiment's provenance."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, assert_unwritable_output_refused

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import validation_scores  # noqa: E402


def _experiment(folder: Path, evaluations: dict[str, list[float]]) -> Path:
    """A finished experiment folder: results.json and, per seed, a teacher's trainer_state.json."""
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps({
        "provenance": {"command": "python -m multistill.tools.experiment --seeds 1 2", "git_commit": "abc"},
        "settings": {"test_sessions": [2]},
        "splits": {seed: {"validation_examples": 86} for seed in evaluations}}))
    for seed, scores in evaluations.items():
        run = folder / f"seed_{seed}" / "teacher"
        run.mkdir(parents=True)
        history = [{"loss": 1.0, "step": 10}] + [
            {"eval_macro_f1": score, "eval_accuracy": 0.5, "eval_runtime": 0.1, "step": 50 * (i + 1)}
            for i, score in enumerate(scores)]
        (run / "trainer_state.json").write_text(json.dumps({"log_history": history}))
    return folder


def test_the_last_evaluation_of_every_seed_is_collected(tmp_path: Path, capsys: pytest.CaptureFixture):
    folder = _experiment(tmp_path / "ngram", {"1": [0.30, 0.45, 0.40], "2": [0.35, 0.42]})
    output = tmp_path / "validation.json"
    assert validation_scores.main(["--experiments", str(folder), "--output_json", str(output)]) == 0
    report = json.loads(output.read_text())
    (experiment,) = report["experiments"]
    assert experiment["provenance"]["git_commit"] == "abc"
    assert experiment["per_seed"]["1"] == {"step": 150, "metrics": {"macro_f1": 0.40, "accuracy": 0.5},
                                           "validation_examples": 86}
    assert experiment["per_seed"]["2"]["metrics"]["macro_f1"] == 0.42
    assert report["provenance"]["command"].startswith("python scripts/validation_scores.py --experiments")


def test_runs_without_validation_evaluations_are_named(tmp_path: Path, capsys: pytest.CaptureFixture):
    folder = _experiment(tmp_path / "refit", {"1": []})
    assert validation_scores.main(["--experiments", str(folder), "--output_json", str(tmp_path / "v.json")]) == 2
    assert "seed_1/teacher/trainer_state.json: no validation evaluation" in capsys.readouterr().err
    assert not (tmp_path / "v.json").exists()


def test_an_output_json_that_cannot_be_written_is_refused_before_loading(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture):
    assert_unwritable_output_refused(validation_scores.main, ["--experiments", str(tmp_path)], tmp_path, capsys)


def test_a_typo_in_an_option_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture):
    # was transformers' ValueError traceback
    argv = ["--experiments", str(tmp_path), "--output_json", str(tmp_path / "v.json"), "--runs", "teacher"]
    assert validation_scores.main(argv) == 2
    assert capsys.readouterr().err == "error: unrecognized arguments: --runs teacher\n"
    assert not (tmp_path / "v.json").exists()
