"""Speech recognition: engines (faster-whisper, transformers), engine detection, the asr_text column, CER."""

from __future__ import annotations

import sys

import datasets
import numpy as np
import pytest
import soundfile
from _fixtures_speech import (
    SPEECH,
    ScriptedASR,
    converted_whisper_base_folder,
    faster_whisper_asr,
    speech_file,
    tiny_whisper_folder,
    whisper_base_folder,
)

from multistill.asr import (
    FasterWhisperSpeechRecognizer,
    TransformersSpeechRecognizer,
    add_asr_transcripts,
    character_error_rate,
    detect_engine,
    edit_distance,
    load_asr,
    normalize_for_cer,
)


def _levenshtein(a: str, b: str) -> int:
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        diagonal, row[0] = row[0], i
        for j, cb in enumerate(b, 1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ca != cb))
    return row[-1]


def test_edit_distance_matches_the_textbook_algorithm():
    rng = np.random.default_rng(0)
    alphabet = list("가나다라ab ")
    for _ in range(300):
        a = "".join(rng.choice(alphabet, rng.integers(0, 10)))
        b = "".join(rng.choice(alphabet, rng.integers(0, 10)))
        assert edit_distance(a, b) == _levenshtein(a, b)
    assert edit_distance("안녕하세요", "안녕하세요") == 0 and edit_distance("", "abc") == 3


def test_cer_normalisation_and_counts():
    assert normalize_for_cer(" 안녕,  하세요?! Hello ") == "안녕하세요hello"
    assert normalize_for_cer("안녕,  하세요?!", keep_spaces=True) == "안녕 하세요"
    result = character_error_rate(["안녕하세요.", "좋아요", "..."], ["안녕 하세오", "", "무엇"])
    # 1 substitution of 5 + 3 deletions of 3; the empty reference is skipped
    assert result["cer"] == pytest.approx(4 / 8)
    assert (result["edits"], result["reference_chars"], result["utterances"]) == (4, 8, 2)
    assert result["empty_references"] == 1 and result["empty_hypotheses"] == 1
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        character_error_rate(["a", "b"], ["a"])


def test_engine_detection_and_argument_errors(tmp_path, monkeypatch):
    assert detect_engine(whisper_base_folder()) == "faster-whisper"
    assert detect_engine(tiny_whisper_folder()) == "transformers"
    assert detect_engine("openai/whisper-large-v3-turbo") == "transformers"
    scripted = ScriptedASR()
    assert load_asr(scripted) is scripted
    with pytest.raises(ValueError, match="asr engine must be one of"):
        load_asr(tiny_whisper_folder(), engine="kaldi")
    with pytest.raises(ValueError, match="empty"):
        load_asr(" ")
    with pytest.raises(ValueError, match="Cannot load the speech-recognition model"):
        load_asr(str(tmp_path), engine="faster-whisper")
    with pytest.raises(ValueError, match="Cannot load the speech-recognition model"):
        load_asr(str(tmp_path / "nothing-here"), engine="transformers")
    monkeypatch.setitem(sys.modules, "faster_whisper", None)  # not installed
    with pytest.raises(ImportError, match=r'pip install "multistill\[faster-whisper\]"'):
        load_asr(whisper_base_folder())


def test_faster_whisper_transcribes_real_korean_speech():
    asr = faster_whisper_asr()
    assert isinstance(asr, FasterWhisperSpeechRecognizer)
    assert (asr.compute_type, asr.beam_size, asr.language, asr.device) == ("int8", 1, "ko", "cpu")
    clips = [soundfile.read(speech_file(name), dtype="float32")[0] for name, _ in SPEECH]
    texts = asr.transcribe(clips)
    assert character_error_rate([t for _, t in SPEECH], texts)["cer"] < 0.3
    # any rate and channel count: the same clip at 44.1 kHz stereo gives a close transcript
    from multistill.audio_utils import resample

    stereo = np.stack([resample(clips[2], 16000, 44100)] * 2, axis=1)
    assert character_error_rate([texts[2]], [asr(stereo, 44100)])["cer"] < 0.2
    with pytest.raises(ValueError, match="ASR input 0: the audio is empty"):
        asr(np.zeros(0, dtype=np.float32))


def test_faster_whisper_caps_decoding_by_the_clip_duration():
    """Issue 22.8: speech Whisper cannot read (here reversed) must not decode until the 448-token context is full
    at every fallback temperature; the cap grows with the clip's duration and is reported by describe()."""
    asr = faster_whisper_asr()
    calls = []
    transcribe = asr.model.transcribe

    def recording(clip, **kwargs):
        calls.append((len(clip), kwargs["max_new_tokens"]))
        return transcribe(clip, **kwargs)

    asr.model.transcribe = recording
    try:
        clip = soundfile.read(speech_file(SPEECH[0][0]), dtype="float32")[0]
        texts = asr.transcribe([clip, clip[::-1].copy()])
    finally:
        del asr.model.transcribe
    seconds = len(clip) / 16000
    expected = 16 + int(np.ceil(15 * seconds))
    assert calls == [(len(clip), expected), (len(clip), expected)]
    tokens = asr.model.hf_tokenizer.encode(texts[1], add_special_tokens=False).ids
    assert len(tokens) <= expected
    assert asr.max_new_tokens(np.zeros(16000 * 40, dtype=np.float32)) == 440
    assert "16 + 15 per second" in asr.describe()["max_new_tokens"]


def test_a_short_encoder_window_encodes_fewer_frames_and_keeps_the_transcripts():
    """``encoder_window_s``: a clip that fits the window is encoded on it (its log-mel frames cut from 3,000 to
    100 a second of the window); a longer clip keeps Whisper's 30 s; the setting is in the cache key."""
    full, short = faster_whisper_asr(), faster_whisper_asr(10.0)
    frames = []
    encode = short.model.encode

    def recording(features):
        frames.append(features.shape[-1])
        return encode(features)

    clips = [soundfile.read(speech_file(name), dtype="float32")[0] for name, _ in SPEECH]
    short.model.encode = recording  # below the recognizer's own hook, which cuts the window before calling it
    try:
        texts = short.transcribe(clips)
        long_clip = np.concatenate([clips[0]] * 4)  # about 14 s: over the window
        short.transcribe([long_clip])
    finally:
        del short.model.encode
    assert frames == [1000, 1000, 1000, 3000]
    assert [short.encoder_frames(c) for c in clips] == [1000] * 3 and short.encoder_frames(long_clip) is None
    assert full.encoder_frames(clips[0]) is None and full.encoder_window_s == 30.0
    # the same words as the 30 s window on these utterances, and the 30 s transcripts' CER against the gold
    assert character_error_rate([t for _, t in SPEECH], texts)["cer"] < 0.3
    assert character_error_rate(full.transcribe(clips), texts)["cer"] < 0.1
    assert short.fingerprint != full.fingerprint and "encoder_window_s=10.0" in short.fingerprint
    text, states = short.transcribe_with_encoder(clips[2])
    assert states.shape == (500, 512) and text == texts[2]


def test_encoder_window_argument_errors():
    with pytest.raises(ValueError, match="encoder window must be 1-30 s, got 0.5"):
        load_asr(whisper_base_folder(), encoder_window_s=0.5)
    with pytest.raises(ValueError, match="needs the faster-whisper engine"):
        load_asr(tiny_whisper_folder(), encoder_window_s=10)
    assert load_asr(tiny_whisper_folder(), encoder_window_s=30).engine == "transformers"


def test_transcription_flags_follow_whispers_thresholds():
    from multistill.asr import Transcription

    assert Transcription("").flags == ["asr_empty_text"] and Transcription("  ").flags == ["asr_empty_text"]
    assert Transcription("네").flags == []  # an engine without confidence: nothing to doubt
    assert Transcription("네", avg_logprob=-0.3, no_speech_prob=0.1).flags == []
    assert Transcription("네", avg_logprob=-1.2, no_speech_prob=0.1).flags == ["asr_low_confidence"]
    assert Transcription("네", avg_logprob=-0.3, no_speech_prob=0.7).flags == ["asr_low_confidence"]


def test_faster_whisper_flags_what_it_cannot_read():
    """Issue 22.8-9: speech Whisper cannot read (reversed) is flagged low-confidence, silence gives empty text;
    real speech is neither; transcribe() gives the same texts as transcribe_details()."""
    asr = faster_whisper_asr()
    clip = soundfile.read(speech_file(SPEECH[0][0]), dtype="float32")[0]
    clips = [clip, clip[::-1].copy(), np.zeros_like(clip)]
    details = asr.transcribe_details(clips)
    assert [d.flags for d in details] == [[], ["asr_low_confidence"], ["asr_empty_text"]]
    assert details[0].avg_logprob > -1.0 and details[1].avg_logprob < -1.0 and details[2].text == ""
    assert asr.transcribe(clips) == [d.text for d in details]
    text, states = asr.transcribe_with_encoder(clip)
    assert text == details[0].text and states.shape == (1500, 512)


def test_transformers_engine_batches_like_one_by_one():
    single = load_asr(tiny_whisper_folder())
    batched = load_asr(tiny_whisper_folder(), batch_size=2)
    assert isinstance(single, TransformersSpeechRecognizer) and single.is_whisper
    rng = np.random.default_rng(0)
    clips = [(0.1 * rng.standard_normal(n)).astype(np.float32) for n in (16000, 24000, 40000)]
    texts = single.transcribe(clips)
    assert len(texts) == 3 and all(isinstance(t, str) and t == " ".join(t.split()) for t in texts)
    assert batched.transcribe(clips) == texts
    assert single(clips[0]) == texts[0]
    assert "engine=transformers" in single.fingerprint and single.fingerprint != faster_whisper_asr().fingerprint


def test_transformers_engine_transcribes_real_korean_speech_with_whisper_base():
    asr = load_asr(converted_whisper_base_folder(), batch_size=3)
    assert isinstance(asr, TransformersSpeechRecognizer) and asr.is_whisper and asr.language == "ko"
    clips = [soundfile.read(speech_file(name), dtype="float32")[0] for name, _ in SPEECH]
    texts = asr.transcribe(clips)
    gold = [t for _, t in SPEECH]
    assert character_error_rate(gold, texts)["cer"] < 0.3
    # the same weights as faster-whisper's (int8 there, float32 here): close transcripts
    assert character_error_rate(faster_whisper_asr().transcribe(clips), texts)["cer"] < 0.2


def _audio_dataset(folder, n=4):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        path = folder / f"clip{i}.wav"
        soundfile.write(path, (0.1 * rng.standard_normal(8000 + 4000 * i)).astype(np.float32), 22050)
        paths.append(str(path))
    dataset = datasets.Dataset.from_dict({"id": [f"u{i}" for i in range(n)], "audio": paths})
    dataset = dataset.cast_column("audio", datasets.Audio(sampling_rate=16000))
    dataset.save_to_disk(folder / "ds")
    return datasets.load_from_disk(str(folder / "ds"))  # backed by files: map results are cached there


def test_asr_text_column_is_cached_per_recognizer(tmp_path):
    dataset = _audio_dataset(tmp_path)
    first = ScriptedASR(["하나", "둘", "셋", "넷"])
    out = add_asr_transcripts(dataset, first, batch_size=3)
    assert out["asr_text"] == ["하나", "둘", "셋", "넷"] and out.column_names == ["id", "audio", "asr_text"]
    # resampled to 16 kHz mono before recognition: 22.05 kHz clips of 8000 + 4000 i samples
    assert first.calls == pytest.approx([(8000 + 4000 * i) / 22050 for i in range(4)], abs=1e-3)
    again = ScriptedASR(["다른"] * 4)  # same name, engine, language: same fingerprint -> read from the cache
    assert add_asr_transcripts(dataset, again)["asr_text"] == out["asr_text"] and again.calls == []
    other = ScriptedASR(["다른"] * 4, name="another model")
    assert add_asr_transcripts(dataset, other)["asr_text"] == ["다른"] * 4 and len(other.calls) == 4
    assert add_asr_transcripts(dataset, other, column="whisper_text").column_names[-1] == "whisper_text"
    with pytest.raises(ValueError, match="no 'speech' column"):
        add_asr_transcripts(dataset, first, audio_column="speech")


def test_asr_text_of_real_kemdy_utterances(kemdy_sample_dataset):
    subset = kemdy_sample_dataset.filter(lambda i: i in {"Sess01_script01_User002M_020", "Sess01_script01_User002M_028"},
                                         input_columns=["id"])
    out = add_asr_transcripts(subset, faster_whisper_asr())
    assert len(out) == 2
    assert character_error_rate(out["text"], out["asr_text"])["cer"] < 0.3
