"""The stream session: bounded queue, backlog policy of a live stream that falls behind, lag and memory reporting.

Live pacing and slow models run on a virtual clock (no sleeps): a minute of "live" audio and seconds of "model
time" take a fraction of a second, and a busy machine's scheduling delays cannot change the outcome."""

from __future__ import annotations

import logging
import threading
import types

import numpy as np
import pytest

from multistill.live.stream_session import ASR_SKIPPED, DROPPED, BacklogPolicy, StreamSession, _Backlog, _Job
from multistill.live.streaming import AudioChunk, format_result, format_summary
from multistill.live.vad import Utterance, VADConfig

SR = 16000


class VirtualClock:
    """Virtual seconds, so that live pacing and slow models cost no real time and busy-machine delays change nothing.

    The paced source advances the time (:meth:`advance_to`) only while the recognition worker is blocked: sleeping
    in a fake model (:meth:`sleep`) or waiting for work with an empty queue; so every policy decision happens at a
    fixed virtual time. Without a paced source (or once it ends, :meth:`finish`) a sleep advances the time itself.
    """

    def __init__(self, paced: bool = True):
        self.now, self.free = 0.0, not paced
        self.cond = threading.Condition()
        self.wakes: list[float] = []
        self.backlog = None  # the session's queue, set once the session exists

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.cond:
            wake = self.now + seconds
            if self.free:
                self.now = wake
                return
            self.wakes.append(wake)
            self.cond.notify_all()
            while self.now < wake:
                self.cond.wait()
            self.wakes.remove(wake)

    def _worker_blocked(self) -> bool:
        sleeping = any(wake > self.now for wake in self.wakes)
        return sleeping or (self.backlog.idle and not self.backlog._jobs)

    def advance_to(self, t: float) -> None:
        with self.cond:
            while self.now < t:
                while not self._worker_blocked():
                    self.cond.wait(0.001)  # the worker signals its queue, not this clock: poll
                self.now = min([t] + [wake for wake in self.wakes if wake > self.now])
                self.cond.notify_all()

    def finish(self) -> None:
        with self.cond:
            self.free = True
            self.now = max([self.now] + self.wakes)
            self.cond.notify_all()


class SlowPipeline:
    """Stands in for the emotion pipeline of an audio + text model: each call costs ``cost`` clock seconds."""

    def __init__(self, clock: VirtualClock, cost: float):
        self.model = types.SimpleNamespace(config=types.SimpleNamespace(modalities=["audio", "text"]))
        self.asr, self.clock, self.cost, self.texts = None, clock, cost, []

    def __call__(self, item, top_k=None):
        self.clock.sleep(self.cost)
        self.texts.append(item["text"])
        return [{"label": "neutral", "score": 0.9}, {"label": "happy", "score": 0.1}]


class SlowASR:
    """A speech recognizer costing ``cost`` clock seconds per utterance."""

    engine, name = "fake", "slow-asr"

    def __init__(self, clock: VirtualClock, cost: float):
        self.clock, self.cost, self.calls = clock, cost, 0

    def __call__(self, audio, sampling_rate=SR):
        self.clock.sleep(self.cost)
        self.calls += 1
        return "말"


def tone_conversation(spans: list[tuple[float, float]], seconds: float, chunk_s: float):
    """Chunks of faint noise with a 220 Hz tone over each ``(start, end)`` span, generated lazily (long inputs
    cost no memory)."""
    rng = np.random.default_rng(0)
    size = int(chunk_s * SR)
    noise = (0.001 * rng.standard_normal(size)).astype(np.float32)
    for first in range(0, int(seconds * SR), size):
        t = (first + np.arange(size)) / SR
        inside = [(start, end) for start, end in spans if start < t[-1] and end > t[0]]
        chunk = noise
        for start, end in inside:
            chunk = chunk + (0.3 * np.sin(2 * np.pi * 220 * t) * ((t >= start) & (t < end))).astype(np.float32)
        yield chunk


def paced(blocks, clock: VirtualClock, chunk_s: float):
    """Deliver blocks like a live recording on ``clock`` (a chunk arrives when its last sample is recorded)."""
    for i, block in enumerate(blocks):
        clock.advance_to((i + 1) * chunk_s)
        yield AudioChunk(block, clock())
    clock.finish()


def live_session(clock: VirtualClock, pipe, **kwargs) -> StreamSession:
    session = StreamSession(pipe, realtime=True, clock=clock, **kwargs)
    clock.backlog = session._backlog
    return session


def alternating_spans(seconds: float, short: float = 1.0, long: float = 2.5, gap: float = 0.8):
    spans, t, i = [], 1.0, 0
    while t + long + gap < seconds:
        length = short if i % 2 == 0 else long
        spans.append((t, t + length))
        t, i = t + length + gap, i + 1
    return spans


ENERGY = VADConfig(vad="energy")


# --------------------------------------------------------------------------------------------- the policy itself
def test_policy_decisions():
    policy = BacklogPolicy(max_queue=3, skip_asr_after_s=1.0, skip_asr_below_s=1.5, drop_after_s=6.0)
    assert policy.decide(0.5, 1.0, uses_asr=True) is None
    assert policy.decide(1.2, 1.0, uses_asr=True) == ASR_SKIPPED
    assert policy.decide(1.2, 2.0, uses_asr=True) is None  # long utterances keep their ASR
    assert policy.decide(1.2, 1.0, uses_asr=False) is None  # nothing to skip with a given transcript
    assert policy.decide(6.5, 2.0, uses_asr=False) == DROPPED
    for bad in ({"max_queue": 0}, {"max_queue": 1.5}, {"drop_after_s": -1}, {"skip_asr_below_s": float("nan")}):
        with pytest.raises(ValueError, match="BacklogPolicy"):
            BacklogPolicy(**bad)


def test_full_queue_drops_the_oldest_waiting_utterance_and_frees_its_audio():
    def job(index: int) -> _Job:
        audio = np.zeros(SR, dtype=np.float32)
        return _Job.of(Utterance(index, index * 2.0, index * 2.0 + 1, audio, index * 2.0 + 1.5), float(index), True)

    backlog = _Backlog(capacity=2, block=False)
    jobs = [job(i) for i in range(4)]
    assert backlog.put(jobs[0], 0.0) is None and backlog.put(jobs[1], 1.0) is None
    assert backlog.put(jobs[2], 2.0) is jobs[0] and backlog.put(jobs[3], 3.5) is jobs[1]
    assert jobs[0].utterance is None and jobs[0].dropped.startswith("dropped") and jobs[0].waited_s == 2.0
    assert backlog.peak == 2
    # the dropped jobs keep their place, so their marked results keep the utterance order
    assert [backlog.take() for _ in range(4)] == jobs
    backlog.close()
    assert backlog.take() is None


# --------------------------------------------------------------------------------------------- live streams
def test_live_stream_that_falls_behind_degrades_by_the_policy_and_says_so(caplog):
    clock = VirtualClock()
    spans = alternating_spans(60.0)
    asr = SlowASR(clock, cost=8.0)  # 8 s per utterance while one ends every 3 s
    pipe = SlowPipeline(clock, cost=0.2)
    policy = BacklogPolicy(max_queue=3, skip_asr_after_s=1.0, skip_asr_below_s=1.5, drop_after_s=6.0)
    seen = []
    with caplog.at_level(logging.WARNING, logger="multistill.live.streaming"):
        session = live_session(clock, pipe, vad_config=ENERGY, asr=asr, policy=policy, on_result=seen.append)
        summary = session.run(paced(tone_conversation(spans, 60.0, 0.1), clock, 0.1))
    results = summary.results
    assert len(results) == len(spans) and seen == results  # every utterance has a result, in order
    assert [r.index for r in results] == list(range(len(spans)))
    dropped = [r for r in results if DROPPED in r.degraded]
    skipped = [r for r in results if ASR_SKIPPED in r.degraded]
    assert dropped and skipped
    for result in dropped:
        assert result.error.startswith("dropped: the stream fell behind") and result.scores == []
        assert "error: dropped" in format_result(result)
    for result in skipped:
        assert result.end_s - result.start_s < 1.5 and result.text == "" and result.text_source == "none"
        assert result.error is None and result.scores and result.queued_s > 1.0
    assert "Stream behind real time: utterance" in caplog.text
    assert asr.calls + len(skipped) + len(dropped) == len(spans)
    # bounded: never more than max_queue waiting, no recognition starts after more than drop_after_s of waiting
    assert summary.queue_peak <= 3 and summary.queue_capacity == 3
    assert max(r.queued_s for r in results if not r.degraded) <= 6.0
    # done soon after the audio ends: at most the job in progress and one more
    assert summary.wall_s <= summary.audio_s + 2 * 8.2
    info = summary.to_dict()
    assert info["dropped"] == len(dropped) and info["asr_skipped"] == len(skipped) and info["policy"]["max_queue"] == 3
    assert info["peak_rss_mb"] > 10
    text = format_summary(summary)
    assert f"{len(skipped)} utterances without ASR, {len(dropped)} dropped (fell behind real time)" in text
    assert "live pace" in text and "peak memory" in text and "backlog: queue at most" in text


def test_live_stream_that_keeps_up_degrades_nothing():
    clock = VirtualClock()
    spans = alternating_spans(20.0)
    summary = live_session(clock, SlowPipeline(clock, cost=0.1), vad_config=ENERGY, asr=SlowASR(clock, cost=0.5)).run(
        paced(tone_conversation(spans, 20.0, 0.1), clock, 0.1))
    assert len(summary.results) == len(spans)
    assert all(not r.degraded and r.error is None and r.text_source == "asr" for r in summary.results)
    assert summary.rtf < 1 and max(r.queued_s for r in summary.results) < 0.6
    text = format_summary(summary)
    assert "0 utterances without ASR, 0 dropped (kept up)" in text
    assert "compute fast enough for live audio (RTF < 1): yes" in text


def test_file_read_without_pacing_waits_for_the_models_instead_of_degrading():
    clock = VirtualClock(paced=False)
    spans = alternating_spans(30.0)
    pipe = SlowPipeline(clock, cost=0.2)
    chunks = (AudioChunk(block, clock()) for block in tone_conversation(spans, 30.0, 0.1))
    summary = StreamSession(pipe, vad_config=ENERGY, asr=SlowASR(clock, cost=3.0), policy=BacklogPolicy(max_queue=2),
                            clock=clock).run(chunks)
    assert len(summary.results) == len(spans) and summary.queue_peak <= 2
    assert all(not r.degraded and r.text == "말" for r in summary.results)
    assert summary.policy is None and summary.rtf > 1  # slower than real time, yet nothing given up
    text = format_summary(summary)
    assert "input read without pacing" in text and "(RTF < 1): NO" in text
    assert "faster than real time" not in text


def test_thirty_minute_live_input_finishes_with_a_bounded_backlog():
    """30 min of mostly silence with a tone every 20 s, on a model far slower than real time."""
    clock = VirtualClock()
    minutes = 30.0
    spans = [(t, t + 2.0) for t in np.arange(5.0, minutes * 60 - 5, 20.0)]
    config = VADConfig(vad="energy", frame_ms=100.0)  # fewer frames: the VAD's real time stays small
    summary = live_session(clock, SlowPipeline(clock, cost=1.0), vad_config=config, asr=SlowASR(clock, cost=45.0),
                           policy=BacklogPolicy(max_queue=2, drop_after_s=30.0)).run(
        paced(tone_conversation(spans, minutes * 60, 1.0), clock, 1.0))
    assert summary.audio_s == pytest.approx(minutes * 60)
    assert len(summary.results) == len(spans)
    assert summary.queue_peak <= 2 and 0 < summary.degraded_count(DROPPED) < len(spans)
    assert summary.wall_s <= summary.audio_s + 2 * 46.0  # the job in progress and at most one more
    assert summary.peak_rss_mb is not None and summary.peak_rss_mb < 4000


def test_a_failing_recognizer_stops_the_stream_with_its_error():
    class BrokenASR(SlowASR):
        def __call__(self, audio, sampling_rate=SR):
            raise RuntimeError("recognizer crashed")

    clock = VirtualClock(paced=False)
    chunks = (AudioChunk(block, clock()) for block in tone_conversation(alternating_spans(20.0), 20.0, 0.1))
    session = StreamSession(SlowPipeline(clock, cost=0.1), vad_config=ENERGY, asr=BrokenASR(clock, 0.0), clock=clock,
                            policy=BacklogPolicy(max_queue=1))
    with pytest.raises(RuntimeError, match="recognition worker failed") as info:
        session.run(chunks)
    assert "recognizer crashed" in str(info.value.__cause__)
    assert not session._worker.is_alive()


def test_a_context_model_streams_a_real_conversation_with_its_history():
    """The stream keeps the representations of the utterances it has classified and gives them, newest first and
    with an unknown speaker, to a context model: no utterance is encoded twice, and the first has no history."""
    from _fixtures_model import make_model
    from _fixtures_speech import SPEECH, real_conversation

    from multistill.live.streaming import Transcript, array_chunks, stream_emotions
    from multistill.pipeline_multistill import MultiStillEmotionPipeline

    model, processor = make_model("teacher", audio="whisper", fusion_type="concat", context_size=2)
    pipe = MultiStillEmotionPipeline(model=model, processor=processor, device="cpu")
    audio, _ = real_conversation()
    texts = [text for _, text in SPEECH]
    calls: list[dict] = []
    original = pipe._forward

    def spy(model_inputs, history=None):
        calls.append({"history": None if history is None else history[0].shape[1]})
        return original(model_inputs, history)

    pipe._forward = spy
    summary = stream_emotions(pipe, array_chunks(audio, 100), transcript=Transcript(texts), vad_config=VADConfig())
    assert len(summary.results) == 3 and all(r.error is None and r.scores for r in summary.results)
    assert [c["history"] for c in calls] == [None, 1, 2]  # one pass per utterance, its past as context
