"""The simple baselines: features, fitting on training rows only, scores, metrics, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
from datasets import Audio, ClassLabel, Dataset, Features, Value

from multistill.annotations import EMOTIONS
from multistill.tools.baselines import BASELINES, acoustic_statistics, evaluate_baseline, fit_baseline

SR = 16_000


def tone(frequency: float, seconds: float = 1.0, amplitude: float = 0.3, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    noise = np.random.default_rng(seed).normal(0, 0.003, t.shape)
    return (amplitude * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)


def rows(items: list[tuple[str, str, np.ndarray]], prefix: str) -> Dataset:
    """A dataset with the columns the baselines read: id, text, audio (16 kHz), emotion (7-way)."""
    features = Features({"id": Value("string"), "text": Value("string"), "audio": Audio(sampling_rate=SR),
                         "emotion": ClassLabel(names=list(EMOTIONS))})
    return Dataset.from_dict(
        {"id": [f"{prefix}{i}" for i in range(len(items))], "text": [t for t, _, _ in items],
         "audio": [{"array": a, "sampling_rate": SR} for _, _, a in items],
         "emotion": [EMOTIONS.index(e) for _, e, _ in items]},
        features=features,
    )


@pytest.fixture(scope="module")
def toy() -> tuple[Dataset, Dataset]:
    """Happy = '좋아' in the text and a high, loud voice; angry = '화나' and a low, quiet one; neutral in between."""
    words = {"happy": "정말 좋아요", "angry": "너무 화나요", "neutral": "그냥 그래요"}
    pitch = {"happy": 320.0, "angry": 110.0, "neutral": 200.0}
    loud = {"happy": 0.5, "angry": 0.05, "neutral": 0.2}

    def make(emotions: list[str], prefix: str, seed: int) -> Dataset:
        items = [(f"{words[e]} {i}", e, tone(pitch[e] * (1 + 0.03 * (i % 3)), 0.6 + 0.1 * (i % 4), loud[e], seed + i))
                 for i, e in enumerate(emotions)]
        return rows(items, prefix)

    train = make(["neutral"] * 8 + ["happy"] * 5 + ["angry"] * 5, "train", 0)
    test = make(["happy", "angry", "neutral", "happy", "angry", "neutral"], "test", 100)
    return train, test


def test_acoustic_statistics_are_finite_and_measure_pitch_and_loudness() -> None:
    low, high = acoustic_statistics(tone(120.0), SR), acoustic_statistics(tone(300.0), SR)
    assert low.shape == high.shape == (68,) and np.isfinite(low).all()
    log_f0_mean = 52 + 4  # after 52 MFCC statistics and 4 energy statistics
    assert np.exp(low[log_f0_mean]) == pytest.approx(120.0, rel=0.03)
    assert np.exp(high[log_f0_mean]) == pytest.approx(300.0, rel=0.03)
    quiet = acoustic_statistics(tone(120.0, amplitude=0.03), SR)
    assert quiet[52] < low[52] - 15  # mean RMS energy in dB: 20 dB quieter
    # silence, a few samples, and another sampling rate give finite features of the same size
    for array, rate in ((np.zeros(SR, np.float32), SR), (np.ones(10, np.float32), SR), (tone(200.0)[::2], 8000)):
        assert np.isfinite(acoustic_statistics(array, rate)).all() and acoustic_statistics(array, rate).shape == (68,)
    with pytest.raises(ValueError, match="mono"):
        acoustic_statistics(np.zeros((2, SR), np.float32), SR)


def test_majority_predicts_the_most_frequent_training_emotion(toy: tuple[Dataset, Dataset]) -> None:
    train, test = toy
    scores = fit_baseline("majority", train).predict_scores(test)
    assert scores.shape == (len(test), len(EMOTIONS))
    assert (scores.argmax(-1) == EMOTIONS.index("neutral")).all()
    assert np.isneginf(scores[:, EMOTIONS.index("fear")]).all()  # never seen in training: impossible
    result = evaluate_baseline("majority", train, test)
    assert result["metrics"]["accuracy"] == pytest.approx(2 / 6)
    assert set(result["predictions"].values()) == {"neutral"} and list(result["predictions"]) == list(test["id"])


@pytest.mark.parametrize("name", ["text_tfidf", "audio_statistics"])
def test_text_and_audio_baselines_learn_a_separable_task(toy: tuple[Dataset, Dataset], name: str) -> None:
    train, test = toy
    result = evaluate_baseline(name, train, test, seed=3)
    assert result["metrics"]["accuracy"] == 1.0 and result["metrics"]["macro_f1"] == 1.0
    assert result["fit_rows"] == len(train)
    # deterministic, and the test labels are not used: relabelling the test rows leaves the scores unchanged
    fitted = fit_baseline(name, train, seed=3)
    relabelled = test.map(lambda row: {"emotion": EMOTIONS.index("fear")})
    np.testing.assert_array_equal(fitted.predict_scores(test), fitted.predict_scores(relabelled))
    np.testing.assert_array_equal(fitted.predict_scores(test), fit_baseline(name, train, seed=3).predict_scores(test))


def test_audio_features_are_computed_once_per_id(toy: tuple[Dataset, Dataset]) -> None:
    train, test = toy
    cache: dict[str, np.ndarray] = {}
    fitted = fit_baseline("audio_statistics", train, feature_cache=cache)
    assert set(cache) == set(train["id"])
    cache[test["id"][0]] = np.zeros(68)  # a cached vector is used instead of recomputing it
    first = fitted.predict_scores(test)[0]
    assert not np.array_equal(first, fit_baseline("audio_statistics", train).predict_scores(test)[0])


def test_errors_name_the_problem(toy: tuple[Dataset, Dataset]) -> None:
    train, _ = toy
    with pytest.raises(ValueError, match="Unknown baseline 'svm'"):
        fit_baseline("svm", train)
    one_class = train.filter(lambda row: row["emotion"] == EMOTIONS.index("neutral"))
    with pytest.raises(ValueError, match="only one emotion \\(neutral\\)"):
        fit_baseline("text_tfidf", one_class)
    assert fit_baseline("majority", one_class).fit_rows == len(one_class)
    with pytest.raises(ValueError, match="no column 'asr_text'"):
        fit_baseline("text_tfidf", train, text_column="asr_text")
    with pytest.raises(ValueError, match="no rows"):
        fit_baseline("majority", train.select([]))
    assert set(BASELINES) == {"majority", "text_tfidf", "audio_statistics", "audio_whisper", "late_fusion"}


def _conversation(toy_rows: Dataset) -> Dataset:
    """``toy_rows`` as one dialogue per three rows, in order, two speakers taking turns."""
    count = len(toy_rows)
    return toy_rows.add_column("dialogue", [f"d{i // 3}" for i in range(count)]).add_column(
        "speaker", [f"s{i % 2}" for i in range(count)]).add_column("start", [float(i % 3) for i in range(count)])


def test_context_baselines_read_only_previous_utterances(toy) -> None:
    from multistill.tools.baselines import with_context

    train, test = (_conversation(part) for part in toy)
    fitted = fit_baseline("text_tfidf", train, seed=0, context_size=2)
    scores = fitted.predict_scores(test)
    changed = test.map(lambda row, i: {"text": "완전히 다른 말" if i % 3 == 2 else row["text"]}, with_indices=True)
    # the last utterance of each dialogue is nobody's history: changing it changes only its own scores
    unchanged = [i for i in range(len(test)) if i % 3 != 2]
    np.testing.assert_allclose(fitted.predict_scores(changed)[unchanged], scores[unchanged])
    stacked = with_context(lambda part: np.eye(len(part)), 2)(test)
    assert stacked.shape == (len(test), 2 * len(test))
    assert stacked[1, len(test) + 0] == 1.0 and stacked[2, len(test) + 0] == pytest.approx(0.8)
    assert not stacked[0, len(test):].any()  # the first utterance of a dialogue has no history


def test_whisper_and_late_fusion_baselines(toy) -> None:
    from _fixtures_model import tiny_encoder_dirs

    train, test = toy
    encoder = tiny_encoder_dirs("whisper", "electra")["audio"]
    whisper = evaluate_baseline("audio_whisper", train, test, audio_encoder=encoder)
    fused = evaluate_baseline("late_fusion", train, test, audio_encoder=encoder)
    text = evaluate_baseline("text_tfidf", train, test)
    assert set(fused["predictions"]) == set(test["id"]) and 0 <= whisper["metrics"]["macro_f1"] <= 1
    assert fused["metrics"]["macro_f1"] >= min(whisper["metrics"]["macro_f1"], text["metrics"]["macro_f1"])
    with pytest.raises(ValueError, match="audio_encoder"):
        fit_baseline("late_fusion", train)
