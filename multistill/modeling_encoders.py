"""Encoders and their pretrained weights: building any ``AutoModel`` encoder (Whisper's encoder alone, run at
the utterance's length), checking a saved folder before loading it, and initialising a model from pretrained
encoders or from a teacher (distil-whisper's layer selection and weight copying).

:class:`MultiStillEncoderInitMixin` gives :class:`~.modeling_multistill.MultiStillForEmotionClassification` its
``from_encoders`` / ``light_student_from_teacher`` constructors; they live here, with the helpers they use,
so that :mod:`.modeling_multistill` holds the models' forward computation.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from transformers import (
    AutoConfig,
    AutoModel,
    PreTrainedConfig,
    PreTrainedModel,
)
from transformers.masking_utils import create_bidirectional_mask

from .configuration_multistill import (
    DEFAULT_AUDIO_ENCODER_NAME,
    DEFAULT_TEXT_ENCODER_NAME,
    PRESETS,
    TEACHER_SHARED_FIELDS,
    MultiStillConfig,
    _is_fbank,
    _normalize_modalities,
)
from .configuration_ngram import MultiStillNgramConfig
from .modeling_fbank import MultiStillFbankEncoder
from .modeling_ngram import MultiStillNgramEncoder

if TYPE_CHECKING:
    from .modeling_multistill import MultiStillForEmotionClassification


# --------------------------------------------------------------------------------------------- encoders
def build_encoder(config: PreTrainedConfig) -> PreTrainedModel:
    """A randomly initialised encoder for ``config``, through the Auto classes.

    ``AutoModel.from_config`` for encoder models (wav2vec2 family, :class:`MultiStillFbankEncoder`, ELECTRA,
    BERT...). For an encoder-decoder (Whisper) only the encoder class of its ``AutoModel`` is built
    (``WhisperModel`` -> ``WhisperEncoder``), so no decoder is ever created or saved.
    """
    if _is_fbank(config):  # built here: a Hub folder's code registers nothing with AutoModel
        return MultiStillFbankEncoder._from_config(config)
    if getattr(config, "model_type", None) == MultiStillNgramConfig.model_type:
        return MultiStillNgramEncoder._from_config(config)
    if not getattr(config, "is_encoder_decoder", False):
        return AutoModel.from_config(config)
    model_class = AutoModel._model_mapping[type(config)]
    encoder_name = model_class.__name__.removesuffix("Model") + "Encoder"
    encoder_class = getattr(sys.modules[model_class.__module__], encoder_name, None)
    if encoder_class is None:
        raise ValueError(
            f"{config.model_type} is an encoder-decoder model and its module has no {encoder_name} class; "
            "cannot build its encoder alone."
        )
    return encoder_class._from_config(config)


def encoder_only(model: PreTrainedModel) -> PreTrainedModel:
    """The encoder of a loaded encoder-decoder model (e.g. ``WhisperForConditionalGeneration`` -> its
    ``WhisperEncoder``); any other model unchanged."""
    if getattr(model.config, "is_encoder_decoder", False) and hasattr(model, "get_encoder"):
        return model.get_encoder()
    return model


def is_whisper_encoder(encoder: nn.Module) -> bool:
    """Whether ``encoder`` is a Whisper-style log-mel encoder (two convolutions + a learnt position table)."""
    return all(hasattr(encoder, name) for name in ("conv1", "conv2", "embed_positions", "layers", "layer_norm"))


def whisper_encoder_states(encoder: nn.Module, input_features: torch.Tensor,
                           mel_mask: torch.Tensor | None = None) -> list[torch.Tensor]:
    """A Whisper encoder on log-mel input of any length up to its window: every hidden state (the embedding
    output, then each layer's, the last one layer-normalised), ``[B, ceil(N / 2), H]`` each.

    transformers' ``WhisperEncoder`` insists on the 30 s window; emotion features need only the utterance, so
    the position table is sliced to the input's frames (a 2.5 s utterance costs about 1/14 of the window).
    ``mel_mask`` (``[B, N]``) marks the real mel frames of shorter clips of a batch: their padding is zeroed
    before each convolution (as a clip alone is zero-padded) and hidden from attention, so a clip's features do
    not depend on its batch. A full 30 s window is encoded exactly as transformers does (unmasked).
    """
    full = input_features.shape[-1] >= 2 * encoder.embed_positions.weight.shape[0]
    padded = mel_mask is not None and not full and not bool(mel_mask.all())
    keep = mel_mask.to(input_features.dtype)[:, None, :] if padded else None
    hidden = F.gelu(encoder.conv1(input_features * keep if padded else input_features))
    hidden = F.gelu(encoder.conv2(hidden * keep if padded else hidden)).permute(0, 2, 1)
    frames, positions = hidden.shape[1], encoder.embed_positions.weight
    if frames > positions.shape[0]:
        raise ValueError(f"Whisper input of {frames} frames exceeds the encoder's {positions.shape[0]} positions (30 s).")
    hidden = hidden + positions[:frames].to(hidden.dtype)
    attention_mask = None
    if padded:
        frame_mask = mel_mask[:, ::2][:, :frames]  # encoder frame t reads mel frames 2t-1..2t+1
        attention_mask = create_bidirectional_mask(config=encoder.config, inputs_embeds=hidden,
                                                   attention_mask=frame_mask.long())
    states = [hidden]
    for layer in encoder.layers:
        hidden = layer(hidden, attention_mask)
        hidden = hidden[0] if isinstance(hidden, tuple) else hidden
        states.append(hidden)
    states[-1] = encoder.layer_norm(hidden)
    return states



# --------------------------------------------------------------------------------------------- loading checks
def check_saved_folder(folder: str | os.PathLike, model_class: type, config: PreTrainedConfig,
                       check_shapes: bool = True) -> None:
    """Refuse a damaged saved model before its weights are allocated, naming the file: no safetensors weights
    (only a pickle ``.bin``), a truncated or corrupt ``.safetensors`` file, or (``check_shapes``) a
    ``config.json`` whose shapes (``num_labels``, widths...) differ from the weights'. The model is built on the
    meta device to compare."""
    from safetensors import safe_open

    weights = sorted(name for name in os.listdir(folder) if name.endswith(".safetensors"))
    if not weights:
        pickled = sorted(name for name in os.listdir(folder) if name.endswith((".bin", ".pt", ".pth")))
        if pickled:
            raise OSError(f"{os.path.join(folder, pickled[0])}: pickle weights are refused (loading a pickle can run "
                          "code); only model.safetensors is loaded. Re-save the model with save_pretrained.")
        raise OSError(f"no model.safetensors in {folder}: the weights are missing.")
    stored: dict[str, list[int]] = {}
    for name in weights:
        path = os.path.join(folder, name)
        try:
            with safe_open(path, framework="pt") as handle:
                stored.update({key: list(handle.get_slice(key).get_shape()) for key in handle.keys()})  # noqa: SIM118
        except Exception as err:  # safetensors raises its own SafetensorError (not an OSError)
            raise OSError(f"{path}: damaged safetensors file (truncated or corrupt: {err}).") from err
    if not check_shapes:
        return
    with torch.device("meta"):
        expected = {key: list(value.shape) for key, value in model_class(config).state_dict().items()}
    for key, shape in stored.items():
        if key in expected and expected[key] != shape:
            raise ValueError(f"{os.path.join(folder, 'config.json')} does not match the weights: {key} is {shape} in "
                             f"the safetensors file but {expected[key]} by config.json (was config.json edited, "
                             "e.g. num_labels or a size?).")


# --------------------------------------------------------------------------------------------- layer copying
def select_teacher_layers(num_teacher_layers: int, num_student_layers: int) -> list[int]:
    """Teacher layers a student of ``num_student_layers`` layers is initialised from.

    distil-whisper's "maximally spaced" rule: ``np.linspace(0, L - 1, k, dtype=int)`` with the last entry
    forced to ``L - 1``. So the first and last teacher layers are always kept (one layer: the last).
    Examples: 2 of 24 -> [0, 23]; 4 of 24 -> [0, 7, 15, 23]; 2 of 12 -> [0, 11]; 1 of 3 -> [2]; 0 -> [] (the
    encoder's front end only).
    """
    if num_student_layers < 0 or num_student_layers > num_teacher_layers:
        raise ValueError(
            f"Cannot pick {num_student_layers} student layers from {num_teacher_layers} teacher layers "
            f"(need 0 <= student <= teacher)."
        )
    if num_student_layers == 0:
        return []
    mapping = np.linspace(0, num_teacher_layers - 1, num_student_layers, dtype=int)
    mapping[-1] = num_teacher_layers - 1
    return [int(i) for i in mapping]


_LAYER_PATHS = ("encoder.layers", "encoder.layer", "layers", "layer")


def _layer_list(module: nn.Module) -> tuple[str, nn.ModuleList]:
    for path in _LAYER_PATHS:
        obj: Any = module
        for part in path.split("."):
            obj = getattr(obj, part, None)
        if isinstance(obj, nn.ModuleList):
            return path, obj
    raise ValueError(f"Cannot find the layer list of {type(module).__name__} (looked for {_LAYER_PATHS}).")


def _copy_matching(student: nn.Module | None, teacher: nn.Module | None, skip: tuple[str, ...] = ()) -> list[str]:
    """Copy every state-dict tensor whose name and shape match; returns the copied names."""
    if student is None or teacher is None:
        return []
    teacher_state = teacher.state_dict()
    copied = []
    for name, tensor in student.state_dict().items():
        if any(name.startswith(prefix) for prefix in skip):
            continue
        source = teacher_state.get(name)
        if source is not None and source.shape == tensor.shape:
            tensor.copy_(source)
            copied.append(name)
    return copied


def _keep_layers(encoder: PreTrainedModel | None, layers: int | list[int] | None) -> PreTrainedModel | None:
    """``encoder`` with only the chosen layers (a count -> :func:`select_teacher_layers`, or indices), in place
    (an encoder without layers, the n-gram encoder, as it is)."""
    if encoder is None or layers is None or isinstance(encoder, MultiStillNgramEncoder):
        return encoder
    path, current = _layer_list(encoder)
    if isinstance(layers, int):
        mapping = select_teacher_layers(len(current), layers)
    else:
        mapping = [int(i) for i in layers]
        if not mapping or not all(0 <= i < len(current) for i in mapping):
            raise ValueError(f"Layer list {mapping} must hold indices in [0, {len(current)}).")
    parent_path, _, name = path.rpartition(".")
    parent = encoder.get_submodule(parent_path) if parent_path else encoder
    setattr(parent, name, nn.ModuleList([current[i] for i in mapping]))
    encoder.config.num_hidden_layers = len(mapping)
    return encoder


def _copy_encoder(student: nn.Module, teacher: nn.Module, layers: int | list[int] | None = None) -> list[int]:
    """Copy selected teacher layers into the student's layers, plus the other matching weights (an encoder
    without layers, such as the n-gram encoder, is copied whole)."""
    if isinstance(student, MultiStillNgramEncoder):
        student.load_state_dict(teacher.state_dict())
        return []
    student_path, student_layers = _layer_list(student)
    _, teacher_layers = _layer_list(teacher)
    if layers is None or isinstance(layers, int):
        if isinstance(layers, int) and layers != len(student_layers):
            raise ValueError(f"The student has {len(student_layers)} layers, not {layers}.")
        mapping = select_teacher_layers(len(teacher_layers), len(student_layers))
    else:
        mapping = [int(i) for i in layers]
        if len(mapping) != len(student_layers) or not all(0 <= i < len(teacher_layers) for i in mapping):
            raise ValueError(
                f"Layer list {mapping} must have {len(student_layers)} indices in [0, {len(teacher_layers)})."
            )
    skip = (student_path + ".", *getattr(student, "front_end_prefixes", ()))
    _copy_matching(student, teacher, skip=skip)
    for student_index, teacher_index in enumerate(mapping):
        student_layers[student_index].load_state_dict(teacher_layers[teacher_index].state_dict())
    return mapping


# --------------------------------------------------------------------------------------------- construction
class MultiStillEncoderInitMixin:
    """``from_encoders``, ``light_student_from_teacher`` and ``init_light_student_from_teacher`` of
    :class:`~.modeling_multistill.MultiStillForEmotionClassification` (a model with ``multistill`` and
    ``classifier``)."""

    @classmethod
    def from_encoders(
        cls,
        audio_encoder: str | os.PathLike | PreTrainedModel | None = None,
        text_encoder: str | os.PathLike | PreTrainedModel | None = None,
        preset: str = "teacher",
        *,
        audio_layers: int | list[int] | None = None,
        text_layers: int | list[int] | None = None,
        cache_dir: str | None = None,
        local_files_only: bool = False,
        revision: str | None = None,
        token: str | bool | None = None,
        encoder_kwargs: dict[str, Any] | None = None,
        **config_overrides: Any,
    ) -> MultiStillForEmotionClassification:
        """Build a model of ``preset`` around pretrained encoders (Hub ids, local folders or loaded models).

        The loaded encoders become the model's own (no random copy is built; a loaded model passed in is used,
        and shrunk in place when layers are chosen: pass a copy to keep the original).

        Any ``AutoModel`` encoder: the wav2vec2 family or a Whisper folder (a ``WhisperForConditionalGeneration``
        or ``WhisperModel``: only its encoder is kept, the decoder is neither in the model nor in its weights)
        for audio; ELECTRA, BERT, RoBERTa/XLM-R... for text. ``None`` uses ``audio_encoder_name`` /
        ``text_encoder_name`` (default kresnik/wav2vec2-large-xlsr-korean, beomi/KcELECTRA-base). Encoders of
        modalities the preset does not use are not loaded (only the audio config is needed, for the audio
        projection's width). ``audio_layers``/``text_layers`` shrink the encoders (count ->
        :func:`select_teacher_layers`, or an explicit list of layer indices); the ``light_student`` preset
        defaults to 2 each (into its fbank front end for a wav2vec2-like audio encoder). ``config_overrides``
        go to :meth:`MultiStillConfig.from_preset` (e.g. ``freeze_text_encoder=False``).
        """
        if preset not in PRESETS:
            raise ValueError(f"Unknown preset {preset!r}; `preset` must be one of {sorted(PRESETS)}.")
        load_kwargs = {"cache_dir": cache_dir, "local_files_only": local_files_only, "revision": revision,
                       "token": token}
        load_kwargs = {k: v for k, v in load_kwargs.items() if v is not None}
        load_kwargs.update(encoder_kwargs or {})
        modalities = _normalize_modalities(config_overrides.get("modalities", PRESETS[preset]["modalities"]))

        def resolve(encoder, default_name: str, needed: bool):
            if isinstance(encoder, nn.Module):
                return encoder_only(encoder), encoder.config, getattr(encoder, "name_or_path", None) or default_name
            name = os.fspath(encoder) if encoder is not None else default_name
            if needed:
                model = encoder_only(AutoModel.from_pretrained(name, **load_kwargs))
                return model, model.config, name
            if encoder is not None:
                return None, AutoConfig.from_pretrained(name, **load_kwargs), name
            return None, None, name

        audio_model, audio_cfg, audio_name = resolve(
            audio_encoder, config_overrides.pop("audio_encoder_name", None) or DEFAULT_AUDIO_ENCODER_NAME,
            "audio" in modalities,
        )
        text_model, text_cfg, text_name = resolve(
            text_encoder, config_overrides.pop("text_encoder_name", None) or DEFAULT_TEXT_ENCODER_NAME,
            "text" in modalities,
        )
        config_overrides.setdefault("audio_config", audio_cfg)
        config_overrides.setdefault("text_config", text_cfg)
        config = MultiStillConfig.from_preset(
            preset,
            audio_layers=len(audio_layers) if isinstance(audio_layers, (list, tuple)) else audio_layers,
            text_layers=len(text_layers) if isinstance(text_layers, (list, tuple)) else text_layers,
            audio_encoder_name=audio_name,
            text_encoder_name=text_name,
            **config_overrides,
        )
        fbank = audio_model is not None and _is_fbank(config.audio_config) and not _is_fbank(audio_model.config)
        if audio_layers is None and audio_model is not None:
            audio_layers = config.audio_config.num_hidden_layers  # the preset's depth (all layers by default)
        if text_layers is None and text_model is not None:
            text_layers = getattr(config.text_config, "num_hidden_layers", None)
        model = cls(config, audio_encoder=None if fbank else _keep_layers(audio_model, audio_layers),
                    text_encoder=_keep_layers(text_model, text_layers))
        if fbank:  # the light student's front end replaces a waveform encoder: its layers are copied in
            with torch.no_grad():
                _copy_encoder(model.multistill.audio_encoder, audio_model, audio_layers)
        return model

    @classmethod
    def light_student_from_teacher(
        cls,
        teacher: MultiStillForEmotionClassification,
        audio_layers: int | list[int] = 2,
        text_layers: int | list[int] = 2,
        **config_overrides: Any,
    ) -> MultiStillForEmotionClassification:
        """A ``light_student`` shaped like ``teacher`` (fusion width, heads, labels...) initialised from it.

        Its audio encoder is the fbank front end for a wav2vec2-like teacher, or a Whisper encoder of
        ``audio_layers`` layers for a Whisper teacher; both take their layers from the teacher's.
        """
        params = {k: getattr(teacher.config, k) for k in TEACHER_SHARED_FIELDS}
        params.update(config_overrides)
        config = MultiStillConfig.from_preset(
            "light_student",
            audio_layers=len(audio_layers) if isinstance(audio_layers, (list, tuple)) else audio_layers,
            text_layers=len(text_layers) if isinstance(text_layers, (list, tuple)) else text_layers,
            **params,
        )
        student = cls(config)
        student.init_light_student_from_teacher(teacher, audio_layers=audio_layers, text_layers=text_layers)
        return student

    @torch.no_grad()
    def init_light_student_from_teacher(
        self,
        teacher: MultiStillForEmotionClassification,
        audio_layers: int | list[int] | None = None,
        text_layers: int | list[int] | None = None,
        fusion_layers: int | list[int] | None = None,
    ) -> dict[str, Any]:
        """Initialise this (student) model from a teacher, distil-whisper style.

        * encoders: the student's ``k`` layers come from teacher layers :func:`select_teacher_layers`
          (first and last always kept; or pass explicit indices), plus every other encoder weight whose
          name and shape match (ELECTRA embeddings, wav2vec2 final LayerNorm / conv positions, Whisper's
          convolutions and positions...). The fbank front end (``feature_extractor``/``feature_projection``)
          has no teacher counterpart and keeps its initialisation;
        * fusion: same rule per fusion encoder present in both (teacher 3 layers -> student 1: layer 2),
          plus the final LayerNorms, the audio/text projections (or the pooled fusion's branches), the context
          module and the classifier where shapes match.

        Returns the layer mapping used, e.g. ``{"audio": [0, 23], "text": [0, 11], "audio_to_text": [2], ...}``.
        """
        student_base, teacher_base = self.multistill, teacher.multistill
        report: dict[str, Any] = {}
        if student_base.audio_encoder is not None and teacher_base.audio_encoder is not None:
            report["audio"] = _copy_encoder(student_base.audio_encoder, teacher_base.audio_encoder, audio_layers)
        if student_base.text_encoder is not None and teacher_base.text_encoder is not None:
            report["text"] = _copy_encoder(student_base.text_encoder, teacher_base.text_encoder, text_layers)
        for name in student_base.fusion_names:
            if name in teacher_base.fusion_names:
                report[name] = _copy_encoder(getattr(student_base, name), getattr(teacher_base, name), fusion_layers)
        for module_name in ("audio_projection", "text_projection", "branch_pooling", "context"):
            # present only in some fusions / with context (pooled fusion: branch_pooling, no projections)
            _copy_matching(getattr(student_base, module_name, None), getattr(teacher_base, module_name, None))
        _copy_matching(self.classifier, teacher.classifier)
        return report


__all__ = [
    "MultiStillEncoderInitMixin",
    "build_encoder",
    "check_saved_folder",
    "encoder_only",
    "is_whisper_encoder",
    "select_teacher_layers",
    "whisper_encoder_states",
]
