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
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for p in (str(HERE), str(ROOT)):
    if p not in sys.path:
        sys.path.insert(0, p)

ALL_MODELS = ["teacher", "multimodal_student", "text_student", "audio_student", "light_student"]
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


def build_parser() -> argparse.ArgumentParser:
    """Command-line options."""
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Defaults in brackets are for the full-size run; --quick changes the unset ones (see README).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("--models", nargs="+", choices=ALL_MODELS, default=ALL_MODELS, help="models to benchmark")
    p.add_argument("--batch_sizes", nargs="+", type=int, help="batch sizes [1 32]")
    p.add_argument(
        "--audio_seconds", nargs="+", type=float,
        help="utterance lengths in seconds [5 12]; wav2vec2 models keep 512 frames = 10.24 s "
        "(25 Hz fbank: 20.48 s) of encoder output, the rest is truncated",
    )
    p.add_argument("--text_tokens", type=int, help="token ids per utterance [64]")
    p.add_argument("--repeats", type=int, help="maximum timed repeats per measurement [10]")
    p.add_argument("--warmup", type=int, help="maximum warm-up calls per measurement [2]")
    p.add_argument(
        "--time_budget", type=float,
        help="seconds of timed calls per measurement [8]: slow configs get fewer repeats (at least 1)",
    )
    p.add_argument(
        "--max_call_s", type=float,
        help="skip a config whose single call is estimated (from the previous one) to exceed this many "
        "seconds, 0 = never [60]",
    )
    p.add_argument(
        "--split_direct_max_s", type=float,
        help="time the audio encoder on its own only when end to end takes at most this long; "
        "otherwise derive it as end-to-end minus text encoder and fusion [2]",
    )
    p.add_argument("--threads", type=int, default=_available_cpus(), help="torch / onnxruntime intra-op threads")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda if available")
    p.add_argument("--dtypes", nargs="+", choices=["fp32", "bf16"], help="precisions [cpu: fp32; cuda: fp32 bf16]")
    p.add_argument("--int8", action="store_true", help="add dynamic int8 quantisation of Linear layers (CPU)")
    p.add_argument("--compile", action="store_true", help="add torch.compile (compile time reported apart)")
    p.add_argument("--onnx", action="store_true", help="add ONNX export + onnxruntime, with a prediction check")
    p.add_argument(
        "--variant_models", nargs="+", choices=ALL_MODELS,
        help="models that get the --int8/--compile/--onnx variants [all of --models; ONNX skips the teacher]",
    )
    p.add_argument(
        "--compile_models", nargs="+", choices=ALL_MODELS,
        help="models that get --compile [--variant_models]; compiling wav2vec2-large on a small CPU takes minutes",
    )
    p.add_argument("--onnx_teacher", action="store_true", help="also export the teacher to ONNX (slow, ~1.3 GB)")
    p.add_argument("--variant_batch_sizes", nargs="+", type=int, default=[1], help="batch sizes of the variants")
    p.add_argument(
        "--train_models", nargs="*", choices=ALL_MODELS, default=["teacher", "light_student"],
        help="models whose training step is timed (none: skip)",
    )
    p.add_argument("--train_batch_size", type=int, help="training batch [8]")
    p.add_argument("--train_audio_seconds", type=float, help="utterance length of the training batch [5]")
    p.add_argument("--quick", action="store_true", help="tiny configs and few repeats: a smoke test in seconds")
    p.add_argument("--output_dir", default=str(HERE / "results"), help="where the JSON and markdown go")
    p.add_argument("--name", help="file stem of the outputs [benchmark_<device>, + _quick]")
    p.add_argument(
        "--in_process", action="store_true",
        help="run all jobs in this process (faster start; peak memory then includes earlier models' leftovers)",
    )
    p.add_argument("--_job", help=argparse.SUPPRESS)
    return p


def resolve_args(args: argparse.Namespace) -> argparse.Namespace:
    """Fill unset options from the full-size or quick defaults and pick the device."""
    defaults = QUICK_DEFAULTS if args.quick else FULL_DEFAULTS
    for k, v in defaults.items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    import torch

    if args.device == "auto":
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda but torch.cuda.is_available() is False")
    if args.dtypes is None:
        args.dtypes = ["fp32", "bf16"] if args.device == "cuda" else ["fp32"]
    if args.variant_models is None:
        args.variant_models = list(args.models)
    if args.name is None:
        args.name = f"benchmark_{args.device}" + ("_quick" if args.quick else "")
    return args


def make_jobs(args: argparse.Namespace) -> list[dict[str, Any]]:
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


def add_ratios(latency: list[dict[str, Any]], dtypes: list[str]) -> None:
    """``speedup_vs_teacher`` = teacher median / model median for the same batch, length and precision.

    Variants (int8, compile, onnx) are compared with the fp32 (first precision) teacher.
    """
    teacher = {
        (r["variant"], r["batch_size"], r["audio_seconds"]): r["e2e"]["median_ms"]
        for r in latency
        if r["model"] == "teacher" and "e2e" in r
    }
    for r in latency:
        if "e2e" not in r:
            continue
        ref_variant = r["variant"] if r["variant"] in dtypes else dtypes[0]
        t = teacher.get((ref_variant, r["batch_size"], r["audio_seconds"]))
        r["speedup_vs_teacher"] = round(t / r["e2e"]["median_ms"], 3) if t else None
        r["teacher_reference"] = ref_variant if t else None


def headline(latency: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any] | None:
    """Light student vs teacher at batch 1 and the first audio length, plus its best variant."""
    sec = sorted(args.audio_seconds)[0]
    rows = [r for r in latency if r["batch_size"] == 1 and r["audio_seconds"] == sec and r.get("speedup_vs_teacher")]
    base = next((r for r in rows if r["model"] == "light_student" and r["variant"] == args.dtypes[0]), None)
    teacher = next((r for r in rows if r["model"] == "teacher" and r["variant"] == args.dtypes[0]), None)
    if base is None or teacher is None:
        return None
    best = max((r for r in rows if r["model"] == "light_student"), key=lambda r: r["speedup_vs_teacher"])
    return {
        "batch_size": 1,
        "audio_seconds": sec,
        "precision": args.dtypes[0],
        "teacher_ms": teacher["e2e"]["median_ms"],
        "light_student_ms": base["e2e"]["median_ms"],
        "speedup": base["speedup_vs_teacher"],
        "target": 10.0,
        "meets_target": base["speedup_vs_teacher"] >= 10.0,
        "best_variant": best["variant"],
        "best_variant_ms": best["e2e"]["median_ms"],
        "best_variant_speedup": best["speedup_vs_teacher"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark and write the JSON and markdown reports."""
    args = build_parser().parse_args(argv)
    if args._job:
        job_main(args._job)
        return {}
    args = resolve_args(args)
    import torch
    from bench_lib import Contention, log, machine_info
    from bench_report import render_markdown

    torch.set_num_threads(args.threads)
    jobs = make_jobs(args)
    log(f"{len(jobs)} jobs on {args.device} with {args.threads} threads: " + ", ".join(_job_label(j) for j in jobs))
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
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
    for i, job in enumerate(jobs, 1):
        label = _job_label(job)
        log(f"job {i}/{len(jobs)}: {label}")
        j0 = time.perf_counter()
        contention = Contention()
        res = run_job(job, args.in_process)
        results["jobs"][label] = {
            "seconds": round(time.perf_counter() - j0, 1),
            "others_cpu_pct": contention.others_pct(),
        }
        if "error" in res:
            log(f"job {label} failed: {res['error']}")
            results["errors"].append(res)
            continue
        results["models"].setdefault(res["model"], res["info"])
        if job["kind"] == "train":
            results["training"].extend(res["rows"])
        else:
            results["latency"].extend(res["rows"])
        if job["kind"] == "variant":
            results["variants"][f"{res['model']}:{res['variant']}"] = res["variant_info"]
    results["machine"]["others_cpu_pct"] = run_contention.others_pct()
    results["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    add_ratios(results["latency"], args.dtypes)
    results["headline"] = headline(results["latency"], args)
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
    main()
