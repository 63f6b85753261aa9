#!/usr/bin/env python
"""Feature caching and training steps with N torch threads, side by side in one run (``--threads`` of
train.py / distill.py).

Tiny backbones on the embedded synthetic corpus (128 utterances): for each repetition and each thread
count (the order alternates between repetitions), it times (1) caching the frozen encoders' features of
every split into a fresh cache, (2) ``--steps`` teacher training steps on cached features and (3) ``--steps``
light-student steps on raw audio and text. It prints medians, the ratio to the first thread count, and the
load average of the machine (other processes compete for the same cores), and writes JSON + Markdown.
``--busy_processes N`` runs N CPU-bound processes beside it, so that a measurement on a shared CPU can be repeated.

    python benchmarks/threads_training.py --threads 1 2 --repeats 3 --output benchmarks/results/threads_cpu
    python benchmarks/threads_training.py --threads 1 2 --repeats 3 --busy_processes 2 \
        --output benchmarks/results/threads_cpu_busy
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import platform
import shlex
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import HfArgumentParser


@dataclass
class ThreadsArguments:
    """Options of ``benchmarks/threads_training.py`` (``HfArgumentParser``)."""

    threads: list[int] = field(default_factory=lambda: [1, 2], metadata={"help": "Thread counts to compare."})
    repeats: int = field(default=3, metadata={"help": "Repetitions of every measurement."})
    steps: int = field(default=16, metadata={"help": "Training steps per measurement (batch 8)."})
    busy_processes: int = field(default=0, metadata={
        "help": "Start this many CPU-bound processes for the whole measurement (other work on the cores)."})
    output: str | None = field(default=None, metadata={"help": "Write OUTPUT.json and OUTPUT.md."})


def parse_args(argv: list[str]) -> ThreadsArguments:
    """The options, checked before anything is built: a ``UsageError`` (one ``error:`` line, exit status 2; a typo,
    ``--threads 0`` or ``--repeats 0`` were tracebacks, the last one after the whole run)."""
    from bench_args import check_numbers

    from multistill.cli import check_output_file
    from multistill.training.arguments import parse_command_line

    parser = HfArgumentParser(ThreadsArguments, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    (args,) = parse_command_line(parser, argv)
    check_numbers(args, positive=("threads", "repeats", "steps"), non_negative=("busy_processes",))
    # the report goes to OUTPUT.json and OUTPUT.md
    check_output_file(None if args.output is None else f"{args.output}.json", "--output", create_folder=True)
    return args


@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """``count`` CPU-bound processes (a busy loop each) for the duration: other work on the cores, made on purpose
    so that a run under contention is reproducible from its command."""
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_spin, daemon=True) for _ in range(count)]
    for worker in workers:
        worker.start()
    try:
        yield
    finally:
        for worker in workers:
            worker.terminate()
            worker.join()


def _spin() -> None:
    while True:
        pass


def measure(args: ThreadsArguments, work: Path) -> tuple[dict[int, dict[str, list[float]]], list[float], int]:
    """Per thread count, the seconds of each repetition (alternating order) of caching, teacher steps on cached
    features and light-student steps on raw inputs; the 1-minute load average after each; the corpus size."""
    from transformers import TrainingArguments

    from multistill.offline import build_tiny_encoders, tiny_backbones
    from multistill.training.data import load_kemdy
    from multistill.training.features import FeaturePlan
    from multistill.training.splits import make_splits
    from multistill.training.trainer import MultiStillTrainer

    splits = make_splits(load_kemdy("synthetic", cache_dir=work), "session")
    encoders = build_tiny_encoders(work / "encoders", texts=list(splits["train"]["text"]))

    def train_seconds(preset: str, cache: Path) -> float:
        model, processor = tiny_backbones(encoders=encoders, preset=preset, seed=0)
        data = FeaturePlan.decide(model.config).prepare(splits, model, processor, cache_dir=cache)
        training = TrainingArguments(output_dir=str(work / "out"), use_cpu=True, report_to="none", max_steps=args.steps,
                                     per_device_train_batch_size=8, save_strategy="no", eval_strategy="no",
                                     logging_strategy="no", disable_tqdm=True, label_names=["labels", "emotion"],
                                     remove_unused_columns=False, learning_rate=1e-3)
        trainer = MultiStillTrainer(model, training, train_dataset=data.splits["train"], data_collator=data.collator)
        start = time.perf_counter()
        trainer.train()
        return time.perf_counter() - start

    timings: dict[int, dict[str, list[float]]] = {n: {"caching": [], "teacher_steps": [], "light_steps": []}
                                                  for n in args.threads}
    loads = []
    with busy_processes(args.busy_processes):
        for repeat in range(args.repeats):
            for threads in args.threads if repeat % 2 == 0 else list(reversed(args.threads)):
                torch.set_num_threads(threads)
                cache = work / f"cache_{repeat}_{threads}"
                model, processor = tiny_backbones(encoders=encoders, preset="teacher", seed=0)
                start = time.perf_counter()
                FeaturePlan.decide(model.config).prepare(splits, model, processor, cache_dir=cache)
                timings[threads]["caching"].append(time.perf_counter() - start)
                timings[threads]["teacher_steps"].append(train_seconds("teacher", cache))
                timings[threads]["light_steps"].append(train_seconds("light_student", cache))
                loads.append(os.getloadavg()[0])
                print(f"repeat {repeat + 1}, {threads} thread(s): " + ", ".join(
                    f"{k} {v[-1]:.2f} s" for k, v in timings[threads].items()), flush=True)
    return timings, loads, sum(len(split) for split in splits.values())


def render_markdown(args: ThreadsArguments, medians: dict[int, dict[str, float]], loads: list[float],
                    utterances: int) -> str:
    """The medians per thread count, each with its ratio to the first thread count."""
    base = args.threads[0]
    count = args.busy_processes
    others = f"{count} other CPU-bound process{'es' if count > 1 else ''}" if count else "no other work started"
    lines = [f"# Caching and training with 1 vs N torch threads ({platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores, torch {torch.__version__})", "",
             f"Tiny backbones, synthetic corpus ({utterances} utterances), {args.repeats} repetitions (median), "
             f"{args.steps} steps of batch 8; {others}. Load average during the run (its own threads included): "
             f"{min(loads):.1f}-{max(loads):.1f}.", "",
             "| threads | caching (s) | teacher steps, cached (s) | light student steps, raw (s) |", "|---|---|---|---|"]
    for n, values in medians.items():
        cells = [f"{values[k]:.2f}" + ("" if n == base else f" ({values[k] / medians[base][k]:.2f}x)")
                 for k in ("caching", "teacher_steps", "light_steps")]
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """1. parse; 2. measure (with any busy processes); 3. report, and write OUTPUT.json/.md."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    import datasets
    import transformers

    from multistill.tools.experiment import provenance

    made_by = {**provenance(argv), "command": shlex.join(["python", "benchmarks/threads_training.py", *argv])}
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory(prefix="threads_") as work:  # the corpus, encoders and caches (13 MB) go
        timings, loads, utterances = measure(args, Path(work))
    medians = {n: {k: statistics.median(v) for k, v in t.items()} for n, t in timings.items()}
    report = render_markdown(args, medians, loads, utterances)
    print(report)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(f"{args.output}.md").write_text(report + "\n", encoding="utf-8")
        Path(f"{args.output}.json").write_text(json.dumps(
            {"provenance": made_by, "timings": timings, "medians": medians, "load_average": loads,
             "steps": args.steps, "repeats": args.repeats, "busy_processes": args.busy_processes,
             "cpu_count": os.cpu_count(), "torch": torch.__version__}, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
