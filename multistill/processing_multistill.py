"""Processor of the Multi-Still models: raw audio + transcript -> model inputs.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

One processor serves the teacher and every student: the audio encoder's feature extractor (waveform
``input_values`` for the wav2vec2 family and the light student's fbank encoder, which computes its filterbank
inside the model; log-mel ``input_features`` padded to the 30 s window for Whisper) + the text encoder's
tokenizer. The frame hop and the audio window come from the encoder (:func:`audio_frame_geometry`). Transcripts are
cleaned here (:func:`clean_transcript`, KEMDy's conventions), for the dataset builder, the tokenizers and every model.
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any

import numpy as np
import torch
from transformers import AutoConfig, AutoFeatureExtractor, AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .audio_utils import TARGET_SAMPLING_RATE, load_audio
from .configuration_multistill import (
    ALLOWED_MODALITIES,
    MultiStillConfig,
    MultiStillFbankConfig,
    _normalize_modalities,
    audio_encoder_input_name,
)

logger = logging.getLogger(__name__)


def check_text(text: str, where: str = "text") -> str:
    """``text`` if it can be encoded as UTF-8, else a ``ValueError`` naming ``where`` and the position (a lone
    surrogate such as ``"a\\ud800b"``, or invalid UTF-8 bytes given on a command line)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise ValueError(f"{where}: the text cannot be encoded as UTF-8 (character {err.start}, "
                         f"{text[err.start]!r}: a lone surrogate, or invalid UTF-8 bytes on the command line).") \
            from None
    return text



def audio_frame_geometry(audio_config: Any, feature_extractor: Any) -> dict[str, int | None]:
    """How an audio encoder sees audio, from its config and feature extractor (nothing assumed).

    Returns ``samples_per_frame`` (raw samples per encoder output frame), ``min_audio_samples`` (shortest clip
    giving one frame; shorter clips are zero-padded to it) and ``audio_window_samples`` (the fixed input window
    every clip is padded to, or ``None``):

    * the fbank front end (:class:`MultiStillFbankConfig`): filterbank hop x conv strides (640), one FFT window;
    * the wav2vec2 family (``conv_stride`` in the config): the product of the conv strides (320 = 20 ms), the
      conv stack's receptive field (400 samples);
    * Whisper (``max_source_positions`` in the config, ``n_samples`` in the feature extractor): the 30 s window
      over its 1500 positions (320), one mel hop, window ``n_samples`` (480,000).
    """
    if getattr(audio_config, "model_type", None) == MultiStillFbankConfig.model_type:
        return {"samples_per_frame": int(audio_config.samples_per_frame),
                "min_audio_samples": int(audio_config.min_input_samples), "audio_window_samples": None}
    strides = getattr(audio_config, "conv_stride", None)
    kernels = getattr(audio_config, "conv_kernel", None)
    if strides and kernels:
        receptive_field, jump = int(kernels[0]), int(strides[0])
        for kernel, stride in zip(kernels[1:], strides[1:], strict=True):
            receptive_field += (int(kernel) - 1) * jump
            jump *= int(stride)
        if getattr(audio_config, "add_adapter", False):
            jump *= int(audio_config.adapter_stride) ** int(audio_config.num_adapter_layers)
        return {"samples_per_frame": jump, "min_audio_samples": receptive_field, "audio_window_samples": None}
    positions = getattr(audio_config, "max_source_positions", None)
    window = getattr(feature_extractor, "n_samples", None)
    if positions and window:
        return {"samples_per_frame": int(window) // int(positions),
                "min_audio_samples": int(getattr(feature_extractor, "hop_length", 1)),
                "audio_window_samples": int(window)}
    raise ValueError(
        f"Cannot derive the frame hop of audio encoder {getattr(audio_config, 'model_type', audio_config)!r} with "
        f"feature extractor {type(feature_extractor).__name__}: supported are the wav2vec2 family (conv_stride), "
        "Whisper (max_source_positions + a WhisperFeatureExtractor) and the fbank front end."
    )


#: The processor files save_pretrained writes; ``processor_config.json`` is required.
PROCESSOR_FILES = ("processor_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "preprocessor_config.json")


def check_processor_folder(folder: str | os.PathLike) -> None:
    """``OSError`` naming the file when a saved processor cannot load: no ``processor_config.json``, or one of
    its JSON files (:data:`PROCESSOR_FILES`) is not valid JSON (transformers would name neither)."""
    import json

    if not os.path.isfile(os.path.join(folder, PROCESSOR_FILES[0])):
        raise OSError(f"no {PROCESSOR_FILES[0]} in {folder}: the processor was not saved (processor.save_pretrained "
                      "writes it beside the model).")
    for name in PROCESSOR_FILES:
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            try:
                with open(path, encoding="utf-8") as handle:
                    json.load(handle)
            except (ValueError, UnicodeDecodeError) as err:
                raise OSError(f"{path} is not valid JSON ({err}): the file is damaged.") from err


# A non-speech tag is one ASCII letter followed by a slash: b/ (breath), l/ (laughter), n/ (noise),
# c/ (cough), o/, u/, N/, s/ ... It may be glued to punctuation or a word ("가.l/").
_NON_SPEECH_TAG = re.compile(r"(?<![A-Za-z])[A-Za-z]/")
# Overlap marks: "(A+B)" where A is the other speaker's overlapping words and B this speaker's,
# or "(A)" where A is this speaker's words that the other speaker overlapped.
_OVERLAP = re.compile(r"\(([^()]*)\)")


def _resolve_overlap(match: re.Match) -> str:
    inner = match.group(1)
    return inner.split("+", 1)[1] if "+" in inner else inner


def clean_transcript(raw: str) -> str:
    """Turn a KEMDy transcript into the text a model sees.

    Rules (documented in the README):

    * non-speech tags (any single letter followed by ``/``: ``b/ l/ n/ c/ o/ u/ N/ s/``) are removed;
    * ``(A+B)`` overlap marks keep ``B``, the speaker's own words (``A`` is the other speaker's
      overlapping speech, transcribed in their own utterance); ``(A)`` keeps ``A``;
    * a stray ``+`` becomes a space, and white space is collapsed.
    """
    text = _OVERLAP.sub(_resolve_overlap, str(raw))
    text = _NON_SPEECH_TAG.sub(" ", text)
    text = text.replace("+", " ").replace("(", " ").replace(")", " ")
    text = re.sub(r"\s+([.,?!])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


class MultiStillProcessor(ProcessorMixin):
    r"""The audio encoder's feature extractor + any tokenizer, with the limits of the model.

    ``__call__(audio=..., text=..., sampling_rate=...)`` returns a ``BatchFeature`` with the audio encoder's
    input (``input_values`` for waveform encoders: wav2vec2 family, the fbank front end; ``input_features``
    for log-mel ones: Whisper) and its ``attention_mask`` (over samples / mel frames), ``input_ids``,
    ``text_attention_mask`` and ``token_type_ids``.

    Args:
        feature_extractor: the audio encoder's (``Wav2Vec2FeatureExtractor`` with ``do_normalize=True``,
            ``WhisperFeatureExtractor``...).
        tokenizer: the text encoder's tokenizer (ELECTRA WordPiece for KcELECTRA).
        modalities: the modalities the model needs; a call missing one raises ``ValueError``.
        max_audio_frames / samples_per_frame: audio is truncated to ``max_audio_frames * samples_per_frame``
            samples (512 x 320 = 163,840 samples = 10.24 s, the paper's 512 wav2vec2 frames). ``samples_per_frame``
            is derived from the encoder by :meth:`from_model_config` / :meth:`from_encoders`
            (:func:`audio_frame_geometry`); ``max_audio_frames=None`` keeps whole clips.
        max_text_tokens: token sequences are truncated to this length (special tokens included).
        min_audio_samples: shorter clips are zero-padded to this length (the encoder's receptive field).
        audio_window_samples: fixed input window of the encoder (Whisper: 480,000 samples = 30 s); every clip is
            padded to it (and never longer). ``None``: clips are padded to the longest of the batch.
    """

    def __init__(
        self,
        feature_extractor: Any = None,
        tokenizer: Any = None,
        modalities: list[str] | tuple[str, ...] | str = ALLOWED_MODALITIES,
        max_audio_frames: int | None = None,
        samples_per_frame: int | None = None,
        max_text_tokens: int = 128,
        min_audio_samples: int = 0,
        audio_window_samples: int | None = None,
        **kwargs: Any,
    ):
        self.modalities = self._normalize_modalities(modalities)
        if max_audio_frames is not None and samples_per_frame is None:
            raise ValueError(
                "`max_audio_frames` needs `samples_per_frame` (samples per encoder frame); build the processor "
                "with MultiStillProcessor.from_model_config / from_encoders, which derive it from the encoder."
            )
        for name, value in (("max_audio_frames", max_audio_frames), ("samples_per_frame", samples_per_frame),
                            ("audio_window_samples", audio_window_samples)):
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"`{name}` must be a positive integer or None, got {value!r}.")
        self.max_audio_frames = max_audio_frames
        self.samples_per_frame = samples_per_frame
        self.max_text_tokens = int(max_text_tokens)
        self.min_audio_samples = int(min_audio_samples)
        self.audio_window_samples = audio_window_samples
        super().__init__(feature_extractor, tokenizer, **kwargs)

    _normalize_modalities = staticmethod(_normalize_modalities)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, **kwargs: Any):
        """``ProcessorMixin.from_pretrained``; a local folder is checked first (:func:`check_processor_folder`)."""
        folder = os.path.join(os.fspath(pretrained_model_name_or_path), kwargs.get("subfolder") or ".")
        if os.path.isdir(folder):
            check_processor_folder(os.path.normpath(folder))
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)

    @classmethod
    def from_encoders(
        cls,
        audio_encoder: str | os.PathLike = "kresnik/wav2vec2-large-xlsr-korean",
        text_encoder: str | os.PathLike = "beomi/KcELECTRA-base",
        config: Any = None,
        **load_kwargs: Any,
    ) -> MultiStillProcessor:
        """Feature extractor from the audio encoder folder/Hub id (``AutoFeatureExtractor``: a
        ``Wav2Vec2FeatureExtractor``, or the ``WhisperFeatureExtractor`` of a Whisper folder), tokenizer from the
        text encoder's.

        ``config`` (a ``MultiStillConfig``) sets ``modalities``, ``max_audio_frames``, ``max_text_tokens`` and
        the audio geometry (from ``config.audio_config``); without it, the audio folder's config gives the
        geometry and the paper's limits apply (512 frames, 128 tokens).
        """
        feature_extractor = AutoFeatureExtractor.from_pretrained(os.fspath(audio_encoder), **load_kwargs)
        if feature_extractor.model_input_names[0] == "input_values":  # waveform encoders: normalised, masked
            feature_extractor.return_attention_mask = True
            feature_extractor.do_normalize = True
        tokenizer = AutoTokenizer.from_pretrained(os.fspath(text_encoder), **load_kwargs)
        if config is None:
            config = MultiStillConfig(audio_config=AutoConfig.from_pretrained(os.fspath(audio_encoder), **load_kwargs))
        return cls.from_model_config(config, feature_extractor, tokenizer)

    @classmethod
    def from_model_config(cls, config: Any, feature_extractor: Any, tokenizer: Any) -> MultiStillProcessor:
        """Processor whose modalities, limits and audio geometry follow a ``MultiStillConfig``.

        Raises ``ValueError`` when the feature extractor does not produce what the audio encoder takes (e.g. a
        wav2vec2 feature extractor for a Whisper encoder).
        """
        if config.use_audio:
            expected = audio_encoder_input_name(config.audio_config)
            produced = feature_extractor.model_input_names[0]
            if produced != expected:
                raise ValueError(
                    f"The audio encoder ({config.audio_config.model_type}) takes `{expected}` but the feature "
                    f"extractor {type(feature_extractor).__name__} produces `{produced}`; use the feature extractor "
                    "saved with the audio encoder."
                )
            geometry = audio_frame_geometry(config.audio_config, feature_extractor)
            if not getattr(config, "audio_full_window", True):  # Whisper at the utterance's own length
                geometry["audio_window_samples"] = None
            max_audio_frames = config.max_audio_frames
        else:  # text-only model: audio is never needed
            geometry = {"samples_per_frame": None, "min_audio_samples": 0, "audio_window_samples": None}
            max_audio_frames = None
        return cls(
            feature_extractor,
            tokenizer,
            modalities=list(config.modalities),
            max_audio_frames=max_audio_frames,
            max_text_tokens=config.max_text_tokens,
            **geometry,
        )

    @property
    def sampling_rate(self) -> int:
        """Sampling rate the audio is resampled to (the feature extractor's, 16 kHz)."""
        return int(getattr(self.feature_extractor, "sampling_rate", TARGET_SAMPLING_RATE))

    @property
    def audio_input_name(self) -> str:
        """``"input_values"`` (waveform) or ``"input_features"`` (log-mel): the audio key of :meth:`__call__`."""
        return self.feature_extractor.model_input_names[0]

    @property
    def max_audio_samples(self) -> int | None:
        """Audio length limit in samples: ``max_audio_frames`` frames, within the encoder's window (``None``: no
        truncation)."""
        limits = [self.audio_window_samples]
        if self.max_audio_frames is not None:
            limits.append(int(self.max_audio_frames) * int(self.samples_per_frame))
        limits = [limit for limit in limits if limit is not None]
        return min(limits) if limits else None

    @property
    def model_input_names(self) -> list[str]:
        return [self.audio_input_name, "attention_mask", "input_ids", "text_attention_mask", "token_type_ids"]

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
        """One clip through :func:`load_audio`, then cut to :attr:`max_audio_samples` and padded to the encoder's
        receptive field."""
        array = load_audio(item, sampling_rate, f"audio item {index}", self.sampling_rate)
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
            data.update(self.extract_audio_features(arrays, padding=padding, return_tensors=return_tensors))
            batch_sizes["audio"] = len(arrays)
        if text is not None:
            texts = [text] if isinstance(text, str) else list(text)
            if not texts or not all(isinstance(t, str) for t in texts):
                raise ValueError("`text` must be a string or a non-empty list of strings.")
            texts = [check_text(t, f"text {i}") for i, t in enumerate(texts)]
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

    def extract_audio_features(
        self, arrays: list[np.ndarray], padding: bool | str = True, return_tensors: str | None = "pt"
    ) -> dict[str, Any]:
        """Prepared 16 kHz clips (:meth:`prepare_audio`) -> ``{audio_input_name: ..., "attention_mask": ...}``.

        With a fixed encoder window (Whisper) every clip is padded to it, so a clip's features never depend on
        the batch; the mask then covers the clip's mel frames. A log-mel encoder at the utterance's own length
        (Whisper, ``audio_full_window=False``) gets each clip's features computed alone (its own STFT edges and
        level), zero-padded to the longest clip of the batch.
        """
        if self.audio_window_samples is None and self.audio_input_name == "input_features" and len(arrays) > 1:
            clips = [self.extract_audio_features([array], padding, "pt") for array in arrays]
            length = max(clip["attention_mask"].shape[-1] for clip in clips)
            stacked = {name: torch.cat([torch.nn.functional.pad(clip[name], (0, length - clip[name].shape[-1]))
                                        for clip in clips]) for name in (self.audio_input_name, "attention_mask")}
            return stacked if return_tensors == "pt" else {k: v.numpy() for k, v in stacked.items()}
        if self.audio_window_samples is not None:
            padding_args = {"padding": "max_length", "max_length": self.audio_window_samples, "truncation": True}
        else:
            padding_args = {"padding": padding}
        features = self.feature_extractor(
            arrays,
            sampling_rate=self.sampling_rate,
            return_attention_mask=True,
            return_tensors=return_tensors,
            **padding_args,
        )
        return {self.audio_input_name: features[self.audio_input_name], "attention_mask": features["attention_mask"]}

    def batch_decode(self, *args: Any, **kwargs: Any) -> list[str]:
        """Forwarded to the tokenizer."""
        return self.tokenizer.batch_decode(*args, **kwargs)

    def decode(self, *args: Any, **kwargs: Any) -> str:
        """Forwarded to the tokenizer."""
        return self.tokenizer.decode(*args, **kwargs)


MultiStillProcessor.register_for_auto_class("AutoProcessor")

__all__ = [
    "MultiStillProcessor",
    "audio_frame_geometry",
    "check_processor_folder",
    "check_text",
    "clean_transcript",
]
