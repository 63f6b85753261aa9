"""The paper's experiment in one command: teacher, students with and without distillation, light student.

``python -m multistill.experiment --output_dir outputs/experiment`` runs ``train.py`` (teacher) and
``distill.py`` (each student, with KD and with ``--alpha 0``) as subprocesses -- exactly what a user
would type, optionally under ``--launcher "accelerate launch"`` -- then measures every trained model's
end-to-end latency per utterance (raw audio + transcript -> emotion, through the processor) and writes
``results.md`` (the paper's table plus UA, macro-F1, total parameters and latency) and ``results.json``.

On the embedded synthetic corpus with tiny backbones it takes a few minutes on a 2-core CPU; pass
``--corpus all --data_dir ... --backbones pretrained`` for the real thing (a GPU is advisable).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("multistill.experiment")

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Run:
    """One row of the table: a model trained by one script invocation."""

    name: str
    label: str
    preset: str
    script: str
    alpha: float | None = None
    extra: tuple[str, ...] = ()


def planned_runs(students: list[str], alpha: float, no_kd_ablation: bool) -> list[Run]:
    """Teacher first, then each student with KD and (optionally) without."""
    labels = {
        "text_student": "(a) text-only student",
        "audio_student": "(b) audio-only student",
        "multimodal_student": "(c) multimodal student",
        "light_student": "(d) light student (2+2 encoder layers, fbank)",
    }
    runs = [Run("teacher", "Teacher (multimodal cross-attention)", "teacher", "train.py")]
    for preset in students:
        if preset not in labels:
            raise ValueError(f"--students: unknown student {preset!r}; choose from {sorted(labels)}.")
        runs.append(Run(f"{preset}_kd", f"{labels[preset]}, KD", preset, "distill.py", alpha))
        if no_kd_ablation:
            runs.append(Run(f"{preset}_ce", f"{labels[preset]}, no KD", preset, "distill.py", 0.0))
    return runs


def parse_args(argv: list[str] | None = None) -> tuple[argparse.Namespace, list[str]]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Unknown options are passed to every train.py / distill.py call (e.g. --bf16, --sessions 1 2).",
    )
    parser.add_argument("--output_dir", default="outputs/experiment", help="One sub-folder per model + results.md.")
    parser.add_argument("--corpus", default="synthetic", help="synthetic (embedded), kemdy19, kemdy20 or all.")
    parser.add_argument("--data_dir", default=None, help="Folder holding KEMDy19/ and/or KEMDy20/ (ETRI layout).")
    parser.add_argument("--split", default="session", choices=("session", "random"),
                        help="session: whole sessions held out; random: the paper's 80/20 split (seed 123).")
    parser.add_argument("--backbones", default="tiny", choices=("tiny", "pretrained"),
                        help="tiny: small offline encoders (no download); pretrained: the paper's encoders.")
    parser.add_argument("--students", nargs="+",
                        default=["text_student", "audio_student", "multimodal_student", "light_student"],
                        help="Students to distil.")
    parser.add_argument("--no_kd_ablation", action=argparse.BooleanOptionalAction, default=True,
                        help="Also train every student with --alpha 0 (no distillation).")
    parser.add_argument("--alpha", type=float, default=0.5, help="KD weight for the distilled students.")
    parser.add_argument("--temperature", type=float, default=2.0, help="KD temperature.")
    parser.add_argument("--num_train_epochs", type=float, default=30, help="Epochs of every run.")
    parser.add_argument("--learning_rate", type=float, default=3e-3,
                        help="Learning rate of every run (3e-3 suits tiny backbones; the paper used 5e-5).")
    parser.add_argument("--batch_size", type=int, default=8, help="Per-device training batch size.")
    parser.add_argument("--seed", type=int, default=42, help="Seed of every run (same seed, same table).")
    parser.add_argument("--launcher", default=None,
                        help='Command prefix instead of "python", e.g. "accelerate launch --num_processes 2".')
    parser.add_argument("--latency_utterances", type=int, default=20,
                        help="Test utterances timed one by one for the end-to-end latency column.")
    parser.add_argument("--caching_gain", action=argparse.BooleanOptionalAction, default=True,
                        help="Also train the teacher for one epoch with the encoders running every step, to "
                        "report the epoch-time gain of cached encoder features.")
    parser.add_argument("--reuse", action="store_true",
                        help="Skip runs whose output folder already holds test_results.json.")
    return parser.parse_known_args(argv)


def run_command(run: Run, args: argparse.Namespace, extra: list[str], teacher_dir: Path) -> list[str]:
    """The train.py / distill.py command line of one run."""
    script = REPO_ROOT / run.script
    if not script.exists():
        raise FileNotFoundError(f"{script} not found: run the experiment from a source checkout of multistill.")
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    command = launcher + [str(script), "--preset", run.preset, "--output_dir", str(Path(args.output_dir) / run.name),
                          "--corpus", args.corpus, "--split", args.split, "--seed", str(args.seed),
                          "--num_train_epochs", str(args.num_train_epochs), "--learning_rate", str(args.learning_rate),
                          "--per_device_train_batch_size", str(args.batch_size), "--disable_tqdm", "true"]
    if args.data_dir:
        command += ["--data_dir", args.data_dir]
    if run.script == "train.py":
        command += ["--backbones", args.backbones]
    else:
        command += ["--teacher_model", str(teacher_dir), "--alpha", str(run.alpha),
                    "--temperature", str(args.temperature)]
    if not torch.cuda.is_available() and "--use_cpu" not in extra and not args.launcher:
        command.append("--use_cpu")
    return command + list(run.extra) + extra


def caching_gain(output_dir: Path) -> dict[str, float]:
    """Seconds per training epoch of the teacher with cached features vs encoders run every step."""
    def per_epoch(name: str) -> float:
        result = json.loads((output_dir / name / "train_results.json").read_text(encoding="utf-8"))
        return result["train_runtime"] / result["epoch"]

    info = json.loads((output_dir / "teacher" / "run_info.json").read_text(encoding="utf-8"))
    cached, uncached = per_epoch("teacher"), per_epoch("teacher_uncached")
    return {"cached_epoch_seconds": cached, "uncached_epoch_seconds": uncached, "speedup": uncached / cached,
            "caching_seconds": info.get("feature_caching_seconds", 0.0)}


def measure_latency(model_dir: Path, rows: list[dict[str, Any]], threads: int | None = None) -> dict[str, float]:
    """Median end-to-end latency per utterance (processor + model, batch 1) and the whole-set time."""
    from .modeling_multistill import MultiStillForEmotionClassification
    from .processing_multistill import MultiStillProcessor

    model = MultiStillForEmotionClassification.from_pretrained(model_dir).eval()
    processor = MultiStillProcessor.from_pretrained(model_dir)
    modalities = list(model.config.modalities)

    def predict(row: dict[str, Any]) -> None:
        inputs = processor(
            audio={"array": row["audio"]["array"], "sampling_rate": row["audio"]["sampling_rate"]}
            if "audio" in modalities else None,
            text=row["text"] if "text" in modalities else None,
            return_tensors="pt",
        )
        inputs.pop("token_type_ids", None)
        model(**inputs)

    timings = []
    with torch.inference_mode():
        predict(rows[0])  # warm-up
        for row in rows:
            start = time.perf_counter()
            predict(row)
            timings.append(time.perf_counter() - start)
    seconds = [float(np.asarray(r["audio"]["array"]).shape[0]) / r["audio"]["sampling_rate"] for r in rows]
    return {
        "latency_ms_median": 1000 * float(np.median(timings)),
        "latency_ms_p90": 1000 * float(np.percentile(timings, 90)),
        "utterances_timed": len(timings),
        "mean_audio_seconds": float(np.mean(seconds)),
        "real_time_factor": float(np.sum(timings) / np.sum(seconds)),
    }


def latency_rows(model_dir: Path, count: int) -> list[dict[str, Any]]:
    """Decoded test utterances (audio + text) of the run, by the ids in its test_predictions.json."""
    from .data import load_kemdy

    info = json.loads((model_dir / "run_info.json").read_text(encoding="utf-8"))
    ids = [p["id"] for p in json.loads((model_dir / "test_predictions.json").read_text(encoding="utf-8"))][:count]
    dataset = load_kemdy(info["corpus"], info.get("data_dir"), info.get("sessions"), cache_dir=info.get("data_cache_dir"),
                         synthetic_size=tuple(info.get("synthetic_size") or (4, 4)))
    index = {key: i for i, key in enumerate(dataset["id"])}
    rows = []
    for key in ids:
        row = dataset[index[key]]
        rows.append({"audio": {"array": np.asarray(row["audio"]["array"], dtype=np.float32),
                               "sampling_rate": int(row["audio"]["sampling_rate"])}, "text": row["text"]})
    return rows


def _fmt(value: float | None, digits: int = 2, scale: float = 100.0) -> str:
    return "–" if value is None else f"{scale * value:.{digits}f}"


def render_table(results: list[dict[str, Any]], header: dict[str, Any], gain: dict[str, float] | None = None) -> str:
    """The paper's table (accuracy, weighted precision, weighted F1, trainable params, inference time)
    plus UA, macro-F1, total parameters and end-to-end latency per utterance."""
    lines = [
        f"# Multi-Still experiment: {header['corpus']} corpus, {header['split']} split, {header['backbones']} backbones",
        "",
        f"Test set: {header['test_examples']} utterances ({header['test_sessions']}). Seed {header['seed']}. "
        f"Machine: {header['machine']}. Latency = median of {header['latency_utterances']} test utterances, "
        "batch 1, raw 16 kHz audio + transcript through the processor and the model (the encoders included).",
        "",
        "| model | accuracy (WA) | precision | F1 | UA | macro-F1 | trainable params | total params "
        "| latency ms/utt | RTF | test-set time (s) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = r["metrics"]
        lines.append(
            f"| {r['label']} | {_fmt(m.get('test_accuracy'))} | {_fmt(m.get('test_weighted_precision'))} "
            f"| {_fmt(m.get('test_weighted_f1'))} | {_fmt(m.get('test_unweighted_accuracy'))} "
            f"| {_fmt(m.get('test_macro_f1'))} | {r['parameters']['trainable']:,} | {r['parameters']['total']:,} "
            f"| {r['latency']['latency_ms_median']:.1f} | {r['latency']['real_time_factor']:.4f} "
            f"| {m.get('test_runtime', float('nan')):.2f} |"
        )
    lines += [
        "",
        "Accuracy, precision and F1 are weighted, as in the paper; UA (balanced accuracy) and macro-F1 weigh every "
        "emotion equally. References are the evaluators' majority emotion; training targets their vote "
        "distribution. Paper (random split, full encoders): teacher 91.90 / 89.04 / 90.28, multimodal student "
        "92.08 / 88.99 / 89.89. With tiny random backbones the numbers only show that the pipeline learns; "
        "latency of the full-size architectures is in benchmarks/results/.",
    ]
    if gain:
        lines += [
            "",
            f"Cached encoder features: a teacher training epoch took {gain['cached_epoch_seconds']:.2f} s on cached "
            f"hidden states vs {gain['uncached_epoch_seconds']:.2f} s running the frozen encoders every step "
            f"(**{gain['speedup']:.1f}x** faster per epoch; one-time caching cost {gain['caching_seconds']:.1f} s, "
            "reused by every student that shares the teacher's encoders). Epochs include validation; the gain "
            "grows with the encoders' size: full size, a cached training step is 6.9x faster (benchmarks).",
        ]
    return "\n".join(lines) + "\n"


def machine_line() -> str:
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    return f"{platform.processor() or platform.machine()} CPU, {os.cpu_count()} cores, torch {torch.__version__}"


def main(argv: list[str] | None = None) -> list[dict[str, Any]]:
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO)
    # 1. Arguments and the plan
    args, extra = parse_args(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = planned_runs(args.students, args.alpha, args.no_kd_ablation)
    extra_runs = []
    if args.caching_gain:
        extra_runs.append(Run("teacher_uncached", "teacher, encoders every step", "teacher", "train.py",
                              extra=("--cache_encoder_features", "false", "--num_train_epochs", "1")))
    teacher_dir = output_dir / "teacher"
    logger.info("Plan: %s", ", ".join(r.name for r in runs))

    # 2. Train the teacher, then every student (each a train.py / distill.py process)
    for number, run in enumerate(runs + extra_runs, 1):
        run_dir = output_dir / run.name
        if args.reuse and (run_dir / "test_results.json").exists():
            logger.info("[%d/%d] %s: reusing %s", number, len(runs) + len(extra_runs), run.name, run_dir)
            continue
        command = run_command(run, args, extra, teacher_dir)
        logger.info("[%d/%d] %s: %s", number, len(runs) + len(extra_runs), run.name, shlex.join(command))
        start = time.perf_counter()
        log_file = output_dir / f"{run.name}.log"
        with open(log_file, "w", encoding="utf-8") as log:
            completed = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT, check=False)
        if completed.returncode != 0:
            tail = "".join(log_file.read_text(encoding="utf-8").splitlines(keepends=True)[-30:])
            raise RuntimeError(f"{run.name} failed (exit {completed.returncode}); last lines of {log_file}:\n{tail}")
        logger.info("[%d/%d] %s done in %.0f s", number, len(runs) + len(extra_runs), run.name, time.perf_counter() - start)

    # 3. Collect metrics and measure end-to-end latency of every trained model
    rows = latency_rows(teacher_dir, args.latency_utterances)
    results = []
    for run in runs:
        run_dir = output_dir / run.name
        info = json.loads((run_dir / "run_info.json").read_text(encoding="utf-8"))
        metrics = json.loads((run_dir / "test_results.json").read_text(encoding="utf-8"))
        results.append({"name": run.name, "label": run.label, "preset": run.preset, "alpha": run.alpha,
                        "metrics": metrics, "parameters": info["parameters"],
                        "latency": measure_latency(run_dir, rows)})

    # 4. The table
    teacher_metrics = json.loads((teacher_dir / "metrics.json").read_text(encoding="utf-8"))
    test_report = teacher_metrics["data"]["test"]
    header = {"corpus": args.corpus, "split": args.split, "backbones": args.backbones, "seed": args.seed,
              "test_examples": test_report["examples"], "test_sessions": ", ".join(test_report["sessions"]),
              "machine": machine_line(), "latency_utterances": len(rows)}
    gain = caching_gain(output_dir) if args.caching_gain else None
    table = render_table(results, header, gain)
    (output_dir / "results.md").write_text(table, encoding="utf-8")
    (output_dir / "results.json").write_text(json.dumps({"header": header, "results": results, "caching_gain": gain}, indent=2) + "\n",
                                             encoding="utf-8")
    print(table)
    logger.info("Wrote %s and results.json", output_dir / "results.md")
    return results


if __name__ == "__main__":
    main()
