"""The one-command experiment: teacher, students with and without KD, the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multistill.experiment import main, planned_runs


def test_plan_covers_teacher_students_and_ablations():
    runs = planned_runs(["text_student", "light_student"], alpha=0.5, no_kd_ablation=True)
    assert [r.name for r in runs] == ["teacher", "text_student_kd", "text_student_ce", "light_student_kd",
                                      "light_student_ce"]
    assert [r.alpha for r in runs[1:]] == [0.5, 0.0, 0.5, 0.0]
    with pytest.raises(ValueError, match="unknown student"):
        planned_runs(["huge_student"], 0.5, True)


def test_experiment_writes_the_table(training_cache: Path, tmp_path: Path):
    results = main(["--output_dir", str(tmp_path), "--num_train_epochs", "1", "--students", "multimodal_student",
                    "light_student", "--no-no_kd_ablation", "--latency_utterances", "3",
                    "--data_cache_dir", str(training_cache), "--save_total_limit", "1"])
    assert [r["name"] for r in results] == ["teacher", "multimodal_student_kd", "light_student_kd"]
    assert (tmp_path / "teacher_uncached" / "train_results.json").exists()
    table = (tmp_path / "results.md").read_text()
    assert "| model | accuracy (WA) | precision | F1 | UA | macro-F1 | trainable params | total params" in table
    for result in results:
        metrics = json.loads((tmp_path / result["name"] / "test_results.json").read_text())
        row = next(line for line in table.splitlines() if line.startswith(f"| {result['label']} |"))
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert cells[1] == f"{100 * metrics['test_accuracy']:.2f}"
        assert cells[5] == f"{100 * metrics['test_macro_f1']:.2f}"
        assert cells[6] == f"{result['parameters']['trainable']:,}"
        assert result["latency"]["latency_ms_median"] > 0 and result["latency"]["utterances_timed"] == 3
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["header"]["split"] == "session" and len(saved["results"]) == 3
    assert saved["caching_gain"]["speedup"] > 0 and "faster per epoch" in table
