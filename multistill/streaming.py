"""Real-time emotion recognition for a conversation: audio chunks -> voice activity -> utterances -> emotions.

Audio arrives in chunks (from a file, paced like a live recording with ``realtime=True`` or as fast as
possible otherwise, or from a microphone). A voice-activity detector labels short frames as speech or not:
:class:`SileroVAD` (the default, a trained model shipped by the ``silero-vad`` package: its speech
probability per 32 ms window, with hysteresis) or :class:`EnergyVAD` (frame energy against the noise floor,
no dependency). :class:`UtteranceSegmenter` opens an utterance after ``min_speech_ms`` of speech (keeping
``pre_roll_ms`` before it) and closes it after ``hangover_ms`` of silence (or at ``max_utterance_s``).
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
import warnings
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
VAD_KINDS = ("silero", "energy")


@dataclass
class VADConfig:
    """Voice-activity and utterance-segmentation settings (times in ms unless named ``_s``)."""

    sampling_rate: int = SAMPLING_RATE
    #: ``silero`` (trained model, default) or ``energy`` (dependency-free fallback)
    vad: str = "silero"
    #: Silero: a window is speech from this probability on, and stays speech until it drops below
    #: ``speech_threshold - 0.15`` (the hysteresis of Silero's own ``VADIterator``)
    speech_threshold: float = 0.5
    #: energy VAD frame length (Silero's window is fixed: 512 samples = 32 ms at 16 kHz)
    frame_ms: float = 20.0
    #: energy VAD: a frame is speech when its energy exceeds this (dBFS) ...
    threshold_db: float = -45.0
    #: ... and exceeds the noise floor (10th percentile of the last ``noise_window_s``) by this much
    snr_db: float = 10.0
    noise_window_s: float = 5.0
    #: consecutive speech needed to open an utterance
    min_speech_ms: float = 60.0
    #: silence needed to close it
    hangover_ms: float = 500.0
    #: start transcribing and classifying an utterance after this much silence, before the hangover closes
    #: it (0: at the close). Its audio is final by then (``post_roll_ms`` at most); if speech resumes, the early
    #: work is dropped. Saves up to ``hangover_ms - early_ms`` of the wait for a result.
    early_ms: float = 0.0
    #: audio kept before the detected onset and after the last speech frame
    pre_roll_ms: float = 200.0
    post_roll_ms: float = 100.0
    #: shorter speech spans are dropped (clicks, coughs)
    min_utterance_ms: float = 300.0
    #: longer utterances are cut here (and the next one starts at once)
    max_utterance_s: float = 20.0

    def __post_init__(self) -> None:
        if self.vad not in VAD_KINDS:
            raise ValueError(f"VADConfig.vad must be one of {VAD_KINDS}, got {self.vad!r}.")
        for name in ("sampling_rate", "frame_ms", "noise_window_s", "min_speech_ms", "hangover_ms",
                     "max_utterance_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"VADConfig.{name} must be > 0, got {getattr(self, name)!r}.")
        for name in ("pre_roll_ms", "post_roll_ms", "min_utterance_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"VADConfig.{name} must be >= 0, got {getattr(self, name)!r}.")
        if not 0.15 < self.speech_threshold < 1:
            raise ValueError(f"VADConfig.speech_threshold must be in (0.15, 1), got {self.speech_threshold!r}.")
        if self.early_ms and not self.post_roll_ms <= self.early_ms < self.hangover_ms:
            raise ValueError(f"VADConfig.early_ms must be 0 (off) or in [post_roll_ms, hangover_ms) = "
                             f"[{self.post_roll_ms:g}, {self.hangover_ms:g}), got {self.early_ms!r}.")
        if self.vad == "silero" and self.sampling_rate not in (8000, 16000):
            raise ValueError(f"Silero VAD runs at 8 or 16 kHz, got sampling_rate={self.sampling_rate}.")

    @property
    def frame_samples(self) -> int:
        """Samples per energy-VAD frame."""
        return max(1, int(round(self.sampling_rate * self.frame_ms / 1000)))

    def frames(self, ms: float) -> int:
        """Number of energy-VAD frames covering ``ms`` milliseconds (at least 1)."""
        return max(1, int(np.ceil(ms / self.frame_ms)))


class EnergyVAD:
    """Frame energy (dBFS) against ``max(threshold_db, noise floor + snr_db)``.

    The noise floor is the 10th percentile of the frame energies of the last ``noise_window_s`` (once
    0.1 s of history exists), so a steady background (fan, hum) louder than ``threshold_db`` is not speech.
    """

    def __init__(self, config: VADConfig | None = None):
        self.config = config or VADConfig(vad="energy")
        self.frame_samples = self.config.frame_samples
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

    def classify(self, frames: list[np.ndarray]) -> list[bool]:
        """Classify consecutive frames, in order."""
        return [self.is_speech(frame) for frame in frames]


def load_silero_model() -> Any:
    """Silero VAD's TorchScript model from the ``silero-vad`` package (shipped in the package: offline).

    Importing ``silero_vad`` sets torch to one thread for the whole process; the caller's setting is kept.
    """
    import torch

    threads = torch.get_num_threads()
    try:
        from silero_vad import load_silero_vad
    except ImportError as err:
        raise ImportError(f"Silero VAD needs the `silero-vad` package ({err}): `pip install silero-vad`, or use "
                          "the energy detector (vad='energy', --vad energy).") from err
    finally:
        torch.set_num_threads(threads)
    with warnings.catch_warnings():  # the package's own importlib/torch.jit deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        return load_silero_vad()


class SileroVAD:
    """Silero VAD (a trained model, ``silero-vad`` package): speech probability per 32 ms window.

    A window is speech from ``speech_threshold`` on and stays speech until the probability drops below
    ``speech_threshold - 0.15`` (Silero's ``VADIterator`` hysteresis). The model keeps state across windows,
    so one instance follows one stream. It runs on one torch thread (0.3 ms per window on a 2-core CPU;
    more threads only add synchronisation for such a small model), restoring the caller's setting after
    each batch of windows.
    """

    def __init__(self, config: VADConfig | None = None):
        import torch

        self.config = config or VADConfig()
        self._torch = torch
        self.model = load_silero_model()
        self.model.reset_states()
        self.frame_samples = 512 if self.config.sampling_rate == 16000 else 256
        self._speaking = False
        #: speech probability of the windows of the last minute (for inspection)
        self.probabilities: deque[float] = deque(maxlen=60 * self.config.sampling_rate // self.frame_samples)

    def classify(self, frames: list[np.ndarray]) -> list[bool]:
        """Classify consecutive windows of :attr:`frame_samples`, in order."""
        torch = self._torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        speech = []
        try:
            with torch.inference_mode():
                for frame in frames:
                    prob = float(self.model(torch.from_numpy(np.ascontiguousarray(frame, dtype=np.float32)),
                                            self.config.sampling_rate).item())
                    self.probabilities.append(prob)
                    threshold = self.config.speech_threshold - (0.15 if self._speaking else 0.0)
                    self._speaking = prob >= threshold
                    speech.append(self._speaking)
        finally:
            torch.set_num_threads(threads)
        return speech

    def is_speech(self, frame: np.ndarray) -> bool:
        """Classify one window."""
        return self.classify([frame])[0]


def make_vad(config: VADConfig) -> EnergyVAD | SileroVAD:
    """The detector ``config.vad`` names (a fresh one: detectors keep per-stream state)."""
    return SileroVAD(config) if config.vad == "silero" else EnergyVAD(config)


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
    """Cuts a stream of audio chunks into utterances with a VAD (onset, hangover, pre-roll).

    The detector is ``config.vad``'s (:func:`make_vad`) unless ``vad`` is given. ``push(samples)`` returns
    the utterances that ended within those samples; ``flush()`` ends the stream.
    """

    def __init__(self, config: VADConfig | None = None, vad: EnergyVAD | SileroVAD | None = None):
        self.config = config or VADConfig()
        self.vad = vad if vad is not None else make_vad(self.config)
        cfg = self.config
        self._frame = int(self.vad.frame_samples)
        self._frame_s = self._frame / cfg.sampling_rate
        frame_ms = 1000 * self._frame_s

        def frames(ms: float) -> int:
            return max(1, int(np.ceil(ms / frame_ms - 1e-9)))

        self._onset = frames(cfg.min_speech_ms)
        self._hangover = frames(cfg.hangover_ms)
        self._early = frames(cfg.early_ms) if cfg.early_ms > 0 else None
        self._pre_roll = int(round(cfg.pre_roll_ms / frame_ms))
        self._post_roll = int(round(cfg.post_roll_ms / frame_ms))
        self._min_speech = int(np.ceil(cfg.min_utterance_ms / frame_ms - 1e-9))
        self._max_frames = frames(cfg.max_utterance_s * 1000)
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
        frames = [data[k * self._frame:(k + 1) * self._frame] for k in range(n_frames)]
        ended: list[Utterance] = []
        for frame, speech in zip(frames, self.vad.classify(frames), strict=True):
            utterance = self._step(frame, speech)
            if utterance is not None:
                ended.append(utterance)
        return ended

    @property
    def candidate(self) -> Utterance | None:
        """The open utterance as it will close if no speech comes before the hangover ends (same index, span
        and audio), once ``config.early_ms`` of silence have passed; else ``None`` (also with ``early_ms`` 0)."""
        if self._early is None or not self._in_speech or self._silence_run < max(self._early, self._post_roll):
            return None
        return self._utterance(self._last_speech + self._hangover, forced=False)

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
        utterance = self._utterance(detected_frame, forced)
        if utterance is not None:
            self._count += 1
        return utterance

    def _utterance(self, detected_frame: int, forced: bool) -> Utterance | None:
        """The open utterance, ended at ``detected_frame`` (``None`` when too short); changes nothing."""
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
        return utterance


def segment_audio(audio: np.ndarray, config: VADConfig | None = None, chunk_ms: float = 100.0) -> list[Utterance]:
    """All utterances of a whole recording (fed in ``chunk_ms`` chunks exactly like a stream, then flushed)."""
    segmenter = UtteranceSegmenter(config)
    size = _chunk_samples(chunk_ms, segmenter.config.sampling_rate)
    found: list[Utterance] = []
    for start in range(0, audio.shape[0], size):
        found += segmenter.push(audio[start:start + size])
    return found + segmenter.flush()


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
    from .audio_utils import load_audio

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
    from .audio_utils import resample

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
    from .plotting import korean_text, warn_without_font

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

    from .plotting import has_hangul

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
