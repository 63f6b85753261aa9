"""MultiStillProcessor: audio decoding/mixing/resampling, text cleaning, errors, saving."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import soundfile
import torch
from transformers import AutoConfig, AutoProcessor, WhisperFeatureExtractor

from multistill.annotations import clean_transcript
from multistill.configuration_multistill import MultiStillConfig
from multistill.processing_multistill import MultiStillProcessor, audio_frame_geometry, to_mono

try:
    from _fixtures_model import TEXTS, tiny_encoder_dirs, waves
except ImportError:  # tests/ imported as a package
    from tests._fixtures_model import TEXTS, tiny_encoder_dirs, waves


@functools.cache
def processor() -> MultiStillProcessor:
    dirs = tiny_encoder_dirs()
    return MultiStillProcessor.from_encoders(dirs["audio"], dirs["text"])


@functools.cache
def whisper_processor() -> MultiStillProcessor:
    dirs = tiny_encoder_dirs("whisper")
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
    audio_config = AutoConfig.from_pretrained(tiny_encoder_dirs()["audio"])
    config = MultiStillConfig(audio_config=audio_config, max_audio_frames=10, max_text_tokens=6)
    proc = MultiStillProcessor.from_model_config(config, processor().feature_extractor, processor().tokenizer)
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
                               max_audio_frames=100, samples_per_frame=320, max_text_tokens=32, min_audio_samples=400)
    proc.save_pretrained(tmp_path)
    assert (tmp_path / "processing_multistill.py").exists() and (tmp_path / "annotations.py").exists()
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded, MultiStillProcessor)
    assert (loaded.modalities, loaded.max_audio_frames, loaded.max_text_tokens) == (["text"], 100, 32)
    assert (loaded.samples_per_frame, loaded.min_audio_samples, loaded.audio_window_samples) == (320, 400, None)
    assert loaded.feature_extractor.return_attention_mask and loaded.feature_extractor.do_normalize
    a = proc(audio=waves(0.3), text=TEXTS[0], sampling_rate=16000)
    b = loaded(audio=waves(0.3), text=TEXTS[0], sampling_rate=16000)
    assert all(torch.equal(a[k], b[k]) for k in a)


# ------------------------------------------------------------------------------------------ encoder geometry
def test_frame_hop_is_derived_from_the_encoder():
    wav2vec2 = processor()
    assert (wav2vec2.samples_per_frame, wav2vec2.min_audio_samples, wav2vec2.audio_window_samples) == (320, 400, None)
    assert wav2vec2.max_audio_samples == 512 * 320 and wav2vec2.audio_input_name == "input_values"
    whisper = whisper_processor()
    assert isinstance(whisper.feature_extractor, WhisperFeatureExtractor)
    assert (whisper.samples_per_frame, whisper.min_audio_samples, whisper.audio_window_samples) == (320, 160, 480000)
    assert whisper.audio_input_name == "input_features"
    fbank = MultiStillConfig.from_preset("light_student", audio_config=AutoConfig.from_pretrained(
        tiny_encoder_dirs()["audio"]), fbank_conv_strides=[2, 2, 2], fbank_conv_kernel_sizes=[3, 3, 3])
    geometry = audio_frame_geometry(fbank.audio_config, wav2vec2.feature_extractor)
    assert geometry == {"samples_per_frame": 1280, "min_audio_samples": 400, "audio_window_samples": None}
    light = MultiStillProcessor.from_model_config(fbank, wav2vec2.feature_extractor, wav2vec2.tokenizer)
    assert light.max_audio_samples == 512 * 1280  # the light student keeps 512 of its own (51.2 ms) frames
    paper = MultiStillConfig()  # kresnik/wav2vec2-large-xlsr-korean: 7 convs, stride 320, receptive field 400
    assert audio_frame_geometry(paper.audio_config, wav2vec2.feature_extractor)["samples_per_frame"] == 320
    assert audio_frame_geometry(paper.audio_config, wav2vec2.feature_extractor)["min_audio_samples"] == 400
    with pytest.raises(ValueError, match="Cannot derive the frame hop"):
        audio_frame_geometry(AutoConfig.for_model("bert"), wav2vec2.feature_extractor)


def test_whisper_features_are_padded_to_the_30_s_window():
    proc = whisper_processor()
    batch = proc(audio=waves(0.3, 2.0), text=TEXTS[:2], sampling_rate=16000)
    assert set(batch) == {"input_features", "attention_mask", "input_ids", "text_attention_mask", "token_type_ids"}
    assert batch["input_features"].shape == (2, 80, 3000)  # every clip padded to 480,000 samples
    assert batch["attention_mask"].shape == (2, 3000)
    assert batch["attention_mask"].sum(-1).tolist() == [30, 200]  # mel frames of the real audio (10 ms hop)
    alone = proc(audio=waves(0.3), text=TEXTS[:1], sampling_rate=16000)
    torch.testing.assert_close(alone["input_features"][0], batch["input_features"][0])  # no batch dependence
    # truncation follows max_audio_frames (512 frames x 320 samples = 10.24 s)
    long = proc(audio=waves(12.0), text=TEXTS[:1], sampling_rate=16000)
    assert long["attention_mask"].sum().item() == 1024


def test_feature_extractor_must_match_the_audio_encoder(tmp_path):
    whisper_config = AutoConfig.from_pretrained(tiny_encoder_dirs("whisper")["audio"])
    config = MultiStillConfig(audio_config=whisper_config)
    with pytest.raises(ValueError, match="takes `input_features` but the feature extractor"):
        MultiStillProcessor.from_model_config(config, processor().feature_extractor, processor().tokenizer)
    with pytest.raises(ValueError, match="needs `samples_per_frame`"):
        MultiStillProcessor(processor().feature_extractor, processor().tokenizer, max_audio_frames=10)
    # a text-only model needs no audio geometry
    text_only = MultiStillProcessor.from_model_config(MultiStillConfig(audio_config=whisper_config, modalities="text"),
                                                      processor().feature_extractor, processor().tokenizer)
    assert text_only.max_audio_samples is None


def test_whisper_processor_round_trip(tmp_path):
    proc = whisper_processor()
    proc.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "processor_config.json").read_text())
    assert (saved["samples_per_frame"], saved["audio_window_samples"], saved["max_audio_frames"]) == (320, 480000, 512)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.feature_extractor, WhisperFeatureExtractor) and loaded.max_audio_samples == 163840
    a = proc(audio=waves(0.7), text=TEXTS[0], sampling_rate=16000)
    b = loaded(audio=waves(0.7), text=TEXTS[0], sampling_rate=16000)
    assert all(torch.equal(a[k], b[k]) for k in a)
