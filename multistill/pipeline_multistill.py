"""The ``multimodal-emotion-recognition`` pipeline: audio and/or transcript -> 7 emotion scores.

This file is shipped next to the weights on the Hub (it imports its siblings only relatively), so that
``pipeline("multimodal-emotion-recognition", model=repo_or_folder, trust_remote_code=True)`` works in a
fresh process: :func:`save_pretrained_with_pipeline` (or :meth:`MultiStillEmotionPipeline.save_pretrained`)
writes ``custom_pipelines`` into ``config.json`` and copies this file beside the model code.

Inputs (one, or a list batched with ``batch_size``)::

    {"audio": path | bytes | array | tensor | {"array", "sampling_rate"} | AudioDecoder,
     "sampling_rate": int,   # required for arrays/tensors only
     "text": str}            # the transcript; required when the model uses text

An audio-only model needs only ``audio`` and a text-only model only ``text`` (the other key is ignored).
Audio of any plausible sampling rate (4-192 kHz) and channel count goes through ``audio_utils.load_audio``
(decoded by soundfile or torchcodec when installed, else PCM/float WAV with NumPy alone; mixed down to mono;
resampled to the processor's 16 kHz). Audio shorter than 0.1 s (``MIN_AUDIO_SECONDS``) is rejected: it holds nothing to classify.

Speech recognition: built with ``asr_model=`` (a transformers speech-recognition checkpoint, e.g. a Whisper,
or a CTranslate2 Whisper folder for faster-whisper; see ``asr.py``), a model that uses text also takes
audio alone: an input without ``text`` is transcribed (in Korean by default, ``asr_language``). A given
``text`` always wins over ASR. The results then carry the transcript they used and its source::

    {"scores": [{"label": "angry", "score": 0.61}, ...], "text": "...", "text_source": "asr" | "given"}

(``return_text=True``/``False`` per call forces either form; without ASR the default is the plain list).

Long audio: the models see at most ``processor.max_audio_samples`` samples (512 encoder frames: 10.24 s for
wav2vec2 and Whisper, 20.48 s for the light student).
Longer audio is cut into consecutive windows of that length (the last one aligned to the end of the
clip, so every window is full); each window is classified together with the whole transcript and the
windows' class probabilities are averaged. ``chunk_length_s`` sets a shorter window.

Output: ``[{"label": "angry", "score": 0.61}, ...]`` sorted by score (``top_k`` best; all labels by
default); a list of those for a list input. Bad input raises ``ValueError`` naming the input (its index
and file); with ``on_error="skip"`` a bad item of a list gives ``{"error": message}`` in its place and
the other items are still classified.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from transformers import AutoModelForAudioClassification
from transformers.dynamic_module_utils import custom_object_save
from transformers.pipelines import PIPELINE_REGISTRY
from transformers.pipelines.base import ChunkPipeline

from .audio_utils import MIN_AUDIO_SECONDS, check_sampling_rate, load_audio
from .processing_multistill import check_text

logger = logging.getLogger(__name__)

#: Said (logged, and in the result's ``"warning"``) when speech recognition returns no words.
EMPTY_ASR_WARNING = ("the speech recognizer found no words (silence or noise?): the scores come from an empty "
                     "transcript")
#: The pipeline task name (registered with ``transformers.pipelines.PIPELINE_REGISTRY``).
TASK = "multimodal-emotion-recognition"
#: ``config.custom_pipelines`` entry written by :func:`save_pretrained_with_pipeline`.
CUSTOM_PIPELINE_INFO: dict[str, Any] = {
    "impl": "pipeline_multistill.MultiStillEmotionPipeline",
    "pt": ["AutoModelForAudioClassification"],
    "tf": [],
    "type": "multimodal",
}
ON_ERROR_CHOICES = ("raise", "skip")
#: Keys of an input dict that may hold the audio (``audio`` first; the others are datasets/pipeline names).
_AUDIO_KEYS = ("audio", "array", "raw", "path", "bytes")


@dataclass
class PreparedInput:
    """One validated input: mono audio at the processor's rate (or ``None``) and the transcript (or ``None``)."""

    audio: np.ndarray | None
    text: str | None
    where: str
    #: ``"given"`` (the input's ``text``), ``"asr"`` (recognised) or ``None`` (the model does not use text)
    text_source: str | None = None
    #: audio still to be transcribed (a text model without ``text``, before ASR runs)
    asr_audio: np.ndarray | None = None


def _where(index: int | None) -> str:
    return "input" if index is None else f"input {index}"


def window_bounds(num_samples: int, window: int) -> list[tuple[int, int]]:
    """``(start, end)`` of the windows covering ``num_samples``: consecutive windows of ``window`` samples,
    the last one aligned to the end (so it is full length too). One window when the clip fits."""
    if window < 1:
        raise ValueError(f"window must be >= 1 sample, got {window}.")
    if num_samples <= window:
        return [(0, num_samples)]
    starts = list(range(0, num_samples - window, window)) + [num_samples - window]
    return [(s, s + window) for s in starts]


class MultiStillEmotionPipeline(ChunkPipeline):
    """Emotion recognition from speech and/or transcript with a Multi-Still model (see the module doc).

    Call parameters: ``top_k`` (labels returned, default all), ``sampling_rate`` (default rate of arrays
    given without one), ``chunk_length_s`` (window length for long audio, at most the model's limit),
    ``on_error`` (``"raise"`` or ``"skip"``, for lists), ``batch_size`` (windows per forward pass) and
    ``return_text`` (results as ``{"scores", "text", "text_source"}``; default: when ASR is set and the model
    uses text).

    Construction parameters besides the usual ones: ``on_error``, and speech recognition for models that use
    text: ``asr_model`` (a model name or folder, an ASR ``Pipeline`` or a ``SpeechRecognizer``),
    ``asr_engine`` (``"transformers"``, ``"faster-whisper"``; default: detected) and ``asr_language``
    (default ``"ko"``). The recognizer runs on the pipeline's device and is :attr:`asr`.
    """

    _load_processor = True
    _load_tokenizer = False
    _load_feature_extractor = False
    _load_image_processor = False
    _load_video_processor = False

    def __init__(
        self,
        *args: Any,
        on_error: str = "raise",
        asr_model: Any = None,
        asr_engine: str | None = None,
        asr_language: str | None = "ko",
        **kwargs: Any,
    ):
        self._on_error = self._check_on_error(on_error)
        super().__init__(*args, **kwargs)
        if self.processor is None or not hasattr(self.processor, "prepare_audio"):
            raise ValueError(
                "MultiStillEmotionPipeline needs the model's MultiStillProcessor (`processor=`); the model "
                "folder must contain the processor files (processor.save_pretrained)."
            )
        self.model.eval()
        #: the speech recognizer that transcribes inputs without ``text`` (``None``: a transcript is required)
        self.asr = None
        if asr_model is not None:
            from .asr import load_asr

            self.asr = load_asr(asr_model, engine=asr_engine, language=asr_language, device=self.device)

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def _check_on_error(value: str) -> str:
        if value not in ON_ERROR_CHOICES:
            raise ValueError(f"`on_error` must be one of {ON_ERROR_CHOICES}, got {value!r}.")
        return value

    @property
    def modalities(self) -> list[str]:
        """The modalities the model takes (``["audio", "text"]``, ``["audio"]`` or ``["text"]``)."""
        return list(self.model.config.modalities)

    @property
    def sampling_rate(self) -> int:
        """Rate the audio is resampled to (the processor's, 16 kHz)."""
        return int(self.processor.sampling_rate)

    @property
    def max_window_samples(self) -> int | None:
        """Longest audio the model sees at once, in samples (``None``: no limit)."""
        limit = self.processor.max_audio_samples
        if limit is None and self.model.config.max_audio_frames and self.processor.samples_per_frame:
            limit = int(self.model.config.max_audio_frames) * int(self.processor.samples_per_frame)
        return limit

    def _sanitize_parameters(
        self,
        top_k: int | None = None,
        sampling_rate: int | None = None,
        chunk_length_s: float | None = None,
        return_text: bool | None = None,
        history: tuple[torch.Tensor, torch.Tensor] | None = None,
        return_features: bool | None = None,
        **kwargs: Any,
    ) -> tuple[dict, dict, dict]:
        if kwargs:
            logger.warning("Ignoring unknown pipeline parameter(s): %s", sorted(kwargs))
        preprocess: dict[str, Any] = {}
        postprocess: dict[str, Any] = {}
        forward: dict[str, Any] = {} if history is None else {"history": history}
        if return_features:
            postprocess["return_features"] = True
        if sampling_rate is not None:
            preprocess["sampling_rate"] = check_sampling_rate(sampling_rate, "`sampling_rate`")
        if chunk_length_s is not None:
            if (isinstance(chunk_length_s, bool) or not isinstance(chunk_length_s, (int, float))
                    or not chunk_length_s >= MIN_AUDIO_SECONDS):
                raise ValueError(
                    f"`chunk_length_s` must be a number of seconds >= {MIN_AUDIO_SECONDS}, got {chunk_length_s!r}."
                )
            preprocess["chunk_length_s"] = float(chunk_length_s)
        if top_k is not None:
            if not isinstance(top_k, (int, np.integer)) or isinstance(top_k, bool) or top_k < 1:
                raise ValueError(f"`top_k` must be a positive integer, got {top_k!r}.")
            postprocess["top_k"] = int(top_k)
        if return_text is not None:
            if not isinstance(return_text, bool):
                raise ValueError(f"`return_text` must be True or False, got {return_text!r}.")
            postprocess["return_text"] = return_text
        return preprocess, forward, postprocess

    # ------------------------------------------------------------------ call
    def __call__(self, inputs: Any, *args: Any, on_error: str | None = None, conversation: bool = False,
                 context: list[Any] | None = None, **kwargs: Any) -> Any:
        """Classify one input (returns a list of ``{"label", "score"}``) or a list of inputs (a list of those).

        Lists are validated and decoded item by item first; with ``on_error="skip"`` an invalid item gives
        ``{"error": message}`` in its place instead of raising. Generators and datasets are passed on lazily
        (an invalid item raises).

        ``conversation=True``: the list is one conversation in order; each utterance is classified with the
        ones before it as context (a model with ``context_size > 0``; each utterance is encoded once), one
        result per utterance. ``context=[...]``: the previous utterances of a single input. Items may carry a
        ``"speaker"`` (same / other speaker is told to the model; unknown without it).
        """
        if conversation or context is not None:
            if conversation and context is not None:
                raise ValueError("Pass a conversation (conversation=True) or context= for one input, not both.")
            if context is not None:
                if not isinstance(context, (list, tuple)):
                    raise ValueError(f"`context` must be a list of the previous utterances, got {type(context).__name__}.")
                return self.classify_conversation([*context, inputs], **kwargs)[-1]
            if not isinstance(inputs, (list, tuple)):
                raise ValueError("conversation=True needs a list of utterances in order.")
            return self.classify_conversation(list(inputs), **kwargs)
        mode = self._check_on_error(on_error if on_error is not None else self._on_error)
        default_rate = kwargs.get("sampling_rate", self._preprocess_params.get("sampling_rate"))
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if not isinstance(inputs, list):
            if isinstance(inputs, (dict, str, bytes, bytearray, np.ndarray, torch.Tensor, os.PathLike)):
                inputs = self.prepare_input(inputs, None, default_rate)
            return super().__call__(inputs, *args, **kwargs)
        prepared: list[tuple[int, PreparedInput]] = []
        errors: dict[int, str] = {}
        for index, item in enumerate(inputs):
            try:
                prepared.append((index, self.prepare_input(item, index, default_rate, transcribe=False)))
            except ValueError as err:
                if mode == "raise":
                    raise
                errors[index] = str(err)
                logger.info("Skipping %s", err)
        self._transcribe([item for _, item in prepared])
        results = super().__call__([item for _, item in prepared], *args, **kwargs) if prepared else []
        merged: list[Any] = [None] * len(inputs)
        for (index, _), result in zip(prepared, results, strict=True):
            merged[index] = result
        for index, message in errors.items():
            merged[index] = {"error": message}
        return merged

    def classify_conversation(self, utterances: list[Any], **kwargs: Any) -> list[Any]:
        """One result per utterance, each classified with the previous ones (newest first, at most
        ``config.context_size``) as context; past utterances are never re-encoded and later ones never seen."""
        size = int(getattr(self.model.config, "context_size", 0) or 0)
        if size == 0:
            logger.warning("This model reads no context (context_size 0): each utterance is classified alone.")
        default_rate = kwargs.get("sampling_rate", self._preprocess_params.get("sampling_rate"))
        features: list[torch.Tensor] = []
        speakers: list[Any] = []
        results = []
        for index, item in enumerate(utterances):
            speaker = item.get("speaker") if isinstance(item, dict) else None
            history = None
            if size and features:
                previous = list(range(len(features) - 1, max(-1, len(features) - 1 - size), -1))
                relation = [0 if speaker is None or speakers[p] is None else 1 if speakers[p] == speaker else 2
                            for p in previous]
                history = (torch.stack([features[p] for p in previous])[None], torch.tensor([relation]))
            prepared = self.prepare_input(item, index, default_rate)
            result = super().__call__(prepared, history=history, return_features=True, **kwargs)
            features.append(result.pop("features"))
            speakers.append(speaker)
            results.append(result["scores"] if set(result) == {"scores"} else result)
        return results

    # ------------------------------------------------------------------ input validation
    def prepare_input(
        self, item: Any, index: int | None = None, sampling_rate: int | None = None, transcribe: bool = True
    ) -> PreparedInput:
        """Validate and decode one input: audio -> mono float32 at :attr:`sampling_rate`, transcript checked.

        A model that uses text gets the input's ``text`` or, without one, :attr:`asr`'s transcript of the
        audio (``transcribe=False`` leaves that to the caller: see :meth:`_transcribe`, which batches it).
        Raises ``ValueError`` naming the input (``"input 3 (...)"``) for a missing/undecodable file, empty
        audio, a missing sampling rate or a missing transcript (no ``text`` and no ASR).
        """
        if isinstance(item, PreparedInput):
            if transcribe:
                self._transcribe([item])
            return item
        where = _where(index)
        if isinstance(item, dict):
            payload = item
        elif isinstance(item, str) and "audio" not in self.modalities:
            payload = {"text": item}
        elif isinstance(item, (str, os.PathLike, bytes, bytearray, np.ndarray, torch.Tensor)):
            payload = {"audio": item}
        else:
            raise ValueError(
                f"{where}: expected a dict {{'audio': ..., 'sampling_rate': ..., 'text': ...}}, got "
                f"{type(item).__name__}."
            )
        audio = text = None
        if "audio" in self.modalities:
            source = next((payload[k] for k in _AUDIO_KEYS if payload.get(k) is not None), None)
            if source is None:
                raise ValueError(
                    f"{where}: the model needs audio ('audio': a file path, bytes or an array with "
                    f"'sampling_rate'); got keys {sorted(payload)}."
                )
            rate = payload.get("sampling_rate", sampling_rate)
            audio = load_audio(source, rate, where, self.sampling_rate)
        source = asr_audio = None
        if "text" in self.modalities:
            text = payload.get("text")
            if text is None and self.asr is None:
                raise ValueError(
                    f"{where}: the model ({'+'.join(self.modalities)}) needs the transcript: pass 'text' "
                    "(a string), or load the pipeline with a speech recognizer (asr_model=...) to transcribe "
                    "the audio."
                )
            if text is None:
                asr_audio = audio
                if asr_audio is None:  # a text-only model: decode the audio for ASR only
                    audio_source = next((payload[k] for k in _AUDIO_KEYS if payload.get(k) is not None), None)
                    if audio_source is None:
                        raise ValueError(
                            f"{where}: the model ({'+'.join(self.modalities)}) needs 'text', or audio to "
                            f"transcribe; got keys {sorted(payload)}."
                        )
                    asr_audio = load_audio(audio_source, payload.get("sampling_rate", sampling_rate), where,
                                           self.sampling_rate)
            elif not isinstance(text, str):
                raise ValueError(f"{where}: 'text' must be a string, got {type(text).__name__}.")
            else:
                check_text(text, where)
                source = "given"
        prepared = PreparedInput(audio=audio, text=text, where=where, text_source=source, asr_audio=asr_audio)
        if transcribe:
            self._transcribe([prepared])
        return prepared

    def _transcribe(self, items: list[PreparedInput]) -> None:
        """Fill in the transcript of the items that wait for ASR, in one batch (``text_source="asr"``)."""
        pending = [item for item in items if item.asr_audio is not None]
        if not pending:
            return
        texts = self.asr.transcribe([item.asr_audio for item in pending], self.sampling_rate)
        for item, text in zip(pending, texts, strict=True):
            item.text, item.text_source, item.asr_audio = text, "asr", None
            if not text.strip():
                logger.warning("%s: %s", item.where, EMPTY_ASR_WARNING)

    # ------------------------------------------------------------------ pipeline steps
    def preprocess(
        self, inputs: Any, sampling_rate: int | None = None, chunk_length_s: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """One model input per audio window (one for short audio or a text-only model)."""
        item = self.prepare_input(inputs, None, sampling_rate)
        text_features: dict[str, Any] = {"text": item.text, "text_source": item.text_source}
        if item.text is not None:
            text_features.update(self.processor(text=[item.text], modalities=["text"], return_tensors="pt"))
        if item.audio is None:
            yield {**text_features, "is_last": True}
            return
        window = self.max_window_samples or item.audio.shape[0]
        if chunk_length_s is not None:
            window = min(window, max(1, int(round(chunk_length_s * self.sampling_rate))))
        bounds = window_bounds(item.audio.shape[0], window)
        for i, (start, end) in enumerate(bounds):
            audio = self.processor.extract_audio_features([item.audio[start:end]], return_tensors="pt")
            yield {**audio, **text_features, "is_last": i == len(bounds) - 1}

    def _forward(self, model_inputs: dict[str, Any], history: tuple[torch.Tensor, torch.Tensor] | None = None,
                 ) -> dict[str, Any]:
        is_last = model_inputs.pop("is_last")
        text, source = model_inputs.pop("text"), model_inputs.pop("text_source")
        if history is not None:
            model_inputs = {**model_inputs, "history_features": history[0], "history_speaker": history[1]}
        outputs = self.model(**model_inputs)
        return {"logits": outputs.logits, "features": outputs.utterance_features, "is_last": is_last, "text": text,
                "text_source": source}

    def postprocess(
        self, model_outputs: list[dict[str, Any]], top_k: int | None = None, return_text: bool | None = None,
        return_features: bool = False,
    ) -> list[dict[str, Any]] | dict[str, Any]:
        """Average the windows' softmax probabilities; labels sorted by score, ``top_k`` best.

        With ``return_text`` (default: when the pipeline has ASR and the model uses text) the result is
        ``{"scores": [...], "text": the transcript used, "text_source": "given" | "asr"}``, plus ``"warning"``
        when the speech recognizer returned an empty transcript.
        """
        logits = torch.cat([output["logits"] for output in model_outputs], dim=0).float()
        probs = logits.softmax(dim=-1).mean(dim=0)
        id2label = self.model.config.id2label
        order = torch.argsort(probs, descending=True).tolist()
        if top_k is not None:
            order = order[:top_k]
        scores = [{"label": id2label[i], "score": float(probs[i])} for i in order]
        if return_text is None:
            return_text = self.asr is not None and "text" in self.modalities
        result: dict[str, Any] = {"scores": scores}
        if return_text:
            text, source = model_outputs[0]["text"], model_outputs[0]["text_source"]
            result.update(text=text, text_source=source)
            if source == "asr" and not (text or "").strip():
                result["warning"] = EMPTY_ASR_WARNING
        if return_features:  # the utterance's representation, averaged over windows: a conversation's history
            result["features"] = torch.cat([output["features"] for output in model_outputs]).float().mean(dim=0)
        return result if len(result) > 1 else scores

    # ------------------------------------------------------------------ saving
    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> None:
        """Save model (with ``auto_map`` and ``custom_pipelines``), processor and the code files."""
        save_pretrained_with_pipeline(self.model, self.processor, save_directory, **kwargs)


def add_pipeline_to_config(config: Any) -> None:
    """Record this task's pipeline class in ``config.custom_pipelines`` (saved in ``config.json``)."""
    custom = dict(getattr(config, "custom_pipelines", None) or {})
    custom[TASK] = dict(CUSTOM_PIPELINE_INFO)
    config.custom_pipelines = custom


def save_pipeline_code(save_directory: str | os.PathLike) -> None:
    """Copy this file (plus its relative imports) beside a saved model, for ``trust_remote_code``."""
    custom_object_save(MultiStillEmotionPipeline, save_directory)


def save_pretrained_with_pipeline(model: Any, processor: Any, save_directory: str | os.PathLike, **kwargs: Any) -> None:
    """Write a folder that ``pipeline(TASK, model=folder, trust_remote_code=True)`` loads in a fresh process.

    Sets ``model.config.custom_pipelines`` (this task -> this file's pipeline class, loaded through
    ``AutoModelForAudioClassification``), saves the model (safetensors, ``auto_map``, model code) and the
    processor, and copies this file (plus its relative imports) beside them.
    """
    os.makedirs(save_directory, exist_ok=True)
    add_pipeline_to_config(model.config)
    model.save_pretrained(save_directory, **kwargs)
    processor.save_pretrained(save_directory)
    save_pipeline_code(save_directory)


def register_pipeline() -> None:
    """Register :data:`TASK` with ``transformers.pipelines.PIPELINE_REGISTRY`` (idempotent, no warning; called
    by ``import multistill``). A Hub folder's copy of this file registers nothing: ``custom_pipelines`` in its
    ``config.json`` names the class."""
    if TASK in PIPELINE_REGISTRY.supported_tasks:
        return
    PIPELINE_REGISTRY.register_pipeline(
        TASK,
        pipeline_class=MultiStillEmotionPipeline,
        pt_model=AutoModelForAudioClassification,
        type="multimodal",
    )


__all__ = [
    "CUSTOM_PIPELINE_INFO",
    "MultiStillEmotionPipeline",
    "PreparedInput",
    "TASK",
    "add_pipeline_to_config",
    "register_pipeline",
    "save_pipeline_code",
    "save_pretrained_with_pipeline",
    "window_bounds",
]
