"""Configuration of the Multi-Still models (teacher, the paper's three students and a light student).

This file is shipped next to the weights on the Hub, so it imports its siblings only relatively
(``from .annotations import ...``) and never ``multistill.*``.

One :class:`MultiStillConfig` describes every variant; the ``modalities``, ``num_fusion_layers`` and
``audio_frontend`` fields decide which branches exist. :data:`PRESETS` holds the named variants of
the paper (see ``MultiStillConfig.from_preset``).
"""

from __future__ import annotations

import copy
from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .annotations import EMOTIONS

#: Shape of ``kresnik/wav2vec2-large-xlsr-korean`` (the paper's frozen audio encoder).
DEFAULT_AUDIO_CONFIG: dict[str, Any] = {
    "model_type": "wav2vec2",
    "hidden_size": 1024,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "intermediate_size": 4096,
    "hidden_act": "gelu",
    "feat_extract_norm": "layer",
    "do_stable_layer_norm": True,
    "conv_bias": True,
    "conv_dim": [512, 512, 512, 512, 512, 512, 512],
    "conv_kernel": [10, 3, 3, 3, 3, 2, 2],
    "conv_stride": [5, 2, 2, 2, 2, 2, 2],
    "num_conv_pos_embeddings": 128,
    "num_conv_pos_embedding_groups": 16,
    "layer_norm_eps": 1e-5,
    "vocab_size": 32,
}

#: Shape of ``beomi/KcELECTRA-base`` (the paper's text encoder).
DEFAULT_TEXT_CONFIG: dict[str, Any] = {
    "model_type": "electra",
    "vocab_size": 50135,
    "embedding_size": 768,
    "hidden_size": 768,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "hidden_act": "gelu",
    "layer_norm_eps": 1e-12,
    "pad_token_id": 0,
}

ALLOWED_MODALITIES: tuple[str, ...] = ("audio", "text")
MODALITY_ALIASES: dict[str, list[str]] = {"audio": ["audio"], "text": ["text"], "both": ["audio", "text"]}
ALLOWED_AUDIO_FRONTENDS: tuple[str, ...] = ("wav2vec2", "fbank")
ALLOWED_FBANK_POSITIONS: tuple[str, ...] = ("sinusoidal", "conv")
#: Audio-config attributes that the ``fbank`` front end's transformer layers read.
_FBANK_LAYER_FIELDS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout", "attention_dropout", "activation_dropout", "layer_norm_eps",
)

#: Named variants. ``light_student`` also shrinks both encoders (``audio_layers``/``text_layers`` of
#: :meth:`MultiStillConfig.from_preset`, default 2 each).
PRESETS: dict[str, dict[str, Any]] = {
    "teacher": {"modalities": ["audio", "text"], "num_fusion_layers": 3},
    "multimodal_student": {"modalities": ["audio", "text"], "num_fusion_layers": 1},
    "text_student": {"modalities": ["text"], "num_fusion_layers": 1},
    "audio_student": {"modalities": ["audio"], "num_fusion_layers": 1},
    "light_student": {
        "modalities": ["audio", "text"],
        "num_fusion_layers": 1,
        "audio_frontend": "fbank",
        "freeze_encoders": False,
    },
}
#: Default encoder depths of the presets that shrink the encoders.
PRESET_ENCODER_LAYERS: dict[str, dict[str, int]] = {"light_student": {"audio": 2, "text": 2}}


def _build_sub_config(value: Any, default: dict[str, Any], field: str) -> PreTrainedConfig:
    """Turn ``None``, a dict or a config into a config instance (any encoder type, via ``AutoConfig``).

    A dict *with* ``model_type`` is a complete config; a dict *without* it is a set of overrides on the
    default (paper-sized) shape.
    """
    if isinstance(value, PreTrainedConfig):
        return copy.deepcopy(value)
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise ValueError(f"`{field}` must be a dict, a PreTrainedConfig or None, got {type(value).__name__}.")
    if "model_type" in value:
        params = dict(value)
    else:
        params = {**default, **value}
    model_type = params.pop("model_type")
    params.pop("transformers_version", None)
    try:
        return AutoConfig.for_model(model_type, **params)
    except ValueError as err:
        raise ValueError(f"`{field}` has an unknown model_type {model_type!r}: {err}") from err


def _normalize_modalities(value: Any) -> list[str]:
    allowed = "'audio', 'text', 'both' or a list/tuple of 'audio' and 'text'"
    if isinstance(value, str):
        if value not in MODALITY_ALIASES:
            raise ValueError(f"`modalities` must be {allowed}; got {value!r}.")
        return list(MODALITY_ALIASES[value])
    if not isinstance(value, (list, tuple)) or not value:
        raise ValueError(f"`modalities` must be {allowed}; got {value!r}.")
    unknown = [m for m in value if m not in ALLOWED_MODALITIES]
    if unknown:
        raise ValueError(f"`modalities` got unknown modality {unknown[0]!r}; allowed values: {allowed}.")
    return [m for m in ALLOWED_MODALITIES if m in value]


class MultiStillConfig(PreTrainedConfig):
    r"""Configuration of :class:`MultiStillForEmotionClassification` and :class:`MultiStillModel`.

    Args:
        audio_config / text_config: encoder configs (dict, config or ``None``). ``None`` gives the shape of
            ``kresnik/wav2vec2-large-xlsr-korean`` / ``beomi/KcELECTRA-base``; a dict without ``model_type``
            overrides fields of that shape; any encoder type is accepted (rebuilt with ``AutoConfig``).
        modalities: ``"audio"``, ``"text"``, ``"both"`` or a list of ``"audio"``/``"text"``.
        audio_frontend: ``"wav2vec2"`` (full encoder built from ``audio_config``) or ``"fbank"`` (log-mel
            filterbank + strided convolutions + ``audio_config.num_hidden_layers`` wav2vec2-style layers).
        hidden_size / num_attention_heads / num_fusion_layers / fusion_intermediate_size: the MulT-style
            cross-modal transformer (paper: 768, 8, teacher 3 / students 1, 3072).
        attention_dropout / activation_dropout / residual_dropout / embed_dropout: fusion dropouts. The
            original code (``cross_attention_config`` in SeolRoh/Multi-Still_ETRI ``config.py``) sets all four
            to 0, which is the default here.
        classifier_dropout / classifier_hidden_size: the head, Dropout(0.1) -> 512 -> GELU -> Dropout(0.1) -> 7.
        max_audio_frames / max_text_tokens: encoder outputs are truncated to these lengths (512 wav2vec2
            frames = 10.24 s; 128 tokens).
        freeze_encoders: keep the pretrained encoders frozen (no gradients, always in eval mode).
        audio_encoder_name / text_encoder_name: Hub ids of the pretrained encoders (informational; used by
            ``from_encoders`` when no encoder is given).
        num_mel_bins / fbank_n_fft / fbank_hop_length / fbank_conv_channels / fbank_conv_kernel_sizes /
            fbank_conv_strides / fbank_position_embedding: the ``fbank`` front end (25 ms / 10 ms frames at
            16 kHz, strides (2, 2) give 25 Hz encoder frames; (1, 2) give wav2vec2's 50 Hz).
        num_labels / id2label / label2id: default to the 7 emotions in paper order (:data:`EMOTIONS`).
    """

    model_type = "multistill"
    #: Outputs the Trainer must not gather during evaluation (only the logits matter there).
    keys_to_ignore_at_inference = [
        "pooled_features", "fused_hidden_states", "audio_hidden_states", "audio_hidden_mask",
        "text_hidden_states", "text_hidden_mask", "attentions",
    ]
    sub_configs_defaults = {
        "audio_config": SubConfigSpec(config_class=AutoConfig, model_type="wav2vec2",
                                      init_kwargs={k: v for k, v in DEFAULT_AUDIO_CONFIG.items() if k != "model_type"}),
        "text_config": SubConfigSpec(config_class=AutoConfig, model_type="electra",
                                     init_kwargs={k: v for k, v in DEFAULT_TEXT_CONFIG.items() if k != "model_type"}),
    }

    audio_config: dict | PreTrainedConfig | None = None
    text_config: dict | PreTrainedConfig | None = None
    modalities: str | list | tuple | None = None
    audio_frontend: str = "wav2vec2"
    hidden_size: int = 768
    num_attention_heads: int = 8
    num_fusion_layers: int = 3
    fusion_intermediate_size: int = 3072
    attention_dropout: float = 0.0
    activation_dropout: float = 0.0
    residual_dropout: float = 0.0
    embed_dropout: float = 0.0
    classifier_dropout: float = 0.1
    classifier_hidden_size: int = 512
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02
    max_audio_frames: int = 512
    max_text_tokens: int = 128
    freeze_encoders: bool = True
    sampling_rate: int = 16000
    audio_encoder_name: str | None = "kresnik/wav2vec2-large-xlsr-korean"
    text_encoder_name: str | None = "beomi/KcELECTRA-base"
    num_mel_bins: int = 80
    fbank_n_fft: int = 400
    fbank_hop_length: int = 160
    fbank_conv_channels: int = 256
    fbank_conv_kernel_sizes: list | tuple = (3, 3)
    fbank_conv_strides: list | tuple = (2, 2)
    fbank_position_embedding: str = "sinusoidal"

    def __post_init__(self, **kwargs: Any) -> None:
        self.audio_config = _build_sub_config(self.audio_config, DEFAULT_AUDIO_CONFIG, "audio_config")
        self.text_config = _build_sub_config(self.text_config, DEFAULT_TEXT_CONFIG, "text_config")
        self.modalities = _normalize_modalities(["audio", "text"] if self.modalities is None else self.modalities)
        self.fbank_conv_kernel_sizes = [int(k) for k in self.fbank_conv_kernel_sizes]
        self.fbank_conv_strides = [int(s) for s in self.fbank_conv_strides]
        num_labels = kwargs.get("num_labels")
        if self.id2label is None and num_labels in (None, len(EMOTIONS)):
            self.id2label = dict(enumerate(EMOTIONS))
            self.label2id = {label: i for i, label in enumerate(EMOTIONS)}
        super().__post_init__(**kwargs)
        self._validate()

    def _validate(self) -> None:
        def positive(name: str) -> None:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")

        for name in ("hidden_size", "num_attention_heads", "fusion_intermediate_size", "classifier_hidden_size",
                     "max_audio_frames", "max_text_tokens", "sampling_rate", "num_mel_bins", "fbank_n_fft",
                     "fbank_hop_length", "fbank_conv_channels"):
            positive(name)
        if not isinstance(self.num_fusion_layers, int) or self.num_fusion_layers < 1:
            raise ValueError(f"`num_fusion_layers` must be an integer >= 1, got {self.num_fusion_layers!r}.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"`num_attention_heads` ({self.num_attention_heads}) must divide `hidden_size` ({self.hidden_size})."
            )
        if self.hidden_size % 2 != 0:
            raise ValueError(f"`hidden_size` must be even (sinusoidal positions), got {self.hidden_size}.")
        if self.audio_frontend not in ALLOWED_AUDIO_FRONTENDS:
            raise ValueError(
                f"`audio_frontend` must be one of {ALLOWED_AUDIO_FRONTENDS}, got {self.audio_frontend!r}."
            )
        if self.fbank_position_embedding not in ALLOWED_FBANK_POSITIONS:
            raise ValueError(
                f"`fbank_position_embedding` must be one of {ALLOWED_FBANK_POSITIONS}, "
                f"got {self.fbank_position_embedding!r}."
            )
        for name in ("attention_dropout", "activation_dropout", "residual_dropout", "embed_dropout",
                     "classifier_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")
        if self.num_labels is None or self.num_labels < 2:
            raise ValueError(f"`num_labels` must be >= 2, got {self.num_labels!r}.")
        kernels, strides = self.fbank_conv_kernel_sizes, self.fbank_conv_strides
        if not kernels or len(kernels) != len(strides) or min(kernels + strides) < 1:
            raise ValueError(
                "`fbank_conv_kernel_sizes` and `fbank_conv_strides` must be non-empty lists of positive integers "
                f"of the same length, got {kernels} and {strides}."
            )
        if self.fbank_hop_length > self.fbank_n_fft:
            raise ValueError(f"`fbank_hop_length` ({self.fbank_hop_length}) must not exceed `fbank_n_fft`.")
        if self.audio_frontend == "fbank":
            missing = [f for f in _FBANK_LAYER_FIELDS if not hasattr(self.audio_config, f)]
            if missing:
                raise ValueError(
                    "`audio_frontend='fbank'` builds wav2vec2-style layers from `audio_config`, which lacks "
                    f"{missing}; use a wav2vec2-like config (wav2vec2, hubert, wavlm...)."
                )
        text_positions = getattr(self.text_config, "max_position_embeddings", None)
        if "text" in self.modalities and text_positions is not None and self.max_text_tokens > text_positions:
            raise ValueError(
                f"`max_text_tokens` ({self.max_text_tokens}) exceeds the text encoder's "
                f"max_position_embeddings ({text_positions})."
            )

    # ------------------------------------------------------------------ helpers
    @property
    def use_audio(self) -> bool:
        """Whether the model has an audio branch."""
        return "audio" in self.modalities

    @property
    def use_text(self) -> bool:
        """Whether the model has a text branch."""
        return "text" in self.modalities

    @property
    def audio_hidden_size(self) -> int:
        """Width of the audio encoder output (input of the 1x1 audio projection)."""
        return int(self.audio_config.hidden_size)

    @property
    def text_hidden_size(self) -> int:
        """Width of the text encoder output."""
        return int(self.text_config.hidden_size)

    @property
    def pooled_size(self) -> int:
        """Width of the fused representation fed to the classifier (1536 bimodal, 768 unimodal)."""
        return self.hidden_size * len(self.modalities)

    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        audio_layers: int | None = None,
        text_layers: int | None = None,
        **overrides: Any,
    ) -> MultiStillConfig:
        """Config of a named variant (see :data:`PRESETS`), with field overrides.

        ``audio_layers`` / ``text_layers`` set ``num_hidden_layers`` of the encoder configs (for
        ``light_student`` they default to 2 each; other presets keep the encoders' depth).
        Example: ``MultiStillConfig.from_preset("light_student", audio_config=teacher.config.audio_config)``.
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; `name` must be one of {sorted(PRESETS)}.")
        params = copy.deepcopy(PRESETS[name])
        params.update(overrides)
        depths = dict(PRESET_ENCODER_LAYERS.get(name, {}))
        if audio_layers is not None:
            depths["audio"] = audio_layers
        if text_layers is not None:
            depths["text"] = text_layers
        for modality, default in (("audio", DEFAULT_AUDIO_CONFIG), ("text", DEFAULT_TEXT_CONFIG)):
            if modality not in depths:
                continue
            layers = depths[modality]
            if not isinstance(layers, int) or layers < 1:
                raise ValueError(f"`{modality}_layers` must be a positive integer, got {layers!r}.")
            sub = _build_sub_config(params.get(f"{modality}_config"), default, f"{modality}_config")
            sub.num_hidden_layers = layers
            params[f"{modality}_config"] = sub
        return cls(**params)


def register_config() -> None:
    """Map ``model_type="multistill"`` to this class in ``AutoConfig``, unless a class is mapped already.

    First registration wins: when a model folder's copy of this file is imported as remote code
    (``trust_remote_code=True``), it must not replace the installed package's class in this process.
    """
    from transformers.models.auto.configuration_auto import CONFIG_MAPPING

    if MultiStillConfig.model_type not in CONFIG_MAPPING:
        AutoConfig.register(MultiStillConfig.model_type, MultiStillConfig)


MultiStillConfig.register_for_auto_class()
register_config()

__all__ = [
    "ALLOWED_AUDIO_FRONTENDS",
    "ALLOWED_MODALITIES",
    "DEFAULT_AUDIO_CONFIG",
    "DEFAULT_TEXT_CONFIG",
    "MultiStillConfig",
    "PRESETS",
    "register_config",
]
