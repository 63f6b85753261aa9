"""Offline tiny backbones: tokenizer training and tiny encoder folders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _fixtures_model import tiny_encoder_dirs, waves
from transformers import (
    AutoFeatureExtractor,
    AutoModel,
    AutoTokenizer,
    ElectraModel,
    Wav2Vec2Model,
    WhisperFeatureExtractor,
    WhisperModel,
)

from multistill.offline import TINY_FUSION, build_tiny_encoders, tiny_backbones, train_wordpiece_tokenizer


def test_wordpiece_tokenizer_keeps_hangul(tmp_path):
    texts = ["오늘 기분이 정말 좋아요.", "l/ 그게 (뭐야+뭐) 진짜 놀랐잖아!", "Hello 안녕"] * 3
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=300, out_dir=tmp_path)
    tokens = tokenizer.tokenize("오늘 기분이 정말 좋아요")
    assert tokens == ["오늘", "기분이", "정말", "좋아요"]  # whole syllables, no jamo decomposition
    assert tokenizer.tokenize("Hello")[0] == "Hello"  # no lower-casing
    assert "l/" not in tokenizer.get_vocab() and "뭐야" not in tokenizer.get_vocab()  # trained on cleaned text
    ids = tokenizer("정말 좋아요")["input_ids"]
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    assert reloaded.tokenize("오늘 기분이 정말 좋아요") == tokens
    assert reloaded("정말 좋아요")["input_ids"] == ids
    assert [reloaded.pad_token_id, reloaded.unk_token_id] == [0, 1]


def test_tiny_encoder_folders_load_with_auto_classes():
    dirs = tiny_encoder_dirs()
    audio = AutoModel.from_pretrained(dirs["audio"])
    text = AutoModel.from_pretrained(dirs["text"])
    assert isinstance(audio, Wav2Vec2Model) and isinstance(text, ElectraModel)
    assert audio.config.feat_extract_norm == "layer" and audio.config.do_stable_layer_norm
    assert int(torch.tensor(audio.config.conv_stride).prod()) == 320
    extractor = AutoFeatureExtractor.from_pretrained(dirs["audio"])
    assert extractor.sampling_rate == 16000 and extractor.return_attention_mask and extractor.do_normalize
    tokenizer = AutoTokenizer.from_pretrained(dirs["text"])
    assert len(tokenizer) == text.config.vocab_size
    with torch.no_grad():
        frames = audio(torch.zeros(1, 16000)).last_hidden_state
    assert frames.shape[1] == 49  # 50 frames per second, like wav2vec2-large


def test_tiny_backbones_builds_a_working_model_and_processor(tmp_path):
    model, processor = tiny_backbones(tmp_path, preset="audio_student")
    assert model.config.hidden_size == TINY_FUSION["hidden_size"]
    assert model.config.modalities == ["audio"] and processor.modalities == ["audio"]
    assert not model.training
    with torch.no_grad():
        logits = model(**processor(audio=waves(0.5), sampling_rate=16000)).logits
    assert logits.shape == (1, 7)
    assert (tmp_path / "audio" / "model.safetensors").exists() and (tmp_path / "text" / "tokenizer.json").exists()


def test_tiny_whisper_folder_is_a_whisper_for_conditional_generation(tmp_path):
    dirs = tiny_encoder_dirs("whisper")
    config = json.loads((Path(dirs["audio"]) / "config.json").read_text())
    assert config["architectures"] == ["WhisperForConditionalGeneration"] and config["max_source_positions"] == 1500
    assert isinstance(AutoModel.from_pretrained(dirs["audio"]), WhisperModel)
    extractor = AutoFeatureExtractor.from_pretrained(dirs["audio"])
    assert isinstance(extractor, WhisperFeatureExtractor)
    assert (extractor.feature_size, extractor.n_samples, extractor.hop_length) == (80, 480000, 160)
    model, processor = tiny_backbones(tmp_path, preset="audio_student", audio="whisper", text="bert")
    assert type(model.multistill.audio_encoder).__name__ == "WhisperEncoder"
    assert (tmp_path / "whisper" / "model.safetensors").exists() and (tmp_path / "bert" / "tokenizer.json").exists()
    with torch.no_grad():
        assert model(**processor(audio=waves(0.5), sampling_rate=16000)).logits.shape == (1, 7)
    with pytest.raises(ValueError, match="`audio` must be one of"):
        build_tiny_encoders(tmp_path / "x", audio="mfcc")
