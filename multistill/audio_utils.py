"""One audio path: any accepted input -> mono 16 kHz float32 (:func:`load_audio`).

Used by the processor, the pipeline, speech recognition and the stream. This file is shipped next to the
weights on the Hub, so its imports beyond NumPy and the standard library are optional (inside ``try``):

* decoding: soundfile (WAV, FLAC, OGG, MP3...), then torchcodec (FFmpeg formats); without either (a bare
  torch + transformers environment), a small RIFF reader for PCM/float WAV (:func:`read_wav_bytes`);
* resampling: soxr (installed with librosa); without it, a Kaiser-windowed sinc in NumPy
  (:func:`_resample_numpy`).

Bad input raises ``ValueError`` naming it (``where``): a missing or undecodable file, no/implausible sampling
rate, empty or non-finite audio, audio shorter than :data:`MIN_AUDIO_SECONDS`. A file that decodes far shorter
than its header declares (a truncated or corrupt MP3) is used as decoded, with a warning naming it.
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

logger = logging.getLogger(__name__)

TARGET_SAMPLING_RATE = 16000
#: A 2-D array is one multi-channel recording; its channel axis is the shorter one, at most this long.
MAX_CHANNELS = 16
#: Sampling rates accepted (Hz): anything else is a mistake (``16`` meant as kHz, NaN...), named in the error.
MIN_SAMPLING_RATE, MAX_SAMPLING_RATE = 4_000, 192_000
#: Shortest audio accepted (seconds). Below it there is no speech to classify: the encoders' first frame alone
#: spans 25 ms, and a zero-padded clip of a few samples would still get a confident emotion.
MIN_AUDIO_SECONDS = 0.1


# ------------------------------------------------------------------------------------------ the one entry point
def load_audio(
    source: Any,
    sampling_rate: Any = None,
    where: str = "audio",
    target_rate: int = TARGET_SAMPLING_RATE,
    min_seconds: float = MIN_AUDIO_SECONDS,
) -> np.ndarray:
    """``source`` as a 1-D float32 array at ``target_rate`` Hz, validated.

    ``source``: a file path, encoded bytes, an array / list / torch tensor (1-D, or 2-D multi-channel; needs
    ``sampling_rate``), a dict (``{"array", "sampling_rate"}``, ``{"bytes"}`` or ``{"path"}``: datasets'
    ``Audio``) or a torchcodec ``AudioDecoder``. ``min_seconds`` is the shortest duration accepted (0: any
    non-empty clip). Errors name ``where`` (and the file of a path).
    """
    array, rate, where = _decoded(source, sampling_rate, where)
    if rate is None:
        raise ValueError(
            f"{where}: 'sampling_rate' is required with an audio array (it is resampled to {target_rate} Hz)."
        )
    rate = check_sampling_rate(rate, where)
    array = to_mono(array, where)
    if array.size == 0:
        raise ValueError(f"{where}: the audio is empty (no samples).")
    finite = np.isfinite(array)
    if not finite.all():
        if not finite.any():
            raise ValueError(f"{where}: all samples are NaN/inf.")
        raise ValueError(f"{where}: {int((~finite).sum())} of {array.size} samples are NaN/inf.")
    check_duration(array, rate, where, min_seconds)
    return resample(array, rate, target_rate)


def _decoded(source: Any, rate: Any, where: str) -> tuple[Any, Any, str]:
    """``(samples, rate or None, where)`` of any accepted input, decoded but not yet validated."""
    if isinstance(source, (str, os.PathLike)):
        where = f"{where} ({os.fspath(source)})"
        return (*decode_audio(source, where), where)
    if isinstance(source, (bytes, bytearray, memoryview)):
        return (*decode_audio(bytes(source), where), where)
    if isinstance(source, dict):  # datasets' Audio: {"array", "sampling_rate"} or {"path", "bytes"}
        if source.get("array") is not None:
            return source["array"], source.get("sampling_rate", rate), where
        if source.get("bytes"):
            return _decoded(source["bytes"], None, where)
        if source.get("path"):
            return _decoded(source["path"], None, where)
        raise ValueError(f"{where}: an audio dict must hold 'array' (+ 'sampling_rate'), 'bytes' or 'path'.")
    if hasattr(source, "get_all_samples"):  # torchcodec AudioDecoder (datasets' decoded Audio)
        samples = source.get_all_samples()
        return samples.data.float().numpy(), int(samples.sample_rate), where
    if type(source).__name__ == "Tensor":  # bool and complex stay as they are, for to_mono to refuse
        source = source.detach().cpu()
        source = (source.float() if str(source.dtype) == "torch.bfloat16" else source).numpy()
    try:
        return np.asarray(source), rate, where
    except (TypeError, ValueError) as err:
        raise ValueError(f"{where}: audio of type {type(source).__name__} is not an array: {err}") from err


# ------------------------------------------------------------------------------------------ validation
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


def check_duration(array: np.ndarray, rate: int, where: str = "audio", min_seconds: float = MIN_AUDIO_SECONDS) -> None:
    """``ValueError`` naming ``where`` when ``array`` is shorter than ``min_seconds``.

    Shorter clips hold no classifiable speech (wav2vec2 needs 400 samples for its first frame); zero-padding
    them and reporting a confident emotion would be a silent wrong result.
    """
    if array.shape[0] < min_seconds * rate:
        raise ValueError(
            f"{where}: the audio is {array.shape[0] / rate:.3f} s long ({array.shape[0]} samples at {rate} Hz); "
            f"at least {min_seconds} s is needed."
        )


def to_mono(array: Any, where: str = "audio") -> np.ndarray:
    """Mix a 1-D or 2-D array down to mono float32 (integers scaled to [-1, 1) as soundfile does).

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
        return array.astype(np.float32, copy=False)
    if array.ndim != 2:
        raise ValueError(f"{where} must be 1-D (mono) or 2-D (multi-channel), got shape {array.shape}.")
    channel_axis = 0 if array.shape[0] <= array.shape[1] else 1
    if array.shape[channel_axis] > MAX_CHANNELS:
        raise ValueError(
            f"{where} has shape {array.shape}: a 2-D array is read as one recording of at most {MAX_CHANNELS} "
            "channels ((channels, samples) or (samples, channels)); pass a batch as a list of 1-D arrays."
        )
    return array.mean(axis=channel_axis).astype(np.float32)


# ------------------------------------------------------------------------------------------ decoding
def decode_audio(source: str | os.PathLike | bytes, where: str = "audio") -> tuple[np.ndarray, int]:
    """Decode a file path or encoded bytes to ``(mono float32 array, sampling rate)``.

    soundfile first, then torchcodec (each imported only if installed and loadable), then the NumPy WAV
    reader. Raises ``ValueError`` naming ``where`` for a missing, non-file or undecodable source (saying
    what to install when no decoder could read it) and for an implausible sampling rate.
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
    errors: list[str] = []
    installed = 0
    for name, decoder in (("soundfile", _decode_soundfile), ("torchcodec", _decode_torchcodec),
                          ("WAV reader", _decode_wav)):
        try:
            decoded = decoder(data)
        except (RuntimeError, TypeError, ValueError) as err:  # soundfile.LibsndfileError is a RuntimeError
            errors.append(f"{name}: {type(err).__name__}: {err}")
            installed += name != "WAV reader"
            continue
        if decoded is not None:
            array, rate, header_seconds = decoded
            rate = check_sampling_rate(rate, where)
            warn_if_cut_short(len(array) / rate, header_seconds, f"{where}: {what}")
            return array, rate
    if not installed:
        errors.append("it is not a PCM/float WAV file and no decoder for other formats is installed: "
                      "`pip install soundfile` (FLAC, OGG, MP3) or `pip install torchcodec` (FFmpeg formats)")
    raise ValueError(f"{where}: cannot decode {what} as audio ({'; '.join(errors)}).")


#: A decoded file shorter than its header's duration by more than this fraction (and :data:`CUT_SHORT_SECONDS`)
#: is reported: a corrupt MP3 decoded to 11.2 s of the 33.7 s its header declares without a word.
CUT_SHORT_FRACTION, CUT_SHORT_SECONDS = 0.1, 0.5


def warn_if_cut_short(decoded_seconds: float, header_seconds: float | None, what: str) -> bool:
    """Log a warning (and return ``True``) when the decoded audio is far shorter than its header declares."""
    if not header_seconds or not math.isfinite(header_seconds):
        return False
    missing = header_seconds - decoded_seconds
    if missing <= max(CUT_SHORT_SECONDS, CUT_SHORT_FRACTION * header_seconds):
        return False
    logger.warning("%s: decoded %.1f s of the %.1f s its header declares (a truncated or corrupt file?); using "
                   "the %.1f s decoded.", what, decoded_seconds, header_seconds, decoded_seconds)
    return True


def _decode_soundfile(data: bytes) -> tuple[np.ndarray, int, float | None] | None:
    """libsndfile formats (WAV, FLAC, OGG, MP3...): ``(samples, rate, header seconds)``; ``None`` when soundfile
    is not installed."""
    try:
        import soundfile
    except (ImportError, OSError):
        return None
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as file:
            header_seconds = file.frames / file.samplerate if file.frames > 0 else None
            array = file.read(dtype="float32", always_2d=True)
            return array.mean(axis=1), int(file.samplerate), header_seconds
    except soundfile.LibsndfileError as err:  # its message names the in-memory buffer ("<_io.BytesIO ...>")
        raise RuntimeError(err.error_string) from None


def _decode_torchcodec(data: bytes) -> tuple[np.ndarray, int, float | None] | None:
    """FFmpeg formats (M4A, AAC...): ``(samples, rate, header seconds)``; ``None`` when torchcodec is not
    installed or does not load."""
    try:  # fails to load when its version does not match torch's
        from torchcodec.decoders import AudioDecoder
    except (ImportError, OSError, RuntimeError):
        return None
    decoder = AudioDecoder(data)
    samples = decoder.get_all_samples()
    header_seconds = getattr(decoder.metadata, "duration_seconds_from_header", None)
    return samples.data.float().numpy().mean(axis=0), int(samples.sample_rate), header_seconds


def _decode_wav(data: bytes) -> tuple[np.ndarray, int, None] | None:
    """PCM/float WAV with NumPy alone (it warns itself about a cut data chunk); ``None`` when ``data`` is not
    RIFF/WAVE."""
    decoded = read_wav_bytes(data)
    return None if decoded is None else (decoded[0].mean(axis=1), decoded[1], None)


_WAVE_FORMAT_PCM, _WAVE_FORMAT_IEEE_FLOAT, _WAVE_FORMAT_EXTENSIBLE = 0x0001, 0x0003, 0xFFFE


def read_wav_bytes(data: bytes) -> tuple[np.ndarray, int] | None:
    """Decode a PCM (8/16/24/32-bit) or IEEE-float (32/64-bit) RIFF WAV with NumPy only (the fallback).

    Returns ``(float32 array of shape (frames, channels), sampling rate)``, or ``None`` when ``data`` is not a
    RIFF/WAVE file; ``ValueError`` for a WAV it cannot decode. A data chunk cut short (a truncated file) is
    decoded up to its last complete frame, with a warning.
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
    width, frames = block_align // channels, len(payload) // block_align
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


# ------------------------------------------------------------------------------------------ resampling
def resample(array: np.ndarray, orig_sr: int, target_sr: int = TARGET_SAMPLING_RATE) -> np.ndarray:
    """Band-limited resampling of a 1-D signal to float32: soxr (high quality) when installed, else NumPy."""
    orig_sr, target_sr = int(orig_sr), int(target_sr)
    array = np.asarray(array, dtype=np.float32)
    if orig_sr == target_sr:
        return array
    try:
        import soxr
    except (ImportError, OSError):
        return _resample_numpy(array, orig_sr, target_sr)
    return soxr.resample(array, orig_sr, target_sr, quality="HQ").astype(np.float32, copy=False)


#: Fallback filter: Kaiser-windowed sinc with this many zero crossings on each side, its cut-off at this
#: fraction of the lower Nyquist frequency (flat to 7 kHz at 16 kHz, about -90 dB from 8 kHz).
_ZERO_CROSSINGS, _ROLLOFF, _KAISER_BETA = 24, 0.95, 8.6


@functools.lru_cache(maxsize=32)
def _resampling_filter(up: int, down: int) -> tuple[np.ndarray, np.ndarray]:
    """``(offsets, weights)``: for output phase ``r`` (0..up-1) the weights of the input samples at ``offsets``
    around ``floor(n * down / up)``."""
    cutoff = min(1.0, up / down) * _ROLLOFF
    half_width = _ZERO_CROSSINGS / cutoff  # in input samples
    reach = int(math.ceil(half_width))
    offsets = np.arange(-reach, reach + 1)
    distance = (np.arange(up) / up)[:, None] - offsets[None, :]
    ratio = np.clip(distance / half_width, -1.0, 1.0)
    window = np.i0(_KAISER_BETA * np.sqrt(1.0 - ratio * ratio)) / np.i0(_KAISER_BETA)
    weights = np.where(np.abs(distance) < half_width, window * cutoff * np.sinc(cutoff * distance), 0.0)
    return offsets, weights


def _resample_numpy(array: np.ndarray, orig_sr: int, target_sr: int) -> np.ndarray:
    """The dependency-free fallback of :func:`resample` (``ceil(len * target / orig)`` samples, like scipy's
    ``resample_poly``): each output sample interpolates the input at its exact time."""
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


__all__ = [
    "MAX_CHANNELS",
    "MAX_SAMPLING_RATE",
    "MIN_AUDIO_SECONDS",
    "MIN_SAMPLING_RATE",
    "TARGET_SAMPLING_RATE",
    "check_duration",
    "check_sampling_rate",
    "decode_audio",
    "load_audio",
    "read_wav_bytes",
    "resample",
    "to_mono",
    "warn_if_cut_short",
]
