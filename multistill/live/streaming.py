"""Real-time emotion recognition for a conversation: audio chunks -> voice activity -> utterances -> emotions.

Audio arrives in chunks (from a file, paced like a live recording with ``realtime=True`` or as fast as
possible otherwise, or from a microphone). A voice-activity detector cuts them into utterances (``vad.py``:
Silero VAD by default, or an energy detector).
Each closed utterance goes into a bounded queue that one worker thread empties (:class:`~.stream_session.StreamSession`,
``stream_session.py``): for models that use text, its transcript is the given line (a transcript file wins) or
else the speech recognizer's (``asr``); then the emotion pipeline runs. With ``early_ms``, that work is queued
after ``early_ms`` of silence, before the hangover closes the utterance (its audio is final by then); the result
is used when the utterance closes as it was, and dropped when speech resumes. A live stream whose models fall
behind degrades by a documented policy (:class:`~.stream_session.BacklogPolicy`: short utterances without ASR,
then the oldest waiting ones dropped, each result marked) instead of growing its backlog; a file read without
pacing waits for room in the queue. When the emotion model's audio encoder is the recognizer's Whisper encoder,
one encoder pass per utterance serves both (``stream_encoder.py``).
Every result is reported with its transcript, where that came from, the time of each stage and two latencies:

* ``latency_s``: from the arrival of the audio chunk that closed the utterance to the result
  (ASR + emotion model, plus any backlog when the models cannot keep up);
* ``end_of_speech_latency_s``: from the end of speech to the result (adds the hangover wait).

The real-time factor is ``compute time / audio duration`` (VAD + ASR + emotion model; time spent waiting
for audio is not counted; VAD and recognition run on two threads, so compute may exceed wall time): below 1
the models keep up with live audio. Without ``realtime`` a file is read without pacing, as fast as the models
go (what the tests do); the latencies then include waiting in the queue behind earlier utterances.
The summary also reports the queue (its peak, each utterance's wait ``queued_s``), what a live stream gave up,
and the process's peak memory.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import statistics
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .vad import (
    SAMPLING_RATE,
    VAD_KINDS,
    EnergyVAD,
    SileroVAD,
    Utterance,
    UtteranceSegmenter,
    VADConfig,
    chunk_samples,
    load_silero_model,
    make_vad,
    segment_audio,
)

logger = logging.getLogger(__name__)

class MicrophoneUnavailableError(RuntimeError):
    """No microphone can be used: ``sounddevice`` is missing or no audio input device exists."""


# --------------------------------------------------------------------------------------------- transcripts
_TIMED_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\t(\d+(?:\.\d+)?)\t(.*)$")


class Transcript:
    """Transcript lines for the utterances of a stream (the model's text input, preferred over ASR).

    A file holds either one line per utterance, in order (``utterance i`` gets ``line i``), or timed
    lines ``start<TAB>end<TAB>text`` (seconds), in which case an utterance gets the lines it overlaps.
    UTF-8, or CP949 (KEMDy20's encoding) as a fallback. Blank lines are skipped.

    Plain lines only stay in step when the VAD finds exactly one utterance per line: :meth:`check_alignment`
    warns when the counts differ (the CLI counts a file's utterances before streaming it), and the stream
    warns at the first utterance past the last line.
    """

    def __init__(self, lines: list[str] | None = None, timed: list[tuple[float, float, str]] | None = None,
                 source: str = "transcript"):
        if (lines is None) == (timed is None):
            raise ValueError("Pass exactly one of `lines` and `timed`.")
        self.lines = lines
        self.timed = timed
        self.source = source
        self._warned = False

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> Transcript:
        """Read a transcript file (see the class doc)."""
        path = os.fspath(path)
        if not os.path.isfile(path):
            raise ValueError(f"Transcript file not found: {path}")
        raw = Path(path).read_bytes()
        for encoding in ("utf-8-sig", "cp949"):
            try:
                content = raw.decode(encoding)
                break
            except UnicodeDecodeError:
                continue
        else:
            raise ValueError(f"Transcript file {path} is neither UTF-8 nor CP949 text.")
        rows = [line.rstrip("\r") for line in content.split("\n") if line.strip()]
        if not rows:
            raise ValueError(f"Transcript file {path} has no text.")
        matches = [_TIMED_LINE.match(row) for row in rows]
        if all(matches):
            return cls(timed=[(float(m.group(1)), float(m.group(2)), m.group(3).strip()) for m in matches],
                       source=path)
        return cls(lines=[row.strip() for row in rows], source=path)

    def lookup(self, utterance: Utterance) -> str | None:
        """The transcript of ``utterance``, or ``None`` when the transcript has nothing for it."""
        if self.lines is not None:
            return self.lines[utterance.index] if utterance.index < len(self.lines) else None
        parts = [t for start, end, t in self.timed
                 if min(end, utterance.end_s) - max(start, utterance.start_s) > 0]
        return " ".join(parts) if parts else None

    def text_for(self, utterance: Utterance) -> str:
        """The transcript of ``utterance`` ("" with a warning, once, when the transcript has none)."""
        text = self.lookup(utterance)
        if text is not None:
            return text
        self.warn_missing(utterance, fallback="empty text")
        return ""

    def warn_missing(self, utterance: Utterance, fallback: str) -> None:
        """Log (once) that ``utterance`` has no transcript and what is used instead."""
        if self._warned:
            return
        self._warned = True
        if self.lines is not None:
            logger.warning(
                "%s has %d lines but utterance %d (%.2f-%.2f s) was found: the VAD found more utterances than "
                "there are lines, so the lines are probably out of step with the audio (use timed "
                "'start<TAB>end<TAB>text' lines, or ASR). Using %s from here on.",
                self.source, len(self.lines), utterance.index + 1, utterance.start_s, utterance.end_s, fallback)
        else:
            logger.warning("%s has no line overlapping utterance %d (%.2f-%.2f s); using %s.",
                           self.source, utterance.index + 1, utterance.start_s, utterance.end_s, fallback)

    def check_alignment(self, n_utterances: int) -> bool:
        """``True`` when plain lines and utterances match one to one (timed lines always do); else a warning."""
        if self.lines is None or len(self.lines) == n_utterances:
            return True
        logger.warning(
            "%s has %d lines (one per utterance) but the VAD finds %d utterances in the audio: the lines will "
            "be out of step with the speech%s. Give timed lines ('start<TAB>end<TAB>text', seconds), adjust "
            "the VAD (--hangover-ms, --vad), or let ASR transcribe (--asr).",
            self.source, len(self.lines), n_utterances,
            " from the first split or merged utterance on" if n_utterances else "")
        return False


# --------------------------------------------------------------------------------------------- sources
@dataclass
class AudioChunk:
    """Mono float32 samples at 16 kHz and the wall-clock time (``time.perf_counter``) they became available."""

    samples: np.ndarray
    arrival: float




def array_chunks(
    audio: np.ndarray, chunk_ms: float = 100.0, realtime: bool = False, sampling_rate: int = SAMPLING_RATE
) -> Iterator[AudioChunk]:
    """Chunks of ``audio``. ``realtime``: delivered by a background thread at the pace of a live recording
    (a chunk arrives when its last sample would have been recorded); otherwise as fast as consumed."""
    size = chunk_samples(chunk_ms, sampling_rate)
    if not realtime:
        for start in range(0, audio.shape[0], size):
            yield AudioChunk(audio[start:start + size], time.perf_counter())
        return

    def paced() -> Iterator[AudioChunk]:
        t0 = time.perf_counter()
        for start in range(0, audio.shape[0], size):
            end = min(start + size, audio.shape[0])
            delay = t0 + end / sampling_rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            yield AudioChunk(audio[start:end], time.perf_counter())

    yield from _threaded(paced())


def file_chunks(
    path: str | os.PathLike, chunk_ms: float = 100.0, realtime: bool = False, sampling_rate: int = SAMPLING_RATE
) -> Iterator[AudioChunk]:
    """Decode ``path`` (any rate/channels; mono, resampled) and deliver it in chunks like :func:`array_chunks`."""
    from ..audio_utils import load_audio

    audio = load_audio(path, where="stream input", target_rate=sampling_rate, min_seconds=0)
    return array_chunks(audio, chunk_ms, realtime, sampling_rate)


def _threaded(iterator: Iterator[AudioChunk]) -> Iterator[AudioChunk]:
    """Run ``iterator`` in a daemon thread (the producer keeps its pace while the consumer computes)."""
    items: queue.Queue = queue.Queue()
    done = object()

    def produce() -> None:
        try:
            for item in iterator:
                items.put(item)
        except BaseException as err:  # noqa: BLE001 - handed to the consumer
            items.put(err)
        items.put(done)

    threading.Thread(target=produce, name="multistill-audio-source", daemon=True).start()
    while True:
        item = items.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def microphone_chunks(
    chunk_ms: float = 100.0,
    duration_s: float | None = None,
    device: int | str | None = None,
    sampling_rate: int = SAMPLING_RATE,
) -> Iterator[AudioChunk]:
    """Live chunks from an audio input device (``sounddevice``), until ``duration_s`` or Ctrl+C.

    Raises :class:`MicrophoneUnavailableError` when ``sounddevice`` (PortAudio) is not installed or no
    input device exists. Devices that refuse 16 kHz are recorded at their default rate and resampled.
    """
    try:
        import sounddevice
    except (ImportError, OSError) as err:
        raise MicrophoneUnavailableError(
            f"Microphone input needs the `sounddevice` package and PortAudio ({err}). Install it with "
            "`pip install sounddevice`, or stream from a file."
        ) from err
    try:
        devices = sounddevice.query_devices()
    except Exception as err:  # noqa: BLE001 - PortAudio errors
        raise MicrophoneUnavailableError(f"Cannot list audio devices: {err}") from err
    if not any(d.get("max_input_channels", 0) > 0 for d in devices):
        raise MicrophoneUnavailableError("No audio input device found (no microphone); stream from a file instead.")
    from ..audio_utils import resample

    chunks: queue.Queue = queue.Queue()

    def callback(indata, frames, time_info, status) -> None:  # sounddevice's callback signature
        chunks.put((indata.mean(axis=1).astype(np.float32), time.perf_counter()))

    def open_stream(rate: int):
        return sounddevice.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                                       blocksize=chunk_samples(chunk_ms, rate), callback=callback)

    rate = sampling_rate
    try:
        stream = open_stream(rate)
    except Exception:  # noqa: BLE001 - the device refuses 16 kHz: use its default rate
        rate = int(sounddevice.query_devices(device, "input")["default_samplerate"])
        try:
            stream = open_stream(rate)
        except Exception as err:  # noqa: BLE001
            raise MicrophoneUnavailableError(f"Cannot open the audio input device: {err}") from err
    received = 0.0
    with stream:
        while duration_s is None or received < duration_s:
            samples, arrival = chunks.get()
            received += samples.shape[0] / rate
            yield AudioChunk(resample(samples, rate, sampling_rate), arrival)


# --------------------------------------------------------------------------------------------- streaming
def _percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if values else float("nan")


@dataclass
class StreamResult:
    """The emotion of one utterance, its transcript, stage times and latencies (seconds).

    ``text_source`` is ``"given"`` (a transcript line), ``"asr"`` (recognised), ``"none"`` (a text model ran
    with empty text: no line and no ASR) or ``None`` (the model does not use text).
    """

    index: int
    start_s: float
    end_s: float
    scores: list[dict[str, Any]]
    latency_s: float
    end_of_speech_latency_s: float
    text: str | None = None
    text_source: str | None = None
    asr_s: float = 0.0
    emotion_s: float = 0.0
    forced: bool = False
    error: str | None = None
    #: seconds the utterance waited in the queue before its recognition started (the backlog)
    queued_s: float = 0.0
    #: what a live stream that fell behind gave up for this utterance (:class:`~.stream_session.BacklogPolicy`):
    #: ``"asr_skipped"`` (classified with empty text), ``"dropped"`` (not classified; ``error`` says why)
    degraded: list[str] = field(default_factory=list)
    #: doubts about the recognised text (:attr:`~.asr.Transcription.flags`): ``"asr_empty_text"`` (nothing
    #: recognised: classified with empty text), ``"asr_low_confidence"`` (the text is likely wrong)
    flags: list[str] = field(default_factory=list)
    #: the recognizer's confidence (faster-whisper; ``None`` for other engines or without ASR)
    asr_avg_logprob: float | None = None
    asr_no_speech_prob: float | None = None

    @property
    def label(self) -> str | None:
        """The top emotion (``None`` after an error)."""
        return self.scores[0]["label"] if self.scores else None

    @property
    def score(self) -> float | None:
        """The top emotion's probability (``None`` after an error)."""
        return float(self.scores[0]["score"]) if self.scores else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (with ``label`` and ``score`` of the top emotion)."""
        return {**asdict(self), "label": self.label, "score": self.score}


@dataclass
class StreamSummary:
    """What a stream run measured. ``rtf`` = compute / audio seconds (< 1: keeps up with real time)."""

    results: list[StreamResult] = field(default_factory=list)
    audio_s: float = 0.0
    compute_s: float = 0.0
    wall_s: float = 0.0
    realtime: bool = False
    #: the detector (``silero``/``energy``) and the recognizer (``None``: no ASR ran)
    vad: str = ""
    asr: str | None = None
    #: VAD compute time of each audio chunk (seconds)
    vad_chunk_s: list[float] = field(default_factory=list)
    #: ``VADConfig.early_ms``: early jobs started, and how many gave an utterance's result (the others were
    #: dropped when speech resumed; their compute time counts)
    early_started: int = 0
    early_used: int = 0
    #: the backlog: the most utterances that waited for recognition at once, and the queue's capacity
    queue_peak: int = 0
    queue_capacity: int = 0
    #: the live stream's :class:`~.stream_session.BacklogPolicy` (``None``: input read without pacing, never degraded)
    policy: dict[str, Any] | None = None
    #: peak resident memory of the process at the end of the stream (MB; ``None`` where ``resource`` is missing)
    peak_rss_mb: float | None = None
    #: one Whisper encoder pass per utterance: the ASR's encoder states fed the emotion model
    shared_encoder: bool = False

    @property
    def rtf(self) -> float:
        """Real-time factor (compute time / audio duration)."""
        return self.compute_s / self.audio_s if self.audio_s > 0 else float("nan")

    def degraded_count(self, kind: str) -> int:
        """Results marked with ``kind`` (``"asr_skipped"``, ``"dropped"``)."""
        return sum(kind in r.degraded for r in self.results)

    def latency_stats(self) -> dict[str, float]:
        """Mean, median, p90, max of ``latency_s``; mean, median, p90 of ``end_of_speech_latency_s`` (how far the
        results trail the audio); median and max of the queue wait ``queued_s`` (the backlog)."""
        ok = [r for r in self.results if r.error is None]
        if not ok:
            return {}
        lat = [r.latency_s for r in ok]
        eos = [r.end_of_speech_latency_s for r in ok]
        queued = [r.queued_s for r in ok]
        return {"mean_s": statistics.fmean(lat), "median_s": statistics.median(lat), "p90_s": _percentile(lat, 90),
                "max_s": max(lat), "end_of_speech_mean_s": statistics.fmean(eos),
                "end_of_speech_median_s": statistics.median(eos), "end_of_speech_p90_s": _percentile(eos, 90),
                "end_of_speech_max_s": max(eos), "queued_median_s": statistics.median(queued),
                "queued_max_s": max(queued)}

    def stage_stats(self) -> dict[str, dict[str, float]]:
        """Per stage: VAD per audio chunk, ASR and emotion model per utterance (ms: mean, median, p90, max)."""

        def stats(seconds: list[float]) -> dict[str, float]:
            if not seconds:
                return {"count": 0}
            ms = [1000 * x for x in seconds]
            return {"count": len(ms), "total_s": sum(seconds), "mean_ms": statistics.fmean(ms),
                    "median_ms": statistics.median(ms), "p90_ms": _percentile(ms, 90), "max_ms": max(ms)}

        ok = [r for r in self.results if r.error is None]
        return {"vad_per_chunk": stats(self.vad_chunk_s),
                "asr_per_utterance": stats([r.asr_s for r in ok if r.text_source == "asr"]),
                "emotion_per_utterance": stats([r.emotion_s for r in ok])}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (without the per-utterance results)."""
        return {"utterances": len(self.results), "errors": sum(r.error is not None for r in self.results),
                "audio_s": self.audio_s, "compute_s": self.compute_s, "wall_s": self.wall_s, "rtf": self.rtf,
                "keeps_up": self.rtf < 1, "realtime": self.realtime, "vad": self.vad, "asr": self.asr,
                "early_started": self.early_started, "early_used": self.early_used,
                "queue_peak": self.queue_peak, "queue_capacity": self.queue_capacity, "policy": self.policy,
                "asr_skipped": self.degraded_count("asr_skipped"), "dropped": self.degraded_count("dropped"),
                "peak_rss_mb": self.peak_rss_mb, "shared_encoder": self.shared_encoder,
                "latency": self.latency_stats(), "stages": self.stage_stats()}


def _uses_text(pipe: Any) -> bool:
    return "text" in list(pipe.model.config.modalities)


def _describe_asr(asr: Any) -> str:
    name = os.path.basename(os.fspath(getattr(asr, "name", "")).rstrip("/\\")) or type(asr).__name__
    return f"{getattr(asr, 'engine', 'asr')}: {name}"


def warm_up(pipe: Any, seconds: float = 1.0, asr: Any = None) -> float:
    """Run the pipeline (and ``asr``) once on noise, so first-call allocations stay out of the measured
    latencies; returns seconds."""
    rng = np.random.default_rng(0)
    audio = (0.05 * rng.standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32)
    t0 = time.perf_counter()
    if asr is not None:
        asr(audio)
    pipe({"audio": audio, "sampling_rate": SAMPLING_RATE, "text": "안녕하세요"})
    return time.perf_counter() - t0


def stream_emotions(
    pipe: Any,
    chunks: Iterable[AudioChunk],
    transcript: Transcript | None = None,
    vad_config: VADConfig | None = None,
    top_k: int | None = None,
    on_result: Callable[[StreamResult], None] | None = None,
    realtime: bool = False,
    asr: Any = None,
    policy: Any = None,
    share_encoder: bool | None = None,
) -> StreamSummary:
    """Segment ``chunks`` into utterances and classify each as soon as it ends (a
    :class:`~.stream_session.StreamSession`).

    ``pipe`` is a :class:`~.pipeline_multistill.MultiStillEmotionPipeline`; ``on_result`` is called with each
    :class:`StreamResult` right away, in utterance order (the CLI prints it). A model that uses text takes each
    utterance's ``transcript`` line when there is one, else the transcript of ``asr`` (a
    :class:`~.asr.SpeechRecognizer`; default: the pipeline's own, ``pipe.asr``); with neither, ``ValueError``.
    An utterance the pipeline rejects gets a result with ``error`` set; the stream goes on. With ``realtime``
    (live input) a stream that falls behind degrades by ``policy`` (a :class:`~.stream_session.BacklogPolicy`)
    instead of growing its backlog. When the model's audio encoder is the recognizer's Whisper encoder, one
    encoder pass per utterance serves both (``share_encoder``: ``None`` when possible, ``False`` never, ``True``
    required; see :mod:`~.stream_encoder`). Stops cleanly on Ctrl+C (the open utterance is still classified).
    """
    from .stream_session import StreamSession

    return StreamSession(pipe, transcript=transcript, vad_config=vad_config, top_k=top_k, on_result=on_result,
                         realtime=realtime, asr=asr, policy=policy, share_encoder=share_encoder).run(chunks)


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:,.0f} ms"


def format_result(result: StreamResult, top: int = 3) -> str:
    """One line per utterance: time span, top emotions, latencies with stage times, and the transcript."""
    span = f"[{result.start_s:7.2f}s - {result.end_s:7.2f}s]"
    if result.error is not None:
        return f"{span} error: {result.error}"
    scores = "  ".join(f"{s['label']} {s['score']:.2f}" for s in result.scores[:top])
    stages = f"emotion {_ms(result.emotion_s)}"
    if result.text_source == "asr":
        stages = f"ASR {_ms(result.asr_s)}, " + stages
    line = (f"{span} {scores} | latency {_ms(result.latency_s)}, {_ms(result.end_of_speech_latency_s)} after end "
            f"of speech ({stages})")
    if result.forced:
        line += " [cut at max length]"
    if result.text_source is not None:
        line += f" | {result.text_source}: {result.text}"
    notes = {"asr_empty_text": "no text recognised", "asr_low_confidence": "low-confidence transcript"}
    if result.flags:
        line += f" [{', '.join(notes.get(flag, flag) for flag in result.flags)}]"
    return line


def format_summary(summary: StreamSummary) -> str:
    """Totals: utterances, audio and compute time, real-time factor, stage times, latencies."""
    stats = summary.latency_stats()
    stages = summary.stage_stats()
    keeps_up = "yes" if summary.rtf < 1 else "NO"
    parts = "VAD" + (" + ASR" if summary.asr else "") + " + emotion model"
    pace = "live pace" if summary.realtime else "input read without pacing, as fast as the models go"
    lines = [
        f"utterances: {len(summary.results)} | audio {summary.audio_s:.1f} s | compute {summary.compute_s:.2f} s "
        f"| wall {summary.wall_s:.2f} s ({pace})",
        f"real-time factor ({parts} compute / audio): {summary.rtf:.3f} | compute fast enough for live audio "
        f"(RTF < 1): {keeps_up}",
    ]
    vad = stages["vad_per_chunk"]
    stage_line = f"stages: VAD ({summary.vad})"
    if vad["count"]:
        stage_line += f" {vad['mean_ms']:.2f} ms per chunk (p90 {vad['p90_ms']:.2f} ms, total {vad['total_s']:.2f} s)"
    for name, key in (("ASR", "asr_per_utterance"), ("emotion", "emotion_per_utterance")):
        stage = stages[key]
        if stage["count"]:
            stage_line += (f" | {name} median {stage['median_ms']:,.0f} ms, p90 {stage['p90_ms']:,.0f} ms per "
                           "utterance")
    lines.append(stage_line)
    if summary.early_started:
        lines.append(f"early start: {summary.early_used} of {len(summary.results)} results from an early job "
                     f"({summary.early_started - summary.early_used} early jobs dropped: speech resumed)")
    if stats:
        lines.append(
            f"latency: median {_ms(stats['median_s'])}, p90 {_ms(stats['p90_s'])}, max {_ms(stats['max_s'])} | "
            f"end of utterance to result: median {_ms(stats['end_of_speech_median_s'])}, "
            f"p90 {_ms(stats['end_of_speech_p90_s'])}"
        )
    lines.append(_backlog_line(summary, stats))
    return "\n".join(lines)


def _backlog_line(summary: StreamSummary, stats: dict[str, float]) -> str:
    """Queue wait, lag behind the audio, what was degraded, peak memory."""
    line = f"backlog: queue at most {summary.queue_peak} of {summary.queue_capacity} utterances"
    if stats:
        line += f", wait median {_ms(stats['queued_median_s'])}, max {_ms(stats['queued_max_s'])}"
    if summary.realtime:
        lag = f"max {_ms(stats['end_of_speech_max_s'])} behind the audio, " if stats else ""
        skipped, dropped = summary.degraded_count("asr_skipped"), summary.degraded_count("dropped")
        line += (f" | live: {lag}{skipped} utterances without ASR, {dropped} dropped"
                 + (" (fell behind real time)" if skipped or dropped else " (kept up)"))
    if summary.shared_encoder:
        line += " | one Whisper encoder pass per utterance (ASR and emotion model)"
    if summary.peak_rss_mb is not None:
        line += f" | peak memory {summary.peak_rss_mb:,.0f} MB (process RSS)"
    return line


#: Timeline colours, in the paper's label order (other labels get matplotlib's tab10 colours).
EMOTION_COLORS = {"neutral": "#9e9e9e", "happy": "#f4b400", "surprise": "#ab47bc", "angry": "#db4437",
                  "sad": "#4285f4", "disgust": "#0f9d58", "fear": "#5d4037"}


def plot_timeline(
    results: list[StreamResult],
    path: str | os.PathLike,
    audio_s: float | None = None,
    title: str | None = None,
    row_s: float = 120.0,
    snippet_chars: int = 18,
) -> str:
    """Draw the emotion timeline of a conversation as an image (PNG, or any format matplotlib writes).

    Each utterance is a bar over its time span, coloured by its top emotion; the bar's height is that
    emotion's probability (the darker, the surer), and transcripts of at most ``snippet_chars`` characters
    are written above it with the utterance's number (longer ones are cut with "…"; Korean needs a font
    with Hangul, else only the number is written). Long conversations wrap into rows of about ``row_s``.
    Returns the path written.
    """
    if row_s <= 0:
        raise ValueError(f"row_s must be > 0, got {row_s!r}.")
    from ..plotting import korean_text, warn_without_font

    warn_without_font([r.text for r in results], "the timeline labels Korean utterances with their number (#1, "
                      "#2, ...) instead of a transcript snippet.")
    with korean_text() as font:
        return _draw_timeline(results, os.fspath(path), audio_s, title, row_s, snippet_chars, font)


def _draw_timeline(results: list[StreamResult], path: str, audio_s: float | None, title: str | None, row_s: float,
                   snippet_chars: int, font: str | None) -> str:
    """:func:`plot_timeline`'s drawing; ``font`` is the Hangul font in use (``None``: Korean left out)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    from ..plotting import has_hangul

    end = max([audio_s or 0.0] + [r.end_s for r in results]) or 1.0
    rows = max(1, int(np.ceil(end / row_s - 0.1)))  # rows of at most 1.1 row_s, all of the same length
    span = end / rows
    fig, axes = plt.subplots(rows, 1, figsize=(16, 2.6 * rows + 0.6), squeeze=False)
    extra = iter(plt.get_cmap("tab10").colors)
    colors = dict(EMOTION_COLORS)
    for result in results:
        if result.label is not None and result.label not in colors:
            colors[result.label] = next(extra, "#000000")
    for row, ax in enumerate(axes[:, 0]):
        lo, hi = row * span, (row + 1) * span
        ax.set_xlim(lo, hi)
        ax.set_ylim(0, 1.55)
        ax.set_yticks([0, 0.5, 1.0])
        ax.set_ylabel("top emotion\nprobability")
        ax.grid(axis="x", alpha=0.3)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
        for result in results:
            if result.end_s <= lo or result.start_s >= hi:
                continue
            width = result.end_s - result.start_s
            if result.error is not None:
                ax.bar(result.start_s, 1.0, width=width, align="edge", color="none", edgecolor="#616161",
                       hatch="//", linewidth=0.5)
                continue
            score = result.score or 0.0
            ax.bar(result.start_s, score, width=width, align="edge", color=colors[result.label],
                   alpha=0.35 + 0.65 * score, edgecolor="white", linewidth=0.5)
            if lo <= result.start_s:
                snippet = result.text or ""
                if len(snippet) > snippet_chars:
                    snippet = snippet[:snippet_chars - 1] + "…"
                if font is None and has_hangul(snippet):
                    snippet = ""
                ax.text(result.start_s + width / 2, score + 0.03, f"#{result.index + 1} {snippet}".strip(),
                        rotation=90, ha="center", va="bottom", fontsize=7, clip_on=True)
    axes[-1, 0].set_xlabel("time (s)")
    shown = [label for label in colors if any(r.label == label for r in results)]
    handles = [Patch(color=colors[label], label=label) for label in shown]
    if any(r.error is not None for r in results):
        handles.append(Patch(facecolor="none", edgecolor="#616161", hatch="//", label="error"))
    fig.legend(handles=handles, loc="upper right", ncol=max(1, len(handles)), frameon=False)
    fig.suptitle(title or f"Emotion timeline: {len(results)} utterances, {end:.0f} s", x=0.01, ha="left")
    fig.tight_layout(rect=(0, 0, 1, 0.97 if rows > 1 else 0.92))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


__all__ = [
    "EMOTION_COLORS",
    "VAD_KINDS",
    "AudioChunk",
    "EnergyVAD",
    "SileroVAD",
    "MicrophoneUnavailableError",
    "StreamResult",
    "StreamSummary",
    "Transcript",
    "Utterance",
    "UtteranceSegmenter",
    "VADConfig",
    "array_chunks",
    "file_chunks",
    "format_result",
    "format_summary",
    "load_silero_model",
    "make_vad",
    "microphone_chunks",
    "plot_timeline",
    "segment_audio",
    "stream_emotions",
    "warm_up",
]
