#!/usr/bin/env python
"""Trained models on real utterances of about 5 s, side by side: end-to-end latency (processor + model, batch 1).

The random-weight benchmark (``benchmark.py``) times architectures on synthetic input; this one times the models a
run actually trained (e.g. a recipe teacher and its light student) on real KEMDy utterances of a chosen length,
as a user calls them: waveform and transcript in, logits out. Rounds interleave the models (each utterance through
every model in turn), so a load that comes and goes touches them alike; each model's ratio to its teacher (the last
``teacher`` listed before it, else the first model: list each teacher before its students) is the median of the
per-round ratios (a round = every chosen utterance once). The other processes' share of the CPU during
the run is recorded: compare runs on an idle machine only.

    python benchmarks/trained_latency.py --models outputs/recipe/fold1_test2_context4_light/seed_1/teacher \\
        outputs/recipe/fold1_test2_context4_light/seed_1/light_student_kd --data_dir ../shared/kemdy_sample \\
        --seconds 4.5 5.5 --utterances 10 --rounds 5 --threads 1 --output_json trained_latency.json
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(HERE), str(ROOT)):
    if path not in sys.path:
        sys.path.insert(0, path)

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_lib import Contention, machine_info, provenance  # noqa: E402
from transformers import HfArgumentParser  # noqa: E402


@dataclass
class Arguments:
    models: list[str] = field(metadata={"help": "Saved model folders, each teacher before its students (each "
                                        "model's ratio is to the last teacher listed before it, else the first)."})
    data_dir: str = field(metadata={"help": "A KEMDy folder (ETRI layout), e.g. ../shared/kemdy_sample."})
    seconds: list[float] = field(default_factory=lambda: [4.5, 5.5], metadata={
        "help": "Shortest and longest utterance timed, in seconds."})
    utterances: int = field(default=10, metadata={"help": "Utterances of that length timed (the first found)."})
    rounds: int = field(default=5, metadata={"help": "Interleaved rounds (each times every model on every utterance)."})
    threads: int = field(default=1, metadata={"help": "torch threads."})
    output_json: str | None = field(default=None, metadata={"help": "Where to write the result."})


def parse_args(argv: list[str]) -> Arguments:
    """The options, checked before any data or model loads: a ``UsageError`` (one ``error:`` line, exit status 2;
    a typo was a traceback, an unwritable ``--output_json`` one after the whole run)."""
    from multistill.cli import check_output_file
    from multistill.training.arguments import UsageError, parse_command_line
    from multistill.training.data import data_dir_error

    (args,) = parse_command_line(HfArgumentParser(Arguments), argv)
    missing = [m for m in args.models if not (Path(m) / "config.json").is_file()]
    if missing:
        raise UsageError(f"--models {missing[0]}: not a saved model folder (no config.json).")
    error = data_dir_error("all", args.data_dir)
    if error:
        raise UsageError(error)
    if len(args.seconds) != 2 or not 0 < args.seconds[0] <= args.seconds[1]:
        raise UsageError(f"--seconds takes the shortest and longest length, 0 < a <= b; got {args.seconds}.")
    if min(args.utterances, args.rounds, args.threads) < 1:
        raise UsageError("--utterances, --rounds and --threads must be >= 1.")
    check_output_file(args.output_json, "--output_json", create_folder=True)
    return args


def real_utterances(data_dir: str, shortest: float, longest: float, count: int) -> list[dict[str, Any]]:
    """The first ``count`` utterances (corpus order) lasting ``shortest``-``longest`` s: waveform and transcript."""
    from multistill.training.data import load_kemdy

    chosen = []
    for row in load_kemdy("all", data_dir):
        audio = row["audio"]
        array = np.asarray(audio["array"], dtype=np.float32)
        if shortest <= array.shape[0] / audio["sampling_rate"] <= longest and row["text"]:
            chosen.append({"array": array, "sampling_rate": int(audio["sampling_rate"]), "text": row["text"],
                           "id": row.get("id") or row.get("segment_id")})
            if len(chosen) == count:
                break
    if not chosen:
        from multistill.training.arguments import UsageError

        raise UsageError(f"--data_dir {data_dir}: no utterance of {shortest}-{longest} s.")
    return chosen


def load(folder: str):
    """A saved model (fp32, eval) and its processor; the modalities it reads."""
    from multistill.modeling_multistill import MultiStillForEmotionClassification
    from multistill.processing_multistill import MultiStillProcessor

    model = MultiStillForEmotionClassification.from_pretrained(folder, dtype=torch.float32).eval()
    return model, MultiStillProcessor.from_pretrained(folder), list(model.config.modalities)


def time_one(loaded, utterance: dict[str, Any]) -> float:
    """Milliseconds from the waveform and transcript to the logits."""
    model, processor, modalities = loaded
    start = time.perf_counter()
    with torch.inference_mode():
        inputs = processor(audio={"array": utterance["array"], "sampling_rate": utterance["sampling_rate"]}
                           if "audio" in modalities else None,
                           text=utterance["text"] if "text" in modalities else None, return_tensors="pt")
        inputs.pop("token_type_ids", None)
        model(**inputs)
    return 1000 * (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    # 1. options, checked before anything loads
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    # 2. the utterances and the models, timed in interleaved rounds
    torch.set_num_threads(args.threads)
    utterances = real_utterances(args.data_dir, *args.seconds, args.utterances)
    models = [load(folder) for folder in args.models]
    for loaded in models:  # warm-up
        time_one(loaded, utterances[0])
    contention = Contention()
    rounds: list[list[float]] = [[] for _ in models]  # per model: each round's median
    for _ in range(args.rounds):
        times: list[list[float]] = [[] for _ in models]
        for utterance in utterances:
            for i, loaded in enumerate(models):
                times[i].append(time_one(loaded, utterance))
        for i in range(len(models)):
            rounds[i].append(statistics.median(times[i]))
    # 3. the report: per model, its median and its ratio to its teacher
    result = {
        "provenance": provenance(argv, "benchmarks/trained_latency.py"),
        "machine": machine_info(args.threads, torch.device("cpu")),
        "others_cpu_pct": contention.others_pct(),
        "utterances": [{"id": u["id"], "seconds": round(u["array"].shape[0] / u["sampling_rate"], 2)}
                       for u in utterances],
        "rounds": args.rounds,
        "models": [],
    }
    for i, (folder, loaded) in enumerate(zip(args.models, models, strict=True)):
        teacher = max([j for j in range(i + 1) if models[j][0].config.preset == "teacher"], default=0)
        result["models"].append({
            "folder": folder, "preset": loaded[0].config.preset,
            "audio_layers": loaded[0].config.audio_config.num_hidden_layers if "audio" in loaded[2] else None,
            "parameters": sum(p.numel() for p in loaded[0].parameters()),
            "round_medians_ms": rounds[i], "median_ms": statistics.median(rounds[i]), "teacher": args.models[teacher],
            "teacher_ratio": statistics.median(a / b for a, b in zip(rounds[teacher], rounds[i], strict=True))})
    for entry in result["models"]:
        print(f"{entry['folder']}: {entry['median_ms']:.1f} ms, its teacher / it = {entry['teacher_ratio']:.2f}x")
    print(f"other processes: {result['others_cpu_pct']} % of the CPU")
    if args.output_json:
        Path(args.output_json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output_json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
