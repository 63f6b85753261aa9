#!/usr/bin/env python
"""Real-time stream mode end to end: RTF, per-stage times and latency, with or without speech recognition.

The conversation is either synthetic (default: utterances of ``multistill.training.synthetic``'s emotional speech
stand-in, separated by silences, with a transcript of one line per utterance; energy VAD, since the
stand-in is not speech to a trained VAD) or built from real KEMDy utterances (``--data_dir``: dialogues
concatenated with pauses of background noise, as in ``vad_eval.py``; Silero VAD). With ``--asr`` no
transcript is given: every utterance is transcribed in the loop (e.g. ``--asr whisper-base``: Whisper base,
faster-whisper int8). Full-size architectures with random weights (latency does not depend on weight
values; nothing is downloaded) are saved as pipeline folders in a temporary directory, loaded with
``multistill.cli.load_pipeline`` and streamed with ``multistill.live.streaming.stream_emotions`` on
``file_chunks`` of the WAV, exactly what ``multistill stream --model M conversation.wav [--transcript T |
--asr A]`` does, ``--repeat`` times per model and ``--threads`` setting, all in the same run.

    python benchmarks/stream_rtf.py --threads 2 1     # light_student + teacher, synthetic 60 s (~70 s on 2 cores)
    python benchmarks/stream_rtf.py --data_dir ../shared/kemdy_sample --asr whisper-base --models light_student \
        --threads 2 --realtime --name stream_asr_cpu  # real speech, ASR in the loop, live pace
    python benchmarks/stream_rtf.py --quick           # tiny configs, seconds (smoke test)

Writes ``<output_dir>/<name>.json`` and ``<output_dir>/<name>.md`` and prints the markdown.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
import soundfile as sf  # noqa: E402
import torch  # noqa: E402
from bench_lib import (  # noqa: E402
    WHISPER_MODELS,
    Contention,
    build_model,
    log,
    machine_info,
    provenance,
)
from stream_report import render_markdown  # noqa: E402
from transformers import HfArgumentParser  # noqa: E402

from multistill.configuration_multistill import PRESETS  # noqa: E402

SAMPLING_RATE = 16_000
DEFAULT_MODELS = ["light_student", "teacher"]
#: emotions cycled through by the conversation (neutral most often, like KEMDy)
EMOTION_CYCLE = ["neutral", "happy", "neutral", "surprise", "angry", "neutral", "sad", "fear", "disgust"]
#: the streamed conversation and its transcript (one line per utterance), in the run's scratch folder
CONVERSATION_WAV, CONVERSATION_TRANSCRIPT = "conversation.wav", "conversation.txt"


# --------------------------------------------------------------------------- conversation


def make_conversation(
    seconds: float,
    gap_s: float = 0.8,
    min_utterance_s: float = 1.5,
    max_utterance_s: float = 5.0,
    seed: int = 0,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A two-speaker conversation of about ``seconds``: ``gap_s`` silence, utterance, ``gap_s``, ...

    Utterances alternate between a female (about 220 Hz) and a male (about 120 Hz) speaker, last
    ``min_utterance_s``-``max_utterance_s`` and are ``multistill.training.synthetic``'s emotional speech stand-in
    (voiced harmonics with syllable bursts and noise, prosody by emotion). The silences hold faint noise
    (about -60 dBFS); the last one is longer when no utterance fits any more. Returns the audio and, per
    utterance, its span, speaker, emotion and transcript line (one or two of the synthetic corpus's
    emotion-typical sentences, about one per 2.5 s of speech).
    """
    from multistill.training.synthetic import _SENTENCES, _synthesize

    rng = np.random.default_rng(seed)
    pitches = {"F": float(rng.uniform(200, 235)), "M": float(rng.uniform(105, 135))}

    def silence(s: float) -> np.ndarray:
        return (0.001 * rng.standard_normal(int(round(s * SAMPLING_RATE)))).astype(np.float32)

    parts, utterances, t = [silence(gap_s)], [], gap_s
    while t + min_utterance_s + gap_s <= seconds + 1e-9:
        duration = float(rng.uniform(min_utterance_s, max_utterance_s))
        duration = round(min(duration, seconds - gap_s - t), 2)
        speaker = "FM"[len(utterances) % 2]
        emotion = EMOTION_CYCLE[len(utterances) % len(EMOTION_CYCLE)]
        audio = _synthesize(emotion, pitches[speaker], duration, rng)
        pool = _SENTENCES[emotion]
        n_sentences = 1 if duration < 2.5 else 2
        picks = rng.choice(len(pool), size=n_sentences, replace=False)
        text = " ".join(pool[int(i)] for i in picks)
        utterances.append(
            {
                "start_s": round(t, 3),
                "end_s": round(t + duration, 3),
                "speaker": speaker,
                "emotion": emotion,
                "text": text,
            }
        )
        parts += [audio, silence(gap_s)]
        t += duration + gap_s
    if seconds - t >= 0.01:  # a longer final silence makes up the length when no utterance fits any more
        parts.append(silence(seconds - t))
    return np.concatenate(parts), utterances


# --------------------------------------------------------------------------- models


def save_model_folder(name: str, quick: bool, texts: list[str], folder: Path) -> dict[str, Any]:
    """Save ``name``'s architecture (full size, or tiny with ``quick``; random weights) with a processor
    as a pipeline folder that ``load_pipeline`` (``multistill stream --model folder``) loads.

    The tokenizer is a WordPiece vocabulary learned offline from the transcript (every character plus
    frequent words); its ids are a subset of the config's vocabulary, which keeps its full size (50,135
    for KcELECTRA-base, like ``bench_lib.build_model``), so the embedding matrix is the real one.
    """
    from transformers import Wav2Vec2FeatureExtractor, WhisperFeatureExtractor

    from multistill.offline import train_wordpiece_tokenizer
    from multistill.pipeline_multistill import save_pretrained_with_pipeline
    from multistill.processing_multistill import MultiStillProcessor

    t0 = time.perf_counter()
    model = build_model(name, quick)
    tokenizer = train_wordpiece_tokenizer(texts, vocab_size=1000)
    vocab = int(model.config.text_config.vocab_size)
    if len(tokenizer) > vocab:
        raise ValueError(
            f"{name}: the tokenizer has {len(tokenizer)} tokens, more than the config's {vocab}."
        )
    whisper_base = name in WHISPER_MODELS and not quick and load_whisper_base_encoder(model)
    if name in WHISPER_MODELS:
        feature_extractor = WhisperFeatureExtractor(feature_size=int(model.config.audio_config.num_mel_bins))
    else:
        feature_extractor = Wav2Vec2FeatureExtractor(
            feature_size=1,
            sampling_rate=SAMPLING_RATE,
            padding_value=0.0,
            do_normalize=True,
            return_attention_mask=True,
        )
    processor = MultiStillProcessor.from_model_config(model.config, feature_extractor, tokenizer)
    save_pretrained_with_pipeline(model, processor, folder)
    params = sum(p.numel() for p in model.parameters())
    tokens = [
        len(tokenizer(t, truncation=True, max_length=int(model.config.max_text_tokens))["input_ids"])
        for t in texts
    ]
    del model
    gc.collect()
    return {
        "params": params,
        "text_vocab_size": vocab,
        "tokenizer_size": len(tokenizer),
        "tokens_per_utterance": round(float(np.mean(tokens)), 1),
        "build_s": round(time.perf_counter() - t0, 2),
        "whisper_base_encoder": whisper_base,
    }


@torch.no_grad()
def load_whisper_base_encoder(model: torch.nn.Module) -> bool:
    """Give a ``whisper_*`` model the registry's Whisper base encoder (the ASR's, so the stream can share its pass)
    and re-draw the fusion and head weights with unit-variance fan-in init, so that logits are O(1) and their
    difference between the shared and the model's own encoder pass means something. ``False`` when the encoder
    is not the full Whisper base (the light student keeps 2 of its 6 layers)."""
    from transformers import WhisperModel

    from multistill.tools.whisper_base import transformers_folder

    encoder = model.multistill.audio_encoder
    reference = WhisperModel.from_pretrained(str(transformers_folder())).encoder.state_dict()
    ours = encoder.state_dict()
    if set(reference) != set(ours) or any(reference[k].shape != ours[k].shape for k in ours):
        return False
    encoder.load_state_dict(reference)
    generator = torch.Generator().manual_seed(0)
    for name, param in model.named_parameters():
        if "audio_encoder" in name or "text_encoder" in name or param.dim() < 2:
            continue
        param.copy_(torch.randn(param.shape, generator=generator) / float(np.sqrt(np.prod(param.shape[1:]))))
    return True


def shared_pass_difference(pipe: Any, asr: Any, clips: list[np.ndarray]) -> dict[str, Any]:
    """On real utterances: the emotion model's logits from the recognizer's encoder states (one pass, sliced to
    the utterance's frames) against its own pass, and the two passes' encoder states on those frames."""
    from multistill.live.stream_encoder import SharedWhisperPass, shared_encoder_reason

    reason = shared_encoder_reason(pipe, asr)
    if reason is not None:
        return {"shared": False, "reason": reason}
    shared = SharedWhisperPass(pipe, asr)
    logit_diffs, scales, states_rel, same = [], [], [], 0
    for clip in clips:
        text, states = shared.transcribe(clip, SAMPLING_RATE)
        batch = pipe.processor(audio=[clip], text=[text], sampling_rate=SAMPLING_RATE, return_tensors="pt")
        with torch.inference_mode():
            own = pipe.model(**batch)
            own_states = pipe.model.encode_audio(input_features=batch["input_features"],
                                                 attention_mask=batch["attention_mask"])[0][0].float().numpy()
        one = shared.logits(states, clip.shape[0], text)
        frames = own_states.shape[0]
        states_rel.append(float(np.linalg.norm(own_states - states[:frames]) / np.linalg.norm(own_states)))
        logit_diffs.append(float((own.logits - one).abs().max()))
        scales.append(float(own.logits.abs().max()))
        same += int(own.logits.argmax() == one.argmax())
    return {
        "shared": True, "utterances": len(clips),
        "max_abs_logit_diff": round(max(logit_diffs), 4), "median_abs_logit_diff": round(float(np.median(logit_diffs)), 4),
        "median_max_abs_logit": round(float(np.median(scales)), 3), "same_top_emotion": same,
        "encoder_states_rel_diff_median": round(float(np.median(states_rel)), 4),
        "encoder_states_rel_diff_max": round(max(states_rel), 4),
    }


# --------------------------------------------------------------------------- measurement


def stream_once(
    pipe: Any,
    wav: Path,
    transcript_path: Path | None,
    chunk_ms: float,
    realtime: bool,
    vad: str = "energy",
    asr: Any = None,
    keep_text: bool = True,
    early_ms: float = 0.0,
    share_encoder: bool | None = None,
) -> dict[str, Any]:
    """One ``stream_emotions`` run over the conversation file; summary, latencies and per-utterance rows
    (without the transcripts unless ``keep_text``: the texts of licensed corpora stay out of the results)."""
    from multistill.live.streaming import Transcript, VADConfig, file_chunks, stream_emotions

    contention = Contention()
    load_before = round(os.getloadavg()[0], 2)
    summary = stream_emotions(
        pipe,
        file_chunks(wav, chunk_ms, realtime=realtime),
        transcript=Transcript.from_file(transcript_path) if transcript_path is not None else None,
        vad_config=VADConfig(vad=vad, early_ms=early_ms),
        realtime=realtime,
        asr=asr,
        share_encoder=share_encoder,
    )
    out = summary.to_dict()
    out["other_load_pct"] = contention.others_pct()
    out["loadavg_1min"] = [load_before, round(os.getloadavg()[0], 2)]
    out["errors"] = sum(r.error is not None for r in summary.results)
    out["results"] = [
        {
            "index": r.index,
            "start_s": round(r.start_s, 3),
            "end_s": round(r.end_s, 3),
            "label": r.label,
            "latency_s": round(r.latency_s, 4),
            "end_of_speech_latency_s": round(r.end_of_speech_latency_s, 4),
            "asr_s": round(r.asr_s, 4),
            "emotion_s": round(r.emotion_s, 4),
            "queued_s": round(r.queued_s, 4),
            "degraded": r.degraded,
            **({"text": r.text} if keep_text else {}),
            "text_source": r.text_source,
            "error": r.error,
        }
        for r in summary.results
    ]
    return out


def quiet_libraries() -> None:
    """Errors only from transformers and multistill: the benchmark's own lines are its progress report."""
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("multistill").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)


def build_conversation(args: StreamBenchArguments, work: Path) -> tuple[np.ndarray, list[dict[str, Any]],
                                                                          dict[str, Any]]:
    """The conversation's audio and utterances, written to ``work`` (:data:`CONVERSATION_WAV`,
    :data:`CONVERSATION_TRANSCRIPT`), and its description for the results."""
    if args.data_dir:
        from vad_eval import build_sample_conversation

        from multistill.training.arguments import UsageError
        from multistill.training.data import load_kemdy

        dataset = load_kemdy("all", args.data_dir)
        try:  # a dialogue the data lacks, named before any model is built
            audio, utterances = build_sample_conversation(dataset, args.conversation, args.seed,
                                                          max_utterances=args.max_utterances)
        except ValueError as error:
            raise UsageError(f"--conversation {args.conversation}: {error}") from None
    else:
        audio, utterances = make_conversation(args.seconds, args.gap, seed=args.seed)
    sf.write(work / CONVERSATION_WAV, audio, SAMPLING_RATE, subtype="PCM_16")
    (work / CONVERSATION_TRANSCRIPT).write_text("".join(u["text"] + "\n" for u in utterances), encoding="utf-8")
    conversation = {
        "source": f"KEMDy sample: {args.conversation}" if args.data_dir else "synthetic",
        "audio_s": round(audio.shape[0] / SAMPLING_RATE, 2),
        "utterances": len(utterances),
        "speech_s": round(sum(u["end_s"] - u["start_s"] for u in utterances), 2),
        "gap_s": "0.3-1.5" if args.data_dir else args.gap,
        "seed": args.seed,
        # real utterances: ids and spans only (KEMDy is licensed; its transcripts stay out of the results)
        "spans": [{k: v for k, v in u.items() if k != "text"} for u in utterances] if args.data_dir else utterances,
    }
    log(f"conversation: {conversation['audio_s']} s, {len(utterances)} utterances")
    return audio, utterances, conversation


class Recognizers:
    """The speech recognizer of each thread count and encoder window, loaded once (``None`` without ``--asr``):
    faster-whisper's threads follow ``--threads`` unless ``--asr_threads`` is given; window ``None`` is the
    command line's default."""

    def __init__(self, args: StreamBenchArguments) -> None:
        self.args = args
        self.loaded: dict[tuple[int, float | None], Any] = {}

    def __call__(self, threads: int, window: float | None) -> Any:
        if not self.args.asr:
            return None
        count = self.args.asr_threads if self.args.asr_threads is not None else threads
        if (count, window) not in self.loaded:
            from multistill.asr import load_asr
            from multistill.cli import asr_window, resolve_asr_model

            model = resolve_asr_model(self.args.asr)
            options = argparse.Namespace(asr_window_s=window, asr_engine=None)
            self.loaded[count, window] = load_asr(model, threads=count, device="cpu",
                                                  encoder_window_s=asr_window(options, model))
            log(f"ASR ({count or 'default'} threads): {self.loaded[count, window]!r}")
        return self.loaded[count, window]


def stream_settings(pipe: Any, name: str, threads: int, warm: list[float], args: StreamBenchArguments, work: Path,
                    recognizers: Recognizers) -> list[dict[str, Any]]:
    """One model at one thread count, streamed with every setting; runs alternate between the ``--early_ms``,
    ``--share_encoder`` and ``--asr_window_s`` settings, so that all see the same machine state."""
    rows = []
    settings = [(r, e, sh, w) for r in range(args.repeat) for e in args.early_ms for sh in args.share_encoder
                for w in args.asr_window_s]
    for repeat, early_ms, share, window in settings:
        asr = recognizers(threads, window)
        log(
            f"{name}, {threads} thread(s), early start {early_ms:g} ms, shared encoder {share}, ASR window "
            f"{getattr(asr, 'encoder_window_s', None)} s, run "
            f"{repeat + 1}/{args.repeat}: streaming " + ("at real-time pace" if args.realtime else "as fast as possible")
        )
        transcript = None if asr else work / CONVERSATION_TRANSCRIPT
        row = {
            "model": name,
            "threads": threads,
            "run": repeat + 1,
            "early_ms": early_ms,
            "share_encoder": share,
            "asr_window_s": getattr(asr, "encoder_window_s", None),
            "asr_threads": (args.asr_threads if args.asr_threads is not None else threads) if asr else None,
            "warmup_s": [round(w, 3) for w in warm],
            **stream_once(pipe, work / CONVERSATION_WAV, transcript, args.chunk_ms, args.realtime,
                          args.vad, asr, keep_text=not args.data_dir, early_ms=early_ms,
                          share_encoder=None if share == "auto" else False),
        }
        rows.append(row)
        lat = row["latency"]
        log(
            f"  {row['utterances']} utterances, RTF {row['rtf']:.4f}, end of utterance to result p90 "
            f"{lat.get('end_of_speech_p90_s', float('nan')) * 1000:.0f} ms, other load "
            f"{row['other_load_pct']} %"
        )
    return rows


def stream_model(name: str, args: StreamBenchArguments, work: Path, audio: np.ndarray,
                 utterances: list[dict[str, Any]], recognizers: Recognizers) -> tuple[dict[str, Any], list[dict]]:
    """Build, load and stream one model at every thread count: its description and its runs."""
    from multistill.cli import load_pipeline
    from multistill.live.streaming import warm_up

    folder = work / name
    log(f"{name}: building ({'tiny' if args.quick else 'full size'}, random weights)")
    info = save_model_folder(name, args.quick, [u["text"] for u in utterances], folder)
    t0 = time.perf_counter()
    pipe = load_pipeline(str(folder), "cpu")
    info["load_s"] = round(time.perf_counter() - t0, 2)
    info["modalities"] = list(pipe.model.config.modalities)
    runs = []
    for threads in args.threads:
        torch.set_num_threads(threads)
        asr = recognizers(threads, args.asr_window_s[0])
        distinct = {id(r): r for r in (recognizers(threads, w) for w in args.asr_window_s)}.values()
        warm = [warm_up(pipe, asr=r) for r in distinct for _ in range(args.warmup)]
        if asr is not None and info.get("whisper_base_encoder") and "shared_pass" not in info:
            clips = [audio[int(u["start_s"] * SAMPLING_RATE):int(u["end_s"] * SAMPLING_RATE)] for u in utterances]
            info["shared_pass"] = shared_pass_difference(pipe, asr, [c for c in clips if c.shape[0] <= 10 * SAMPLING_RATE][:12])
            log(f"  one encoder pass vs the model's own: {info['shared_pass']}")
        runs += stream_settings(pipe, name, threads, warm, args, work, recognizers)
    del pipe
    gc.collect()
    shutil.rmtree(folder, ignore_errors=True)
    return info, runs


def with_teacher_ratios(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each run with its RTF against the teacher's run of the same thread count, repeat and settings (``None``
    without one)."""
    out = []
    for row in runs:
        teacher = next((r for r in runs if r["model"] == "teacher" and r["threads"] == row["threads"]
                        and r["run"] == row["run"] and r["early_ms"] == row["early_ms"]
                        and r["share_encoder"] == row["share_encoder"]
                        and r.get("asr_window_s") == row.get("asr_window_s")), None)
        out.append({**row, "rtf_vs_teacher": round(row["rtf"] / teacher["rtf"], 4) if teacher else None,
                    "speedup_vs_teacher": round(teacher["rtf"] / row["rtf"], 2) if teacher else None})
    return out


def run(args: StreamBenchArguments, work: Path, argv: list[str]) -> dict[str, Any]:
    """Build the conversation and the models, stream once per model, thread count and setting."""
    quiet_libraries()
    t_run = time.perf_counter()
    run_contention = Contention()
    run_load = round(os.getloadavg()[0], 2)
    audio, utterances, conversation = build_conversation(args, work)
    recognizers = Recognizers(args)
    models: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    for name in args.models:
        models[name], model_runs = stream_model(name, args, work, audio, utterances, recognizers)
        runs += model_runs
    thread_list = "/".join(str(t) for t in args.threads)
    machine = machine_info(thread_list, torch.device("cpu"))  # type: ignore[arg-type]
    machine["others_cpu_pct"] = run_contention.others_pct()
    loaded = recognizers.loaded.values()
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(argv, "benchmarks/stream_rtf.py"),
        "loadavg_1min_start_end": [run_load, round(os.getloadavg()[0], 2)],
        "settings": {
            "models": args.models,
            "threads": args.threads,
            "realtime": args.realtime,
            "seconds": args.seconds,
            "chunk_ms": args.chunk_ms,
            "warmup": args.warmup,
            "quick": args.quick,
            "repeat": args.repeat,
            "early_ms": args.early_ms,
            "share_encoder": args.share_encoder,
            "asr_window_s": sorted({r.encoder_window_s for r in loaded if getattr(r, "encoder_window_s", None)}),
            "vad": f"{args.vad}, VADConfig() defaults otherwise (hangover 500 ms, pre-roll 200 ms, post-roll 100 ms)",
            "asr": next(iter(loaded)).describe() if loaded else None,
            "asr_threads": args.asr_threads,
        },
        "machine": machine,
        "conversation": conversation,
        "models": models,
        "runs": with_teacher_ratios(runs),
        "total_s": round(time.perf_counter() - t_run, 1),
    }


# --------------------------------------------------------------------------- main


@dataclass
class StreamBenchArguments:
    """Options of ``benchmarks/stream_rtf.py`` (``HfArgumentParser``)."""

    models: list[str] = field(default_factory=lambda: list(DEFAULT_MODELS), metadata={
        "help": "presets to stream with (ratios need the teacher in the run); whisper_* models are built around the "
        "registry's Whisper base encoder (with --asr whisper-base the stream can share its encoder pass)",
        "choices": sorted(PRESETS) + sorted(WHISPER_MODELS)})
    threads: list[int] = field(default_factory=lambda: [torch.get_num_threads()], metadata={
        "help": "torch intra-op thread counts, each measured in turn (e.g. 2 1)"})
    realtime: bool = field(default=False, metadata={"help": "deliver the audio at real-time pace, like live input"})
    seconds: float | None = field(default=None, metadata={"help": "synthetic conversation length (default 60; "
                                                                  "--quick: 12)"})
    gap: float = field(default=0.8, metadata={"help": "silence between synthetic utterances (s)"})
    data_dir: str | None = field(default=None, metadata={
        "help": "KEMDy folder (e.g. ../shared/kemdy_sample): stream a conversation of real utterances"})
    conversation: str = field(default="KEMDy19:Sess01_impro02+KEMDy20:Sess01_script01", metadata={
        "help": "with --data_dir: dialogues to concatenate (see vad_eval.py)"})
    max_utterances: int = field(default=40, metadata={"help": "with --data_dir: keep the conversation's first N "
                                                              "utterances"})
    asr: str | None = field(default=None, metadata={
        "help": "transcribe every utterance in the loop instead of giving the transcript (e.g. whisper-base, a "
        "CTranslate2 folder or a transformers ASR model)"})
    asr_threads: int | None = field(default=None, metadata={
        "help": "faster-whisper CPU threads (default: the same as each --threads setting; 0: its own default)"})
    vad: str | None = field(default=None, metadata={
        "help": "voice-activity detector (default: silero for real speech, energy for the synthetic stand-in)",
        "choices": ["silero", "energy"]})
    repeat: int = field(default=1, metadata={"help": "runs per model, thread count and early start"})
    early_ms: list[float] = field(default_factory=lambda: [0.0], metadata={
        "help": "VADConfig.early_ms settings to compare (0: ASR and emotion start when the hangover ends)"})
    share_encoder: list[str] = field(default_factory=lambda: ["auto"], metadata={
        "help": "one Whisper encoder pass per utterance when the model's encoder is the ASR's (auto) or always two "
        "passes (off); settings alternate", "choices": ["auto", "off"]})
    asr_window_s: list[float] = field(default_factory=lambda: [None], metadata={
        "help": "faster-whisper encoder windows to compare (multistill stream --asr-window-s; default: its "
        "default); settings alternate"})
    chunk_ms: float = field(default=100.0, metadata={"help": "audio chunk size (ms)"})
    warmup: int = field(default=2, metadata={"help": "warm_up calls before each streamed run"})
    seed: int = field(default=0, metadata={"help": "seed of the conversation"})
    quick: bool = field(default=False, metadata={"help": "tiny configs (smoke test in seconds)"})
    output_dir: str = field(default=str(HERE / "results"), metadata={"help": "where <name>.json and <name>.md go"})
    name: str | None = field(default=None, metadata={
        "help": "output file stem (default stream_cpu; --quick: stream_cpu_quick)"})


def parse_args(argv: list[str]) -> StreamBenchArguments:
    """The options, checked before anything is built (a ``UsageError``: one ``error:`` line, exit status 2; a typo
    was a traceback, a bad ``--output_dir`` or ``--name`` one after the whole run), with the defaults that depend on
    other options filled in."""
    import dataclasses

    from bench_args import check_file_stem
    from vad_eval import parse_conversation

    from multistill.training.arguments import UsageError, check_output_dir, parse_command_line
    from multistill.training.data import data_dir_error

    parser = HfArgumentParser(StreamBenchArguments, description=__doc__.split("\n\n")[0])
    (parsed,) = parse_command_line(parser, argv)
    args = dataclasses.replace(
        parsed, seconds=(12.0 if parsed.quick else 60.0) if parsed.seconds is None else parsed.seconds,
        name=("stream_cpu_quick" if parsed.quick else "stream_cpu") if parsed.name is None else parsed.name,
        vad=("silero" if parsed.data_dir else "energy") if parsed.vad is None else parsed.vad)
    if any(t < 1 for t in args.threads) or (args.asr_threads is not None and args.asr_threads < 0):
        raise UsageError("--threads must be >= 1 and --asr_threads >= 0")
    if any(e < 0 for e in args.early_ms):
        raise UsageError("--early_ms settings must be >= 0")
    if any(w is not None and not 1 <= w <= 30 for w in args.asr_window_s):
        raise UsageError("--asr_window_s settings must be 1-30 s")
    if args.repeat < 1 or args.max_utterances < 1:
        raise UsageError("--repeat and --max_utterances must be >= 1")
    if args.seconds < 2 * args.gap + 1.5:
        raise UsageError(f"--seconds must be at least {2 * args.gap + 1.5:g} (one utterance between two silences)")
    check_file_stem(args.name)
    check_output_dir(args.output_dir)
    if args.data_dir:
        error = data_dir_error("all", args.data_dir)
        if error:
            raise UsageError(error)
        try:
            parse_conversation(args.conversation)
        except ValueError as error:
            raise UsageError(f"--conversation: {error}") from None
    return args


def main(argv: list[str] | None = None) -> None:
    # 1. options, checked before anything is built
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    # 2. the conversation and the models, streamed in a scratch folder removed afterwards
    work = Path(tempfile.mkdtemp(prefix="multistill-stream-bench-"))
    try:
        res = run(args, work, argv)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # 3. the report
    md = render_markdown(res)
    print(md)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(
        json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    (out / f"{args.name}.md").write_text(md, encoding="utf-8")


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
