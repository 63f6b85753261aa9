"""Voice activity and utterance segmentation: audio chunks -> speech frames -> utterances (live or offline).

A voice-activity detector labels short frames as speech or not: :class:`SileroVAD` (the default, a trained
model shipped by the ``silero-vad`` package: its speech probability per 32 ms window, with hysteresis) or
:class:`EnergyVAD` (frame energy against the noise floor, no dependency). :class:`UtteranceSegmenter` opens an
utterance after ``min_speech_ms`` of speech (keeping ``pre_roll_ms`` before it) and closes it after
``hangover_ms`` of silence (or at ``max_utterance_s``); :func:`segment_audio` cuts a whole recording.
``streaming.py`` feeds the utterances to the emotion pipeline.
"""

from __future__ import annotations

import logging
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..audio_utils import TARGET_SAMPLING_RATE as SAMPLING_RATE

#: the stream's logger (VAD messages are part of what ``multistill stream`` reports)
logger = logging.getLogger("multistill.live.streaming")


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
    size = chunk_samples(chunk_ms, segmenter.config.sampling_rate)
    found: list[Utterance] = []
    for start in range(0, audio.shape[0], size):
        found += segmenter.push(audio[start:start + size])
    return found + segmenter.flush()

def chunk_samples(chunk_ms: float, sampling_rate: int) -> int:
    if chunk_ms <= 0:
        raise ValueError(f"chunk_ms must be > 0, got {chunk_ms!r}.")
    return max(1, int(round(sampling_rate * chunk_ms / 1000)))


__all__ = [
    "SAMPLING_RATE",
    "VAD_KINDS",
    "EnergyVAD",
    "SileroVAD",
    "Utterance",
    "UtteranceSegmenter",
    "VADConfig",
    "chunk_samples",
    "load_silero_model",
    "make_vad",
    "segment_audio",
]
