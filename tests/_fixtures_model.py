"""Shared helpers for the model/processor tests: tiny offline encoders, built once per test session."""

from __future__ import annotations

import atexit
import functools
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from multistill.offline import build_tiny_encoders, tiny_backbones

PRESET_NAMES = ("teacher", "multimodal_student", "text_student", "audio_student", "light_student")
TEXTS = ["안녕하세요 오늘 기분이 정말 좋아요.", "진짜?", "b/ 밤에 혼자 있어서 (조금+좀) 무서웠어요."]


@functools.cache
def tiny_encoder_dirs(audio: str = "wav2vec2", text: str = "electra") -> dict[str, str]:
    """``{"audio": path, "text": path}`` of tiny random encoders (one build per session and kind)."""
    root = tempfile.mkdtemp(prefix="multistill-tiny-")
    atexit.register(shutil.rmtree, root, True)
    return build_tiny_encoders(root, audio=audio, text=text)


@torch.no_grad()
def sharpen(model: torch.nn.Module, seed: int = 0) -> None:
    """Re-draw the fusion/head weights with unit-variance fan-in init, so logits are O(1) (the default
    std-0.02 init gives logits ~1e-3, which would make tolerance checks meaningless)."""
    generator = torch.Generator().manual_seed(seed)
    for name, param in model.named_parameters():
        if "audio_encoder" in name or "text_encoder" in name or param.dim() < 2:
            continue
        fan_in = math.prod(param.shape[1:])
        param.copy_(torch.randn(param.shape, generator=generator) / math.sqrt(fan_in))


def make_model(preset: str = "teacher", seed: int = 0, audio: str = "wav2vec2", text: str = "electra", **overrides):
    """``(model, processor)`` of ``preset`` over the tiny encoders, in eval mode, with sharpened head."""
    model, processor = tiny_backbones(preset=preset, encoders=tiny_encoder_dirs(audio, text), seed=seed, **overrides)
    sharpen(model, seed)
    return model.eval(), processor


def waves(*seconds: float, sampling_rate: int = 16000, seed: int = 0) -> list[np.ndarray]:
    """Deterministic speech-like test signals (a chirp plus noise) of the given durations."""
    rng = np.random.default_rng(seed)
    out = []
    for i, duration in enumerate(seconds):
        t = np.arange(int(duration * sampling_rate)) / sampling_rate
        tone = np.sin(2 * np.pi * (120 + 40 * i) * t * (1 + t)) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
        out.append((0.3 * tone + 0.05 * rng.standard_normal(t.shape)).astype(np.float32))
    return out


#: Ways a saved model folder gets damaged (issue 22, items 1, 3, 4), each with what its error must say (the file).
DAMAGES = {
    "no_config": "no config.json", "truncated_weights": "model.safetensors: damaged safetensors file",
    "num_labels": "config.json does not match the weights", "pickle_weights": "pytorch_model.bin: pickle weights "
    "are refused", "absurd_size": "`hidden_size` is 65536", "bad_tokenizer": "tokenizer.json is not valid JSON",
    "no_processor_config": "no processor_config.json in",
}


def damaged_copy(folder: str, damage: str, target: str | os.PathLike) -> str:
    """A copy of the saved model ``folder`` in ``target`` with one :data:`DAMAGES` applied."""
    import json

    from safetensors.torch import load_file

    target = Path(target)
    shutil.copytree(folder, target)
    config = target / "config.json"
    if damage == "no_config":
        config.unlink()
    elif damage == "truncated_weights":
        data = (target / "model.safetensors").read_bytes()
        (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    elif damage in ("num_labels", "absurd_size"):
        values = json.loads(config.read_text())
        if damage == "num_labels":
            values["id2label"] = {str(i): f"label{i}" for i in range(5)}
            values["label2id"] = {f"label{i}": i for i in range(5)}
        else:
            values["hidden_size"] = 65536
        config.write_text(json.dumps(values))
    elif damage == "pickle_weights":
        torch.save(load_file(target / "model.safetensors"), target / "pytorch_model.bin")
        (target / "model.safetensors").unlink()
    elif damage == "bad_tokenizer":
        (target / "tokenizer.json").write_text("{not json")
    elif damage == "no_processor_config":
        (target / "processor_config.json").unlink()
    else:
        raise ValueError(damage)
    return str(target)
