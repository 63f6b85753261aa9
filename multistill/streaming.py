"""Real-time emotion recognition for a conversation: audio chunks -> voice activity -> utterances -> emotions.

Audio arrives in chunks (from a file, paced like a live recording with ``realtime=True`` or as fast as
possible otherwise, or from a microphone). An energy voice-activity detector (:class:`EnergyVAD`) labels
20 ms frames; :class:`UtteranceSegmenter` opens an utterance after ``min_speech_ms`` of speech (keeping
``pre_roll_ms`` before it) and closes it after ``hangover_ms`` of silence (or at ``max_utterance_s``).
Each closed utterance is classified at once by the emotion pipeline (with its transcript line, for models
that use text) and reported with two latencies:

* ``latency_s``: from the arrival of the audio chunk that closed the utterance to the result
  (processing, plus any backlog when the model cannot keep up);
* ``end_of_speech_latency_s``: from the end of speech to the result (adds the hangover wait).

The real-time factor is ``compute time / audio duration`` (VAD + model; time spent waiting for audio is
not counted): below 1 the model keeps up with live audio. Without ``realtime`` a file is consumed faster
than real time (what the tests do); the latencies are then the per-utterance processing times.
"""

from __future__ import annotations

import logging
import os
import queue
import re
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

SAMPLING_RATE = 16000


class MicrophoneUnavailableError(RuntimeError):
    """No microphone can be used: ``sounddevice`` is missing or no audio input device exists."""


# --------------------------------------------------------------------------------------------- VAD
@dataclass
class VADConfig:
    """Voice-activity and utterance-segmentation settings (times in ms unless named ``_s``)."""

    sampling_rate: int = SAMPLING_RATE
    frame_ms: float = 20.0
    #: a frame is speech when its energy exceeds this (dBFS) ...
    threshold_db: float = -45.0
    #: ... and exceeds the noise floor (10th percentile of the last ``noise_window_s``) by this much
    snr_db: float = 10.0
    noise_window_s: float = 5.0
    #: consecutive speech needed to open an utterance
    min_speech_ms: float = 60.0
    #: silence needed to close it
    hangover_ms: float = 500.0
    #: audio kept before the detected onset and after the last speech frame
    pre_roll_ms: float = 200.0
    post_roll_ms: float = 100.0
    #: shorter speech spans are dropped (clicks, coughs)
    min_utterance_ms: float = 300.0
    #: longer utterances are cut here (and the next one starts at once)
    max_utterance_s: float = 20.0

    def __post_init__(self) -> None:
        for name in ("sampling_rate", "frame_ms", "noise_window_s", "min_speech_ms", "hangover_ms",
                     "max_utterance_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VADConfig.{name} must be > 0, got {getattr(self, name)!r}.")
        for name in ("pre_roll_ms", "post_roll_ms", "min_utterance_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"VADConfig.{name} must be >= 0, got {getattr(self, name)!r}.")

    @property
    def frame_samples(self) -> int:
        """Samples per VAD frame."""
        return max(1, int(round(self.sampling_rate * self.frame_ms / 1000)))

    def frames(self, ms: float) -> int:
        """Number of frames covering ``ms`` milliseconds (at least 1)."""
        return max(1, int(np.ceil(ms / self.frame_ms)))


class EnergyVAD:
    """Frame energy (dBFS) against ``max(threshold_db, noise floor + snr_db)``.

    The noise floor is the 10th percentile of the frame energies of the last ``noise_window_s`` (once
    0.1 s of history exists), so a steady background (fan, hum) louder than ``threshold_db`` is not speech.
    """

    def __init__(self, config: VADConfig | None = None):
        self.config = config or VADConfig()
        self._history: deque[float] = deque(maxlen=self.config.frames(self.config.noise_window_s * 1000))
        self._min_history = self.config.frames(100)

    @staticmethod
    def frame_db(frame: np.ndarray) -> float:
        """Mean power of ``frame`` in dB relative to full scale (-100 for digital silence)."""
        power = float(np.mean(np.square(frame, dtype=np.float64))) if frame.size else 0.0
        return max(-100.0, 10.0 * np.log10(power + 1e-10))

    def threshold(self) -> float:
        """The current speech threshold (dBFS)."""
        threshold = self.config.threshold_db
        if len(self._history) >= self._min_history:
            threshold = max(threshold, float(np.percentile(self._history, 10)) + self.config.snr_db)
        return threshold

    def is_speech(self, frame: np.ndarray) -> bool:
        """Classify one frame (and add it to the noise-floor history)."""
        level = self.frame_db(frame)
        speech = level > self.threshold()
        self._history.append(level)
        return speech


@dataclass
class Utterance:
    """A segment of speech found by :class:`UtteranceSegmenter` (times in seconds of stream time)."""

    index: int
    start_s: float
    end_s: float
    audio: np.ndarray
    #: stream time at which the end was decided (end of the frame that completed the hangover)
    detected_at_s: float
    #: cut at ``max_utterance_s`` rather than closed by silence
    forced: bool = False

    @property
    def duration_s(self) -> float:
        """Speech duration (from onset to the last speech frame)."""
        return self.end_s - self.start_s


class UtteranceSegmenter:
    """Cuts a stream of audio chunks into utterances with :class:`EnergyVAD` (onset, hangover, pre-roll).

    ``push(samples)`` returns the utterances that ended within those samples; ``flush()`` ends the stream.
    """

    def __init__(self, config: VADConfig | None = None):
        self.config = config or VADConfig()
        self.vad = EnergyVAD(self.config)
        cfg = self.config
        self._frame = cfg.frame_samples
        self._frame_s = self._frame / cfg.sampling_rate
        self._onset = cfg.frames(cfg.min_speech_ms)
        self._hangover = cfg.frames(cfg.hangover_ms)
        self._pre_roll = int(round(cfg.pre_roll_ms / cfg.frame_ms))
        self._post_roll = int(round(cfg.post_roll_ms / cfg.frame_ms))
        self._min_speech = int(np.ceil(cfg.min_utterance_ms / cfg.frame_ms))
        self._max_frames = cfg.frames(cfg.max_utterance_s * 1000)
        self._pending = np.zeros(0, dtype=np.float32)
        self._frame_index = 0
        self._ring: deque[tuple[int, np.ndarray]] = deque(maxlen=self._pre_roll + self._onset)
        self._speech_run = 0
        self._in_speech = False
        self._frames: list[np.ndarray] = []
        self._first_frame = self._first_speech = self._last_speech = 0
        self._silence_run = 0
        self._count = 0

    @property
    def stream_time_s(self) -> float:
        """Seconds of audio consumed so far (whole frames)."""
        return self._frame_index * self._frame_s

    def push(self, samples: np.ndarray) -> list[Utterance]:
        """Feed mono float samples at ``config.sampling_rate``; return the utterances that ended."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        data = np.concatenate([self._pending, samples]) if self._pending.size else samples
        n_frames = data.shape[0] // self._frame
        self._pending = data[n_frames * self._frame:].copy()
        ended: list[Utterance] = []
        for k in range(n_frames):
            frame = data[k * self._frame:(k + 1) * self._frame]
            utterance = self._step(frame, self.vad.is_speech(frame))
            if utterance is not None:
                ended.append(utterance)
        return ended

    def flush(self) -> list[Utterance]:
        """End of stream: close the open utterance, if any."""
        if not self._in_speech:
            return []
        utterance = self._close(self._frame_index - 1, forced=False)
        self._in_speech = False
        return [utterance] if utterance is not None else []

    def _step(self, frame: np.ndarray, speech: bool) -> Utterance | None:
        index = self._frame_index
        self._frame_index += 1
        if not self._in_speech:
            self._ring.append((index, frame))
            self._speech_run = self._speech_run + 1 if speech else 0
            if self._speech_run >= self._onset:
                self._in_speech = True
                self._first_frame = self._ring[0][0]
                self._first_speech = index - self._onset + 1
                self._last_speech = index
                self._frames = [f for _, f in self._ring]
                self._silence_run = 0
                self._ring.clear()
                self._speech_run = 0
            return None
        self._frames.append(frame)
        if speech:
            self._last_speech, self._silence_run = index, 0
        else:
            self._silence_run += 1
        if self._silence_run >= self._hangover:
            self._in_speech = False
            return self._close(index, forced=False)
        if len(self._frames) >= self._max_frames:
            utterance = self._close(index, forced=True)
            self._frames, self._first_frame = [], index + 1
            self._first_speech = self._last_speech = index + 1
            self._silence_run = 0
            return utterance
        return None

    def _close(self, detected_frame: int, forced: bool) -> Utterance | None:
        last = detected_frame if forced else min(self._last_speech + self._post_roll, detected_frame)
        kept = self._frames[: last - self._first_frame + 1]
        speech_frames = self._last_speech - self._first_speech + 1
        if forced:
            speech_frames = detected_frame - self._first_speech + 1
        if not kept or speech_frames < self._min_speech:
            return None
        end_frame = detected_frame if forced else self._last_speech
        utterance = Utterance(
            index=self._count,
            start_s=self._first_speech * self._frame_s,
            end_s=(end_frame + 1) * self._frame_s,
            audio=np.concatenate(kept),
            detected_at_s=(detected_frame + 1) * self._frame_s,
            forced=forced,
        )
        self._count += 1
        return utterance


# --------------------------------------------------------------------------------------------- transcripts
_TIMED_LINE = re.compile(r"^\s*(\d+(?:\.\d+)?)\t(\d+(?:\.\d+)?)\t(.*)$")


class Transcript:
    """Transcript lines for the utterances of a stream (the model's text input; no ASR is run).

    A file holds either one line per utterance, in order (``utterance i`` gets ``line i``), or timed
    lines ``start<TAB>end<TAB>text`` (seconds), in which case an utterance gets the lines it overlaps.
    UTF-8, or CP949 (KEMDy20's encoding) as a fallback. Blank lines are skipped.
    """

    def __init__(self, lines: list[str] | None = None, timed: list[tuple[float, float, str]] | None = None):
        if (lines is None) == (timed is None):
            raise ValueError("Pass exactly one of `lines` and `timed`.")
        self.lines = lines
        self.timed = timed
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
            return cls(timed=[(float(m.group(1)), float(m.group(2)), m.group(3).strip()) for m in matches])
        return cls(lines=[row.strip() for row in rows])

    def text_for(self, utterance: Utterance) -> str:
        """The transcript of ``utterance`` ("" with a warning when the transcript has none)."""
        if self.lines is not None:
            if utterance.index < len(self.lines):
                return self.lines[utterance.index]
            text = ""
        else:
            parts = [t for start, end, t in self.timed
                     if min(end, utterance.end_s) - max(start, utterance.start_s) > 0]
            text = " ".join(parts)
            if text:
                return text
        if not self._warned:
            logger.warning("The transcript has no line for utterance %d (%.2f-%.2f s); using empty text.",
                           utterance.index, utterance.start_s, utterance.end_s)
            self._warned = True
        return text


# --------------------------------------------------------------------------------------------- sources
@dataclass
class AudioChunk:
    """Mono float32 samples at 16 kHz and the wall-clock time (``time.perf_counter``) they became available."""

    samples: np.ndarray
    arrival: float


def _chunk_samples(chunk_ms: float, sampling_rate: int) -> int:
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be > 0, got {chunk_ms!r}.")
    return max(1, int(round(sampling_rate * chunk_ms / 1000)))


def array_chunks(
    audio: np.ndarray, chunk_ms: float = 100.0, realtime: bool = False, sampling_rate: int = SAMPLING_RATE
) -> Iterator[AudioChunk]:
    """Chunks of ``audio``. ``realtime``: delivered by a background thread at the pace of a live recording
    (a chunk arrives when its last sample would have been recorded); otherwise as fast as consumed."""
    size = _chunk_samples(chunk_ms, sampling_rate)
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
    from .pipeline_multistill import decode_audio
    from .processing_multistill import resample

    array, rate = decode_audio(path, f"stream input ({os.fspath(path)})")
    if array.size == 0:
        raise ValueError(f"stream input ({os.fspath(path)}): the audio is empty (no samples).")
    return array_chunks(resample(array, rate, sampling_rate), chunk_ms, realtime, sampling_rate)


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
    from .processing_multistill import resample

    chunks: queue.Queue = queue.Queue()

    def callback(indata, frames, time_info, status) -> None:  # sounddevice's callback signature
        chunks.put((indata.mean(axis=1).astype(np.float32), time.perf_counter()))

    def open_stream(rate: int):
        return sounddevice.InputStream(samplerate=rate, channels=1, dtype="float32", device=device,
                                       blocksize=_chunk_samples(chunk_ms, rate), callback=callback)

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
@dataclass
class StreamResult:
    """The emotion of one utterance, with its latencies (seconds)."""

    index: int
    start_s: float
    end_s: float
    scores: list[dict[str, Any]]
    latency_s: float
    end_of_speech_latency_s: float
    text: str | None = None
    forced: bool = False
    error: str | None = None

    @property
    def label(self) -> str | None:
        """The top emotion (``None`` after an error)."""
        return self.scores[0]["label"] if self.scores else None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return asdict(self)


@dataclass
class StreamSummary:
    """What a stream run measured. ``rtf`` = compute / audio seconds (< 1: keeps up with real time)."""

    results: list[StreamResult] = field(default_factory=list)
    audio_s: float = 0.0
    compute_s: float = 0.0
    wall_s: float = 0.0
    realtime: bool = False

    @property
    def rtf(self) -> float:
        """Real-time factor (compute time / audio duration)."""
        return self.compute_s / self.audio_s if self.audio_s > 0 else float("nan")

    def latency_stats(self) -> dict[str, float]:
        """Mean, median, max of ``latency_s`` and mean of ``end_of_speech_latency_s`` over the utterances."""
        ok = [r for r in self.results if r.error is None]
        if not ok:
            return {}
        lat = [r.latency_s for r in ok]
        return {"mean_s": statistics.fmean(lat), "median_s": statistics.median(lat), "max_s": max(lat),
                "end_of_speech_mean_s": statistics.fmean(r.end_of_speech_latency_s for r in ok)}

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (without the per-utterance results)."""
        return {"utterances": len(self.results), "audio_s": self.audio_s, "compute_s": self.compute_s,
                "wall_s": self.wall_s, "rtf": self.rtf, "keeps_up": self.rtf < 1, "realtime": self.realtime,
                "latency": self.latency_stats()}


def warm_up(pipe: Any, seconds: float = 1.0) -> float:
    """Run the pipeline once on noise (first-call allocations out of the measured latencies); returns seconds."""
    rng = np.random.default_rng(0)
    item: dict[str, Any] = {"audio": (0.05 * rng.standard_normal(int(seconds * SAMPLING_RATE))).astype(np.float32),
                            "sampling_rate": SAMPLING_RATE, "text": "안녕하세요"}
    t0 = time.perf_counter()
    pipe(item)
    return time.perf_counter() - t0


def stream_emotions(
    pipe: Any,
    chunks: Iterable[AudioChunk],
    transcript: Transcript | None = None,
    vad_config: VADConfig | None = None,
    top_k: int | None = None,
    on_result: Callable[[StreamResult], None] | None = None,
    realtime: bool = False,
) -> StreamSummary:
    """Segment ``chunks`` into utterances and classify each as soon as it ends.

    ``pipe`` is a :class:`~.pipeline_multistill.MultiStillEmotionPipeline`; ``on_result`` is called with each
    :class:`StreamResult` right away (the CLI prints it). A model that uses text needs ``transcript``.
    An utterance the pipeline rejects gets a result with ``error`` set; the stream goes on.
    Stops cleanly on Ctrl+C (the open utterance is still classified).
    """
    needs_text = "text" in list(pipe.model.config.modalities)
    if needs_text and transcript is None:
        raise ValueError(
            f"The model uses text ({'+'.join(pipe.model.config.modalities)}): pass a transcript "
            "(one line per utterance, or 'start<TAB>end<TAB>text' lines)."
        )
    config = vad_config or VADConfig()
    segmenter = UtteranceSegmenter(config)
    summary = StreamSummary(realtime=realtime)
    t_start = time.perf_counter()

    def classify(utterance: Utterance, arrival: float, stream_end_s: float) -> None:
        text = transcript.text_for(utterance) if needs_text else None
        item = {"audio": utterance.audio, "sampling_rate": config.sampling_rate, "text": text}
        error, scores = None, []
        try:
            scores = pipe(item, top_k=top_k)
        except ValueError as err:
            error = str(err)
        latency = time.perf_counter() - arrival
        result = StreamResult(
            index=utterance.index, start_s=utterance.start_s, end_s=utterance.end_s, scores=scores,
            latency_s=latency, end_of_speech_latency_s=latency + max(0.0, stream_end_s - utterance.end_s),
            text=text, forced=utterance.forced, error=error,
        )
        summary.results.append(result)
        if on_result is not None:
            on_result(result)

    try:
        for chunk in chunks:
            t0 = time.perf_counter()
            summary.audio_s += chunk.samples.shape[0] / config.sampling_rate
            for utterance in segmenter.push(chunk.samples):
                classify(utterance, chunk.arrival, summary.audio_s)
            summary.compute_s += time.perf_counter() - t0
    except KeyboardInterrupt:
        logger.info("Interrupted: closing the stream.")
    t0 = time.perf_counter()
    for utterance in segmenter.flush():
        classify(utterance, t0, summary.audio_s)
    summary.compute_s += time.perf_counter() - t0
    summary.wall_s = time.perf_counter() - t_start
    return summary


def format_result(result: StreamResult, top: int = 3) -> str:
    """One line per utterance: time span, top emotions, latencies (and the transcript)."""
    span = f"[{result.start_s:7.2f}s - {result.end_s:7.2f}s]"
    if result.error is not None:
        return f"{span} error: {result.error}"
    scores = "  ".join(f"{s['label']} {s['score']:.2f}" for s in result.scores[:top])
    line = (f"{span} {scores} | latency {result.latency_s * 1000:.0f} ms "
            f"(after end of speech {result.end_of_speech_latency_s * 1000:.0f} ms)")
    if result.forced:
        line += " [cut at max length]"
    if result.text:
        line += f" | {result.text}"
    return line


def format_summary(summary: StreamSummary) -> str:
    """Totals: utterances, audio and compute time, real-time factor, latencies."""
    stats = summary.latency_stats()
    keeps_up = "yes" if summary.rtf < 1 else "NO"
    lines = [
        f"utterances: {len(summary.results)} | audio {summary.audio_s:.1f} s | compute {summary.compute_s:.2f} s "
        f"| wall {summary.wall_s:.2f} s ({'real-time pace' if summary.realtime else 'faster than real time'})",
        f"real-time factor (compute / audio): {summary.rtf:.3f} | keeps up with real time: {keeps_up}",
    ]
    if stats:
        lines.append(
            f"latency: mean {stats['mean_s'] * 1000:.0f} ms, median {stats['median_s'] * 1000:.0f} ms, "
            f"max {stats['max_s'] * 1000:.0f} ms | after end of speech: mean "
            f"{stats['end_of_speech_mean_s'] * 1000:.0f} ms"
        )
    return "\n".join(lines)


__all__ = [
    "AudioChunk",
    "EnergyVAD",
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
    "microphone_chunks",
    "stream_emotions",
    "warm_up",
]
