"""The paper's experiment in one command, over several seeds: teacher, students with and without KD, baselines.

``python -m multistill.tools.experiment --output_dir outputs/experiment --seeds 1 2 3`` runs, for every seed,
``train.py`` (teacher) and ``distill.py`` (each student, with KD and with ``--alpha 0``) as subprocesses --
exactly what a user would type, optionally under ``--launcher "accelerate launch"`` -- into
``output_dir/seed_N/<run>``. Then, per seed, it fits the simple baselines (:mod:`multistill.tools.baselines`) on the
training and validation rows of the teacher's ``data_splits.json`` and scores them on its test rows, measures
every trained model's end-to-end latency per utterance, and writes ``results.md`` and ``results.json``:
every row as mean ± sample standard deviation over the seeds, the paired KD minus no-KD difference of every
student (same seed) and the teacher minus every baseline, the per-seed figures, and the provenance (command,
git commit, machine, date). Verdict lines state only what holds across seeds.

``--baselines_only`` skips training: the split is built exactly as ``train.py`` builds it (same arguments,
same code) and only the baselines are scored -- a quick check of a corpus and split.

This module plans and runs the jobs and reads as :func:`main`'s numbered steps; what the runs produced is read
back and measured by :mod:`.experiment_results`, summarised over seeds and rendered by :mod:`.experiment_report`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm
from transformers import HfArgumentParser

from ..training.arguments import UsageError, run_script
from .baselines import BASELINES
from .experiment_report import (
    aggregate,
    data_text,
    paired_comparisons,
    render_report,
    summarize_caching_gain,
    transcript_comparison,
)
from .experiment_results import (
    baseline_key,
    baseline_label,
    baseline_results,
    caching_gain,
    latency_rows,
    load_run_splits,
    model_results,
    read_json,
    splits_like_train,
    test_transcript_cer,
)

logger = logging.getLogger("multistill.tools.experiment")

REPO_ROOT = Path(__file__).resolve().parents[2]

STUDENT_LABELS = {
    "text_student": "(a) text-only student",
    "audio_student": "(b) audio-only student",
    "multimodal_student": "(c) multimodal student",
    "light_student": "(d) light student (encoders cut to --light_audio_layers / --light_text_layers)",
}


@dataclass(frozen=True)
class Run:
    """One row of the table: a model trained by one script invocation."""

    name: str
    label: str
    preset: str
    script: str
    alpha: float | None = None
    extra: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """One script invocation of one seed; ``after`` names the job that must finish first (its teacher)."""

    seed: int
    run: Run
    run_dir: Path
    command: tuple[str, ...]
    after: str | None = None

    @property
    def key(self) -> str:
        return f"seed_{self.seed}/{self.run.name}"


def planned_runs(students: list[str], alpha: float, no_kd_ablation: bool) -> list[Run]:
    """Teacher first, then each student with KD and (optionally) without."""
    runs = [Run("teacher", "Teacher (multimodal)", "teacher", "train.py")]
    for preset in students:
        if preset not in STUDENT_LABELS:
            raise ValueError(f"--students: unknown student {preset!r}; choose from {sorted(STUDENT_LABELS)}.")
        runs.append(Run(f"{preset}_kd", f"{STUDENT_LABELS[preset]}, KD", preset, "distill.py", alpha))
        if no_kd_ablation:
            runs.append(Run(f"{preset}_ce", f"{STUDENT_LABELS[preset]}, no KD", preset, "distill.py", 0.0))
    return runs


def caching_runs(epochs: float) -> list[Run]:
    """The teacher trained for the same number of epochs on cached features and with its encoders every step."""
    epochs_args = ("--num_train_epochs", f"{epochs:g}")
    return [Run("caching_cached", "teacher, cached encoder features", "teacher", "train.py",
                extra=("--cache_encoder_features", "true", *epochs_args)),
            Run("caching_uncached", "teacher, encoders every step", "teacher", "train.py",
                extra=("--cache_encoder_features", "false", *epochs_args))]


def _default_students() -> list[str]:
    return list(STUDENT_LABELS)


#: Baselines that read the audio encoder's features (they need ``--audio_encoder`` a folder).
ENCODER_BASELINES = ("audio_whisper", "late_fusion")


def _default_baselines() -> list[str]:
    return list(BASELINES)


@dataclass
class ExperimentArguments:
    """The experiment runner's own options; every other option goes to each ``train.py`` / ``distill.py`` call."""

    output_dir: str = field(default="outputs/experiment",
                            metadata={"help": "seed_N/<run> per seed and run, plus results.md and results.json."})
    corpus: str = field(default="synthetic", metadata={"help": "synthetic (embedded), kemdy19, kemdy20 or all."})
    data_dir: str | None = field(default=None,
                                 metadata={"help": "Folder holding KEMDy19/ and/or KEMDy20/ (ETRI layout)."})
    split: str = field(default="session", metadata={"help": "Split of train.py/distill.py (session, dialogue, random)."})
    backbones: str = field(default="tiny", metadata={
        "help": "tiny: small offline encoders (no download); pretrained: the paper's encoders.",
        "choices": ("tiny", "pretrained")})
    audio_encoder: str | None = field(default=None, metadata={
        "help": "The teacher's audio encoder ('tiny', a Hub id or a folder, e.g. the converted Whisper base); "
        "overrides --backbones. Students take their encoders from the teacher."})
    text_encoder: str | None = field(default=None, metadata={
        "help": "The teacher's text encoder ('tiny', a Hub id or a folder); overrides --backbones."})
    freeze_text_encoder: str | None = field(default=None, metadata={
        "help": "Whether the teacher's text encoder stays frozen (default: the preset's).",
        "choices": ("true", "false")})
    light_audio_layers: int | None = field(default=None, metadata={
        "help": "The light student's audio layers kept from the teacher (distill.py's; 0: a Whisper teacher's "
        "convolutions only). Default: distill.py's (2)."})
    light_text_layers: int | None = field(default=None, metadata={
        "help": "The light student's text layers kept from the teacher (distill.py's). Default: distill.py's (2)."})
    students: list[str] = field(default_factory=_default_students, metadata={
        "help": f"Students to distil, from {list(STUDENT_LABELS)}; 'none' for the teacher and baselines only."})
    no_kd_ablation: bool = field(default=True, metadata={
        "help": "Also train every student with --alpha 0 (no distillation), same seed (--no_no_kd_ablation: don't)."})
    alpha: float = field(default=0.5, metadata={"help": "KD weight of the distilled students, in [0, 1]."})
    temperature: float = field(default=2.0, metadata={"help": "KD temperature."})
    num_train_epochs: float = field(default=30, metadata={"help": "Epochs of every run."})
    learning_rate: float = field(default=3e-3, metadata={
        "help": "Learning rate of every run (3e-3 suits tiny backbones; the paper used 5e-5)."})
    batch_size: int = field(default=8, metadata={"help": "Per-device training batch size."})
    seeds: list[int] | None = field(default=None, metadata={
        "help": "Seeds: every run is repeated per seed; the table reports mean ± std over them."})
    seed: int | None = field(default=None, metadata={"help": "One seed (the same as --seeds N; default 42)."})
    baselines: list[str] = field(default_factory=_default_baselines, metadata={
        "help": f"Simple baselines scored on each seed's split, from {list(BASELINES)}; 'none' to skip them."})
    baseline_context_sizes: list[int] = field(default_factory=lambda: [0], metadata={
        "help": "Score each baseline with these numbers of previous utterances of the dialogue (their features, "
        "decayed by 0.8 per step, stacked beside the utterance's), e.g. 0 4."})
    baselines_only: bool = field(default=False, metadata={
        "help": "Train nothing: build each seed's split as train.py would and score the baselines."})
    launcher: str | None = field(default=None, metadata={
        "help": 'Command prefix instead of "python", e.g. "accelerate launch --num_processes 2".'})
    parallel: int = field(default=1, metadata={
        "help": "Runs trained at the same time (a seed's students wait for its teacher). With N > 1 each run gets "
        "OMP_NUM_THREADS = CPUs / N unless OMP_NUM_THREADS is set."})
    latency_utterances: int = field(default=20, metadata={
        "help": "Test utterances timed one by one for the end-to-end latency column (0: skip)."})
    caching_gain: bool = field(default=True, metadata={
        "help": "Per seed, also train the teacher for --caching_gain_epochs on cached encoder features and for as "
        "many epochs with its encoders every step (after all other runs, one at a time) to report the epoch-time "
        "gain of cached features (--no_caching_gain: don't)."})
    caching_gain_epochs: float = field(default=2, metadata={
        "help": "Epochs of each of the two caching-gain runs (equal, so epochs compare like with like)."})
    reuse: bool = field(default=False, metadata={
        "help": "Skip runs whose output folder already holds test_results.json."})

    def __post_init__(self) -> None:
        if self.seeds is not None and self.seed is not None:
            raise UsageError("give either --seeds or --seed, not both.")
        self.seeds = list(self.seeds) if self.seeds is not None else [42 if self.seed is None else self.seed]
        if len(set(self.seeds)) != len(self.seeds):
            raise UsageError(f"--seeds: every seed once, got {self.seeds}.")
        self.students = [] if self.students == ["none"] else list(self.students)
        self.baselines = [] if self.baselines == ["none"] else list(self.baselines)
        encoder_folder = self.audio_encoder is not None and Path(self.audio_encoder).expanduser().is_dir()
        if self.baselines == _default_baselines() and not encoder_folder:
            self.baselines = [b for b in self.baselines if b not in ENCODER_BASELINES]
        needs_encoder = [b for b in self.baselines if b in ENCODER_BASELINES]
        if needs_encoder and not encoder_folder:
            raise UsageError(f"--baselines {needs_encoder[0]}: it reads the audio encoder's features; give "
                             "--audio_encoder a model folder (e.g. the converted Whisper base).")
        if any(size < 0 for size in self.baseline_context_sizes) or len(set(self.baseline_context_sizes)) != len(
                self.baseline_context_sizes):
            raise UsageError(f"--baseline_context_sizes: distinct sizes >= 0, got {self.baseline_context_sizes}.")
        unknown = [b for b in self.baselines if b not in BASELINES]
        if unknown:
            raise UsageError(f"--baselines: unknown baseline {unknown[0]!r}; choose from {list(BASELINES)} or 'none'.")
        if not (math.isfinite(self.alpha) and 0.0 <= self.alpha <= 1.0):
            raise UsageError(f"--alpha must be in [0, 1], got {self.alpha}.")
        for name in ("temperature", "num_train_epochs", "learning_rate", "batch_size", "caching_gain_epochs",
                     "parallel"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise UsageError(f"--{name} must be positive, got {value}.")
        for name, least in (("light_audio_layers", 0), ("light_text_layers", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise UsageError(f"--{name} must be >= {least}, got {value}.")
        if self.latency_utterances < 0:
            raise UsageError(f"--latency_utterances must be 0 or more, got {self.latency_utterances}.")
        if self.baselines_only and not self.baselines:
            raise UsageError("--baselines_only with --baselines none: nothing to do.")
        try:
            planned_runs(self.students, self.alpha, self.no_kd_ablation)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self._check_data()
        self.output_dir = str(Path(self.output_dir).resolve())

    def _check_data(self) -> None:
        """The corpus and its folder, before any run starts (a wrong --data_dir failed in the first run)."""
        from ..training.data import CORPORA, data_dir_error

        if self.corpus not in CORPORA:
            raise UsageError(f"--corpus must be one of {', '.join(CORPORA)}, got {self.corpus!r}.")
        error = data_dir_error(self.corpus, self.data_dir)
        if error:
            raise UsageError(error)


def parse_args(argv: list[str] | None = None) -> tuple[ExperimentArguments, list[str]]:
    """The runner's options (checked) and the options passed through to every train.py / distill.py call."""
    parser = HfArgumentParser(ExperimentArguments, prog="python -m multistill.tools.experiment", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter,
                              epilog="Options the runner does not know go to every train.py / distill.py call "
                              "(e.g. --bf16, --sessions 1 2, --threads 1).")
    args, extra = parser.parse_args_into_dataclasses(argv, return_remaining_strings=True)
    return args, list(extra)


# --------------------------------------------------------------------------------------------
# Training: one subprocess per run and seed
# --------------------------------------------------------------------------------------------


def seed_dir(output_dir: str | Path, seed: int) -> Path:
    return Path(output_dir) / f"seed_{seed}"


def backbones_label(args: ExperimentArguments) -> str:
    """``tiny``/``pretrained``, or which encoder each modality got when --audio_encoder/--text_encoder are given."""
    if args.audio_encoder is None and args.text_encoder is None:
        return args.backbones
    audio, text = (Path(value).name if value not in (None, "tiny") else (value or args.backbones)
                   for value in (args.audio_encoder, args.text_encoder))
    return f"audio: {audio}, text: {text}"


def run_command(run: Run, args: ExperimentArguments, extra: list[str], seed: int, teacher_dir: Path) -> list[str]:
    """The train.py / distill.py command line of one run and seed."""
    script = REPO_ROOT / run.script
    if not script.exists():
        raise FileNotFoundError(f"{script} not found: run the experiment from a source checkout of multistill.")
    launcher = shlex.split(args.launcher) if args.launcher else [sys.executable]
    command = launcher + [str(script), "--preset", run.preset, "--output_dir", str(seed_dir(args.output_dir, seed) / run.name),
                          "--corpus", args.corpus, "--split", args.split, "--seed", str(seed),
                          "--num_train_epochs", f"{args.num_train_epochs:g}", "--learning_rate", f"{args.learning_rate:g}",
                          "--per_device_train_batch_size", str(args.batch_size), "--disable_tqdm", "true"]
    if args.data_dir:
        command += ["--data_dir", args.data_dir]
    if run.script == "train.py":
        command += ["--backbones", args.backbones]
        for name in ("audio_encoder", "text_encoder", "freeze_text_encoder"):
            if getattr(args, name) is not None:
                command += [f"--{name}", getattr(args, name)]
    else:
        command += ["--teacher_model", str(teacher_dir), "--alpha", f"{run.alpha:g}",
                    "--temperature", f"{args.temperature:g}"]
        if run.preset == "light_student":
            for name in ("light_audio_layers", "light_text_layers"):
                if getattr(args, name) is not None:
                    command += [f"--{name}", str(getattr(args, name))]
    if not torch.cuda.is_available() and "--use_cpu" not in extra and not args.launcher:
        command.append("--use_cpu")
    # The run's own options come last, so that they win over the shared ones (argparse keeps the last value).
    return command + extra + list(run.extra)


def plan_jobs(args: ExperimentArguments, extra: list[str]) -> tuple[list[Job], list[Job]]:
    """Every seed's runs (teacher, then its students), and the caching-gain pairs run last, one at a time."""
    runs = planned_runs(args.students, args.alpha, args.no_kd_ablation)
    jobs, gain_jobs = [], []
    for seed in args.seeds:
        teacher_dir = seed_dir(args.output_dir, seed) / "teacher"
        for run in runs:
            after = None if run.name == "teacher" else f"seed_{seed}/teacher"
            jobs.append(Job(seed, run, seed_dir(args.output_dir, seed) / run.name,
                            tuple(run_command(run, args, extra, seed, teacher_dir)), after))
        if args.caching_gain:
            for run in caching_runs(args.caching_gain_epochs):
                gain_jobs.append(Job(seed, run, seed_dir(args.output_dir, seed) / run.name,
                                     tuple(run_command(run, args, extra, seed, teacher_dir))))
    return jobs, gain_jobs


def log_path(job: Job) -> Path:
    """Where a run's output goes (kept after the run: ``output_dir/seed_N/<run>.log``)."""
    return job.run_dir.parent / f"{job.run.name}.log"


def job_status(job: Job, width: int = 60) -> str:
    """The last line a running job wrote to its log (its feature caching, epoch...), for the progress bar."""
    try:
        with open(log_path(job), "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 4096))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return f"{job.key}: starting"
    lines = [line.strip() for line in text.replace("\r", "\n").splitlines() if line.strip()]
    last = lines[-1] if lines else "starting"
    return f"{job.key}: {last if len(last) <= width else '...' + last[-width:]}"


class RunFailedError(RuntimeError):
    """A train.py / distill.py run exited with an error; the message ends with the last lines of its log."""


def _run_job(job: Job, env: dict[str, str], reuse: bool, label: str) -> float:
    if reuse and (job.run_dir / "test_results.json").exists():
        logger.info("%s %s: reusing %s", label, job.key, job.run_dir)
        return 0.0
    job.run_dir.parent.mkdir(parents=True, exist_ok=True)
    log_file = log_path(job)
    logger.info("%s %s: %s", label, job.key, shlex.join(job.command))
    start = time.perf_counter()
    with open(log_file, "w", encoding="utf-8") as log:
        completed = subprocess.run(job.command, stdout=log, stderr=subprocess.STDOUT, env=env, check=False)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        tail = "".join(log_file.read_text(encoding="utf-8").splitlines(keepends=True)[-30:])
        raise RunFailedError(f"{job.key} failed (exit {completed.returncode}); last lines of {log_file}:\n{tail}")
    logger.info("%s %s done in %.0f s", label, job.key, seconds)
    return seconds


def execute(jobs: list[Job], parallel: int, reuse: bool) -> dict[str, float]:
    """Run ``jobs``, up to ``parallel`` at once, each after the job it depends on; returns seconds per job.

    An overall progress bar counts the finished runs (with tqdm's ETA) and shows the last log line of each
    running one (feature caching, training); each run's full output stays in its log file."""
    env = dict(os.environ)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    keys = {job.key for job in jobs}
    missing = [job.key for job in jobs if job.after is not None and job.after not in keys]
    if missing:
        raise ValueError(f"Jobs {missing} depend on jobs that are not planned.")
    pending, running, done, seconds = list(jobs), {}, set(), {}
    failures: list[BaseException] = []
    logger.info("%d runs; each writes its output to %s/<run>.log (their own progress bars are off)", len(jobs),
                jobs[0].run_dir.parent.parent / "seed_N" if jobs else "")
    bar = tqdm(total=len(jobs), desc="experiment runs", unit="run", dynamic_ncols=True)
    with ThreadPoolExecutor(max_workers=parallel) as pool, logging_redirect_tqdm(), bar:
        while (pending and not failures) or running:
            ready = [job for job in pending if job.after is None or job.after in done]
            while ready and len(running) < parallel and not failures:
                job = ready.pop(0)
                pending.remove(job)
                label = f"[{len(done) + len(running) + 1}/{len(jobs)}]"
                running[pool.submit(_run_job, job, env, reuse, label)] = job
            finished, _ = wait(running, timeout=2.0, return_when=FIRST_COMPLETED)
            for future in finished:
                job = running.pop(future)
                bar.update(1)
                if future.exception() is not None:
                    failures.append(future.exception())
                    continue
                seconds[job.key] = future.result()
                done.add(job.key)
            bar.set_postfix_str(" | ".join(job_status(job) for job in running.values()), refresh=True)
    if failures:
        raise failures[0]
    return seconds


# --------------------------------------------------------------------------------------------
# Provenance
# --------------------------------------------------------------------------------------------


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO_ROOT), *args], capture_output=True, text=True, timeout=30,
                             check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def cpu_model() -> str:
    """CPU model from /proc/cpuinfo (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance(argv: Sequence[str]) -> dict[str, Any]:
    """What made this report: the command, the git commit (and whether the tree was dirty), the machine, the date."""
    status = _git("status", "--porcelain")
    try:
        available = len(os.sched_getaffinity(0))
    except AttributeError:
        available = os.cpu_count()
    machine = {"cpu": cpu_model(), "logical_cpus": os.cpu_count(), "cpus_available": available,
               "torch": torch.__version__, "python": platform.python_version(), "platform": platform.platform(),
               "omp_num_threads": os.environ.get("OMP_NUM_THREADS"), "load_average_start": list(os.getloadavg())}
    if torch.cuda.is_available():
        machine["gpu"] = torch.cuda.get_device_name(0)
    return {
        "command": "python -m multistill.tools.experiment " + shlex.join(argv),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "git_changes": None if status is None else len(status.splitlines()),
        "machine": machine,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------------------------
# main: its steps
# --------------------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


@dataclass
class Collected:
    """What step 3 of :func:`main` gathers per seed: every row's results, the split, the baselines' fitting rows
    and (of the first seed whose runs have several transcript columns) the test transcripts' error rates."""

    per_seed: dict[int, dict[str, dict[str, Any]]] = field(default_factory=dict)
    split_reports: dict[int, dict[str, Any]] = field(default_factory=dict)
    fit_rows: dict[int, int] = field(default_factory=dict)
    text_columns: dict[str, Any] | None = None
    test_cer: dict[str, float] = field(default_factory=dict)  # of the first seed's test rows (the same for every seed)


def seed_splits(args: ExperimentArguments, extra: list[str], seed: int):
    """The seed's split and its data report: the teacher run's, or (``--baselines_only``) built as train.py would."""
    folder = seed_dir(args.output_dir, seed)
    if args.baselines_only:
        launcher_length = len(shlex.split(args.launcher)) if args.launcher else 1
        teacher = Run("teacher", "", "teacher", "train.py")
        teacher_command = run_command(teacher, args, extra, seed, folder / teacher.name)
        return splits_like_train(teacher_command, launcher_length, folder / "baselines")
    return load_run_splits(folder / "teacher"), read_json(folder / "teacher" / "metrics.json")["data"]


def collect_seeds(args: ExperimentArguments, extra: list[str], runs: list[Run]) -> Collected:
    """Per seed: the models' test metrics (and latency), the baselines scored on the same split."""
    collected = Collected()
    feature_cache: dict[str, np.ndarray] = {}
    for seed in args.seeds:
        splits, report = seed_splits(args, extra, seed)
        if report.get("text_columns") and collected.text_columns is None:
            collected.text_columns = report["text_columns"]
            collected.test_cer = test_transcript_cer(splits, collected.text_columns)
        test_ids = list(splits["test"]["id"])
        collected.split_reports[seed] = {
            "test_ids": test_ids, "test_sessions": report.get("test", {}).get("sessions"),
            "train_examples": len(splits["train"]), "validation_examples": len(splits["validation"])}
        rows_for_latency = latency_rows(splits["test"], args.latency_utterances) \
            if args.latency_utterances and runs else []
        results = model_results(runs, seed_dir(args.output_dir, seed), test_ids, rows_for_latency)
        if args.baselines:
            encoder = str(Path(args.audio_encoder).expanduser()) if args.audio_encoder else None
            baselines = baseline_results(splits, args.baselines, seed, feature_cache, args.baseline_context_sizes,
                                         encoder)
            results.update(baselines)
            if baselines:
                collected.fit_rows[seed] = list(baselines.values())[-1]["fit_rows"]
        collected.per_seed[seed] = results
    return collected


def summarize(args: ExperimentArguments, runs: list[Run], collected: Collected, caching: bool) -> dict[str, Any]:
    """The rows summarised over seeds, the paired differences, the transcript comparison, the caching gain."""
    row_specs = [{"name": r.name, "label": r.label, "kind": "model", "preset": r.preset, "alpha": r.alpha} for r in runs]
    row_specs += [{"name": baseline_key(n, k), "label": baseline_label(n, k), "kind": "baseline",
                   "description": BASELINES[n].description} for n in args.baselines for k in args.baseline_context_sizes]
    pairs = [(f"{p}_kd", f"{p}_ce", STUDENT_LABELS[p], "KD", "no KD") for p in args.students
             if args.no_kd_ablation and not args.baselines_only]
    if not args.baselines_only:
        pairs += [("teacher", baseline_key(n, k), f"Teacher vs {baseline_label(n, k).removeprefix('Baseline: ')}",
                   "teacher", "baseline") for n in args.baselines for k in args.baseline_context_sizes]
    per_seed, text_columns = collected.per_seed, collected.text_columns
    rows = aggregate(row_specs, per_seed)
    comparisons = paired_comparisons(pairs, per_seed)
    transcripts = {**transcript_comparison(row_specs, per_seed, text_columns), "test_cer": collected.test_cer} \
        if text_columns else None
    gain = summarize_caching_gain({seed: caching_gain(seed_dir(args.output_dir, seed)) for seed in args.seeds}) \
        if caching else None
    return {"rows": rows, "comparisons": comparisons, "transcripts": transcripts, "caching_gain": gain}


def build_report(args: ExperimentArguments, extra: list[str], collected: Collected, summary: dict[str, Any], *,
                 origin: dict[str, Any], duration_s: float, cpu_seconds: float,
                 run_seconds: dict[str, float]) -> dict[str, Any]:
    """``results.json``: provenance, wall clock and CPU time, the settings, the summaries, per seed results and
    splits, the caching gain and the seconds of every run."""
    return {
        "provenance": origin,
        "duration_s": duration_s,
        "cpu_seconds": cpu_seconds,
        "settings": {"corpus": args.corpus, "split": args.split, "backbones": backbones_label(args), "seeds": args.seeds,
                     "students": args.students, "no_kd_ablation": args.no_kd_ablation, "alpha": args.alpha,
                     "temperature": args.temperature, "num_train_epochs": args.num_train_epochs,
                     "learning_rate": args.learning_rate, "batch_size": args.batch_size, "passed_through": extra,
                     "baselines": args.baselines, "baselines_fit_on": ["train", "validation"],
                     "baseline_context_sizes": args.baseline_context_sizes,
                     "latency_utterances": args.latency_utterances, "parallel": args.parallel},
        "baselines_only": args.baselines_only,
        "data_text": data_text(collected.split_reports, collected.fit_rows if args.baselines else None),
        "baseline_text": "Baselines: " + "; ".join(f"{BASELINES[n].label.removeprefix('Baseline: ')} = "
                                                   f"{BASELINES[n].description}" for n in args.baselines)
        + ". They are deterministic: they vary across seeds only where the rows they are fitted on do."
        if args.baselines else "",
        "rows": summary["rows"],
        "comparisons": summary["comparisons"],
        "transcripts": summary["transcripts"],
        "per_seed": {str(seed): results for seed, results in collected.per_seed.items()},
        "splits": {str(seed): {k: v for k, v in r.items() if k != "test_ids"} | {"test_examples": len(r["test_ids"])}
                   for seed, r in collected.split_reports.items()},
        "caching_gain": summary["caching_gain"],
        "run_seconds": run_seconds,
    }


def write_report(report: dict[str, Any], output_dir: Path) -> None:
    """``results.md`` (also printed) and ``results.json``."""
    from ..training.trainer import write_json

    table = render_report(report)
    (output_dir / "results.md").write_text(table, encoding="utf-8")
    write_json(report, output_dir / "results.json")
    print(table)
    logger.info("Wrote %s and results.json", output_dir / "results.md")


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """``python -m multistill.tools.experiment``: plan, train, collect each seed's results, summarise, report."""
    logging.basicConfig(format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
                        level=logging.INFO)
    # 1. Arguments, the plan and its provenance (before anything runs)
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = parse_args(argv)
    started, cpu_start = time.perf_counter(), _cpu_seconds()
    origin = provenance(argv)
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    runs = [] if args.baselines_only else planned_runs(args.students, args.alpha, args.no_kd_ablation)
    jobs, gain_jobs = ([], []) if args.baselines_only else plan_jobs(args, extra)
    logger.info("Plan: seeds %s; runs %s; baselines %s", args.seeds, ", ".join(r.name for r in runs) or "none",
                ", ".join(args.baselines) or "none")

    # 2. Train: per seed the teacher, then its students (up to --parallel at once); then the caching-gain pairs
    run_seconds = execute(jobs, args.parallel, args.reuse) if jobs else {}
    if gain_jobs:
        run_seconds.update(execute(gain_jobs, 1, args.reuse))

    # 3. Per seed: collect the models' test metrics, score the baselines on the same split, time the models
    collected = collect_seeds(args, extra, runs)

    # 4. Summaries over seeds: rows, paired differences, transcripts, caching gain
    summary = summarize(args, runs, collected, caching=bool(gain_jobs))

    # 5. The report
    origin["machine"]["load_average_end"] = list(os.getloadavg())
    report = build_report(args, extra, collected, summary, origin=origin,
                          duration_s=time.perf_counter() - started, cpu_seconds=_cpu_seconds() - cpu_start,
                          run_seconds=run_seconds)
    write_report(report, output_dir)
    return report


if __name__ == "__main__":
    try:
        run_script(main)
    except RunFailedError as error:  # the run's own complaint is in the log lines it quotes: no traceback
        print(f"experiment.py: error: {error}", file=sys.stderr)
        raise SystemExit(1) from None
