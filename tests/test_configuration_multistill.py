"""MultiStillConfig: defaults, presets, validation, serialisation."""

from __future__ import annotations

import json

import pytest
from transformers import AutoConfig, ElectraConfig, Wav2Vec2Config, WhisperConfig

from multistill.annotations import EMOTIONS
from multistill.configuration_multistill import PRESETS, MultiStillConfig, MultiStillFbankConfig


def test_defaults_follow_the_paper():
    config = MultiStillConfig()
    assert config.model_type == "multistill"
    assert config.modalities == ["audio", "text"]
    assert config.audio_frontend == "wav2vec2"
    assert (config.hidden_size, config.num_attention_heads, config.num_fusion_layers) == (768, 8, 3)
    assert (config.fusion_intermediate_size, config.classifier_hidden_size) == (3072, 512)
    assert config.classifier_dropout == 0.1
    assert (config.max_audio_frames, config.max_text_tokens) == (512, 128)
    assert config.freeze_audio_encoder is True and config.freeze_text_encoder is True
    assert config.frozen_modalities == ["audio", "text"] and config.freeze_encoders is True
    assert config.preset is None
    assert config.audio_encoder_name == "kresnik/wav2vec2-large-xlsr-korean"
    assert config.text_encoder_name == "beomi/KcELECTRA-base"
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
    assert config.preset == name
    if name == "light_student":
        assert config.frozen_modalities == [] and config.freeze_encoders is False
        assert isinstance(config.audio_config, MultiStillFbankConfig)
        assert config.audio_config.num_hidden_layers == 2 and config.text_config.num_hidden_layers == 2
        assert config.audio_config.hidden_size == 1024  # same width as the teacher: its layers can be copied
        assert config.audio_config.samples_per_frame == 640  # 10 ms hop x strides (2, 2) = 25 frames/s
    else:
        assert config.frozen_modalities == config.modalities
        assert isinstance(config.audio_config, Wav2Vec2Config)
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
        ({"audio_frontend": "fbank", "fbank_position_embedding": "learned"}, "position_embedding", "sinusoidal"),
        ({"attention_dropout": 1.5}, "attention_dropout", "[0, 1)"),
        ({"max_audio_frames": 0}, "max_audio_frames", "positive integer"),
        ({"max_text_tokens": 1000}, "max_text_tokens", "max_position_embeddings"),
        ({"audio_frontend": "fbank", "fbank_conv_strides": [2]}, "conv_strides", "same length"),
        ({"audio_frontend": "fbank", "audio_config": WhisperConfig()}, "fbank", "wav2vec2-like"),
        ({"preset": "huge"}, "preset", "light_student"),
        ({"freeze_text_encoder": "no"}, "freeze_text_encoder", "bool"),
        ({"num_labels": 1}, "num_labels", ">= 2"),
        ({"audio_config": {"model_type": "no-such-model"}}, "audio_config", "model_type"),
        ({"audio_config": 3}, "audio_config", "dict"),
        # issue 22.4: absurd sizes are refused before any weight is allocated (65536 was OOM-killed at 17 GB)
        ({"hidden_size": 65536, "num_attention_heads": 8}, "hidden_size", "above 8192"),
        ({"fusion_intermediate_size": 10**6}, "fusion_intermediate_size", "above 32768"),
        ({"audio_config": {"hidden_size": 65536}}, "audio_config.hidden_size", "above 8192"),
        ({"text_config": {"intermediate_size": 10**6}}, "text_config.intermediate_size", "above 32768"),
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
    assert saved["audio_config"]["model_type"] == "multistill_fbank" and saved["text_config"]["model_type"] == "electra"
    assert saved["preset"] == "light_student" and saved["freeze_audio_encoder"] is False
    assert not {"audio_frontend", "freeze_encoders", "num_mel_bins", "fbank_conv_channels"} & set(saved)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MultiStillConfig)
    assert loaded.to_dict() == {**as_dict, "auto_map": loaded.auto_map, "_name_or_path": str(tmp_path)}
    assert loaded.audio_config.num_hidden_layers == 2 and loaded.id2label[6] == "fear"
    assert isinstance(loaded.audio_config, MultiStillFbankConfig) and loaded.preset == "light_student"


def test_extra_kwargs_are_kept():
    config = MultiStillConfig(my_note="kept", problem_type="single_label_classification")
    assert config.my_note == "kept"
    assert MultiStillConfig.from_dict(config.to_dict()).my_note == "kept"


def test_other_num_labels():
    config = MultiStillConfig(num_labels=3)
    assert config.num_labels == 3 and config.id2label[0] == "LABEL_0"


# ------------------------------------------------------------------------------------------ encoders
def test_fbank_config_is_its_own_model_type(tmp_path):
    config = MultiStillFbankConfig(num_mel_bins=40, conv_channels=32, conv_strides=[1, 2], hidden_size=64,
                                   num_attention_heads=4, intermediate_size=128)
    assert config.model_type == "multistill_fbank" and config.samples_per_frame == 320 and config.min_input_samples == 400
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MultiStillFbankConfig) and loaded.conv_strides == [1, 2] and loaded.num_mel_bins == 40
    with pytest.raises(ValueError, match="`hop_length` .* must not exceed `n_fft`"):
        MultiStillFbankConfig(hop_length=500)
    with pytest.raises(ValueError, match="`conv_channels` must be a positive integer"):
        MultiStillFbankConfig(conv_channels=0)


def test_light_student_front_end_from_a_waveform_encoder():
    tiny_audio = Wav2Vec2Config(hidden_size=64, num_hidden_layers=5, num_attention_heads=4, intermediate_size=128,
                                hidden_dropout=0.05)
    config = MultiStillConfig.from_preset("light_student", audio_config=tiny_audio, audio_layers=3, num_mel_bins=40,
                                          fbank_conv_channels=32, fbank_position_embedding="conv")
    audio = config.audio_config
    assert isinstance(audio, MultiStillFbankConfig) and config.audio_frontend == "fbank"
    assert (audio.hidden_size, audio.num_hidden_layers, audio.intermediate_size) == (64, 3, 128)
    assert (audio.num_mel_bins, audio.conv_channels, audio.position_embedding) == (40, 32, "conv")
    assert audio.hidden_dropout == 0.05  # the transformer shape and dropouts follow the replaced encoder
    assert config.audio_encoder_name is None  # a custom encoder: no name is made up
    # audio_frontend="wav2vec2" keeps the waveform encoder, shrunk
    kept = MultiStillConfig.from_preset("light_student", audio_config=tiny_audio, audio_frontend="wav2vec2")
    assert isinstance(kept.audio_config, Wav2Vec2Config) and kept.audio_config.num_hidden_layers == 2
    # flat fbank keys are moved into the fbank config, never stored at the top level
    assert not hasattr(config, "num_mel_bins") and not hasattr(config, "fbank_conv_channels")


def test_whisper_light_student_keeps_a_shrunk_whisper_encoder():
    whisper = WhisperConfig(d_model=64, encoder_layers=6, encoder_attention_heads=4, encoder_ffn_dim=128)
    teacher = MultiStillConfig.from_preset("teacher", audio_config=whisper, audio_encoder_name="/models/whisper-base")
    assert teacher.audio_frontend == "whisper" and teacher.audio_hidden_size == 64
    student = MultiStillConfig.from_preset("light_student", audio_config=teacher.audio_config, audio_layers=3)
    assert isinstance(student.audio_config, WhisperConfig) and student.audio_config.encoder_layers == 3
    assert student.audio_frontend == "whisper" and student.frozen_modalities == []
    assert whisper.encoder_layers == 6  # the caller's config is not mutated
    mixed = MultiStillConfig.from_preset("teacher", audio_config=whisper, freeze_text_encoder=False)
    assert mixed.frozen_modalities == ["audio"] and mixed.freeze_encoders is False


def test_other_encoder_types_are_recorded(tmp_path):
    config = MultiStillConfig(audio_config={"model_type": "hubert", "hidden_size": 64, "num_attention_heads": 4},
                              text_config={"model_type": "xlm-roberta", "hidden_size": 48, "num_attention_heads": 4},
                              audio_encoder_name="org/hubert", text_encoder_name="org/xlmr")
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["audio_config"]["model_type"] == "hubert" and saved["text_config"]["model_type"] == "xlm-roberta"
    assert (saved["audio_encoder_name"], saved["text_encoder_name"]) == ("org/hubert", "org/xlmr")
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert loaded.audio_frontend == "hubert" and loaded.text_config.hidden_size == 48


def test_legacy_keys_of_saved_configs():
    # as earlier versions saved them: a light student is `audio_frontend="fbank"` + a wav2vec2 audio_config
    # + flat fbank keys; `freeze_encoders` means both encoders
    old = MultiStillConfig.from_preset("teacher", audio_config={"hidden_size": 64, "num_attention_heads": 4,
                                                                "intermediate_size": 128, "num_hidden_layers": 2})
    legacy = {**old.to_dict(), "audio_frontend": "fbank", "num_mel_bins": 20, "fbank_conv_channels": 16,
              "fbank_conv_strides": [1, 2], "freeze_encoders": False}
    legacy.pop("freeze_audio_encoder")
    legacy.pop("freeze_text_encoder")
    config = MultiStillConfig.from_dict(legacy)
    assert isinstance(config.audio_config, MultiStillFbankConfig)
    assert (config.audio_config.num_mel_bins, config.audio_config.conv_channels) == (20, 16)
    assert config.audio_config.samples_per_frame == 320 and config.audio_config.hidden_size == 64
    assert config.frozen_modalities == []
    frozen = MultiStillConfig.from_dict({**old.to_dict(), "audio_frontend": "wav2vec2", "num_mel_bins": 80,
                                         "freeze_encoders": True})
    assert isinstance(frozen.audio_config, Wav2Vec2Config)  # fbank keys of a wav2vec2 model are ignored
    assert frozen.frozen_modalities == ["audio", "text"] and "num_mel_bins" not in frozen.to_dict()


def test_config_holds_no_run_time_state():
    config = MultiStillConfig.from_preset("light_student")
    for name in ("frozen_modalities", "freeze_encoders", "audio_frontend", "use_audio", "pooled_size"):
        with pytest.raises(AttributeError):
            setattr(config, name, None)  # derived, read-only


def test_folder_without_config_json_is_named(tmp_path):
    # issue 22.1: transformers returns the default (paper-sized) config for a folder without config.json
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(OSError, match=r"no config.json in .*: not a saved model folder"):
        MultiStillConfig.from_pretrained(tmp_path)
