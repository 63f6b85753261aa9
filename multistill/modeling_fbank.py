"""The light student's audio encoder: a log-mel filterbank front end + wav2vec2 stable-layer-norm layers.

:class:`MultiStillFbankEncoder` is a ``PreTrainedModel`` of its own (config :class:`MultiStillFbankConfig`),
built through ``AutoModel`` like every other encoder; its layers carry wav2vec2's parameter names so that a
wav2vec2 teacher's layers can be copied in. Its own file, like the recipe's text encoder in
:mod:`.modeling_ngram`, because the fusion model only holds it as one encoder among others.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.audio_utils import mel_filter_bank
from transformers.masking_utils import create_bidirectional_mask
from transformers.modeling_outputs import BaseModelOutput
from transformers.models.wav2vec2.modeling_wav2vec2 import (
    Wav2Vec2EncoderLayerStableLayerNorm,
    Wav2Vec2PositionalConvEmbedding,
)

from .configuration_multistill import MultiStillFbankConfig
from .modeling_cross_attention import sinusoidal_positions


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


MultiStillFbankEncoder.register_for_auto_class("AutoModel")

__all__ = [
    "MultiStillFbankEncoder",
    "MultiStillFbankFeatureEncoder",
    "MultiStillFbankFeatureProjection",
    "MultiStillFbankTransformer",
]
