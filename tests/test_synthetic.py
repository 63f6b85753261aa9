"""Tests of the synthetic KEMDy corpus generator (``multistill/training/synthetic.py``)."""

from __future__ import annotations

import csv
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from loading_scripts.kemdy import Kemdy
from multistill.annotations import EMOTIONS
from multistill.training.synthetic import _SENTENCES, EDGE_CASES, make_synthetic_kemdy

KEMDY20_TOP = ["Numb", "WAV", " ", "Segment ID", "Total Evaluation", " ", " "]
KEMDY20_SUB = [" ", "start", "end", " ", "Emotion", "Valence", "Arousal"] + [
    "Emotion",
    "Valence",
    "Arousal",
] * 10
KEMDY19_TOP = [
    "Numb",
    "Wav",
    "",
    "ECG",
    "",
    "E4-EDA",
    "",
    "E4-TEMP",
    "",
    "Segment ID",
    "Total Evaluation",
    "",
    "",
]
KEMDY19_SUB = ["", *["start", "end"] * 4, ""] + ["Emotion", "Valence", "Arousal"] * 11


def _csv(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.reader(f))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def synthetic_dataset(synthetic_root, tmp_path_factory):
    builder = Kemdy(
        config_name="all",
        data_dir=str(synthetic_root),
        cache_dir=str(tmp_path_factory.mktemp("synthetic_cache")),
    )
    builder.download_and_prepare()
    return builder.as_dataset("train")


def test_layout_and_headers(synthetic_root):
    for session in range(1, 5):
        rows = _csv(synthetic_root / "KEMDy20" / "annotation" / f"Sess{session:02d}_eval.csv")
        assert rows[0][:7] == KEMDY20_TOP and rows[1] == KEMDY20_SUB
        assert [rows[0][7 + 3 * i][:6] for i in range(10)] == [f"Eval{i + 1:02d}" for i in range(10)]
        assert len(rows) == 2 + 16 and all(len(r) == 37 for r in rows)
        for row in rows[2:]:
            wav = synthetic_root / "KEMDy20" / "wav" / f"Session{session:02d}" / f"{row[3]}.wav"
            assert wav.is_file() and wav.with_suffix(".txt").is_file()
            dialogue, user = "_".join(row[3].split("_")[:2]), row[3].split("_")[2]
            for signal in ("EDA", "TEMP", "IBI"):
                assert (
                    synthetic_root / "KEMDy20" / signal / f"Session{session:02d}" / f"{dialogue}_{user}.csv"
                ).is_file()
        panels = [
            _csv(synthetic_root / "KEMDy19" / "annotation" / f"Session{session:02d}_{p}_res.csv")
            for p in "FM"
        ]
        for rows in panels:
            assert rows[0][:13] == KEMDY19_TOP and rows[1] == KEMDY19_SUB and len(rows) == 2 + 16
        assert [r[9] for r in panels[0][2:]] == [r[9] for r in panels[1][2:]]  # the same segments twice
        for row in panels[0][2:]:
            dialogue = "_".join(row[9].split("_")[:2])
            wav = synthetic_root / "KEMDy19" / "wav" / f"Session{session:02d}" / dialogue / f"{row[9]}.wav"
            assert wav.is_file() and wav.with_suffix(".txt").is_file()
        for signal in ("EDA", "TEMP"):
            for g in "FM":
                path = (
                    synthetic_root
                    / "KEMDy19"
                    / signal
                    / f"Session{session:02d}"
                    / "Original"
                    / f"Sess{session:02d}{g}.csv"
                )
                assert path.is_file()
    eda = (
        (synthetic_root / "KEMDy20" / "EDA" / "Session01" / "Sess01_script01_User001F.csv")
        .read_text()
        .splitlines()
    )
    assert eda[1] == "4.000000,hz" and len(eda[0].split(",")) == 2


def test_transcripts_encodings_tags_and_overlaps(synthetic_root):
    kemdy20 = sorted((synthetic_root / "KEMDy20" / "wav").rglob("*.txt"))
    kemdy19 = sorted((synthetic_root / "KEMDy19" / "wav").rglob("*.txt"))
    assert len(kemdy20) == len(kemdy19) == 64
    for path in kemdy20:
        data = path.read_bytes()
        with pytest.raises(UnicodeDecodeError):
            data.decode("utf-8")
        assert any("가" <= c <= "힣" for c in data.decode("cp949"))
    texts = [p.read_text(encoding="utf-8") for p in kemdy19] + [
        p.read_bytes().decode("cp949") for p in kemdy20
    ]
    assert sum("+" in t and "(" in t for t in texts) >= 8  # (A+B) overlap marks
    assert sum(any(tag in t for tag in ("n/", "l/", "b/", "c/")) for t in texts) >= 10


def test_wavs_are_16k_mono_pcm16_1_to_3_s(synthetic_root):
    wavs = sorted(synthetic_root.rglob("*.wav"))
    assert len(wavs) == 128
    for path in wavs:
        info = sf.info(str(path))
        assert (info.samplerate, info.channels, info.subtype) == (16_000, 1, "PCM_16")
        assert 1.0 <= info.duration <= 3.0


def test_every_emotion_in_every_session_neutral_most(synthetic_dataset):
    ds = synthetic_dataset.remove_columns("audio")
    names = ds.features["emotion"].names
    by_session: dict[tuple[str, int], Counter] = {}
    for corpus, session, label in zip(ds["corpus"], ds["session"], ds["emotion"], strict=True):
        by_session.setdefault((corpus, session), Counter())[names[label]] += 1
    assert len(by_session) == 8
    for counts in by_session.values():
        assert set(counts) == set(EMOTIONS) and min(counts.values()) >= 2
        assert counts["neutral"] > max(v for e, v in counts.items() if e != "neutral")
    assert set(ds["speaker"]) >= {
        "KEMDy19_Sess01_F",
        "KEMDy19_Sess01_M",
        "KEMDy20_User001F",
        "KEMDy20_User002M",
    }
    assert len(set(ds["speaker"])) == 16


def test_text_correlates_with_emotion_but_not_perfectly(synthetic_dataset):
    ds = synthetic_dataset.remove_columns("audio")
    names = ds.features["emotion"].names
    typical = [
        any(sentence in text for sentence in _SENTENCES[names[label]])
        for text, label in zip(ds["text"], ds["emotion"], strict=True)
    ]
    assert 0.5 < np.mean(typical) < 0.95


def _features(x: np.ndarray, sr: int = 16_000) -> list[float]:
    x = np.asarray(x, dtype=np.float64)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / sr)
    band = (freqs > 60) & (freqs < 500)
    f0 = freqs[band][np.argmax(spectrum[band])]
    centroid = (spectrum * freqs).sum() / spectrum.sum()
    return [np.log(np.sqrt(np.mean(x**2))), np.log(f0), centroid / 1000]


def test_audio_prosody_is_learnable(synthetic_dataset):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = synthetic_dataset
    x = np.array([_features(a["array"]) for a in ds["audio"]])
    y, speakers = np.array(ds["emotion"]), np.array(ds["speaker"])
    genders, sessions = np.array(ds["gender"]), np.array(ds["session"])
    # Speaker-dependent base pitch: female speakers are higher.
    assert x[genders == "F", 1].mean() > x[genders == "M", 1].mean() + 0.3
    # Emotion-dependent loudness: angry louder than neutral, neutral louder than sad.
    loud = {e: x[y == EMOTIONS.index(e), 0].mean() for e in ("angry", "neutral", "sad")}
    assert loud["angry"] > loud["neutral"] > loud["sad"]
    for speaker in set(speakers):  # per-speaker pitch normalisation
        x[speakers == speaker, 1] -= x[speakers == speaker, 1].mean()
    train = sessions <= 2
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)).fit(x[train], y[train])
    accuracy = (model.predict(x[~train]) == y[~train]).mean()
    assert accuracy > 0.5  # chance is 1/7, the majority class 1/4


def test_deterministic_fast_and_small(tmp_path):
    start = time.perf_counter()
    first = make_synthetic_kemdy(tmp_path / "a", seed=3)
    elapsed = time.perf_counter() - start
    assert elapsed < 10
    files = _files(first)
    assert sum(len(b) for b in files.values()) < 10 * 2**20
    assert _files(make_synthetic_kemdy(tmp_path / "b", seed=3)) == files
    other = _files(
        make_synthetic_kemdy(tmp_path / "c", seed=4, sessions_per_corpus=1, dialogues_per_session=1)
    )
    wav = "KEMDy20/wav/Session01/Sess01_script01_User001F_001.wav"
    assert other[wav] != files[wav]


def test_parameters(tmp_path):
    root = make_synthetic_kemdy(
        tmp_path / "small", sessions_per_corpus=2, dialogues_per_session=3, utterances_per_speaker=2
    )
    assert len(list((root / "KEMDy20" / "wav").rglob("*.wav"))) == 2 * 3 * 2 * 2
    assert {p.name for p in (root / "KEMDy19" / "wav" / "Session02").iterdir()} == {
        "Sess02_script01",
        "Sess02_impro01",
        "Sess02_script02",
    }
    with pytest.raises(ValueError):
        make_synthetic_kemdy(tmp_path / "bad", sessions_per_corpus=0)


def test_edge_case_files(synthetic_edge_root):
    folder = synthetic_edge_root / "KEMDy20" / "wav" / "Session01"

    def path(name: str, suffix: str = ".wav") -> Path:
        return folder / f"{EDGE_CASES[name].segment_id}{suffix}"

    info = sf.info(str(path("stereo_44k")))
    assert (info.samplerate, info.channels) == (44_100, 2) and info.duration == pytest.approx(1.5)
    assert sf.info(str(path("empty_wav"))).frames == 0
    with pytest.raises(sf.LibsndfileError):
        sf.info(str(path("corrupt_wav")))
    assert path("missing_transcript").is_file() and not path("missing_transcript", ".txt").exists()
    assert not path("missing_wav").exists() and path("missing_wav", ".txt").is_file()
    # Cut mid-sample: an odd number of PCM16 data bytes, which soundfile still opens.
    truncated = path("truncated_wav")
    assert truncated.stat().st_size % 2 == 1 and sf.info(str(truncated)).frames > 0
    assert path("empty_transcript", ".txt").read_bytes() == "l/ n/\n".encode("cp949")
    rows = {r[3]: r for r in _csv(synthetic_edge_root / "KEMDy20" / "annotation" / "Sess01_eval.csv")[2:]}
    assert set(rows) >= {case.segment_id for case in EDGE_CASES.values()}
    votes = {name: [rows[case.segment_id][i] for i in range(7, 37, 3)] for name, case in EDGE_CASES.items()}
    assert votes["misspelled_label"].count("Neutrl ") == 3
    assert "boredom" in votes["unknown_label"]
    assert rows[EDGE_CASES["tie"].segment_id][4] == "neutral;happy"
    assert Counter(votes["tie"]) == {"neutral": 5, "happy": 5}
    assert rows[EDGE_CASES["tie_total"].segment_id][4] == "sad"
    # The other sessions, and KEMDy19, have no edge cases.
    assert not list((synthetic_edge_root / "KEMDy20" / "wav" / "Session02").glob("*_9??.wav"))
