"""The light student's audio encoder (multistill.modeling_fbank): an ``AutoModel`` of its own, padding-invariant,
saved and reloaded with its mel filters. (Inside a model: test_modeling_encoders.py, test_modeling_multistill.py.)"""

from __future__ import annotations

import numpy as np
import torch
from _fixtures_model import waves
from transformers import AutoModel

from multistill.configuration_multistill import MultiStillFbankConfig
from multistill.modeling_fbank import MultiStillFbankEncoder


# ------------------------------------------------------------------------------------------ the fbank encoder
def test_fbank_encoder_is_an_auto_model(tmp_path):
    config = MultiStillFbankConfig(num_mel_bins=20, conv_channels=16, hidden_size=32, num_attention_heads=4,
                                   intermediate_size=64, num_hidden_layers=1)
    encoder = AutoModel.from_config(config)
    assert type(encoder) is MultiStillFbankEncoder
    encoder.save_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(loaded) is MultiStillFbankEncoder
    values = torch.from_numpy(np.stack([np.pad(waves(0.5)[0], (0, 8000)), waves(1.0)[0]]))
    mask = (torch.arange(16000)[None] < torch.tensor([[8000], [16000]])).long()
    with torch.no_grad():
        hidden = loaded(values, attention_mask=mask).last_hidden_state
        alone = loaded(values[:1, :8000]).last_hidden_state
        reference = encoder.eval()(values[:1, :8000]).last_hidden_state
    lengths = loaded._get_feat_extract_output_lengths(mask.sum(-1))
    assert lengths.tolist() == [12, 25] and hidden.shape == (2, 25, 32)  # 25 frames/s
    torch.testing.assert_close(hidden[:1, :12], alone, atol=1e-5, rtol=0)  # padding never reaches valid frames
    torch.testing.assert_close(alone, reference, atol=0, rtol=0)  # mel filters rebuilt on load
