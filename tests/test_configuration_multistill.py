"""MultiStillConfig: defaults, presets, validation, serialisation."""

from __future__ import annotations

import json

import pytest
from transformers import AutoConfig, ElectraConfig, Wav2Vec2Config

from multistill.annotations import EMOTIONS
from multistill.configuration_multistill import PRESETS, MultiStillConfig


def test_defaults_follow_the_paper():
    config = MultiStillConfig()
    assert config.model_type == "multistill"
    assert config.modalities == ["audio", "text"]
    assert config.audio_frontend == "wav2vec2"
    assert (config.hidden_size, config.num_attention_heads, config.num_fusion_layers) == (768, 8, 3)
    assert (config.fusion_intermediate_size, config.classifier_hidden_size) == (3072, 512)
    assert config.classifier_dropout == 0.1
    assert (config.max_audio_frames, config.max_text_tokens) == (512, 128)
    assert config.freeze_encoders is True
    assert config.num_labels == 7
    assert [config.id2label[i] for i in range(7)] == list(EMOTIONS)
    assert config.label2id == {label: i for i, label in enumerate(EMOTIONS)}
    audio, text = config.audio_config, config.text_config
    assert isinstance(audio, Wav2Vec2Config) and isinstance(text, ElectraConfig)
    assert (audio.hidden_size, audio.num_hidden_layers, audio.num_attention_heads, audio.intermediate_size) == (
        1024, 24, 16, 4096)
    assert audio.feat_extract_norm == "layer" and audio.do_stable_layer_norm and audio.conv_bias
    assert (text.hidden_size, text.num_hidden_layers, text.num_attention_heads, text.intermediate_size) == (
        768, 12, 12, 3072)
    assert (text.vocab_size, text.max_position_embeddings, text.embedding_size) == (50135, 512, 768)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets(name):
    config = MultiStillConfig.from_preset(name)
    expected = {
        "teacher": (["audio", "text"], 3, "wav2vec2"),
        "multimodal_student": (["audio", "text"], 1, "wav2vec2"),
        "text_student": (["text"], 1, "wav2vec2"),
        "audio_student": (["audio"], 1, "wav2vec2"),
        "light_student": (["audio", "text"], 1, "fbank"),
    }[name]
    assert (config.modalities, config.num_fusion_layers, config.audio_frontend) == expected
    if name == "light_student":
        assert config.freeze_encoders is False
        assert config.audio_config.num_hidden_layers == 2 and config.text_config.num_hidden_layers == 2
        assert config.audio_config.hidden_size == 1024  # same width as the teacher: its layers can be copied
    else:
        assert config.freeze_encoders is True
        assert config.audio_config.num_hidden_layers == 24


def test_preset_overrides_and_encoder_depths():
    config = MultiStillConfig.from_preset("light_student", audio_layers=4, text_layers=3, num_labels=7)
    assert (config.audio_config.num_hidden_layers, config.text_config.num_hidden_layers) == (4, 3)
    tiny_audio = Wav2Vec2Config(hidden_size=64, num_hidden_layers=5, num_attention_heads=4, intermediate_size=128)
    config = MultiStillConfig.from_preset("light_student", audio_config=tiny_audio)
    assert config.audio_config.hidden_size == 64 and config.audio_config.num_hidden_layers == 2
    assert tiny_audio.num_hidden_layers == 5  # the caller's config is not mutated
    config = MultiStillConfig.from_preset("teacher", num_fusion_layers=2, modalities="both")
    assert config.num_fusion_layers == 2 and config.modalities == ["audio", "text"]


def test_modalities_forms():
    assert MultiStillConfig(modalities="text").modalities == ["text"]
    assert MultiStillConfig(modalities=("text", "audio")).modalities == ["audio", "text"]
    assert MultiStillConfig(modalities="both").pooled_size == 1536
    assert MultiStillConfig(modalities=["audio"]).pooled_size == 768


def test_sub_config_dicts():
    # a dict without model_type overrides the paper-sized default, with model_type it is a full config
    config = MultiStillConfig(audio_config={"num_hidden_layers": 3}, text_config={"model_type": "bert",
                                                                                  "hidden_size": 96,
                                                                                  "num_attention_heads": 4})
    assert config.audio_config.num_hidden_layers == 3 and config.audio_config.hidden_size == 1024
    assert config.text_config.model_type == "bert" and config.text_config.hidden_size == 96


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"modalities": "video"}, "modalities", "'audio', 'text', 'both'"),
        ({"modalities": ["audio", "video"]}, "modalities", "'audio', 'text'"),
        ({"modalities": []}, "modalities", "'audio', 'text'"),
        ({"num_attention_heads": 7}, "num_attention_heads", "divide `hidden_size`"),
        ({"num_fusion_layers": 0}, "num_fusion_layers", ">= 1"),
        ({"audio_frontend": "mfcc"}, "audio_frontend", "wav2vec2"),
        ({"fbank_position_embedding": "learned"}, "fbank_position_embedding", "sinusoidal"),
        ({"attention_dropout": 1.5}, "attention_dropout", "[0, 1)"),
        ({"max_audio_frames": 0}, "max_audio_frames", "positive integer"),
        ({"max_text_tokens": 1000}, "max_text_tokens", "max_position_embeddings"),
        ({"fbank_conv_strides": [2]}, "fbank_conv_strides", "same length"),
        ({"num_labels": 1}, "num_labels", ">= 2"),
        ({"audio_config": {"model_type": "no-such-model"}}, "audio_config", "model_type"),
        ({"audio_config": 3}, "audio_config", "dict"),
    ],
)
def test_validation_errors_name_field_and_allowed_values(kwargs, field, allowed):
    with pytest.raises(ValueError) as info:
        MultiStillConfig(**kwargs)
    assert field in str(info.value) and allowed in str(info.value)


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"`name` must be one of .*light_student.*teacher"):
        MultiStillConfig.from_preset("tiny")
    with pytest.raises(ValueError, match="audio_layers"):
        MultiStillConfig.from_preset("light_student", audio_layers=0)


def test_dict_and_json_round_trip(tmp_path):
    config = MultiStillConfig.from_preset("light_student", hidden_size=64, num_attention_heads=4)
    as_dict = config.to_dict()
    assert MultiStillConfig.from_dict(as_dict).to_dict() == as_dict
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "multistill" and saved["auto_map"]["AutoConfig"].endswith("MultiStillConfig")
    assert saved["audio_config"]["model_type"] == "wav2vec2" and saved["text_config"]["model_type"] == "electra"
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MultiStillConfig)
    assert loaded.to_dict() == {**as_dict, "auto_map": loaded.auto_map, "_name_or_path": str(tmp_path)}
    assert loaded.audio_config.num_hidden_layers == 2 and loaded.id2label[6] == "fear"


def test_extra_kwargs_are_kept():
    config = MultiStillConfig(my_note="kept", problem_type="single_label_classification")
    assert config.my_note == "kept"
    assert MultiStillConfig.from_dict(config.to_dict()).my_note == "kept"


def test_other_num_labels():
    config = MultiStillConfig(num_labels=3)
    assert config.num_labels == 3 and config.id2label[0] == "LABEL_0"
