"""Speech recognition for models that use text: transcripts from audio alone, and what they cost in accuracy.

Two engines behind one interface, :class:`SpeechRecognizer` (16 kHz mono float arrays in, text out):

* ``"transformers"``: any speech-recognition checkpoint through ``pipeline("automatic-speech-recognition")``
  (Whisper family: decoded in Korean, ``language="ko"``); on a GPU e.g. ``openai/whisper-large-v3-turbo``.
* ``"faster-whisper"``: a CTranslate2 Whisper (``pip install "multistill[faster-whisper]"``), the faster CPU
  engine (int8). A folder holding ``model.bin`` is a CTranslate2 model and picks this engine by itself.

:func:`load_asr` builds either; :func:`add_asr_transcripts` adds an ``asr_text`` column to a KEMDy dataset
with ``datasets.map`` (cached next to the dataset's Arrow files under a fingerprint of the dataset and the
recognizer, so a second call reads the cache); :func:`character_error_rate` scores transcripts.

This file is shipped next to the weights with the pipeline (remote code): it imports its siblings only
relatively, and heavy or optional modules only inside functions (``faster_whisper`` within ``try``), so
importing it is cheap (the command line's argument parser reads :data:`ASR_ENGINES`).
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

#: Sampling rate every engine is fed (Whisper's).
ASR_SAMPLING_RATE = 16000
ASR_ENGINES = ("transformers", "faster-whisper")
FASTER_WHISPER_HINT = 'pip install "multistill[faster-whisper]"  (faster-whisper + ctranslate2)'
#: name of the column :func:`add_asr_transcripts` adds to a dataset
ASR_TEXT_COLUMN = "asr_text"
#: Whisper's input window (s): every clip is padded to it, whatever its length.
WHISPER_WINDOW_S = 30.0
#: The shorter encoder window of faster-whisper for clips that fit it (``encoder_window_s``), ``multistill stream``'s
#: default: on the KEMDy sample 28.6 % character error rate against 27.0 % with the 30 s window, in 462 s against
#: 859 s (benchmarks/asr_cer.py); windows of the clip's own length plus 1-3 s lost more in a first trial.
SHORT_WINDOW_S = 10.0
#: Whisper's own thresholds (``openai/whisper`` ``transcribe``): below this average log-probability per token a
#: decoding is unreliable, and above this no-speech probability the window probably holds no speech.
LOW_CONFIDENCE_LOGPROB = -1.0
NO_SPEECH_PROBABILITY = 0.6
#: Flags of :attr:`Transcription.flags` (also in the stream's results, ``StreamResult.flags``).
ASR_EMPTY_TEXT = "asr_empty_text"
ASR_LOW_CONFIDENCE = "asr_low_confidence"


@dataclass(frozen=True)
class Transcription:
    """One clip's transcript and the recognizer's confidence in it (``None`` where the engine reports none:
    the transformers engine)."""

    text: str
    #: mean log-probability of the decoded tokens (Whisper's ``avg_logprob``)
    avg_logprob: float | None = None
    #: probability that the window holds no speech (Whisper's ``no_speech_prob``)
    no_speech_prob: float | None = None

    @property
    def flags(self) -> list[str]:
        """``asr_empty_text`` (nothing recognised: noise, silence) and ``asr_low_confidence`` (average
        log-probability under :data:`LOW_CONFIDENCE_LOGPROB` or no-speech probability over
        :data:`NO_SPEECH_PROBABILITY`: the text is likely wrong, e.g. speech Whisper cannot read)."""
        flags = [ASR_EMPTY_TEXT] if not self.text.strip() else []
        if (self.avg_logprob is not None and self.avg_logprob < LOW_CONFIDENCE_LOGPROB) or (
                self.no_speech_prob is not None and self.no_speech_prob > NO_SPEECH_PROBABILITY):
            flags.append(ASR_LOW_CONFIDENCE)
        return flags


def _folder_signature(path: str) -> str:
    """Names and sizes of a local model folder's files (the cache key changes when the weights do)."""
    entries = []
    for name in sorted(os.listdir(path)):
        full = os.path.join(path, name)
        if os.path.isfile(full):
            entries.append(f"{name}:{os.path.getsize(full)}")
    return ",".join(entries)


class SpeechRecognizer:
    """Transcribes 16 kHz mono float32 arrays (subclasses implement :meth:`_transcribe`, or
    :meth:`_transcribe_details` when the engine reports a confidence)."""

    engine: str = ""

    def __init__(self, name: str, language: str | None):
        self.name = name
        self.language = language
        #: clips transcribed so far and the seconds spent on them (what a cached ``datasets.map`` saves)
        self.clips_transcribed = 0
        self.seconds_transcribing = 0.0

    def __call__(self, audio: np.ndarray, sampling_rate: int = ASR_SAMPLING_RATE) -> str:
        """The transcript of one clip."""
        return self.transcribe([audio], sampling_rate)[0]

    def transcribe(self, audios: Sequence[np.ndarray], sampling_rate: int = ASR_SAMPLING_RATE) -> list[str]:
        """Transcripts of several clips (mono or multi-channel, any rate; resampled to 16 kHz)."""
        return [result.text for result in self.transcribe_details(audios, sampling_rate)]

    def transcribe_details(self, audios: Sequence[np.ndarray], sampling_rate: int = ASR_SAMPLING_RATE,
                           **engine_kwargs: Any) -> list[Transcription]:
        """:meth:`transcribe` with the recognizer's confidence per clip (:class:`Transcription`);
        ``engine_kwargs`` go to the engine's :meth:`_transcribe_details`."""
        from .audio_utils import load_audio

        clips = [load_audio(audio, sampling_rate, f"ASR input {i}", ASR_SAMPLING_RATE, min_seconds=0)
                 for i, audio in enumerate(audios)]
        if not clips:
            return []
        t0 = time.perf_counter()
        results = [Transcription(" ".join(result.text.split()), result.avg_logprob, result.no_speech_prob)
                   for result in self._transcribe_details(clips, **engine_kwargs)]
        self.seconds_transcribing += time.perf_counter() - t0
        self.clips_transcribed += len(clips)
        return results

    def _transcribe(self, clips: list[np.ndarray]) -> list[str]:
        raise NotImplementedError

    def _transcribe_details(self, clips: list[np.ndarray]) -> list[Transcription]:
        """Engines that report a confidence override this; the others give the text alone."""
        return [Transcription(text) for text in self._transcribe(clips)]

    @property
    def fingerprint(self) -> str:
        """Identity of the recognizer and its decoding settings (the key of cached transcripts)."""
        return "|".join(f"{k}={v}" for k, v in sorted(self.describe().items()))

    def describe(self) -> dict[str, Any]:
        """Engine, model and decoding settings (JSON-serialisable; also written in benchmark results)."""
        return {"engine": self.engine, "model": self.name, "language": self.language}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.describe().items())})"


class TransformersSpeechRecognizer(SpeechRecognizer):
    """Any ``automatic-speech-recognition`` checkpoint (a name, a folder, or a ready ``Pipeline``).

    Whisper checkpoints transcribe in ``language`` (task ``transcribe``); other models ignore it. Audio over
    30 s goes through Whisper's own long-form decoding. ``num_beams=1`` is greedy decoding.
    """

    engine = "transformers"

    def __init__(self, model: Any, language: str | None = "ko", device: Any = None, batch_size: int = 1,
                 num_beams: int = 1):
        from transformers import Pipeline, pipeline

        if batch_size < 1 or num_beams < 1:
            raise ValueError(f"batch_size and num_beams must be >= 1, got {batch_size} and {num_beams}.")
        if isinstance(model, Pipeline):
            if model.task != "automatic-speech-recognition":
                raise ValueError(f"The ASR pipeline must be an 'automatic-speech-recognition' pipeline, got {model.task!r}.")
            self.pipe = model
            name = getattr(model.model, "name_or_path", type(model.model).__name__)
        else:
            name = os.fspath(model)
            try:
                self.pipe = pipeline("automatic-speech-recognition", model=name, device=device)
            except (OSError, ValueError, KeyError) as err:
                raise ValueError(f"Cannot load the speech-recognition model {name!r} (transformers): {err}") from err
        super().__init__(str(name), language)
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.is_whisper = getattr(self.pipe.model.config, "model_type", None) == "whisper"
        tokenizer = self.pipe.tokenizer
        if batch_size > 1 and tokenizer is not None and tokenizer.pad_token_id is None:
            tokenizer.pad_token_id = self.pipe.model.config.eos_token_id  # what the pipeline asks for to batch
        self._rate = int(getattr(self.pipe.feature_extractor, "sampling_rate", ASR_SAMPLING_RATE))

    def _transcribe(self, clips: list[np.ndarray]) -> list[str]:
        from .audio_utils import resample

        generate_kwargs: dict[str, Any] = {"num_beams": self.num_beams}
        if self.is_whisper and self.language:
            generate_kwargs.update(language=self.language, task="transcribe")
        inputs = [{"raw": resample(clip, ASR_SAMPLING_RATE, self._rate), "sampling_rate": self._rate} for clip in clips]
        outputs = self.pipe(inputs, batch_size=self.batch_size, generate_kwargs=generate_kwargs)
        return [output["text"] for output in outputs]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(num_beams=self.num_beams, device=str(self.pipe.device))
        name = self.name
        if os.path.isdir(name):
            info["model"] = os.path.abspath(name)
            info["files"] = _folder_signature(name)
        return info


class FasterWhisperSpeechRecognizer(SpeechRecognizer):
    """Whisper on CTranslate2 (``faster-whisper``): a CTranslate2 folder or a faster-whisper size/repo name.

    Greedy (``beam_size=1``) at temperature 0; only an output that repeats itself (gzip compression ratio
    over 2.4, Whisper's loop detector) is decoded again with sampling at rising temperatures (0.2 ... 1.0),
    which is what stops Whisper base's hallucinated loops. No low-confidence fallback (it would re-decode
    most Korean utterances of a small model), no conditioning on previous text and no timestamps: each clip
    is one utterance found by the VAD. ``compute_type`` defaults to ``int8`` on CPU and ``float16`` on CUDA.

    ``encoder_window_s`` (``None``: Whisper's 30 s): a clip up to that long is encoded on a window of that length
    (its log-mel spectrogram zero-padded to it, as Whisper pads to 30 s) instead of 30 s, so the encoder reads a
    third of the frames at 10 s; longer clips keep the 30 s window. See :data:`SHORT_WINDOW_S`.
    """

    engine = "faster-whisper"
    temperatures = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold = 2.4
    #: Decoding length cap per clip: ``tokens_per_second`` x duration + ``min_new_tokens``, at most
    #: ``max_new_tokens_limit`` (Whisper's 448-token context less the prompt). Fast Korean speech is about 7
    #: syllables (at most about 10 tokens) a second; a loop on speech Whisper cannot read (reversed speech took
    #: 57 s for one utterance) stops at the cap instead of filling the context at every fallback temperature.
    tokens_per_second = 15.0
    min_new_tokens = 16
    max_new_tokens_limit = 440

    def __init__(self, model: str | os.PathLike, language: str | None = "ko", device: Any = None,
                 compute_type: str | None = None, beam_size: int = 1, cpu_threads: int = 0,
                 encoder_window_s: float | None = None):
        check_encoder_window(encoder_window_s)
        try:
            from faster_whisper import WhisperModel
        except ImportError as err:
            raise ImportError(f"The faster-whisper ASR engine is not installed ({err}). Install it with: "
                              f"{FASTER_WHISPER_HINT}, or use --asr_engine transformers.") from err
        if beam_size < 1 or cpu_threads < 0:
            raise ValueError(f"beam_size must be >= 1 and cpu_threads >= 0, got {beam_size} and {cpu_threads}.")
        quiet = logging.getLogger("faster_whisper")
        if quiet.level == logging.NOTSET:  # it logs every clip's duration at INFO; keep that out of -v output
            quiet.setLevel(logging.WARNING)
        device_type, device_index = _ctranslate2_device(device)
        self.compute_type = compute_type or ("float16" if device_type == "cuda" else "int8")
        self.beam_size = beam_size
        self.encoder_window_s = encoder_window_s or WHISPER_WINDOW_S
        self.device = device_type if device_index is None else f"{device_type}:{device_index}"
        name = os.fspath(model)
        try:
            self.model = WhisperModel(name, device=device_type, device_index=device_index or 0,
                                      compute_type=self.compute_type, cpu_threads=cpu_threads)
        except (OSError, ValueError, RuntimeError) as err:
            raise ValueError(f"Cannot load the speech-recognition model {name!r} (faster-whisper): {err}") from err
        super().__init__(name, language)

    def max_new_tokens(self, clip: np.ndarray) -> int:
        """The decoding cap of a 16 kHz clip (see :attr:`tokens_per_second`)."""
        seconds = len(clip) / ASR_SAMPLING_RATE
        return min(self.max_new_tokens_limit, self.min_new_tokens + math.ceil(self.tokens_per_second * seconds))

    def encoder_frames(self, clip: np.ndarray) -> int | None:
        """The log-mel frames (100 a second) the encoder reads for a 16 kHz clip: ``None`` for the 30 s window."""
        if self.encoder_window_s >= WHISPER_WINDOW_S or len(clip) > self.encoder_window_s * ASR_SAMPLING_RATE:
            return None
        return math.ceil(self.encoder_window_s * 100)

    def _transcribe_details(self, clips: list[np.ndarray], captured: list[Any] | None = None) -> list[Transcription]:
        """Per clip the text, the token-weighted mean of its segments' ``avg_logprob`` and the first segment's
        ``no_speech_prob`` (Whisper computes it once per window). ``captured`` receives the first clip's first
        encoder output."""
        return [self._transcribe_clip(clip, captured) for clip in clips]

    def _transcribe_clip(self, clip: np.ndarray, captured: list[Any] | None) -> Transcription:
        """One clip, its encoder pass wrapped: the window cut to :meth:`encoder_frames`, the output captured."""
        frames = self.encoder_frames(clip)
        wrapped = vars(self.model).get("encode")  # an instance's own wrapper, put back afterwards
        encode = self.model.encode

        def encoder_pass(features: Any) -> Any:
            output = encode(features if frames is None else features[..., :frames])
            if captured is not None and not captured:
                captured.append(output)
            return output

        self.model.encode = encoder_pass  # faster-whisper's decoding loop calls self.encode once per window
        try:
            segments, _ = self.model.transcribe(
                clip, language=self.language, task="transcribe", beam_size=self.beam_size,
                temperature=list(self.temperatures), compression_ratio_threshold=self.compression_ratio_threshold,
                log_prob_threshold=None, condition_on_previous_text=False, without_timestamps=True,
                vad_filter=False, max_new_tokens=self.max_new_tokens(clip),
            )
            segments = list(segments)
        finally:
            if wrapped is None:
                del self.model.encode
            else:
                self.model.encode = wrapped
        tokens = [max(1, len(segment.tokens)) for segment in segments]
        logprob = (sum(s.avg_logprob * n for s, n in zip(segments, tokens, strict=True)) / sum(tokens)
                   if segments else None)
        return Transcription("".join(segment.text for segment in segments), logprob,
                             segments[0].no_speech_prob if segments else None)

    def transcribe_with_encoder(self, audio: np.ndarray, sampling_rate: int = ASR_SAMPLING_RATE) -> tuple[str, Any]:
        """The transcript of one clip and the Whisper encoder states of its first window (float32 array
        ``[50 per second of the window, d_model]``: 1,500 for 30 s): the encoder pass decoding made, captured, so
        that an emotion model with the same encoder need not run it again (see ``stream_encoder.py``). :meth:`transcribe_details_with_encoder` also
        gives the confidence."""
        result, states = self.transcribe_details_with_encoder(audio, sampling_rate)
        return result.text, states

    def transcribe_details_with_encoder(self, audio: np.ndarray,
                                        sampling_rate: int = ASR_SAMPLING_RATE) -> tuple[Transcription, Any]:
        """:meth:`transcribe_with_encoder` with the :class:`Transcription`."""
        captured: list[Any] = []
        result = self.transcribe_details([audio], sampling_rate, captured=captured)[0]
        if not captured:
            raise ValueError("faster-whisper decoded without running its encoder (empty audio?).")
        states = captured[0]
        if self.device.startswith("cuda"):
            import torch

            return result, torch.as_tensor(states).float().cpu().numpy()[0]
        return result, np.array(states, dtype=np.float32)[0]

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(compute_type=self.compute_type, beam_size=self.beam_size, device=self.device,
                    encoder_window_s=self.encoder_window_s,
                    temperature_fallback=f"{self.temperatures} when compression ratio > {self.compression_ratio_threshold}",
                    max_new_tokens=f"{self.min_new_tokens} + {self.tokens_per_second:g} per second, at most "
                                   f"{self.max_new_tokens_limit}")
        if os.path.isdir(self.name):
            info["model"] = os.path.abspath(self.name)
            info["files"] = _folder_signature(self.name)
        return info


def _ctranslate2_device(device: Any) -> tuple[str, int | None]:
    """``None``/"cpu"/-1 -> cpu; "cuda", "cuda:1", 0, torch.device("cuda", 1) -> cuda (+ index)."""
    if device is None:
        return "cpu", None
    if isinstance(device, int):
        return ("cpu", None) if device < 0 else ("cuda", device)
    text = str(device)
    if text.startswith("cuda"):
        return "cuda", int(text.split(":", 1)[1]) if ":" in text else None
    if text == "cpu":
        return "cpu", None
    raise ValueError(f"The faster-whisper engine runs on 'cpu' or 'cuda[:N]', got device {text!r}.")


def check_encoder_window(encoder_window_s: float | None) -> None:
    """``encoder_window_s`` is ``None`` or 1-30 s (a window shorter than a second cuts most utterances off)."""
    if encoder_window_s is not None and not 1.0 <= encoder_window_s <= WHISPER_WINDOW_S:
        raise ValueError(f"The ASR encoder window must be 1-{WHISPER_WINDOW_S:g} s, got {encoder_window_s:g}.")


def detect_engine(model: Any) -> str:
    """``faster-whisper`` for a folder holding a CTranslate2 ``model.bin``, ``transformers`` otherwise."""
    if isinstance(model, (str, os.PathLike)) and os.path.isfile(os.path.join(os.fspath(model), "model.bin")):
        return "faster-whisper"
    return "transformers"


def load_asr(
    model: Any,
    engine: str | None = None,
    language: str | None = "ko",
    device: Any = None,
    compute_type: str | None = None,
    beam_size: int = 1,
    threads: int | None = None,
    batch_size: int = 1,
    encoder_window_s: float | None = None,
) -> SpeechRecognizer:
    """A :class:`SpeechRecognizer` for ``model``: a name or folder, an ASR ``Pipeline``, or a recognizer.

    ``engine`` is ``"transformers"``, ``"faster-whisper"`` or ``None`` (auto: a folder with ``model.bin`` is
    CTranslate2). ``language`` is Whisper's language code (Korean by default; ``None`` detects it).
    ``threads`` sets faster-whisper's CPU threads (default: its own choice). Beam size 1 is greedy.
    ``encoder_window_s`` is faster-whisper's (see :class:`FasterWhisperSpeechRecognizer`); the transformers
    engine keeps Whisper's 30 s window and refuses another.
    """
    if isinstance(model, SpeechRecognizer) or (callable(getattr(model, "transcribe", None))
                                                and hasattr(model, "fingerprint")):
        return model  # a recognizer (also one built by another copy of this module, e.g. the installed package)
    if isinstance(model, (str, os.PathLike)) and not os.fspath(model).strip():
        raise ValueError("The speech-recognition model name is empty.")
    if engine is None:
        engine = detect_engine(model)
    if engine not in ASR_ENGINES:
        raise ValueError(f"asr engine must be one of {ASR_ENGINES}, got {engine!r}.")
    if threads is not None and threads < 0:
        raise ValueError(f"threads must be >= 0, got {threads}.")
    check_encoder_window(encoder_window_s)
    if engine == "faster-whisper":
        if not isinstance(model, (str, os.PathLike)):
            raise ValueError(f"The faster-whisper engine takes a folder or model name, got {type(model).__name__}.")
        return FasterWhisperSpeechRecognizer(model, language, device, compute_type, beam_size, threads or 0,
                                             encoder_window_s)
    if encoder_window_s not in (None, WHISPER_WINDOW_S):
        raise ValueError(f"An ASR encoder window of {encoder_window_s:g} s needs the faster-whisper engine; the "
                         f"transformers engine keeps Whisper's {WHISPER_WINDOW_S:g} s.")
    return TransformersSpeechRecognizer(model, language, device, batch_size, beam_size)


# ------------------------------------------------------------------------------------------ datasets


def add_asr_transcripts(
    dataset: Any,
    asr: SpeechRecognizer,
    column: str = ASR_TEXT_COLUMN,
    audio_column: str = "audio",
    batch_size: int = 8,
    load_from_cache_file: bool = True,
) -> Any:
    """``dataset`` with a ``column`` of ``asr``'s transcript of every utterance (``datasets.map``, batched).

    The result is cached next to the dataset's Arrow files under a fingerprint of the dataset, the column
    and :attr:`SpeechRecognizer.fingerprint` (engine, model files, language, decoding), so calling it again
    with the same recognizer reads the cache instead of transcribing.
    """
    if audio_column not in dataset.column_names:
        raise ValueError(f"The dataset has no {audio_column!r} column (columns: {dataset.column_names}).")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}.")
    key = f"{dataset._fingerprint}|{column}|{audio_column}|{asr.fingerprint}"
    fingerprint = hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]

    def transcribe(audios: list[Any], indices: list[int]) -> dict[str, list[str]]:
        from .audio_utils import load_audio

        clips = [load_audio(value, None, f"row {index} ({audio_column})", ASR_SAMPLING_RATE, min_seconds=0)
                 for value, index in zip(audios, indices, strict=True)]
        return {column: asr.transcribe(clips)}

    return dataset.map(transcribe, batched=True, batch_size=batch_size, input_columns=[audio_column],
                       with_indices=True, new_fingerprint=fingerprint, load_from_cache_file=load_from_cache_file,
                       desc=f"ASR ({asr.engine}: {os.path.basename(asr.name.rstrip('/')) or asr.name})")


# ------------------------------------------------------------------------------------------ CER

_DROP = re.compile(r"[^\w\s]|_")


def normalize_for_cer(text: str, keep_spaces: bool = False) -> str:
    """NFKC, lower case, punctuation and symbols removed, white space collapsed (or removed).

    Korean spacing is inconsistent between transcribers (and between Whisper and KEMDy), so the default
    compares characters without spaces.
    """
    text = _DROP.sub(" ", unicodedata.normalize("NFKC", str(text)).lower())
    text = " ".join(text.split())
    return text if keep_spaces else text.replace(" ", "")


def edit_distance(reference: str, hypothesis: str) -> int:
    """Levenshtein distance between two strings (substitutions, deletions, insertions; one row at a time)."""
    if not reference:
        return len(hypothesis)
    if not hypothesis:
        return len(reference)
    hyp = np.frombuffer(hypothesis.encode("utf-32-le"), dtype=np.uint32)
    steps = np.arange(len(hyp) + 1)
    row = steps.copy()
    for i, char in enumerate(reference, start=1):
        cost = (hyp != ord(char)).astype(np.int64)
        # deletion (row above) and substitution (diagonal); insertions are the running minimum along the row
        candidate = np.empty_like(row)
        candidate[0] = i
        candidate[1:] = np.minimum(row[1:] + 1, row[:-1] + cost)
        row = np.minimum.accumulate(candidate - steps) + steps
    return int(row[-1])


def character_error_rate(
    references: Sequence[str], hypotheses: Sequence[str], keep_spaces: bool = False
) -> dict[str, Any]:
    """Corpus CER: total character edits / total reference characters, after :func:`normalize_for_cer`.

    Also returns the counts and the number of utterances with an empty reference (skipped: no character
    to recognise) or an empty hypothesis (counted: every reference character is a deletion).
    """
    if len(references) != len(hypotheses):
        raise ValueError(f"Got {len(references)} references but {len(hypotheses)} hypotheses.")
    edits = chars = empty_refs = empty_hyps = 0
    for reference, hypothesis in zip(references, hypotheses, strict=True):
        ref, hyp = normalize_for_cer(reference, keep_spaces), normalize_for_cer(hypothesis, keep_spaces)
        if not ref:
            empty_refs += 1
            continue
        empty_hyps += not hyp
        edits += edit_distance(ref, hyp)
        chars += len(ref)
    return {"cer": edits / chars if chars else float("nan"), "edits": edits, "reference_chars": chars,
            "utterances": len(references) - empty_refs, "empty_references": empty_refs,
            "empty_hypotheses": empty_hyps, "spaces": keep_spaces}


__all__ = [
    "ASR_EMPTY_TEXT",
    "ASR_ENGINES",
    "ASR_LOW_CONFIDENCE",
    "ASR_TEXT_COLUMN",
    "ASR_SAMPLING_RATE",
    "FASTER_WHISPER_HINT",
    "LOW_CONFIDENCE_LOGPROB",
    "NO_SPEECH_PROBABILITY",
    "FasterWhisperSpeechRecognizer",
    "SpeechRecognizer",
    "Transcription",
    "TransformersSpeechRecognizer",
    "add_asr_transcripts",
    "character_error_rate",
    "detect_engine",
    "edit_distance",
    "load_asr",
    "normalize_for_cer",
]
