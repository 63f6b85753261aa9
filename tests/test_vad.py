"""Voice activity and segmentation (``multistill/live/vad.py``): the energy and Silero detectors, the utterance
segmenter on synthetic and real conversations."""

from __future__ import annotations

import numpy as np
import pytest
from _fixtures_inference import SR, conversation
from _fixtures_model import waves
from _fixtures_speech import real_conversation

from multistill.live.vad import EnergyVAD, SileroVAD, Utterance, UtteranceSegmenter, VADConfig, segment_audio

ENERGY = VADConfig(vad="energy")


def segment(audio: np.ndarray, chunk: int = 1600, config: VADConfig = ENERGY) -> list[Utterance]:
    segmenter = UtteranceSegmenter(config)
    found = []
    for start in range(0, audio.shape[0], chunk):
        found += segmenter.push(audio[start:start + chunk])
    return found + segmenter.flush()


def test_energy_vad_levels():
    vad = EnergyVAD()
    assert EnergyVAD.frame_db(np.zeros(320, dtype=np.float32)) == -100.0
    assert abs(EnergyVAD.frame_db(np.full(320, 0.1, dtype=np.float32)) + 20.0) < 1e-6
    assert vad.is_speech(np.full(320, 0.1, dtype=np.float32))
    assert not vad.is_speech(np.full(320, 0.001, dtype=np.float32))


def test_segmenter_finds_the_utterances_of_a_conversation():
    audio, spans = conversation()
    found = segment(audio)
    assert len(found) == len(spans)
    for utterance, (start, end) in zip(found, spans, strict=True):
        assert abs(utterance.start_s - start) <= 0.08 and abs(utterance.end_s - end) <= 0.08
        assert utterance.detected_at_s >= utterance.end_s + 0.5 - 1e-9  # after the hangover
        assert not utterance.forced
        pre, post = 0.2, 0.1
        assert abs(utterance.audio.shape[0] / SR - (utterance.duration_s + pre + post)) <= 0.05
    assert [u.index for u in found] == [0, 1, 2]


def test_segmentation_does_not_depend_on_chunk_size():
    audio, _ = conversation()
    a, b = segment(audio, chunk=1600), segment(audio, chunk=593)
    assert [(u.start_s, u.end_s) for u in a] == [(u.start_s, u.end_s) for u in b]
    assert all(np.array_equal(x.audio, y.audio) for x, y in zip(a, b, strict=True))


def test_short_bursts_are_dropped_and_long_speech_is_cut():
    rng = np.random.default_rng(0)
    silence = (0.001 * rng.standard_normal(SR)).astype(np.float32)
    click = waves(0.12)[0]
    assert segment(np.concatenate([silence, click, silence])) == []
    long = np.concatenate([silence, waves(5.0)[0], silence])
    cut = segment(long, config=VADConfig(vad="energy", max_utterance_s=2.0))
    assert len(cut) == 3 and cut[0].forced and cut[1].forced and not cut[2].forced
    assert abs(sum(u.duration_s for u in cut) - 5.0) < 0.25
    # speech running to the end of the stream is closed by flush()
    open_end = segment(np.concatenate([silence, waves(1.0)[0]]))
    assert len(open_end) == 1 and abs(open_end[0].end_s - 2.0) < 0.05


def test_steady_background_noise_is_not_speech():
    audio, spans = conversation(noise=0.03)  # a -30 dBFS hum, louder than the -45 dBFS threshold
    found = segment(audio)
    assert len(found) == len(spans)


# --------------------------------------------------------------------------------------------- Silero VAD, real speech
def test_silero_vad_tells_speech_from_noise_and_tones():
    import torch

    audio, spans = real_conversation()
    threads = torch.get_num_threads()
    vad = SileroVAD()
    window = vad.frame_samples
    assert window == 512
    frames = [audio[i:i + window] for i in range(0, audio.shape[0] - window + 1, window)]
    speech = vad.classify(frames)
    assert torch.get_num_threads() == threads  # the one-thread model leaves the caller's setting alone
    times = [(i + 0.5) * window / SR for i in range(len(frames))]
    inside = [s for t, s in zip(times, speech, strict=True) if any(a + 0.7 < t < b - 0.7 for a, b in spans)]
    pauses = [s for t, s in zip(times, speech, strict=True) if not any(a - 0.3 < t < b + 0.3 for a, b in spans)]
    assert sum(inside) / len(inside) > 0.8 and not any(pauses)
    assert len(vad.probabilities) == len(frames)
    # 3 s of loud noise, a hum and a chord (faded in and out over 0.5 s): energy, but not speech for the model
    rng = np.random.default_rng(0)
    quiet = (0.001 * rng.standard_normal(SR)).astype(np.float32)
    t = np.arange(3 * SR) / SR
    fade = np.minimum(1, t / 0.5) * np.minimum(1, (t[-1] - t) / 0.5)
    hum = 0.1 * np.sin(2 * np.pi * 220 * t) + 0.05 * np.sin(2 * np.pi * 440 * t)
    chord = sum(0.03 * np.sin(2 * np.pi * f * t) for f in (262, 330, 392))
    for sound in (0.05 * rng.standard_normal(t.shape[0]), hum, chord):
        clip = np.concatenate([quiet, (fade * sound).astype(np.float32), quiet])
        assert len(segment(clip, config=ENERGY)) == 1 and segment(clip, config=VADConfig()) == []


@pytest.mark.parametrize("vad", ["silero", "energy"])
def test_both_vads_find_the_real_utterances(vad):
    audio, spans = real_conversation()
    found = segment(audio, config=VADConfig(vad=vad))
    assert len(found) == len(spans) == 3
    for utterance, (start, end) in zip(found, spans, strict=True):
        # the files hold up to 0.6 s of silence around the speech; the detected speech lies inside them
        assert start - 0.1 <= utterance.start_s <= start + 0.7 and end - 0.7 <= utterance.end_s <= end + 0.1
    assert [u.index for u in found] == [0, 1, 2]
    by_chunks = segment_audio(audio, VADConfig(vad=vad), chunk_ms=37)
    assert [(u.start_s, u.end_s) for u in by_chunks] == [(u.start_s, u.end_s) for u in found]
