"""The evaluate metric module (loaded by local path, offline)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, f1_score

from multistill.annotations import EMOTIONS
from multistill.training.metrics import METRIC_PATH, load_metric


@pytest.fixture(scope="module")
def metric():
    return load_metric()


def test_metric_is_loaded_from_the_repository(metric):
    assert METRIC_PATH.is_dir()
    assert "unweighted_accuracy" in metric.features or metric.name


def test_unweighted_accuracy_differs_from_accuracy_on_imbalanced_data(metric):
    # 8 neutral predicted right, 2 angry predicted as neutral: WA 0.8, UA 0.5.
    references = [0] * 8 + [3] * 2
    predictions = [0] * 10
    result = metric.compute(predictions=predictions, references=references)
    assert result["accuracy"] == pytest.approx(0.8)
    assert result["unweighted_accuracy"] == pytest.approx(0.5)
    assert result["unweighted_accuracy"] == pytest.approx(balanced_accuracy_score(references, predictions))
    assert result["f1_angry"] == 0.0


def test_metrics_match_scikit_learn(metric):
    rng = np.random.default_rng(0)
    references = rng.integers(0, 7, size=200)
    predictions = np.where(rng.random(200) < 0.6, references, rng.integers(0, 7, size=200))
    result = metric.compute(predictions=predictions, references=references)
    assert result["macro_f1"] == pytest.approx(f1_score(references, predictions, average="macro"))
    assert result["weighted_f1"] == pytest.approx(f1_score(references, predictions, average="weighted"))
    matrix = np.asarray(result["confusion_matrix"])
    assert matrix.shape == (7, 7) and matrix.sum() == 200
    assert np.trace(matrix) == int((predictions == references).sum())
    per_class = f1_score(references, predictions, average=None, labels=range(7))
    for index, name in enumerate(EMOTIONS):
        assert result[f"f1_{name}"] == pytest.approx(per_class[index])
