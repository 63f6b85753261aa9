"""One Whisper encoder pass per utterance: the recognizer's encoder states feed an emotion model built on the same
Whisper base encoder, checked against the model's own pass on real speech."""

from __future__ import annotations

import functools
import tempfile

import numpy as np
import pytest
import soundfile
import torch
from _fixtures_model import make_model, sharpen
from _fixtures_speech import (
    SPEECH,
    converted_whisper_base_folder,
    faster_whisper_asr,
    real_conversation,
    speech_file,
)

from multistill.live.stream_encoder import SharedWhisperPass, shared_encoder_reason
from multistill.live.streaming import VADConfig, array_chunks, format_summary, stream_emotions


@functools.cache
def whisper_base_pipeline(preset: str = "teacher"):
    """An emotion pipeline whose audio encoder is the registry's Whisper base encoder (tiny text encoder and
    fusion head, sharpened so that logits are O(1))."""
    from multistill.offline import build_tiny_encoders, tiny_backbones
    from multistill.pipeline_multistill import MultiStillEmotionPipeline

    encoders = build_tiny_encoders(tempfile.mkdtemp(prefix="multistill-shared-"), audio="whisper")
    encoders["audio"] = converted_whisper_base_folder()
    model, processor = tiny_backbones(preset=preset, encoders=encoders)
    sharpen(model, 0)
    return MultiStillEmotionPipeline(model=model.eval(), processor=processor, device="cpu")


@pytest.mark.parametrize(("window", "frames"), [(None, 1500), (10.0, 500)])
def test_shared_states_give_the_logits_of_the_models_own_pass(window, frames):
    pipe, asr = whisper_base_pipeline(), faster_whisper_asr(window)
    assert shared_encoder_reason(pipe, asr) is None
    shared = SharedWhisperPass(pipe, asr)
    for name, _ in SPEECH[2:]:  # the shortest (3 s); the stream test below covers all three
        audio, rate = soundfile.read(speech_file(name), dtype="float32")
        text, states = shared.transcribe(audio, rate)
        assert states.shape == (frames, 512) and states.dtype == np.float32 and text
        batch = pipe.processor(audio=[audio], text=[text], sampling_rate=rate, return_tensors="pt")
        with torch.inference_mode():
            own = pipe.model(**batch).logits
        one_pass = shared.logits(states, audio.shape[0], text)
        # faster-whisper's int8 encoder on the zero-padded 30 s (10 s) window vs the model's own fp32 pass at the
        # utterance's length: measured 0.02 against the padded pass, 0.11 (30 s) and 0.06 (10 s) against this one
        assert float((own - one_pass).abs().max()) < 0.2 and own.argmax() == one_pass.argmax()


def test_stream_runs_the_whisper_encoder_once_per_utterance():
    pipe, asr = whisper_base_pipeline(), faster_whisper_asr()
    audio, _ = real_conversation()
    calls = []
    # the encoder's first convolution runs once per pass (the model runs Whisper's layers itself, at the
    # utterance's length, so the encoder module's own forward is not called)
    hook = pipe.model.multistill.audio_encoder.conv1.register_forward_hook(lambda *args: calls.append(1))
    try:
        one = stream_emotions(pipe, array_chunks(audio, 100), asr=asr, vad_config=VADConfig())
        assert calls == [] and one.shared_encoder and len(one.results) == 3
        two = stream_emotions(pipe, array_chunks(audio, 100), asr=asr, vad_config=VADConfig(), share_encoder=False)
        assert len(calls) == 3 and not two.shared_encoder
    finally:
        hook.remove()
    for a, b in zip(one.results, two.results, strict=True):
        assert a.text == b.text and a.text_source == b.text_source == "asr" and a.label == b.label
        # the recognizer's confidence comes through either path (real speech: no doubt)
        assert a.flags == b.flags == [] and a.asr_avg_logprob > -1 and b.asr_avg_logprob > -1
        np.testing.assert_allclose([s["score"] for s in a.scores], [s["score"] for s in b.scores], atol=0.02)
    assert "one Whisper encoder pass per utterance" in format_summary(one)
    assert one.to_dict()["shared_encoder"] is True


def test_other_encoders_are_not_shared():
    from multistill.pipeline_multistill import MultiStillEmotionPipeline

    asr = faster_whisper_asr()
    model, processor = make_model("teacher", audio="whisper")  # a tiny random Whisper encoder
    pipe = MultiStillEmotionPipeline(model=model, processor=processor, device="cpu")
    assert "differ in structure" in shared_encoder_reason(pipe, asr)
    wav2vec2, processor = make_model("teacher")
    assert "not a Whisper encoder" in shared_encoder_reason(
        MultiStillEmotionPipeline(model=wav2vec2, processor=processor, device="cpu"), asr)
    audio, _ = real_conversation()
    with pytest.raises(ValueError, match="share_encoder=True: .*differ in structure"):
        stream_emotions(pipe, array_chunks(audio, 100), asr=asr, share_encoder=True)
