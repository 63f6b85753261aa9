"""Pooled fusion, conversation context and Whisper at the utterance's length (multistill.modeling_heads and the
parts of multistill.modeling_multistill and multistill.modeling_encoders that use them)."""

from __future__ import annotations

import pytest
import torch
from _fixtures_model import make_model, tiny_encoder_dirs, waves
from transformers import WhisperModel

from multistill.configuration_multistill import MultiStillConfig
from multistill.modeling_encoders import whisper_encoder_states
from multistill.modeling_heads import SPEAKER_OTHER, SPEAKER_SAME, MultiStillContext, layer_statistics

CONVERSATION = ["안녕하세요 오늘 기분이 정말 좋아요.", "진짜?", "밤에 혼자 있어서 무서웠어요.", "그게 무슨 소리야?"]


@pytest.fixture(scope="module", params=["decayed_sum", "gru"])
def context_model(request):
    return make_model("teacher", audio="whisper", fusion_type="concat", context_size=2, context_type=request.param)


def _inputs(processor, indices):
    audio = waves(*(1.0 + 0.3 * i for i in range(len(CONVERSATION))))
    return processor(audio=[audio[i] for i in indices], sampling_rate=16000, text=[CONVERSATION[i] for i in indices])


def test_no_future_utterance_reaches_a_prediction(context_model):
    model, processor = context_model
    # utterance 2 with its history (1, 0): rows [2, 1, 0], then the same with utterance 3 appended as an extra row
    history = torch.tensor([[1, 2]])
    speaker = torch.tensor([[SPEAKER_OTHER, SPEAKER_SAME]])
    with torch.no_grad():
        base = model(**_inputs(processor, [2, 1, 0]), history_index=history, history_speaker=speaker).logits
        more = model(**_inputs(processor, [2, 1, 0, 3]), history_index=history, history_speaker=speaker).logits
        changed = _inputs(processor, [2, 1, 0])
        changed["input_ids"][1] = changed["input_ids"][2]  # a different previous utterance changes the prediction
        other = model(**changed, history_index=history, history_speaker=speaker).logits
    torch.testing.assert_close(base, more, atol=2e-4, rtol=1e-3)  # only batch padding differs
    assert (base - other).abs().max() > 100 * (base - more).abs().max()


def test_history_features_equal_history_rows(context_model):
    model, processor = context_model
    with torch.no_grad():
        previous = model(**_inputs(processor, [1, 0])).utterance_features  # what a live conversation keeps
        by_rows = model(**_inputs(processor, [2, 1, 0]), history_index=torch.tensor([[1, 2]])).logits
        by_features = model(**_inputs(processor, [2]), history_features=previous[None]).logits
        alone = model(**_inputs(processor, [2])).logits
    torch.testing.assert_close(by_rows, by_features, atol=2e-4, rtol=1e-3)  # only batch padding differs
    assert not torch.allclose(by_rows, alone)
    assert model.config.pooled_size == 2 * model.config.pooled_utterance_size


def test_pooled_fusion_reads_every_layer_statistics(context_model):
    model, processor = context_model
    batch = _inputs(processor, [0, 1])
    statistics, mask = model.encode_audio(input_features=batch["input_features"], attention_mask=batch["attention_mask"])
    layers = model.config.audio_config.num_hidden_layers + 1
    assert statistics.shape == (2, layers, 2 * model.config.audio_config.hidden_size) and bool(mask.all())
    with pytest.raises(ValueError, match="layers' statistics"):
        model(audio_hidden_states=statistics[:, :-1], input_ids=batch["input_ids"])


def test_layer_statistics_ignore_padding():
    states = [torch.randn(1, 5, 3), torch.randn(1, 5, 3)]
    padded = [torch.cat([s, torch.full((1, 2, 3), 100.0)], dim=1) for s in states]
    mask = torch.tensor([[1] * 5 + [0, 0]])
    torch.testing.assert_close(layer_statistics(padded, mask), layer_statistics(states, torch.ones(1, 5)))


def test_whisper_runs_at_the_utterance_length_and_the_full_window_as_transformers():
    model, processor = make_model("audio_student", audio="whisper")
    short = processor(audio=waves(1.5), sampling_rate=16000)
    assert short["input_features"].shape[-1] == 150  # 1.5 s of 10 ms frames, not the 30 s window
    encoder = WhisperModel.from_pretrained(tiny_encoder_dirs("whisper", "electra")["audio"]).encoder.eval()
    window = torch.nn.functional.pad(short["input_features"], (0, 3000 - 150))
    with torch.no_grad():
        ours = whisper_encoder_states(encoder, window)[-1]
        theirs = encoder(window).last_hidden_state
    torch.testing.assert_close(ours, theirs)
    full, _ = make_model("audio_student", audio="whisper", audio_full_window=True)
    assert full.config.audio_full_window


def test_decayed_sum_context_weights_each_previous_utterance_by_its_distance():
    """The recipe's context: ``sum_k decay**(k-1) * pooled(k-th previous)`` over present rows, no parameters;
    zeros before the first utterance; the GRU variant has parameters and sees the speaker relation."""
    config = MultiStillConfig(fusion_type="concat", context_size=3, context_decay=0.5, hidden_size=8,
                              modalities=["text"])
    context = MultiStillContext(config)
    history = torch.randn(2, 3, config.pooled_utterance_size)
    mask = torch.tensor([[1, 1, 0], [0, 0, 0]])
    speaker = torch.zeros(2, 3, dtype=torch.long)
    expected = torch.stack([history[0, 0] + 0.5 * history[0, 1], torch.zeros(config.pooled_utterance_size)])
    torch.testing.assert_close(context(history, mask, speaker), expected)
    assert not list(context.parameters())
    gru = MultiStillContext(MultiStillConfig(fusion_type="concat", context_size=3, context_type="gru", hidden_size=8,
                                             modalities=["text"]))
    assert sum(p.numel() for p in gru.parameters()) > 0
    assert MultiStillConfig(context_size=3).context_type == "decayed_sum"


@pytest.mark.parametrize("field, value", [("fusion_type", "late_sum"), ("context_size", -1), ("context_size", 65),
                                          ("context_type", "lstm"), ("context_decay", 0.0), ("context_decay", 1.5)])
def test_config_checks_new_fields(field, value):
    with pytest.raises(ValueError, match=field):
        MultiStillConfig(**{field: value})


def test_linear_classifier_head_round_trips(tmp_path):
    """``classifier_hidden_size=0`` (``--fusion_size linear``, the recipe's): Dropout -> Linear(pooled, 7), saved
    and reloaded with the same logits; a negative width is refused."""
    from multistill.modeling_multistill import MultiStillForEmotionClassification
    from multistill.offline import FUSION_SIZES

    assert FUSION_SIZES["linear"]["classifier_hidden_size"] == 0 and FUSION_SIZES["linear"]["classifier_dropout"] == 0
    model, processor = make_model("teacher", audio="whisper", fusion_type="concat", classifier_hidden_size=0)
    head = model.classifier
    assert head.dense is None and head.out_proj.in_features == model.config.pooled_size
    batch = _inputs(processor, [0, 1])
    with torch.no_grad():
        logits = model(**batch).logits
    model.save_pretrained(tmp_path)
    reloaded = MultiStillForEmotionClassification.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, logits)
    with pytest.raises(ValueError, match="`classifier_hidden_size` must be a positive integer, or 0"):
        MultiStillConfig(classifier_hidden_size=-1)


def test_audio_weight_scales_the_normalised_audio_statistics(tmp_path):
    """``audio_weight=w`` is ``w`` times the audio projection's weight matrix (so the L2 penalty makes the audio
    branch cheaper to use), round-trips through save/load, and a student built from the teacher keeps it."""
    from multistill.modeling_heads import MultiStillPooledFusion
    from multistill.modeling_multistill import MultiStillForEmotionClassification

    settings = {"fusion_type": "concat", "hidden_size": 8, "audio_config": {"hidden_size": 6}, "modalities": ["audio"]}
    weighted = MultiStillPooledFusion(MultiStillConfig(**settings, audio_weight=3.0)).eval()
    plain = MultiStillPooledFusion(MultiStillConfig(**settings)).eval()
    with torch.no_grad():
        weighted.audio_norm.weight.normal_()
        weighted.audio_norm.bias.normal_()
        plain.load_state_dict(weighted.state_dict())
        statistics = torch.randn(2, weighted.audio_layer_weights.numel(), weighted.audio_norm.normalized_shape[0])
        got = weighted((statistics, None), None)["audio"]
        assert not torch.allclose(got, plain((statistics, None), None)["audio"])
        plain.audio_projection.weight.mul_(3.0)
        torch.testing.assert_close(got, plain((statistics, None), None)["audio"])
    model, _ = make_model("teacher", audio="whisper", fusion_type="concat", audio_weight=2.5)
    model.save_pretrained(tmp_path)
    assert MultiStillForEmotionClassification.from_pretrained(tmp_path).config.audio_weight == 2.5
    student = MultiStillForEmotionClassification.light_student_from_teacher(model, audio_layers=1, text_layers=1)
    assert student.config.audio_weight == 2.5


def test_audio_layer_mix_last_reads_the_last_layers_statistics_alone(tmp_path):
    """``audio_layer_mix="last"``: no layer weights; the branch is the weighted model's with every weight on the last
    layer, whatever the other layers hold; save/load and a student built from the teacher keep it."""
    from multistill.modeling_heads import MultiStillPooledFusion
    from multistill.modeling_multistill import MultiStillForEmotionClassification

    settings = {"fusion_type": "concat", "hidden_size": 8, "audio_config": {"hidden_size": 6}, "modalities": ["audio"]}
    last = MultiStillPooledFusion(MultiStillConfig(**settings, audio_layer_mix="last")).eval()
    weighted = MultiStillPooledFusion(MultiStillConfig(**settings)).eval()
    assert last.audio_layer_weights is None and "audio_layer_weights" not in dict(last.named_parameters())
    with torch.no_grad():
        last.audio_norm.weight.normal_()
        weighted.load_state_dict({**last.state_dict(), "audio_layer_weights": weighted.audio_layer_weights})
        statistics = torch.randn(2, weighted.audio_layer_weights.numel(), last.audio_norm.normalized_shape[0])
        got = last((statistics, None), None)["audio"]
        assert not torch.allclose(got, weighted((statistics, None), None)["audio"])
        weighted.audio_layer_weights.fill_(-1e4)
        weighted.audio_layer_weights[-1] = 0.0
        torch.testing.assert_close(got, weighted((statistics, None), None)["audio"])
        statistics[:, :-1] = torch.randn_like(statistics[:, :-1])
        torch.testing.assert_close(last((statistics, None), None)["audio"], got)
    model, _ = make_model("teacher", audio="whisper", fusion_type="concat", audio_layer_mix="last")
    model.save_pretrained(tmp_path)
    assert MultiStillForEmotionClassification.from_pretrained(tmp_path).config.audio_layer_mix == "last"
    student = MultiStillForEmotionClassification.light_student_from_teacher(model, audio_layers=1, text_layers=1)
    assert student.config.audio_layer_mix == "last"


def test_config_refuses_bad_audio_layer_mix():
    with pytest.raises(ValueError, match="`audio_layer_mix` must be one of \\('weighted', 'last'\\), got 'first'"):
        MultiStillConfig(fusion_type="concat", audio_layer_mix="first")
    with pytest.raises(ValueError, match="fusion_type='cross_attention' reads the last layer's frames"):
        MultiStillConfig(audio_layer_mix="last")
    assert MultiStillConfig(audio_layer_mix="last", modalities=["text"]).audio_layer_mix == "last"  # no audio branch


@pytest.mark.parametrize("value", [0, -1.0, 101.0, float("nan"), True, "2"])
def test_config_refuses_a_bad_audio_weight(value):
    with pytest.raises(ValueError, match="`audio_weight` must be a number in"):
        MultiStillConfig(fusion_type="concat", audio_weight=value)


def test_config_refuses_an_audio_weight_the_fusion_cannot_use():
    with pytest.raises(ValueError, match="fusion_type='cross_attention' has none"):
        MultiStillConfig(audio_weight=2.0)
    assert MultiStillConfig(audio_weight=2.0, modalities=["text"]).audio_weight == 2.0  # no audio branch to scale
