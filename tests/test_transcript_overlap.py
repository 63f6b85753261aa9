"""scripts/transcript_overlap.py: nearest-transcript similarity across sessions and across a session's dialogues."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO_ROOT, assert_unwritable_output_refused, assert_usage_error

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import transcript_overlap  # noqa: E402


def test_nearest_similarity_finds_recurring_lines_and_respects_the_exclusion():
    texts = np.array(["오늘 정말 기분 좋다", "비가 와서 우울해", "오늘 정말 기분 좋다", "전혀 다른 문장이에요"], dtype=object)
    best = transcript_overlap.nearest_similarity(texts, np.array([0, 1]), np.array([2, 3]))
    assert best[0] == pytest.approx(1.0) and best[1] < 0.5
    # within one group: each row's nearest among the others (itself excluded)
    rows = np.array([0, 1, 2])
    groups = np.array(["a", "b", "a"])
    same = groups[:, None] == groups[None, :]
    within = transcript_overlap.nearest_similarity(texts, rows, rows, exclude=same)
    assert within[0] < 0.5  # its twin (row 2) is in the same group, so excluded
    assert transcript_overlap.shares(np.array([0.9, 0.5, 1.0, 0.1]), [0.6, 0.999]) == {"0.6": 50.0, "0.999": 25.0}


def test_shares_of_every_pair_with_their_command(tmp_path: Path, synthetic_root: Path):
    output = tmp_path / "overlap.json"
    argv = ["--data_dir", str(synthetic_root), "--pairs", "1:2", "--output_json", str(output)]
    assert transcript_overlap.main(argv) == 0
    report = json.loads(output.read_text())
    pair = report["pairs"]["1:2"]
    assert pair["train_utterances"] > 0 and pair["test_utterances"] > 0
    for side in ("test_session", "other_dialogues_of_training_session"):
        assert set(pair[side]) == {"0.6", "0.8", "0.999"} and all(0 <= v <= 100 for v in pair[side].values())
    assert report["provenance"]["command"].startswith("python scripts/transcript_overlap.py --data_dir")


@pytest.mark.parametrize(("extra", "message"), [
    (["--pairs", "1-2"], "--pairs '1-2': expected TRAIN:TEST"),
    (["--pairs", "2:2"], "--pairs '2:2': expected TRAIN:TEST"),
    (["--thresholds", "1.5"], "--thresholds must lie in (0, 1]"),
    (["--piars", "1:2"], "unrecognized arguments: --piars 1:2"),  # a typo was transformers' ValueError traceback
    ([], "data_dir must hold a KEMDy19/ folder"),  # a folder without the corpus was a traceback after the imports
])
def test_bad_arguments_get_one_error_line_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                         extra: list[str], message: str):
    argv = ["--data_dir", str(tmp_path), "--output_json", str(tmp_path / "o.json"), *extra]
    assert_usage_error(transcript_overlap.main, argv, message, tmp_path / "o.json", capsys)


def test_a_session_the_folder_lacks_is_named(tmp_path: Path, sample_dir: Path, capsys: pytest.CaptureFixture):
    argv = ["--data_dir", str(sample_dir), "--pairs", "1:2", "--output_json", str(tmp_path / "o.json")]
    assert transcript_overlap.main(argv) == 2
    assert "error: --pairs: sessions [2] are not in" in capsys.readouterr().err


def test_an_output_json_that_cannot_be_written_is_refused_before_loading(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture):
    assert_unwritable_output_refused(transcript_overlap.main, ["--data_dir", str(tmp_path)], tmp_path, capsys)
