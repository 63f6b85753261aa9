"""scripts/text_head_probe.py: text heads on one TF-IDF bag, cross-validated over a session's dialogues."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, assert_unwritable_output_refused, assert_usage_error

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import text_head_probe  # noqa: E402


def test_every_head_is_scored_per_seed_with_its_command(tmp_path: Path, sample_dir: Path):
    output = tmp_path / "probe.json"
    argv = ["--data_dir", str(sample_dir), "--sessions", "1", "--folds", "2", "--seeds", "1", "2", "--steps", "101",
            "--frozen_width", "16", "--output_json", str(output)]
    assert text_head_probe.main(argv) == 0
    report = json.loads(output.read_text())
    session = report["sessions"]["1"]
    assert session["dialogues"] >= 2 and session["utterances"] > 100
    assert set(session["heads"]) == set(text_head_probe.HEADS)
    assert list(session["heads"]["tfidf_lr"]["macro_f1_per_seed"]) == ["0"]  # deterministic: one fit
    for head in text_head_probe.HEADS[1:]:
        scores = session["heads"][head]["macro_f1_per_seed"]
        assert list(scores) == ["1", "2"] and all(0 <= value <= 100 for value in scores.values()), head
    assert report["provenance"]["command"].startswith("python scripts/text_head_probe.py --data_dir")


def test_the_linear_head_trains_logistic_regressions_objective(tmp_path: Path, sample_dir: Path):
    """One weight matrix under the recipe's penalty is logistic regression with C=1: trained the recipe's way
    (600 full-batch steps), it predicts nearly as scikit-learn's solver does."""
    output = tmp_path / "probe.json"
    argv = ["--data_dir", str(sample_dir), "--sessions", "1", "--folds", "2", "--seeds", "1", "--heads", "tfidf_lr",
            "linear", "--output_json", str(output)]
    assert text_head_probe.main(argv) == 0
    heads = json.loads(output.read_text())["sessions"]["1"]["heads"]
    assert abs(heads["linear"]["macro_f1_mean"] - heads["tfidf_lr"]["macro_f1_mean"]) < 2.0


@pytest.mark.parametrize(("extra", "message"), [
    (["--steps", "50"], "--steps must be at least 101"),
    (["--heads", "svm"], "--heads ['svm']: unknown"),
    (["--folds", "1"], "--folds must be at least 2"),
    (["--hedas", "linear"], "unrecognized arguments: --hedas linear"),  # a typo was transformers' ValueError traceback
    ([], "data_dir must hold a KEMDy19/ folder"),  # a folder without the corpus was a traceback after the imports
])
def test_bad_arguments_get_one_error_line_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         extra: list[str], message: str):
    argv = ["--data_dir", str(tmp_path), "--output_json", str(tmp_path / "p.json"), *extra]
    assert_usage_error(text_head_probe.main, argv, message, tmp_path / "p.json", capsys)


def test_a_session_the_folder_lacks_is_named(tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture):
    argv = ["--data_dir", str(sample_dir), "--sessions", "7", "--output_json", str(tmp_path / "p.json")]
    assert text_head_probe.main(argv) == 2
    assert "error: --sessions [7]: not in" in capsys.readouterr().err


def test_an_output_json_that_cannot_be_written_is_refused_before_loading(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture):
    assert_unwritable_output_refused(text_head_probe.main, ["--data_dir", str(tmp_path)], tmp_path, capsys)
