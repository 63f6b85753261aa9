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

from ..annotations import EMOTIONS
from ..audio_utils import resample
from ..configuration_multistill import DEFAULT_CONTEXT_DECAY

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
        BaselineSpec("audio_whisper", "Baseline: Whisper encoder, mean+std pooled + logistic regression (audio)",
                     "audio", "the audio encoder's last layer (Whisper at the utterance's length), mean and standard "
                     "deviation over frames, standardised, logistic regression (balanced class weights, C=1)"),
        BaselineSpec("late_fusion", "Baseline: late fusion of TF-IDF and Whisper-LR (text + audio)", "both",
                     "the average of the probabilities of text_tfidf and audio_whisper"),
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
        y = resample(y, sampling_rate, SAMPLING_RATE)
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


def encoder_statistics(rows: Dataset, encoder_folder: str, cache: MutableMapping[Any, np.ndarray] | None = None,
                       ) -> np.ndarray:
    """Mean and standard deviation over frames of an audio encoder's last layer for every row, as a Multi-Still
    model encodes audio (Whisper at the utterance's own length, up to 30 s), reusing ``cache`` (keyed by folder
    and id)."""
    import torch
    from transformers import AutoFeatureExtractor

    from ..modeling_multistill import MultiStillForEmotionClassification

    cache = {} if cache is None else cache
    missing = [i for i, key in enumerate(rows["id"]) if (encoder_folder, key) not in cache]
    if missing:
        model = MultiStillForEmotionClassification.from_encoders(
            encoder_folder, preset="audio_student", local_files_only=True, fusion_type="concat",
            max_audio_frames=1500).eval()
        extractor = AutoFeatureExtractor.from_pretrained(encoder_folder, local_files_only=True)
        for i in missing:
            audio = rows[i]["audio"]
            array = np.asarray(audio["array"], dtype=np.float32)[: 30 * SAMPLING_RATE]
            inputs = extractor(array, sampling_rate=int(audio["sampling_rate"]), padding="longest",
                               return_attention_mask=True, return_tensors="pt")
            with torch.inference_mode():
                statistics, _ = model.encode_audio(**{model.audio_input_name: inputs[model.audio_input_name]},
                                                   attention_mask=inputs["attention_mask"])
            cache[encoder_folder, rows[i]["id"]] = statistics[0, -1].float().numpy()
    return np.stack([cache[encoder_folder, key] for key in rows["id"]]).astype(np.float64)


def with_context(featurize: Callable[[Dataset], Any], size: int) -> Callable[[Dataset], Any]:
    """Features of each row beside the decayed sum of its ``size`` previous utterances' features (same
    dialogue, both speakers, causal; :func:`.data.previous_utterances`; the ``k``-th previous weighted by
    ``DEFAULT_CONTEXT_DECAY ** (k - 1)``, as the model's ``context_type="decayed_sum"``)."""
    import scipy.sparse as sparse

    from ..training.data import previous_utterances

    def stacked(part: Dataset) -> Any:
        current = featurize(part)
        history, _ = previous_utterances(part, size)
        index = np.asarray(history, dtype=np.int64).reshape(len(part), size)
        total = None
        for step in range(size):
            present = (index[:, step] >= 0).astype(np.float64)[:, None] * DEFAULT_CONTEXT_DECAY ** step
            rows = current[np.maximum(index[:, step], 0)]
            term = rows.multiply(present) if sparse.issparse(rows) else rows * present
            total = term if total is None else total + term
        if sparse.issparse(current):
            return sparse.hstack([current, total]).tocsr()
        return np.hstack([current, total])

    return stacked if size > 0 else featurize


@dataclass(frozen=True)
class _LateFusion:
    """The average of several fitted baselines' probabilities (what :class:`FittedBaseline` asks of an estimator)."""

    parts: tuple[Any, ...]
    classes_: np.ndarray

    def predict_proba(self, rows: Dataset) -> np.ndarray:
        total = np.zeros((len(rows), len(self.classes_)))
        for part in self.parts:
            probabilities = np.zeros_like(total)
            columns = np.searchsorted(self.classes_, part.estimator.classes_)
            probabilities[:, columns] = part.estimator.predict_proba(part.featurize(rows))
            total += probabilities / len(self.parts)
        return total


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
                 feature_cache: MutableMapping[Any, np.ndarray] | None = None, context_size: int = 0,
                 audio_encoder: str | None = None) -> FittedBaseline:
    """Fit baseline ``name`` (see :data:`BASELINES`) on ``rows`` (their ``emotion`` = evaluator majority).

    ``feature_cache`` (id -> acoustic statistics) lets several fits share the audio analysis.
    ``context_size``: each row's features are stacked beside the decayed sum of its previous utterances'
    (:func:`with_context`). ``audio_encoder``: the encoder folder of ``audio_whisper`` / ``late_fusion``.
    """
    from sklearn.dummy import DummyClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
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
    if name in ("audio_whisper", "late_fusion") and audio_encoder is None:
        raise ValueError(f"Baseline {name!r} reads an audio encoder's features: pass audio_encoder= (a folder).")
    if name == "late_fusion":
        parts = tuple(fit_baseline(part, rows, seed, text_column, feature_cache, context_size, audio_encoder)
                      for part in ("text_tfidf", "audio_whisper"))
        fused = _LateFusion(parts, np.unique(labels))
        return FittedBaseline(spec=spec, estimator=fused, featurize=lambda part: part, fit_rows=len(rows))
    featurize: Callable[[Dataset], Any]
    if name == "majority":
        estimator = DummyClassifier(strategy="most_frequent")

        def featurize(part: Dataset) -> np.ndarray:
            return np.zeros((len(part), 1))

    elif name == "text_tfidf":
        if text_column not in rows.column_names:
            raise ValueError(f"Baseline 'text_tfidf': no column {text_column!r} (columns: {rows.column_names}).")
        vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True)
        vectorizer.fit([text or "" for text in rows[text_column]])
        estimator = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000, random_state=seed)

        def featurize(part: Dataset) -> Any:
            return vectorizer.transform([text or "" for text in part[text_column]])

    else:
        cache = {} if feature_cache is None else feature_cache
        scaler = StandardScaler()
        estimator = LogisticRegression(C=1.0, class_weight="balanced", max_iter=3000, random_state=seed)

        def raw_features(part: Dataset) -> np.ndarray:
            if name == "audio_whisper":
                return encoder_statistics(part, audio_encoder, cache)
            return acoustic_matrix(part, cache)

        scaler.fit(raw_features(rows))

        def featurize(part: Dataset) -> np.ndarray:
            return scaler.transform(raw_features(part))

    featurize = with_context(featurize, context_size)
    estimator.fit(featurize(rows), labels)
    return FittedBaseline(spec=spec, estimator=estimator, featurize=featurize, fit_rows=len(rows))


def evaluate_baseline(name: str, fit_rows: Dataset, test_rows: Dataset, seed: int = 0, text_column: str = "text",
                      feature_cache: MutableMapping[Any, np.ndarray] | None = None, context_size: int = 0,
                      audio_encoder: str | None = None) -> dict[str, Any]:
    """Fit ``name`` on ``fit_rows`` and score it on ``test_rows`` with the models' metric module.

    Returns the metrics of :func:`multistill.training.trainer.evaluate_predictions` (accuracy, UA, macro/weighted F1,
    precision, recall, per-class F1, confusion matrix) and the predicted emotion per test id.
    """
    fitted = fit_baseline(name, fit_rows, seed=seed, text_column=text_column, feature_cache=feature_cache,
                          context_size=context_size, audio_encoder=audio_encoder)
    return score_baseline(fitted, test_rows)


def score_baseline(fitted: FittedBaseline, test_rows: Dataset) -> dict[str, Any]:
    """A fitted baseline's metrics and predicted emotions on ``test_rows`` (see :func:`evaluate_baseline`)."""
    from ..training.trainer import evaluate_predictions

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
    "encoder_statistics",
    "evaluate_baseline",
    "fit_baseline",
    "score_baseline",
    "with_context",
]
