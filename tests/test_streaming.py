"""Real-time mode: energy VAD, utterance segmentation, transcripts, streaming with latency and RTF, microphone."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest

from multistill.streaming import (
    AudioChunk,
    EnergyVAD,
    MicrophoneUnavailableError,
    Transcript,
    Utterance,
    UtteranceSegmenter,
    VADConfig,
    array_chunks,
    file_chunks,
    format_result,
    format_summary,
    microphone_chunks,
    stream_emotions,
)

try:
    from _fixtures_inference import (  # noqa: F401
        CONVERSATION_TEXT,
        SR,
        conversation,
        one_torch_thread,
        tiny_pipeline,
        write_conversation,
    )
    from _fixtures_model import waves
except ImportError:  # tests/ imported as a package
    from tests._fixtures_inference import (  # noqa: F401
        CONVERSATION_TEXT,
        SR,
        conversation,
        one_torch_thread,
        tiny_pipeline,
        write_conversation,
    )
    from tests._fixtures_model import waves


def segment(audio: np.ndarray, chunk: int = 1600, config: VADConfig | None = None) -> list[Utterance]:
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
    cut = segment(long, config=VADConfig(max_utterance_s=2.0))
    assert len(cut) == 3 and cut[0].forced and cut[1].forced and not cut[2].forced
    assert abs(sum(u.duration_s for u in cut) - 5.0) < 0.25
    # speech running to the end of the stream is closed by flush()
    open_end = segment(np.concatenate([silence, waves(1.0)[0]]))
    assert len(open_end) == 1 and abs(open_end[0].end_s - 2.0) < 0.05


def test_steady_background_noise_is_not_speech():
    audio, spans = conversation(noise=0.03)  # a -30 dBFS hum, louder than the -45 dBFS threshold
    found = segment(audio)
    assert len(found) == len(spans)


def test_transcript_files(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("첫 번째\n\n두 번째\n", encoding="utf-8")
    transcript = Transcript.from_file(plain)
    utt = [Utterance(i, 1.0 * i, 1.0 * i + 0.5, np.zeros(1), 0.0) for i in range(3)]
    assert [transcript.text_for(u) for u in utt] == ["첫 번째", "두 번째", ""]
    timed = tmp_path / "timed.txt"
    timed.write_bytes("0.0\t0.6\t안녕\n1.9\t2.2\t반가워\n2.4\t3.0\t요\n".encode("cp949"))
    transcript = Transcript.from_file(timed)
    assert transcript.timed is not None
    assert [transcript.text_for(u) for u in utt] == ["안녕", "", "반가워 요"]
    with pytest.raises(ValueError, match="not found"):
        Transcript.from_file(tmp_path / "none.txt")
    (tmp_path / "blank.txt").write_text("\n \n")
    with pytest.raises(ValueError, match="no text"):
        Transcript.from_file(tmp_path / "blank.txt")


def test_stream_reports_each_utterance_with_latency(tmp_path):
    wav, transcript_path = write_conversation(tmp_path, stereo=True, rate=22050)
    pipe = tiny_pipeline("light_student")
    seen = []
    t0 = time.perf_counter()
    summary = stream_emotions(pipe, file_chunks(wav, chunk_ms=100), transcript=Transcript.from_file(transcript_path),
                              top_k=3, on_result=seen.append)
    elapsed = time.perf_counter() - t0
    assert len(summary.results) == 3 and seen == summary.results
    assert [r.text for r in summary.results] == CONVERSATION_TEXT
    for result in summary.results:
        assert result.error is None and len(result.scores) == 3
        assert 0 < result.latency_s < elapsed
        assert result.end_of_speech_latency_s >= result.latency_s + 0.5 - 1e-6  # the hangover
        assert "latency" in format_result(result)
    assert abs(summary.audio_s - 8.7) < 0.01
    assert 0 < summary.compute_s <= summary.wall_s
    assert summary.rtf == pytest.approx(summary.compute_s / summary.audio_s)
    assert summary.wall_s < summary.audio_s  # faster than real time by default
    text = format_summary(summary)
    assert "utterances: 3" in text and "real-time factor" in text and "latency: mean" in text
    assert summary.to_dict()["utterances"] == 3


def test_stream_audio_only_model_needs_no_transcript_and_text_models_do():
    audio, _ = conversation()
    summary = stream_emotions(tiny_pipeline("audio_student"), array_chunks(audio, 50))
    assert len(summary.results) == 3 and all(r.text is None for r in summary.results)
    with pytest.raises(ValueError, match="transcript"):
        stream_emotions(tiny_pipeline("teacher"), array_chunks(audio, 50))


def test_realtime_pacing():
    audio = np.zeros(int(0.3 * SR), dtype=np.float32)
    t0 = time.perf_counter()
    chunks = list(array_chunks(audio, chunk_ms=100, realtime=True))
    assert len(chunks) == 3 and time.perf_counter() - t0 >= 0.29
    assert all(isinstance(c, AudioChunk) for c in chunks)
    assert chunks[-1].arrival - chunks[0].arrival >= 0.19


def test_microphone_without_sounddevice(monkeypatch):
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails
    with pytest.raises(MicrophoneUnavailableError, match="sounddevice"):
        next(microphone_chunks())


def test_microphone_without_input_device(monkeypatch):
    fake = types.SimpleNamespace(query_devices=lambda *a, **k: [{"name": "speakers", "max_input_channels": 0}])
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    with pytest.raises(MicrophoneUnavailableError, match="No audio input device"):
        next(microphone_chunks())


def test_microphone_chunks_with_a_fake_device(monkeypatch):
    class FakeStream:
        def __init__(self, samplerate, channels, dtype, device, blocksize, callback):
            self.callback, self.blocksize = callback, blocksize

        def __enter__(self):
            for _ in range(5):
                self.callback(np.full((self.blocksize, 1), 0.1, dtype=np.float32), self.blocksize, None, None)
            return self

        def __exit__(self, *exc):
            return False

    fake = types.SimpleNamespace(query_devices=lambda *a, **k: [{"name": "mic", "max_input_channels": 1}],
                                 InputStream=FakeStream)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    chunks = list(microphone_chunks(chunk_ms=100, duration_s=0.3))
    assert len(chunks) == 3 and all(c.samples.shape == (1600,) for c in chunks)


def test_bad_stream_input(tmp_path):
    with pytest.raises(ValueError, match="not found"):
        file_chunks(tmp_path / "missing.wav")
    with pytest.raises(ValueError, match="must be > 0"):
        VADConfig(hangover_ms=0)
