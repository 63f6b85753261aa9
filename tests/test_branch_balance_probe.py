"""scripts/branch_balance_probe.py: early fusion of TF-IDF and Whisper features at several audio weights."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, assert_unwritable_output_refused, assert_usage_error

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import branch_balance_probe  # noqa: E402


@pytest.fixture(scope="module")
def whisper_folder() -> str:
    from _fixtures_model import tiny_encoder_dirs

    return tiny_encoder_dirs("whisper", "electra")["audio"]


def test_every_fold_weight_and_context_is_scored_with_its_command(tmp_path: Path, synthetic_root: Path,
                                                                   whisper_folder: str):
    output = tmp_path / "balance.json"
    argv = ["--data_dir", str(synthetic_root), "--audio_encoder", whisper_folder, "--sessions", "1", "2",
            "--audio_weights", "0", "1", "--context_sizes", "0", "2", "--folds", "2", "--other_test_sessions",
            "KEMDy20:3", "--output_json", str(output)]
    assert branch_balance_probe.main(argv) == 0
    report = json.loads(output.read_text())
    assert set(report["folds"]) == {"1:2", "2:1"}
    for fold in report["folds"].values():
        assert set(fold) == {"0", "2"}
        for result in fold.values():
            assert set(result["weights"]) == {"0", "1"}
            assert result["other_test_utterances"]["KEMDy20:3"] > 0
            assert all(0 <= s["other_tests"]["KEMDy20:3"] <= 100 for s in result["weights"].values())
            # UA beside macro-F1: the metric to read on a session that holds few of the emotions
            assert all(0 <= s["other_tests_ua"]["KEMDy20:3"] <= 100 for s in result["weights"].values())
            assert result["chosen_by_validation"] in result["weights"]
            best = max(score["validation"] for score in result["weights"].values())
            assert result["weights"][result["chosen_by_validation"]]["validation"] == best
            assert all(0 <= s[part] <= 100 for s in result["weights"].values() for part in ("validation", "test"))
    assert report["provenance"]["command"].startswith("python scripts/branch_balance_probe.py --data_dir")


def test_weight_zero_is_the_tfidf_baseline(tmp_path: Path, synthetic_root: Path, whisper_folder: str):
    """``w = 0`` reads the text alone: it scores the test session as the TF-IDF baseline does."""
    from multistill.tools.baselines import evaluate_baseline
    from multistill.training.data import load_kemdy

    output = tmp_path / "balance.json"
    argv = ["--data_dir", str(synthetic_root), "--audio_encoder", whisper_folder, "--sessions", "1", "2",
            "--audio_weights", "0", "--folds", "2", "--output_json", str(output)]
    assert branch_balance_probe.main(argv) == 0
    score = json.loads(output.read_text())["folds"]["1:2"]["0"]["weights"]["0"]["test"]
    dataset = load_kemdy("kemdy19", synthetic_root)
    train = dataset.filter(lambda row: row["session"] == 1)
    test = dataset.filter(lambda row: row["session"] == 2)
    baseline = evaluate_baseline("text_tfidf", train, test)["metrics"]["macro_f1"]
    assert score == pytest.approx(100 * baseline, abs=1e-6)


@pytest.mark.parametrize(("extra", "message"), [
    (["--folds", "1"], "--folds must be at least 2"),
    (["--sessions", "1", "1"], "--sessions needs at least two different sessions"),
    (["--audio_weights", "-1"], "--audio_weights must be finite and >= 0"),
    (["--context_sizes", "-2"], "--context_sizes must be >= 0"),
    (["--audio_wieghts", "1"], "unrecognized arguments: --audio_wieghts 1"),  # a typo was a ValueError traceback
    (["--other_test_sessions", "3"], "--other_test_sessions ['3']: give KEMDy20 sessions as KEMDy20:N"),
    ([], "data_dir must hold a KEMDy19/ folder"),  # a folder without the corpus was a traceback after the imports
])
def test_bad_arguments_get_one_error_line_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         extra: list[str], message: str):
    argv = ["--data_dir", str(tmp_path), "--audio_encoder", str(tmp_path), "--output_json", str(tmp_path / "b.json"),
            *extra]
    assert_usage_error(branch_balance_probe.main, argv, message, tmp_path / "b.json", capsys)


def test_a_missing_encoder_folder_or_session_is_named(tmp_path: Path, sample_dir: Path, whisper_folder: str,
                                                     capsys: pytest.CaptureFixture):
    argv = ["--data_dir", str(sample_dir), "--audio_encoder", str(tmp_path / "nowhere"),
            "--output_json", str(tmp_path / "b.json")]
    assert_usage_error(branch_balance_probe.main, argv, "--audio_encoder", tmp_path / "b.json", capsys)
    argv = ["--data_dir", str(sample_dir), "--audio_encoder", whisper_folder, "--sessions", "1", "7",
            "--output_json", str(tmp_path / "b.json")]
    assert branch_balance_probe.main(argv) == 2
    assert "error: --sessions ['KEMDy19:7']: not in" in capsys.readouterr().err


def test_a_missing_other_test_session_is_named(tmp_path: Path, synthetic_root: Path, whisper_folder: str,
                                               capsys: pytest.CaptureFixture):
    argv = ["--data_dir", str(synthetic_root), "--audio_encoder", whisper_folder, "--other_test_sessions", "KEMDy20:9",
            "--output_json", str(tmp_path / "b.json")]
    assert branch_balance_probe.main(argv) == 2
    assert "error: --other_test_sessions ['KEMDy20:9']: not in" in capsys.readouterr().err


def test_an_output_json_that_cannot_be_written_is_refused_before_loading(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture):
    assert_unwritable_output_refused(branch_balance_probe.main, ["--data_dir", str(tmp_path), "--audio_encoder", str(tmp_path)], tmp_path, capsys)
