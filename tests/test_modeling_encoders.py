"""Encoders and their pretrained weights (multistill.modeling_encoders): layer selection, a light student from a
teacher, a model built around pretrained encoders. (Whisper at the utterance's length: test_modeling_heads.py
and test_whisper_encoder.py; damaged saved folders: test_modeling_multistill.py.)"""

from __future__ import annotations

import pytest
import torch
from _fixtures_model import TEXTS, make_model, sharpen, tiny_encoder_dirs, waves
from transformers import AutoModel, Wav2Vec2Config
from transformers.modeling_outputs import SequenceClassifierOutput

from multistill.configuration_multistill import MultiStillConfig
from multistill.modeling_encoders import select_teacher_layers
from multistill.modeling_multistill import MultiStillForEmotionClassification


# ------------------------------------------------------------------------------------------ a student from a teacher
def test_select_teacher_layers():
    assert select_teacher_layers(24, 2) == [0, 23]
    assert select_teacher_layers(24, 4) == [0, 7, 15, 23]
    assert select_teacher_layers(12, 2) == [0, 11]
    assert select_teacher_layers(3, 1) == [2]
    assert select_teacher_layers(4, 4) == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        select_teacher_layers(2, 3)


def _tiny_teacher() -> MultiStillForEmotionClassification:
    audio = Wav2Vec2Config(hidden_size=32, num_hidden_layers=5, num_attention_heads=4, intermediate_size=64,
                           conv_dim=(16, 16), conv_kernel=(10, 8), conv_stride=(5, 64), feat_extract_norm="layer",
                           do_stable_layer_norm=True, num_conv_pos_embeddings=8, num_conv_pos_embedding_groups=4)
    text = {"model_type": "electra", "vocab_size": 100, "embedding_size": 16, "hidden_size": 32,
            "num_hidden_layers": 4, "num_attention_heads": 4, "intermediate_size": 64,
            "max_position_embeddings": 128}
    config = MultiStillConfig.from_preset(
        "teacher", audio_config=audio, text_config=text, hidden_size=32, num_attention_heads=4,
        fusion_intermediate_size=64, classifier_hidden_size=16,
    )
    torch.manual_seed(0)
    teacher = MultiStillForEmotionClassification(config).eval()
    sharpen(teacher)
    return teacher


def test_light_student_from_teacher_copies_the_selected_layers():
    teacher = _tiny_teacher()
    student = MultiStillForEmotionClassification.light_student_from_teacher(
        teacher, audio_layers=2, text_layers=2, fbank_position_embedding="conv", num_mel_bins=20,
        fbank_conv_channels=16,
    )
    assert student.config.audio_frontend == "fbank" and student.config.num_fusion_layers == 1
    s, t = student.multistill, teacher.multistill

    def same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)

    # audio: wav2vec2 layers 0 and 4 of 5 -> the fbank encoder's layers 0 and 1 (identical parameter names)
    assert same(s.audio_encoder.encoder.layers[0], t.audio_encoder.encoder.layers[0])
    assert same(s.audio_encoder.encoder.layers[1], t.audio_encoder.encoder.layers[4])
    assert not same(s.audio_encoder.encoder.layers[1], t.audio_encoder.encoder.layers[1])
    assert same(s.audio_encoder.encoder.layer_norm, t.audio_encoder.encoder.layer_norm)
    assert same(s.audio_encoder.encoder.pos_conv_embed, t.audio_encoder.encoder.pos_conv_embed)
    # text: ELECTRA embeddings + layers 0 and 3 of 4
    assert same(s.text_encoder.embeddings, t.text_encoder.embeddings)
    assert same(s.text_encoder.embeddings_project, t.text_encoder.embeddings_project)
    assert same(s.text_encoder.encoder.layer[0], t.text_encoder.encoder.layer[0])
    assert same(s.text_encoder.encoder.layer[1], t.text_encoder.encoder.layer[3])
    # fusion: the teacher's last of 3 layers + final LayerNorm; projection and classifier
    for name in ("audio_to_text", "text_to_audio"):
        assert same(getattr(s, name).layers[0], getattr(t, name).layers[2])
        assert same(getattr(s, name).layer_norm, getattr(t, name).layer_norm)
    assert same(s.audio_projection, t.audio_projection)
    assert same(student.classifier, teacher.classifier)
    # explicit layer lists are honoured and reported
    report = student.init_light_student_from_teacher(teacher, audio_layers=[1, 2], text_layers=[2, 3])
    assert report == {"audio": [1, 2], "text": [2, 3], "audio_to_text": [2], "text_to_audio": [2]}
    assert same(s.audio_encoder.encoder.layers[0], t.audio_encoder.encoder.layers[1])
    with pytest.raises(ValueError, match="must have 2 indices"):
        student.init_light_student_from_teacher(teacher, audio_layers=[1, 2, 3])


def test_light_student_with_conv_positions_is_padding_invariant():
    teacher = _tiny_teacher()
    student = MultiStillForEmotionClassification.light_student_from_teacher(
        teacher, fbank_position_embedding="conv", num_mel_bins=20, fbank_conv_channels=16
    ).eval()
    sharpen(student, seed=1)
    a, b = (torch.from_numpy(w) for w in waves(0.5, 1.7))
    ids_short, ids_long = torch.tensor([[2, 11, 12, 3]]), torch.tensor([[2, 11, 12, 13, 14, 15, 3]])
    padded_audio = torch.stack([torch.nn.functional.pad(a, (0, len(b) - len(a))), b])
    audio_mask = torch.stack([torch.arange(len(b)) < len(a), torch.ones(len(b), dtype=torch.bool)]).long()
    padded_ids = torch.cat([torch.nn.functional.pad(ids_short, (0, 3)), ids_long])
    text_mask = (torch.arange(7)[None] < torch.tensor([[4], [7]])).long()
    with torch.no_grad():
        alone = student(input_values=a[None], input_ids=ids_short).logits
        batch = student(input_values=padded_audio, attention_mask=audio_mask, input_ids=padded_ids,
                        text_attention_mask=text_mask).logits
        _, frame_mask = student.encode_audio(padded_audio, audio_mask)
    torch.testing.assert_close(batch[:1], alone, atol=1e-5, rtol=0)
    assert frame_mask.sum(-1).tolist() == [12, 42]  # 25 frames/s (10 ms hop, strides 2 x 2)


# ------------------------------------------------------------------------------------------ from pretrained encoders
def test_fbank_student_from_pretrained_encoders():
    # ``from_encoders(preset="light_student")`` copies layers of the pretrained encoders into the fbank student
    dirs = tiny_encoder_dirs()
    student = MultiStillForEmotionClassification.from_encoders(
        dirs["audio"], dirs["text"], preset="light_student", audio_layers=1, text_layers=1, hidden_size=32,
        num_attention_heads=4, num_mel_bins=40, fbank_conv_channels=32,
    )
    audio = AutoModel.from_pretrained(dirs["audio"])
    assert torch.equal(student.multistill.audio_encoder.encoder.layers[0].feed_forward.output_dense.weight,
                       audio.encoder.layers[1].feed_forward.output_dense.weight)
    assert student.config.audio_config.num_hidden_layers == 1
    assert student.config.audio_encoder_name == dirs["audio"]


def test_from_encoders_copies_weights_and_skips_unused_encoders():
    dirs = tiny_encoder_dirs()
    model = MultiStillForEmotionClassification.from_encoders(dirs["audio"], dirs["text"], preset="teacher",
                                                              hidden_size=32, num_attention_heads=4)
    audio, text = AutoModel.from_pretrained(dirs["audio"]), AutoModel.from_pretrained(dirs["text"])
    for ours, theirs in ((model.multistill.audio_encoder, audio), (model.multistill.text_encoder, text)):
        reference = theirs.state_dict()
        assert all(torch.equal(v, reference[k]) for k, v in ours.state_dict().items())
    text_only = MultiStillForEmotionClassification.from_encoders(text_encoder=dirs["text"], preset="text_student",
                                                                 hidden_size=32, num_attention_heads=4)
    assert text_only.multistill.audio_encoder is None
    assert text_only.multistill.audio_projection.weight.shape == (32, 1024, 1)  # default audio width, no download
    with pytest.raises(ValueError, match="preset"):
        MultiStillForEmotionClassification.from_encoders(dirs["audio"], dirs["text"], preset="huge")


def test_from_encoders_uses_the_loaded_encoders_without_a_random_copy():
    """transformers 5 convention: the loaded encoders become the model's (no second, randomly initialised one)."""
    dirs = tiny_encoder_dirs()
    audio, text = AutoModel.from_pretrained(dirs["audio"]), AutoModel.from_pretrained(dirs["text"])
    layers = len(audio.encoder.layers)
    chosen = audio.encoder.layers[layers - 1]
    model = MultiStillForEmotionClassification.from_encoders(audio, text, preset="teacher", audio_layers=[layers - 1],
                                                              hidden_size=32, num_attention_heads=4)
    assert model.multistill.audio_encoder is audio and model.multistill.text_encoder is text
    assert list(audio.encoder.layers) == [chosen] and model.config.audio_config.num_hidden_layers == 1
    processor = make_model("teacher")[1]
    inputs = processor(audio=waves(0.7), text=TEXTS[:1], sampling_rate=16000)
    assert isinstance(model(**inputs), SequenceClassifierOutput)
