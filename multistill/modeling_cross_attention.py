"""The paper's fusion: a MulT-style cross-modal transformer (Tsai et al., 2019).

Audio and text states, projected to ``hidden_size``, attend to each other (bimodal: audio -> text and
text -> audio) or to themselves (the unimodal students); each fusion encoder is pooled and the poolings are
concatenated (:func:`cross_modal_fusion`). Kept apart from :mod:`.modeling_multistill` so that the model file
holds the models and this one the fusion layers they are made of.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .configuration_multistill import MultiStillConfig

#: Names of the fusion encoders, by role: (query modality, key/value modality, pooling).
FUSION_ENCODERS: dict[str, tuple[str, str | None, str]] = {
    "audio_to_text": ("audio", "text", "mean"),  # bimodal: audio queries attend to text, mean over audio
    "text_to_audio": ("text", "audio", "first"),  # bimodal: text queries attend to audio, first token
    "audio_self_attention": ("audio", None, "first"),  # audio-only student
    "text_self_attention": ("text", None, "mean"),  # text-only student
}


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



def cross_modal_fusion(
    encoders: dict[str, MultiStillFusionEncoder],
    projected: dict[str, tuple[torch.Tensor, torch.Tensor]],
    output_attentions: bool,
) -> tuple[torch.Tensor, tuple[torch.Tensor, ...], tuple[torch.Tensor, ...]]:
    """Run the fusion ``encoders`` (by name, see :data:`FUSION_ENCODERS`) on the ``projected`` ``(states, mask)``
    of each modality: ``(pooled [B, P], fused states, attention weights)``."""
    pooled, fused, attentions = [], (), ()
    for name, encoder in encoders.items():
        query, key_value, pooling = FUSION_ENCODERS[name]
        q_states, q_mask = projected[query]
        kv_states, kv_mask = projected[key_value] if key_value is not None else (None, None)
        hidden, weights = encoder(q_states, q_mask, kv_states, kv_mask, output_attentions)
        fused += (hidden,)
        attentions += weights
        pooled.append(masked_mean(hidden, q_mask) if pooling == "mean" else hidden[:, 0])
    return torch.cat(pooled, dim=-1), fused, attentions


__all__ = [
    "FUSION_ENCODERS",
    "MultiStillAttention",
    "MultiStillFusionEncoder",
    "MultiStillFusionLayer",
    "cross_modal_fusion",
    "masked_mean",
    "sinusoidal_positions",
]
