"""The paper's cross-modal transformer (multistill.modeling_cross_attention): positions, key-padding masks, the
two attention paths and the poolings. (The whole model's padding invariance: test_modeling_multistill.py.)"""

from __future__ import annotations

import math

import torch

from multistill.configuration_multistill import MultiStillConfig
from multistill.modeling_cross_attention import (
    FUSION_ENCODERS,
    MultiStillFusionEncoder,
    cross_modal_fusion,
    masked_mean,
    sinusoidal_positions,
)


def _config() -> MultiStillConfig:
    return MultiStillConfig(hidden_size=16, num_attention_heads=4, fusion_intermediate_size=32, num_fusion_layers=2)


def _encoder(seed: int = 0) -> MultiStillFusionEncoder:
    torch.manual_seed(seed)
    return MultiStillFusionEncoder(_config()).eval()


def test_sinusoidal_positions_start_at_one_sin_half_then_cos_half():
    table = sinusoidal_positions(5, 8, torch.device("cpu"), torch.float32)
    freqs = torch.exp(torch.arange(4) * -(math.log(10000.0) / 3))
    assert table.shape == (5, 8)
    torch.testing.assert_close(table[0], torch.cat([torch.sin(freqs), torch.cos(freqs)]))
    odd = sinusoidal_positions(3, 7, torch.device("cpu"), torch.float64)
    assert odd.dtype == torch.float64 and odd.shape == (3, 7) and bool((odd[:, -1] == 0).all())


def test_masked_mean_ignores_padding():
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    torch.testing.assert_close(masked_mean(states, torch.tensor([[1, 1, 0]])), torch.tensor([[2.0, 3.0]]))


def test_padded_keys_and_queries_never_change_the_valid_outputs():
    encoder = _encoder()
    queries, keys = torch.randn(1, 4, 16), torch.randn(1, 3, 16)
    with torch.no_grad():
        alone, _ = encoder(queries, torch.ones(1, 4), keys, torch.ones(1, 3))
        padded, weights = encoder(
            torch.cat([queries, torch.randn(1, 2, 16)], dim=1), torch.tensor([[1, 1, 1, 1, 0, 0]]),
            torch.cat([keys, torch.randn(1, 5, 16)], dim=1), torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0]]),
            output_attentions=True,
        )
    torch.testing.assert_close(padded[:, :4], alone, atol=1e-5, rtol=0)
    assert len(weights) == 2 and weights[0].shape == (1, 4, 6, 8)
    assert bool((weights[0][..., 3:] == 0).all())  # no attention on padded keys


def test_explicit_attention_weights_give_the_sdpa_result():
    encoder = _encoder(1)
    states, mask = torch.randn(2, 5, 16), torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]])
    with torch.no_grad():
        sdpa, none = encoder(states, mask)
        explicit, weights = encoder(states, mask, output_attentions=True)
    assert none == ()
    torch.testing.assert_close(explicit, sdpa, atol=1e-5, rtol=0)
    torch.testing.assert_close(weights[0].sum(-1), torch.ones(2, 4, 5))


def test_cross_modal_fusion_pools_audio_by_mean_and_text_by_first_token():
    assert FUSION_ENCODERS["audio_to_text"][2] == "mean" and FUSION_ENCODERS["text_to_audio"][2] == "first"
    encoders = {"audio_to_text": _encoder(2), "text_to_audio": _encoder(3)}
    audio = (torch.randn(2, 6, 16), torch.tensor([[1] * 6, [1, 1, 1, 1, 0, 0]]))
    text = (torch.randn(2, 4, 16), torch.tensor([[1] * 4, [1, 1, 0, 0]]))
    with torch.no_grad():
        pooled, fused, attentions = cross_modal_fusion(encoders, {"audio": audio, "text": text}, True)
    assert pooled.shape == (2, 32) and [f.shape for f in fused] == [(2, 6, 16), (2, 4, 16)]
    assert len(attentions) == 4  # two layers per fusion encoder
    torch.testing.assert_close(pooled[:, :16], masked_mean(fused[0], audio[1]))
    torch.testing.assert_close(pooled[:, 16:], fused[1][:, 0])
