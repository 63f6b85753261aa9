"""Multi-Still models: pretrained (or light) speech/text encoders + a MulT-style cross-modal fusion head.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

* :class:`MultiStillModel` — encoders + fusion; returns the pooled fused representation.
* :class:`MultiStillForEmotionClassification` — the same plus the classifier; serves the teacher and all
  students (``config.modalities`` / ``num_fusion_layers`` and the encoder configs decide the branches).
* :class:`MultiStillFbankEncoder` — the light student's audio encoder (log-mel front end + wav2vec2 layers),
  a ``PreTrainedModel`` of its own built through ``AutoModel`` like every other encoder.

Encoders: any ``AutoModel`` audio encoder taking ``input_values`` (wav2vec2, HuBERT, WavLM, data2vec-audio,
the fbank encoder) or ``input_features`` (the Whisper encoder; its decoder is never built), any ``AutoModel``
text encoder (ELECTRA, BERT, RoBERTa/XLM-R...).

Padding never changes a prediction: every attention gets a key-padding mask and every pooling is masked.
(This holds for wav2vec2 encoders with ``feat_extract_norm="layer"``, like the default
kresnik/wav2vec2-large-xlsr-korean, HuBERT and WavLM, and for Whisper, whose processor pads every clip to the
same 30 s window. Base wav2vec2 models use ``"group"`` normalisation over the whole, padded, sequence, and
data2vec-audio stacks five positional convolutions, so these two are *not* padding-invariant.)
"""

from __future__ import annotations

import math
import os
import sys
from dataclasses import dataclass
from typing import Any

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
from transformers import initialization as init
from transformers.audio_utils import mel_filter_bank
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput, SequenceClassifierOutput
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2EncoderLayerStableLayerNorm,
    Wav2Vec2PositionalConvEmbedding,
)
from transformers.utils import ModelOutput

from .configuration_multistill import (
    ALLOWED_MODALITIES,
    DEFAULT_AUDIO_ENCODER_NAME,
    DEFAULT_TEXT_ENCODER_NAME,
    PRESETS,
    TEACHER_SHARED_FIELDS,
    MultiStillConfig,
    MultiStillFbankConfig,
    _is_fbank,
    _normalize_modalities,
)
from .configuration_ngram import MultiStillNgramConfig
from .modeling_heads import MultiStillContext, MultiStillPooledFusion, layer_statistics
from .modeling_ngram import MultiStillNgramEncoder

#: Names of the fusion encoders, by role: (query modality, key/value modality, pooling).
FUSION_ENCODERS: dict[str, tuple[str, str | None, str]] = {
    "audio_to_text": ("audio", "text", "mean"),  # bimodal: audio queries attend to text, mean over audio
    "text_to_audio": ("text", "audio", "first"),  # bimodal: text queries attend to audio, first token
    "audio_self_attention": ("audio", None, "first"),  # audio-only student
    "text_self_attention": ("text", None, "mean"),  # text-only student
}

# --------------------------------------------------------------------------------------------- outputs
@dataclass
class MultiStillModelOutput(ModelOutput):
    """Output of :class:`MultiStillModel`.

    Args:
        pooled_features: ``[B, 768 * n_modalities]`` fused representation (input of the classifier; with
            ``context_size`` the utterance's and its context's, concatenated).
        utterance_features: ``[B, 768 * n_modalities]`` the utterance's own fused representation, before context:
            what a conversation keeps as history (``history_features`` of the next utterances).
        fused_hidden_states: per fusion encoder, its final ``[B, T, 768]`` output (order of ``fusion_names``).
        audio_hidden_states / audio_hidden_mask: audio encoder output ``[B, T_a, H_a]`` and frame mask
            (only with ``output_hidden_states=True``; what training code caches).
        text_hidden_states / text_hidden_mask: text encoder output ``[B, T_t, H_t]`` and token mask (idem).
        attentions: fusion attention weights, one ``[B, heads, T_q, T_k]`` per layer (``output_attentions``).
    """

    pooled_features: torch.FloatTensor | None = None
    utterance_features: torch.FloatTensor | None = None
    fused_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: torch.FloatTensor | None = None
    audio_hidden_mask: torch.LongTensor | None = None
    text_hidden_states: torch.FloatTensor | None = None
    text_hidden_mask: torch.LongTensor | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


@dataclass
class MultiStillOutput(SequenceClassifierOutput):
    """Output of :class:`MultiStillForEmotionClassification`: transformers' classification output (``loss``,
    ``logits``, ``hidden_states`` unused, ``attentions``) plus the fused and encoder states.

    Args:
        loss: cross-entropy against class ids or (soft) vote distributions, when ``labels`` are given.
        logits: ``[B, num_labels]`` scores before softmax.
        pooled_features: ``[B, 768 * n_modalities]`` concatenated fused representation before the classifier.
        utterance_features: the utterance's own representation, before context (see :class:`MultiStillModelOutput`).
        fused_hidden_states, audio_hidden_states, audio_hidden_mask, text_hidden_states, text_hidden_mask,
            attentions: see :class:`MultiStillModelOutput`.
    """

    pooled_features: torch.FloatTensor | None = None
    utterance_features: torch.FloatTensor | None = None
    fused_hidden_states: tuple[torch.FloatTensor, ...] | None = None
    audio_hidden_states: torch.FloatTensor | None = None
    audio_hidden_mask: torch.LongTensor | None = None
    text_hidden_states: torch.FloatTensor | None = None
    text_hidden_mask: torch.LongTensor | None = None
    attentions: tuple[torch.FloatTensor, ...] | None = None


# --------------------------------------------------------------------------------------------- helpers
def sinusoidal_positions(length: int, dim: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """fairseq/MulT sinusoidal table for positions 1..length: ``[length, dim]`` (sin half, then cos half)."""
    half = dim // 2
    scale = math.log(10000.0) / max(half - 1, 1)
    freqs = torch.exp(torch.arange(half, device=device, dtype=torch.float32) * -scale)
    positions = torch.arange(1, length + 1, device=device, dtype=torch.float32)
    angles = positions[:, None] * freqs[None, :]
    table = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if dim % 2:
        table = F.pad(table, (0, 1))
    return table.to(dtype)


def masked_mean(hidden_states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over the valid (``mask == 1``) time steps: ``[B, T, D] -> [B, D]``."""
    weights = mask.to(hidden_states.dtype).unsqueeze(-1)
    return (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def classification_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with hard (class id ``[B]``, ``-100`` ignored) or soft (``[B, num_labels]`` vote counts or
    distributions, rows normalised to sum to 1) targets, in float32."""
    labels = labels.to(logits.device)
    if labels.is_floating_point():
        if labels.shape != logits.shape:
            raise ValueError(f"Soft labels must have shape [batch, {logits.shape[-1]}], got {tuple(labels.shape)}.")
        targets = labels.float() / labels.float().sum(dim=-1, keepdim=True).clamp_min(1e-12)
        return F.cross_entropy(logits.float(), targets)
    if labels.dim() != 1 or labels.shape[0] != logits.shape[0]:
        raise ValueError(f"Class-id labels must have shape [batch], got {tuple(labels.shape)}.")
    return F.cross_entropy(logits.float(), labels.long())


def select_teacher_layers(num_teacher_layers: int, num_student_layers: int) -> list[int]:
    """Teacher layers a student of ``num_student_layers`` layers is initialised from.

    distil-whisper's "maximally spaced" rule: ``np.linspace(0, L - 1, k, dtype=int)`` with the last entry
    forced to ``L - 1``. So the first and last teacher layers are always kept (one layer: the last).
    Examples: 2 of 24 -> [0, 23]; 4 of 24 -> [0, 7, 15, 23]; 2 of 12 -> [0, 11]; 1 of 3 -> [2].
    """
    if num_student_layers < 1 or num_student_layers > num_teacher_layers:
        raise ValueError(
            f"Cannot pick {num_student_layers} student layers from {num_teacher_layers} teacher layers "
            f"(need 1 <= student <= teacher)."
        )
    mapping = np.linspace(0, num_teacher_layers - 1, num_student_layers, dtype=int)
    mapping[-1] = num_teacher_layers - 1
    return [int(i) for i in mapping]


def _is_tracing() -> bool:
    """True under torch.jit tracing / torch.compile / torch.export, where data-dependent checks are skipped."""
    compiler = getattr(torch, "compiler", None)
    return bool(
        torch.jit.is_tracing()
        or (compiler is not None and compiler.is_compiling())
        or (compiler is not None and hasattr(compiler, "is_exporting") and compiler.is_exporting())
    )


def _check_mask(mask: torch.Tensor, what: str) -> None:
    if mask.dim() != 2:
        raise ValueError(f"`{what}` must have shape [batch, time], got {tuple(mask.shape)}.")
    if not _is_tracing() and mask.numel() and bool((mask.sum(dim=-1) == 0).any()):
        raise ValueError(f"`{what}` has a row without any valid position (an empty utterance).")


# --------------------------------------------------------------------------------------------- fusion
class MultiStillAttention(nn.Module):
    """Multi-head attention with a key-padding mask (queries from one sequence, keys/values from another)."""

    def __init__(self, config: MultiStillConfig):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.dropout = config.attention_dropout
        self.q_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.k_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.v_proj = nn.Linear(config.hidden_size, config.hidden_size)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size)

    def forward(
        self,
        hidden_states: torch.Tensor,
        key_value_states: torch.Tensor,
        key_padding_mask: torch.Tensor,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        batch, q_len, _ = hidden_states.shape
        k_len = key_value_states.shape[1]
        query = self.q_proj(hidden_states).view(batch, q_len, self.num_heads, self.head_dim).transpose(1, 2)
        key = self.k_proj(key_value_states).view(batch, k_len, self.num_heads, self.head_dim).transpose(1, 2)
        value = self.v_proj(key_value_states).view(batch, k_len, self.num_heads, self.head_dim).transpose(1, 2)
        allowed = key_padding_mask.bool()[:, None, None, :]
        dropout = self.dropout if self.training else 0.0
        weights = None
        if output_attentions:
            scores = torch.matmul(query, key.transpose(-1, -2)) / math.sqrt(self.head_dim)
            scores = scores.masked_fill(~allowed, torch.finfo(scores.dtype).min)
            weights = scores.softmax(dim=-1)
            context = torch.matmul(F.dropout(weights, p=dropout, training=self.training), value)
        else:
            context = F.scaled_dot_product_attention(query, key, value, attn_mask=allowed, dropout_p=dropout)
        context = context.transpose(1, 2).reshape(batch, q_len, -1)
        return self.out_proj(context), weights


class MultiStillFusionLayer(nn.Module):
    """MulT pre-LayerNorm layer: LN -> (cross-)attention -> residual; LN -> FFN(ReLU) -> residual.

    As in MulT, the same LayerNorm normalises the queries and the key/value sequence.
    """

    def __init__(self, config: MultiStillConfig):
        super().__init__()
        self.self_attn_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = MultiStillAttention(config)
        self.final_layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.fc1 = nn.Linear(config.hidden_size, config.fusion_intermediate_size)
        self.fc2 = nn.Linear(config.fusion_intermediate_size, config.hidden_size)
        self.activation_dropout = config.activation_dropout
        self.residual_dropout = config.residual_dropout

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        key_value_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        residual = hidden_states
        hidden_states = self.self_attn_layer_norm(hidden_states)
        if key_value_states is None:
            key_value_states, key_value_mask = hidden_states, attention_mask
        else:
            key_value_states = self.self_attn_layer_norm(key_value_states)
        hidden_states, weights = self.attention(hidden_states, key_value_states, key_value_mask, output_attentions)
        hidden_states = residual + F.dropout(hidden_states, p=self.residual_dropout, training=self.training)

        residual = hidden_states
        hidden_states = F.relu(self.fc1(self.final_layer_norm(hidden_states)))
        hidden_states = F.dropout(hidden_states, p=self.activation_dropout, training=self.training)
        hidden_states = self.fc2(hidden_states)
        hidden_states = residual + F.dropout(hidden_states, p=self.residual_dropout, training=self.training)
        return hidden_states, weights


class MultiStillFusionEncoder(nn.Module):
    """MulT cross-modal transformer encoder (also used for self-attention by the unimodal students).

    Inputs are scaled by ``sqrt(d)`` and get sinusoidal positions (then embedding dropout); ``N`` layers;
    a final LayerNorm.
    """

    def __init__(self, config: MultiStillConfig):
        super().__init__()
        self.embed_scale = math.sqrt(config.hidden_size)
        self.embed_dropout = config.embed_dropout
        self.layers = nn.ModuleList([MultiStillFusionLayer(config) for _ in range(config.num_fusion_layers)])
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def _embed(self, states: torch.Tensor) -> torch.Tensor:
        positions = sinusoidal_positions(states.shape[1], states.shape[2], states.device, states.dtype)
        states = self.embed_scale * states + positions[None]
        return F.dropout(states, p=self.embed_dropout, training=self.training)

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor,
        key_value_states: torch.Tensor | None = None,
        key_value_mask: torch.Tensor | None = None,
        output_attentions: bool = False,
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
        hidden_states = self._embed(hidden_states)
        if key_value_states is not None:
            key_value_states = self._embed(key_value_states)
        attentions: tuple[torch.Tensor, ...] = ()
        for layer in self.layers:
            hidden_states, weights = layer(
                hidden_states, attention_mask, key_value_states, key_value_mask, output_attentions
            )
            if output_attentions:
                attentions += (weights,)
        return self.layer_norm(hidden_states), attentions


class MultiStillClassificationHead(nn.Module):
    """Dropout -> Linear(pooled, 512) -> GELU -> Dropout -> Linear(512, num_labels); with
    ``classifier_hidden_size=0`` a linear classifier, Dropout -> Linear(pooled, num_labels) (the recipe's: on
    about a thousand utterances it trains to the regularised optimum that logistic regression reaches)."""

    def __init__(self, config: MultiStillConfig):
        super().__init__()
        self.dropout = nn.Dropout(config.classifier_dropout)
        width = config.classifier_hidden_size
        self.dense = nn.Linear(config.pooled_size, width) if width else None
        self.out_proj = nn.Linear(width or config.pooled_size, config.num_labels)

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        hidden = self.dropout(pooled)
        if self.dense is not None:
            hidden = self.dropout(F.gelu(self.dense(hidden)))
        return self.out_proj(hidden)


# --------------------------------------------------------------------------------------------- fbank encoder
class MultiStillFbankFeatureEncoder(nn.Module):
    """Log-mel filterbank (25 ms / 10 ms at 16 kHz) with per-utterance mean normalisation, then strided
    ``Conv1d + GELU`` subsampling. Padded samples/frames are zeroed, so the valid frames never see padding."""

    def __init__(self, config: MultiStillFbankConfig):
        super().__init__()
        self.n_fft = config.n_fft
        self.hop_length = config.hop_length
        self.register_buffer("window", self.default_window(config), persistent=False)
        self.register_buffer("mel_filters", self.default_mel_filters(config), persistent=False)
        self.kernel_sizes = list(config.conv_kernel_sizes)
        self.strides = list(config.conv_strides)
        channels = [config.num_mel_bins] + [config.conv_channels] * len(self.kernel_sizes)
        self.conv_layers = nn.ModuleList(
            nn.Conv1d(channels[i], channels[i + 1], kernel_size=k, stride=s, padding=k // 2)
            for i, (k, s) in enumerate(zip(self.kernel_sizes, self.strides, strict=True))
        )

    @staticmethod
    def default_window(config: MultiStillFbankConfig) -> torch.Tensor:
        return torch.hann_window(config.n_fft, periodic=True, dtype=torch.float32, device="cpu")

    @staticmethod
    def default_mel_filters(config: MultiStillFbankConfig) -> torch.Tensor:
        filters = mel_filter_bank(
            num_frequency_bins=config.n_fft // 2 + 1,
            num_mel_filters=config.num_mel_bins,
            min_frequency=0.0,
            max_frequency=config.sampling_rate / 2,
            sampling_rate=config.sampling_rate,
            norm="slaney",
            mel_scale="slaney",
        )
        return torch.tensor(filters, dtype=torch.float32, device="cpu")

    def output_lengths(self, sample_lengths: torch.Tensor) -> torch.Tensor:
        """Number of valid encoder frames for each number of valid samples."""
        lengths = torch.div(sample_lengths - self.n_fft, self.hop_length, rounding_mode="floor") + 1
        lengths = lengths.clamp_min(1)
        for k, s in zip(self.kernel_sizes, self.strides, strict=True):
            lengths = torch.div(lengths + 2 * (k // 2) - k, s, rounding_mode="floor") + 1
        return lengths

    def forward(self, input_values: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        waveform = input_values.float() * attention_mask.float()
        if waveform.shape[-1] < self.n_fft:
            waveform = F.pad(waveform, (0, self.n_fft - waveform.shape[-1]))
        spec = torch.stft(
            waveform, self.n_fft, self.hop_length, window=self.window.float(), center=False, return_complex=True
        )
        power = spec.real.pow(2) + spec.imag.pow(2)  # [B, F, N]
        log_mel = torch.matmul(power.transpose(1, 2), self.mel_filters.float()).clamp_min(1e-10).log()  # [B, N, M]
        lengths = torch.div(attention_mask.sum(-1) - self.n_fft, self.hop_length, rounding_mode="floor") + 1
        lengths = lengths.clamp_min(1)
        mask = torch.arange(log_mel.shape[1], device=log_mel.device)[None, :] < lengths[:, None]
        weights = mask.unsqueeze(-1).float()
        mean = (log_mel * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1.0)
        features = ((log_mel - mean) * weights).transpose(1, 2)  # [B, M, N]
        features = features.to(self.conv_layers[0].weight.dtype)
        for conv, k, s in zip(self.conv_layers, self.kernel_sizes, self.strides, strict=True):
            features = F.gelu(conv(features))
            lengths = torch.div(lengths + 2 * (k // 2) - k, s, rounding_mode="floor") + 1
            mask = torch.arange(features.shape[-1], device=features.device)[None, :] < lengths[:, None]
            features = features * mask[:, None, :].to(features.dtype)
        return features.transpose(1, 2), mask


class MultiStillFbankFeatureProjection(nn.Module):
    """LayerNorm + Linear to the encoder width (mirrors wav2vec2's ``feature_projection``)."""

    def __init__(self, config: MultiStillFbankConfig):
        super().__init__()
        self.layer_norm = nn.LayerNorm(config.conv_channels, eps=config.layer_norm_eps)
        self.projection = nn.Linear(config.conv_channels, config.hidden_size)
        self.dropout = nn.Dropout(config.feat_proj_dropout)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.projection(self.layer_norm(features)))


class MultiStillFbankTransformer(nn.Module):
    """Positions + ``num_hidden_layers`` wav2vec2 stable-layer-norm layers + final LayerNorm.

    Parameter names equal those of ``Wav2Vec2Model.encoder`` (``layers.{i}.*``, ``layer_norm``,
    ``pos_conv_embed`` when ``position_embedding="conv"``) so teacher layers can be copied in.
    """

    def __init__(self, config: MultiStillFbankConfig):
        super().__init__()
        self.config = config
        self.pos_conv_embed = Wav2Vec2PositionalConvEmbedding(config) if config.position_embedding == "conv" else None
        self.dropout = nn.Dropout(config.hidden_dropout)
        self.layers = nn.ModuleList(
            [Wav2Vec2EncoderLayerStableLayerNorm(config) for _ in range(config.num_hidden_layers)]
        )
        self.layer_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self, hidden_states: torch.Tensor, mask: torch.Tensor, output_hidden_states: bool = False
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, ...] | None]:
        hidden_states = hidden_states * mask.unsqueeze(-1).to(hidden_states.dtype)
        if self.pos_conv_embed is not None:
            hidden_states = hidden_states + self.pos_conv_embed(hidden_states)
        else:
            positions = sinusoidal_positions(
                hidden_states.shape[1], hidden_states.shape[2], hidden_states.device, hidden_states.dtype
            )
            hidden_states = hidden_states + positions[None]
        hidden_states = self.dropout(hidden_states)
        attention_mask = create_bidirectional_mask(
            config=self.config, inputs_embeds=hidden_states, attention_mask=mask.long()
        )
        all_states: tuple[torch.Tensor, ...] = ()
        for layer in self.layers:
            if output_hidden_states:
                all_states += (hidden_states,)
            hidden_states = layer(hidden_states, attention_mask=attention_mask)
        hidden_states = self.layer_norm(hidden_states)
        if output_hidden_states:
            all_states += (hidden_states,)
        return hidden_states, all_states if output_hidden_states else None


class MultiStillFbankEncoder(PreTrainedModel):
    """The light student's audio encoder, built like any encoder with ``AutoModel.from_config``.

    Raw 16 kHz ``input_values`` (+ sample ``attention_mask``) -> log-mel filterbank -> strided convolutions ->
    projection -> wav2vec2 layers; ``last_hidden_state`` ``[B, T, hidden_size]`` at ``config.samples_per_frame``
    samples per frame. ``_get_feat_extract_output_lengths`` gives the valid frames, as for the wav2vec2 family.
    """

    config_class = MultiStillFbankConfig
    config: MultiStillFbankConfig
    base_model_prefix = "multistill_fbank"
    main_input_name = "input_values"
    input_modalities = ("audio",)
    supports_gradient_checkpointing = False
    _supports_sdpa = True
    _no_split_modules = ["Wav2Vec2EncoderLayerStableLayerNorm"]
    #: Parameter prefixes with no counterpart in a wav2vec2 teacher (never copied from one).
    front_end_prefixes: tuple[str, ...] = ("feature_extractor.", "feature_projection.")

    def __init__(self, config: MultiStillFbankConfig):
        super().__init__(config)
        self.feature_extractor = MultiStillFbankFeatureEncoder(config)
        self.feature_projection = MultiStillFbankFeatureProjection(config)
        self.encoder = MultiStillFbankTransformer(config)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, MultiStillFbankFeatureEncoder):
            init.copy_(module.window, MultiStillFbankFeatureEncoder.default_window(self.config))
            init.copy_(module.mel_filters, MultiStillFbankFeatureEncoder.default_mel_filters(self.config))
        elif isinstance(module, Wav2Vec2PositionalConvEmbedding):
            std = 2 * math.sqrt(1 / (module.conv.kernel_size[0] * module.conv.in_channels))
            init.normal_(module.conv.weight, mean=0.0, std=std)
            init.zeros_(module.conv.bias)

    def _get_feat_extract_output_lengths(self, input_lengths: torch.Tensor) -> torch.Tensor:
        """Valid encoder frames for each number of valid input samples."""
        return self.feature_extractor.output_lengths(input_lengths)

    def forward(
        self,
        input_values: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> BaseModelOutput | tuple:
        """``[B, S]`` waveform (+ ``[B, S]`` sample mask) -> ``last_hidden_state`` ``[B, T, H]`` (padded frames
        are computed but never attended to; see ``_get_feat_extract_output_lengths``)."""
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None
                                    else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        if attention_mask is None:
            attention_mask = torch.ones(input_values.shape, dtype=torch.long, device=input_values.device)
        features, mask = self.feature_extractor(input_values, attention_mask.to(input_values.device))
        hidden_states, all_states = self.encoder(self.feature_projection(features), mask, output_hidden_states)
        output = BaseModelOutput(last_hidden_state=hidden_states, hidden_states=all_states)
        return output if return_dict else output.to_tuple()


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


# --------------------------------------------------------------------------------------------- models
class MultiStillPreTrainedModel(PreTrainedModel):
    """Weight initialisation, loading, encoder freezing and the ``auto_map`` shared by the Multi-Still models."""

    config_class = MultiStillConfig
    config: MultiStillConfig
    base_model_prefix = "multistill"
    main_input_name = "input_values"
    supports_gradient_checkpointing = False
    #: the loss is a per-batch mean: the Trainer must scale it for gradient accumulation itself
    accepts_loss_kwargs = False
    _supports_sdpa = True
    _no_split_modules = ["MultiStillFusionLayer", "Wav2Vec2EncoderLayerStableLayerNorm", "WhisperEncoderLayer"]

    @classmethod
    def from_pretrained(cls, *args: Any, **kwargs: Any):
        """``PreTrainedModel.from_pretrained`` of safetensors weights only (a pickle ``.bin`` can run code; pass
        ``use_safetensors=False`` to load one you trust), then
        re-apply the config's frozen encoders (loading re-creates the parameters, which resets ``requires_grad``).

        A local folder is checked first (:func:`check_saved_folder`): a missing ``config.json``, pickle-only or
        damaged weights, or a config that does not match them is one ``OSError``/``ValueError`` naming the file.
        """
        source = args[0] if args else kwargs.get("pretrained_model_name_or_path")
        if kwargs.setdefault("use_safetensors", True) and isinstance(source, (str, os.PathLike)):
            folder = os.path.normpath(os.path.join(os.fspath(source), kwargs.get("subfolder") or "."))
            if os.path.isdir(folder):
                config = kwargs.get("config")
                if not isinstance(config, PreTrainedConfig):
                    try:
                        config = cls.config_class.from_pretrained(folder)
                    except ValueError as err:  # a value the config refuses: name the file
                        raise ValueError(f"{os.path.join(folder, 'config.json')}: {err}") from err
                check_saved_folder(folder, cls, config, check_shapes=not kwargs.get("ignore_mismatched_sizes"))
        model = super().from_pretrained(*args, **kwargs)
        (model[0] if isinstance(model, tuple) else model)._apply_frozen_encoders()  # tuple: output_loading_info
        return model

    def _base(self) -> MultiStillModel:
        return getattr(self, self.base_model_prefix, self)

    def set_encoders_frozen(self, frozen: bool = True, modalities: str | list[str] | None = None) -> None:
        """Freeze (no gradients, always eval mode) or unfreeze the encoders of ``modalities`` (default: both)
        and record it in ``config.freeze_audio_encoder`` / ``freeze_text_encoder`` (saved with the model)."""
        chosen = _normalize_modalities(modalities) if modalities is not None else list(ALLOWED_MODALITIES)
        for modality in chosen:
            setattr(self.config, f"freeze_{modality}_encoder", bool(frozen))
        self._apply_frozen_encoders()

    def _apply_frozen_encoders(self) -> None:
        """Set ``requires_grad`` / eval mode of the encoders from ``config.frozen_modalities``. Parameters an
        encoder keeps fixed itself (Whisper's sinusoidal positions) stay fixed when it is trained."""
        base = self._base()
        frozen = self.config.frozen_modalities
        for modality, encoder in base.encoders().items():
            fixed = base.fixed_encoder_parameters[modality]
            for name, parameter in encoder.named_parameters():
                parameter.requires_grad_(modality not in frozen and name not in fixed)
            if modality in frozen:
                encoder.eval()


class MultiStillModel(MultiStillPreTrainedModel):
    """Encoders + fusion. ``forward`` returns :class:`MultiStillModelOutput` (``pooled_features``)."""

    _keys_to_ignore_on_load_unexpected = [r"^classifier\."]

    def __init__(self, config: MultiStillConfig, audio_encoder: PreTrainedModel | None = None,
                 text_encoder: PreTrainedModel | None = None):
        """``audio_encoder``/``text_encoder``: loaded encoders to use as they are (they must match
        ``config.audio_config``/``text_config``); the others are built from the config, randomly initialised."""
        super().__init__(config)
        encoders = {"audio": audio_encoder, "text": text_encoder}
        #: per modality, the encoder parameters that the encoder itself keeps fixed (never trained)
        self.fixed_encoder_parameters: dict[str, frozenset[str]] = {}
        for modality in config.modalities:
            encoder_config = getattr(config, f"{modality}_config")
            given = encoders[modality] is not None
            if not given:
                encoders[modality] = build_encoder(encoder_config)
            with torch.device("meta"):  # loading resets requires_grad: ask an empty encoder what it keeps fixed
                probe = build_encoder(encoder_config) if given else encoders[modality]
            self.fixed_encoder_parameters[modality] = frozenset(
                name for name, p in probe.named_parameters() if not p.requires_grad)
        self.audio_encoder: PreTrainedModel | None = encoders["audio"] if config.use_audio else None
        self.text_encoder: PreTrainedModel | None = encoders["text"] if config.use_text else None
        if config.pooled_fusion:
            self.branch_pooling = MultiStillPooledFusion(config)
            self.fusion_names = []
        else:
            # Present in every variant, as in the original (it is part of the paper's parameter counts).
            self.audio_projection = nn.Conv1d(config.audio_hidden_size, config.hidden_size, kernel_size=1, bias=False)
            if config.use_text and config.text_hidden_size != config.hidden_size:
                self.text_projection = nn.Conv1d(config.text_hidden_size, config.hidden_size, kernel_size=1,
                                                 bias=False)
            else:
                self.text_projection = None
            self.fusion_names = self._fusion_names(config)
            for name in self.fusion_names:
                setattr(self, name, MultiStillFusionEncoder(config))
        self.context = MultiStillContext(config) if config.context_size else None
        self.post_init()
        self._apply_frozen_encoders()

    @staticmethod
    def _fusion_names(config: MultiStillConfig) -> list[str]:
        if config.use_audio and config.use_text:
            return ["audio_to_text", "text_to_audio"]
        return ["audio_self_attention"] if config.use_audio else ["text_self_attention"]

    def encoders(self) -> dict[str, PreTrainedModel]:
        """The encoders present, by modality (``{"audio": ..., "text": ...}``)."""
        pairs = (("audio", self.audio_encoder), ("text", self.text_encoder))
        return {modality: encoder for modality, encoder in pairs if encoder is not None}

    # ------------------------------------------------------------------ freezing
    def train(self, mode: bool = True) -> MultiStillModel:
        super().train(mode)
        for modality, encoder in self.encoders().items():
            if modality in self.config.frozen_modalities:
                encoder.eval()
        return self

    def _encoder_grad(self, modality: str) -> bool:
        return torch.is_grad_enabled() and modality not in self.config.frozen_modalities

    # ------------------------------------------------------------------ encoders
    @property
    def audio_input_name(self) -> str:
        """``"input_values"`` (raw waveform) or ``"input_features"`` (log-mel, Whisper): what the audio encoder takes."""
        if self.audio_encoder is None:
            raise ValueError(f"This model has no audio branch (modalities={self.config.modalities}).")
        return self.audio_encoder.main_input_name

    def encode_audio(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """Audio -> audio hidden states ``[B, T, H]`` and frame mask ``[B, T]``; these are the tensors to cache.

        Waveform encoders (wav2vec2 family, the fbank front end) take ``input_values`` ``[B, S]`` (16 kHz) with a
        sample mask; log-mel encoders (Whisper) take ``input_features`` ``[B, n_mels, N]`` (padded to the 30 s
        window, or to the longest clip of the batch) with a mel-frame mask; Whisper runs at the input's length
        (:func:`whisper_encoder_states`). The valid frames come from the encoder's
        ``_get_feat_extract_output_lengths``; the output is cut to the longest valid length and to
        ``config.max_audio_frames``. With the pooled fusion the result is every layer's frame mean and standard
        deviation, ``[B, layers, 2H]`` (:func:`.modeling_heads.layer_statistics`), with an all-ones mask.
        """
        name = self.audio_input_name
        given = {"input_values": input_values, "input_features": input_features}
        inputs = given.get(name)
        if inputs is None:
            other = [key for key, value in given.items() if value is not None and key != name]
            raise ValueError(
                f"The audio encoder ({type(self.audio_encoder).__name__}) takes `{name}`"
                + (f", not `{other[0]}`" if other else "")
                + "; prepare the audio with the model's MultiStillProcessor."
            )
        ndim = 2 if name == "input_values" else 3
        if inputs.dim() == ndim - 1:
            inputs = inputs.unsqueeze(0)
        if inputs.dim() != ndim:
            raise ValueError(f"`{name}` must have {ndim} dimensions (batch first), got shape {tuple(inputs.shape)}.")
        if attention_mask is None:
            attention_mask = torch.ones(inputs.shape[0], inputs.shape[-1], dtype=torch.long, device=inputs.device)
        attention_mask = attention_mask.to(inputs.device).long()
        if attention_mask.dim() == 1:
            attention_mask = attention_mask.unsqueeze(0)
        _check_mask(attention_mask, "attention_mask")
        frames = self.audio_encoder._get_feat_extract_output_lengths(attention_mask.sum(-1))
        if not _is_tracing() and bool((frames < 1).any()):
            raise ValueError(
                "An utterance is shorter than the audio encoder's receptive field (400 samples = 25 ms at 16 kHz "
                "for wav2vec2), so it gives no frame; pad it (the MultiStillProcessor does)."
            )
        dtype = next(self.audio_encoder.parameters()).dtype
        all_layers = self.config.pooled_fusion
        with torch.set_grad_enabled(self._encoder_grad("audio")):
            if is_whisper_encoder(self.audio_encoder):
                states = whisper_encoder_states(self.audio_encoder, inputs.to(dtype), attention_mask)
            else:
                outputs = self.audio_encoder(**{name: inputs.to(dtype)}, attention_mask=attention_mask,
                                             output_hidden_states=all_layers)
                states = list(outputs.hidden_states) if all_layers else [outputs.last_hidden_state]
        keep = min(states[-1].shape[1], self.config.max_audio_frames)
        if not _is_tracing():
            keep = min(keep, int(frames.max()))
        states = [state[:, :keep] for state in states]
        length = states[-1].shape[1]  # a traced size (ONNX export), unlike the Python int `keep`
        mask = torch.arange(length, device=states[-1].device)[None, :] < frames.to(states[-1].device)[:, None]
        if all_layers:  # what the pooled fusion reads: [B, layers, 2H] statistics, every "frame" valid
            statistics = layer_statistics(states, mask)
            return statistics.to(dtype), torch.ones(statistics.shape[:2], dtype=torch.long, device=mask.device)
        return states[-1], mask.long()

    def encode_text(
        self,
        input_ids: torch.Tensor,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """Token ids ``[B, L]`` (+ mask) -> text hidden states ``[B, L', H]`` and token mask, ``L' <= max_text_tokens``."""
        if self.text_encoder is None:
            raise ValueError(f"This model has no text branch (modalities={self.config.modalities}).")
        if input_ids.dim() == 1:
            input_ids = input_ids.unsqueeze(0)
        limit = self.config.max_text_tokens
        if text_attention_mask is None:
            text_attention_mask = torch.ones_like(input_ids)
        text_attention_mask = text_attention_mask.to(input_ids.device).long()[:, :limit]
        _check_mask(text_attention_mask, "text_attention_mask")
        input_ids = input_ids[:, :limit]
        kwargs = {}
        if token_type_ids is not None:
            kwargs["token_type_ids"] = token_type_ids[:, :limit]
        with torch.set_grad_enabled(self._encoder_grad("text")):
            hidden = self.text_encoder(input_ids=input_ids, attention_mask=text_attention_mask, **kwargs)
            hidden = hidden.last_hidden_state
        return hidden, text_attention_mask

    def _resolve_audio(self, input_values, attention_mask, input_features, audio_hidden_states, audio_hidden_mask):
        if audio_hidden_states is not None:
            hidden = audio_hidden_states[:, : self.config.max_audio_frames]
            if audio_hidden_mask is None:
                mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
            else:
                mask = audio_hidden_mask.to(hidden.device).long()[:, : self.config.max_audio_frames]
            _check_mask(mask, "audio_hidden_mask")
        elif input_values is not None or input_features is not None:
            hidden, mask = self.encode_audio(input_values, attention_mask, input_features)
        else:
            raise ValueError(
                f"This model (modalities={self.config.modalities}) needs audio: pass `{self.audio_input_name}` "
                "(from the MultiStillProcessor, with `attention_mask`) or precomputed `audio_hidden_states` "
                "(with `audio_hidden_mask`)."
            )
        if hidden.shape[-1] != self.config.audio_hidden_size:
            raise ValueError(
                f"audio hidden states have width {hidden.shape[-1]}, expected {self.config.audio_hidden_size}."
            )
        return hidden, mask

    def _resolve_text(self, input_ids, text_attention_mask, token_type_ids, text_hidden_states, text_hidden_mask):
        if text_hidden_states is not None:
            hidden = text_hidden_states[:, : self.config.max_text_tokens]
            if text_hidden_mask is None:
                mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
            else:
                mask = text_hidden_mask.to(hidden.device).long()[:, : self.config.max_text_tokens]
            _check_mask(mask, "text_hidden_mask")
        elif input_ids is not None:
            hidden, mask = self.encode_text(input_ids, text_attention_mask, token_type_ids)
        else:
            raise ValueError(
                f"This model (modalities={self.config.modalities}) needs text: pass `input_ids` "
                "(with `text_attention_mask`) or precomputed `text_hidden_states` (with `text_hidden_mask`)."
            )
        if hidden.shape[-1] != self.config.text_hidden_size:
            raise ValueError(
                f"text hidden states have width {hidden.shape[-1]}, expected {self.config.text_hidden_size}."
            )
        return hidden, mask

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        audio_hidden_states: torch.Tensor | None = None,
        audio_hidden_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        text_hidden_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        history_index: torch.Tensor | None = None,
        history_features: torch.Tensor | None = None,
        history_mask: torch.Tensor | None = None,
        history_speaker: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultiStillModelOutput | tuple:
        """Raw inputs (``input_values`` or ``input_features`` with ``attention_mask``, as the audio encoder takes
        them; ``input_ids``/``text_attention_mask``) or cached encoder outputs (``*_hidden_states``/
        ``*_hidden_mask``); inputs of modalities the model does not use are ignored. An unknown argument
        raises ``TypeError``.

        Conversation context (``config.context_size > 0``), newest previous utterance first, ``[B, K]``:
        ``history_index`` points into the rows of this call (rows ``B..`` may be history only: the output
        has ``B = len(history_index)`` rows), or ``history_features`` ``[B, K, P]`` gives the previous
        utterances' ``utterance_features`` with ``history_mask`` (1 = present); ``history_speaker``: 0 unknown,
        1 same speaker, 2 other speaker. No history: the utterance opens the conversation. Longer histories
        are cut to the newest ``context_size``."""
        output_attentions = bool(output_attentions)
        output_hidden_states = bool(output_hidden_states if output_hidden_states is not None
                                    else self.config.output_hidden_states)
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        audio = text = None
        if self.config.use_audio:
            audio = self._resolve_audio(input_values, attention_mask, input_features, audio_hidden_states,
                                        audio_hidden_mask)
        if self.config.use_text:
            text = self._resolve_text(input_ids, text_attention_mask, token_type_ids, text_hidden_states,
                                      text_hidden_mask)
        if audio is not None and text is not None and audio[0].shape[0] != text[0].shape[0]:
            raise ValueError(f"audio batch ({audio[0].shape[0]}) and text batch ({text[0].shape[0]}) differ.")
        if self.config.pooled_fusion:
            branches = self.branch_pooling(audio, text)
            utterance = torch.cat([branches[m] for m in self.config.modalities], dim=-1)
            fused, attentions = (), ()
        else:
            utterance, fused, attentions = self._cross_attention(audio, text, output_attentions)
        pooled, utterance = self._with_context(utterance, history_index, history_features, history_mask,
                                               history_speaker)
        rows = slice(0, utterance.shape[0])
        output = MultiStillModelOutput(
            pooled_features=pooled,
            utterance_features=utterance,
            fused_hidden_states=fused if output_hidden_states else None,
            audio_hidden_states=audio[0][rows] if output_hidden_states and audio is not None else None,
            audio_hidden_mask=audio[1][rows] if output_hidden_states and audio is not None else None,
            text_hidden_states=text[0][rows] if output_hidden_states and text is not None else None,
            text_hidden_mask=text[1][rows] if output_hidden_states and text is not None else None,
            attentions=attentions if output_attentions else None,
        )
        return output if return_dict else output.to_tuple()

    def _with_context(self, utterance: torch.Tensor, history_index: torch.Tensor | None,
                      history_features: torch.Tensor | None, history_mask: torch.Tensor | None,
                      history_speaker: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(classifier input, utterance features)`` of the ``B`` current rows (see :meth:`forward`)."""
        if self.context is None:
            if history_index is not None:
                utterance = utterance[: history_index.shape[0]]
            return utterance, utterance
        size = self.config.context_size
        if history_index is not None:
            history_index = history_index.to(utterance.device).long()[:, :size]
            current = utterance[: history_index.shape[0]]
            history_mask = history_index >= 0
            if bool((history_index >= utterance.shape[0]).any()):
                raise ValueError(f"history_index points past the {utterance.shape[0]} rows of this call.")
            history = utterance[history_index.clamp_min(0)] * history_mask.unsqueeze(-1).to(utterance.dtype)
        elif history_features is not None:
            current = utterance
            history = history_features.to(utterance.device, utterance.dtype)[:, :size]
            if history.dim() != 3 or history.shape[0] != current.shape[0] or history.shape[2] != current.shape[1]:
                raise ValueError(f"history_features must have shape [{current.shape[0]}, K, {current.shape[1]}], "
                                 f"got {tuple(history_features.shape)}.")
            history_mask = (torch.ones(history.shape[:2], device=history.device) if history_mask is None
                            else history_mask.to(history.device)[:, :size])
        else:  # the first utterance of a conversation
            current = utterance
            history = utterance.new_zeros(utterance.shape[0], 1, utterance.shape[1])
            history_mask = torch.zeros(utterance.shape[0], 1, device=utterance.device)
        if history_speaker is None:
            history_speaker = torch.zeros(history.shape[:2], dtype=torch.long, device=history.device)
        history_speaker = history_speaker.to(history.device)[:, : history.shape[1]]
        context = self.context(history, history_mask, history_speaker)
        return torch.cat([current, context], dim=-1), current

    def _cross_attention(self, audio, text, output_attentions: bool):
        """The paper's fusion: ``(pooled [B, P], fused states, attention weights)``."""
        fusion_dtype = self.audio_projection.weight.dtype
        projected: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        if audio is not None:
            states = self.audio_projection(audio[0].to(fusion_dtype).transpose(1, 2)).transpose(1, 2)
            projected["audio"] = (states, audio[1])
        if text is not None:
            states = text[0].to(fusion_dtype)
            if self.text_projection is not None:
                states = self.text_projection(states.transpose(1, 2)).transpose(1, 2)
            projected["text"] = (states, text[1])

        pooled, fused, attentions = [], (), ()
        for name in self.fusion_names:
            query, key_value, pooling = FUSION_ENCODERS[name]
            q_states, q_mask = projected[query]
            kv_states, kv_mask = projected[key_value] if key_value is not None else (None, None)
            hidden, weights = getattr(self, name)(q_states, q_mask, kv_states, kv_mask, output_attentions)
            fused += (hidden,)
            attentions += weights
            pooled.append(masked_mean(hidden, q_mask) if pooling == "mean" else hidden[:, 0])
        return torch.cat(pooled, dim=-1), fused, attentions


class MultiStillForEmotionClassification(MultiStillPreTrainedModel):
    """Multi-Still teacher or student: :class:`MultiStillModel` + classification head (7 emotions).

    ``labels`` may be class ids (``LongTensor [B]``) or vote distributions (``FloatTensor [B, num_labels]``,
    rows are normalised to sum to 1); both give a cross-entropy loss.
    """

    def __init__(self, config: MultiStillConfig, audio_encoder: PreTrainedModel | None = None,
                 text_encoder: PreTrainedModel | None = None):
        """See :class:`MultiStillModel` (loaded encoders are used as they are, not copied)."""
        super().__init__(config)
        self.multistill = MultiStillModel(config, audio_encoder, text_encoder)
        self.classifier = MultiStillClassificationHead(config)
        self.post_init()

    # convenience pass-throughs
    def encode_audio(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.LongTensor]:
        """See :meth:`MultiStillModel.encode_audio`."""
        return self.multistill.encode_audio(input_values, attention_mask, input_features)

    @property
    def audio_input_name(self) -> str:
        """See :attr:`MultiStillModel.audio_input_name`."""
        return self.multistill.audio_input_name

    def encode_text(self, input_ids: torch.Tensor, text_attention_mask: torch.Tensor | None = None,
                    token_type_ids: torch.Tensor | None = None):
        """See :meth:`MultiStillModel.encode_text`."""
        return self.multistill.encode_text(input_ids, text_attention_mask, token_type_ids)

    def forward(
        self,
        input_values: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        input_ids: torch.Tensor | None = None,
        text_attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        audio_hidden_states: torch.Tensor | None = None,
        audio_hidden_mask: torch.Tensor | None = None,
        text_hidden_states: torch.Tensor | None = None,
        text_hidden_mask: torch.Tensor | None = None,
        input_features: torch.Tensor | None = None,
        history_index: torch.Tensor | None = None,
        history_features: torch.Tensor | None = None,
        history_mask: torch.Tensor | None = None,
        history_speaker: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        output_attentions: bool | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
    ) -> MultiStillOutput | tuple:
        """Logits for raw inputs or cached encoder outputs (see :meth:`MultiStillModel.forward`), and the loss
        when ``labels`` are given. An unknown argument (a typo such as ``labelz=``) raises ``TypeError``."""
        return_dict = return_dict if return_dict is not None else self.config.return_dict
        base = self.multistill(
            input_values=input_values,
            attention_mask=attention_mask,
            input_ids=input_ids,
            text_attention_mask=text_attention_mask,
            token_type_ids=token_type_ids,
            audio_hidden_states=audio_hidden_states,
            audio_hidden_mask=audio_hidden_mask,
            text_hidden_states=text_hidden_states,
            text_hidden_mask=text_hidden_mask,
            input_features=input_features,
            history_index=history_index,
            history_features=history_features,
            history_mask=history_mask,
            history_speaker=history_speaker,
            output_attentions=output_attentions,
            output_hidden_states=output_hidden_states,
            return_dict=True,
        )
        logits = self.classifier(base.pooled_features)
        loss = self.compute_loss(logits, labels) if labels is not None else None
        output = MultiStillOutput(
            loss=loss,
            logits=logits,
            pooled_features=base.pooled_features,
            utterance_features=base.utterance_features,
            fused_hidden_states=base.fused_hidden_states,
            audio_hidden_states=base.audio_hidden_states,
            audio_hidden_mask=base.audio_hidden_mask,
            text_hidden_states=base.text_hidden_states,
            text_hidden_mask=base.text_hidden_mask,
            attentions=base.attentions,
        )
        return output if return_dict else output.to_tuple()

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """See :func:`classification_loss`."""
        return classification_loss(logits, labels)

    # ------------------------------------------------------------------ construction helpers
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
          plus the final LayerNorms, the audio/text projections and the classifier where shapes match.

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
        for module_name in ("audio_projection", "text_projection"):
            _copy_matching(getattr(student_base, module_name), getattr(teacher_base, module_name))
        _copy_matching(self.classifier, teacher.classifier)
        return report


# --------------------------------------------------------------------------------------------- weight copying
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


#: The name transformers' task models use (``...ForSequenceClassification``); the same class.
MultiStillForSequenceClassification = MultiStillForEmotionClassification

MultiStillFbankEncoder.register_for_auto_class("AutoModel")
MultiStillNgramEncoder.register_for_auto_class("AutoModel")
MultiStillModel.register_for_auto_class("AutoModel")
MultiStillForEmotionClassification.register_for_auto_class("AutoModelForAudioClassification")

__all__ = [
    "MultiStillFbankEncoder",
    "MultiStillForEmotionClassification",
    "MultiStillForSequenceClassification",
    "MultiStillModel",
    "MultiStillModelOutput",
    "MultiStillNgramEncoder",
    "MultiStillOutput",
    "MultiStillPreTrainedModel",
    "build_encoder",
    "classification_loss",
    "encoder_only",
    "masked_mean",
    "select_teacher_layers",
    "sinusoidal_positions",
    "whisper_encoder_states",
]
