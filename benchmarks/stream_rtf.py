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
    machine_line,
    provenance,
    provenance_line,
)
from transformers import HfArgumentParser  # noqa: E402

from multistill.configuration_multistill import PRESETS  # noqa: E402

SAMPLING_RATE = 16_000
DEFAULT_MODELS = ["light_student", "teacher"]
#: emotions cycled through by the conversation (neutral most often, like KEMDy)
EMOTION_CYCLE = ["neutral", "happy", "neutral", "surprise", "angry", "neutral", "sad", "fear", "disgust"]


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


def run(args: StreamBenchArguments, work: Path) -> dict[str, Any]:
    """Build the conversation and the models, stream once per model and thread count."""
    from transformers.utils import logging as hf_logging

    from multistill.cli import load_pipeline
    from multistill.live.streaming import warm_up

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    logging.getLogger("multistill").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", category=UserWarning)

    t_run = time.perf_counter()
    run_contention = Contention()
    run_load = round(os.getloadavg()[0], 2)
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
    wav, transcript = work / "conversation.wav", work / "conversation.txt"
    sf.write(wav, audio, SAMPLING_RATE, subtype="PCM_16")
    transcript.write_text("".join(u["text"] + "\n" for u in utterances), encoding="utf-8")
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
    recognizers: dict[tuple[int, float | None], Any] = {}

    def recognizer(threads: int, window: float | None) -> Any:
        """The ASR for a thread setting (faster-whisper's threads follow --threads unless --asr_threads) and an
        encoder window (``None``: the command line's default)."""
        if not args.asr:
            return None
        count = args.asr_threads if args.asr_threads is not None else threads
        if (count, window) not in recognizers:
            from multistill.asr import load_asr
            from multistill.cli import asr_window, resolve_asr_model

            model = resolve_asr_model(args.asr)
            options = argparse.Namespace(asr_window_s=window, asr_engine=None)
            recognizers[count, window] = load_asr(model, threads=count, device="cpu",
                                                  encoder_window_s=asr_window(options, model))
            log(f"ASR ({count or 'default'} threads): {recognizers[count, window]!r}")
        return recognizers[count, window]

    texts = [u["text"] for u in utterances]
    models: dict[str, Any] = {}
    runs: list[dict[str, Any]] = []
    for name in args.models:
        folder = work / name
        log(f"{name}: building ({'tiny' if args.quick else 'full size'}, random weights)")
        info = save_model_folder(name, args.quick, texts, folder)
        t0 = time.perf_counter()
        pipe = load_pipeline(str(folder), "cpu")
        info["load_s"] = round(time.perf_counter() - t0, 2)
        info["modalities"] = list(pipe.model.config.modalities)
        models[name] = info
        for threads in args.threads:
            torch.set_num_threads(threads)
            asr = recognizer(threads, args.asr_window_s[0])
            warm = [warm_up(pipe, asr=r) for r in {id(r): r for r in (recognizer(threads, w) for w in
                                                                        args.asr_window_s)}.values()
                    for _ in range(args.warmup)]
            if asr is not None and info.get("whisper_base_encoder") and "shared_pass" not in info:
                clips = [audio[int(u["start_s"] * SAMPLING_RATE):int(u["end_s"] * SAMPLING_RATE)] for u in utterances]
                info["shared_pass"] = shared_pass_difference(pipe, asr, [c for c in clips if c.shape[0] <= 10 * SAMPLING_RATE][:12])
                log(f"  one encoder pass vs the model's own: {info['shared_pass']}")
            # runs alternate between the --early_ms, --share_encoder and --asr_window_s settings, so all see the
            # same machine state
            settings = [(r, e, sh, w) for r in range(args.repeat) for e in args.early_ms for sh in args.share_encoder
                        for w in args.asr_window_s]
            for repeat, early_ms, share, window in settings:
                asr = recognizer(threads, window)
                log(
                    f"{name}, {threads} thread(s), early start {early_ms:g} ms, shared encoder {share}, ASR window "
                    f"{getattr(asr, 'encoder_window_s', None)} s, run "
                    f"{repeat + 1}/{args.repeat}: streaming " + ("at real-time pace" if args.realtime else "as fast as possible")
                )
                row = {
                    "model": name,
                    "threads": threads,
                    "run": repeat + 1,
                    "early_ms": early_ms,
                    "share_encoder": share,
                    "asr_window_s": getattr(asr, "encoder_window_s", None),
                    "asr_threads": (args.asr_threads if args.asr_threads is not None else threads) if asr else None,
                    "warmup_s": [round(w, 3) for w in warm],
                    **stream_once(pipe, wav, None if asr else transcript, args.chunk_ms, args.realtime,
                                  args.vad, asr, keep_text=not args.data_dir, early_ms=early_ms,
                                  share_encoder=None if share == "auto" else False),
                }
                runs.append(row)
                lat = row["latency"]
                log(
                    f"  {row['utterances']} utterances, RTF {row['rtf']:.4f}, end of utterance to result p90 "
                    f"{lat.get('end_of_speech_p90_s', float('nan')) * 1000:.0f} ms, other load "
                    f"{row['other_load_pct']} %"
                )
        del pipe
        gc.collect()
        shutil.rmtree(folder, ignore_errors=True)

    for row in runs:
        teacher = next((r for r in runs if r["model"] == "teacher" and r["threads"] == row["threads"]
                        and r["run"] == row["run"] and r["early_ms"] == row["early_ms"]
                        and r["share_encoder"] == row["share_encoder"]
                        and r.get("asr_window_s") == row.get("asr_window_s")), None)
        row["rtf_vs_teacher"] = round(row["rtf"] / teacher["rtf"], 4) if teacher else None
        row["speedup_vs_teacher"] = round(teacher["rtf"] / row["rtf"], 2) if teacher else None
    thread_list = "/".join(str(t) for t in args.threads)
    machine = machine_info(thread_list, torch.device("cpu"))  # type: ignore[arg-type]
    machine["others_cpu_pct"] = run_contention.others_pct()
    return {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(sys.argv[1:], "benchmarks/stream_rtf.py"),
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
            "asr_window_s": sorted({r.encoder_window_s for r in recognizers.values()
                                    if getattr(r, "encoder_window_s", None)}),
            "vad": f"{args.vad}, VADConfig() defaults otherwise (hangover 500 ms, pre-roll 200 ms, post-roll 100 ms)",
            "asr": next(iter(recognizers.values())).describe() if recognizers else None,
            "asr_threads": args.asr_threads,
        },
        "machine": machine,
        "conversation": conversation,
        "models": models,
        "runs": runs,
        "total_s": round(time.perf_counter() - t_run, 1),
    }


# --------------------------------------------------------------------------- report


def _ms(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds * 1000:,.0f}"


def _stage(stage: dict[str, Any], digits: int = 0) -> str:
    if not stage.get("count"):
        return "–"
    return f"{stage['median_ms']:,.{digits}f} / {stage['p90_ms']:,.{digits}f}"


def render_markdown(res: dict[str, Any]) -> str:
    """The report: machine, other load, conversation, one row per model, thread count and run."""
    s, conv = res["settings"], res["conversation"]
    asr = s.get("asr")
    title = "with speech recognition in the loop" if asr else "with given transcripts"
    lines = [f"# Real-time stream mode {title}: real-time factor, stage times and latency", ""]
    if res.get("provenance"):
        lines += [f"**Made by** {provenance_line(res['provenance'])}.", ""]
    lines.append(f"**Machine:** {machine_line(res['machine'])}")
    lines.append("")
    if res.get("provenance"):
        load = res.get("loadavg_1min_start_end") or ["?", "?"]
        lines += [f"**Made by** {provenance_line(res['provenance'])}; load average (1 min) {load[0]} at the start, "
                  f"{load[1]} at the end (2 cores: above 2 means other jobs competed for the CPU).", ""]
    pace = "paced like live input (`--realtime`)" if s["realtime"] else "delivered as fast as consumed"
    lines.append(
        f"**Run:** {res['created']}; `multistill stream` path (`load_pipeline` + `stream_emotions` on "
        f"`file_chunks`, {s['chunk_ms']:g} ms chunks, {pace}, {s['warmup']} `warm_up` calls per setting, "
        f"{s['repeat']} run(s) each); "
        f"{'tiny --quick configs' if s['quick'] else 'full-size architectures, random weights'}; VAD {s['vad']}; "
        f"total {res['total_s']:.0f} s."
    )
    if asr:
        threads = f"{s['asr_threads']} threads" if s["asr_threads"] is not None else "as many threads as torch"
        decoding = "greedy" if asr.get("beam_size", asr.get("num_beams")) == 1 else "beam search"
        if asr.get("temperature_fallback"):
            decoding += ", sampled again only when the output loops"
        lines += ["", f"**ASR:** {asr['engine']} `{Path(asr['model']).name}` (language {asr['language']}, "
                      f"{asr.get('compute_type', '')} {decoding}, {threads}): every utterance transcribed in the "
                      "loop, no transcript given."]
    others = res["machine"].get("others_cpu_pct")
    if others is not None:
        worst = max(res["runs"], key=lambda r: r.get("other_load_pct") or 0.0, default=None)
        note = f"**Other load:** other processes used {others:.1f} % of the machine's CPU time during the run"
        if worst is not None:
            note += (
                f" (most during {worst['model']}, {worst['threads']} thread(s), run {worst['run']}: "
                f"{worst.get('other_load_pct') or 0:.1f} %)"
            )
        note += "."
        if worst is not None and (worst.get("other_load_pct") or 0) > 5:
            note += " Numbers from runs with other load are pessimistic; rerun on an idle machine."
        lines += ["", note]
    if conv.get("source", "synthetic") == "synthetic":
        what = (f"{conv['utterances']} utterances of two alternating synthetic speakers ({conv['speech_s']:g} s of "
                f"speech, 1.5-5 s each, {conv['gap_s']:g} s silences), transcript one line per utterance")
    else:
        what = (f"{conv['utterances']} real utterances ({conv['source']}, {conv['speech_s']:g} s of annotated "
                "speech) with 0.3-1.5 s pauses of background noise")
    lines += [
        "",
        f"**Conversation:** {conv['audio_s']:g} s, {what}.",
        "",
        "| model | threads | early start ms | ASR window s | encoder passes | run | utterances found / true | audio s | compute s | "
        "RTF | VAD ms per chunk (median / p90) | ASR ms per utterance | emotion ms per utterance | latency ms | "
        "end of utterance to result ms | queue wait ms (median / max) | no ASR / dropped | results from an early "
        "job | RTF / teacher RTF | peak RSS MB | load avg 1 min (start → end) | other load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["runs"]:
        lat, st = r["latency"], r.get("stages", {})
        found = f"{r['utterances']} / {conv['utterances']}" + (f" ({r['errors']} errors)" if r["errors"] else "")
        ratio = "–" if r["rtf_vs_teacher"] is None else f"{r['rtf_vs_teacher']:.3f}"
        load = "–" if r["other_load_pct"] is None else f"{r['other_load_pct']:.1f} %"
        early = (f"{r['early_used']} of {r['utterances']} ({r['early_started'] - r['early_used']} dropped)"
                 if r.get("early_ms") else "–")
        passes = "1 (shared)" if r.get("shared_encoder") else "2" if r.get("model") in WHISPER_MODELS and asr else "–"
        loadavg = " → ".join(f"{x:.2f}" for x in r["loadavg_1min"]) if r.get("loadavg_1min") else "–"
        backlog = (f"{_ms(lat.get('queued_median_s'))} / {_ms(lat.get('queued_max_s'))} | "
                   f"{r.get('asr_skipped', 0)} / {r.get('dropped', 0)}")
        rss = f"{r['peak_rss_mb']:,.0f}" if r.get("peak_rss_mb") else "–"
        lines.append(
            f"| {r['model']} | {r['threads']} | {r.get('early_ms', 0):g} | {r.get('asr_window_s') or '–'} | {passes} | {r['run']} | {found} | {r['audio_s']:.1f} | {r['compute_s']:.2f} | "
            f"{r['rtf']:.4f} | {_stage(st.get('vad_per_chunk', {}), 2)} | {_stage(st.get('asr_per_utterance', {}))} | "
            f"{_stage(st.get('emotion_per_utterance', {}))} | {_ms(lat.get('median_s'))} / {_ms(lat.get('p90_s'))} | "
            f"{_ms(lat.get('end_of_speech_median_s'))} / {_ms(lat.get('end_of_speech_p90_s'))} | {backlog} | {early} | "
            f"{ratio} | {rss} | {loadavg} | {load} |"
        )
    lines += [
        "",
        "| model | parameters | modalities | tokens per transcript line | load s |",
        "|---|---|---|---|---|",
    ]
    for name, m in res["models"].items():
        lines.append(
            f"| {name} | {m['params'] / 1e6:,.1f} M | {'+'.join(m['modalities'])} | "
            f"{m['tokens_per_utterance']:g} | {m['load_s']:.1f} |"
        )
    shared = {name: m["shared_pass"] for name, m in res["models"].items() if m.get("shared_pass")}
    if shared:
        lines += ["", "One encoder pass vs the model's own, on real utterances of the conversation (up to 10 s; the "
                  "model's Whisper base encoder is the recognizer's, its fusion and head re-drawn so that logits are "
                  "O(1)):", "",
                  "| model | utterances | max abs logit difference (max / median) | largest logit (median) | same top "
                  "emotion | encoder states relative difference (median / max) |", "|---|---|---|---|---|---|"]
        for name, d in shared.items():
            if not d.get("shared"):
                lines.append(f"| {name} | not shared: {d.get('reason')} | | | | |")
                continue
            lines.append(f"| {name} | {d['utterances']} | {d['max_abs_logit_diff']:.4f} / {d['median_abs_logit_diff']:.4f} | "
                         f"{d['median_max_abs_logit']:.3f} | {d['same_top_emotion']} of {d['utterances']} | "
                         f"{d['encoder_states_rel_diff_median']:.4f} / {d['encoder_states_rel_diff_max']:.4f} |")
    lines += [
        "",
        "RTF = compute seconds (VAD" + (" + ASR" if asr else "") + " + emotion model, excluding waiting for audio) "
        "/ audio seconds; below 1 the models keep up with live audio. Stage times and latencies are median / p90. "
        "Latency = from the arrival of the audio chunk that closed an utterance to its emotion: "
        + (
            "processing plus any backlog (waiting for earlier utterances)"
            if s["realtime"]
            else "processing plus waiting in the queue behind earlier utterances (the file is read without pacing, "
            "up to --max-queue utterances ahead of recognition)"
        )
        + "; end of utterance to result adds the VAD's hangover wait (500 ms of silence) and the rest of that chunk. "
        "With an early start, ASR and the emotion model begin after that much silence, before the hangover ends "
        "(the work is dropped when speech resumes; dropped work counts in the compute time). "
        "RTF / teacher RTF compares models at the same thread count and early start. Encoder passes: 1 when the "
        "emotion model's Whisper encoder took the recognizer's states (`multistill/live/stream_encoder.py`), 2 when it "
        "encoded the audio itself. Queue wait: from the close of an utterance to the start of its recognition; no ASR "
        "/ dropped: utterances the live stream's backlog policy degraded (`multistill/live/stream_session.py`). Peak RSS: "
        "the benchmark process's peak resident memory so far (all models of the run loaded in turn).",
    ]
    return "\n".join(lines) + "\n"


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
        res = run(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    # 3. the report
    res["provenance"] = provenance(argv, "benchmarks/stream_rtf.py")
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
