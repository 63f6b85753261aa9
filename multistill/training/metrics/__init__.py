"""Metrics: the `evaluate` module in ``emotion_recognition/``, loaded by local path."""

from __future__ import annotations

from pathlib import Path

METRIC_PATH = Path(__file__).resolve().parent / "emotion_recognition"


def load_metric():
    """Load the emotion-recognition metric from this package (works offline)."""
    import evaluate

    return evaluate.load(str(METRIC_PATH))


__all__ = ["METRIC_PATH", "load_metric"]
