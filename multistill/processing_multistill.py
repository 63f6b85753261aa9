"""Processor of the Multi-Still models: raw audio + transcript -> model inputs.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

One processor serves the teacher and every student (the light student computes its filterbank inside
the model from the same 16 kHz ``input_values``).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from transformers import AutoFeatureExtractor, AutoProcessor, AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .annotations import clean_transcript
from .configuration_multistill import MultiStillConfig

TARGET_SAMPLING_RATE = 16000
#: A 2-D array is one multi-channel recording; its channel axis is the shorter one, at most this long.
MAX_CHANNELS = 16


def _describe(item: Any, index: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return f"audio item {index} ({os.fspath(item)})"
    return f"audio item {index}"


def read_audio_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file to a mono float32 array and its sampling rate (soundfile, then librosa)."""
    file = Path(path)
    if not file.exists():
        raise ValueError(f"Audio file not found: {os.fspath(path)}")
    if not file.is_file():
        raise ValueError(f"Audio path is not a file: {os.fspath(path)}")
    errors = []
    try:
        import soundfile

        data, rate = soundfile.read(str(file), dtype="float32", always_2d=True)
        return data.mean(axis=1), int(rate)
    except Exception as err:  # noqa: BLE001 - any decoder failure falls through to the next decoder
        errors.append(f"soundfile: {err}")
    try:
        import warnings

        import librosa

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data, rate = librosa.load(str(file), sr=None, mono=True)
        return np.asarray(data, dtype=np.float32), int(rate)
    except Exception as err:  # noqa: BLE001
        errors.append(f"librosa: {type(err).__name__}: {err}")
    raise ValueError(f"{os.fspath(path)} is not a readable audio file ({'; '.join(errors)}).")


def to_mono(array: np.ndarray, where: str = "audio") -> np.ndarray:
    """Mix a 1-D or 2-D array down to mono float32.

    A 2-D array is always *one* recording: ``(channels, samples)`` or ``(samples, channels)``; the channel
    axis is the shorter one (``(channels, samples)`` when both are equal) and must hold at most
    :data:`MAX_CHANNELS` channels. A batch must be passed as a list.
    """
    array = np.asarray(array)
    if array.dtype == np.bool_ or not (np.issubdtype(array.dtype, np.number)):
        raise ValueError(f"{where} must hold numbers, got dtype {array.dtype}.")
    if np.issubdtype(array.dtype, np.integer):
        info = np.iinfo(array.dtype)
        offset = (int(info.max) + 1) / 2 if info.min == 0 else 0.0
        scale = float(info.max) + 1 - offset
        array = (array.astype(np.float64) - offset) / scale
    if array.ndim == 1:
        return array.astype(np.float32)
    if array.ndim != 2:
        raise ValueError(f"{where} must be 1-D (mono) or 2-D (multi-channel), got shape {array.shape}.")
    channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
    if array.shape[channel_axis] > MAX_CHANNELS:
        raise ValueError(
            f"{where} has shape {array.shape}: a 2-D array is read as one recording of at most {MAX_CHANNELS} "
            "channels ((channels, samples) or (samples, channels)); pass a batch as a list of 1-D arrays."
        )
    return array.mean(axis=channel_axis).astype(np.float32)


def resample(array: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Polyphase resampling (scipy ``resample_poly``), no torchaudio needed."""
    if orig_sr == target_sr:
        return array
    from scipy.signal import resample_poly

    gcd = math.gcd(int(orig_sr), int(target_sr))
    return resample_poly(array.astype(np.float64), target_sr // gcd, int(orig_sr) // gcd).astype(np.float32)


class MultiStillProcessor(ProcessorMixin):
    r"""Wav2Vec2 feature extractor (16 kHz, normalised, with attention mask) + any tokenizer.

    ``__call__(audio=..., text=..., sampling_rate=...)`` returns a ``BatchFeature`` with ``input_values``,
    ``attention_mask`` (audio samples), ``input_ids``, ``text_attention_mask`` and ``token_type_ids``.

    Args:
        feature_extractor: a ``Wav2Vec2FeatureExtractor`` (``do_normalize=True``, ``return_attention_mask=True``).
        tokenizer: any tokenizer (ELECTRA WordPiece for KcELECTRA).
        modalities: the modalities the model needs; a call missing one raises ``ValueError``.
        max_audio_frames / samples_per_frame: audio is truncated to ``max_audio_frames * samples_per_frame``
            samples (512 * 320 = 163,840 samples = 10.24 s, the paper's 512 wav2vec2 frames).
        max_text_tokens: token sequences are truncated to this length (special tokens included).
        min_audio_samples: shorter clips are zero-padded to this length (400 samples = one wav2vec2 frame).
    """

    def __init__(
        self,
        feature_extractor: Any = None,
        tokenizer: Any = None,
        modalities: list[str] | tuple[str, ...] | str = ("audio", "text"),
        max_audio_frames: int | None = 512,
        samples_per_frame: int = 320,
        max_text_tokens: int = 128,
        min_audio_samples: int = 400,
        **kwargs: Any,
    ):
        self.modalities = self._normalize_modalities(modalities)
        self.max_audio_frames = max_audio_frames
        self.samples_per_frame = int(samples_per_frame)
        self.max_text_tokens = int(max_text_tokens)
        self.min_audio_samples = int(min_audio_samples)
        super().__init__(feature_extractor, tokenizer, **kwargs)

    @staticmethod
    def _normalize_modalities(modalities: Any) -> list[str]:
        aliases = {"audio": ["audio"], "text": ["text"], "both": ["audio", "text"]}
        if isinstance(modalities, str):
            if modalities not in aliases:
                raise ValueError(f"`modalities` must be 'audio', 'text', 'both' or a list of them, got {modalities!r}.")
            return aliases[modalities]
        values = list(modalities or [])
        unknown = [m for m in values if m not in ("audio", "text")]
        if unknown or not values:
            raise ValueError(f"`modalities` must be a non-empty list of 'audio'/'text', got {modalities!r}.")
        return [m for m in ("audio", "text") if m in values]

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_encoders(
        cls,
        audio_encoder: str | os.PathLike = "kresnik/wav2vec2-large-xlsr-korean",
        text_encoder: str | os.PathLike = "beomi/KcELECTRA-base",
        config: Any = None,
        **load_kwargs: Any,
    ) -> MultiStillProcessor:
        """Feature extractor from the audio encoder folder/Hub id, tokenizer from the text encoder's.

        ``config`` (a ``MultiStillConfig``) sets ``modalities``, ``max_audio_frames`` and ``max_text_tokens``.
        """
        feature_extractor = AutoFeatureExtractor.from_pretrained(os.fspath(audio_encoder), **load_kwargs)
        feature_extractor.return_attention_mask = True
        feature_extractor.do_normalize = True
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(text_encoder), **load_kwargs)
        return cls.from_model_config(config, feature_extractor, tokenizer) if config is not None else cls(
            feature_extractor, tokenizer
        )

    from_encoder_folders = from_encoders

    @classmethod
    def from_model_config(cls, config: Any, feature_extractor: Any, tokenizer: Any) -> MultiStillProcessor:
        """Processor whose limits and modalities follow a ``MultiStillConfig``."""
        return cls(
            feature_extractor,
            tokenizer,
            modalities=list(config.modalities),
            max_audio_frames=config.max_audio_frames,
            max_text_tokens=config.max_text_tokens,
        )

    @property
    def sampling_rate(self) -> int:
        """Sampling rate of ``input_values`` (16 kHz)."""
        return int(getattr(self.feature_extractor, "sampling_rate", TARGET_SAMPLING_RATE))

    @property
    def max_audio_samples(self) -> int | None:
        """Audio length limit in samples (``None``: no truncation)."""
        if self.max_audio_frames is None:
            return None
        return int(self.max_audio_frames) * self.samples_per_frame

    @property
    def model_input_names(self) -> list[str]:
        return ["input_values", "attention_mask", "input_ids", "text_attention_mask", "token_type_ids"]

    # ------------------------------------------------------------------ audio
    @staticmethod
    def _is_single_audio(audio: Any) -> bool:
        if isinstance(audio, (str, os.PathLike, dict)) or hasattr(audio, "get_all_samples"):
            return True
        if isinstance(audio, np.ndarray) or type(audio).__name__ == "Tensor":
            return True
        if isinstance(audio, (list, tuple)):
            return len(audio) > 0 and all(isinstance(x, (int, float, np.number)) for x in audio)
        return False

    def _load_audio(self, item: Any, sampling_rate: int | None, index: int) -> np.ndarray:
        where = _describe(item, index)
        rate = sampling_rate
        if isinstance(item, (str, os.PathLike)):
            array, rate = read_audio_file(item)
        elif isinstance(item, dict):
            if item.get("array") is not None:
                array = item["array"]
                rate = item.get("sampling_rate", sampling_rate)
            elif item.get("path"):
                where = _describe(item["path"], index)
                array, rate = read_audio_file(item["path"])
            else:
                raise ValueError(f"{where}: a dict must hold 'array' (+ 'sampling_rate') or 'path'.")
        elif hasattr(item, "get_all_samples"):  # torchcodec AudioDecoder (datasets' Audio feature)
            samples = item.get_all_samples()
            array, rate = samples.data.numpy(), int(samples.sample_rate)
        else:
            if type(item).__name__ == "Tensor":
                item = item.detach().cpu().float().numpy()
            array = item
        if rate is None:
            raise ValueError(
                f"{where}: `sampling_rate` is required for audio arrays (the processor resamples to "
                f"{TARGET_SAMPLING_RATE} Hz)."
            )
        if not isinstance(rate, (int, np.integer, float)) or rate <= 0:
            raise ValueError(f"{where}: invalid sampling_rate {rate!r}.")
        array = to_mono(array, where)
        if array.size == 0:
            raise ValueError(f"{where} is empty (no samples).")
        finite = np.isfinite(array)
        if not finite.any():
            raise ValueError(f"{where}: all samples are NaN/inf.")
        if not finite.all():
            raise ValueError(f"{where}: {int((~finite).sum())} of {array.size} samples are NaN/inf.")
        array = resample(array, int(rate), self.sampling_rate)
        limit = self.max_audio_samples
        if limit is not None and array.shape[0] > limit:
            array = array[:limit]
        if array.shape[0] < self.min_audio_samples:
            array = np.pad(array, (0, self.min_audio_samples - array.shape[0]))
        return array

    def prepare_audio(self, audio: Any, sampling_rate: int | None = None) -> list[np.ndarray]:
        """Decode / mix down / validate / resample / truncate audio into a list of 16 kHz mono arrays."""
        items = [audio] if self._is_single_audio(audio) else list(audio)
        if not items:
            raise ValueError("`audio` is an empty list.")
        return [self._load_audio(item, sampling_rate, i) for i, item in enumerate(items)]

    # ------------------------------------------------------------------ call
    def __call__(
        self,
        audio: Any = None,
        text: str | list[str] | None = None,
        sampling_rate: int | None = None,
        return_tensors: str | None = "pt",
        padding: bool | str = True,
        clean_text: bool = True,
        modalities: list[str] | str | None = None,
        **kwargs: Any,
    ) -> BatchFeature:
        """Process audio (arrays, tensors, file paths, ``{"array", "sampling_rate"}`` dicts, or a list of
        these; any sampling rate, mono or multi-channel) and/or transcripts (cleaned with
        ``clean_transcript``). ``modalities`` overrides the processor's required modalities for this call.
        """
        needed = self._normalize_modalities(modalities) if modalities is not None else self.modalities
        if audio is None and text is None:
            raise ValueError(f"Pass `audio` and/or `text` (this processor expects {needed}).")
        for modality, value in (("audio", audio), ("text", text)):
            if modality in needed and value is None:
                raise ValueError(
                    f"`{modality}` is missing: the model needs {needed}. Pass it, or call with "
                    f"modalities={[m for m in needed if m != modality] or None} if it is not used."
                )
        data: dict[str, Any] = {}
        batch_sizes = {}
        if audio is not None:
            arrays = self.prepare_audio(audio, sampling_rate)
            features = self.feature_extractor(
                arrays,
                sampling_rate=self.sampling_rate,
                padding=padding,
                return_attention_mask=True,
                return_tensors=return_tensors,
            )
            data["input_values"] = features["input_values"]
            data["attention_mask"] = features["attention_mask"]
            batch_sizes["audio"] = len(arrays)
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("`text` must be a string or a non-empty list of strings.")
            if clean_text:
                texts = [clean_transcript(t) for t in texts]
            encoded = self.tokenizer(
                texts,
                padding=padding,
                truncation=True,
                max_length=self.max_text_tokens,
                return_tensors=return_tensors,
                **kwargs,
            )
            data["input_ids"] = encoded["input_ids"]
            data["text_attention_mask"] = encoded["attention_mask"]
            if "token_type_ids" in encoded:
                data["token_type_ids"] = encoded["token_type_ids"]
            batch_sizes["text"] = len(texts)
        if len(set(batch_sizes.values())) > 1:
            raise ValueError(
                f"audio and text batches differ in size: {batch_sizes}. (A 2-D audio array is one "
                "multi-channel recording; pass a batch of clips as a list.)"
            )
        return BatchFeature(data=data, tensor_type=return_tensors)

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        """Forwarded to the tokenizer."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> str:
        """Forwarded to the tokenizer."""
        return self.tokenizer.decode(*args, **kwargs)


MultiStillProcessor.register_for_auto_class("AutoProcessor")
AutoProcessor.register(MultiStillConfig, MultiStillProcessor, exist_ok=True)

__all__ = ["MAX_CHANNELS", "MultiStillProcessor", "read_audio_file", "resample", "to_mono"]
