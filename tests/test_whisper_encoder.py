"""Whisper as the audio encoder: encoder-only loading, real-frame masks, light student, save/load, pipeline."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from _fixtures_model import TEXTS, make_model, sharpen, tiny_encoder_dirs, waves
from safetensors import safe_open
from transformers import (
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForSequenceClassification,
    AutoProcessor,
    WhisperFeatureExtractor,
    WhisperModel,
    pipeline,
)
from transformers.models.whisper.modeling_whisper import WhisperEncoder

from multistill.modeling_encoders import select_teacher_layers
from multistill.modeling_multistill import MultiStillForEmotionClassification
from multistill.pipeline_multistill import TASK, save_pretrained_with_pipeline
from multistill.processing_multistill import MultiStillProcessor


def whisper_dirs() -> dict[str, str]:
    """A tiny ``WhisperForConditionalGeneration`` folder (as the conversion writes) + a tiny ELECTRA."""
    return tiny_encoder_dirs("whisper")


@functools.cache
def whisper_model(preset: str = "teacher", **overrides):
    """Read-only tiny Whisper-encoder models shared by the tests below (do not modify them)."""
    return make_model(preset, audio="whisper", **overrides)


def recipe_shaped_teacher(tmp_path) -> tuple[str, MultiStillForEmotionClassification]:
    """The recipe's teacher shape in miniature: tiny Whisper + an n-gram text encoder built from ``TEXTS``, pooled
    concat fusion, linear head, context 2; returns the n-gram folder and the (sharpened) teacher."""
    from multistill.offline import build_ngram_text_encoder

    ngram = build_ngram_text_encoder(tmp_path / "ngram", list(TEXTS), hidden_size=16, num_buckets=512)
    teacher = MultiStillForEmotionClassification.from_encoders(
        whisper_dirs()["audio"], ngram, preset="teacher", hidden_size=32, num_attention_heads=4,
        fusion_type="concat", classifier_hidden_size=0, context_size=2)
    sharpen(teacher)
    return ngram, teacher


def test_from_encoders_loads_only_the_whisper_encoder(tmp_path):
    dirs = whisper_dirs()
    model = MultiStillForEmotionClassification.from_encoders(dirs["audio"], dirs["text"], preset="teacher",
                                                              hidden_size=32, num_attention_heads=4)
    encoder = model.multistill.audio_encoder
    assert type(encoder) is WhisperEncoder and model.audio_input_name == "input_features"
    assert model.config.audio_config.model_type == "whisper" and model.config.audio_encoder_name == dirs["audio"]
    assert not any("decoder" in name for name in model.state_dict())
    reference = WhisperModel.from_pretrained(dirs["audio"]).encoder.state_dict()
    assert all(torch.equal(value, reference[name]) for name, value in encoder.state_dict().items())
    model.save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as weights:
        names = list(weights.keys())
    assert any(n.startswith("multistill.audio_encoder.layers.") for n in names)
    assert not any("decoder" in n for n in names)  # no decoder in the saved weights either
    # the frozen audio encoder; Whisper's sinusoidal positions are never trainable
    assert model.config.frozen_modalities == ["audio", "text"]
    assert not any(p.requires_grad for p in encoder.parameters())


def test_processor_takes_the_whisper_feature_extractor():
    model, processor = whisper_model()
    assert isinstance(processor.feature_extractor, WhisperFeatureExtractor)
    assert (processor.samples_per_frame, processor.audio_window_samples) == (320, None)  # the utterance's length
    assert not getattr(processor.feature_extractor, "do_normalize", False)  # Whisper's features are used as Whisper was trained
    batch = processor(audio=waves(1.0), text=TEXTS[:1], sampling_rate=16000)
    assert batch["input_features"].shape == (1, 80, 100) and "input_values" not in batch


def test_short_and_long_clips_get_their_real_frames():
    model, processor = whisper_model("teacher", max_audio_frames=1500)
    batch = processor(audio=waves(0.3, 12.0), text=TEXTS[:2], sampling_rate=16000)
    with torch.no_grad():
        hidden, mask = model.encode_audio(input_features=batch["input_features"], attention_mask=batch["attention_mask"])
        together = model(**batch, output_hidden_states=True)
        alone = [model(**processor(audio=waves(0.3, 12.0)[i], text=TEXTS[i], sampling_rate=16000),
                       output_hidden_states=True) for i in range(2)]
    # 50 frames/s: 0.3 s -> 15 frames, 12 s -> 600 frames (of Whisper's 1500), the rest masked and cut
    assert mask.sum(-1).tolist() == [15, 600] and hidden.shape[1] == 600
    assert alone[0].audio_hidden_states.shape[1] == 15
    # batch padding never changes the real frames nor the logits
    torch.testing.assert_close(together.audio_hidden_states[0, :15], alone[0].audio_hidden_states[0],
                               atol=1e-5, rtol=0)
    for i in range(2):
        torch.testing.assert_close(together.logits[i : i + 1], alone[i].logits, atol=1e-5, rtol=0)
    assert (together.logits[0] - together.logits[1]).abs().max() > 1e-2  # the check is meaningful
    # max_audio_frames truncates (the processor keeps 512 x 320 samples = 10.24 s by default)
    short_model, short_processor = whisper_model("teacher")
    long = short_processor(audio=waves(12.0), text=TEXTS[:1], sampling_rate=16000)
    with torch.no_grad():
        _, long_mask = short_model.encode_audio(input_features=long["input_features"],
                                                attention_mask=long["attention_mask"])
    assert long_mask.sum().item() == 512


def test_wrong_audio_input_is_named():
    model, _ = whisper_model()
    with pytest.raises(ValueError, match="takes `input_features`, not `input_values`"):
        model(input_values=torch.zeros(1, 16000), input_ids=torch.tensor([[2, 3]]))
    with pytest.raises(ValueError, match="needs audio: pass `input_features`"):
        model(input_ids=torch.tensor([[2, 3]]))


def test_frozen_whisper_with_a_trained_text_encoder():
    model, processor = make_model("teacher", audio="whisper", freeze_text_encoder=False)
    assert model.config.frozen_modalities == ["audio"]
    model.train()
    assert not model.multistill.audio_encoder.training and model.multistill.text_encoder.training
    model(**processor(audio=waves(0.5, 0.8), text=TEXTS[:2], sampling_rate=16000),
          labels=torch.tensor([1, 2])).loss.backward()
    for name, parameter in model.named_parameters():
        in_audio = ".audio_encoder." in name
        assert parameter.requires_grad is not in_audio, name
        assert (parameter.grad is None) is in_audio, name
    # unfreezing the audio encoder trains it, except the positions Whisper itself keeps fixed
    model.set_encoders_frozen(False, modalities="audio")
    encoder = model.multistill.audio_encoder
    assert model.config.frozen_modalities == [] and encoder.conv1.weight.requires_grad
    assert not encoder.embed_positions.weight.requires_grad


def test_light_student_from_a_whisper_teacher_keeps_whisper_layers():
    dirs = whisper_dirs()
    teacher = MultiStillForEmotionClassification.from_encoders(dirs["audio"], dirs["text"], preset="teacher",
                                                                hidden_size=32, num_attention_heads=4,
                                                                fusion_intermediate_size=64)
    sharpen(teacher)
    student = MultiStillForEmotionClassification.light_student_from_teacher(teacher, audio_layers=1, text_layers=1)
    s, t = student.multistill.audio_encoder, teacher.multistill.audio_encoder
    assert type(s) is WhisperEncoder and len(s.layers) == 1 and student.config.audio_frontend == "whisper"
    assert student.config.preset == "light_student" and student.config.frozen_modalities == []
    last = select_teacher_layers(len(t.layers), 1)[0]
    for name, value in s.layers[0].state_dict().items():
        assert torch.equal(value, t.layers[last].state_dict()[name]), name
    for part in ("conv1", "conv2", "embed_positions", "layer_norm"):  # Whisper's cheap front end is kept
        assert torch.equal(getattr(s, part).weight, getattr(t, part).weight), part
    processor = MultiStillProcessor.from_encoders(dirs["audio"], dirs["text"], config=student.config)
    with torch.no_grad():
        assert student(**processor(audio=waves(0.4), text=TEXTS[:1], sampling_rate=16000)).logits.shape == (1, 7)


def test_light_student_from_the_recipes_teacher(tmp_path):
    """The recipe's teacher (Whisper + n-gram text, pooled concat fusion, linear head, context) gives a light
    student: the n-gram encoder whole, the pooled branches' norms and projections, the classifier."""
    ngram, teacher = recipe_shaped_teacher(tmp_path)
    student = MultiStillForEmotionClassification.light_student_from_teacher(teacher, audio_layers=1, context_size=2)
    s, t = student.multistill, teacher.multistill
    assert len(s.audio_encoder.layers) == 1 and student.config.context_size == 2
    for name, value in t.text_encoder.state_dict().items():
        assert torch.equal(s.text_encoder.state_dict()[name], value), name
    for part in ("audio_norm", "audio_projection", "text_projection"):
        for name, value in getattr(t.branch_pooling, part).state_dict().items():
            assert torch.equal(getattr(s.branch_pooling, part).state_dict()[name], value), (part, name)
    assert s.branch_pooling.audio_layer_weights.shape[0] == 2  # its own layers + the embedding output
    assert torch.equal(student.classifier.out_proj.weight, teacher.classifier.out_proj.weight)


def test_light_student_with_whisper_convolutions_only(tmp_path):
    """``audio_layers=0``: Whisper's convolutions, positions and final norm, no transformer layer; it saves,
    reloads and gives the same logits; other audio encoders refuse 0."""
    from multistill.configuration_multistill import MultiStillConfig

    ngram, teacher = recipe_shaped_teacher(tmp_path)
    student = MultiStillForEmotionClassification.light_student_from_teacher(teacher, audio_layers=0, context_size=2)
    student.eval()
    s, t = student.multistill.audio_encoder, teacher.multistill.audio_encoder
    assert len(s.layers) == 0 and student.config.audio_config.num_hidden_layers == 0
    for part in ("conv1", "conv2", "embed_positions", "layer_norm"):
        assert torch.equal(getattr(s, part).weight, getattr(t, part).weight), part
    assert student.multistill.branch_pooling.audio_layer_weights.shape[0] == 1  # the embedding output only
    processor = MultiStillProcessor.from_encoders(whisper_dirs()["audio"], ngram, config=student.config)
    batch = processor(audio=waves(0.4, 0.9), text=TEXTS[:2], sampling_rate=16000)
    with torch.no_grad():
        logits = student(**batch).logits
    assert logits.shape == (2, 7)
    save_pretrained_with_pipeline(student, processor, tmp_path / "student")
    reloaded = MultiStillForEmotionClassification.from_pretrained(tmp_path / "student").eval()
    assert len(reloaded.multistill.audio_encoder.layers) == 0
    with torch.no_grad():
        torch.testing.assert_close(reloaded(**batch).logits, logits)
    # as a user runs it: the folder's own code through transformers' pipeline
    pipe = pipeline(TASK, model=str(tmp_path / "student"), trust_remote_code=True, device="cpu")
    scores = {item["label"]: item["score"] for item in pipe({"audio": waves(0.4)[0], "sampling_rate": 16000,
                                                             "text": TEXTS[0]}, top_k=None)}
    torch.testing.assert_close(torch.tensor([scores[student.config.id2label[i]] for i in range(7)]),
                               logits[0].softmax(-1), atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="0, Whisper's convolutions only"):
        MultiStillConfig.from_preset("light_student", audio_layers=0)  # the default wav2vec2-shaped encoder


def test_paper_student_around_the_teachers_whisper_encoder():
    teacher, processor = whisper_model()
    student = MultiStillForEmotionClassification.from_encoders(  # as distill.py builds the paper's students
        audio_encoder=teacher.multistill.audio_encoder, text_encoder=teacher.multistill.text_encoder,
        preset="audio_student", audio_config=teacher.config.audio_config, hidden_size=32, num_attention_heads=4,
    )
    assert type(student.multistill.audio_encoder) is WhisperEncoder and student.multistill.text_encoder is None
    reference = teacher.multistill.audio_encoder.state_dict()
    assert all(torch.equal(v, reference[k]) for k, v in student.multistill.audio_encoder.state_dict().items())
    inputs = processor(audio=waves(0.6), sampling_rate=16000, modalities="audio")
    with torch.no_grad():
        assert student(**inputs).logits.shape == (1, 7)


@functools.cache
def saved_whisper_folder() -> str:
    model, processor = whisper_model()
    folder = os.path.join(tiny_encoder_dirs("whisper")["audio"], "..", "saved-whisper-teacher")
    save_pretrained_with_pipeline(model, processor, folder)
    return os.path.abspath(folder)


def test_whisper_model_round_trip_and_pipeline():
    model, processor = whisper_model()
    folder = saved_whisper_folder()
    config = json.loads(open(os.path.join(folder, "config.json")).read())
    assert config["audio_config"]["model_type"] == "whisper" and config["preset"] == "teacher"
    inputs = processor(audio=waves(0.7, 1.9), text=TEXTS[:2], sampling_rate=16000)
    with torch.no_grad():
        expected = model(**inputs).logits
        for loader in (MultiStillForEmotionClassification, AutoModelForSequenceClassification,
                       AutoModelForAudioClassification):
            loaded = loader.from_pretrained(folder)
            assert type(loaded.multistill.audio_encoder) is WhisperEncoder
            torch.testing.assert_close(loaded(**inputs).logits, expected, atol=0, rtol=0)
        bare = AutoModel.from_pretrained(folder)
        torch.testing.assert_close(bare(**inputs).pooled_features, model.multistill(**inputs).pooled_features)
    reloaded = AutoProcessor.from_pretrained(folder)
    assert isinstance(reloaded.feature_extractor, WhisperFeatureExtractor)
    again = reloaded(audio=waves(0.7, 1.9), text=TEXTS[:2], sampling_rate=16000)
    assert all(torch.equal(again[k], inputs[k]) for k in inputs)
    pipe = pipeline(TASK, model=folder, trust_remote_code=True, device="cpu")
    scores = pipe({"audio": waves(0.7)[0], "sampling_rate": 16000, "text": TEXTS[0]})
    with torch.no_grad():
        direct = model(**processor(audio=waves(0.7), text=TEXTS[:1], sampling_rate=16000)).logits.softmax(-1)[0]
    by_label = {item["label"]: item["score"] for item in scores}
    got = torch.tensor([by_label[model.config.id2label[i]] for i in range(7)])
    torch.testing.assert_close(got, direct, atol=1e-5, rtol=0)


FRESH_PIPELINE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from transformers import pipeline
    folder, out = sys.argv[1:3]
    pipe = pipeline("multimodal-emotion-recognition", model=folder, trust_remote_code=True, device="cpu")
    assert type(pipe.model).__module__.startswith("transformers_modules"), type(pipe.model).__module__
    assert type(pipe.model.multistill.audio_encoder).__name__ == "WhisperEncoder"
    t = np.arange(11200) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 150 * t * (1 + t))).astype(np.float32)
    json.dump(pipe({"audio": wave, "sampling_rate": 16000, "text": "안녕하세요"}), open(out, "w"))
    """
)


def test_fresh_offline_process_runs_the_whisper_pipeline(tmp_path):
    import numpy as np

    script = tmp_path / "run.py"
    script.write_text(FRESH_PIPELINE)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run([sys.executable, "-I", str(script), saved_whisper_folder(), str(tmp_path / "out.json")],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = {item["label"]: item["score"] for item in json.loads((tmp_path / "out.json").read_text())}
    model, processor = whisper_model()
    t = np.arange(11200) / 16000
    wave = (0.3 * np.sin(2 * np.pi * 150 * t * (1 + t))).astype(np.float32)
    with torch.no_grad():
        direct = model(**processor(audio=wave, text="안녕하세요", sampling_rate=16000)).logits.softmax(-1)[0]
    got = torch.tensor([fresh[model.config.id2label[i]] for i in range(7)])
    torch.testing.assert_close(got, direct, atol=1e-5, rtol=0)
