"""Real-time mode: transcripts and their alignment, ASR in the loop, latency / RTF / stage times, the timeline
plot, microphone (voice activity and segmentation: ``test_vad.py``)."""

from __future__ import annotations

import sys
import time
import types

import numpy as np
import pytest
from _fixtures_inference import (  # noqa: F401
    CONVERSATION_TEXT,
    SR,
    conversation,
    one_torch_thread,
    tiny_pipeline,
    write_conversation,
)
from _fixtures_model import waves
from _fixtures_speech import SPEECH, ScriptedASR, faster_whisper_asr, real_conversation

from multistill.live.streaming import (
    AudioChunk,
    MicrophoneUnavailableError,
    StreamResult,
    Transcript,
    Utterance,
    UtteranceSegmenter,
    VADConfig,
    array_chunks,
    file_chunks,
    format_result,
    format_summary,
    microphone_chunks,
    plot_timeline,
    stream_emotions,
)

ENERGY = VADConfig(vad="energy")
GOLD = [text for _, text in SPEECH]


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
                              vad_config=ENERGY, top_k=3, on_result=seen.append)
    elapsed = time.perf_counter() - t0
    assert len(summary.results) == 3 and seen == summary.results
    assert [r.text for r in summary.results] == CONVERSATION_TEXT
    assert {r.text_source for r in summary.results} == {"given"}
    for result in summary.results:
        assert result.error is None and len(result.scores) == 3
        assert 0 < result.emotion_s <= result.latency_s < elapsed and result.asr_s == 0
        assert result.end_of_speech_latency_s >= result.latency_s + 0.5 - 1e-6  # the hangover
        assert "latency" in format_result(result) and "given: " in format_result(result)
    assert abs(summary.audio_s - 8.7) < 0.01
    assert 0 < summary.compute_s  # VAD and recognition run on two threads: compute may exceed wall time
    assert summary.rtf == pytest.approx(summary.compute_s / summary.audio_s)
    assert summary.wall_s < summary.audio_s  # faster than real time by default
    text = format_summary(summary)
    assert "utterances: 3" in text and "real-time factor" in text and "end of utterance to result: median" in text
    assert "VAD (energy)" in text and "ASR" not in text
    info = summary.to_dict()
    assert info["utterances"] == 3 and info["vad"] == "energy" and info["asr"] is None
    assert info["stages"]["vad_per_chunk"]["count"] == len(summary.vad_chunk_s) == 87
    assert info["stages"]["emotion_per_utterance"]["count"] == 3 and info["stages"]["asr_per_utterance"]["count"] == 0
    assert info["latency"]["p90_s"] <= info["latency"]["max_s"]


def test_stream_audio_only_model_needs_no_transcript_and_text_models_do():
    audio, _ = conversation()
    summary = stream_emotions(tiny_pipeline("audio_student"), array_chunks(audio, 50), vad_config=ENERGY)
    assert len(summary.results) == 3 and all(r.text is None and r.text_source is None for r in summary.results)
    with pytest.raises(ValueError, match=r"transcript .*--asr MODEL"):
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
    with pytest.raises(ValueError, match="vad must be one of"):
        VADConfig(vad="webrtc")
    with pytest.raises(ValueError, match="speech_threshold"):
        VADConfig(speech_threshold=1.5)
    with pytest.raises(ValueError, match="8 or 16 kHz"):
        VADConfig(sampling_rate=44100)


# --------------------------------------------------------------------------------------------- ASR in the loop
def test_stream_transcribes_each_utterance_with_asr():
    audio, _ = real_conversation()
    asr = faster_whisper_asr()
    summary = stream_emotions(tiny_pipeline("light_student"), array_chunks(audio, 100), asr=asr, top_k=2)
    assert len(summary.results) == 3
    from multistill.asr import character_error_rate

    assert character_error_rate(GOLD, [r.text for r in summary.results])["cer"] < 0.35
    for result in summary.results:
        assert result.text_source == "asr" and result.error is None and len(result.scores) == 2
        assert 0 < result.asr_s and 0 < result.emotion_s and result.asr_s + result.emotion_s <= result.latency_s
        line = format_result(result)
        assert "ASR " in line and f"asr: {result.text}" in line
    stages = summary.to_dict()["stages"]
    assert stages["asr_per_utterance"]["count"] == 3 and stages["emotion_per_utterance"]["count"] == 3
    assert "faster-whisper" in summary.asr
    assert "VAD (silero)" in format_summary(summary) and "| ASR median" in format_summary(summary)


def test_given_transcript_wins_and_asr_fills_the_missing_lines(caplog):
    audio, _ = real_conversation()
    asr = ScriptedASR(["세 번째 문장"])
    with caplog.at_level("WARNING", logger="multistill.live.streaming"):
        summary = stream_emotions(tiny_pipeline("teacher"), array_chunks(audio, 100),
                                  transcript=Transcript(lines=GOLD[:2], source="two.txt"), asr=asr)
    assert [r.text for r in summary.results] == [*GOLD[:2], "세 번째 문장"]
    assert [r.text_source for r in summary.results] == ["given", "given", "asr"]
    assert len(asr.calls) == 1  # only the utterance without a line was transcribed
    assert "two.txt has 2 lines but utterance 3" in caplog.text and "Using ASR" in caplog.text


class _DoubtfulASR(ScriptedASR):
    """Scripted texts with Whisper-like confidences: the second utterance is low-confidence."""

    def _transcribe_details(self, clips):
        from multistill.asr import Transcription

        texts = self._transcribe(clips)
        return [Transcription(t, -0.2 if len(self.calls) != 2 else -1.8, 0.05) for t in texts]


def test_asr_doubts_reach_the_results(caplog):
    """Issue 22.8-9: a transcript the recognizer doubts is flagged in its result (and printed); an empty one is
    flagged and warned about (the utterance was classified with empty text)."""
    audio, _ = real_conversation()
    with caplog.at_level("WARNING", logger="multistill.live.streaming"):
        summary = stream_emotions(tiny_pipeline("teacher"), array_chunks(audio, 100),
                                  asr=_DoubtfulASR(["첫 문장", "두 번째", ""]))
    assert [r.flags for r in summary.results] == [[], ["asr_low_confidence"], ["asr_empty_text"]]
    assert [r.asr_avg_logprob for r in summary.results] == [-0.2, -1.8, -0.2]
    assert all(r.error is None and r.scores for r in summary.results)  # all classified
    assert "low-confidence transcript" in format_result(summary.results[1])
    assert "no text recognised" in format_result(summary.results[2])
    assert "Utterance 3 (" in caplog.text and "returned no text" in caplog.text and caplog.text.count("returned no") == 1
    assert summary.results[1].to_dict()["flags"] == ["asr_low_confidence"]


def test_missing_lines_without_asr_give_empty_text_and_unused_lines_warn(caplog):
    audio, _ = real_conversation()
    with caplog.at_level("WARNING", logger="multistill.live.streaming"):
        short = stream_emotions(tiny_pipeline("teacher"), array_chunks(audio, 100),
                                transcript=Transcript(lines=GOLD[:1]))
    assert [r.text_source for r in short.results] == ["given", "none", "none"]
    assert [r.text for r in short.results][1:] == ["", ""] and "using empty text" in caplog.text.lower()
    caplog.clear()
    with caplog.at_level("WARNING", logger="multistill.live.streaming"):
        stream_emotions(tiny_pipeline("teacher"), array_chunks(audio, 100), transcript=Transcript(lines=GOLD + ["a", "b"]))
    assert "the last 2 lines were not used" in caplog.text


def test_transcript_alignment_check(caplog):
    with caplog.at_level("WARNING", logger="multistill.live.streaming"):
        assert Transcript(lines=GOLD).check_alignment(3)
        assert Transcript(timed=[(0.0, 1.0, "a")]).check_alignment(5)
        assert caplog.text == ""
        assert not Transcript(lines=GOLD, source="c.txt").check_alignment(5)
    assert "c.txt has 3 lines (one per utterance) but the VAD finds 5 utterances" in caplog.text


# --------------------------------------------------------------------------------------------- results and timeline
def _result(index, start, end, label, score, text=None, error=None):
    scores = [] if error else [{"label": label, "score": score}, {"label": "neutral", "score": 1 - score}]
    return StreamResult(index=index, start_s=start, end_s=end, scores=scores, latency_s=0.1,
                        end_of_speech_latency_s=0.6, text=text, text_source="asr" if text else None, error=error)


def test_result_json_and_timeline_png(tmp_path):
    import json

    import matplotlib.image

    results = [_result(0, 0.5, 2.0, "happy", 0.8, "좋아요"), _result(1, 2.5, 6.0, "angry", 0.4, "short text"),
               _result(2, 7.0, 9.0, None, 0, error="input: bad"), _result(3, 9.5, 14.0, "sad", 0.95, "x" * 40)]
    record = json.loads(json.dumps(results[0].to_dict(), ensure_ascii=False))
    assert record["label"] == "happy" and record["score"] == 0.8 and record["text"] == "좋아요"
    assert record["text_source"] == "asr" and record["asr_s"] == 0.0
    one_row = plot_timeline(results, tmp_path / "one.png", audio_s=15.0)
    two_rows = plot_timeline(results, tmp_path / "two.png", audio_s=15.0, row_s=8.0)
    height_one = matplotlib.image.imread(one_row).shape[0]
    height_two = matplotlib.image.imread(two_rows).shape[0]
    assert height_two > height_one > 100
    with pytest.raises(ValueError, match="row_s"):
        plot_timeline(results, tmp_path / "bad.png", row_s=0)


# --------------------------------------------------------------------------------------------- early start
def test_early_candidate_is_the_utterance_the_hangover_closes():
    audio, spans = conversation()
    config = VADConfig(vad="energy", early_ms=200)
    segmenter = UtteranceSegmenter(config)
    candidates, found = [], []
    for start in range(0, audio.shape[0], 320):
        found += segmenter.push(audio[start:start + 320])
        candidate = segmenter.candidate
        if candidate is not None and (not candidates or candidates[-1].end_s != candidate.end_s):
            candidates.append(candidate)
            assert segmenter.stream_time_s >= candidate.end_s + 0.2 - 1e-9  # after 200 ms of silence
    found += segmenter.flush()
    assert len(candidates) == len(found) == len(spans)
    for candidate, utterance in zip(candidates, found, strict=True):
        assert (candidate.index, candidate.start_s, candidate.end_s, candidate.detected_at_s) == (
            utterance.index, utterance.start_s, utterance.end_s, utterance.detected_at_s)
        assert np.array_equal(candidate.audio, utterance.audio)
    assert UtteranceSegmenter(ENERGY).candidate is None  # early_ms 0: no candidate
    for bad in (50, 500, -1):  # below the post-roll, not before the hangover, negative
        with pytest.raises(ValueError, match="early_ms must be 0"):
            VADConfig(vad="energy", early_ms=bad)


def test_early_start_gives_the_same_results_and_drops_work_when_speech_resumes():
    audio, _ = conversation()
    pipe = tiny_pipeline("teacher")
    plain = stream_emotions(pipe, array_chunks(audio, 100), transcript=Transcript(lines=CONVERSATION_TEXT),
                            vad_config=ENERGY)
    early = stream_emotions(pipe, array_chunks(audio, 100), transcript=Transcript(lines=CONVERSATION_TEXT),
                            vad_config=VADConfig(vad="energy", early_ms=200))
    assert early.early_started == early.early_used == 3
    for a, b in zip(plain.results, early.results, strict=True):
        assert (a.index, a.start_s, a.end_s, a.text) == (b.index, b.start_s, b.end_s, b.text)
        assert [s["label"] for s in a.scores] == [s["label"] for s in b.scores]
        np.testing.assert_allclose([s["score"] for s in a.scores], [s["score"] for s in b.scores], atol=1e-6)
    assert "early start: 3 of 3 results from an early job (0 early jobs dropped" in format_summary(early)
    assert early.to_dict()["early_used"] == 3

    # A 300 ms pause inside an utterance: the early job starts at 200 ms, speech resumes, the job is dropped
    # and the whole utterance is recognised once it really ends.
    rng = np.random.default_rng(0)
    quiet = (0.001 * rng.standard_normal(SR)).astype(np.float32)
    first, second = waves(1.0, 1.2)
    paused = np.concatenate([quiet, first, quiet[: int(0.3 * SR)], second, quiet])
    asr = ScriptedASR(["전체 문장"] * 2)
    summary = stream_emotions(pipe, array_chunks(paused, 100), asr=asr,
                              vad_config=VADConfig(vad="energy", early_ms=200))
    assert [r.text for r in summary.results] == ["전체 문장"] and summary.results[0].text_source == "asr"
    assert (summary.early_started, summary.early_used) == (2, 1)
    # the dropped job ran unless it was cancelled before the worker took it: pre-roll + first part + post-roll
    assert asr.calls[:-1] in ([], [pytest.approx(0.2 + 1.0 + 0.1, abs=0.05)])
    assert asr.calls[-1] == pytest.approx(0.2 + 2.5 + 0.1, abs=0.05)  # the whole utterance, recognised once
