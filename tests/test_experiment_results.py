"""Reading an experiment's runs back: the caching-gain runs compare equal epochs. (The models' and baselines'
rows, read from real runs, are checked end to end in ``test_experiment.py``.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multistill.tools.experiment_results import caching_gain


def test_caching_gain_compares_equal_epochs(tmp_path: Path):
    def write(name: str, runtime: float, epochs: float) -> None:
        (tmp_path / name).mkdir(exist_ok=True)
        (tmp_path / name / "train_results.json").write_text(json.dumps({"train_runtime": runtime, "epoch": epochs}))

    write("caching_cached", 2.0, 2.0)
    write("caching_uncached", 9.0, 2.0)
    (tmp_path / "teacher").mkdir()
    (tmp_path / "teacher" / "run_info.json").write_text(json.dumps({"feature_caching_seconds": 3.5}))
    gain = caching_gain(tmp_path)
    assert gain == {"epochs": 2.0, "cached_epoch_seconds": 1.0, "uncached_epoch_seconds": 4.5, "speedup": 4.5,
                    "teacher_caching_seconds": 3.5}
    write("caching_uncached", 3.0, 1.0)
    with pytest.raises(ValueError, match="2.0 vs 1.0 epochs"):
        caching_gain(tmp_path)
