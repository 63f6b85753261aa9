#!/usr/bin/env python
"""What conversation context costs per utterance: the same model with ``context_size`` 0 and K, side by side.

The recipe's teacher shape (Whisper base at the utterance's length, every layer's statistics, the character
n-gram text encoder, concatenation fusion) and two light shapes (the first and last of Whisper's 6 layers; its
convolutions only), random weights (latency does not depend on them), one 5 s utterance and its transcript, end to
end from the waveform (processor included). With context the previous K utterances' representations are given (``history_features``),
as the stream and the pipeline keep them: no utterance is encoded twice. Rounds interleave the two models;
the ratio is the median of the per-round ratios.

    python benchmarks/context_latency.py --rounds 20 --output_json benchmarks/results/context_latency.json
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from transformers import HfArgumentParser

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from multistill.configuration_multistill import CONTEXT_TYPES, MultiStillConfig  # noqa: E402
from multistill.modeling_multistill import MultiStillForEmotionClassification  # noqa: E402
from multistill.offline import FUSION_SIZES, build_ngram_text_encoder  # noqa: E402
from multistill.processing_multistill import MultiStillProcessor  # noqa: E402
from multistill.tools.whisper_base import transformers_folder  # noqa: E402
from multistill.training.arguments import parse_command_line  # noqa: E402

DEFAULT_CONTEXT_TYPE = MultiStillConfig().context_type
#: The shapes timed: name and the Whisper layers kept (None: all 6).
SHAPES = (("teacher (Whisper base, 6 layers)", None), ("light (Whisper layers 1 and 6)", 2),
          ("light (Whisper's convolutions only)", 0))
TEXT = "아니 그게 무슨 말이야 나는 오늘 정말 기분이 좋았는데 갑자기 왜 그래"


@dataclass
class Arguments:
    context_size: int = field(default=4, metadata={"help": "Previous utterances the context model reads."})
    context_type: str = field(default=DEFAULT_CONTEXT_TYPE, metadata={
        "choices": CONTEXT_TYPES, "help": "How the history is summarised (default: the model's default)."})
    fusion_size: str = field(default="linear", metadata={
        "choices": tuple(FUSION_SIZES), "help": "Fusion head of the offline presets (default: the recipe's)."})
    rounds: int = field(default=20, metadata={"help": "Interleaved rounds (each times both models once)."})
    seconds: float = field(default=5.0, metadata={"help": "Utterance length."})
    threads: int = field(default=1, metadata={"help": "torch threads."})
    output_json: str | None = field(default=None, metadata={"help": "Where to write the result."})


def check_arguments(args: Arguments) -> None:
    """Refuse bad options before any model is built (a ``UsageError``: one ``error:`` line, exit status 2)."""
    from bench_args import check_numbers

    from multistill.cli import check_output_file
    from multistill.configuration_multistill import MAX_CONTEXT_SIZE
    from multistill.training.arguments import UsageError

    check_numbers(args, positive=("context_size", "rounds", "seconds", "threads"))
    if args.context_size > MAX_CONTEXT_SIZE:
        raise UsageError(f"--context_size must be at most {MAX_CONTEXT_SIZE}, got {args.context_size}.")
    check_output_file(args.output_json, "--output_json", create_folder=True)


def build(whisper: str, ngram: str, args: Arguments, context_size: int, audio_layers: int | None):
    torch.manual_seed(0)
    model = MultiStillForEmotionClassification.from_encoders(
        whisper, ngram, preset="teacher", local_files_only=True, fusion_type="concat", context_size=context_size,
        context_type=args.context_type, freeze_text_encoder=False, audio_layers=audio_layers,
        **FUSION_SIZES[args.fusion_size]).eval()
    return model, MultiStillProcessor.from_encoders(whisper, ngram, config=model.config, local_files_only=True)


def time_once(model, processor, wave: np.ndarray, history: torch.Tensor | None) -> float:
    start = time.perf_counter()
    with torch.inference_mode():
        inputs = processor(audio=[wave], sampling_rate=16000, text=[TEXT])
        model(**inputs, **({"history_features": history} if history is not None else {}))
    return (time.perf_counter() - start) * 1000


def main(argv: list[str] | None = None) -> None:
    (args,) = parse_command_line(HfArgumentParser(Arguments), sys.argv[1:] if argv is None else list(argv))
    check_arguments(args)
    torch.set_num_threads(args.threads)
    whisper = str(transformers_folder())
    ngram = build_ngram_text_encoder(ROOT / "outputs" / "bench_ngram", [TEXT, "그냥 그래요", "진짜 화났어"])
    wave = (0.1 * np.random.default_rng(0).standard_normal(int(args.seconds * 16000))).astype(np.float32)
    report = {"command": " ".join(sys.argv), "machine": platform.processor() or platform.machine(),
              "git_commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True,
                                           text=True).stdout.strip(),
              "load_average": list(os.getloadavg()), "threads": args.threads, "seconds": args.seconds,
              "context_size": args.context_size, "context_type": args.context_type, "fusion_size": args.fusion_size,
              "rounds": args.rounds, "shapes": {}}
    for shape, layers in SHAPES:
        plain = build(whisper, ngram, args, 0, layers)
        context = build(whisper, ngram, args, args.context_size, layers)
        history = torch.randn(1, args.context_size, context[0].config.pooled_utterance_size)
        for _ in range(2):  # warm-up
            time_once(*plain, wave, None), time_once(*context, wave, history)
        times = {"without": [], "with": []}
        for _ in range(args.rounds):
            times["without"].append(time_once(*plain, wave, None))
            times["with"].append(time_once(*context, wave, history))
        ratios = [b / a for a, b in zip(times["without"], times["with"], strict=True)]
        report["shapes"][shape] = {
            "median_ms_without_context": statistics.median(times["without"]),
            "median_ms_with_context": statistics.median(times["with"]),
            "median_per_round_ratio": statistics.median(ratios),
            "context_parameters": sum(p.numel() for p in context[0].multistill.context.parameters()),
        }
        print(f"{shape}: {report['shapes'][shape]}")
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
