"""The character n-gram text encoder: hashed 1-3-gram embeddings weighted by inverse document frequency.

This file is shipped next to the weights on the Hub: it imports its siblings only relatively.

A fastText-style embedding bag, as a ``PreTrainedModel`` built through ``AutoModel`` like every other encoder.
Its input is the ids of a character-level tokenizer (:func:`multistill.offline.train_char_tokenizer`); the
n-grams are hashed inside the model, so the tokenizer is a plain ``tokenizers`` file that a bare
transformers install loads. Output position ``t`` holds the IDF-weighted sum of the embeddings of the n-grams
ending at ``t``, scaled so that the masked mean over positions is the bag vector normalised like a TF-IDF row
(divided by the L2 norm of its weights): mean pooling, which every Multi-Still fusion does, gives exactly the
TF-IDF-weighted bag that a linear classifier needs.
"""

from __future__ import annotations

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput

from .configuration_ngram import MultiStillNgramConfig

#: Multiplier of the rolling n-gram hash (a prime; int64 arithmetic wraps the same way on every device).
_HASH_PRIME = 1_000_003


def ngram_buckets(input_ids: torch.Tensor, attention_mask: torch.Tensor, config: MultiStillNgramConfig) -> torch.Tensor:
    """``[B, L]`` character ids -> ``[B, L, orders]`` bucket ids of the n-grams ending at each position (0: none).

    An n-gram counts when all its characters are real tokens (mask 1, not padding) and, with a
    ``boundary_token_id``, when it does not span two words (a boundary may only open or close it, and a
    unigram is never a bare boundary). Buckets are ``1..num_buckets``; 0 is the padding bucket.
    """
    ids = input_ids.long() * attention_mask.long()
    real = attention_mask.bool()
    boundary = config.boundary_token_id
    columns = []
    for order in range(config.min_ngram, config.max_ngram + 1):
        code = torch.full_like(ids, order)
        valid = torch.ones_like(real)
        for back in range(order):  # character at position t - back
            shifted_ids = nn.functional.pad(ids, (back, 0))[:, : ids.shape[1]]
            shifted_real = nn.functional.pad(real, (back, 0))[:, : ids.shape[1]]
            code = code * _HASH_PRIME + shifted_ids
            valid &= shifted_real
            if boundary is not None and (0 < back < order - 1 or order == 1):
                valid &= shifted_ids != boundary
        if boundary is not None and order == 2:  # two boundaries in a row (an empty transcript) are no bigram
            previous = nn.functional.pad(ids, (1, 0))[:, : ids.shape[1]]
            valid &= ~((ids == boundary) & (previous == boundary))
        bucket = torch.remainder(code, config.num_buckets) + 1
        columns.append(torch.where(valid, bucket, torch.zeros_like(bucket)))
    return torch.stack(columns, dim=-1)


class MultiStillNgramEncoder(PreTrainedModel):
    """Hashed character n-gram embeddings with IDF weights (``idf`` buffer, set by :meth:`fit_idf`)."""

    config_class = MultiStillNgramConfig
    config: MultiStillNgramConfig
    base_model_prefix = "multistill_ngram"
    main_input_name = "input_ids"
    input_modalities = ("text",)
    supports_gradient_checkpointing = False

    def __init__(self, config: MultiStillNgramConfig):
        super().__init__(config)
        self.embeddings = nn.Embedding(config.num_buckets + 1, config.hidden_size, padding_idx=0)
        self.register_buffer("idf", torch.ones(config.num_buckets + 1), persistent=True)
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=self.config.embedding_std)
            module.weight[0].zero_()
        if isinstance(module, MultiStillNgramEncoder):
            module.idf.fill_(1.0)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings

    @torch.no_grad()
    def fit_idf(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> None:
        """Smoothed inverse document frequency of each bucket over the training transcripts, as scikit-learn's
        ``TfidfVectorizer`` computes it: ``ln((1 + n) / (1 + df)) + 1``. Call once, before training."""
        buckets = ngram_buckets(input_ids, attention_mask, self.config).flatten(1)
        present = torch.zeros(buckets.shape[0], self.config.num_buckets + 1, dtype=torch.bool)
        present.scatter_(1, buckets.cpu(), True)
        document_frequency = present[:, 1:].sum(0).float()
        n = float(buckets.shape[0])
        self.idf[1:] = torch.log((1 + n) / (1 + document_frequency)) + 1
        self.idf[0] = 0.0

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> BaseModelOutput | tuple:
        """``[B, L]`` ids -> ``last_hidden_state`` ``[B, L, H]`` whose masked mean is the normalised bag."""
        if attention_mask is None:
            attention_mask = (input_ids != self.config.pad_token_id).long() if self.config.pad_token_id is not None \
                else torch.ones_like(input_ids)
        buckets = ngram_buckets(input_ids, attention_mask, self.config)
        weights = self.idf[buckets] * (buckets > 0)
        # one bag per position, summed without materialising [B, L, orders, H] (3x the memory, slower backward)
        states = nn.functional.embedding_bag(
            buckets.flatten(0, 1), self.embeddings.weight, mode="sum", padding_idx=0,
            per_sample_weights=weights.flatten(0, 1).to(self.embeddings.weight.dtype),
        ).view(*buckets.shape[:2], -1)
        norm = weights.pow(2).sum(dim=(1, 2)).sqrt().clamp_min(1e-6)
        tokens = attention_mask.sum(dim=1).clamp_min(1).to(states.dtype)
        hidden = states * (tokens / norm)[:, None, None]
        output = BaseModelOutput(last_hidden_state=hidden)
        return output if return_dict is not False else output.to_tuple()


__all__ = ["MultiStillNgramEncoder", "ngram_buckets"]
