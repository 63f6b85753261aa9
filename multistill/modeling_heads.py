"""Heads over pooled branches: layer statistics, concatenation or late fusion, and conversation context.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

The paper's head fuses the two encoders' frame sequences with cross-attention (``fusion_type="cross_attention"``,
:mod:`.modeling_multistill`). On about a thousand training utterances a head that reads one pooled vector per
branch learns better (measured in README, "Models worth using"):

* audio: every encoder layer's frames pooled to their mean and standard deviation (:func:`layer_statistics`,
  what is cached), mixed by learnt softmax weights over the layers (SUPERB-style; ``audio_layer_mix="last"``: the
  last layer's alone), normalised, scaled by ``audio_weight`` (how cheaply the penalised model may lean on the
  voice) and projected;
* text: the masked mean of the text encoder's states (for the n-gram encoder, the TF-IDF-weighted bag), projected;
* ``fusion_type="concat"``: the projected branches concatenated.

:class:`MultiStillContext` adds what was said before (``context_size`` previous utterances of the conversation,
both speakers) as one vector read beside the current utterance's: by default the sum of their pooled vectors,
the ``k``-th previous weighted by ``context_decay ** (k - 1)`` (``context_type="decayed_sum"``: no parameters,
so it cannot overfit the few hundred dialogues of a corpus), or a GRU over them, tagged same / other / unknown
speaker and by distance (``"gru"``). Only past utterances are given, so it works live; the pooled vectors are
computed once per utterance and reused.
"""

from __future__ import annotations

import torch
from torch import nn

#: Speaker relation of a history utterance to the current one (``history_speaker`` values).
SPEAKER_UNKNOWN, SPEAKER_SAME, SPEAKER_OTHER = 0, 1, 2


def layer_statistics(hidden_states: tuple[torch.Tensor, ...] | list[torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """Per layer, the masked mean and standard deviation over frames: ``L x [B, T, H]`` -> ``[B, L, 2H]``."""
    states = torch.stack(list(hidden_states), dim=1).float()  # [B, L, T, H]
    weights = mask.to(states.dtype)[:, None, :, None]
    count = weights.sum(dim=2).clamp_min(1.0)
    mean = (states * weights).sum(dim=2) / count
    variance = ((states - mean[:, :, None]) ** 2 * weights).sum(dim=2) / count
    return torch.cat([mean, variance.clamp_min(1e-8).sqrt()], dim=-1)


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over valid positions: ``[B, T, H]``, ``[B, T]`` -> ``[B, H]``."""
    weights = mask.to(states.dtype).unsqueeze(-1)
    return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


class MultiStillPooledFusion(nn.Module):
    """Pooled audio (weighted layer statistics) and text (masked mean) -> one vector per branch, projected to
    ``hidden_size``; :meth:`forward` returns ``{modality: [B, hidden_size]}``."""

    def __init__(self, config):
        super().__init__()
        self.modalities = tuple(config.modalities)
        self.dropout = nn.Dropout(config.classifier_dropout)
        if config.use_audio:
            self.audio_layer_count = config.audio_layer_count
            weighted = config.audio_layer_mix == "weighted"
            self.audio_layer_weights = nn.Parameter(torch.zeros(config.audio_layer_count)) if weighted else None
            self.audio_norm = nn.LayerNorm(config.audio_hidden_size, eps=config.layer_norm_eps)
            self.audio_weight = float(config.audio_weight)
            self.audio_projection = nn.Linear(config.audio_hidden_size, config.hidden_size)
        if config.use_text:
            self.text_projection = nn.Linear(config.text_hidden_size, config.hidden_size)

    def forward(self, audio: tuple[torch.Tensor, torch.Tensor] | None,
                text: tuple[torch.Tensor, torch.Tensor] | None) -> dict[str, torch.Tensor]:
        branches = {}
        if audio is not None:  # [B, L, 2H] layer statistics
            statistics = audio[0].to(self.audio_norm.weight.dtype)
            if statistics.shape[1] != self.audio_layer_count:
                raise ValueError(f"audio features hold {statistics.shape[1]} layers' statistics; this model reads "
                                 f"{self.audio_layer_count} (the encoder's layers + its embedding output).")
            if self.audio_layer_weights is None:  # audio_layer_mix="last"
                mixed = statistics[:, -1]
            else:
                mixed = (torch.softmax(self.audio_layer_weights, dim=0)[None, :, None] * statistics).sum(dim=1)
            branches["audio"] = self.audio_projection(self.dropout(self.audio_norm(mixed) * self.audio_weight))
        if text is not None:
            pooled = masked_mean(text[0].to(self.text_projection.weight.dtype), text[1])
            branches["text"] = self.text_projection(self.dropout(pooled))
        return branches


class MultiStillContext(nn.Module):
    """History of pooled vectors ``[B, K, P]`` (newest first) + speaker relation -> context vector ``[B, P]``.

    ``context_type="decayed_sum"``: the present history vectors summed with weights ``context_decay ** k``
    (``k = 0`` for the newest); the speaker relation is not used. ``"gru"``: each history vector gets a learnt
    embedding of its speaker relation (unknown / same / other) and of its distance (1..K); a GRU reads them
    oldest to newest; its last state is the context. Zeros when the utterance opens the conversation.
    """

    def __init__(self, config):
        super().__init__()
        width = config.pooled_utterance_size
        self.context_size = config.context_size
        self.context_type = config.context_type
        self.context_decay = float(config.context_decay)
        if self.context_type == "gru":
            self.speaker_embeddings = nn.Embedding(3, width)
            self.distance_embeddings = nn.Embedding(config.context_size, width)
            self.norm = nn.LayerNorm(width, eps=config.layer_norm_eps)
            self.gru = nn.GRU(width, width, batch_first=True)

    def forward(self, history: torch.Tensor, history_mask: torch.Tensor, history_speaker: torch.Tensor) -> torch.Tensor:
        size = history.shape[1]
        if size > self.context_size:
            raise ValueError(f"history holds {size} utterances; this model reads at most {self.context_size}.")
        mask = history_mask.to(history.dtype).unsqueeze(-1)
        if self.context_type == "decayed_sum":
            weights = self.context_decay ** torch.arange(size, device=history.device, dtype=history.dtype)
            return (history * mask * weights[None, :, None]).sum(dim=1)
        distance = torch.arange(size, device=history.device)
        tagged = self.norm(history + self.speaker_embeddings(history_speaker.long().clamp(0, 2))
                           + self.distance_embeddings(distance)[None])
        # oldest first; absent utterances (mask 0) are zero vectors and leave the state where an empty input would
        outputs, _ = self.gru(torch.flip(tagged * mask, dims=[1]))
        present = history_mask.bool().any(dim=1, keepdim=True).to(outputs.dtype)
        return outputs[:, -1] * present


__all__ = [
    "MultiStillContext",
    "MultiStillPooledFusion",
    "SPEAKER_OTHER",
    "SPEAKER_SAME",
    "SPEAKER_UNKNOWN",
    "layer_statistics",
    "masked_mean",
]
