"""scripts/neutral_evidence.py: one experiment at two commits, compared figure by figure."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, assert_unwritable_output_refused

sys.path.insert(0, str(REPO_ROOT / "scripts"))

import neutral_evidence  # noqa: E402


def _experiment(folder: Path, commit: str, macro_f1: float) -> Path:
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps({
        "provenance": {"command": "bash scripts/main.sh", "git_commit": commit, "git_dirty": False},
        "per_seed": {"1": {"teacher": {"metrics": {"macro_f1": macro_f1}, "confusion_matrix": [[1, 0], [0, 1]],
                                       "seconds": 3.0 if commit == "a" else 4.0}}}}))
    return folder


def test_the_same_figures_are_evidence_and_timings_are_not_compared(tmp_path: Path):
    before, after = _experiment(tmp_path / "before", "a", 0.5), _experiment(tmp_path / "after", "b", 0.5)
    output = tmp_path / "evidence" / "e.json"
    assert neutral_evidence.main(["--before", str(before), "--after", str(after), "--output_json", str(output)]) == 0
    evidence = json.loads(output.read_text())
    assert evidence["identical"] and evidence["compared"] == 2 and evidence["differences"] == []
    assert (evidence["before"]["git_commit"], evidence["after"]["git_commit"]) == ("a", "b")


def test_a_changed_figure_is_named_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture):
    before, after = _experiment(tmp_path / "before", "a", 0.5), _experiment(tmp_path / "after", "b", 0.6)
    output = tmp_path / "e.json"
    assert neutral_evidence.main(["--before", str(before), "--after", str(after), "--output_json", str(output)]) == 1
    evidence = json.loads(output.read_text())
    assert not evidence["identical"]
    assert evidence["differences"] == ["seed 1, teacher, metrics: {'macro_f1': 0.5} -> {'macro_f1': 0.6}"]


def test_bad_arguments_get_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture):
    before = _experiment(tmp_path / "before", "a", 0.5)
    argv = ["--before", str(before), "--after", str(tmp_path / "missing"), "--output_json", str(tmp_path / "e.json")]
    assert neutral_evidence.main(argv) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: no results.json (not a finished experiment folder).\n"
    assert_unwritable_output_refused(neutral_evidence.main, ["--before", str(before), "--after", str(before)],
                                     tmp_path, capsys)
    argv = ["--before", str(before), "--after", str(before), "--output_json", str(tmp_path / "e.json"), "--afterr", "x"]
    assert neutral_evidence.main(argv) == 2  # a typo was transformers' ValueError traceback
    assert capsys.readouterr().err == "error: unrecognized arguments: --afterr x\n"
