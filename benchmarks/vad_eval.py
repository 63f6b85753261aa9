#!/usr/bin/env python
"""Voice-activity detectors on conversations built from real KEMDy utterances: Silero VAD vs the energy VAD.

A conversation is one KEMDy19 dialogue followed by one KEMDy20 script (each utterance's WAV in the order
of its annotated start time), with a seeded pause of 0.3-1.5 s between utterances. A pause is filled with
noise of the spectrum and level of the recordings' own background (the quietest 10 % of 32 ms frames of
the utterance before it), so the splices carry no step in energy that a detector could mistake for an
onset (``--noise_dbfs`` fills pauses with white noise of a fixed level instead). The truth is each utterance file's span in the conversation (the
annotated segment, including the silence the annotators left inside it). Each detector runs exactly as
``multistill stream`` runs it (``segment_audio``: 100 ms chunks through ``UtteranceSegmenter``) for each
hangover, and is scored by matching the segments it finds to the true utterances:

* a segment belongs to the utterance it overlaps most (none: a false alarm);
* a segment covering at least half of two or more utterances merged them (under-segmentation);
* an utterance owning two or more segments was split (over-segmentation);
* an utterance with no segment at all (and not inside a merged one) was missed;
* an utterance with exactly one segment, which merged nothing, is found one-to-one: its start and end
  errors (segment's detected speech span minus the file's span, in ms) give the boundary error.

    python benchmarks/vad_eval.py --data_dir ../shared/kemdy_sample
    python benchmarks/vad_eval.py --data_dir ../shared/kemdy_sample --save_conversation /tmp/conv   # + WAV

Writes ``<output_dir>/<name>.json`` and ``.md`` and prints the markdown. With ``--save_conversation`` it
also writes each conversation as ``<id>.wav``, ``<id>.txt`` (one clean transcript line per utterance) and
``<id>.timed.txt`` (``start<TAB>end<TAB>text``), the input of ``multistill stream``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

import numpy as np  # noqa: E402
from transformers import HfArgumentParser, set_seed  # noqa: E402

logger = logging.getLogger("vad_eval")
SAMPLING_RATE = 16_000
DEFAULT_CONVERSATIONS = ["KEMDy19:Sess01_impro02+KEMDy20:Sess01_script01",
                         "KEMDy19:Sess01_script03+KEMDy20:Sess01_script04"]


@dataclass
class VadEvalArguments:
    """What to build and measure."""

    data_dir: str = field(metadata={"help": "Folder with KEMDy19/ and KEMDy20/ (e.g. ../shared/kemdy_sample)."})
    conversations: list[str] = field(
        default_factory=lambda: list(DEFAULT_CONVERSATIONS),
        metadata={"help": "Conversations, each 'CORPUS:DIALOGUE+CORPUS:DIALOGUE+...' (dialogues concatenated)."},
    )
    vads: list[str] = field(default_factory=lambda: ["silero", "energy"], metadata={"help": "Detectors to compare."})
    hangover_ms: list[float] = field(default_factory=lambda: [300.0, 500.0, 800.0],
                                     metadata={"help": "Silence that ends an utterance, each measured in turn."})
    min_gap_s: float = field(default=0.3, metadata={"help": "Shortest silence between utterances (s)."})
    max_gap_s: float = field(default=1.5, metadata={"help": "Longest silence between utterances (s)."})
    noise_dbfs: float | None = field(
        default=None, metadata={"help": "Fill pauses with white noise of this level (dBFS) instead of noise matched "
                                        "to the recordings' background."})
    seed: int = field(default=0, metadata={"help": "Seed of the silences and noise."})
    data_cache_dir: str | None = field(default=None, metadata={"help": "Arrow cache (default ~/.cache/multistill)."})
    save_conversation: str | None = field(default=None,
                                          metadata={"help": "Also write the conversations (WAV + transcripts) here."})
    output_dir: str = field(default=str(HERE / "results"), metadata={"help": "Where <name>.json/.md go."})
    name: str = field(default="vad_eval", metadata={"help": "Output file stem."})

    def __post_init__(self) -> None:
        from multistill.live.vad import VAD_KINDS

        if not 0 <= self.min_gap_s <= self.max_gap_s:
            raise ValueError(f"Need 0 <= --min_gap_s <= --max_gap_s, got {self.min_gap_s} and {self.max_gap_s}.")
        if any(v not in VAD_KINDS for v in self.vads):
            raise ValueError(f"--vads must be among {VAD_KINDS}, got {self.vads}.")
        if not self.hangover_ms or any(h <= 0 for h in self.hangover_ms):
            raise ValueError(f"--hangover_ms must be positive, got {self.hangover_ms}.")
        for spec in self.conversations:
            parse_conversation(spec)


def parse_args(argv: list[str]) -> VadEvalArguments:
    """The options, checked before any data or model loads: a ``UsageError`` (one ``error:`` line, exit status 2;
    a typo, a bad value or a folder without the corpus were tracebacks)."""
    from bench_args import check_file_stem

    from multistill.training.arguments import UsageError, check_output_dir, parse_command_line
    from multistill.training.data import data_dir_error

    try:
        (args,) = parse_command_line(HfArgumentParser(VadEvalArguments), argv)
    except ValueError as error:
        raise UsageError(str(error)) from None
    check_file_stem(args.name)
    check_output_dir(args.output_dir)
    check_output_dir(args.save_conversation, "--save_conversation")
    error = data_dir_error("all", args.data_dir)
    if error:
        raise UsageError(error)
    return args


def parse_conversation(spec: str) -> list[tuple[str, str]]:
    """``"KEMDy19:Sess01_impro02+KEMDy20:Sess01_script01"`` -> ``[("KEMDy19", "Sess01_impro02"), ...]``."""
    parts = []
    for piece in spec.split("+"):
        corpus, sep, dialogue = piece.partition(":")
        if not sep or corpus not in ("KEMDy19", "KEMDy20") or not dialogue:
            raise ValueError(f"Bad conversation {spec!r}: expected 'KEMDy19:Sess01_impro02+KEMDy20:Sess01_script01'.")
        parts.append((corpus, dialogue))
    return parts


# --------------------------------------------------------------------------- conversations


def _decode(value: Any) -> np.ndarray:
    """A ``datasets`` audio value as mono float32 at 16 kHz."""
    from multistill.audio_utils import load_audio

    return load_audio(value, target_rate=SAMPLING_RATE, min_seconds=0)


def background_noise(reference: np.ndarray, samples: int, rng: np.random.Generator, frame: int = 512) -> np.ndarray:
    """``samples`` of noise with the average spectrum and level of ``reference``'s quietest 10 % of frames."""
    n = max(1, reference.shape[0] // frame)
    frames = np.resize(reference, n * frame).reshape(n, frame).astype(np.float64)
    power = np.mean(frames**2, axis=1)
    quiet = frames[power <= np.percentile(power, 10)]
    magnitude = np.sqrt(np.mean(np.abs(np.fft.rfft(quiet * np.hanning(frame), axis=1)) ** 2, axis=0))
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    spectrum *= np.interp(np.linspace(0, 1, spectrum.shape[0]), np.linspace(0, 1, magnitude.shape[0]), magnitude)
    noise = np.fft.irfft(spectrum, n=samples)
    target = np.sqrt(np.mean(quiet**2))
    return (noise * target / max(np.sqrt(np.mean(noise**2)), 1e-12)).astype(np.float32)


def build_sample_conversation(
    dataset: Any, spec: str, seed: int = 0, min_gap_s: float = 0.3, max_gap_s: float = 1.5,
    noise_dbfs: float | None = None, max_utterances: int | None = None,
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Concatenate the utterances of ``spec``'s dialogues (ordered by annotated start) with seeded pauses.

    Pauses hold :func:`background_noise` of the utterance before (the first one: of the first utterance),
    or white noise of ``noise_dbfs``. Returns the audio and, per utterance, its span (``start_s``,
    ``end_s``: the file's place in the conversation), id, corpus, speaker, emotion and clean transcript
    (``text``). ``max_utterances`` keeps the first ones only.
    """
    rng = np.random.default_rng(seed)

    def silence(reference: np.ndarray) -> np.ndarray:
        samples = int(round(float(rng.uniform(min_gap_s, max_gap_s)) * SAMPLING_RATE))
        if noise_dbfs is not None:
            return (10 ** (noise_dbfs / 20) * rng.standard_normal(samples)).astype(np.float32)
        return background_noise(reference, samples, rng)

    rows = []
    labels = dataset.features["emotion"].names
    meta = dataset.remove_columns(["audio"])
    for corpus, dialogue in parse_conversation(spec):
        chosen = [i for i, (c, d) in enumerate(zip(meta["corpus"], meta["dialogue"], strict=True))
                  if c == corpus and d == dialogue]
        if not chosen:
            raise ValueError(f"No utterance of {corpus} {dialogue} in the dataset.")
        rows += sorted(chosen, key=lambda i: (meta[i]["start"], meta[i]["id"]))
    if max_utterances is not None:
        rows = rows[:max_utterances]
    parts: list[np.ndarray] = []
    utterances: list[dict[str, Any]] = []
    t = 0.0
    for i in rows:
        row = dataset[i]
        audio = _decode(row["audio"])
        if not parts:
            parts.append(silence(audio))
            t = parts[0].shape[0] / SAMPLING_RATE
        seconds = audio.shape[0] / SAMPLING_RATE
        utterances.append({"id": row["id"], "corpus": row["corpus"], "speaker": row["speaker"],
                           "emotion": labels[row["emotion"]], "text": row["text"],
                           "start_s": round(t, 4), "end_s": round(t + seconds, 4)})
        gap = silence(audio)
        parts += [audio, gap]
        t += seconds + gap.shape[0] / SAMPLING_RATE
    return np.concatenate(parts).astype(np.float32), utterances


# --------------------------------------------------------------------------- scoring


def score_segments(truth: list[tuple[float, float]], found: list[tuple[float, float]]) -> dict[str, Any]:
    """Match found segments to true utterances (see the module doc) and count what went wrong."""
    owner: list[int | None] = []
    merged_set: set[int] = set()
    merged_utterances: set[int] = set()
    for s, (start, end) in enumerate(found):
        overlaps = [max(0.0, min(end, te) - max(start, ts)) for ts, te in truth]
        owner.append(int(np.argmax(overlaps)) if overlaps and max(overlaps) > 0 else None)
        covered = [k for k, (ts, te) in enumerate(truth) if overlaps[k] >= 0.5 * (te - ts)]
        if len(covered) >= 2:
            merged_set.add(s)
            merged_utterances.update(covered)
    per_utterance: list[list[int]] = [[] for _ in truth]
    for s, o in enumerate(owner):
        if o is not None:
            per_utterance[o].append(s)
    split = [k for k, segs in enumerate(per_utterance) if len(segs) >= 2]
    missed = [k for k, segs in enumerate(per_utterance) if not segs and k not in merged_utterances]
    start_err, end_err = [], []
    for k, segs in enumerate(per_utterance):
        if len(segs) == 1 and segs[0] not in merged_set and k not in merged_utterances:
            start_err.append(1000 * (found[segs[0]][0] - truth[k][0]))
            end_err.append(1000 * (found[segs[0]][1] - truth[k][1]))

    def dist(errors: list[float]) -> dict[str, float | None]:
        if not errors:
            return {"median_abs_ms": None, "p90_abs_ms": None, "median_signed_ms": None}
        abs_errors = np.abs(errors)
        return {"median_abs_ms": round(float(np.median(abs_errors)), 1),
                "p90_abs_ms": round(float(np.percentile(abs_errors, 90)), 1),
                "median_signed_ms": round(float(np.median(errors)), 1)}

    return {
        "true_utterances": len(truth),
        "segments": len(found),
        "one_to_one": len(start_err),
        "split_utterances": len(split),
        "extra_segments_from_splits": sum(len(per_utterance[k]) - 1 for k in split),
        "merged_segments": len(merged_set),
        "utterances_in_merges": len(merged_utterances),
        "missed": len(missed),
        "false_alarms": sum(o is None for o in owner),
        "start_error": dist(start_err),
        "end_error": dist(end_err),
    }


def evaluate(audio: np.ndarray, utterances: list[dict[str, Any]], vad: str, hangover_ms: float) -> dict[str, Any]:
    """Segment ``audio`` like the stream does and score it against ``utterances``."""
    from multistill.live.vad import VADConfig, segment_audio

    config = VADConfig(vad=vad, hangover_ms=hangover_ms)
    t0 = time.perf_counter()
    found = segment_audio(audio, config)
    seconds = time.perf_counter() - t0
    scores = score_segments([(u["start_s"], u["end_s"]) for u in utterances], [(f.start_s, f.end_s) for f in found])
    return {"vad": vad, "hangover_ms": hangover_ms, **scores, "vad_s": round(seconds, 3),
            "vad_rtf": round(seconds / (audio.shape[0] / SAMPLING_RATE), 5)}


# --------------------------------------------------------------------------- report


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def render_markdown(res: dict[str, Any]) -> str:
    """Table per conversation and hangover: counts and boundary errors of each detector."""
    from bench_lib import machine_line, provenance_line

    s = res["settings"]
    noise = ("noise matched to the recordings' background (spectrum and level of the previous utterance's "
             "quietest 10 % of frames)" if s["noise_dbfs"] is None else f"{s['noise_dbfs']:g} dBFS white noise")
    lines = ["# Voice-activity detection on conversations of real KEMDy utterances", "",
             f"**Machine:** {machine_line(res['machine'])}", "",
             *([f"**Made by** {provenance_line(res['provenance'])}.", ""] if res.get("provenance") else []),
             f"**Run:** {res['created']}; `segment_audio` (the `multistill stream` segmenter, 100 ms chunks); pauses "
             f"of {s['min_gap_s']:g}-{s['max_gap_s']:g} s filled with {noise}, seed "
             f"{s['seed']}; other processes used {res['machine'].get('others_cpu_pct', '–')} % of the CPU.", ""]
    for conv in res["conversations"]:
        lines += [f"## {conv['spec']}: {conv['utterances']} utterances, {conv['audio_s']:.0f} s", "",
                  "| VAD | hangover ms | segments / true | one-to-one | split utterances (extra segments) "
                  "| merged segments (utterances) | missed | false alarms | start error median / p90 ms "
                  "| end error median / p90 ms | VAD RTF |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in conv["results"]:
            lines.append(
                f"| {r['vad']} | {r['hangover_ms']:g} | {r['segments']} / {r['true_utterances']} | {r['one_to_one']} "
                f"| {r['split_utterances']} ({r['extra_segments_from_splits']}) | {r['merged_segments']} "
                f"({r['utterances_in_merges']}) | {r['missed']} | {r['false_alarms']} | "
                f"{_ms(r['start_error']['median_abs_ms'])} / {_ms(r['start_error']['p90_abs_ms'])} | "
                f"{_ms(r['end_error']['median_abs_ms'])} / {_ms(r['end_error']['p90_abs_ms'])} | {r['vad_rtf']:.4f} |")
        lines.append("")
    lines += ["Truth = each utterance file's span (the annotated segment, with the silence left inside the file); "
              "errors are absolute differences between the detected speech span (without pre/post-roll) and "
              "that span, over the one-to-one utterances. A silence shorter than the hangover cannot separate "
              "two utterances."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch
    from bench_lib import Contention, machine_info, provenance

    from multistill.training.arguments import UsageError
    from multistill.training.data import load_kemdy

    # 1. arguments, checked before anything loads
    args = parse_args(sys.argv[1:] if argv is None else list(argv))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    set_seed(args.seed)
    torch.set_num_threads(1)
    contention = Contention()

    # 2. data
    dataset = load_kemdy("all", args.data_dir, cache_dir=args.data_cache_dir)
    held = set(zip(dataset["corpus"], dataset["dialogue"], strict=True))
    for spec in args.conversations:  # all checked before the first one is measured
        missing = [f"{corpus}:{dialogue}" for corpus, dialogue in parse_conversation(spec) if (corpus, dialogue) not in held]
        if missing:
            raise UsageError(f"--conversations {spec}: --data_dir {args.data_dir} holds no utterance of {missing}.")

    # 3. conversations, each scored with every detector and hangover
    conversations = []
    for number, spec in enumerate(args.conversations):
        audio, utterances = build_sample_conversation(dataset, spec, args.seed + number, args.min_gap_s,
                                                      args.max_gap_s, args.noise_dbfs)
        logger.info("%s: %d utterances, %.0f s", spec, len(utterances), audio.shape[0] / SAMPLING_RATE)
        if args.save_conversation:
            save_conversation(Path(args.save_conversation) / f"conversation{number}", audio, utterances)
        results = [evaluate(audio, utterances, vad, hangover) for vad in args.vads for hangover in args.hangover_ms]
        for r in results:
            logger.info("  %s hangover %g ms: %d segments, %d one-to-one, %d split, %d merged, %d missed",
                        r["vad"], r["hangover_ms"], r["segments"], r["one_to_one"], r["split_utterances"],
                        r["merged_segments"], r["missed"])
        conversations.append({"spec": spec, "utterances": len(utterances), "audio_s": audio.shape[0] / SAMPLING_RATE,
                              "results": results})

    # 4. report
    machine = machine_info(1, torch.device("cpu"))
    machine["others_cpu_pct"] = contention.others_pct()
    res = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "provenance": provenance(sys.argv[1:] if argv is None else list(argv), "benchmarks/vad_eval.py"),
           "settings": {k: v for k, v in vars(args).items() if k not in ("output_dir", "name", "save_conversation")},
           "machine": machine, "conversations": conversations}
    md = render_markdown(res)
    print(md)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / f"{args.name}.md").write_text(md, encoding="utf-8")
    return res


def save_conversation(stem: Path, audio: np.ndarray, utterances: list[dict[str, Any]]) -> None:
    """``stem.wav`` + ``stem.txt`` (one line per utterance) + ``stem.timed.txt`` + ``stem.json`` (the truth)."""
    import soundfile

    stem.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(f"{stem}.wav", audio, SAMPLING_RATE, subtype="PCM_16")
    Path(f"{stem}.txt").write_text("".join(f"{u['text']}\n" for u in utterances), encoding="utf-8")
    Path(f"{stem}.timed.txt").write_text(
        "".join(f"{u['start_s']:.3f}\t{u['end_s']:.3f}\t{u['text']}\n" for u in utterances), encoding="utf-8")
    Path(f"{stem}.json").write_text(json.dumps(utterances, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    logger.info("Wrote %s.wav (+ .txt, .timed.txt, .json)", stem)


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
