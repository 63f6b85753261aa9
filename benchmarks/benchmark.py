#!/usr/bin/env python
"""Latency, memory and training-throughput benchmark of the Multi-Still teacher and students.

Builds the full-size architectures from their presets (random weights: latency does not depend on
weight values) and measures, side by side in one run, end-to-end inference from raw 16 kHz audio and
token ids, the encoder / fusion-head split, peak memory, real-time factor and each model's speed-up
over the teacher; optionally int8, ``torch.compile`` and ONNX Runtime variants and training
throughput. Every model (and variant) runs in its own subprocess so that peak memory is per model.

    python benchmarks/benchmark.py                        # full-size, CPU, all models (~10 min on 2 cores)
    python benchmarks/benchmark.py --int8 --onnx          # + deployment variants of the students
    python benchmarks/benchmark.py --device cuda          # GPU: fp32 and bf16 autocast
    python benchmarks/benchmark.py --quick                # tiny configs, seconds (smoke test)

Writes ``<output_dir>/<name>.json`` and ``<output_dir>/<name>.md`` and prints the markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from transformers import HfArgumentParser

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

PAPER_MODELS = ["teacher", "multimodal_student", "text_student", "audio_student", "light_student"]
#: The same presets around the Whisper-base encoder (bench_lib.WHISPER_MODELS), measured beside the paper's teacher.
WHISPER_MODELS = ["whisper_teacher", "whisper_multimodal_student", "whisper_audio_student", "whisper_light_student"]
ALL_MODELS = PAPER_MODELS + WHISPER_MODELS
VARIANTS = ["int8", "compile", "onnx"]

# Defaults of the full-size run, and of --quick (used for options the user did not set).
FULL_DEFAULTS: dict[str, Any] = {
    "batch_sizes": [1, 32],
    "audio_seconds": [5.0, 12.0],
    "text_tokens": 64,
    "repeats": 10,
    "warmup": 2,
    "time_budget": 8.0,
    "max_call_s": 60.0,
    "split_direct_max_s": 2.0,
    "train_batch_size": 8,
    "train_audio_seconds": 5.0,
}
QUICK_DEFAULTS: dict[str, Any] = {
    "batch_sizes": [1, 2],
    "audio_seconds": [1.0, 3.0],
    "text_tokens": 16,
    "repeats": 2,
    "warmup": 1,
    "time_budget": 2.0,
    "max_call_s": 0.0,
    "split_direct_max_s": 5.0,
    "train_batch_size": 2,
    "train_audio_seconds": 1.0,
}


def _available_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def _opt(help_text: str, **metadata: Any) -> dict[str, Any]:
    return {"help": help_text, **metadata}


@dataclass
class BenchmarkArguments:
    """Command-line options (``HfArgumentParser``); ``None`` = the full-size or ``--quick`` default in brackets."""

    models: list[str] = field(default_factory=lambda: list(PAPER_MODELS), metadata=_opt(
        "models to benchmark; whisper_* = the preset around the Whisper-base encoder (random weights, its log-mel "
        "front end timed too) [the paper's five]", choices=ALL_MODELS))
    batch_sizes: list[int] | None = field(default=None, metadata=_opt("batch sizes [1 32]"))
    audio_seconds: list[float] | None = field(default=None, metadata=_opt(
        "utterance lengths in seconds [5 12]; wav2vec2 models keep 512 frames = 10.24 s (25 Hz fbank: 20.48 s) of "
        "encoder output, the rest is truncated"))
    text_tokens: int | None = field(default=None, metadata=_opt("token ids per utterance [64]"))
    repeats: int | None = field(default=None, metadata=_opt("maximum timed repeats per measurement [10]"))
    warmup: int | None = field(default=None, metadata=_opt("maximum warm-up calls per measurement [2]"))
    time_budget: float | None = field(default=None, metadata=_opt(
        "seconds of timed calls per measurement [8]: slow configs get fewer repeats (at least 1)"))
    max_call_s: float | None = field(default=None, metadata=_opt(
        "skip a config whose single call is estimated (from the previous one) to exceed this many seconds, "
        "0 = never [60]"))
    split_direct_max_s: float | None = field(default=None, metadata=_opt(
        "time the audio encoder on its own only when end to end takes at most this long; otherwise derive it as "
        "end-to-end minus text encoder and fusion [2]"))
    threads: int = field(default_factory=_available_cpus, metadata=_opt("torch / onnxruntime intra-op threads"))
    device: str = field(default="auto", metadata=_opt("auto: cuda if available", choices=["auto", "cpu", "cuda"]))
    dtypes: list[str] | None = field(default=None, metadata=_opt("precisions [cpu: fp32; cuda: fp32 bf16]",
                                                                 choices=["fp32", "bf16"]))
    int8: bool = field(default=False, metadata=_opt("add dynamic int8 quantisation of Linear layers (CPU)"))
    compile: bool = field(default=False, metadata=_opt("add torch.compile (compile time reported apart)"))
    onnx: bool = field(default=False, metadata=_opt("add ONNX export + onnxruntime, with a prediction check"))
    variant_models: list[str] | None = field(default=None, metadata=_opt(
        "models that get the --int8/--compile/--onnx variants [all of --models; ONNX skips the teacher]",
        choices=ALL_MODELS))
    compile_models: list[str] | None = field(default=None, metadata=_opt(
        "models that get --compile [--variant_models]; compiling wav2vec2-large on a small CPU takes minutes",
        choices=ALL_MODELS))
    onnx_teacher: bool = field(default=False, metadata=_opt("also export the teacher to ONNX (slow, ~1.3 GB)"))
    variant_batch_sizes: list[int] = field(default_factory=lambda: [1], metadata=_opt("batch sizes of the variants"))
    train_models: list[str] = field(default_factory=lambda: ["teacher", "light_student"], metadata=_opt(
        "models whose training step is timed (none: skip)", choices=ALL_MODELS))
    train_batch_size: int | None = field(default=None, metadata=_opt("training batch [8]"))
    train_audio_seconds: float | None = field(default=None, metadata=_opt(
        "utterance length of the training batch [5]"))
    rounds: int = field(default=1, metadata=_opt(
        "run every job this many times, interleaved (all jobs, then all jobs again, ...): tables give the median "
        "over rounds, the min-max of the rounds' medians and per-round ratios to the teacher"))
    quick: bool = field(default=False, metadata=_opt("tiny configs and few repeats: a smoke test in seconds"))
    output_dir: str = field(default=str(HERE / "results"), metadata=_opt("where the JSON and markdown go"))
    name: str | None = field(default=None, metadata=_opt("file stem of the outputs [benchmark_<device>, + _quick]"))
    in_process: bool = field(default=False, metadata=_opt(
        "run all jobs in this process (faster start; peak memory then includes earlier models' leftovers)"))
    rerender: str | None = field(default=None, metadata=_opt(
        "measure nothing: recompute the ratios, merged rows and headline of a saved run's JSON (this path) with this "
        "version's rules and rewrite its JSON and markdown (the measurements are kept as they are)",
        metavar="JSON"))
    _job: str | None = field(default=None, metadata=_opt(argparse.SUPPRESS))


def build_parser() -> HfArgumentParser:
    """Command-line options."""
    parser = HfArgumentParser(
        BenchmarkArguments, description=__doc__.split("\n\n")[0],
        epilog="Defaults in brackets are for the full-size run; --quick changes the unset ones (see README).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser._option_string_actions["--train_models"].nargs = "*"  # `--train_models` alone: time no training
    return parser


def check_arguments(args: BenchmarkArguments) -> None:
    """Refuse bad options before any model is built or timed: a ``UsageError`` (one ``error:`` line, exit status 2;
    ``--threads 0`` was a traceback, ``--batch_sizes 0`` or ``--time_budget -1`` started benchmarking)."""
    from bench_args import check_file_stem, check_numbers

    from multistill.training.arguments import UsageError, check_output_dir

    check_numbers(args, positive=("batch_sizes", "audio_seconds", "text_tokens", "repeats", "time_budget", "threads",
                                  "variant_batch_sizes", "train_batch_size", "train_audio_seconds", "rounds"),
                  non_negative=("warmup", "max_call_s", "split_direct_max_s"))
    check_file_stem(args.name)
    if args.rerender is not None and not Path(args.rerender).is_file():
        raise UsageError(f"--rerender {args.rerender}: no such file.")
    check_output_dir(args.output_dir)


def resolve_args(args: BenchmarkArguments) -> BenchmarkArguments:
    """A copy of ``args`` with the unset options filled from the full-size or quick defaults and the device picked
    (the parsed options stay as the user gave them)."""
    import dataclasses

    import torch

    from multistill.training.arguments import UsageError

    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda, but torch.cuda.is_available() is False on this machine.")
    return dataclasses.replace(
        args, **{k: v for k, v in defaults.items() if getattr(args, k) is None}, device=device,
        dtypes=(["fp32", "bf16"] if device == "cuda" else ["fp32"]) if args.dtypes is None else args.dtypes,
        variant_models=list(args.models) if args.variant_models is None else args.variant_models,
        name=f"benchmark_{device}" + ("_quick" if args.quick else "") if args.name is None else args.name)


def make_jobs(args: BenchmarkArguments) -> list[dict[str, Any]]:
    """One job per model (base), per model and variant, and per training model."""
    common = {
        k: getattr(args, k)
        for k in (
            "quick", "device", "threads", "batch_sizes", "audio_seconds", "text_tokens", "repeats", "warmup",
            "time_budget", "max_call_s", "split_direct_max_s", "dtypes", "variant_batch_sizes",
            "train_batch_size", "train_audio_seconds",
        )
    }
    jobs = [{**common, "kind": "base", "model": m} for m in args.models]
    for variant in VARIANTS:
        if not getattr(args, variant):
            continue
        if variant == "int8" and args.device != "cpu":
            print("note: --int8 (dynamic quantisation) is CPU-only; skipped on", args.device, file=sys.stderr)
            continue
        for m in (args.compile_models or args.variant_models) if variant == "compile" else args.variant_models:
            if variant == "onnx" and m == "teacher" and not args.onnx_teacher:
                continue
            if variant in ("onnx", "compile") and m in WHISPER_MODELS:
                print(f"note: no {variant} variant of {m} (its log-mel features are computed outside the model)",
                      file=sys.stderr)
                continue
            jobs.append({**common, "kind": "variant", "model": m, "variant": variant})
    for m in args.train_models or []:
        jobs.append({**common, "kind": "train", "model": m})
    return jobs


def run_job(job: dict[str, Any], in_process: bool) -> dict[str, Any]:
    """Run one job in a fresh subprocess (or in-process) and return its result dict."""
    if in_process:
        from bench_jobs import JOBS

        return JOBS[job["kind"]](job)
    with tempfile.TemporaryDirectory(prefix="multistill_bench_") as tmp:
        spec_path = Path(tmp) / "job.json"
        job = {**job, "out": str(Path(tmp) / "result.json")}
        spec_path.write_text(json.dumps(job))
        env = dict(os.environ)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[var] = str(job["threads"])
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        env.setdefault("TOKENIZERS_PARALLELISM", "false")
        proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--_job", str(spec_path)], env=env)
        out = Path(job["out"])
        if proc.returncode != 0 or not out.exists():
            return {"error": f"job exited with status {proc.returncode}", "job": _job_label(job)}
        return json.loads(out.read_text())


def _job_label(job: dict[str, Any]) -> str:
    return f"{job['kind']}:{job['model']}" + (f":{job['variant']}" if job.get("variant") else "")


def job_main(spec_path: str) -> None:
    """Subprocess entry point: run the job described in ``spec_path`` and write its result."""
    import traceback

    from bench_jobs import JOBS

    spec = json.loads(Path(spec_path).read_text())
    try:
        result = JOBS[spec["kind"]](spec)
    except Exception as err:  # noqa: BLE001 - recorded in the results instead of aborting the run
        traceback.print_exc()
        result = {"error": f"{type(err).__name__}: {str(err)[:500]}", "job": _job_label(spec)}
    Path(spec["out"]).write_text(json.dumps(result))


def _key(r: dict[str, Any]) -> tuple[Any, ...]:
    return r["model"], r["variant"], r["batch_size"], r["audio_seconds"]


def add_ratios(latency: list[dict[str, Any]], dtypes: list[str]) -> None:
    """Per round, ``teacher median / model median`` at the same batch and length, like with like:

    * ``speedup_vs_teacher``: against the teacher of the **same** precision or variant (int8 student vs int8
      teacher, fp32 vs fp32); ``None`` when that teacher was not measured in the run;
    * ``speedup_vs_fp32_teacher``: against the teacher at the first precision (``dtypes[0]``, fp32 on CPU);
    * ``speedup_vs_own_teacher`` (Whisper models): against the Whisper teacher of the same precision.
    """
    from bench_lib import teacher_of

    teacher = {
        (r.get("round", 1), r["variant"], r["batch_size"], r["audio_seconds"]): r["e2e"]["median_ms"]
        for r in latency
        if r["model"] == "teacher" and "e2e" in r
    }
    own_teacher = {
        (r["model"], r.get("round", 1), r["variant"], r["batch_size"], r["audio_seconds"]): r["e2e"]["median_ms"]
        for r in latency
        if r["model"] != "teacher" and teacher_of(r["model"]) == r["model"] and "e2e" in r
    }
    for r in latency:
        if "e2e" not in r:
            continue
        where = (r.get("round", 1), r["batch_size"], r["audio_seconds"])
        same = teacher.get((where[0], r["variant"], *where[1:]))
        reference = teacher.get((where[0], dtypes[0], *where[1:]))
        r["speedup_vs_teacher"] = round(same / r["e2e"]["median_ms"], 3) if same else None
        r["speedup_vs_fp32_teacher"] = round(reference / r["e2e"]["median_ms"], 3) if reference else None
        if teacher_of(r["model"]) != "teacher":  # the Whisper models: also against the Whisper teacher
            own = own_teacher.get((teacher_of(r["model"]), where[0], r["variant"], *where[1:]))
            r["speedup_vs_own_teacher"] = round(own / r["e2e"]["median_ms"], 3) if own else None


def _range(values: list[float]) -> list[float] | None:
    return [min(values), max(values)] if values else None


def merge_rounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per model, variant, batch and length from the rows of every round.

    ``e2e.median_ms`` is the median of the rounds' medians and ``e2e.spread_ms`` their min-max (with one
    round: the min-max of its timed calls); ``n`` counts every timed call; ratios are the median of the
    per-round ratios with their min-max (``*_range``); the split is the median per part, memory the maximum
    peak, the variant check the worst round.
    """
    import statistics

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(_key(r), []).append(r)
    merged = []
    for group in groups.values():
        measured = [r for r in group if "e2e" in r]
        if not measured:
            merged.append({k: v for k, v in group[0].items() if k != "round"})
            continue
        first = measured[0]
        out = {k: v for k, v in first.items() if k not in ("round", "e2e", "split", "memory", "check")}
        medians = [r["e2e"]["median_ms"] for r in measured]
        samples = [x for r in measured for x in r["e2e"]["samples_ms"]]
        out["e2e"] = {
            "median_ms": round(statistics.median(medians), 3),
            "p90_ms": round(statistics.median(r["e2e"]["p90_ms"] for r in measured), 3),
            "min_ms": round(min(r["e2e"]["min_ms"] for r in measured), 3),
            "n": sum(r["e2e"]["n"] for r in measured),
            "rounds": len(measured),
            "round_medians_ms": medians,
            "spread_ms": _range(medians) if len(measured) > 1 else _range(samples),
            "first_call_reused": any(r["e2e"]["first_call_reused"] for r in measured),
        }
        batch, seconds = first["batch_size"], first["audio_seconds"]
        out["per_utterance_ms"] = round(out["e2e"]["median_ms"] / batch, 3)
        out["rtf"] = round(out["e2e"]["median_ms"] / 1000 / (batch * seconds), 5)
        for name in ("speedup_vs_teacher", "speedup_vs_fp32_teacher", "speedup_vs_own_teacher"):
            if name not in first:
                continue
            ratios = [r[name] for r in measured if r.get(name)]
            out[name] = round(statistics.median(ratios), 3) if ratios else None
            out[f"{name}_range"] = _range(ratios)
        if "split" in first:
            out["split"] = {
                k: (round(statistics.median(r["split"][k] for r in measured), 3) if isinstance(v, float) else v)
                for k, v in first["split"].items()
            }
        out["memory"] = max((r["memory"] for r in measured), key=lambda m: m["peak_mb"])
        if "check" in first:
            out["check"] = min((r["check"] for r in measured),
                               key=lambda c: (c["argmax_match"] / c["n"], -c["max_abs_logit_diff"]))
        merged.append(out)
    return merged


def merge_training(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One training row per model, precision and mode: median step time over rounds and its min-max."""
    import statistics

    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["variant"], r["mode"]), []).append(r)
    merged = []
    for group in groups.values():
        out = {k: v for k, v in group[0].items() if k not in ("round", "step")}
        medians = [r["step"]["median_ms"] for r in group]
        out["step"] = {"median_ms": round(statistics.median(medians), 3), "n": sum(r["step"]["n"] for r in group),
                       "rounds": len(group), "spread_ms": _range(medians) if len(group) > 1
                       else _range(group[0]["step"]["samples_ms"])}
        out["examples_per_s"] = round(out["batch_size"] / (out["step"]["median_ms"] / 1000), 3)
        out["memory"] = max((r["memory"] for r in group), key=lambda m: m["peak_mb"])
        merged.append(out)
    return merged


def headline(latency: list[dict[str, Any]], args: Any) -> dict[str, Any] | None:
    """Light student vs teacher at batch 1 and the first audio length, at the first precision; plus every
    variant of the light student against the teacher of the same variant and against the fp32 teacher."""
    sec = sorted(args.audio_seconds)[0]
    rows = {(r["model"], r["variant"]): r for r in latency
            if r["batch_size"] == 1 and r["audio_seconds"] == sec and "e2e" in r}
    base, teacher = rows.get(("light_student", args.dtypes[0])), rows.get(("teacher", args.dtypes[0]))
    if base is None or teacher is None:
        return None
    variants = []
    for (model, variant), r in rows.items():
        if model != "light_student" or variant == args.dtypes[0]:
            continue
        same = rows.get(("teacher", variant))
        variants.append({
            "variant": variant,
            "light_student_ms": r["e2e"]["median_ms"],
            "teacher_ms": same["e2e"]["median_ms"] if same else None,
            "speedup": r["speedup_vs_teacher"],
            "speedup_range": r["speedup_vs_teacher_range"],
            "speedup_vs_fp32_teacher": r["speedup_vs_fp32_teacher"],
            "speedup_vs_fp32_teacher_range": r["speedup_vs_fp32_teacher_range"],
        })
    whisper = []
    for name in ("whisper_teacher", "whisper_multimodal_student", "whisper_audio_student", "whisper_light_student"):
        r = rows.get((name, args.dtypes[0]))
        if r is not None:
            whisper.append({"model": name, "ms": r["e2e"]["median_ms"], "speedup_vs_teacher": r["speedup_vs_teacher"],
                            "speedup_vs_teacher_range": r["speedup_vs_teacher_range"],
                            "speedup_vs_own_teacher": r.get("speedup_vs_own_teacher"),
                            "speedup_vs_own_teacher_range": r.get("speedup_vs_own_teacher_range")})
    return {
        "whisper": whisper,
        "batch_size": 1,
        "audio_seconds": sec,
        "precision": args.dtypes[0],
        "rounds": base["e2e"]["rounds"],
        "teacher_ms": teacher["e2e"]["median_ms"],
        "light_student_ms": base["e2e"]["median_ms"],
        "speedup": base["speedup_vs_teacher"],
        "speedup_range": base["speedup_vs_teacher_range"],
        "target": 10.0,
        "meets_target": base["speedup_vs_teacher"] >= 10.0,
        "variants": variants,
    }


def summarize(results: dict[str, Any], latency: list[dict[str, Any]], training: list[dict[str, Any]]) -> None:
    """Ratios per round, rows merged over rounds and the headline, from the raw rows of every round."""
    settings = results["settings"]
    add_ratios(latency, settings["dtypes"])
    results["latency_rounds"] = latency
    results["latency"] = merge_rounds(latency)
    results["training_rounds"] = training
    results["training"] = merge_training(training)
    results["headline"] = headline(results["latency"], SimpleNamespace(**settings))


def rerender(path: str) -> dict[str, Any]:
    """``--rerender``: apply this version's like-with-like rules to a saved run and rewrite its reports."""
    from bench_report import render_markdown

    json_path = Path(path)
    results = json.loads(json_path.read_text())
    results["settings"].setdefault("rounds", 1)
    for kind in ("latency", "training"):
        if f"{kind}_rounds" not in results:  # a run saved before rounds existed: one round
            for row in results[kind]:
                row.setdefault("round", 1)
                for key in ("speedup_vs_teacher", "teacher_reference"):
                    row.pop(key, None)
                if kind == "training":
                    row["step"].setdefault("samples_ms", [row["step"]["median_ms"]])
    summarize(results, results.get("latency_rounds", results["latency"]),
              results.get("training_rounds", results["training"]))
    results["rerendered"] = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    md = render_markdown(results)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    json_path.with_suffix(".md").write_text(md)
    print(md)
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write the JSON and markdown reports."""
    from multistill.training.arguments import parse_command_line

    (args,) = parse_command_line(build_parser(), sys.argv[1:] if argv is None else list(argv))
    if args._job:
        job_main(args._job)
        return {}
    check_arguments(args)
    if args.rerender:
        return rerender(args.rerender)
    args = resolve_args(args)
    import torch
    from bench_lib import Contention, log, machine_info, provenance
    from bench_report import render_markdown

    torch.set_num_threads(args.threads)
    jobs = make_jobs(args)
    log(f"{len(jobs)} jobs on {args.device} with {args.threads} threads: " + ", ".join(_job_label(j) for j in jobs))
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "provenance": provenance(sys.argv[1:] if argv is None else list(argv), "benchmarks/benchmark.py"),
        "machine": machine_info(args.threads, torch.device(args.device)),
        "settings": {k: v for k, v in vars(args).items() if not k.startswith("_") and k != "output_dir"},
        "models": {},
        "variants": {},
        "latency": [],
        "training": [],
        "errors": [],
        "jobs": {},
    }
    results["machine"]["load_avg_start"] = [round(x, 2) for x in os.getloadavg()]
    run_contention = Contention()
    latency: list[dict[str, Any]] = []
    training: list[dict[str, Any]] = []
    for round_number in range(1, args.rounds + 1):
        for i, job in enumerate(jobs, 1):
            label = _job_label(job)
            key = label if args.rounds == 1 else f"{label}#{round_number}"
            log(f"round {round_number}/{args.rounds}, job {i}/{len(jobs)}: {label}")
            j0 = time.perf_counter()
            contention = Contention()
            res = run_job(job, args.in_process)
            results["jobs"][key] = {
                "seconds": round(time.perf_counter() - j0, 1),
                "others_cpu_pct": contention.others_pct(),
            }
            if "error" in res:
                log(f"job {key} failed: {res['error']}")
                results["errors"].append({**res, "job": key})
                continue
            results["models"].setdefault(res["model"], res["info"])
            for row in res["rows"]:
                row["round"] = round_number
            if job["kind"] == "train":
                training.extend(res["rows"])
            else:
                latency.extend(res["rows"])
            if job["kind"] == "variant":
                results["variants"].setdefault(f"{res['model']}:{res['variant']}", res["variant_info"])
    results["machine"]["others_cpu_pct"] = run_contention.others_pct()
    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    summarize(results, latency, training)
    results["total_s"] = round(time.perf_counter() - t0, 1)

    out_dir = Path(args.output_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = render_markdown(results)
    (out_dir / f"{args.name}.json").write_text(json.dumps(results, indent=1) + "\n")
    (out_dir / f"{args.name}.md").write_text(md)
    print(md)
    log(f"wrote {out_dir / args.name}.json and .md in {results['total_s']:.0f} s")
    return results


if __name__ == "__main__":
    from multistill.training.arguments import run_script

    run_script(main)
