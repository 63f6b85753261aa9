"""Tests of the KEMDy dataset builder (``loading_scripts/kemdy.py``): the real sample first, then the
edge cases of the synthetic corpus."""

from __future__ import annotations

import csv
import logging
import re
import shutil
from collections import Counter
from pathlib import Path

import datasets
import numpy as np
import pytest
import soundfile as sf
from _fixtures_kemdy import example_by_id

from loading_scripts.kemdy import (
    NOTE_EMPTY_TRANSCRIPT,
    SKIP_MISSING_TRANSCRIPT,
    SKIP_MISSING_WAV,
    SKIP_NO_VOTES,
    SKIP_UNDECODABLE_WAV,
    SKIP_UNKNOWN_LABEL,
    Kemdy,
)
from multistill.annotations import EMOTIONS, UnknownEmotionLabelError
from multistill.training.synthetic import EDGE_CASES, make_synthetic_kemdy

SR = 16_000


def _votes(**fractions: float) -> list[float]:
    return [fractions.get(e, 0.0) for e in EMOTIONS]


def _label(ds: datasets.Dataset, example: dict) -> str:
    return ds.features["emotion"].int2str(example["emotion"])


# --------------------------------------------------------------------------------------------------------
# Real sample (Session 01 of KEMDy19 and KEMDy20)
# --------------------------------------------------------------------------------------------------------


def test_sample_sizes_speakers_dialogues(kemdy_sample_dataset):
    ds = kemdy_sample_dataset
    assert Counter(ds["corpus"]) == {"KEMDy19": 481, "KEMDy20": 311}
    assert len(set(ds["id"])) == len(ds) == 792
    assert set(ds["session"]) == {1}
    meta = ds.select_columns(["corpus", "speaker", "dialogue"])
    by_corpus = {c: meta.filter(lambda x, c=c: x["corpus"] == c) for c in ("KEMDy19", "KEMDy20")}
    assert set(by_corpus["KEMDy19"]["speaker"]) == {"KEMDy19_Sess01_F", "KEMDy19_Sess01_M"}
    assert set(by_corpus["KEMDy20"]["speaker"]) == {"KEMDy20_User001F", "KEMDy20_User002M"}
    assert set(by_corpus["KEMDy19"]["dialogue"]) == {f"Sess01_script{i:02d}" for i in range(1, 7)} | {
        f"Sess01_impro{i:02d}" for i in range(1, 5)
    }
    assert set(by_corpus["KEMDy20"]["dialogue"]) == {f"Sess01_script{i:02d}" for i in range(1, 7)}
    for example in ds.select_columns(["speaker", "gender"]):
        assert example["gender"] == example["speaker"][-1]
    # Sorted by corpus, then annotation row order.
    assert ds["corpus"] == sorted(ds["corpus"])
    assert ds[0]["id"] == "Sess01_script01_M001"
    assert ds[481]["id"] == "Sess01_script01_User002M_001"
    assert ds.features["emotion"].names == list(EMOTIONS)


def test_sample_votes_are_distributions(kemdy_sample_dataset):
    ds = kemdy_sample_dataset.select_columns(["corpus", "emotion_votes", "emotion", "tied_emotions"])
    for example in ds:
        votes = np.asarray(example["emotion_votes"])
        assert votes.shape == (7,) and votes.min() >= 0
        assert votes.sum() == pytest.approx(1.0, abs=1e-5)
        # KEMDy19 combines both panels (20 votes), KEMDy20 has one panel (10 votes).
        n = 20 if example["corpus"] == "KEMDy19" else 10
        assert np.allclose(votes * n, np.round(votes * n), atol=1e-4)
        assert votes[example["emotion"]] == votes.max()
        assert example["tied_emotions"] and set(example["tied_emotions"]) <= set(EMOTIONS)


SPOT_CHECKS = [
    # KEMDy19: the F and M panels (10 + 10 votes) combined.
    dict(
        id="Sess01_script01_M001",
        emotion="surprise",
        votes=_votes(surprise=0.9, neutral=0.05, fear=0.05),
        tied=["surprise"],
        valence=(1.8 + 1.7) / 2,
        arousal=(3.5 + 4.0) / 2,
        start=7.152,
        end=15.476,
        speaker="KEMDy19_Sess01_M",
        dialogue="Sess01_script01",
    ),
    # 9 fear / 9 surprise: both are in a panel's Total Evaluation -> the earlier in EMOTIONS (surprise).
    dict(
        id="Sess01_script01_F001",
        emotion="surprise",
        votes=_votes(fear=0.45, surprise=0.45, neutral=0.1),
        tied=["fear", "surprise"],
        valence=(1.5 + 1.6) / 2,
        arousal=(3.6 + 3.9) / 2,
        start=15.476,
        end=19.786,
        speaker="KEMDy19_Sess01_F",
        dialogue="Sess01_script01",
    ),
    # 7 neutral / 7 angry; F panel total "neutral;surprise", M panel total "angry" -> neutral.
    dict(
        id="Sess01_impro03_M021",
        emotion="neutral",
        votes=_votes(neutral=0.35, angry=0.35, surprise=0.2, fear=0.1),
        tied=["neutral", "surprise", "angry"],
        valence=(1.9 + 1.7) / 2,
        arousal=(3.2 + 3.1) / 2,
        start=236.131,
        end=247.155,
        speaker="KEMDy19_Sess01_M",
        dialogue="Sess01_impro03",
    ),
    # KEMDy20 tie "happy;neutral" with 5/5 votes -> neutral (earlier in EMOTIONS).
    dict(
        id="Sess01_script01_User002M_014",
        emotion="neutral",
        votes=_votes(neutral=0.5, happy=0.5),
        tied=["happy", "neutral"],
        valence=3.8,
        arousal=3.2,
        start=122.36439,
        end=124.03939,
        speaker="KEMDy20_User002M",
        dialogue="Sess01_script01",
    ),
    dict(
        id="Sess01_script03_User002M_011",
        emotion="happy",
        votes=_votes(happy=0.5, surprise=0.5),
        tied=["happy", "surprise"],
        valence=4.2,
        arousal=4.3,
        start=59.21748,
        end=64.30749,
        speaker="KEMDy20_User002M",
        dialogue="Sess01_script03",
    ),
    dict(
        id="Sess01_script01_User001F_001",
        emotion="neutral",
        votes=_votes(neutral=0.6, happy=0.4),
        tied=["neutral"],
        valence=3.8,
        arousal=2.8,
        start=42.77729,
        end=44.86329,
        speaker="KEMDy20_User001F",
        dialogue="Sess01_script01",
    ),
]


@pytest.mark.parametrize("expected", SPOT_CHECKS, ids=[c["id"] for c in SPOT_CHECKS])
def test_sample_known_segments(kemdy_sample_dataset, expected):
    ds = kemdy_sample_dataset
    example = example_by_id(ds, expected["id"])
    assert _label(ds, example) == expected["emotion"]
    assert example["emotion_votes"] == pytest.approx(expected["votes"], abs=1e-6)
    assert example["tied_emotions"] == expected["tied"]
    assert example["valence"] == pytest.approx(expected["valence"], abs=1e-5)
    assert example["arousal"] == pytest.approx(expected["arousal"], abs=1e-5)
    assert example["start"] == pytest.approx(expected["start"], abs=1e-4)
    assert example["end"] == pytest.approx(expected["end"], abs=1e-4)
    assert example["speaker"] == expected["speaker"]
    assert example["dialogue"] == expected["dialogue"]
    assert example["corpus"] == ("KEMDy20" if "User" in expected["id"] else "KEMDy19")


def test_sample_transcripts(kemdy_sample_dataset):
    ds = kemdy_sample_dataset
    # KEMDy20: CP949 transcript with noise and laughter tags.
    example = example_by_id(ds, "Sess01_script01_User001F_001")
    assert example["raw_text"] == "n/ 아 친구들도? l/"
    assert example["text"] == "아 친구들도?"
    # KEMDy19: UTF-8 transcript with a breath tag and a tag glued to punctuation.
    example = example_by_id(ds, "Sess01_impro01_F005")
    assert example["raw_text"].startswith("b/ 진짜 말을 말아야지.")
    assert example["text"] == (
        "진짜 말을 말아야지. 일본은 미소에요. 미소와 된장은 엄연히 다릅니다. 그런 것도 몰라요? 어디서."
    )
    # Overlap mark (A+B): B, the speaker's own words, is kept.
    example = example_by_id(ds, "Sess01_impro01_F010")
    assert example["raw_text"].startswith("(아닙니까?+굉장히) 지금")
    assert example["text"].startswith("굉장히 지금 위험한 발언을 하시는데,")
    tag = re.compile(r"(?<![A-Za-z])[A-Za-z]/")
    for text in ds["text"]:
        assert not tag.search(text) and "(" not in text and "+" not in text
        assert text == text.strip() and "\n" not in text
    assert sum(bool(re.search("[가-힣]", t)) for t in ds["text"]) > 0.95 * len(ds)


def test_sample_audio_spot_checks(kemdy_sample_dataset, sample_dir):
    ds = kemdy_sample_dataset
    for segment_id, path in [
        ("Sess01_script01_User001F_001", "KEMDy20/wav/Session01/Sess01_script01_User001F_001.wav"),
        ("Sess01_impro01_F005", "KEMDy19/wav/Session01/Sess01_impro01/Sess01_impro01_F005.wav"),
    ]:
        audio = example_by_id(ds, segment_id)["audio"]
        array = audio["array"]
        assert audio["sampling_rate"] == SR
        assert array.ndim == 1 and array.dtype == np.float32
        assert len(array) == sf.info(str(sample_dir / path)).frames
        assert 0 < np.abs(array).max() <= 1.0


def test_sample_every_audio_decodes(kemdy_sample_dataset):
    ds = kemdy_sample_dataset.select_columns(["id", "audio"])
    paths = [a["path"] for a in ds.cast_column("audio", datasets.Audio(decode=False))["audio"]]
    for example, path in zip(ds, paths, strict=True):
        audio = example["audio"]
        assert audio["sampling_rate"] == SR, example["id"]
        assert len(audio["array"]) == sf.info(path).frames > 0, example["id"]


def test_sample_build_is_deterministic(kemdy_sample_dataset, sample_dir, tmp_path):
    builder = Kemdy(config_name="all", data_dir=str(sample_dir), cache_dir=str(tmp_path / "other_cache"))
    builder.download_and_prepare()
    again = builder.as_dataset("train")
    columns = ["id", "emotion", "emotion_votes", "tied_emotions", "text", "raw_text", "speaker", "start"]
    assert again.select_columns(columns).to_dict() == kemdy_sample_dataset.select_columns(columns).to_dict()
    assert builder.skipped == {} and builder.notes == {}


def test_sample_cache_is_reused(kemdy_sample_builder, sample_dir, monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("the cached dataset was rebuilt")

    monkeypatch.setattr(Kemdy, "_generate_examples", fail)
    builder = Kemdy(
        config_name="all", data_dir=str(sample_dir), cache_dir=kemdy_sample_builder._cache_dir_root
    )
    assert builder._cache_dir == kemdy_sample_builder._cache_dir
    builder.download_and_prepare()
    assert len(builder.as_dataset("train")) == 792


@pytest.mark.parametrize("module", ["kemdy_annotations", "kemdy_bio"])
def test_cache_hash_covers_the_builders_modules(module, sample_dir, tmp_path, monkeypatch):
    """The builder reads its rules from sibling modules: editing one of them gives another cache path."""
    import loading_scripts.kemdy as kemdy

    before = Kemdy(config_name="all", data_dir=str(sample_dir), cache_dir=str(tmp_path))._cache_dir
    edited = tmp_path / f"{module}.py"
    edited.write_text(Path(getattr(kemdy, module).__file__).read_text() + "\n# edited\n")
    monkeypatch.setattr(getattr(kemdy, module), "__file__", str(edited))
    after = Kemdy(config_name="all", data_dir=str(sample_dir), cache_dir=str(tmp_path))._cache_dir
    assert before != after


def test_config_kwargs_change_config_and_cache(sample_dir, tmp_path):
    def make(**kwargs):
        return Kemdy(config_name="kemdy20", data_dir=str(sample_dir), cache_dir=str(tmp_path), **kwargs)

    plain, one, bio, skip = make(), make(sessions=[1]), make(bio_signals=True), make(on_unknown_label="skip")
    assert one.config.sessions == [1] and bio.config.bio_signals and skip.config.on_unknown_label == "skip"
    assert len({b.config_id for b in (plain, one, bio, skip)}) == 4
    assert len({b._cache_dir for b in (plain, one, bio, skip)}) == 4
    assert "eda" in bio.info.features and "eda" not in plain.info.features
    with pytest.raises(ValueError, match="on_unknown_label"):
        make(on_unknown_label="ignore").download_and_prepare()
    with pytest.raises(FileNotFoundError, match="session"):
        make(sessions=[2]).download_and_prepare()


def test_missing_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match="data_dir") as err:
        Kemdy(config_name="all", cache_dir=str(tmp_path)).download_and_prepare()
    assert "https://nanum.etri.re.kr/share/kjnoh/KEMDy19" in str(err.value)
    missing = tmp_path / "not_there"
    with pytest.raises(FileNotFoundError) as err:
        Kemdy(config_name="all", data_dir=str(missing), cache_dir=str(tmp_path)).download_and_prepare()
    assert str(missing) in str(err.value) and "annotation/Sess01_eval.csv" in str(err.value)


def test_missing_annotation_or_corpus_folder(tmp_path):
    root = tmp_path / "kemdy"
    (root / "KEMDy20" / "wav" / "Session01").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as err:
        Kemdy(config_name="kemdy20", data_dir=str(root), cache_dir=str(tmp_path)).download_and_prepare()
    message = str(err.value)
    assert str(root / "KEMDy20" / "annotation") in message
    assert "annotation/" in message and "KEMDy20/" in message and "nanum.etri.re.kr" in message
    (root / "KEMDy20" / "annotation").mkdir()
    with pytest.raises(FileNotFoundError, match="KEMDy19") as err:
        Kemdy(config_name="all", data_dir=str(root), cache_dir=str(tmp_path)).download_and_prepare()
    assert "https://nanum.etri.re.kr/share/kjnoh/KEMDy19" in str(err.value)
    with pytest.raises(FileNotFoundError, match="corpus folder itself"):
        Kemdy(
            config_name="kemdy20", data_dir=str(root / "KEMDy20"), cache_dir=str(tmp_path)
        ).download_and_prepare()


def test_layout_problem_names_what_a_folder_lacks_before_anything_is_built(tmp_path, sample_dir):
    from loading_scripts.kemdy import layout_problem

    root = tmp_path / "kemdy"
    assert layout_problem(root) == f"KEMDy data_dir {root} does not exist."
    (root / "KEMDy19" / "annotation").mkdir(parents=True)
    assert layout_problem(root, "kemdy19") == f"Missing {root / 'KEMDy19' / 'wav'}: the wav/ folder of the KEMDy data was not found."
    (root / "KEMDy19" / "wav").mkdir()
    assert layout_problem(root, "kemdy19") is None
    assert layout_problem(root, "all").startswith(f"Missing {root / 'KEMDy20'}: data_dir must hold a KEMDy20/ folder.")
    assert "looks like a corpus folder itself" in layout_problem(root / "KEMDy19", "kemdy19")
    assert layout_problem(sample_dir, "all") is None


def test_manual_download_instructions():
    text = Kemdy(config_name="all").manual_download_instructions
    for needle in (
        "https://nanum.etri.re.kr/share/kjnoh/KEMDy19",
        "https://nanum.etri.re.kr/share/kjnoh/KEMDy20",
    ):
        assert needle in text
    assert "annotation/" in text and "wav/Session01" in text


# --------------------------------------------------------------------------------------------------------
# Synthetic corpus and its edge cases
# --------------------------------------------------------------------------------------------------------


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def edge_build(synthetic_edge_root, tmp_path_factory):
    """KEMDy20 session 1 of the edge corpus, unknown labels skipped; with the builder's log records."""
    handler = _Records()
    kemdy_logger = logging.getLogger("loading_scripts.kemdy")
    kemdy_logger.addHandler(handler)
    level = kemdy_logger.level
    kemdy_logger.setLevel(logging.INFO)
    try:
        builder = Kemdy(
            config_name="kemdy20",
            data_dir=str(synthetic_edge_root),
            cache_dir=str(tmp_path_factory.mktemp("edge_cache")),
            sessions=[1],
            on_unknown_label="skip",
        )
        builder.download_and_prepare()
    finally:
        kemdy_logger.removeHandler(handler)
        kemdy_logger.setLevel(level)
    return builder, builder.as_dataset("train"), handler.records


def test_synthetic_corpus_builds_cleanly(synthetic_root, tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="loading_scripts.kemdy"):
        builder = Kemdy(config_name="all", data_dir=str(synthetic_root), cache_dir=str(tmp_path))
        builder.download_and_prepare()
    ds = builder.as_dataset("train")
    assert Counter(ds["corpus"]) == {"KEMDy19": 64, "KEMDy20": 64}
    assert builder.skipped == {}
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert any("all 128 annotated segments were kept" in r.getMessage() for r in caplog.records)


def test_edge_skips_are_counted_and_logged(edge_build, synthetic_edge_root):
    builder, ds, records = edge_build
    ids = {name: case.segment_id for name, case in EDGE_CASES.items()}
    assert builder.skipped == {
        SKIP_UNDECODABLE_WAV: [ids["empty_wav"], ids["corrupt_wav"], ids["truncated_wav"]],
        SKIP_MISSING_TRANSCRIPT: [ids["missing_transcript"]],
        SKIP_MISSING_WAV: [ids["missing_wav"]],
        SKIP_UNKNOWN_LABEL: [ids["unknown_label"]],
    }
    assert builder.notes == {NOTE_EMPTY_TRANSCRIPT: [ids["empty_transcript"]]}
    kept = {case.segment_id for case in EDGE_CASES.values() if case.kept}
    skipped = {case.segment_id for case in EDGE_CASES.values() if not case.kept}
    assert kept <= set(ds["id"]) and not skipped & set(ds["id"])
    assert len(ds) == 16 + len(kept)
    # Each entry's details name the annotation row and the file.
    wav_dir = synthetic_edge_root / "KEMDy20" / "wav" / "Session01"
    for name in ("empty_wav", "corrupt_wav", "truncated_wav", "missing_wav"):
        assert str(wav_dir / f"{ids[name]}.wav") in builder.details[ids[name]], name
        assert re.match(r"Sess01_eval\.csv row \d+: ", builder.details[ids[name]]), name
    assert "'boredom'" in builder.details[ids["unknown_label"]]
    assert "Eval04" in builder.details[ids["unknown_label"]]
    # One INFO line per entry as it happens, and one WARNING summary at the end.
    infos = [r.getMessage() for r in records if r.levelno == logging.INFO]
    for segment_id in skipped | {ids["empty_transcript"]}:
        assert sum(segment_id in line for line in infos) == 1, segment_id
    warnings = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    summary = warnings[0]
    assert "skipped 6 segments/rows; kept 1 with a note" in summary
    for reason, count in [
        (SKIP_UNDECODABLE_WAV, 3),
        (SKIP_MISSING_TRANSCRIPT, 1),
        (SKIP_MISSING_WAV, 1),
        (SKIP_UNKNOWN_LABEL, 1),
        (NOTE_EMPTY_TRANSCRIPT, 1),
    ]:
        assert f", {reason}: {count}\n" in summary
    for segment_id in skipped:
        assert f"{segment_id}: Sess01_eval.csv row " in summary
    assert str(wav_dir / f"{ids['truncated_wav']}.wav") in summary


def test_edge_truncated_wav_is_caught_at_build_time(edge_build, synthetic_edge_root):
    """A WAV cut mid-sample opens in soundfile but fails in torchcodec, the decoder of ``datasets.Audio``:
    the builder decodes each WAV as ``datasets`` will, so the dataset holds only audio that decodes."""
    _, ds, _ = edge_build
    wav = synthetic_edge_root / "KEMDy20" / "wav" / "Session01" / f"{EDGE_CASES['truncated_wav'].segment_id}.wav"
    assert sf.info(str(wav)).frames > 0
    with pytest.raises(RuntimeError):
        datasets.Audio(sampling_rate=SR).decode_example({"path": str(wav), "bytes": None})["array"]
    for example in ds.select_columns(["id", "audio"]):
        assert len(example["audio"]["array"]) > 0, example["id"]


def test_edge_empty_transcript_is_kept_with_a_note(edge_build, synthetic_edge_root):
    builder, ds, _ = edge_build
    segment_id = EDGE_CASES["empty_transcript"].segment_id
    example = example_by_id(ds, segment_id)
    assert example["raw_text"] == "l/ n/" and example["text"] == ""
    transcript = synthetic_edge_root / "KEMDy20" / "wav" / "Session01" / f"{segment_id}.txt"
    assert str(transcript) in builder.details[segment_id]


def test_wavs_checked_with_soundfile_without_torchcodec(synthetic_edge_root, tmp_path, monkeypatch, caplog):
    """Where torchcodec cannot be loaded, each WAV is read with soundfile instead, with one warning."""
    import loading_scripts.kemdy as kemdy

    monkeypatch.setattr(kemdy, "_decoder_problem", lambda: "torchcodec cannot be loaded (OSError: test)")
    builder = Kemdy(
        config_name="kemdy20",
        data_dir=str(synthetic_edge_root),
        cache_dir=str(tmp_path),
        sessions=[1],
        on_unknown_label="skip",
    )
    with caplog.at_level(logging.WARNING, logger="loading_scripts.kemdy"):
        builder.download_and_prepare()
    ids = {name: case.segment_id for name, case in EDGE_CASES.items()}
    # soundfile reads the truncated WAV (its last half sample dropped); the others still fail.
    assert builder.skipped[SKIP_UNDECODABLE_WAV] == [ids["empty_wav"], ids["corrupt_wav"]]
    assert any("checked with soundfile" in r.getMessage() and "OSError: test" in r.getMessage()
               for r in caplog.records)


def test_edge_stereo_44k_decodes_to_16k_mono(edge_build, synthetic_edge_root):
    _, ds, _ = edge_build
    segment_id = EDGE_CASES["stereo_44k"].segment_id
    info = sf.info(str(synthetic_edge_root / "KEMDy20" / "wav" / "Session01" / f"{segment_id}.wav"))
    assert (info.samplerate, info.channels) == (44_100, 2)
    audio = example_by_id(ds, segment_id)["audio"]
    assert audio["sampling_rate"] == SR
    assert audio["array"].ndim == 1
    assert len(audio["array"]) == pytest.approx(info.duration * SR, abs=2)


def test_edge_labels(edge_build):
    _, ds, _ = edge_build
    misspelled = example_by_id(ds, EDGE_CASES["misspelled_label"].segment_id)
    assert _label(ds, misspelled) == "neutral"
    assert misspelled["emotion_votes"] == pytest.approx(_votes(neutral=0.8, sad=0.2), abs=1e-6)
    tie = example_by_id(ds, EDGE_CASES["tie"].segment_id)
    assert tie["tied_emotions"] == ["neutral", "happy"]
    assert tie["emotion_votes"] == pytest.approx(_votes(neutral=0.5, happy=0.5), abs=1e-6)
    assert _label(ds, tie) == EDGE_CASES["tie"].emotion == "neutral"
    tie_total = example_by_id(ds, EDGE_CASES["tie_total"].segment_id)
    assert tie_total["emotion_votes"] == pytest.approx(_votes(angry=0.5, sad=0.5), abs=1e-6)
    assert _label(ds, tie_total) == EDGE_CASES["tie_total"].emotion == "sad"
    for name, case in EDGE_CASES.items():
        if case.kept:
            assert _label(ds, example_by_id(ds, case.segment_id)) == case.emotion, name


def test_edge_unknown_label_raises_by_default(synthetic_edge_root, tmp_path):
    annotation = synthetic_edge_root / "KEMDy20" / "annotation" / "Sess01_eval.csv"
    lines = annotation.read_text(encoding="utf-8").splitlines()
    line = next(i for i, text in enumerate(lines, start=1) if EDGE_CASES["unknown_label"].segment_id in text)
    builder = Kemdy(config_name="kemdy20", data_dir=str(synthetic_edge_root), cache_dir=str(tmp_path))
    with pytest.raises(UnknownEmotionLabelError) as err:
        builder.download_and_prepare()
    message = str(err.value)
    assert "'boredom'" in message and str(annotation) in message
    assert f"row {line}," in message and "column Eval04" in message
    assert "on_unknown_label='skip'" in message


def test_empty_evaluator_cells_are_not_votes(tmp_path):
    root = make_synthetic_kemdy(tmp_path / "tiny", 1, 1, 1)
    path = root / "KEMDy20" / "annotation" / "Sess01_eval.csv"
    rows = list(csv.reader(path.open(encoding="utf-8", newline="")))
    header = rows[0]
    eval_cols = [i for i, name in enumerate(header) if name.startswith("Eval")]
    first_label = rows[2][eval_cols[0]]
    for i in eval_cols[:4]:
        rows[2][i] = ""  # four evaluators of row 1 gave no label
    for i in eval_cols[4:]:
        rows[2][i] = first_label
    for i in eval_cols:
        rows[3][i] = " "  # nobody labelled row 2
    with path.open("w", encoding="utf-8", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    shutil.rmtree(root / "KEMDy19")
    builder = Kemdy(config_name="kemdy20", data_dir=str(root), cache_dir=str(tmp_path / "cache"))
    builder.download_and_prepare()
    ds = builder.as_dataset("train")
    assert ds["id"] == [rows[2][3]]
    assert ds[0]["emotion_votes"][EMOTIONS.index(first_label)] == pytest.approx(1.0)
    assert builder.skipped == {SKIP_NO_VOTES: [rows[3][3]]}


# --------------------------------------------------------------------------------------------------------
# Citation and license
# --------------------------------------------------------------------------------------------------------


def test_citation_and_license():
    both = Kemdy(config_name="all").info
    for corpus in ("KEMDy19", "KEMDy20"):
        assert f"@misc{{noh_{corpus.lower()}," in both.citation
        assert f"https://nanum.etri.re.kr/share/kjnoh/{corpus}" in both.citation
    assert both.citation.count("{") == both.citation.count("}")
    assert "Noh, K. J. and Jeong, H." in both.citation
    only20 = Kemdy(config_name="kemdy20").info.citation
    assert "noh_kemdy20" in only20 and "KEMDy19" not in only20
    assert "ETRI" in both.license and "research" in both.license and "no redistribution" in both.license
