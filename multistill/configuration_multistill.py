"""Configuration of the Multi-Still models (teacher, the paper's three students and a light student).

This file is shipped next to the weights on the Hub, so it imports its siblings only relatively
(``from .annotations import ...``) and never ``multistill.*``.

* :class:`MultiStillConfig` describes every variant: ``modalities`` and ``num_fusion_layers`` decide the
  branches; ``audio_config`` / ``text_config`` are the configs of any Hugging Face encoders (the wav2vec2
  family, the Whisper encoder, the light student's front end; ELECTRA, BERT, RoBERTa/XLM-R...).
* :class:`MultiStillFbankConfig` is the light student's audio encoder (log-mel filterbank + strided
  convolutions + a few wav2vec2 layers), a model of its own (``model_type="multistill_fbank"``).
* :data:`PRESETS` holds the named variants of the paper (see ``MultiStillConfig.from_preset``).
"""

from __future__ import annotations

import copy
import logging
import math
import os
from typing import Any

from transformers import AutoConfig, PreTrainedConfig
from transformers.configuration_utils import SubConfigSpec

from .annotations import EMOTIONS
from .configuration_ngram import MultiStillNgramConfig

logger = logging.getLogger(__name__)

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

DEFAULT_AUDIO_ENCODER_NAME = "kresnik/wav2vec2-large-xlsr-korean"
DEFAULT_TEXT_ENCODER_NAME = "beomi/KcELECTRA-base"

#: The modalities, in the order every list of them follows (the one definition; others import it).
ALLOWED_MODALITIES: tuple[str, ...] = ("audio", "text")
MODALITY_ALIASES: dict[str, list[str]] = {"audio": ["audio"], "text": ["text"], "both": ["audio", "text"]}
#: Values of the legacy ``audio_frontend`` key: ``"fbank"`` builds the light student's front end from a waveform
#: encoder's config; ``"wav2vec2"`` uses ``audio_config`` as it is.
ALLOWED_AUDIO_FRONTENDS: tuple[str, ...] = ("wav2vec2", "fbank")
ALLOWED_FBANK_POSITIONS: tuple[str, ...] = ("sinusoidal", "conv")
#: Fields a :class:`MultiStillFbankConfig` takes from the waveform encoder it replaces (its layers are wav2vec2's,
#: so the teacher's layers can be copied in). The first nine are required.
FBANK_LAYER_FIELDS: tuple[str, ...] = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size", "hidden_act",
    "hidden_dropout", "attention_dropout", "activation_dropout", "layer_norm_eps",
    "feat_proj_dropout", "num_conv_pos_embeddings", "num_conv_pos_embedding_groups", "feat_extract_activation",
    "initializer_range",
)
#: Flat keys of the light student's front end, as earlier versions stored them in ``MultiStillConfig`` (and a
#: shorthand of ``from_preset``) -> :class:`MultiStillFbankConfig` field. They are moved into ``audio_config``.
LEGACY_FBANK_KEYS: dict[str, str] = {
    "num_mel_bins": "num_mel_bins",
    "fbank_n_fft": "n_fft",
    "fbank_hop_length": "hop_length",
    "fbank_conv_channels": "conv_channels",
    "fbank_conv_kernel_sizes": "conv_kernel_sizes",
    "fbank_conv_strides": "conv_strides",
    "fbank_position_embedding": "position_embedding",
}

#: How the branches are fused: the paper's cross-modal transformer over frame sequences, or the concatenation of
#: pooled branches (audio: weighted per-layer statistics; text: masked mean), which learns better from little data.
FUSION_TYPES: tuple[str, ...] = ("cross_attention", "concat")
#: Largest conversation history a model may read (``context_size``).
MAX_CONTEXT_SIZE = 64
#: How the previous utterances' pooled vectors become one context vector: their sum weighted by
#: ``context_decay ** distance`` (no parameters; the recipe's, and what the baselines' context does) or a GRU over
#: them tagged by speaker and distance (learns worse from about a thousand rows: README, "Conversation context").
CONTEXT_TYPES: tuple[str, ...] = ("decayed_sum", "gru")
#: Weight of the utterance ``k`` places back in the decayed sum is ``DEFAULT_CONTEXT_DECAY ** (k - 1)``.
DEFAULT_CONTEXT_DECAY = 0.8
#: Largest ``audio_weight`` (the pooled audio branch's scale): beyond it the text branch is ignored in practice.
MAX_AUDIO_WEIGHT = 100.0
#: How the pooled fusion reads the audio encoder's layers (``audio_layer_mix``): ``"weighted"``, every layer's
#: statistics mixed by learnt softmax weights (SUPERB-style), or ``"last"``, the last layer's alone (what the
#: Whisper-LR baseline reads).
AUDIO_LAYER_CHOICES: tuple[str, ...] = ("weighted", "last")

#: Named variants. ``light_student`` also shrinks both encoders (``audio_layers``/``text_layers`` of
#: :meth:`MultiStillConfig.from_preset`, default 2 each) and trains them; a waveform audio encoder (wav2vec2
#: family) is replaced by the log-mel front end of :class:`MultiStillFbankConfig` (``audio_frontend="fbank"``),
#: a log-mel encoder (Whisper) keeps its own, already cheap, front end.
PRESETS: dict[str, dict[str, Any]] = {
    "teacher": {"modalities": ["audio", "text"], "num_fusion_layers": 3},
    "multimodal_student": {"modalities": ["audio", "text"], "num_fusion_layers": 1},
    "text_student": {"modalities": ["text"], "num_fusion_layers": 1},
    "audio_student": {"modalities": ["audio"], "num_fusion_layers": 1},
    "light_student": {
        "modalities": ["audio", "text"],
        "num_fusion_layers": 1,
        "audio_frontend": "fbank",
        "freeze_audio_encoder": False,
        "freeze_text_encoder": False,
    },
}
#: Fields a student takes from its teacher (fusion and head shape, limits, labels, encoders), so that a tiny
#: teacher gets a tiny student (``distill.py``, :meth:`MultiStillForEmotionClassification.light_student_from_teacher`).
TEACHER_SHARED_FIELDS: tuple[str, ...] = (
    "hidden_size", "num_attention_heads", "fusion_intermediate_size", "classifier_hidden_size", "max_audio_frames",
    "max_text_tokens", "id2label", "label2id", "audio_encoder_name", "text_encoder_name", "layer_norm_eps",
    "sampling_rate", "audio_config", "text_config", "fusion_type", "audio_full_window", "audio_weight",
    "audio_layer_mix",
)
#: Default encoder depths of the presets that shrink the encoders.
PRESET_ENCODER_LAYERS: dict[str, dict[str, int]] = {"light_student": {"audio": 2, "text": 2}}
#: Largest widths a config may ask for (the paper: 768 / 3072; the largest speech and text encoders in use:
#: 1280-4096 / 5120-16384). A larger value is a typo or a damaged file: it is refused before any weight is
#: allocated (``hidden_size=65536`` would need about 17 GB).
MAX_HIDDEN_SIZE = 8192
MAX_INTERMEDIATE_SIZE = 32768


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def check_sizes(config: Any, where: str) -> None:
    """Refuse widths above :data:`MAX_HIDDEN_SIZE` / :data:`MAX_INTERMEDIATE_SIZE` (``ValueError`` naming the
    field), so an absurd config fails at once instead of allocating many gigabytes."""
    for name, limit in (("hidden_size", MAX_HIDDEN_SIZE), ("intermediate_size", MAX_INTERMEDIATE_SIZE),
                        ("fusion_intermediate_size", MAX_INTERMEDIATE_SIZE), ("classifier_hidden_size",
                                                                               MAX_INTERMEDIATE_SIZE),
                        ("conv_channels", MAX_HIDDEN_SIZE), ("d_model", MAX_HIDDEN_SIZE),
                        ("encoder_ffn_dim", MAX_INTERMEDIATE_SIZE)):
        value = getattr(config, name, None)
        if isinstance(value, int) and value > limit:
            raise ValueError(f"`{where}{name}` is {value}, above {limit}: no model of this kind is that wide (a typo "
                             "or a damaged config.json?); refused before allocating the weights.")


def _is_fbank(config: Any) -> bool:
    """Whether ``config`` is a :class:`MultiStillFbankConfig` (by model type: with remote code, this file may be
    imported twice in one process, as two distinct classes)."""
    return getattr(config, "model_type", None) == MultiStillFbankConfig.model_type


def audio_encoder_input_name(audio_config: PreTrainedConfig) -> str:
    """The input an audio encoder takes: ``"input_values"`` (raw waveform: wav2vec2 family, the fbank front end)
    or ``"input_features"`` (log-mel spectrogram: Whisper), read from its Auto model class."""
    if _is_fbank(audio_config):
        return "input_values"
    from transformers import AutoModel  # (the models' Auto module is heavier than the config's)

    try:
        model_class = AutoModel._model_mapping[type(audio_config)]
    except KeyError as err:
        raise ValueError(
            f"No AutoModel class is registered for audio encoder config {type(audio_config).__name__} "
            f"(model_type {getattr(audio_config, 'model_type', None)!r})."
        ) from err
    return model_class.main_input_name


class MultiStillFbankConfig(PreTrainedConfig):
    r"""Configuration of :class:`MultiStillFbankEncoder`, the light student's audio encoder.

    Raw 16 kHz waveform -> log-mel filterbank (``n_fft``/``hop_length``, per-utterance mean normalisation) ->
    strided ``Conv1d + GELU`` (``conv_kernel_sizes``/``conv_strides``, ``conv_channels`` channels) -> LayerNorm +
    Linear to ``hidden_size`` -> positions (``position_embedding``: ``"sinusoidal"`` or wav2vec2's ``"conv"``) ->
    ``num_hidden_layers`` wav2vec2 stable-layer-norm layers -> LayerNorm. The transformer fields mean what they
    mean in ``Wav2Vec2Config`` (same layer class, so a wav2vec2 teacher's layers can be copied in).
    Defaults: 25 ms / 10 ms frames at 16 kHz and strides (2, 2), i.e. 25 encoder frames per second
    (``samples_per_frame`` = 640); strides (1, 2) give wav2vec2's 50 Hz.
    """

    model_type = "multistill_fbank"

    sampling_rate: int = 16000
    num_mel_bins: int = 80
    n_fft: int = 400
    hop_length: int = 160
    conv_channels: int = 256
    conv_kernel_sizes: list | tuple = (3, 3)
    conv_strides: list | tuple = (2, 2)
    position_embedding: str = "sinusoidal"
    hidden_size: int = 1024
    num_hidden_layers: int = 2
    num_attention_heads: int = 16
    intermediate_size: int = 4096
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    activation_dropout: float = 0.1
    feat_proj_dropout: float = 0.0
    layer_norm_eps: float = 1e-5
    num_conv_pos_embeddings: int = 128
    num_conv_pos_embedding_groups: int = 16
    feat_extract_activation: str = "gelu"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs: Any) -> None:
        super().__post_init__(**kwargs)
        self._validate()
        self.conv_kernel_sizes = list(self.conv_kernel_sizes)
        self.conv_strides = list(self.conv_strides)

    def _validate(self) -> None:
        check_sizes(self, "")
        for name in ("sampling_rate", "num_mel_bins", "n_fft", "hop_length", "conv_channels", "hidden_size",
                     "num_hidden_layers", "num_attention_heads", "intermediate_size", "num_conv_pos_embeddings",
                     "num_conv_pos_embedding_groups"):
            if not _positive_int(getattr(self, name)):
                raise ValueError(f"`{name}` must be a positive integer, got {getattr(self, name)!r}.")
        kernels, strides = self.conv_kernel_sizes, self.conv_strides
        if (
            not isinstance(kernels, (list, tuple)) or not isinstance(strides, (list, tuple)) or not kernels
            or len(kernels) != len(strides) or not all(_positive_int(v) for v in [*kernels, *strides])
        ):
            raise ValueError(
                "`conv_kernel_sizes` and `conv_strides` must be non-empty lists of positive integers of the same "
                f"length, got {kernels!r} and {strides!r}."
            )
        if self.hop_length > self.n_fft:
            raise ValueError(f"`hop_length` ({self.hop_length}) must not exceed `n_fft` ({self.n_fft}).")
        if self.position_embedding not in ALLOWED_FBANK_POSITIONS:
            raise ValueError(
                f"`position_embedding` must be one of {ALLOWED_FBANK_POSITIONS}, got {self.position_embedding!r}."
            )
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"`num_attention_heads` ({self.num_attention_heads}) must divide `hidden_size` ({self.hidden_size})."
            )
        for name in ("hidden_dropout", "attention_dropout", "activation_dropout", "feat_proj_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")

    @property
    def samples_per_frame(self) -> int:
        """Raw samples per encoder frame: the filterbank hop times the convolution strides (640 = 40 ms)."""
        return int(self.hop_length * math.prod(self.conv_strides))

    @property
    def min_input_samples(self) -> int:
        """Shortest input that fills one filterbank window (shorter clips are zero-padded to it)."""
        return int(self.n_fft)

    @classmethod
    def from_encoder_config(cls, encoder_config: PreTrainedConfig, **fields: Any) -> MultiStillFbankConfig:
        """The front end that replaces a waveform encoder (wav2vec2, HuBERT, WavLM...): its transformer shape and
        dropouts come from ``encoder_config`` (:data:`FBANK_LAYER_FIELDS`), ``fields`` set the rest."""
        missing = [f for f in FBANK_LAYER_FIELDS[:9] if not hasattr(encoder_config, f)]
        if missing:
            raise ValueError(
                f"The light student's fbank front end builds wav2vec2-style layers from the audio encoder's config "
                f"({getattr(encoder_config, 'model_type', type(encoder_config).__name__)}), which lacks {missing}; "
                "use a wav2vec2-like config (wav2vec2, hubert, wavlm, data2vec-audio)."
            )
        params = {f: getattr(encoder_config, f) for f in FBANK_LAYER_FIELDS if hasattr(encoder_config, f)}
        params.update(fields)
        return cls(**params)


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
    if model_type == MultiStillFbankConfig.model_type:  # built here: a Hub folder's code registers nothing
        return MultiStillFbankConfig(**params)
    if model_type == MultiStillNgramConfig.model_type:
        return MultiStillNgramConfig(**params)
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
        audio_config / text_config: encoder configs (dict, config or ``None``); any encoder type, rebuilt with
            ``AutoConfig``: the wav2vec2 family or Whisper (its encoder only is built) for audio, or the light
            student's :class:`MultiStillFbankConfig`; ELECTRA, BERT, RoBERTa/XLM-R... for text. ``None`` gives
            the shape of ``kresnik/wav2vec2-large-xlsr-korean`` / ``beomi/KcELECTRA-base``; a dict without
            ``model_type`` overrides fields of that shape.
        modalities: ``"audio"``, ``"text"``, ``"both"`` or a list of ``"audio"``/``"text"``.
        preset: name of the :data:`PRESETS` entry the config was built from (``None``: custom).
        hidden_size / num_attention_heads / num_fusion_layers / fusion_intermediate_size: the MulT-style
            cross-modal transformer (paper: 768, 8, teacher 3 / students 1, 3072).
        attention_dropout / activation_dropout / residual_dropout / embed_dropout: fusion dropouts. The
            original code (``cross_attention_config`` in SeolRoh/Multi-Still_ETRI ``config.py``) sets all four
            to 0, which is the default here.
        classifier_dropout / classifier_hidden_size: the head, Dropout(0.1) -> 512 -> GELU -> Dropout(0.1) -> 7;
            ``classifier_hidden_size=0``: a linear classifier, Dropout -> 7.
        max_audio_frames / max_text_tokens: encoder outputs are truncated to these lengths (512 wav2vec2 or
            Whisper frames = 10.24 s; 128 tokens).
        fusion_type: ``"cross_attention"`` (the paper's MulT-style head over frame sequences) or ``"concat"``
            (pooled branches: every audio encoder layer's frame mean and std mixed by learnt weights, the text
            states' masked mean; projected to ``hidden_size`` and concatenated; see :mod:`.modeling_heads`).
        audio_full_window: Whisper only: encode the whole 30 s window as speech recognition does (``True``) or
            the utterance's own length (``False``, default: same features up to a cosine of 0.95-0.995 and
            about 14x less compute for a 2.5 s utterance). The processor pads accordingly.
        audio_weight: ``fusion_type="concat"`` only: the factor on the normalised audio statistics before their
            projection (1: none). Under the L2 penalty that trains the recipe, a larger weight makes the audio
            branch cheaper to use, so the model leans on the voice more than on the words (README, "How much to
            listen"); chosen on validation, never on the test session.
        audio_layer_mix: ``fusion_type="concat"`` only (:data:`AUDIO_LAYER_CHOICES`): every audio encoder layer's
            statistics mixed by learnt weights (``"weighted"``, default) or the last layer's alone (``"last"``).
            The cached features hold every layer either way.
        context_size: how many previous utterances of the conversation the model reads (0: each utterance
            alone, the paper's behaviour); see :class:`.modeling_heads.MultiStillContext`.
        context_type / context_decay: how the history becomes one vector (:data:`CONTEXT_TYPES`): the sum of the
            previous utterances' pooled vectors weighted by ``context_decay ** (k - 1)`` for the ``k``-th previous
            one (``"decayed_sum"``, default, no parameters) or a GRU over them (``"gru"``).
        freeze_audio_encoder / freeze_text_encoder: keep that encoder frozen (no gradients, always in eval mode);
            see :attr:`frozen_modalities`. The legacy key ``freeze_encoders`` sets both.
        audio_encoder_name / text_encoder_name: where the pretrained encoders came from (Hub id or folder;
            default: the paper's encoders when their default shape is used; ``from_encoders`` loads them when
            no encoder is given).
        num_labels / id2label / label2id: default to the 7 emotions in paper order (:data:`EMOTIONS`).

    Legacy keys (configs saved by earlier versions; not stored): ``audio_frontend="fbank"`` turns a wav2vec2-like
    ``audio_config`` into a :class:`MultiStillFbankConfig`, filled from the flat keys of :data:`LEGACY_FBANK_KEYS`
    (``num_mel_bins``, ``fbank_conv_channels``...), which are ignored (logged) when the audio encoder is not the
    fbank front end; ``freeze_encoders`` sets both freeze fields.
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
    preset: str | None = None
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
    freeze_audio_encoder: bool = True
    freeze_text_encoder: bool = True
    sampling_rate: int = 16000
    audio_encoder_name: str | None = None
    text_encoder_name: str | None = None
    fusion_type: str = "cross_attention"
    audio_full_window: bool = False
    audio_weight: float = 1.0
    audio_layer_mix: str = "weighted"
    context_size: int = 0
    context_type: str = "decayed_sum"
    context_decay: float = DEFAULT_CONTEXT_DECAY

    def __post_init__(self, **kwargs: Any) -> None:
        audio_frontend = kwargs.pop("audio_frontend", None)
        freeze_encoders = kwargs.pop("freeze_encoders", None)
        fbank_fields = {LEGACY_FBANK_KEYS[key]: kwargs.pop(key) for key in list(kwargs) if key in LEGACY_FBANK_KEYS}
        if freeze_encoders is not None:
            self.freeze_audio_encoder = self.freeze_text_encoder = bool(freeze_encoders)
        if self.audio_config is None and self.audio_encoder_name is None:
            self.audio_encoder_name = DEFAULT_AUDIO_ENCODER_NAME
        if self.text_config is None and self.text_encoder_name is None:
            self.text_encoder_name = DEFAULT_TEXT_ENCODER_NAME
        self.audio_config = _build_sub_config(self.audio_config, DEFAULT_AUDIO_CONFIG, "audio_config")
        self.text_config = _build_sub_config(self.text_config, DEFAULT_TEXT_CONFIG, "text_config")
        self.audio_config = self._light_audio_config(self.audio_config, audio_frontend, fbank_fields)
        self.modalities = _normalize_modalities(["audio", "text"] if self.modalities is None else self.modalities)
        num_labels = kwargs.get("num_labels")
        if self.id2label is None and num_labels in (None, len(EMOTIONS)):
            self.id2label = dict(enumerate(EMOTIONS))
            self.label2id = {label: i for i, label in enumerate(EMOTIONS)}
        super().__post_init__(**kwargs)
        self._validate()

    def _light_audio_config(
        self, audio_config: PreTrainedConfig, audio_frontend: str | None, fbank_fields: dict[str, Any]
    ) -> PreTrainedConfig:
        """Apply the legacy ``audio_frontend`` / flat fbank keys (see the class docstring)."""
        if audio_frontend is not None and audio_frontend not in ALLOWED_AUDIO_FRONTENDS:
            raise ValueError(
                f"`audio_frontend` must be one of {ALLOWED_AUDIO_FRONTENDS} (or left out), got {audio_frontend!r}."
            )
        if _is_fbank(audio_config):
            if not fbank_fields:
                return audio_config
            return MultiStillFbankConfig(**{**audio_config.to_dict(), **fbank_fields})
        if audio_frontend == "fbank":
            return MultiStillFbankConfig.from_encoder_config(
                audio_config, **{"sampling_rate": self.sampling_rate, **fbank_fields}
            )
        if fbank_fields:
            logger.info("Ignoring the fbank front-end keys %s: the audio encoder is %s, not the fbank front end.",
                        sorted(fbank_fields), audio_config.model_type)
        return audio_config

    def _validate(self) -> None:
        check_sizes(self, "")
        check_sizes(self.audio_config, "audio_config.")
        check_sizes(self.text_config, "text_config.")
        for name in ("hidden_size", "num_attention_heads", "fusion_intermediate_size", "max_audio_frames",
                     "max_text_tokens", "sampling_rate"):
            value = getattr(self, name)
            if not _positive_int(value):
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if not (self.classifier_hidden_size == 0 or _positive_int(self.classifier_hidden_size)):
            raise ValueError("`classifier_hidden_size` must be a positive integer, or 0 for a linear classifier, got "
                             f"{self.classifier_hidden_size!r}.")
        if not isinstance(self.num_fusion_layers, int) or self.num_fusion_layers < 1:
            raise ValueError(f"`num_fusion_layers` must be an integer >= 1, got {self.num_fusion_layers!r}.")
        if self.hidden_size % self.num_attention_heads != 0:
            raise ValueError(
                f"`num_attention_heads` ({self.num_attention_heads}) must divide `hidden_size` ({self.hidden_size})."
            )
        if self.hidden_size % 2 != 0:
            raise ValueError(f"`hidden_size` must be even (sinusoidal positions), got {self.hidden_size}.")
        for name in ("attention_dropout", "activation_dropout", "residual_dropout", "embed_dropout",
                     "classifier_dropout"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be a float in [0, 1), got {value!r}.")
        if self.fusion_type not in FUSION_TYPES:
            raise ValueError(f"`fusion_type` must be one of {FUSION_TYPES}, got {self.fusion_type!r}.")
        self._validate_audio_weight()
        if (not isinstance(self.context_size, int) or isinstance(self.context_size, bool)
                or not 0 <= self.context_size <= MAX_CONTEXT_SIZE):
            raise ValueError(f"`context_size` must be an integer in [0, {MAX_CONTEXT_SIZE}], got {self.context_size!r}.")
        if self.context_type not in CONTEXT_TYPES:
            raise ValueError(f"`context_type` must be one of {CONTEXT_TYPES}, got {self.context_type!r}.")
        if (not isinstance(self.context_decay, (int, float)) or isinstance(self.context_decay, bool)
                or not 0.0 < self.context_decay <= 1.0):
            raise ValueError(f"`context_decay` must be a float in (0, 1], got {self.context_decay!r}.")
        for name in ("freeze_audio_encoder", "freeze_text_encoder", "audio_full_window"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"`{name}` must be a bool, got {getattr(self, name)!r}.")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"`preset` must be one of {sorted(PRESETS)} or None, got {self.preset!r}.")
        if self.num_labels is None or self.num_labels < 2:
            raise ValueError(f"`num_labels` must be >= 2, got {self.num_labels!r}.")
        text_positions = getattr(self.text_config, "max_position_embeddings", None)
        if "text" in self.modalities and text_positions is not None and self.max_text_tokens > text_positions:
            raise ValueError(
                f"`max_text_tokens` ({self.max_text_tokens}) exceeds the text encoder's "
                f"max_position_embeddings ({text_positions})."
            )

    def _validate_audio_weight(self) -> None:
        """``audio_weight``: a number in (0, MAX_AUDIO_WEIGHT]; other than 1 only where it acts (pooled fusion);
        ``audio_layer_mix``: one of AUDIO_LAYER_CHOICES, other than ``"weighted"`` only there too."""
        weight = self.audio_weight
        if (not isinstance(weight, (int, float)) or isinstance(weight, bool) or not math.isfinite(weight)
                or not 0.0 < weight <= MAX_AUDIO_WEIGHT):
            raise ValueError(f"`audio_weight` must be a number in (0, {MAX_AUDIO_WEIGHT:g}], got {weight!r}.")
        if weight != 1 and self.use_audio and self.fusion_type != "concat":
            raise ValueError(f"`audio_weight` ({weight!r}) scales the pooled audio branch of fusion_type='concat'; "
                             f"fusion_type={self.fusion_type!r} has none (leave audio_weight at 1).")
        if self.audio_layer_mix not in AUDIO_LAYER_CHOICES:
            raise ValueError(f"`audio_layer_mix` must be one of {AUDIO_LAYER_CHOICES}, got {self.audio_layer_mix!r}.")
        if self.audio_layer_mix != "weighted" and self.use_audio and self.fusion_type != "concat":
            raise ValueError(f"`audio_layer_mix` ({self.audio_layer_mix!r}) chooses the layers of the pooled audio "
                             f"branch of fusion_type='concat'; fusion_type={self.fusion_type!r} reads the last "
                             "layer's frames (leave audio_layer_mix at 'weighted').")

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any):
        """``PreTrainedConfig.get_config_dict``, but a local folder without ``config.json`` is an ``OSError``
        naming it (transformers would build the default, paper-sized, config and then fail on the weights)."""
        folder = os.path.normpath(os.path.join(os.fspath(pretrained_model_name_or_path), kwargs.get("subfolder") or "."))
        if os.path.isdir(folder) and not os.path.isfile(os.path.join(folder, "config.json")):
            raise OSError(f"no config.json in {folder}: not a saved model folder (save_pretrained writes one).")
        return super().get_config_dict(pretrained_model_name_or_path, **kwargs)

    # ------------------------------------------------------------------ derived, read-only
    @property
    def use_audio(self) -> bool:
        """Whether the model has an audio branch."""
        return "audio" in self.modalities

    @property
    def use_text(self) -> bool:
        """Whether the model has a text branch."""
        return "text" in self.modalities

    @property
    def frozen_modalities(self) -> list[str]:
        """The used modalities whose encoder is frozen (their outputs can be cached for training)."""
        frozen = {"audio": self.freeze_audio_encoder, "text": self.freeze_text_encoder}
        return [m for m in self.modalities if frozen[m]]

    @property
    def freeze_encoders(self) -> bool:
        """Legacy, read-only: whether every used encoder is frozen (see :attr:`frozen_modalities`)."""
        return self.frozen_modalities == list(self.modalities)

    @property
    def audio_frontend(self) -> str:
        """``"fbank"`` for the light student's front end, else the audio encoder's ``model_type``."""
        return "fbank" if _is_fbank(self.audio_config) else str(self.audio_config.model_type)

    @property
    def pooled_fusion(self) -> bool:
        """Whether the head reads pooled branches (``fusion_type != "cross_attention"``)."""
        return self.fusion_type != "cross_attention"

    @property
    def audio_layer_count(self) -> int:
        """Hidden states the audio encoder returns (its layers + the embedding output): what the pooled
        fusion's layer weights mix."""
        return int(self.audio_config.num_hidden_layers) + 1

    @property
    def audio_hidden_size(self) -> int:
        """Width of the audio features the fusion reads (what is cached): the encoder's hidden size, or twice it
        for the pooled fusion (per-layer mean and standard deviation)."""
        return int(self.audio_config.hidden_size) * (2 if self.pooled_fusion else 1)

    @property
    def text_hidden_size(self) -> int:
        """Width of the text encoder output."""
        return int(self.text_config.hidden_size)

    @property
    def pooled_utterance_size(self) -> int:
        """Width of one utterance's fused representation (1536 bimodal, 768 unimodal in the paper's sizes)."""
        return self.hidden_size * len(self.modalities)

    @property
    def pooled_size(self) -> int:
        """Width of what the classifier reads: the utterance's representation, and its context's if any."""
        return self.pooled_utterance_size * (2 if self.context_size else 1)

    @classmethod
    def from_preset(
        cls,
        name: str,
        *,
        audio_layers: int | None = None,
        text_layers: int | None = None,
        **overrides: Any,
    ) -> MultiStillConfig:
        """Config of a named variant (see :data:`PRESETS`), with field overrides; ``preset`` records ``name``.

        ``audio_layers`` / ``text_layers`` set ``num_hidden_layers`` of the encoder configs (for
        ``light_student`` they default to 2 each; other presets keep the encoders' depth; ``audio_layers=0``
        keeps only a Whisper encoder's convolutions and positions, the cheapest audio branch that still reads
        Whisper). ``light_student`` replaces a waveform audio encoder by the fbank front end (shaped like it; the flat keys of
        :data:`LEGACY_FBANK_KEYS` such as ``num_mel_bins=40`` configure it; ``audio_frontend="wav2vec2"``
        keeps the encoder instead) and keeps a Whisper encoder, shrunk.
        Example: ``MultiStillConfig.from_preset("light_student", audio_config=teacher.config.audio_config)``.
        """
        if name not in PRESETS:
            raise ValueError(f"Unknown preset {name!r}; `name` must be one of {sorted(PRESETS)}.")
        params = copy.deepcopy(PRESETS[name])
        params.update(overrides)
        params["preset"] = name
        depths = dict(PRESET_ENCODER_LAYERS.get(name, {}))
        if audio_layers is not None:
            depths["audio"] = audio_layers
        if text_layers is not None:
            depths["text"] = text_layers
        if params.get("audio_frontend") == "fbank":
            audio = _build_sub_config(params.get("audio_config"), DEFAULT_AUDIO_CONFIG, "audio_config")
            if audio_encoder_input_name(audio) == "input_features":  # Whisper: its front end is already light
                params.pop("audio_frontend")
            elif not _is_fbank(audio):
                fields = {LEGACY_FBANK_KEYS[k]: params.pop(k) for k in list(params) if k in LEGACY_FBANK_KEYS}
                params.pop("audio_frontend")
                params["audio_config"] = MultiStillFbankConfig.from_encoder_config(
                    audio, **{"sampling_rate": params.get("sampling_rate", 16000), **fields}
                )
        for modality, default in (("audio", DEFAULT_AUDIO_CONFIG), ("text", DEFAULT_TEXT_CONFIG)):
            if modality not in depths:
                continue
            layers = depths[modality]
            sub = _build_sub_config(params.get(f"{modality}_config"), default, f"{modality}_config")
            front_end_only = modality == "audio" and layers == 0 and audio_encoder_input_name(sub) == "input_features"
            if not (front_end_only or _positive_int(layers)):
                raise ValueError(f"`{modality}_layers` must be a positive integer (0, Whisper's convolutions only, "
                                 f"for a Whisper audio encoder), got {layers!r}.")
            sub.num_hidden_layers = layers
            params[f"{modality}_config"] = sub
        for modality, default_name in (("audio", DEFAULT_AUDIO_ENCODER_NAME), ("text", DEFAULT_TEXT_ENCODER_NAME)):
            if overrides.get(f"{modality}_config") is None and params.get(f"{modality}_encoder_name") is None:
                params[f"{modality}_encoder_name"] = default_name  # the paper's encoder shape is used
        return cls(**params)


MultiStillConfig.register_for_auto_class()
MultiStillFbankConfig.register_for_auto_class()
MultiStillNgramConfig.register_for_auto_class()

__all__ = [
    "ALLOWED_AUDIO_FRONTENDS",
    "ALLOWED_MODALITIES",
    "AUDIO_LAYER_CHOICES",
    "CONTEXT_TYPES",
    "DEFAULT_CONTEXT_DECAY",
    "DEFAULT_AUDIO_CONFIG",
    "DEFAULT_AUDIO_ENCODER_NAME",
    "DEFAULT_TEXT_CONFIG",
    "DEFAULT_TEXT_ENCODER_NAME",
    "FUSION_TYPES",
    "LEGACY_FBANK_KEYS",
    "MultiStillConfig",
    "MultiStillFbankConfig",
    "PRESETS",
    "TEACHER_SHARED_FIELDS",
    "audio_encoder_input_name",
    "check_sizes",
]
