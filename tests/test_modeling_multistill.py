"""MultiStill models: parameter counts, masking, cached features, losses, freezing, saving, Auto classes.

(Building from pretrained encoders or a teacher: test_modeling_encoders.py; the fbank encoder:
test_modeling_fbank.py.)"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
from _fixtures_model import PRESET_NAMES, TEXTS, damaged_copy, make_model, waves
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForAudioClassification,
    AutoModelForSequenceClassification,
    AutoProcessor,
)

from multistill.configuration_multistill import MultiStillConfig
from multistill.modeling_fbank import MultiStillFbankEncoder
from multistill.modeling_multistill import (
    MultiStillForEmotionClassification,
    MultiStillModel,
    MultiStillOutput,
)

PAPER_TRAINABLE = {
    "teacher": 44_107_271,
    "multimodal_student": 15_755_783,
    "text_student": 8_273_159,
    "audio_student": 8_273_159,
}


@functools.cache
def cached_model(preset: str):
    """Read-only models shared by the tests below (do not modify them)."""
    return make_model(preset)


def batch_for(processor, seconds, texts):
    return processor(audio=waves(*seconds), text=list(texts), sampling_rate=16000)


# ------------------------------------------------------------------------------------------ sizes
@pytest.mark.parametrize("preset", sorted(PAPER_TRAINABLE))
def test_full_size_trainable_parameter_counts(preset):
    with torch.device("meta"):
        model = MultiStillForEmotionClassification(MultiStillConfig.from_preset(preset))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == PAPER_TRAINABLE[preset]
    assert model.num_parameters(only_trainable=True) == PAPER_TRAINABLE[preset]
    # the audio projection (1024 -> 768, 1x1, no bias) is in every variant
    assert model.multistill.audio_projection.weight.shape == (768, 1024, 1)
    assert model.multistill.audio_projection.bias is None


def test_full_size_total_parameter_counts():
    totals = {}
    for preset in PRESET_NAMES:
        with torch.device("meta"):
            model = MultiStillForEmotionClassification(MultiStillConfig.from_preset(preset))
        totals[preset] = model.num_parameters()
    wav2vec2_large, kcelectra_base = 315_438_720, 123_954_432  # frozen encoders (Wav2Vec2Model, ElectraModel)
    assert totals["teacher"] == 44_107_271 + wav2vec2_large + kcelectra_base
    assert totals["audio_student"] == 8_273_159 + wav2vec2_large
    assert totals["text_student"] == 8_273_159 + kcelectra_base
    assert totals["light_student"] < totals["teacher"] / 4
    # the light student's size did not change when its front end became a model of its own (measured with the
    # code of commit 99423af: 94,548,231 parameters, 25,716,736 in the audio encoder)
    assert totals["light_student"] == 94_548_231
    with torch.device("meta"):
        light = MultiStillForEmotionClassification(MultiStillConfig.from_preset("light_student"))
    assert sum(p.numel() for p in light.multistill.audio_encoder.parameters()) == 25_716_736
    assert type(light.multistill.audio_encoder) is MultiStillFbankEncoder


def test_branches_per_preset():
    expected = {
        "teacher": ["audio_to_text", "text_to_audio"],
        "multimodal_student": ["audio_to_text", "text_to_audio"],
        "text_student": ["text_self_attention"],
        "audio_student": ["audio_self_attention"],
        "light_student": ["audio_to_text", "text_to_audio"],
    }
    for preset, names in expected.items():
        model, _ = cached_model(preset)
        assert model.multistill.fusion_names == names
        assert (model.multistill.audio_encoder is None) == (preset == "text_student")
        assert (model.multistill.text_encoder is None) == (preset == "audio_student")
        layers = 3 if preset == "teacher" else 1
        assert all(len(getattr(model.multistill, n).layers) == layers for n in names)


# ------------------------------------------------------------------------------------------ masking
@pytest.mark.parametrize("preset", PRESET_NAMES)
def test_padding_never_changes_a_prediction(preset):
    model, processor = cached_model(preset)
    alone = batch_for(processor, [0.7], TEXTS[1:2])
    padded = batch_for(processor, [0.7, 2.3], [TEXTS[1], TEXTS[0]])
    assert padded["input_values"].shape[1] > alone["input_values"].shape[1]
    assert padded["input_ids"].shape[1] > alone["input_ids"].shape[1]
    with torch.no_grad():
        single, batch = model(**alone), model(**padded)
    torch.testing.assert_close(batch.logits[:1], single.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(batch.pooled_features[:1], single.pooled_features, atol=1e-5, rtol=0)
    # the check is meaningful: the two utterances get clearly different outputs
    assert (batch.logits[0] - batch.logits[1]).abs().max() > 1e-2


@pytest.mark.parametrize("preset", ["teacher", "light_student", "audio_student", "text_student"])
def test_cached_features_give_the_raw_path_logits(preset):
    model, processor = cached_model(preset)
    inputs = batch_for(processor, [0.7, 2.3, 1.1], TEXTS)
    with torch.no_grad():
        raw = model(**inputs, output_hidden_states=True)
        # cache each utterance on its own, as a training script would, then pad the cached tensors
        audio, text = [], []
        for i in range(3):
            if model.config.use_audio:
                n = int(inputs["attention_mask"][i].sum())
                hidden, mask = model.encode_audio(inputs["input_values"][i : i + 1, :n])
                audio.append(hidden[0, : int(mask.sum())])
            if model.config.use_text:
                n = int(inputs["text_attention_mask"][i].sum())
                hidden, mask = model.encode_text(inputs["input_ids"][i : i + 1, :n])
                text.append(hidden[0, : int(mask.sum())])
        kwargs = {}
        for name, items in (("audio", audio), ("text", text)):
            if items:
                states = torch.nn.utils.rnn.pad_sequence(items, batch_first=True)
                mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(x), dtype=torch.long) for x in items],
                                                       batch_first=True)
                kwargs[f"{name}_hidden_states"], kwargs[f"{name}_hidden_mask"] = states, mask
        cached = model(**kwargs)
        # the encoder outputs returned with output_hidden_states are the same cacheable tensors
        again = model(audio_hidden_states=raw.audio_hidden_states, audio_hidden_mask=raw.audio_hidden_mask,
                      text_hidden_states=raw.text_hidden_states, text_hidden_mask=raw.text_hidden_mask)
    torch.testing.assert_close(cached.logits, raw.logits, atol=1e-5, rtol=0)
    torch.testing.assert_close(again.logits, raw.logits, atol=1e-5, rtol=0)


def test_truncation_to_max_lengths():
    model, processor = make_model("teacher", max_audio_frames=20, max_text_tokens=5)
    inputs = processor(audio=waves(1.0), text=[TEXTS[0]], sampling_rate=16000, modalities="both")
    assert inputs["input_values"].shape[1] == 20 * 320  # the processor follows the config
    assert inputs["input_ids"].shape[1] == 5
    long_inputs = {"input_values": torch.from_numpy(waves(1.0)[0])[None], "input_ids": torch.arange(2, 12)[None]}
    with torch.no_grad():
        out = model(**long_inputs, output_hidden_states=True)
        hidden, mask = model.encode_audio(long_inputs["input_values"])
    assert out.audio_hidden_states.shape[1] == 20 and hidden.shape[1] == 20 and mask.shape == (1, 20)
    assert out.text_hidden_states.shape[1] == 5


def test_wav2vec2_frame_mask_and_rate():
    model, processor = cached_model("teacher")
    inputs = processor(audio=waves(1.0, 0.5), text=TEXTS[:2], sampling_rate=16000)
    _, mask = model.encode_audio(inputs["input_values"], inputs["attention_mask"])
    assert mask.sum(-1).tolist() == [49, 24]  # 50 frames/s, receptive field 400 samples


def test_missing_modality_errors():
    model, _ = cached_model("teacher")
    with pytest.raises(ValueError, match="needs text"):
        model(input_values=torch.zeros(1, 8000))
    with pytest.raises(ValueError, match="needs audio"):
        model(input_ids=torch.tensor([[2, 10, 3]]))
    text_model, _ = cached_model("text_student")
    with torch.no_grad():  # inputs of unused modalities are ignored, so one processor serves every model
        assert text_model(input_ids=torch.tensor([[2, 10, 3]]), input_values=torch.zeros(1, 8000)).logits.shape == (1, 7)
    with pytest.raises(ValueError, match="no audio branch"):
        text_model.encode_audio(torch.zeros(1, 8000))
    with pytest.raises(ValueError, match="without any valid position"):
        model(input_values=torch.zeros(1, 8000), attention_mask=torch.zeros(1, 8000),
              input_ids=torch.tensor([[2, 3]]))
    with pytest.raises(ValueError, match="receptive field"):
        model(input_values=torch.zeros(1, 300), input_ids=torch.tensor([[2, 3]]))


# ------------------------------------------------------------------------------------------ losses & grads
def test_hard_and_soft_labels_train_only_the_head_when_frozen():
    model, processor = make_model("teacher")
    inputs = batch_for(processor, [0.7, 1.3], TEXTS[:2])
    votes = torch.tensor([[7.0, 3, 0, 0, 0, 0, 0], [0, 0, 0, 5, 0, 5, 0]])
    with torch.no_grad():  # eval mode: deterministic
        hard = model(**inputs, labels=torch.tensor([0, 3]))
        soft = model(**inputs, labels=votes)
        soft_normalised = model(**inputs, labels=votes / 10)
        onehot = model(**inputs, labels=torch.nn.functional.one_hot(torch.tensor([0, 3]), 7).float())
    assert isinstance(hard, MultiStillOutput)
    assert torch.isfinite(hard.loss) and torch.isfinite(soft.loss)
    torch.testing.assert_close(soft.loss, soft_normalised.loss)  # vote counts are normalised
    torch.testing.assert_close(onehot.loss, hard.loss)
    expected = -(votes / 10 * hard.logits.log_softmax(-1)).sum(-1).mean()
    torch.testing.assert_close(soft.loss, expected)

    model.train()
    assert not model.multistill.audio_encoder.training and not model.multistill.text_encoder.training
    loss = model(**inputs, labels=torch.tensor([0, 3])).loss + model(**inputs, labels=votes).loss
    loss.backward()
    for name, param in model.named_parameters():
        in_encoder = ".audio_encoder." in name or ".text_encoder." in name
        assert param.requires_grad is not in_encoder, name
        assert (param.grad is None) is in_encoder, name
    assert model.multistill.audio_projection.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="Soft labels"):
        model(**inputs, labels=torch.ones(2, 3))


def test_unfrozen_encoders_train():
    model, processor = make_model("light_student")
    assert model.config.freeze_encoders is False
    model.train()
    assert model.multistill.audio_encoder.training
    out = model(**batch_for(processor, [0.7, 1.3], TEXTS[:2]), labels=torch.tensor([1, 2]))
    out.loss.backward()
    layer = model.multistill.audio_encoder.encoder.layers[0]
    assert layer.attention.q_proj.weight.grad is not None
    assert model.multistill.text_encoder.embeddings.word_embeddings.weight.grad is not None
    model.set_encoders_frozen(True)
    assert not any(p.requires_grad for p in model.multistill.text_encoder.parameters())


def test_return_tuple_and_attentions():
    model, processor = cached_model("multimodal_student")
    inputs = batch_for(processor, [0.7], TEXTS[:1])
    with torch.no_grad():
        out = model(**inputs, output_attentions=True)
        as_tuple = model(**inputs, return_dict=False)
    assert len(out.attentions) == 2 and out.attentions[0].shape[:2] == (1, model.config.num_attention_heads)
    torch.testing.assert_close(as_tuple[0], out.logits)
    bare = model.multistill(**inputs)
    assert bare.pooled_features.shape == (1, 2 * model.config.hidden_size)


# ------------------------------------------------------------------------------------------ save / load
def test_save_load_round_trip_safetensors_only(tmp_path):
    model, processor = cached_model("teacher")
    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    files = set(os.listdir(tmp_path))
    assert "model.safetensors" in files and not any(f.endswith((".bin", ".pt", ".pth")) for f in files)
    assert {"configuration_multistill.py", "modeling_multistill.py", "processing_multistill.py",
            "annotations.py"} <= files
    auto_map = json.loads((tmp_path / "config.json").read_text())["auto_map"]  # written by register_for_auto_class
    assert auto_map == {"AutoConfig": "configuration_multistill.MultiStillConfig",
                        "AutoModelForAudioClassification": "modeling_multistill.MultiStillForEmotionClassification"}
    loaded = MultiStillForEmotionClassification.from_pretrained(tmp_path)
    assert not loaded.training
    assert not any(p.requires_grad for p in loaded.multistill.audio_encoder.parameters())
    inputs = batch_for(processor, [0.7, 1.5], TEXTS[:2])
    with torch.no_grad():
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=0, rtol=0)
    # in-process Auto classes
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MultiStillConfig)
    assert type(AutoModel.from_pretrained(tmp_path)) is MultiStillModel
    assert type(AutoModelForSequenceClassification.from_pretrained(tmp_path)) is MultiStillForEmotionClassification
    assert type(AutoModelForAudioClassification.from_pretrained(tmp_path)) is MultiStillForEmotionClassification
    assert type(AutoProcessor.from_pretrained(tmp_path)).__name__ == "MultiStillProcessor"
    assert type(AutoModel.from_config(model.config)) is MultiStillModel


@pytest.mark.parametrize(
    ("damage", "error", "message"),
    [
        ("no_config", OSError, r"no config.json in .*no_config: not a saved model folder"),
        ("truncated_weights", OSError, r"truncated_weights/model.safetensors: damaged safetensors file"),
        ("num_labels", ValueError, r"num_labels/config.json does not match the weights: classifier"),
        ("pickle_weights", OSError, r"pickle_weights/pytorch_model.bin: pickle weights are refused"),
        ("absurd_size", ValueError, r"`hidden_size` is 65536, above 8192"),
    ],
)
def test_damaged_folder_is_refused_naming_the_file_before_building(tmp_path, damage, error, message):
    # issue 22.1, 22.3, 22.4: one error naming the file, raised before the weights are loaded (today: a default,
    # 455 M-parameter model and a size-mismatch report, a SafetensorError, or a pickle that is loaded)
    model, _ = cached_model("text_student")
    model.save_pretrained(tmp_path / "saved")
    folder = damaged_copy(str(tmp_path / "saved"), damage, tmp_path / damage)
    classes = [MultiStillForEmotionClassification]
    classes += [MultiStillModel] if damage != "num_labels" else []  # the bare model has no classifier
    classes += [AutoModelForSequenceClassification] if damage != "no_config" else []  # Auto needs config.json
    for model_class in classes:
        with pytest.raises(error, match=message):
            model_class.from_pretrained(folder)
    if damage == "absurd_size":  # (the Auto classes read config.json before this package's code runs)
        with pytest.raises(ValueError, match="absurd_size/config.json: `hidden_size`"):
            MultiStillForEmotionClassification.from_pretrained(folder)


def test_light_student_round_trip(tmp_path):
    model, processor = cached_model("light_student")
    model.save_pretrained(tmp_path)
    loaded = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    inputs = batch_for(processor, [0.7, 1.5], TEXTS[:2])
    with torch.no_grad():  # the mel filterbank (non-persistent buffer) is rebuilt on load
        torch.testing.assert_close(loaded(**inputs).logits, model(**inputs).logits, atol=1e-6, rtol=0)


FRESH_PROCESS = textwrap.dedent(
    """
    import sys, torch
    from transformers import AutoModel, AutoModelForAudioClassification, AutoProcessor
    folder, inputs_path, out_path = sys.argv[1:4]
    model = AutoModelForAudioClassification.from_pretrained(folder, trust_remote_code=True)
    processor = AutoProcessor.from_pretrained(folder, trust_remote_code=True)
    bare = AutoModel.from_pretrained(folder + "/base", trust_remote_code=True)  # a saved MultiStillModel
    assert "multistill" not in sys.modules, "the folder must be self-contained"
    assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
    assert type(processor).__name__ == "MultiStillProcessor" and type(bare).__name__ == "MultiStillModel"
    audio_trainable = any(p.requires_grad for p in model.multistill.audio_encoder.parameters())
    assert audio_trainable is ("audio" not in model.config.frozen_modalities)
    raw = torch.load(inputs_path)
    batch = processor(audio=[w.numpy() for w in raw["audio"]], text=raw["text"], sampling_rate=16000)
    with torch.no_grad():
        torch.save({"logits": model(**batch).logits, "input_ids": batch["input_ids"]}, out_path)
    """
)


@pytest.mark.parametrize("preset", ["teacher", "light_student"])
def test_fresh_process_loads_with_remote_code(tmp_path, preset):
    model, processor = cached_model(preset)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    model.multistill.save_pretrained(folder / "base")
    audio, texts = waves(0.7, 1.5), TEXTS[:2]
    torch.save({"audio": [torch.from_numpy(w) for w in audio], "text": texts}, tmp_path / "inputs.pt")
    script = tmp_path / "load.py"
    script.write_text(FRESH_PROCESS)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    result = subprocess.run(
        [sys.executable, "-I", str(script), str(folder), str(tmp_path / "inputs.pt"), str(tmp_path / "out.pt")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    fresh = torch.load(tmp_path / "out.pt")
    batch = processor(audio=audio, text=texts, sampling_rate=16000)
    with torch.no_grad():
        logits = model(**batch).logits
    assert torch.equal(fresh["input_ids"], batch["input_ids"])
    torch.testing.assert_close(fresh["logits"], logits, atol=1e-6, rtol=0)


def test_bf16_forward_runs():
    model, processor = make_model("light_student")
    model = model.to(torch.bfloat16)
    inputs = batch_for(processor, [0.6], TEXTS[:1])
    with torch.no_grad():
        logits = model(**inputs).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()
    assert np.isfinite(logits.float().numpy()).all()


# ------------------------------------------------------------------------------------------ explicit arguments
def test_unknown_forward_arguments_raise():
    model, processor = cached_model("teacher")
    inputs = batch_for(processor, [0.7], TEXTS[:1])
    with pytest.raises(TypeError, match="labelz"):
        model(**inputs, labelz=torch.tensor([1]))
    with pytest.raises(TypeError, match="emotion"):
        model.multistill(**inputs, emotion=torch.tensor([1]))


# ------------------------------------------------------------------------------------------ per-modality freezing
def test_per_modality_freezing_is_saved(tmp_path):
    model, processor = make_model("teacher", freeze_text_encoder=False)
    assert model.config.frozen_modalities == ["audio"]
    model.train()
    assert not model.multistill.audio_encoder.training and model.multistill.text_encoder.training
    model(**batch_for(processor, [0.7, 1.3], TEXTS[:2]), labels=torch.tensor([1, 2])).loss.backward()
    assert all(p.grad is None for p in model.multistill.audio_encoder.parameters())
    assert model.multistill.text_encoder.embeddings.word_embeddings.weight.grad is not None
    model.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert (saved["freeze_audio_encoder"], saved["freeze_text_encoder"]) == (True, False)
    loaded = MultiStillForEmotionClassification.from_pretrained(tmp_path)
    assert loaded.config.frozen_modalities == ["audio"]
    assert not any(p.requires_grad for p in loaded.multistill.audio_encoder.parameters())
    assert all(p.requires_grad for p in loaded.multistill.text_encoder.parameters())
    loaded.set_encoders_frozen(True, modalities=["text"])
    assert loaded.config.frozen_modalities == ["audio", "text"]
    assert not any(p.requires_grad for p in loaded.multistill.text_encoder.parameters())


# ------------------------------------------------------------------------------------------ earlier versions
@pytest.mark.parametrize("position", ["sinusoidal", "conv"])
def test_light_student_saved_by_earlier_versions_loads(position):
    # folders written by the code of commit 99423af (tests/fixtures/make_light_student_v0.py): a light student
    # was `audio_frontend="fbank"` + a wav2vec2 audio_config + flat fbank keys, with its own logits
    folder = Path(__file__).parent / "fixtures" / f"light_student_v0_{position}"
    expected = json.loads((folder / "expected_logits.json").read_text())
    model, info = MultiStillForEmotionClassification.from_pretrained(folder, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(model.multistill.audio_encoder) is MultiStillFbankEncoder
    assert model.config.audio_config.position_embedding == position and model.config.audio_config.num_mel_bins == 12
    assert model.config.frozen_modalities == []  # freeze_encoders=false
    rng = np.random.default_rng(0)
    clips = []
    for i, seconds in enumerate(expected["seconds"]):
        t = np.arange(int(seconds * 16000)) / 16000
        tone = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t * (1 + t))
        clips.append(torch.from_numpy((tone + 0.05 * rng.standard_normal(t.shape)).astype(np.float32)))
    values = torch.nn.utils.rnn.pad_sequence(clips, batch_first=True)
    mask = (torch.arange(values.shape[1])[None] < torch.tensor([[len(c)] for c in clips])).long()
    with torch.no_grad():
        logits = model(input_values=values, attention_mask=mask, input_ids=torch.tensor(expected["input_ids"]),
                       text_attention_mask=torch.tensor(expected["text_attention_mask"])).logits
        auto = AutoModelForSequenceClassification.from_pretrained(folder)
        auto_logits = auto(input_values=values, attention_mask=mask, input_ids=torch.tensor(expected["input_ids"]),
                           text_attention_mask=torch.tensor(expected["text_attention_mask"])).logits
    torch.testing.assert_close(logits, torch.tensor(expected["logits"]), atol=1e-6, rtol=0)
    torch.testing.assert_close(auto_logits, logits, atol=0, rtol=0)


# ------------------------------------------------------------------------------------------ other encoders
@pytest.mark.parametrize(("audio", "text"), [("hubert", "bert"), ("wavlm", "xlm-roberta"), ("data2vec-audio", "bert")])
def test_other_hugging_face_encoders(audio, text):
    model, processor = make_model("teacher", audio=audio, text=text)
    assert model.config.audio_config.model_type == audio and model.config.text_config.model_type == text
    assert type(model.multistill.audio_encoder).__name__.lower().startswith(audio.replace("-", "")[:5])
    assert processor.samples_per_frame == 320 and processor.min_audio_samples == 400
    inputs = batch_for(processor, [0.5, 1.0], TEXTS[1::-1])
    with torch.no_grad():
        out = model(**inputs, output_hidden_states=True)
        alone = model(**batch_for(processor, [0.5], TEXTS[1:2]))
    assert out.audio_hidden_mask.sum(-1).tolist() == [24, 49]  # 50 frames/s, receptive field 400 samples
    assert torch.isfinite(out.logits).all() and out.logits.shape == (2, 7)
    assert (out.logits[0] - out.logits[1]).abs().max() > 1e-2
    if audio == "data2vec-audio":
        # its positional embedding stacks 5 convolutions + LayerNorm, so padding leaks into the last valid frames
        # (a property of the model, like base wav2vec2's group norm): only the frame mask is exact
        assert (out.logits[:1] - alone.logits).abs().max() > 1e-4
    else:  # layer-normalised conv features, one positional convolution: batch padding changes nothing
        torch.testing.assert_close(out.logits[:1], alone.logits, atol=1e-5, rtol=0)
