#!/usr/bin/env python
"""What speech recognition costs: character error rate of an ASR model on the real KEMDy sample.

Adds an ``asr_text`` column to every utterance with ``multistill.asr.add_asr_transcripts`` (``datasets.map``,
cached next to the dataset's Arrow files under a fingerprint of the recognizer, so the transcripts are reused
by later runs, e.g. training on ASR transcripts) and scores it against the gold transcript
(``clean_transcript(raw_text)``: non-speech tags removed, overlap marks resolved), after
``normalize_for_cer`` (punctuation removed; CER without spaces, and with spaces).

    python benchmarks/asr_cer.py --data_dir ../shared/kemdy_sample                       # Whisper base, faster-whisper int8
    python benchmarks/asr_cer.py --data_dir ../shared/kemdy_sample --subset 200          # a seeded subset
    python benchmarks/asr_cer.py --data_dir ../shared/kemdy_sample --asr_window_s 30 --name asr_cer_window30
    python benchmarks/asr_cer.py --data_dir ../shared/kemdy_sample --asr openai/whisper-large-v3-turbo --device cuda

Writes ``<output_dir>/<name>.json`` (settings, CER overall and per corpus, every utterance's character
counts and CER; no transcript text: the corpora are licensed, their texts stay out of the repository) and
``<name>.md``, and prints the markdown. The transcripts themselves stay in the ``datasets`` cache.
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

logger = logging.getLogger("asr_cer")


@dataclass
class AsrCerArguments:
    """Which recognizer, on which data."""

    data_dir: str = field(metadata={"help": "Folder with KEMDy19/ and KEMDy20/ (e.g. ../shared/kemdy_sample)."})
    asr: str = field(default="whisper-base", metadata={
        "help": "ASR model: 'whisper-base' (offline CTranslate2 Whisper base), a CTranslate2 folder or a "
                "transformers speech-recognition model."})
    asr_engine: str | None = field(default=None, metadata={"help": "transformers or faster-whisper (default: detected)."})
    asr_language: str = field(default="ko", metadata={"help": "Language Whisper transcribes."})
    beam_size: int = field(default=1, metadata={"help": "1 = greedy decoding."})
    asr_window_s: float | None = field(default=None, metadata={
        "help": "faster-whisper's encoder window for utterances that fit it (default: the command line's, "
                "multistill.asr.SHORT_WINDOW_S; 30 = Whisper's own window)."})
    threads: int = field(default=0, metadata={"help": "faster-whisper CPU threads (0: its default)."})
    device: str = field(default="cpu", metadata={"help": "cpu or cuda[:N]."})
    batch_size: int = field(default=8, metadata={"help": "Utterances per datasets.map batch (and per ASR batch)."})
    subset: int | None = field(default=None, metadata={"help": "Score a seeded random subset of this size."})
    seed: int = field(default=0, metadata={"help": "Seed of the subset."})
    data_cache_dir: str | None = field(default=None, metadata={"help": "Arrow cache (default ~/.cache/multistill)."})
    output_dir: str = field(default=str(HERE / "results"), metadata={"help": "Where <name>.json/.md go."})
    name: str = field(default="asr_cer", metadata={"help": "Output file stem."})

    def __post_init__(self) -> None:
        from multistill.asr import ASR_ENGINES, check_encoder_window

        try:
            check_encoder_window(self.asr_window_s)
        except ValueError as error:
            raise ValueError(f"--asr_window_s {self.asr_window_s:g}: {error}") from None
        if self.asr_engine is not None and self.asr_engine not in ASR_ENGINES:
            raise ValueError(f"--asr_engine must be one of {ASR_ENGINES}, got {self.asr_engine!r}.")
        for name, low in (("beam_size", 1), ("batch_size", 1), ("threads", 0)):
            if getattr(self, name) < low:
                raise ValueError(f"--{name} must be >= {low}, got {getattr(self, name)}.")
        if self.subset is not None and self.subset < 1:
            raise ValueError(f"--subset must be >= 1, got {self.subset}.")


def parse_args(argv: list[str] | None) -> AsrCerArguments:
    """The options, checked before any data or model loads: a ``UsageError`` (one ``error:`` line, exit status 2;
    a bad value was a traceback, a missing --data_dir or --asr folder a traceback after the imports)."""
    from bench_args import check_file_stem

    from multistill.cli import check_device, check_model_reference
    from multistill.tools.whisper_base import WHISPER_BASE_ALIAS
    from multistill.training.arguments import UsageError, check_output_dir, parse_command_line
    from multistill.training.data import data_dir_error

    try:
        (args,) = parse_command_line(HfArgumentParser(AsrCerArguments), sys.argv[1:] if argv is None else list(argv))
        check_model_reference(args.asr, "--asr", aliases=(WHISPER_BASE_ALIAS,))
        check_device(args.device)
    except ValueError as error:
        raise UsageError(str(error)) from None
    check_file_stem(args.name)
    check_output_dir(args.output_dir)
    error = data_dir_error("all", args.data_dir)
    if error:
        raise UsageError(error)
    return args


def render_markdown(res: dict[str, Any]) -> str:
    """CER table (overall and per corpus) and the spread over utterances."""
    from bench_lib import machine_line, provenance_line

    a, timing = res["asr"], res["timing"]
    lines = ["# Speech recognition on the real KEMDy sample: character error rate", "",
             f"**Machine:** {machine_line(res['machine'])}", ""]
    if res.get("provenance"):
        lines += [f"**Made by** {provenance_line(res['provenance'])}.", ""]
    lines += [
             f"**ASR:** {a['engine']} `{Path(a['model']).name}` ({', '.join(f'{k} {v}' for k, v in a.items() if k in ('language', 'compute_type', 'beam_size', 'num_beams', 'device', 'encoder_window_s', 'temperature_fallback'))}); "
             f"{res['utterances']} utterances ({res['selection']}), {res['audio_s'] / 60:.1f} min of annotated speech. "
             + (f"Transcribed in {timing['transcribe_s']:.0f} s ({timing['asr_rtf']:.3f} x real time, "
                f"{timing['threads']} threads; other processes used {res['machine'].get('others_cpu_pct', '–')} % of "
                "the CPU)." if timing["transcribed"] else "Transcripts read from the datasets.map cache."),
             "", "| corpus | utterances | CER (no spaces) | CER (with spaces) | empty ASR output |", "|---|---|---|---|---|"]
    for name, row in res["cer"].items():
        lines.append(f"| {name} | {row['utterances']} | {row['cer'] * 100:.1f} % | {row['cer_with_spaces'] * 100:.1f} % "
                     f"| {row['empty_hypotheses']} |")
    spread = res["spread"]
    lines += ["", "Gold = `clean_transcript(raw_text)`; both sides NFKC, lower case, punctuation removed. "
              "CER = character edits / gold characters over all utterances (no spaces unless said). Per utterance: "
              f"median CER {spread['median'] * 100:.1f} %, p90 {spread['p90'] * 100:.1f} %; "
              f"{spread['perfect']} utterances recognised exactly, {spread['over_50']} with CER over 50 %."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch
    from bench_lib import Contention, machine_info, provenance

    from multistill.asr import (
        SHORT_WINDOW_S,
        add_asr_transcripts,
        character_error_rate,
        detect_engine,
        load_asr,
        normalize_for_cer,
    )
    from multistill.cli import resolve_asr_model
    from multistill.processing_multistill import clean_transcript
    from multistill.training.data import load_kemdy

    # 1. arguments, checked before anything loads
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    set_seed(args.seed)

    # 2. data (the whole sample, or a seeded subset)
    dataset = load_kemdy("all", args.data_dir, cache_dir=args.data_cache_dir)
    selection = f"all of {len(dataset)}"
    if args.subset is not None and args.subset < len(dataset):
        dataset = dataset.shuffle(seed=args.seed).select(range(args.subset))
        selection = f"seeded subset (seed {args.seed}) of {args.subset}"

    # 3. recognizer and transcripts (cached datasets.map)
    model = resolve_asr_model(args.asr)
    window = args.asr_window_s
    if window is None and (args.asr_engine or detect_engine(model)) == "faster-whisper":
        window = SHORT_WINDOW_S
    asr = load_asr(model, engine=args.asr_engine, language=args.asr_language or None, device=args.device,
                   beam_size=args.beam_size, threads=args.threads, batch_size=args.batch_size, encoder_window_s=window)
    contention = Contention()
    t0 = time.perf_counter()
    dataset = add_asr_transcripts(dataset, asr, batch_size=args.batch_size)
    transcribe_s = time.perf_counter() - t0
    audio_s = float(np.sum(np.asarray(dataset["end"]) - np.asarray(dataset["start"])))

    # 4. CER overall and per corpus
    gold = [clean_transcript(raw) for raw in dataset["raw_text"]]
    hyp = dataset["asr_text"]
    corpora = dataset["corpus"]
    cer = {}
    for name in ["all", *sorted(set(corpora))]:
        keep = [i for i, c in enumerate(corpora) if name in ("all", c)]
        refs, hyps = [gold[i] for i in keep], [hyp[i] for i in keep]
        row = character_error_rate(refs, hyps)
        row["cer_with_spaces"] = character_error_rate(refs, hyps, keep_spaces=True)["cer"]
        cer[name] = row
    per_utterance = []
    for i, c, g, h in zip(dataset["id"], corpora, gold, hyp, strict=True):
        one = character_error_rate([g], [h])
        per_utterance.append({"id": i, "corpus": c, "gold_chars": one["reference_chars"], "edits": one["edits"],
                              "asr_chars": len(normalize_for_cer(h)), "cer": one["cer"]})
    scored = [u["cer"] for u in per_utterance if u["gold_chars"]]
    spread = {"median": float(np.median(scored)), "p90": float(np.percentile(scored, 90)),
              "perfect": sum(c == 0 for c in scored), "over_50": sum(c > 0.5 for c in scored)}

    # 5. report
    machine = machine_info(torch.get_num_threads(), torch.device("cpu"))
    machine["others_cpu_pct"] = contention.others_pct()
    res = {"created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
           "provenance": provenance(sys.argv[1:] if argv is None else list(argv), "benchmarks/asr_cer.py"),
           "settings": {k: v for k, v in vars(args).items() if k not in ("output_dir", "name")},
           "asr": asr.describe(), "machine": machine, "selection": selection, "utterances": len(dataset),
           "audio_s": audio_s,
           "timing": {"transcribed": asr.clips_transcribed, "transcribe_s": round(transcribe_s, 1),
                      "asr_s": round(asr.seconds_transcribing, 1), "threads": args.threads or "default",
                      "asr_rtf": round(asr.seconds_transcribing / audio_s, 4) if asr.clips_transcribed else None},
           "cer": cer, "spread": spread, "per_utterance": per_utterance}
    md = render_markdown(res)
    print(md)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / f"{args.name}.md").write_text(md, encoding="utf-8")
    return res


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
