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
