"""A live stream session: segmentation and recognition decoupled by a bounded queue, with a backlog policy.

:class:`StreamSession` is what :func:`~.streaming.stream_emotions` runs. The calling thread feeds audio chunks
to the voice-activity segmenter (cheap: a few ms per 100 ms chunk); each closed utterance (or, with
``VADConfig.early_ms``, the candidate of one) becomes a job in a bounded queue, and one worker thread runs ASR
and the emotion model on the jobs in order (the models are never called from two threads). Results are
reported in utterance order.

When the input is live (``realtime``: a microphone, or a file paced like one), audio keeps coming whatever
the models cost, so the queue is where a slow machine shows. :class:`BacklogPolicy` says what happens then,
measured by each utterance's wait in the queue (``StreamResult.queued_s``, wall clock):

1. after ``skip_asr_after_s`` of waiting, an utterance shorter than ``skip_asr_below_s`` that needs ASR is
   classified with empty text instead (marked ``"asr_skipped"``);
2. after ``drop_after_s`` of waiting, an utterance is dropped: its result has ``error`` set and is marked
   ``"dropped"``, and a warning is logged;
3. at most ``max_queue`` utterances wait at once: a new one drops the oldest waiting one (same marking).

So memory and delay stay bounded (a dropped utterance keeps no audio) and every utterance still gets a
result line that says what was given up. A file read without pacing (``realtime=False``) is never degraded:
the segmenter waits for room in the queue instead, so the whole file is classified as fast as the models go.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch

from ..asr import ASR_EMPTY_TEXT, Transcription
from .stream_encoder import SharedWhisperPass, shared_encoder_reason
from .streaming import (
    AudioChunk,
    StreamResult,
    StreamSummary,
    Transcript,
    _describe_asr,
    _uses_text,
)
from .vad import Utterance, UtteranceSegmenter, VADConfig

logger = logging.getLogger("multistill.live.streaming")

#: ``StreamResult.degraded`` marks
ASR_SKIPPED = "asr_skipped"
DROPPED = "dropped"


def _recognise(asr: Any, audio: Any, sampling_rate: int) -> Transcription:
    """The recognizer's :class:`~.asr.Transcription` of one utterance (a plain callable gives text alone)."""
    details = getattr(asr, "transcribe_details", None)
    if callable(details):
        return details([audio], sampling_rate)[0]
    return Transcription(asr(audio, sampling_rate))


@dataclass
class BacklogPolicy:
    """How a live stream degrades when recognition falls behind the audio (see the module doc)."""

    #: utterances waiting for recognition at most; one more drops the oldest waiting one
    max_queue: int = 4
    #: from this wait (s) on, utterances shorter than ``skip_asr_below_s`` get no ASR (empty transcript)
    skip_asr_after_s: float = 1.0
    skip_asr_below_s: float = 1.5
    #: an utterance that waited longer than this (s) is dropped
    drop_after_s: float = 6.0

    def __post_init__(self) -> None:
        if isinstance(self.max_queue, bool) or not isinstance(self.max_queue, int) or self.max_queue < 1:
            raise ValueError(f"BacklogPolicy.max_queue must be an integer >= 1, got {self.max_queue!r}.")
        for name in ("skip_asr_after_s", "skip_asr_below_s", "drop_after_s"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"BacklogPolicy.{name} must be >= 0, got {getattr(self, name)!r}.")

    def decide(self, waited_s: float, duration_s: float, uses_asr: bool) -> str | None:
        """What to give up for an utterance that waited ``waited_s``: ``None``, ``ASR_SKIPPED`` or ``DROPPED``."""
        if waited_s > self.drop_after_s:
            return DROPPED
        if uses_asr and waited_s > self.skip_asr_after_s and duration_s < self.skip_asr_below_s:
            return ASR_SKIPPED
        return None


@dataclass(frozen=True)
class _Analysis:
    """What one ASR + emotion job produced."""

    scores: list[dict[str, Any]]
    text: str | None
    source: str | None
    asr_s: float
    emotion_s: float
    error: str | None
    degraded: tuple[str, ...] = ()
    #: the recognizer's transcript and confidence (``None``: no ASR ran)
    transcription: Any = None


@dataclass(eq=False)
class _Job:
    """An utterance waiting for, or in, recognition. An early job (``closed=False``) is the candidate of the open
    utterance: its result is reported once the utterance closes as it was, and discarded if speech resumes."""

    utterance: Utterance | None
    key: tuple[int, float, float, int]
    queued_at: float
    closed: bool
    #: clock time of the chunk that closed the utterance, and the stream time then
    arrival: float = 0.0
    stream_end_s: float = 0.0
    #: seconds it waited in the queue (until its recognition started, or it was dropped)
    waited_s: float = 0.0
    analysis: _Analysis | None = None
    done: bool = False
    cancelled: bool = False
    emitted: bool = False
    dropped: str | None = None
    span: tuple[int, float, float, bool] = field(default=(0, 0.0, 0.0, False))

    @classmethod
    def of(cls, utterance: Utterance, now: float, closed: bool) -> _Job:
        key = (utterance.index, utterance.start_s, utterance.end_s, utterance.audio.shape[0])
        span = (utterance.index, utterance.start_s, utterance.end_s, utterance.forced)
        return cls(utterance, key, now, closed, span=span)

    def drop(self, why: str, now: float) -> None:
        """Give up this utterance: keep the reason, free the audio."""
        self.dropped, self.utterance, self.waited_s = why, None, now - self.queued_at


class _Backlog:
    """The bounded queue between the segmenter and the recognition worker (FIFO; jobs dropped while waiting stay
    in place without their audio, so their marked results keep the utterance order)."""

    def __init__(self, capacity: int, block: bool):
        self.capacity, self.block = capacity, block
        self.peak = 0
        self._jobs: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.failure: BaseException | None = None
        #: the worker is waiting for a job (for status and tests)
        self.idle = False

    def _waiting(self) -> list[_Job]:
        return [job for job in self._jobs if job.dropped is None]

    def put(self, job: _Job, now: float) -> _Job | None:
        """Queue ``job``; when full, wait for room (``block``) or drop the oldest waiting job and return it."""
        with self._cond:
            while self.block and len(self._waiting()) >= self.capacity and self.failure is None:
                self._cond.wait()
            if self.failure is not None:
                raise RuntimeError("The recognition worker failed") from self.failure
            waiting = self._waiting()
            oldest = waiting[0] if len(waiting) >= self.capacity else None
            if oldest is not None:
                oldest.drop(f"dropped: the stream fell behind (more than {self.capacity} utterances waiting)", now)
            self._jobs.append(job)
            self.peak = max(self.peak, len(self._waiting()))
            self._cond.notify_all()
            return oldest

    def take(self) -> _Job | None:
        """The next job (waits for one); ``None`` once closed and empty."""
        with self._cond:
            while not self._jobs and not self._closed:
                self.idle = True
                self._cond.wait()
            self.idle = False
            job = self._jobs.popleft() if self._jobs else None
            self._cond.notify_all()
            return job

    def remove(self, job: _Job) -> bool:
        """Take a job that has not started out of the queue (``False`` when it is no longer there)."""
        with self._cond:
            try:
                self._jobs.remove(job)
            except ValueError:
                return False
            self._cond.notify_all()
            return True

    def close(self, failure: BaseException | None = None) -> None:
        with self._cond:
            self._closed = True
            self.failure = self.failure or failure
            self._cond.notify_all()


def peak_rss_mb() -> float | None:
    """Peak resident memory of this process so far (MB), from ``resource.getrusage``; ``None`` without it."""
    try:
        import resource
        import sys
    except ImportError:  # not on Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024  # bytes on macOS, KiB on Linux


class StreamSession:
    """One conversation: :meth:`push` audio chunks, then :meth:`close` for the :class:`StreamSummary`
    (:meth:`run` does both). Arguments as :func:`~.streaming.stream_emotions`; ``policy`` is the live stream's
    :class:`BacklogPolicy` and ``clock`` the wall clock (seconds; the chunks' ``arrival`` must use it too)."""

    def __init__(self, pipe: Any, transcript: Transcript | None = None, vad_config: VADConfig | None = None,
                 top_k: int | None = None, on_result: Callable[[StreamResult], None] | None = None,
                 realtime: bool = False, asr: Any = None, policy: BacklogPolicy | None = None,
                 clock: Callable[[], float] = time.perf_counter, share_encoder: bool | None = None):
        self.pipe, self.transcript, self.top_k, self.on_result, self.clock = pipe, transcript, top_k, on_result, clock
        self.needs_text = _uses_text(pipe)
        self.asr = asr if asr is not None else getattr(pipe, "asr", None)
        if self.needs_text and transcript is None and self.asr is None:
            raise ValueError(
                f"The model uses text ({'+'.join(pipe.model.config.modalities)}): pass a transcript "
                "(one line per utterance, or 'start<TAB>end<TAB>text' lines; --transcript FILE) or a speech "
                "recognizer to transcribe each utterance (asr=..., --asr MODEL)."
            )
        self.shared = self._shared_pass(share_encoder)
        self.config = vad_config or VADConfig()
        self.policy = policy or BacklogPolicy()
        self.live = realtime
        self.segmenter = UtteranceSegmenter(self.config)
        self.summary = StreamSummary(
            realtime=realtime, vad=self.config.vad, queue_capacity=self.policy.max_queue,
            asr=_describe_asr(self.asr) if self.needs_text and self.asr is not None else None,
            policy=asdict(self.policy) if realtime else None, shared_encoder=self.shared is not None)
        self._backlog = _Backlog(self.policy.max_queue, block=not realtime)
        self._early: _Job | None = None
        self._emit_lock = threading.Lock()
        self._work_s: list[float] = []  # every job's seconds, discarded early ones included
        #: a context model's history: the representations of the utterances classified so far, newest last
        #: (in the worker's order, which is the conversation's; dropped utterances are not in it)
        self._history: deque[torch.Tensor] = deque(maxlen=int(getattr(pipe.model.config, "context_size", 0) or 0))
        self._start = clock()
        self._worker = threading.Thread(target=self._work, name="multistill-stream", daemon=True)
        self._worker.start()

    def _shared_pass(self, share_encoder: bool | None) -> SharedWhisperPass | None:
        """One Whisper pass per utterance when possible (``None``: auto), never (``False``) or required (``True``)."""
        if share_encoder is False or not self.needs_text or self.asr is None:
            if share_encoder:
                raise ValueError("share_encoder=True needs a model that uses text and a speech recognizer.")
            return None
        shared = SharedWhisperPass.find(self.pipe, self.asr)
        if shared is None and share_encoder:
            raise ValueError("share_encoder=True: the emotion model's audio encoder is not the recognizer's: "
                             f"{shared_encoder_reason(self.pipe, self.asr)}.")
        return shared

    # ------------------------------------------------------------------ feeding (calling thread)
    def run(self, chunks: Iterable[AudioChunk]) -> StreamSummary:
        """Stream all ``chunks`` and close; stops cleanly on Ctrl+C (the open utterance is still classified)."""
        try:
            for chunk in chunks:
                self.push(chunk)
        except KeyboardInterrupt:
            logger.info("Interrupted: closing the stream.")
        except BaseException:  # a failing source or worker: stop the worker, then raise
            self._backlog.close()
            self._worker.join()
            raise
        return self.close()

    def push(self, chunk: AudioChunk) -> None:
        """Segment one chunk; queue the utterances it closes (and, with early start, the candidate)."""
        t0 = self.clock()
        self.summary.audio_s += chunk.samples.shape[0] / self.config.sampling_rate
        ended = self.segmenter.push(chunk.samples)
        self.summary.vad_chunk_s.append(self.clock() - t0)
        for utterance in ended:
            self._closed(utterance, chunk.arrival)
        if self.config.early_ms:
            self._follow_candidate()

    def close(self) -> StreamSummary:
        """End of stream: classify the open utterance, wait for the queue, summarise."""
        try:
            now = self.clock()
            for utterance in self.segmenter.flush():
                self._closed(utterance, now)
            if self._early is not None:
                self._cancel(self._early)
        finally:
            self._backlog.close()
            self._worker.join()
        if self._backlog.failure is not None:
            raise RuntimeError("The recognition worker failed") from self._backlog.failure
        summary = self.summary
        summary.compute_s = sum(summary.vad_chunk_s) + sum(self._work_s)
        summary.wall_s = self.clock() - self._start
        summary.queue_peak = self._backlog.peak
        summary.peak_rss_mb = peak_rss_mb()
        transcript = self.transcript
        if self.needs_text and transcript is not None and transcript.lines is not None \
                and len(summary.results) < len(transcript.lines):
            logger.warning("%s has %d lines but only %d utterances were found: the last %d lines were not used.",
                           transcript.source, len(transcript.lines), len(summary.results),
                           len(transcript.lines) - len(summary.results))
        return summary

    def _closed(self, utterance: Utterance, arrival: float) -> None:
        """An utterance ended: confirm its early job, or queue it."""
        job, self._early = self._early, None
        if job is not None and job.key == (utterance.index, utterance.start_s, utterance.end_s,
                                           utterance.audio.shape[0]):
            self.summary.early_used += 1
            with self._emit_lock:
                job.closed, job.arrival, job.stream_end_s = True, arrival, self.summary.audio_s
                self._emit_if_ready(job)
            return
        if job is not None:
            self._cancel(job)
        job = _Job.of(utterance, self.clock(), closed=True)
        job.arrival, job.stream_end_s = arrival, self.summary.audio_s
        self._queue(job)

    def _follow_candidate(self) -> None:
        """Queue the early job of the open utterance's candidate, or cancel it when speech resumed."""
        candidate = self.segmenter.candidate
        if candidate is None:
            if self._early is not None:
                self._cancel(self._early)
                self._early = None
            return
        job = _Job.of(candidate, self.clock(), closed=False)
        if self._early is not None and self._early.key == job.key:
            return
        if self._early is not None:
            self._cancel(self._early)
        self._early = job
        self.summary.early_started += 1
        self._queue(job)

    def _queue(self, job: _Job) -> None:
        dropped = self._backlog.put(job, self.clock())
        if dropped is not None:
            self._warn_dropped(dropped)

    def _cancel(self, job: _Job) -> None:
        """Speech resumed (or the stream ended) before the early job's utterance closed: discard it."""
        with self._emit_lock:
            job.cancelled = True
        self._backlog.remove(job)

    def _warn_dropped(self, job: _Job) -> None:
        index, start, end, _ = job.span
        logger.warning("Stream behind real time: utterance %d (%.2f-%.2f s) %s.", index + 1, start, end,
                       job.dropped.removeprefix("dropped: ") if job.dropped else "dropped")

    # ------------------------------------------------------------------ recognition (worker thread)
    def _work(self) -> None:
        try:
            while (job := self._backlog.take()) is not None:
                self._recognise(job)
        except BaseException as err:  # noqa: BLE001 - handed to the feeding thread
            self._backlog.close(failure=err)

    def _recognise(self, job: _Job) -> None:
        now = self.clock()
        utterance = job.utterance
        if job.dropped is None and utterance is not None and self.live:
            decision = self.policy.decide(now - job.queued_at, utterance.duration_s, self._uses_asr(utterance))
            if decision == DROPPED:
                job.drop(f"dropped: the stream fell behind (waited {now - job.queued_at:.1f} s for recognition)", now)
                self._warn_dropped(job)
            skip_asr = decision == ASR_SKIPPED
        else:
            skip_asr = False
        if job.dropped is None and job.utterance is not None:
            job.waited_s = now - job.queued_at
            job.analysis = self._analyse(job.utterance, skip_asr)
            self._work_s.append(self.clock() - now)
        with self._emit_lock:
            job.done = True
            self._emit_if_ready(job)

    def _uses_asr(self, utterance: Utterance) -> bool:
        """Would this utterance be transcribed (a text model, no transcript line, a recognizer)?"""
        if not self.needs_text or self.asr is None:
            return False
        return self.transcript is None or self.transcript.lookup(utterance) is None

    def _transcribe(self, utterance: Utterance, skip_asr: bool) -> tuple[str | None, str | None, float, Any]:
        """``(text, source, asr_s, transcription)``; ``transcription`` (text + confidence) only from ASR."""
        if not self.needs_text:
            return None, None, 0.0, None
        transcript = self.transcript
        line = transcript.lookup(utterance) if transcript is not None else None
        if line is not None:
            return line, "given", 0.0, None
        if self.asr is not None and not skip_asr:
            if transcript is not None:
                transcript.warn_missing(utterance, fallback="ASR")
            t0 = self.clock()
            transcription = _recognise(self.asr, utterance.audio, self.config.sampling_rate)
            return transcription.text, "asr", self.clock() - t0, transcription
        if transcript is not None and not skip_asr:
            transcript.warn_missing(utterance, fallback="empty text")
        return "", "none", 0.0, None

    def _analyse(self, utterance: Utterance, skip_asr: bool) -> _Analysis:
        error, scores, text, source, asr_s, emotion_s = None, [], None, None, 0.0, 0.0
        degraded = (ASR_SKIPPED,) if skip_asr else ()
        sampling_rate = self.config.sampling_rate
        if self.shared is not None and not skip_asr and self._uses_asr(utterance) \
                and utterance.audio.shape[0] <= 30 * sampling_rate:  # one Whisper window
            if self.transcript is not None:
                self.transcript.warn_missing(utterance, fallback="ASR")
            transcription = None
            try:
                transcription, asr_s, scores, emotion_s = self.shared.classify(utterance.audio, sampling_rate,
                                                                               self.top_k, self.clock)
                text = transcription.text
            except ValueError as err:
                error = str(err)
            return _Analysis(scores, text, "asr", asr_s, emotion_s, error, degraded, transcription)
        transcription = None
        try:
            text, source, asr_s, transcription = self._transcribe(utterance, skip_asr)
            item = {"audio": utterance.audio, "sampling_rate": self.config.sampling_rate, "text": text}
            t0 = self.clock()
            output = self.pipe(item, top_k=self.top_k, **self._context())
            emotion_s = self.clock() - t0
            if isinstance(output, dict) and "features" in output:
                self._history.append(output.pop("features"))
            scores = output["scores"] if isinstance(output, dict) else output
        except ValueError as err:
            error = str(err)
        return _Analysis(scores, text, source, asr_s, emotion_s, error, degraded, transcription)

    def _context(self) -> dict[str, Any]:
        """Pipeline arguments of a context model: the previous utterances (newest first; the speaker is unknown:
        one channel, no diarization), and a request for this utterance's representation."""
        if self._history.maxlen == 0:
            return {}
        history = None
        if self._history:
            newest_first = list(reversed(self._history))
            history = (torch.stack(newest_first)[None], torch.zeros(1, len(newest_first), dtype=torch.long))
        return {"history": history, "return_features": True}

    # ------------------------------------------------------------------ results (either thread, under the lock)
    def _emit_if_ready(self, job: _Job) -> None:
        """Report ``job`` once it is both recognised (or dropped) and closed; discard a cancelled one."""
        if job.emitted or job.cancelled or not (job.done and job.closed):
            return
        job.emitted = True
        index, start, end, forced = job.span
        latency = self.clock() - job.arrival
        eos = latency + max(0.0, job.stream_end_s - end)
        common = dict(index=index, start_s=start, end_s=end, latency_s=latency, end_of_speech_latency_s=eos,
                      forced=forced, queued_s=job.waited_s)
        analysis = job.analysis
        if job.dropped is not None or analysis is None:
            result = StreamResult(scores=[], error=job.dropped or "dropped", degraded=[DROPPED], **common)
        else:
            heard = analysis.transcription
            result = StreamResult(scores=analysis.scores, text=analysis.text, text_source=analysis.source,
                                  asr_s=analysis.asr_s, emotion_s=analysis.emotion_s, error=analysis.error,
                                  degraded=list(analysis.degraded), flags=heard.flags if heard is not None else [],
                                  asr_avg_logprob=getattr(heard, "avg_logprob", None),
                                  asr_no_speech_prob=getattr(heard, "no_speech_prob", None), **common)
            if ASR_EMPTY_TEXT in result.flags:
                logger.warning("Utterance %d (%.2f-%.2f s): speech recognition returned no text (noise or silence?); "
                               "classified with empty text.", index + 1, start, end)
        self.summary.results.append(result)
        if self.on_result is not None:
            self.on_result(result)


__all__ = ["ASR_SKIPPED", "DROPPED", "BacklogPolicy", "StreamSession", "peak_rss_mb"]
