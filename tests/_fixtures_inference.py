"""Shared helpers for the pipeline / streaming / CLI / push_to_hub tests: tiny saved models, synthetic audio."""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from _fixtures_model import make_model, waves

SR = 16000
#: (speech seconds) of the synthetic conversation; 1 s of near-silence before, between and after
CONVERSATION = (1.5, 2.0, 1.2)
CONVERSATION_TEXT = ["안녕하세요 오늘 기분이 정말 좋아요.", "진짜? 놀랐잖아!", "밤에 혼자 있어서 무서웠어요."]


@functools.cache
def _root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="multistill-inference-"))
    atexit.register(shutil.rmtree, root, True)
    return root


@functools.cache
def tiny_model(preset: str = "teacher"):
    """``(model, processor)`` of a tiny sharpened ``preset`` (shared; do not modify)."""
    return make_model(preset)


@functools.cache
def saved_folder(preset: str = "teacher") -> str:
    """A folder with model + processor + code + custom pipeline (``save_pretrained_with_pipeline``)."""
    from multistill.pipeline_multistill import save_pretrained_with_pipeline

    model, processor = tiny_model(preset)
    folder = _root() / f"saved-{preset}"
    save_pretrained_with_pipeline(model, processor, folder)
    return str(folder)


@functools.cache
def tiny_pipeline(preset: str = "teacher"):
    """An in-process pipeline over :func:`tiny_model` (CPU)."""
    from multistill.pipeline_multistill import MultiStillEmotionPipeline

    model, processor = tiny_model(preset)
    return MultiStillEmotionPipeline(model=model, processor=processor, device="cpu")


def conversation(seed: int = 1, noise: float = 0.001) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Speech-like bursts separated by 1 s of faint noise; returns the audio and the true (start, end) spans."""
    rng = np.random.default_rng(seed)
    parts, spans, t = [(noise * rng.standard_normal(SR)).astype(np.float32)], [], 1.0
    for i, seconds in enumerate(CONVERSATION):
        parts.append(waves(seconds, seed=i)[0])
        spans.append((t, t + seconds))
        parts.append((noise * rng.standard_normal(SR)).astype(np.float32))
        t += seconds + 1.0
    return np.concatenate(parts), spans


def write_conversation(folder: str | os.PathLike, stereo: bool = True, rate: int = SR) -> tuple[str, str]:
    """Write the conversation as a WAV (stereo by default) and its transcript; returns both paths."""
    import soundfile

    from multistill.audio_utils import resample

    audio, _ = conversation()
    audio = resample(audio, SR, rate)
    wav = Path(folder) / "conversation.wav"
    soundfile.write(wav, np.stack([audio, audio], axis=1) if stereo else audio, rate, subtype="FLOAT")
    transcript = Path(folder) / "conversation.txt"
    transcript.write_text("\n".join(CONVERSATION_TEXT) + "\n", encoding="utf-8")
    return str(wav), str(transcript)


def offline_env(tmp_path: Path) -> dict[str, str]:
    """Environment of a fresh offline process (own modules cache, one thread)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"),
               OMP_NUM_THREADS="1", TOKENIZERS_PARALLELISM="false")
    return env


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models run fastest on one thread (and are not slowed down by other processes' load)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
