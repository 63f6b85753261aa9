"""audio_utils.load_audio: every accepted input gives the same mono 16 kHz float32 clip (the one audio path).

Decoder/resampler details and the processor's error messages are tested in test_processing_multistill.py.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile
import torch

from multistill.audio_utils import load_audio


def test_every_input_kind_gives_the_same_clip(tmp_path):
    t = np.arange(22050) / 22050
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), 0.5 * np.sin(2 * np.pi * 330 * t)], axis=1).astype(np.float32)
    path = tmp_path / "clip.wav"
    soundfile.write(path, stereo, 22050, subtype="FLOAT")
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 22050, format="WAV", subtype="FLOAT")
    reference = load_audio(stereo, 22050)
    assert reference.dtype == np.float32 and reference.shape == (16000,)
    inputs = {
        "path": (path, None), "str path": (str(path), None), "bytes": (buffer.getvalue(), None),
        "channels-first": (stereo.T, 22050), "tensor": (torch.from_numpy(stereo), 22050),
        "dict array": ({"array": stereo, "sampling_rate": 22050}, None), "dict path": ({"path": str(path)}, None),
        "dict bytes": ({"bytes": buffer.getvalue()}, None),
    }
    for name, (source, rate) in inputs.items():
        np.testing.assert_allclose(load_audio(source, rate), reference, atol=1e-6, err_msg=name)
    already = load_audio(reference, 16000)  # 16 kHz mono float32: passed through
    assert np.shares_memory(already, reference)


def test_errors_name_the_input_and_minimum_duration_is_a_parameter(tmp_path):
    with pytest.raises(ValueError, match=r"^input 2 \(.*gone\.wav\): audio file not found"):
        load_audio(tmp_path / "gone.wav", where="input 2")
    with pytest.raises(ValueError, match=r"^input: an audio dict must hold"):
        load_audio({"sampling_rate": 16000}, where="input")
    with pytest.raises(ValueError, match=r"at least 0\.1 s is needed"):
        load_audio(np.ones(100, np.float32), 16000)
    assert load_audio(np.ones(100, np.float32), 16000, min_seconds=0).shape == (100,)
    with pytest.raises(ValueError, match="the audio is empty"):
        load_audio(np.ones(0, np.float32), 16000, min_seconds=0)


def test_an_undecodable_file_is_named_without_the_decoders_memory_buffer(tmp_path):
    # libsndfile's message named the in-memory buffer: "Error opening <_io.BytesIO object at 0x7f...>"
    garbage = tmp_path / "noise.wav"
    garbage.write_bytes(bytes(range(256)) * 2)
    with pytest.raises(ValueError, match=r"cannot decode audio file .*noise\.wav as audio") as error:
        load_audio(garbage)
    assert "soundfile: RuntimeError: Format not recognised." in str(error.value)
    assert "BytesIO" not in str(error.value) and " at 0x" not in str(error.value)


def _mp3(seconds: float) -> bytes:
    buffer = io.BytesIO()
    tone = (0.1 * np.sin(np.arange(int(16000 * seconds)) / 10)).astype(np.float32)
    soundfile.write(buffer, tone, 16000, format="MP3", subtype="MPEG_LAYER_III")
    return buffer.getvalue()


def test_a_file_decoded_far_shorter_than_its_header_is_used_with_a_warning(tmp_path, caplog):
    """A truncated MP3 (its header still declares 6 s) is decoded as far as it goes and named in a warning; a
    complete one is not."""
    complete = _mp3(6.0)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(complete[: len(complete) // 3])
    with caplog.at_level("WARNING", logger="multistill.audio_utils"):
        audio = load_audio(cut, where="row 7")
    assert 0.5 < len(audio) / 16000 < 3.0
    message = " ".join(record.getMessage() for record in caplog.records)
    assert "row 7" in message and str(cut) in message and "its header declares" in message and "6.0 s" in message
    caplog.clear()
    with caplog.at_level("WARNING", logger="multistill.audio_utils"):
        load_audio(complete)
    assert not caplog.records


def test_torchcodec_reports_the_header_duration_of_a_cut_file():
    """The second decoder gives the same evidence (FFmpeg's header duration) for formats soundfile cannot read."""
    pytest.importorskip("torchcodec.decoders")
    from multistill.audio_utils import _decode_torchcodec

    complete = _mp3(6.0)
    decoded = _decode_torchcodec(complete[: len(complete) // 3])
    array, rate, header_seconds = decoded
    assert header_seconds > 5.5 and len(array) / rate < 3.0
