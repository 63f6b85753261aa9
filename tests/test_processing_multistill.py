"""MultiStillProcessor: audio decoding/mixing/resampling, text cleaning, errors, saving."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoProcessor

from multistill.annotations import clean_transcript
from multistill.processing_multistill import MultiStillProcessor, to_mono

try:
    from _fixtures_model import TEXTS, tiny_encoder_dirs, waves
except ImportError:  # tests/ imported as a package
    from tests._fixtures_model import TEXTS, tiny_encoder_dirs, waves


@functools.cache
def processor() -> MultiStillProcessor:
    dirs = tiny_encoder_dirs()
    return MultiStillProcessor.from_encoders(dirs["audio"], dirs["text"])


def sine(seconds: float, rate: int, freq: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_outputs_and_text_cleaning():
    proc = processor()
    batch = proc(audio=waves(0.5, 1.0), text=["l/ 안녕하세요 (진짜+정말) 좋아요", "b/ 네."], sampling_rate=16000)
    assert set(batch) == {"input_values", "attention_mask", "input_ids", "text_attention_mask", "token_type_ids"}
    assert batch["input_values"].shape == (2, 16000) and batch["input_values"].dtype == torch.float32
    assert batch["attention_mask"].sum(-1).tolist() == [8000, 16000]
    # normalised per utterance (zero mean, unit variance over the valid samples), padding stays 0
    first = batch["input_values"][0, :8000]
    assert abs(float(first.mean())) < 1e-3 and abs(float(first.std()) - 1) < 1e-2
    assert torch.all(batch["input_values"][0, 8000:] == 0)
    decoded = proc.batch_decode(batch["input_ids"], skip_special_tokens=True)
    assert decoded[0].replace(" ", "") == clean_transcript("l/ 안녕하세요 (진짜+정말) 좋아요").replace(" ", "")
    assert "l/" not in decoded[0] and "진짜" not in decoded[0]


def test_stereo_44k_array_both_layouts_and_resampling():
    proc = processor()
    left, right = sine(1.0, 44100), sine(1.0, 44100, freq=330.0)
    channels_first = np.stack([left, right])  # (2, 44100)
    a = proc(audio=channels_first, text="네", sampling_rate=44100)
    b = proc(audio=channels_first.T, text="네", sampling_rate=44100)  # (44100, 2)
    assert a["input_values"].shape == (1, 16000)
    torch.testing.assert_close(a["input_values"], b["input_values"])
    mono = proc(audio=(left + right) / 2, text="네", sampling_rate=44100)
    torch.testing.assert_close(a["input_values"], mono["input_values"])
    # the resampled tone keeps its frequency: the spectrum peaks at 220 and 330 Hz
    spectrum = np.abs(np.fft.rfft(proc.prepare_audio(left, 44100)[0]))
    assert abs(int(np.argmax(spectrum)) - 220) <= 1


def test_torch_tensor_int16_and_list_inputs():
    proc = processor()
    wave = sine(0.5, 16000)
    as_int16 = (wave * 32767).astype(np.int16)
    ref = proc.prepare_audio(wave, 16000)[0]
    np.testing.assert_allclose(proc.prepare_audio(as_int16, 16000)[0], ref, atol=1e-4)
    np.testing.assert_allclose(proc.prepare_audio(torch.from_numpy(wave), 16000)[0], ref)
    np.testing.assert_allclose(proc.prepare_audio(wave.tolist(), 16000)[0], ref)  # a list of numbers is one clip
    assert len(proc.prepare_audio([wave, torch.from_numpy(wave)], 16000)) == 2
    assert len(proc.prepare_audio({"array": wave, "sampling_rate": 16000})) == 1


def test_file_paths_any_rate_and_channels(tmp_path):
    proc = processor()
    stereo = np.stack([sine(0.5, 22050), sine(0.5, 22050)], axis=1)
    path = tmp_path / "clip.wav"
    soundfile.write(path, stereo, 22050)
    batch = proc(audio=[str(path), path], text=["하나", "둘"])  # no sampling_rate needed for files
    assert batch["input_values"].shape == (2, 8000)
    from_array = proc(audio=stereo, text="하나", sampling_rate=22050)
    torch.testing.assert_close(batch["input_values"][:1], from_array["input_values"], atol=1e-4, rtol=0)
    assert len(proc.prepare_audio({"path": str(path)})) == 1


def test_truncation_and_minimum_length():
    proc = MultiStillProcessor(processor().feature_extractor, processor().tokenizer, max_audio_frames=10,
                               max_text_tokens=6)
    batch = proc(audio=[sine(1.0, 16000), sine(0.01, 16000)], text=[TEXTS[0], "네"], sampling_rate=16000)
    assert batch["input_values"].shape == (2, 3200)  # 10 frames * 320 samples
    assert batch["attention_mask"][1].sum() == 400  # 10 ms padded to one 25 ms wav2vec2 frame
    assert batch["input_ids"].shape[1] == 6 and batch["input_ids"][0, -1] == proc.tokenizer.sep_token_id


@pytest.mark.parametrize(
    ("audio", "kwargs", "message"),
    [
        (np.zeros(0, dtype=np.float32), {"sampling_rate": 16000}, "is empty"),
        (np.full(1000, np.nan, dtype=np.float32), {"sampling_rate": 16000}, "all samples are NaN"),
        (np.array([0.1, np.inf] * 500, dtype=np.float32), {"sampling_rate": 16000}, "500 of 1000 samples"),
        (np.zeros(1000, dtype=np.float32), {}, "`sampling_rate` is required"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": -5}, "invalid sampling_rate"),
        (np.zeros((40, 1000), dtype=np.float32), {"sampling_rate": 16000}, "pass a batch as a list"),
        (np.zeros((2, 3, 4), dtype=np.float32), {"sampling_rate": 16000}, "1-D (mono) or 2-D"),
        ([], {"sampling_rate": 16000}, "empty list"),
        ("/no/such/file.wav", {}, "Audio file not found: /no/such/file.wav"),
    ],
)
def test_bad_audio_raises_clear_errors(audio, kwargs, message):
    with pytest.raises(ValueError) as info:
        processor()(audio=audio, text="네", **kwargs)
    assert message in str(info.value)


def test_non_audio_file_is_named(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    with pytest.raises(ValueError, match=r"notes\.wav is not a readable audio file"):
        processor()(audio=str(fake), text="네")
    with pytest.raises(ValueError, match="not a file"):
        processor()(audio=str(tmp_path), text="네")


def test_missing_modalities():
    proc = processor()
    with pytest.raises(ValueError, match="`text` is missing"):
        proc(audio=waves(0.5), sampling_rate=16000)
    with pytest.raises(ValueError, match="`audio` is missing"):
        proc(text="네")
    with pytest.raises(ValueError, match="Pass `audio` and/or `text`"):
        proc()
    assert set(proc(audio=waves(0.5), sampling_rate=16000, modalities="audio")) == {"input_values", "attention_mask"}
    text_proc = MultiStillProcessor(proc.feature_extractor, proc.tokenizer, modalities="text")
    assert "input_ids" in text_proc(text=["네", "아니요"])
    with pytest.raises(ValueError, match="batches differ"):
        proc(audio=waves(0.5), text=["하나", "둘"], sampling_rate=16000)
    with pytest.raises(ValueError, match="string or a non-empty list"):
        proc(audio=waves(0.5), text=[3], sampling_rate=16000)
    with pytest.raises(ValueError, match="modalities"):
        MultiStillProcessor(proc.feature_extractor, proc.tokenizer, modalities="video")


def test_to_mono_rule():
    assert to_mono(np.ones((2, 10))).shape == (10,)
    assert to_mono(np.ones((10, 2))).shape == (10,)
    assert to_mono(np.ones((3, 3))).shape == (3,)  # square: (channels, samples)
    np.testing.assert_allclose(to_mono(np.array([0, 255], dtype=np.uint8)), [-1.0, 127 / 128])


def test_save_and_auto_load(tmp_path):
    proc = MultiStillProcessor(processor().feature_extractor, processor().tokenizer, modalities="text",
                               max_audio_frames=100, max_text_tokens=32)
    proc.save_pretrained(tmp_path)
    assert (tmp_path / "processing_multistill.py").exists() and (tmp_path / "annotations.py").exists()
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MultiStillProcessor)
    assert (loaded.modalities, loaded.max_audio_frames, loaded.max_text_tokens) == (["text"], 100, 32)
    assert loaded.feature_extractor.return_attention_mask and loaded.feature_extractor.do_normalize
    a = proc(audio=waves(0.3), text=TEXTS[0], sampling_rate=16000)
    b = loaded(audio=waves(0.3), text=TEXTS[0], sampling_rate=16000)
    assert all(torch.equal(a[k], b[k]) for k in a)
