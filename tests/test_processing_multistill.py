"""MultiStillProcessor: audio decoding/mixing/resampling, text cleaning, errors, saving."""

from __future__ import annotations

import functools
import json
import math
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile
import torch
from _fixtures_model import DAMAGES, TEXTS, damaged_copy, tiny_encoder_dirs, waves
from transformers import AutoConfig, AutoProcessor, WhisperFeatureExtractor

from multistill.audio_utils import (
    _resample_numpy,
    decode_audio,
    read_wav_bytes,
    resample,
    to_mono,
)
from multistill.configuration_multistill import MultiStillConfig
from multistill.processing_multistill import MultiStillProcessor, audio_frame_geometry, clean_transcript


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
    batch = proc(audio=[sine(1.0, 16000), sine(0.1, 16000)], text=[TEXTS[0], "네"], sampling_rate=16000)
    assert batch["input_values"].shape == (2, 3200)  # 10 frames * 320 samples
    assert batch["attention_mask"][1].sum() == 1600  # 0.1 s, the shortest clip accepted
    assert batch["input_ids"].shape[1] == 6 and batch["input_ids"][0, -1] == proc.tokenizer.sep_token_id
    # shorter clips (a few samples, 10 ms) are rejected, not zero-padded and classified
    for samples in (1, 10, 160, 1599):
        with pytest.raises(ValueError, match=r"audio item 1: the audio is .* at least 0\.1 s is needed"):
            proc(audio=[sine(1.0, 16000), np.ones(samples, np.float32)], text=["가", "네"], sampling_rate=16000)
    with pytest.raises(ValueError, match=r"\(4409 samples at 44100 Hz\)"):  # judged at the input's own rate
        proc(audio=sine(0.09998, 44100), text="네", sampling_rate=44100)


@pytest.mark.parametrize(
    ("audio", "kwargs", "message"),
    [
        (np.zeros(0, dtype=np.float32), {"sampling_rate": 16000}, "is empty"),
        (np.full(1000, np.nan, dtype=np.float32), {"sampling_rate": 16000}, "all samples are NaN"),
        (np.array([0.1, np.inf] * 500, dtype=np.float32), {"sampling_rate": 16000}, "500 of 1000 samples"),
        (np.zeros(1000, dtype=np.float32), {}, "'sampling_rate' is required"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": -5}, "sampling_rate -5 Hz is implausible"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": 16}, "16 looks like kHz: pass 16000"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": 44.1}, "44.1 looks like kHz: pass 44100"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": float("nan")}, "sampling_rate is nan"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": 1_000_000}, "expected 4,000-192,000 Hz"),
        (np.zeros(1000, dtype=np.float32), {"sampling_rate": "16000"}, "must be a number of Hz"),
        (np.zeros((40, 1000), dtype=np.float32), {"sampling_rate": 16000}, "pass a batch as a list"),
        (np.zeros((2, 3, 4), dtype=np.float32), {"sampling_rate": 16000}, "1-D (mono) or 2-D"),
        ([], {"sampling_rate": 16000}, "empty list"),
        ("/no/such/file.wav", {}, "audio item 0 (/no/such/file.wav): audio file not found: /no/such/file.wav"),
    ],
)
def test_bad_audio_raises_clear_errors(audio, kwargs, message):
    with pytest.raises(ValueError) as info:
        processor()(audio=audio, text="네", **kwargs)
    assert message in str(info.value)


def test_non_audio_file_is_named(tmp_path):
    fake = tmp_path / "notes.wav"
    fake.write_text("this is not audio")
    with pytest.raises(ValueError, match=r"notes\.wav\): cannot decode audio file .*notes\.wav as audio"):
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


def test_text_that_cannot_be_encoded_is_named():
    # issue 22.5: the tokenizer raised a TypeError without naming the text
    with pytest.raises(ValueError, match=r"text 1: the text cannot be encoded as UTF-8 \(character 1"):
        processor()(audio=waves(0.5, 0.5), text=["좋아요", "a\ud800b"], sampling_rate=16000)


@pytest.mark.parametrize("damage", ["no_processor_config", "bad_tokenizer"])
def test_damaged_processor_folder_names_the_file(tmp_path, damage):
    # issue 22.3: transformers named preprocessor_config.json (not the missing file) or no file at all
    processor().save_pretrained(tmp_path / "saved")
    folder = damaged_copy(str(tmp_path / "saved"), damage, tmp_path / damage)
    with pytest.raises(OSError, match=re.escape(DAMAGES[damage])):
        MultiStillProcessor.from_pretrained(folder)


def test_to_mono_rule():
    assert to_mono(np.ones((2, 10))).shape == (10,)
    assert to_mono(np.ones((10, 2))).shape == (10,)
    assert to_mono(np.ones((3, 3))).shape == (3,)  # square: (channels, samples)
    np.testing.assert_allclose(to_mono(np.array([0, 255], dtype=np.uint8)), [-1.0, 127 / 128])
    for dtype in (np.bool_, np.complex64, np.complex128):  # issue 22.6: complex was silently cast to real
        with pytest.raises(ValueError, match="must hold real numbers"):
            to_mono(np.ones(10, dtype=dtype))


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


# --------------------------------------------------------------------------- decoding without optional packages
@pytest.fixture
def no_optional_decoders(monkeypatch):
    """As in an environment with only torch + transformers: soundfile, torchcodec, scipy, librosa missing."""
    for name in ("soundfile", "torchcodec", "torchcodec.decoders", "scipy", "scipy.signal", "librosa", "soxr"):
        monkeypatch.setitem(sys.modules, name, None)  # `import name` raises ImportError


@pytest.mark.parametrize(
    ("subtype", "fmt", "channels", "atol"),
    [("PCM_U8", "WAV", 1, 0), ("PCM_16", "WAV", 2, 0), ("PCM_24", "WAV", 1, 0), ("PCM_32", "WAV", 2, 0),
     ("FLOAT", "WAV", 1, 0), ("DOUBLE", "WAV", 1, 1e-7), ("PCM_16", "WAVEX", 3, 0), ("FLOAT", "WAVEX", 2, 0)],
)
def test_wav_decoding_matches_soundfile_without_it(tmp_path, monkeypatch, subtype, fmt, channels, atol):
    rng = np.random.default_rng(3)
    signal = np.clip(0.3 * rng.standard_normal((2205, channels)), -1, 1)
    path = tmp_path / f"clip_{subtype}_{fmt}.wav"
    soundfile.write(path, signal, 22050, subtype=subtype, format=fmt)
    reference, rate = soundfile.read(path, dtype="float32", always_2d=True)
    for name in ("soundfile", "torchcodec", "torchcodec.decoders"):
        monkeypatch.setitem(sys.modules, name, None)
    array, decoded_rate = decode_audio(path)
    assert decoded_rate == rate == 22050
    np.testing.assert_allclose(array, reference.mean(axis=1), atol=atol, rtol=0)
    raw, _ = read_wav_bytes(path.read_bytes())
    np.testing.assert_allclose(raw, reference, atol=atol, rtol=0)


def test_truncated_wav_decodes_complete_frames_with_a_warning(tmp_path, caplog, no_optional_decoders):
    path = tmp_path / "cut.wav"
    soundfile.write(path, sine(0.5, 16000), 16000, subtype="PCM_16")
    data = path.read_bytes()
    with caplog.at_level("WARNING"):
        array, rate = decode_audio(data[:-3])  # cut mid-sample: the declared data size is larger than the file
    assert rate == 16000 and array.shape == (7998,)
    assert "ends in the middle of a frame" in caplog.text


def test_without_optional_decoders_wav_path_bytes_resampling_work(tmp_path, no_optional_decoders):
    path = tmp_path / "speech.wav"
    wave_44k = sine(1.0, 44100)
    with open(path, "wb") as f:  # stdlib writer: nothing optional involved
        import wave

        with wave.open(f, "wb") as w:
            w.setnchannels(1), w.setsampwidth(2), w.setframerate(44100)
            w.writeframes((wave_44k * 32767).astype("<i2").tobytes())
    proc = processor()
    from_path = proc(audio=str(path), text="네")["input_values"]
    from_bytes = proc.prepare_audio({"array": decode_audio(path.read_bytes())[0], "sampling_rate": 44100})[0]
    assert from_path.shape == (1, 16000) and from_bytes.shape == (16000,)
    spectrum = np.abs(np.fft.rfft(from_bytes))
    assert abs(int(np.argmax(spectrum)) - 220) <= 1


def test_other_formats_without_decoders_say_what_to_install(tmp_path, no_optional_decoders):
    flac = tmp_path / "clip.flac"
    flac.write_bytes(b"fLaC" + bytes(100))
    with pytest.raises(ValueError, match=r"clip\.flac.*pip install soundfile.*pip install torchcodec"):
        decode_audio(flac, "input 0")


def test_torchcodec_that_fails_to_load_falls_back(tmp_path, monkeypatch):
    """torchcodec built for another torch raises OSError on import: decoding goes on without it."""
    import builtins

    real_import = builtins.__import__

    def broken_torchcodec(name, *args, **kwargs):
        if name.startswith("torchcodec"):
            raise OSError("Could not load this library: libtorchcodec_core.so")
        return real_import(name, *args, **kwargs)

    flac = tmp_path / "clip.flac"
    soundfile.write(flac, sine(0.5, 16000), 16000, format="FLAC")
    monkeypatch.setattr(builtins, "__import__", broken_torchcodec)
    array, rate = decode_audio(flac)
    assert rate == 16000 and array.shape == (8000,)


def test_implausible_rate_in_a_wav_header_is_named(tmp_path):
    path = tmp_path / "odd.wav"
    soundfile.write(path, sine(0.5, 16000), 16000, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[24:28] = (1000).to_bytes(4, "little")  # header says 1 kHz
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"input 2 \(.*odd\.wav\).*sampling_rate 1000 Hz is implausible"):
        decode_audio(path, f"input 2 ({path})")


RESAMPLERS = {"soxr": resample, "numpy fallback": _resample_numpy}


@pytest.mark.parametrize("resampler", sorted(RESAMPLERS))
@pytest.mark.parametrize("orig", [8000, 11025, 22050, 44100, 48000, 96000, 44101])
def test_resample_is_band_limited_and_matches_scipy(orig, resampler):
    scipy_signal = pytest.importorskip("scipy.signal")
    rng = np.random.default_rng(0)
    x = rng.standard_normal(orig).astype(np.float32)
    y = RESAMPLERS[resampler](x, orig, 16000)
    gcd = math.gcd(orig, 16000)
    reference = scipy_signal.resample_poly(x.astype(np.float64), 16000 // gcd, orig // gcd)
    assert y.shape == reference.shape and y.dtype == np.float32
    # same content in the pass band (below 6 kHz; 3.6 kHz for 8 kHz input)
    n = y.shape[0]
    band = np.fft.rfftfreq(n, 1 / 16000) < min(6000, 0.45 * orig)
    ours, theirs = np.fft.rfft(y)[band], np.fft.rfft(reference)[band]
    assert np.sqrt(np.mean(np.abs(ours - theirs) ** 2) / np.mean(np.abs(theirs) ** 2)) < 1e-2


@pytest.mark.parametrize("resampler", sorted(RESAMPLERS))
def test_resample_removes_what_would_alias(resampler):
    t = np.arange(2 * 44100) / 44100
    for freq, low, high in ((1000, -0.05, 0.05), (7000, -0.3, 0.05), (8500, -300, -60), (12000, -300, -60)):
        y = RESAMPLERS[resampler](np.sin(2 * np.pi * freq * t).astype(np.float32), 44100, 16000)[2000:-2000]
        gain_db = 20 * np.log10(np.sqrt(np.mean(y.astype(np.float64) ** 2) * 2))
        assert low < gain_db < high, (freq, gain_db)


def test_shipped_code_imports_only_torch_transformers_and_numpy():
    """transformers refuses remote code whose imports (outside try blocks) are not installed."""
    from transformers.dynamic_module_utils import get_imports

    root = Path(__file__).resolve().parents[1] / "multistill"
    # (safetensors is a requirement of transformers itself: modeling_multistill reads weight headers with it)
    allowed = {"numpy", "torch", "transformers", "safetensors"} | set(sys.stdlib_module_names)
    for name in ("configuration_multistill.py", "modeling_multistill.py", "modeling_cross_attention.py",
                 "modeling_fbank.py", "modeling_encoders.py", "processing_multistill.py",
                 "pipeline_multistill.py", "annotations.py", "audio_utils.py", "asr.py"):
        assert set(get_imports(root / name)) <= allowed, (name, set(get_imports(root / name)) - allowed)


# ------------------------------------------------------------------------------------------ encoder geometry
def test_frame_hop_is_derived_from_the_encoder():
    wav2vec2 = processor()
    assert (wav2vec2.samples_per_frame, wav2vec2.min_audio_samples, wav2vec2.audio_window_samples) == (320, 400, None)
    assert wav2vec2.max_audio_samples == 512 * 320 and wav2vec2.audio_input_name == "input_values"
    whisper = whisper_processor()
    assert isinstance(whisper.feature_extractor, WhisperFeatureExtractor)
    # Whisper encodes the utterance's own length by default; the 30 s window only with audio_full_window
    assert (whisper.samples_per_frame, whisper.min_audio_samples, whisper.audio_window_samples) == (320, 160, None)
    assert whisper.audio_input_name == "input_features"
    dirs = tiny_encoder_dirs("whisper")
    full = MultiStillProcessor.from_encoders(dirs["audio"], dirs["text"], config=MultiStillConfig(
        audio_config=AutoConfig.from_pretrained(dirs["audio"]), audio_full_window=True))
    assert full.audio_window_samples == 480000
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


def test_whisper_features_cover_the_utterance_and_never_depend_on_the_batch():
    proc = whisper_processor()
    batch = proc(audio=waves(0.3, 2.0), text=TEXTS[:2], sampling_rate=16000)
    assert set(batch) == {"input_features", "attention_mask", "input_ids", "text_attention_mask", "token_type_ids"}
    assert batch["input_features"].shape == (2, 80, 200)  # the longest clip's mel frames, not the 30 s window
    assert batch["attention_mask"].sum(-1).tolist() == [30, 200]  # mel frames of the real audio (10 ms hop)
    alone = proc(audio=waves(0.3), text=TEXTS[:1], sampling_rate=16000)
    assert alone["input_features"].shape == (1, 80, 30)
    torch.testing.assert_close(alone["input_features"][0], batch["input_features"][0, :, :30])  # no batch dependence
    assert not batch["input_features"][0, :, 30:].any()  # zero padding, as a clip alone is padded in the encoder
    # truncation follows max_audio_frames (512 frames x 320 samples = 10.24 s)
    long = proc(audio=waves(12.0), text=TEXTS[:1], sampling_rate=16000)
    assert long["attention_mask"].sum().item() == 1024
    dirs = tiny_encoder_dirs("whisper")
    window = MultiStillProcessor.from_encoders(dirs["audio"], dirs["text"], config=MultiStillConfig(
        audio_config=AutoConfig.from_pretrained(dirs["audio"]), audio_full_window=True))
    padded = window(audio=waves(0.3, 2.0), text=TEXTS[:2], sampling_rate=16000)
    assert padded["input_features"].shape == (2, 80, 3000)  # audio_full_window: every clip in the 30 s window


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
    assert (saved["samples_per_frame"], saved["audio_window_samples"], saved["max_audio_frames"]) == (320, None, 512)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    assert isinstance(loaded.feature_extractor, WhisperFeatureExtractor) and loaded.max_audio_samples == 163840
    a = proc(audio=waves(0.7), text=TEXTS[0], sampling_rate=16000)
    b = loaded(audio=waves(0.7), text=TEXTS[0], sampling_rate=16000)
    assert all(torch.equal(a[k], b[k]) for k in a)
