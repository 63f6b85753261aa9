"""One Whisper encoder pass per utterance in the stream: the speech recognizer's encoder states feed the emotion model.

When the emotion model's audio encoder is the recognizer's Whisper encoder (same weights: e.g. a model built on
the registry's Whisper base with its encoder frozen, streamed with ``--asr whisper-base``), running it twice per
utterance is waste. :class:`SharedWhisperPass` transcribes an utterance with faster-whisper, keeps the encoder
states of its window (30 s, or the recognizer's ``encoder_window_s`` for a clip that fits it: the pass decoding
needs anyway; ``FasterWhisperSpeechRecognizer.transcribe_with_encoder``)
and gives the emotion model the utterance's own frames, the first ``ceil(samples / 320)`` (50 per second), as
``audio_hidden_states``: the frames the model's own pass would keep. Utterances longer than the model's window
(10.24 s for Whisper models) are cut into the same windows as the pipeline does, sliced from the one pass.

The states are close to, not equal to, the model's own pass: faster-whisper pads the log-mel spectrogram of the
utterance with zeros (transformers pads the audio) and runs int8 kernels on CPU.
``benchmarks/stream_rtf.py --share_encoder on off`` measures the logit difference and the time saved.
Weights are compared once per model and recognizer (:func:`shared_encoder_reason`); with any difference the
stream runs the two passes as before.
"""

from __future__ import annotations

import logging
import math
import os
import time
from typing import Any

import numpy as np

logger = logging.getLogger("multistill.live.streaming")

_CHECKED: dict[tuple[str, float, int], str | None] = {}


def _audio_encoder(pipe: Any) -> Any:
    model = getattr(pipe, "model", None)
    base = getattr(model, getattr(model, "base_model_prefix", ""), model)
    return getattr(base, "audio_encoder", None)


def shared_encoder_reason(pipe: Any, asr: Any) -> str | None:
    """``None`` when ``pipe``'s audio encoder is ``asr``'s Whisper encoder (equal weights), else why not."""
    encoder = _audio_encoder(pipe)
    if encoder is None or type(encoder).__name__ != "WhisperEncoder":
        return "the emotion model's audio encoder is not a Whisper encoder"
    config = getattr(getattr(pipe, "model", None), "config", None)
    if getattr(config, "pooled_fusion", False):
        return "the emotion model reads every encoder layer's statistics; the recognizer gives only the last layer"
    if getattr(config, "context_size", 0):
        return "the emotion model reads conversation context, kept by the pipeline's own pass"
    if not callable(getattr(asr, "transcribe_with_encoder", None)):
        return "the recognizer is not faster-whisper"
    weights = os.path.join(os.fspath(getattr(asr, "name", "")), "model.bin")
    if not os.path.isfile(weights):
        return f"the recognizer's weights are not a local CTranslate2 folder ({weights} not found)"
    key = (weights, os.path.getmtime(weights), id(encoder))
    if key not in _CHECKED:
        _CHECKED[key] = _compare_weights(encoder, weights)
    return _CHECKED[key]


def _compare_weights(encoder: Any, weights: str) -> str | None:
    import torch

    from ..tools.whisper_convert import ct2_whisper_state_dict, read_ct2_model

    _, state = ct2_whisper_state_dict(read_ct2_model(weights))
    prefix = "model.encoder."
    theirs = {name[len(prefix):]: value for name, value in state.items() if name.startswith(prefix)}
    ours = encoder.state_dict()
    if set(ours) != set(theirs):
        return (f"the encoders differ in structure ({len(ours)} vs {len(theirs)} tensors: e.g. fewer layers in the "
                "emotion model)")
    for name, value in ours.items():
        if value.shape != theirs[name].shape or not torch.equal(value.float().cpu(), theirs[name].float()):
            return f"the encoders' weights differ ({name})"
    return None


class SharedWhisperPass:
    """ASR + emotion of one utterance with one Whisper encoder pass (see the module doc)."""

    def __init__(self, pipe: Any, asr: Any):
        self.pipe, self.asr = pipe, asr
        self.samples_per_frame = int(pipe.processor.samples_per_frame)

    @classmethod
    def find(cls, pipe: Any, asr: Any) -> SharedWhisperPass | None:
        """The shared pass for ``pipe`` and ``asr``, or ``None`` (logged at INFO with the reason)."""
        reason = shared_encoder_reason(pipe, asr) if asr is not None else "no recognizer"
        if reason is not None:
            logger.info("Two encoder passes per utterance (ASR, emotion model): %s.", reason)
            return None
        logger.info("One Whisper encoder pass per utterance: the recognizer's encoder states feed the emotion model.")
        return cls(pipe, asr)

    def transcribe(self, audio: np.ndarray, sampling_rate: int) -> tuple[str, np.ndarray]:
        """The transcript and the encoder states ``[frames, d_model]`` of the recognizer's window."""
        transcription, states = self.recognise(audio, sampling_rate)
        return transcription.text, states

    def recognise(self, audio: np.ndarray, sampling_rate: int) -> tuple[Any, np.ndarray]:
        """:meth:`transcribe` with the :class:`~.asr.Transcription` (text and confidence)."""
        details = getattr(self.asr, "transcribe_details_with_encoder", None)
        if callable(details):
            return details(audio, sampling_rate)
        from ..asr import Transcription

        text, states = self.asr.transcribe_with_encoder(audio, sampling_rate)
        return Transcription(text), states

    def logits(self, states: np.ndarray, num_samples: int, text: str | None) -> Any:
        """The emotion model's logits, one row per window of the utterance, from the recognizer's states."""
        import torch

        from ..pipeline_multistill import window_bounds

        pipe = self.pipe
        inputs: dict[str, Any] = {}
        if text is not None:
            inputs.update(pipe.processor(text=[text], modalities=["text"], return_tensors="pt"))
        rows = []
        with torch.inference_mode():
            for start, end in window_bounds(num_samples, pipe.max_window_samples or num_samples):
                first = start // self.samples_per_frame
                count = math.ceil((end - start) / self.samples_per_frame)
                hidden = torch.from_numpy(np.ascontiguousarray(states[first:first + count]))[None]
                kwargs = {k: v.to(pipe.device) for k, v in inputs.items()}
                output = pipe.model(audio_hidden_states=hidden.to(pipe.device, pipe.model.dtype), **kwargs)
                rows.append(output.logits)
        return torch.cat(rows, dim=0)

    def classify(self, audio: np.ndarray, sampling_rate: int, top_k: int | None,
                 clock: Any = time.perf_counter) -> tuple[Any, float, Any, float]:
        """``(transcription, asr_s, scores, emotion_s)`` of one utterance (at the pipeline's rate, at most 30 s)."""
        t0 = clock()
        transcription, states = self.recognise(audio, sampling_rate)
        text = transcription.text
        asr_s = clock() - t0
        t0 = clock()
        inputs = text if "text" in self.pipe.modalities else None
        outputs = [{"logits": self.logits(states, audio.shape[0], inputs), "text": text, "text_source": "asr"}]
        scores = self.pipe.postprocess(outputs, top_k=top_k, return_text=False)
        return transcription, asr_s, scores, clock() - t0


__all__ = ["SharedWhisperPass", "shared_encoder_reason"]
