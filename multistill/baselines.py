"""Simple baselines, scored on the same split and with the same metric module as the Multi-Still models.

Three reference points a learned model must beat before it says anything about the method:

* ``majority``: always the most frequent emotion of the fitting rows (scikit-learn ``DummyClassifier``).
* ``text_tfidf``: TF-IDF of character 1-3-grams inside words (``analyzer="char_wb"``, sublinear term
  frequency) of the transcript + logistic regression.
* ``audio_statistics``: acoustic statistics of the waveform (:func:`acoustic_statistics`: MFCC and delta
  means/deviations, YIN pitch, RMS energy, zero-crossing rate, spectral centroid, duration; librosa) +
  standardisation + logistic regression.

Both logistic regressions use ``class_weight="balanced"`` (the table's headline metrics weigh every emotion
equally), ``C=1`` and no hyper-parameter search, so no held-out rows are needed to tune them; the experiment
runner fits them on the training and validation rows of a run's ``data_splits.json`` and scores them on its
test rows. Labels are the evaluator majority (``emotion``). Everything is deterministic for a given seed.

    fitted = fit_baseline("text_tfidf", train_rows, seed=1)
    metrics = evaluate_predictions(fitted.predict_scores(test_rows), np.asarray(test_rows["emotion"]))
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from datasets import Dataset

from .annotations import EMOTIONS

SAMPLING_RATE = 16_000
#: Analysis window and hop of the acoustic statistics: 25 ms / 10 ms at 16 kHz.
N_FFT, HOP_LENGTH = 400, 160
N_MFCC = 13
PITCH_RANGE_HZ = (65.0, 500.0)
#: Frames within this many dB of an utterance's loudest frame count as speech for the pitch statistics.
SPEECH_DB_RANGE = 30.0


@dataclass(frozen=True)
class BaselineSpec:
    """What a baseline is: its name, its label in the table and the input it reads."""

    name: str
    label: str
    modality: str | None
    description: str


BASELINES: dict[str, BaselineSpec] = {
    spec.name: spec
    for spec in (
        BaselineSpec("majority", "Baseline: majority class", None,
                     "the most frequent emotion of the fitting rows, for every test utterance"),
        BaselineSpec("text_tfidf", "Baseline: character 1-3-gram TF-IDF + logistic regression (text)", "text",
                     "TF-IDF of character 1-3-grams within words of the transcript, logistic regression "
                     "(balanced class weights, C=1)"),
        BaselineSpec("audio_statistics", "Baseline: acoustic statistics + logistic regression (audio)", "audio",
                     "MFCC (13 + deltas, mean and std), YIN pitch, RMS energy, zero-crossing rate, spectral "
                     "centroid and duration statistics, standardised, logistic regression (balanced class "
                     "weights, C=1)"),
    )
}


def acoustic_statistics(array: np.ndarray, sampling_rate: int) -> np.ndarray:
    """Utterance-level acoustic statistics (68 floats, finite) of a mono waveform.

    MFCC 1-13 and their deltas (mean and standard deviation: 52), RMS energy in dB (mean, std, 10th and
    90th percentile: 4), YIN log-pitch over speech frames (frames within 30 dB of the loudest; mean, std,
    10th and 90th percentile, speech-frame fraction: 5), zero-crossing rate and spectral centroid (mean and
    std: 4), log duration, and the loudest frame's dB and the dB range (3). Audio at another rate is
    resampled to 16 kHz; audio shorter than one window is zero-padded.
    """
    import librosa

    y = np.asarray(array, dtype=np.float32)
    if y.ndim != 1:
        raise ValueError(f"acoustic_statistics: expected a mono waveform (1-D), got shape {y.shape}.")
    if sampling_rate != SAMPLING_RATE:
        y = librosa.resample(y, orig_sr=sampling_rate, target_sr=SAMPLING_RATE)
    duration = len(y) / SAMPLING_RATE
    if len(y) < 2 * N_FFT:
        y = np.pad(y, (0, 2 * N_FFT - len(y)))
    mfcc = librosa.feature.mfcc(y=y, sr=SAMPLING_RATE, n_mfcc=N_MFCC, n_fft=N_FFT, hop_length=HOP_LENGTH)
    delta = librosa.feature.delta(mfcc, width=3)
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]
    db = 20 * np.log10(np.maximum(rms, 1e-6))
    # Pitch every second frame (20 ms) is enough for utterance statistics and halves YIN's cost.
    f0 = librosa.yin(y, fmin=PITCH_RANGE_HZ[0], fmax=PITCH_RANGE_HZ[1], sr=SAMPLING_RATE, frame_length=1024,
                     hop_length=2 * HOP_LENGTH)
    pitch_db = db[::2]
    frames = min(len(f0), len(pitch_db))
    speech = pitch_db[:frames] >= db.max() - SPEECH_DB_RANGE
    log_f0 = np.log(f0[:frames][speech]) if speech.any() else np.zeros(1)
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]
    centroid = librosa.feature.spectral_centroid(y=y, sr=SAMPLING_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH)[0]
    features = np.concatenate([
        mfcc.mean(1), mfcc.std(1), delta.mean(1), delta.std(1),
        [db.mean(), db.std(), *np.percentile(db, [10, 90])],
        [log_f0.mean(), log_f0.std(), *np.percentile(log_f0, [10, 90]), speech.mean()],
        [zcr.mean(), zcr.std(), centroid.mean() / 1000, centroid.std() / 1000],
        [np.log(max(duration, 1e-3)), db.max(), db.max() - db.min()],
    ])
    return np.nan_to_num(features.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def acoustic_matrix(rows: Dataset, cache: MutableMapping[str, np.ndarray] | None = None) -> np.ndarray:
    """:func:`acoustic_statistics` of every row (``audio`` column), reusing ``cache`` (keyed by ``id``)."""
    cache = {} if cache is None else cache
    out = []
    for row in rows.select_columns(["id", "audio"]):
        key = row["id"]
        if key not in cache:
            audio = row["audio"]
            cache[key] = acoustic_statistics(np.asarray(audio["array"]), int(audio["sampling_rate"]))
        out.append(cache[key])
    return np.stack(out) if out else np.zeros((0, 0))


@dataclass(frozen=True)
class FittedBaseline:
    """A baseline fitted on some rows; :meth:`predict_scores` gives 7-way scores whose argmax is its label."""

    spec: BaselineSpec
    estimator: Any
    featurize: Callable[[Dataset], Any]
    fit_rows: int

    def predict_scores(self, rows: Dataset) -> np.ndarray:
        """Log-probabilities over the 7 emotions (``-inf`` for emotions absent from the fitting rows)."""
        scores = np.full((len(rows), len(EMOTIONS)), -np.inf)
        if len(rows):
            probabilities = self.estimator.predict_proba(self.featurize(rows))
            with np.errstate(divide="ignore"):
                scores[:, self.estimator.classes_] = np.log(probabilities)
        return scores


def fit_baseline(name: str, rows: Dataset, seed: int = 0, text_column: str = "text",
                 feature_cache: MutableMapping[str, np.ndarray] | None = None) -> FittedBaseline:
    """Fit baseline ``name`` (see :data:`BASELINES`) on ``rows`` (their ``emotion`` = evaluator majority).

    ``feature_cache`` (id -> acoustic statistics) lets several fits share the audio analysis.
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if name not in BASELINES:
        raise ValueError(f"Unknown baseline {name!r}; choose from {sorted(BASELINES)}.")
    if len(rows) == 0:
        raise ValueError(f"Baseline {name!r}: no rows to fit on.")
    labels = np.asarray(rows["emotion"], dtype=np.int64)
    if name != "majority" and len(np.unique(labels)) < 2:
        raise ValueError(f"Baseline {name!r}: the fitting rows hold only one emotion "
                         f"({EMOTIONS[int(labels[0])]}); a classifier needs at least two.")
    spec = BASELINES[name]
    featurize: Callable[[Dataset], Any]
    if name == "majority":
        estimator = DummyClassifier(strategy="most_frequent")

        def featurize(part: Dataset) -> np.ndarray:
            return np.zeros((len(part), 1))

    elif name == "text_tfidf":
        if text_column not in rows.column_names:
            raise ValueError(f"Baseline 'text_tfidf': no column {text_column!r} (columns: {rows.column_names}).")
        estimator = make_pipeline(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True),
            LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed),
        )

        def featurize(part: Dataset) -> list[str]:
            return [text or "" for text in part[text_column]]

    else:
        cache = {} if feature_cache is None else feature_cache
        estimator = make_pipeline(
            StandardScaler(),
            LogisticRegression(C=1.0, class_weight="balanced", max_iter=2000, random_state=seed),
        )

        def featurize(part: Dataset) -> np.ndarray:
            return acoustic_matrix(part, cache)

    estimator.fit(featurize(rows), labels)
    return FittedBaseline(spec=spec, estimator=estimator, featurize=featurize, fit_rows=len(rows))


def evaluate_baseline(name: str, fit_rows: Dataset, test_rows: Dataset, seed: int = 0, text_column: str = "text",
                      feature_cache: MutableMapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """Fit ``name`` on ``fit_rows`` and score it on ``test_rows`` with the models' metric module.

    Returns the metrics of :func:`multistill.training.evaluate_predictions` (accuracy, UA, macro/weighted F1,
    precision, recall, per-class F1, confusion matrix) and the predicted emotion per test id.
    """
    fitted = fit_baseline(name, fit_rows, seed=seed, text_column=text_column, feature_cache=feature_cache)
    return score_baseline(fitted, test_rows)


def score_baseline(fitted: FittedBaseline, test_rows: Dataset) -> dict[str, Any]:
    """A fitted baseline's metrics and predicted emotions on ``test_rows`` (see :func:`evaluate_baseline`)."""
    from .training import evaluate_predictions

    scores = fitted.predict_scores(test_rows)
    metrics = evaluate_predictions(scores, np.asarray(test_rows["emotion"], dtype=np.int64))
    predictions = {key: EMOTIONS[int(p)] for key, p in zip(test_rows["id"], scores.argmax(-1), strict=True)}
    return {"metrics": metrics, "predictions": predictions, "fit_rows": fitted.fit_rows}


__all__ = [
    "BASELINES",
    "BaselineSpec",
    "FittedBaseline",
    "acoustic_matrix",
    "acoustic_statistics",
    "evaluate_baseline",
    "fit_baseline",
    "score_baseline",
]
