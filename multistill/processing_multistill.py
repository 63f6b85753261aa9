"""Processor of the Multi-Still models: raw audio + transcript -> model inputs.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

One processor serves the teacher and every student: the audio encoder's feature extractor (waveform
``input_values`` for the wav2vec2 family and the light student's fbank encoder, which computes its filterbank
inside the model; log-mel ``input_features`` padded to the 30 s window for Whisper) + the text encoder's
tokenizer. The frame hop and the audio window come from the encoder (:func:`audio_frame_geometry`).
"""

from __future__ import annotations

import functools
import io
import logging
import math
import os
import struct
from typing import Any

import numpy as np
from transformers import AutoConfig, AutoFeatureExtractor, AutoProcessor, AutoTokenizer
from transformers.feature_extraction_utils import BatchFeature
from transformers.processing_utils import ProcessorMixin

from .annotations import clean_transcript
from .configuration_multistill import MultiStillConfig, MultiStillFbankConfig, audio_encoder_input_name

logger = logging.getLogger(__name__)

TARGET_SAMPLING_RATE = 16000
#: A 2-D array is one multi-channel recording; its channel axis is the shorter one, at most this long.
MAX_CHANNELS = 16
#: Sampling rates accepted (Hz): anything else is a mistake (``16`` meant as kHz, NaN...), named in the error.
MIN_SAMPLING_RATE, MAX_SAMPLING_RATE = 4_000, 192_000
#: Shortest audio accepted (seconds). Below it there is no speech to classify: the encoders' first frame alone
#: spans 25 ms, and a zero-padded clip of a few samples would still get a confident emotion.
MIN_AUDIO_SECONDS = 0.1


def _describe(item: Any, index: int) -> str:
    if isinstance(item, (str, os.PathLike)):
        return f"audio item {index} ({os.fspath(item)})"
    return f"audio item {index}"


def check_sampling_rate(rate: Any, where: str = "audio") -> int:
    """``rate`` as whole Hz, or ``ValueError`` naming ``where`` unless it is a plausible rate (4-192 kHz).

    Catches ``16`` meant as kHz (which would turn 1 s into 16 M samples), NaN, infinities and non-numbers.
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float, np.integer, np.floating)):
        raise ValueError(f"{where}: sampling_rate must be a number of Hz (e.g. 16000), got {rate!r}.")
    value = float(rate)
    if not math.isfinite(value):
        raise ValueError(f"{where}: sampling_rate is {rate!r}; give the rate in Hz (e.g. 16000).")
    if not MIN_SAMPLING_RATE <= value <= MAX_SAMPLING_RATE:
        hint = f" ({rate!r} looks like kHz: pass {round(value * 1000)})" if 4 <= value <= 192 else ""
        raise ValueError(
            f"{where}: sampling_rate {rate!r} Hz is implausible: expected {MIN_SAMPLING_RATE:,}-"
            f"{MAX_SAMPLING_RATE:,} Hz{hint}."
        )
    return int(round(value))


def check_duration(array: np.ndarray, rate: int, where: str = "audio") -> None:
    """``ValueError`` naming ``where`` when ``array`` is shorter than :data:`MIN_AUDIO_SECONDS`.

    Shorter clips hold no classifiable speech (wav2vec2 needs 400 samples for its first frame); zero-padding
    them and reporting a confident emotion would be a silent wrong result.
    """
    if array.shape[0] < MIN_AUDIO_SECONDS * rate:
        raise ValueError(
            f"{where}: the audio is {array.shape[0] / rate:.3f} s long ({array.shape[0]} samples at {rate} Hz); "
            f"at least {MIN_AUDIO_SECONDS} s is needed."
        )


_WAVE_FORMAT_PCM, _WAVE_FORMAT_IEEE_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int] | None:
    """Decode a PCM (8/16/24/32-bit) or IEEE-float (32/64-bit) RIFF WAV with NumPy only.

    Returns ``(float32 array of shape (frames, channels), sampling rate)``, or ``None`` when ``data`` is not a
    RIFF/WAVE file. Raises ``ValueError`` for a WAV it cannot decode (another codec, no ``fmt``/``data``
    chunk). Integers are scaled as soundfile does (int16 / 32768). A data chunk cut short (a truncated
    file) is decoded up to its last complete frame, with a warning.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    position, fmt, payload = 12, None, None
    while position + 8 <= len(data) and (fmt is None or payload is None):
        chunk_id, size = data[position:position + 4], int.from_bytes(data[position + 4:position + 8], "little")
        body = data[position + 8:position + 8 + size]
        if chunk_id == b"fmt ":
            if len(body) < 16:
                raise ValueError("the WAV 'fmt ' chunk is truncated")
            tag, channels, rate, _, block_align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
                tag = int.from_bytes(body[24:26], "little")  # the sub-format GUID starts with the format tag
            fmt = (tag, channels, rate, block_align, bits)
        elif chunk_id == b"data":
            payload = body
        position += 8 + size + (size & 1)
    if fmt is None or payload is None:
        raise ValueError(f"the WAV has no {'fmt ' if fmt is None else 'data'} chunk")
    tag, channels, rate, block_align, bits = fmt
    if channels < 1 or block_align < channels or block_align % channels:
        raise ValueError(f"the WAV header is inconsistent ({channels} channels, {block_align}-byte frames)")
    width = block_align // channels
    frames = len(payload) // block_align
    if len(payload) % block_align:
        logger.warning("The WAV data ends in the middle of a frame (a truncated file?): decoded %d complete "
                       "frames, ignored %d trailing bytes.", frames, len(payload) % block_align)
    raw = np.frombuffer(payload, dtype=np.uint8, count=frames * block_align)
    if tag == _WAVE_FORMAT_PCM and width == 1:
        array = (raw.astype(np.float32) - 128.0) / 128.0
    elif tag == _WAVE_FORMAT_PCM and width in (2, 4):
        array = raw.view(f"<i{width}").astype(np.float32) / float(2 ** (8 * width - 1))
    elif tag == _WAVE_FORMAT_PCM and width == 3:
        triplets = raw.reshape(-1, 3).astype(np.int32)
        values = triplets[:, 0] | (triplets[:, 1] << 8) | (triplets[:, 2] << 16)
        array = (np.where(values >= 1 << 23, values - (1 << 24), values)).astype(np.float32) / float(1 << 23)
    elif tag == _WAVE_FORMAT_IEEE_FLOAT and width in (4, 8):
        array = raw.view(f"<f{width}").astype(np.float32)
    else:
        raise ValueError(f"WAV format tag {tag:#06x} with {bits}-bit samples is not PCM or IEEE float")
    return array.reshape(frames, channels), int(rate)


def decode_audio(source: str | os.PathLike | bytes, where: str = "audio") -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes to ``(mono float32 array, sampling rate)``.

    PCM and float WAV files are read with NumPy alone (no extra package). Other formats use soundfile
    (FLAC, OGG, MP3...) or torchcodec (FFmpeg: M4A, AAC...), imported only when needed; without either, the
    error says what to install. Raises ``ValueError`` naming ``where`` for a missing, non-file or
    undecodable source and for an implausible sampling rate.
    """
    if isinstance(source, (str, os.PathLike)):
        path = os.fspath(source)
        if not os.path.exists(path):
            raise ValueError(f"{where}: audio file not found: {path}")
        if not os.path.isfile(path):
            raise ValueError(f"{where}: audio path is not a file: {path}")
        with open(path, "rb") as file:
            data = file.read()
        what = f"audio file {path}"
    else:
        data = bytes(source)
        what = f"audio bytes ({len(data)} bytes)"
    if not data:
        raise ValueError(f"{where}: {'the audio bytes are' if isinstance(source, bytes) else what + ' is'} empty.")
    decoded, errors = _decode_bytes(data)
    if decoded is None:
        raise ValueError(f"{where}: cannot decode {what} as audio ({'; '.join(errors)}).")
    array, rate = decoded
    return array, check_sampling_rate(rate, where)


def _decode_bytes(data: bytes) -> tuple[tuple[np.ndarray, int] | None, list[str]]:
    """``((mono array, rate), [])`` from the first decoder that succeeds, else ``(None, reasons)``."""
    errors = []
    try:
        decoded = read_wav_bytes(data)
        if decoded is not None:
            return (decoded[0].mean(axis=1), decoded[1]), []
    except ValueError as err:
        errors.append(f"WAV reader: {err}")
    decoders = 0
    try:  # optional: libsndfile formats (FLAC, OGG, MP3...)
        import soundfile
    except (ImportError, OSError):
        soundfile = None
    if soundfile is not None:
        decoders += 1
        try:
            array, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
            return (array.mean(axis=1), int(rate)), []
        except (RuntimeError, TypeError, ValueError) as err:  # soundfile.LibsndfileError is a RuntimeError
            errors.append(f"soundfile: {err}")
    try:  # optional: FFmpeg formats; fails to load when its version does not match torch's
        from torchcodec.decoders import AudioDecoder
    except (ImportError, OSError, RuntimeError):
        AudioDecoder = None
    if AudioDecoder is not None:
        decoders += 1
        try:
            samples = AudioDecoder(data).get_all_samples()
            return (samples.data.float().numpy().mean(axis=0), int(samples.sample_rate)), []
        except (RuntimeError, TypeError, ValueError) as err:
            errors.append(f"torchcodec: {type(err).__name__}: {err}")
    if not decoders:
        errors.append("it is not a PCM/float WAV file and no decoder for other formats is installed: "
                      "`pip install soundfile` (FLAC, OGG, MP3) or `pip install torchcodec` (FFmpeg formats)")
    return None, errors


def read_audio_file(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an audio file to a mono float32 array and its sampling rate (see :func:`decode_audio`)."""
    return decode_audio(path, os.fspath(path))


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


def to_mono(array: np.ndarray, where: str = "audio") -> np.ndarray:
    """Mix a 1-D or 2-D array down to mono float32.

    A 2-D array is always *one* recording: ``(channels, samples)`` or ``(samples, channels)``; the channel
    axis is the shorter one (``(channels, samples)`` when both are equal) and must hold at most
    :data:`MAX_CHANNELS` channels. A batch must be passed as a list.
    """
    array = np.asarray(array)
    if array.dtype == np.bool_ or not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
        raise ValueError(f"{where} must hold real numbers, got dtype {array.dtype}.")
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


#: Resampling filter: Kaiser-windowed sinc with this many zero crossings on each side, its cut-off at this
#: fraction of the lower Nyquist frequency (flat to 7 kHz at 16 kHz, about -90 dB from 8 kHz).
_RESAMPLE_ZERO_CROSSINGS, _RESAMPLE_ROLLOFF, _RESAMPLE_KAISER_BETA = 24, 0.95, 8.6


def _bessel_i0(x: np.ndarray) -> np.ndarray:
    """Modified Bessel function of the first kind, order 0 (power series; exact to float64 for x <= 20)."""
    term = np.ones_like(x)
    total = np.ones_like(x)
    quarter_square = (x / 2) ** 2
    for k in range(1, 60):
        term = term * quarter_square / (k * k)
        total += term
    return total


@functools.lru_cache(maxsize=32)
def _resampling_filter(up: int, down: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, weights)``: for output phase ``r`` (0..up-1) the weights of the input samples at ``offsets``
    around ``floor(n * down / up)``."""
    cutoff = min(1.0, up / down) * _RESAMPLE_ROLLOFF
    half_width = _RESAMPLE_ZERO_CROSSINGS / cutoff  # in input samples
    reach = int(math.ceil(half_width))
    offsets = np.arange(-reach, reach + 1)
    distance = (np.arange(up) / up)[:, None] - offsets[None, :]
    ratio = np.clip(distance / half_width, -1.0, 1.0)
    window = _bessel_i0(_RESAMPLE_KAISER_BETA * np.sqrt(1.0 - ratio * ratio)) / _bessel_i0(
        np.array(_RESAMPLE_KAISER_BETA)
    )
    weights = np.where(np.abs(distance) < half_width, window * cutoff * np.sinc(cutoff * distance), 0.0)
    return offsets, weights


def resample(array: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Band-limited resampling of a 1-D signal with NumPy alone (no scipy, torchaudio or soxr).

    Each output sample interpolates the input at its exact time with a Kaiser-windowed sinc whose cut-off
    is just below the lower of the two Nyquist frequencies (anti-aliasing when downsampling). Any pair of
    whole-Hz rates works; the output has ``ceil(len * target_sr / orig_sr)`` samples, like scipy's
    ``resample_poly``, and matches it within 0.1 % in the pass band.
    """
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    if orig_sr == target_sr:
        return array
    gcd = math.gcd(orig_sr, target_sr)
    up, down = target_sr // gcd, orig_sr // gcd
    signal = np.asarray(array, dtype=np.float64)
    num_out = -(-signal.shape[0] * up // down)
    offsets, weights = _resampling_filter(up, down)
    reach = int(-offsets[0])
    padded = np.concatenate([np.zeros(reach), signal, np.zeros(reach + 1)])
    out = np.empty(num_out, dtype=np.float64)
    step = max(1, (1 << 20) // offsets.size)  # bounded memory: about 8 MB of gathered samples per step
    for start in range(0, num_out, step):
        index = np.arange(start, min(num_out, start + step), dtype=np.int64)
        base, phase = np.divmod(index * down, up)
        out[start:start + index.size] = np.einsum("ij,ij->i", padded[base[:, None] + offsets + reach], weights[phase])
    return out.astype(np.float32)


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
        modalities: list[str] | tuple[str, ...] | str = ("audio", "text"),
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

    from_encoder_folders = from_encoders

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
        where = _describe(item, index)
        rate = sampling_rate
        if isinstance(item, (str, os.PathLike)):
            array, rate = decode_audio(item, where)
        elif isinstance(item, dict):
            if item.get("array") is not None:
                array = item["array"]
                rate = item.get("sampling_rate", sampling_rate)
            elif item.get("path"):
                where = _describe(item["path"], index)
                array, rate = decode_audio(item["path"], where)
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
        rate = check_sampling_rate(rate, where)
        array = to_mono(array, where)
        if array.size == 0:
            raise ValueError(f"{where} is empty (no samples).")
        finite = np.isfinite(array)
        if not finite.any():
            raise ValueError(f"{where}: all samples are NaN/inf.")
        if not finite.all():
            raise ValueError(f"{where}: {int((~finite).sum())} of {array.size} samples are NaN/inf.")
        check_duration(array, rate, where)
        array = resample(array, rate, self.sampling_rate)
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
        the batch; the mask then covers the clip's mel frames.
        """
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
AutoProcessor.register(MultiStillConfig, MultiStillProcessor, exist_ok=True)

__all__ = [
    "check_processor_folder",
    "check_text",
    "MAX_CHANNELS",
    "MAX_SAMPLING_RATE",
    "MIN_AUDIO_SECONDS",
    "MIN_SAMPLING_RATE",
    "MultiStillProcessor",
    "audio_frame_geometry",
    "check_duration",
    "check_sampling_rate",
    "decode_audio",
    "read_audio_file",
    "read_wav_bytes",
    "resample",
    "to_mono",
]
