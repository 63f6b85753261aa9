"""The paper's experiment in one command, over several seeds: teacher, students with and without KD, baselines.

``python -m multistill.experiment --output_dir outputs/experiment --seeds 1 2 3`` runs, for every seed,
``train.py`` (teacher) and ``distill.py`` (each student, with KD and with ``--alpha 0``) as subprocesses --
exactly what a user would type, optionally under ``--launcher "accelerate launch"`` -- into
``output_dir/seed_N/<run>``. Then, per seed, it fits the simple baselines (:mod:`multistill.baselines`) on the
training and validation rows of the teacher's ``data_splits.json`` and scores them on its test rows, measures
every trained model's end-to-end latency per utterance, and writes ``results.md`` and ``results.json``:
every row as mean ± sample standard deviation over the seeds, the paired KD minus no-KD difference of every
student (same seed) and the teacher minus every baseline, the per-seed figures, and the provenance (command,
git commit, machine, date). Verdict lines state only what holds across seeds.

``--baselines_only`` skips training: the split is built exactly as ``train.py`` builds it (same arguments,
same code) and only the baselines are scored -- a quick check of a corpus and split.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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

from .arguments import UsageError, run_script
from .baselines import BASELINES

logger = logging.getLogger("multistill.experiment")

REPO_ROOT = Path(__file__).resolve().parents[1]

#: (key in the metric module's output, column of the table)
METRICS = (("accuracy", "accuracy (WA)"), ("weighted_precision", "precision"), ("weighted_f1", "F1"),
           ("unweighted_accuracy", "UA"), ("macro_f1", "macro-F1"))
#: Metrics of the transcript-column comparison (``--test_text_columns``).
TRANSCRIPT_METRICS = (("macro_f1", "macro-F1"), ("unweighted_accuracy", "UA"))
#: Metrics of the paired comparisons.
DIFF_METRICS = (("accuracy", "Δ accuracy"), ("unweighted_accuracy", "Δ UA"), ("macro_f1", "Δ macro-F1"))
STUDENT_LABELS = {
    "text_student": "(a) text-only student",
    "audio_student": "(b) audio-only student",
    "multimodal_student": "(c) multimodal student",
    "light_student": "(d) light student (2+2 encoder layers, fbank)",
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


def baseline_key(name: str, context_size: int) -> str:
    """Row name of a baseline at a context size (``baseline_text_tfidf``, ``baseline_text_tfidf_context4``)."""
    return f"baseline_{name}" + (f"_context{context_size}" if context_size else "")


def baseline_label(name: str, context_size: int) -> str:
    return BASELINES[name].label + (f", {context_size} previous utterances" if context_size else "")


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
        if self.latency_utterances < 0:
            raise UsageError(f"--latency_utterances must be 0 or more, got {self.latency_utterances}.")
        if self.baselines_only and not self.baselines:
            raise UsageError("--baselines_only with --baselines none: nothing to do.")
        try:
            planned_runs(self.students, self.alpha, self.no_kd_ablation)
        except ValueError as err:
            raise UsageError(str(err)) from None
        self.output_dir = str(Path(self.output_dir).resolve())


def parse_args(argv: list[str] | None = None) -> tuple[ExperimentArguments, list[str]]:
    """The runner's options (checked) and the options passed through to every train.py / distill.py call."""
    parser = HfArgumentParser(ExperimentArguments, prog="python -m multistill.experiment", description=__doc__,
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
        raise RuntimeError(f"{job.key} failed (exit {completed.returncode}); last lines of {log_file}:\n{tail}")
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
# Data of a run: the corpus as the run loaded it, and its split by id
# --------------------------------------------------------------------------------------------


def _read_json(path: Path) -> Any:
    if not path.exists():
        raise FileNotFoundError(f"{path} not found.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_run_corpus(run_dir: Path):
    """The corpus a run trained on, loaded the way it loaded it (``run_info.json``: corpus, data_dir, ...,
    and the speech recognizer of its ``asr_text`` column, whose transcripts come from the cache)."""
    from .arguments import DataArguments
    from .workflow import load_corpus

    info = _read_json(run_dir / "run_info.json")
    sessions, utterances = info.get("synthetic_size") or (4, 4)
    return load_corpus(DataArguments(
        corpus=info["corpus"], data_dir=info.get("data_dir"), sessions=info.get("sessions"),
        data_cache_dir=info.get("data_cache_dir"), synthetic_sessions=sessions, synthetic_utterances=utterances,
        asr_model=info.get("asr_model"), asr_engine=info.get("asr_engine"),
    ))


def select_ids(dataset, ids: Sequence[str], where: str):
    """The rows of ``dataset`` with these ids, in this order; an id missing from the corpus is an error."""
    index = {key: i for i, key in enumerate(dataset["id"])}
    missing = [key for key in ids if key not in index]
    if missing:
        raise ValueError(f"{where}: {len(missing)} ids are not in the corpus loaded from run_info.json "
                         f"(first: {missing[:3]}); was the corpus changed after the run?")
    return dataset.select([index[key] for key in ids])


def load_run_splits(run_dir: Path):
    """``DatasetDict`` of the rows in the run's ``data_splits.json`` (train after balancing, validation, test),
    its transcript column in ``text``, plus a ``test_on_<column>`` split per ``--test_text_columns`` entry."""
    from datasets import DatasetDict

    from .workflow import select_text_columns

    path = run_dir / "data_splits.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the run was made by a train.py/distill.py that does not write "
                                "data_splits.json; rerun it (without --reuse) with this checkout.")
    ids = _read_json(path)
    for name in ("train", "validation", "test"):
        if name not in ids:
            raise ValueError(f"{path}: no {name!r} list of ids.")
    info = _read_json(run_dir / "run_info.json")
    dataset = load_run_corpus(run_dir)
    rows = DatasetDict({name: select_ids(dataset, ids[name], f"{path} [{name}]")
                        for name in ("train", "validation", "test")})
    return select_text_columns(rows, info.get("text_column", "text"), info.get("test_text_columns"))


def splits_like_train(command: Sequence[str], launcher_length: int, output_dir: Path):
    """``--baselines_only``: the split ``train.py`` would make for this command line, by train.py's own code."""
    from transformers import HfArgumentParser

    from .arguments import DataArguments, ModelArguments, MultiStillTrainingArguments
    from .splits import split_ids
    from .training import write_json
    from .workflow import DATA_SPLITS_FILE, data_info, prepare_splits

    script_args = list(command[launcher_length + 1:])
    parser = HfArgumentParser((ModelArguments, DataArguments, MultiStillTrainingArguments))
    _, data_args, training_args = parser.parse_args_into_dataclasses(script_args)
    splits, report = prepare_splits(data_args, training_args)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json(split_ids(splits), output_dir / DATA_SPLITS_FILE)
    (output_dir / "run_info.json").write_text(json.dumps(data_info(data_args, splits), indent=2) + "\n", encoding="utf-8")
    return splits, report


# --------------------------------------------------------------------------------------------
# Measurements: baselines, latency, caching gain
# --------------------------------------------------------------------------------------------


def score_baselines(splits, names: Sequence[str], seed: int, feature_cache: dict[Any, np.ndarray],
                    context_sizes: Sequence[int] = (0,), audio_encoder: str | None = None,
                    ) -> dict[str, dict[str, Any]]:
    """Every baseline (at each context size) fitted on train + validation rows and scored on test rows, by
    :func:`baseline_key`; baselines that read text are also scored on each ``test_on_<column>`` split
    (``test_by_text_column``)."""
    from datasets import concatenate_datasets

    from .baselines import BASELINES, fit_baseline, score_baseline
    from .workflow import extra_test_splits

    fit_rows = concatenate_datasets([splits["train"], splits["validation"]])
    results = {}
    for name in names:
        for size in context_sizes:
            start = time.perf_counter()
            fitted = fit_baseline(name, fit_rows, seed=seed, feature_cache=feature_cache, context_size=size,
                                  audio_encoder=audio_encoder)
            result = score_baseline(fitted, splits["test"])
            logger.info("seed %d, baseline %s, context %d: macro-F1 %.4f (fit on %d rows, %.1f s)", seed, name,
                        size, result["metrics"]["macro_f1"], result["fit_rows"], time.perf_counter() - start)
            if BASELINES[name].modality == "text":
                result["test_by_text_column"] = {column: score_baseline(fitted, splits[split])["metrics"]
                                                 for column, split in extra_test_splits(splits).items()}
            results[baseline_key(name, size)] = result
    return results


def measure_latency(model_dir: Path, rows: list[dict[str, Any]]) -> dict[str, float]:
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


def latency_rows(test_rows, count: int) -> list[dict[str, Any]]:
    """The first ``count`` test utterances, decoded (audio + transcript)."""
    rows = []
    for row in test_rows.select(range(min(count, len(test_rows)))):
        rows.append({"audio": {"array": np.asarray(row["audio"]["array"], dtype=np.float32),
                               "sampling_rate": int(row["audio"]["sampling_rate"])}, "text": row["text"]})
    return rows


def caching_gain(seed_folder: Path) -> dict[str, float]:
    """Seconds per training epoch of the two caching-gain runs (equal epochs): cached vs encoders every step."""
    def result(name: str) -> dict[str, float]:
        return _read_json(seed_folder / name / "train_results.json")

    cached, uncached = result("caching_cached"), result("caching_uncached")
    if cached["epoch"] != uncached["epoch"]:
        raise ValueError(f"{seed_folder}: caching-gain runs trained {cached['epoch']} vs {uncached['epoch']} epochs.")
    per_epoch = {k: r["train_runtime"] / r["epoch"] for k, r in (("cached", cached), ("uncached", uncached))}
    info = _read_json(seed_folder / "teacher" / "run_info.json")
    return {"epochs": cached["epoch"], "cached_epoch_seconds": per_epoch["cached"],
            "uncached_epoch_seconds": per_epoch["uncached"], "speedup": per_epoch["uncached"] / per_epoch["cached"],
            "teacher_caching_seconds": info.get("feature_caching_seconds")}


# --------------------------------------------------------------------------------------------
# Statistics over seeds
# --------------------------------------------------------------------------------------------


def describe(values: Sequence[float]) -> dict[str, Any]:
    """Mean, sample standard deviation (n - 1; None for one value), n, min, max and the values."""
    array = np.asarray(values, dtype=np.float64)
    return {"mean": float(array.mean()), "std": float(array.std(ddof=1)) if len(array) > 1 else None,
            "n": int(len(array)), "min": float(array.min()), "max": float(array.max()),
            "values": [float(v) for v in array]}


def paired_difference(first: dict[int, float], second: dict[int, float]) -> dict[str, Any]:
    """``first - second`` per seed (seeds both have), summarised; plus how often ``first`` is ahead and
    whether mean ± std covers zero (``None`` with one seed: no spread)."""
    seeds = sorted(set(first) & set(second))
    if not seeds:
        raise ValueError("paired_difference: no seed in common.")
    stats = describe([first[s] - second[s] for s in seeds])
    stats["seeds"] = seeds
    stats["ahead"] = int(sum(first[s] > second[s] for s in seeds))
    stats["behind"] = int(sum(first[s] < second[s] for s in seeds))
    std = stats["std"]
    stats["covers_zero"] = None if std is None else bool(stats["mean"] - std <= 0.0 <= stats["mean"] + std)
    return stats


def verdict(name: str, first: str, second: str, stats: dict[str, Any], metric: str = "macro-F1") -> str:
    """One line that states only what holds across the seeds."""
    d = stats
    line = f"{name}: {first} − {second} {metric} {100 * d['mean']:+.1f}"
    if d["std"] is None:
        return line + " points, one seed: no spread, so no conclusion."
    line += (f" ± {100 * d['std']:.1f} points over {d['n']} seeds ({first} ahead in {d['ahead']}, "
             f"behind in {d['behind']})")
    if d["covers_zero"]:
        return line + "; the spread covers zero: no difference shown."
    return line + f"; the spread excludes zero: {first} {'ahead' if d['mean'] > 0 else 'behind'} in mean ± std."


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
        "command": "python -m multistill.experiment " + shlex.join(argv),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": None if status is None else bool(status),
        "git_changes": None if status is None else len(status.splitlines()),
        "machine": machine,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }


def machine_text(machine: dict[str, Any]) -> str:
    text = f"{machine['cpu']}, {machine['cpus_available']} of {machine['logical_cpus']} CPUs"
    if machine.get("gpu"):
        text += f", GPU {machine['gpu']}"
    text += f", torch {machine['torch']}, Python {machine['python']}"
    if machine.get("omp_num_threads"):
        text += f", OMP_NUM_THREADS={machine['omp_num_threads']}"
    return text


# --------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------


def _pm(stats: dict[str, Any] | None, scale: float = 100.0, digits: int = 2, signed: bool = False) -> str:
    if stats is None:
        return "–"
    text = f"{scale * stats['mean']:{'+' if signed else ''}.{digits}f}"
    return text if stats["std"] is None else f"{text} ± {scale * stats['std']:.{digits}f}"


def aggregate(rows: list[dict[str, Any]], per_seed: dict[int, dict[str, dict[str, Any]]]) -> list[dict[str, Any]]:
    """Each row with its metrics (and latency, parameters) summarised over the seeds that have it."""
    out = []
    for row in rows:
        results = [per_seed[seed][row["name"]] for seed in sorted(per_seed) if row["name"] in per_seed[seed]]
        summary = {key: describe([r["metrics"][key] for r in results]) for key, _ in METRICS}
        latency = None
        if all(r.get("latency") for r in results) and results:
            latency = {key: describe([r["latency"][key] for r in results])
                       for key in ("latency_ms_median", "real_time_factor")}
        parameters = results[0].get("parameters") if results else None
        out.append({**row, "seeds": [s for s in sorted(per_seed) if row["name"] in per_seed[s]],
                    "summary": summary, "latency": latency, "parameters": parameters})
    return out


def test_transcript_cer(splits, text_columns: dict[str, Any]) -> dict[str, float]:
    """Character error rate of each other transcript column of the test rows against the corpus's (``text``)."""
    from .asr import character_error_rate
    from .workflow import extra_test_splits

    tested = {text_columns["train"]: splits["test"],
              **{column: splits[name] for column, name in extra_test_splits(splits).items()}}
    if "text" not in tested:
        return {}
    return {column: character_error_rate(tested["text"]["text"], split["text"])["cer"]
            for column, split in tested.items() if column != "text"}


def transcript_comparison(row_specs: list[dict[str, Any]], per_seed: dict[int, dict[str, dict[str, Any]]],
                          text_columns: dict[str, Any]) -> dict[str, Any]:
    """Each model and text baseline tested with the training transcripts and with every other
    ``--test_text_columns`` column (e.g. ASR): mean ± std over seeds and the paired difference."""
    trained_on = text_columns["train"]
    others = [column for column in text_columns["test"] if column != trained_on]
    rows = []
    for spec in row_specs:
        seeds = [s for s in sorted(per_seed) if "test_by_text_column" in per_seed[s].get(spec["name"], {})]
        if not seeds:
            continue
        tested = {trained_on: {s: per_seed[s][spec["name"]]["metrics"] for s in seeds}}
        tested |= {column: {s: per_seed[s][spec["name"]]["test_by_text_column"][column] for s in seeds}
                   for column in others}
        rows.append({
            "name": spec["name"], "label": spec["label"], "seeds": seeds,
            "columns": {column: {key: describe([values[s][key] for s in seeds]) for key, _ in TRANSCRIPT_METRICS}
                        for column, values in tested.items()},
            "differences": {column: paired_difference({s: tested[column][s]["macro_f1"] for s in seeds},
                                                      {s: tested[trained_on][s]["macro_f1"] for s in seeds})
                            for column in others},
        })
    return {"trained_on": trained_on, "tested_on": [trained_on, *others], "rows": rows}


def render_transcripts(transcripts: dict[str, Any]) -> list[str]:
    """The ``results.md`` section of :func:`transcript_comparison`."""
    trained_on, others = transcripts["trained_on"], transcripts["tested_on"][1:]
    header = ["model"] + [f"{title} ({column})" for column in transcripts["tested_on"] for _, title in TRANSCRIPT_METRICS]
    header += [f"Δ macro-F1 ({column} − {trained_on})" for column in others]
    header += [f"seeds where {column} is ahead" for column in others]
    lines = ["", f"## Test transcripts: trained on `{trained_on}`, tested with each transcript column", "",
             "The same test utterances, the same trained models, the transcript column swapped; Δ is paired by seed "
             "(points)." + "".join(f" Character error rate of `{column}` against `text` on these test utterances: "
                                   f"{100 * cer:.1f} %." for column, cer in transcripts.get("test_cer", {}).items()),
             "", "| " + " | ".join(header) + " |", "|---" * len(header) + "|"]
    for row in transcripts["rows"]:
        cells = [_pm(row["columns"][column][key]) for column in transcripts["tested_on"] for key, _ in TRANSCRIPT_METRICS]
        cells += [_pm(row["differences"][column], 100.0, 1, signed=True) for column in others]
        cells += [f"{row['differences'][c]['ahead']} of {row['differences'][c]['n']}" for c in others]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    return lines


def render_report(report: dict[str, Any]) -> str:
    """``results.md``: provenance, the mean ± std table, paired comparisons, per-seed figures, caching gain."""
    p, s = report["provenance"], report["settings"]
    seeds = s["seeds"]
    tree = "unknown tree state" if p["git_dirty"] is None else (
        f"dirty tree: {p['git_changes']} uncommitted changes" if p["git_dirty"] else "clean tree")
    what = "baselines only" if report.get("baselines_only") else f"{s['backbones']} backbones"
    lines = [
        f"# Multi-Still experiment: {s['corpus']} corpus, {s['split']} split, {what}, "
        f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''}",
        "",
        f"Made by `{p['command']}` at commit `{(p['git_commit'] or 'unknown')[:12]}` ({tree}) on "
        f"{machine_text(p['machine'])}; {p['date']}; {report['duration_s'] / 60:.1f} min wall clock, "
        f"{report['cpu_seconds'] / 60:.1f} min CPU time of all processes (load average "
        f"{p['machine']['load_average_start'][0]:.1f} at the start, {p['machine']['load_average_end'][0]:.1f} at "
        "the end: other processes' load slows the wall clock and the latencies).",
        "",
        report["data_text"],
        "",
        f"Every cell is the mean ± sample standard deviation over seeds {', '.join(map(str, seeds))} (n − 1 in the "
        "denominator; a single seed shows its value alone). Accuracy, precision and F1 are weighted, as in the "
        "paper; UA (balanced accuracy) and macro-F1 weigh every emotion equally. References are the evaluators' "
        "majority emotion."
        + (" Latency = median over the first test utterances, batch 1, raw 16 kHz audio + transcript through the "
           "processor and the model, measured one model after the other in this process."
           if any(row.get("latency") for row in report["rows"]) else ""),
        "",
        "| model | " + " | ".join(title for _, title in METRICS)
        + " | trainable params | total params | latency ms/utt | RTF |",
        "|---|" + "---|" * (len(METRICS) + 4),
    ]
    for row in report["rows"]:
        cells = [_pm(row["summary"][key]) for key, _ in METRICS]
        params = row.get("parameters")
        latency = row.get("latency")
        cells += [f"{params['trainable']:,}" if params else "–", f"{params['total']:,}" if params else "–",
                  _pm(latency["latency_ms_median"], 1.0, 1) if latency else "–",
                  _pm(latency["real_time_factor"], 1.0, 4) if latency else "–"]
        lines.append(f"| {row['label']} | " + " | ".join(cells) + " |")
    if report["baseline_text"]:
        lines += ["", report["baseline_text"]]
    if report["comparisons"]:
        lines += ["", "## Paired differences (same seed), points", "",
                  "| comparison | " + " | ".join(title for _, title in DIFF_METRICS)
                  + " | first ahead (macro-F1) | per seed Δ macro-F1 |",
                  "|---|" + "---|" * (len(DIFF_METRICS) + 2)]
        for c in report["comparisons"]:
            d = c["differences"]
            ahead = f"{d['macro_f1']['ahead']} of {d['macro_f1']['n']}"
            per_seed = ", ".join(f"{100 * v:+.1f}" for v in d["macro_f1"]["values"])
            lines.append(f"| {c['title']} | " + " | ".join(_pm(d[key], 100.0, 1, signed=True) for key, _ in DIFF_METRICS)
                         + f" | {ahead} | {per_seed} |")
        lines += ["", *[f"* {c['verdict']}" for c in report["comparisons"]]]
    if report.get("transcripts"):
        lines += render_transcripts(report["transcripts"])
    lines += ["", "## Macro-F1 per seed", "", "| model | " + " | ".join(f"seed {x}" for x in seeds) + " |",
              "|---|" + "---|" * len(seeds)]
    for row in report["rows"]:
        values = dict(zip(row["seeds"], row["summary"]["macro_f1"]["values"], strict=True))
        lines.append(f"| {row['label']} | "
                     + " | ".join(f"{100 * values[x]:.2f}" if x in values else "–" for x in seeds) + " |")
    gain = report.get("caching_gain")
    if gain:
        per = gain["per_seed"]
        first = per[min(per)]
        lines += [
            "", "## Cached encoder features", "",
            f"The teacher trained for {first['epochs']:g} epochs on cached encoder features and for as many epochs "
            "running its frozen encoders every step (two extra runs per seed, one at a time after all other runs; "
            f"epochs include validation): {_pm(gain['cached_epoch_seconds'], 1.0, 2)} s vs "
            f"{_pm(gain['uncached_epoch_seconds'], 1.0, 2)} s per epoch, **{_pm(gain['speedup'], 1.0, 1)}x** faster "
            f"per epoch (mean ± std over {gain['speedup']['n']} pairs of runs; per seed: "
            + ", ".join(f"{per[x]['speedup']:.1f}x" for x in sorted(per))
            + "). Feature caching in the teacher runs took "
            + ", ".join(f"{per[x]['teacher_caching_seconds']:.1f} s" for x in sorted(per)
                        if per[x]["teacher_caching_seconds"] is not None)
            + " (once per encoder, processor and data: the students that share the teacher's encoders, and any "
            "later run, only read the cache).",
        ]
    if s["backbones"] == "tiny" and not report.get("baselines_only"):
        lines += ["", "Tiny random frozen encoders: the models' scores show that every path learns, not what the "
                  "method achieves with pretrained encoders."]
    return "\n".join(lines) + "\n"


def data_text(reports: dict[int, dict[str, Any]], fit_rows: dict[int, int] | None) -> str:
    """One paragraph on the split: test set (same for every seed or not), training rows, baseline fitting rows."""
    tests = {seed: tuple(r["test_ids"]) for seed, r in reports.items()}
    first = reports[min(reports)]
    sessions = ", ".join(first.get("test_sessions") or [])
    if len(set(tests.values())) == 1:
        text = f"Test set: the same {len(tests[min(tests)])} utterances for every seed" + (f" ({sessions})." if sessions else ".")
    else:
        text = "Test sets differ between seeds (seeded split): " + ", ".join(
            f"seed {seed}: {len(ids)} utterances" for seed, ids in sorted(tests.items())) + "."
    text += " Training rows (after balancing) per seed: " + ", ".join(
        f"{r['train_examples']}" for _, r in sorted(reports.items())) + f"; validation: {first['validation_examples']}."
    if fit_rows:
        text += (" Baselines are fitted on the training and validation rows of the same split ("
                 + ", ".join(str(n) for _, n in sorted(fit_rows.items())) + " per seed; fixed hyper-parameters, no "
                 "search) and scored on the same test rows as the models.")
    return text


# --------------------------------------------------------------------------------------------
# main
# --------------------------------------------------------------------------------------------


def _cpu_seconds() -> float:
    """CPU seconds used so far by this process and its finished children (the runs)."""
    times = os.times()
    return times.user + times.system + times.children_user + times.children_system


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics without the lists (confusion matrix, per-class scores)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, list)}


def _model_result(run: Run, run_dir: Path) -> dict[str, Any]:
    info = _read_json(run_dir / "run_info.json")
    metrics = _read_json(run_dir / "metrics.json")
    test_results = _read_json(run_dir / "test_results.json")
    full = metrics["test"]
    by_column = {column: _scalars(values) for column, values in metrics.get("test_by_text_column", {}).items()
                 if column != info.get("text_column", "text")}
    return {"metrics": _scalars(full), **({"test_by_text_column": by_column} if by_column else {}),
            "confusion_matrix": full.get("confusion_matrix"), "test_runtime": test_results.get("test_runtime"),
            "parameters": info["parameters"], "alpha": run.alpha, "preset": run.preset}


def main(argv: list[str] | None = None) -> dict[str, Any]:
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
    per_seed: dict[int, dict[str, dict[str, Any]]] = {}
    text_columns: dict[str, Any] | None = None
    test_cer: dict[str, float] = {}  # of the first seed's test rows (the same rows for every seed)
    split_reports: dict[int, dict[str, Any]] = {}
    fit_rows: dict[int, int] = {}
    feature_cache: dict[str, np.ndarray] = {}
    launcher_length = len(shlex.split(args.launcher)) if args.launcher else 1
    for seed in args.seeds:
        folder = seed_dir(output_dir, seed)
        if args.baselines_only:
            teacher = Run("teacher", "", "teacher", "train.py")
            teacher_command = run_command(teacher, args, extra, seed, folder / teacher.name)
            splits, report = splits_like_train(teacher_command, launcher_length, folder / "baselines")
        else:
            splits = load_run_splits(folder / "teacher")
            report = _read_json(folder / "teacher" / "metrics.json")["data"]
        if report.get("text_columns") and text_columns is None:
            text_columns = report["text_columns"]
            test_cer = test_transcript_cer(splits, text_columns)
        test_ids = list(splits["test"]["id"])
        split_reports[seed] = {"test_ids": test_ids, "test_sessions": report.get("test", {}).get("sessions"),
                               "train_examples": len(splits["train"]), "validation_examples": len(splits["validation"])}
        results: dict[str, dict[str, Any]] = {}
        rows_for_latency = latency_rows(splits["test"], args.latency_utterances) \
            if args.latency_utterances and runs else []
        for run in runs:
            run_dir = folder / run.name
            run_ids = _read_json(run_dir / "data_splits.json")["test"] if (run_dir / "data_splits.json").exists() \
                else [p["id"] for p in _read_json(run_dir / "test_predictions.json")]
            if run_ids != test_ids:
                raise RuntimeError(f"{run_dir} was tested on other utterances than {folder / 'teacher'}: every row "
                                   "of a seed must share one test set (same split arguments).")
            results[run.name] = _model_result(run, run_dir)
            if rows_for_latency:
                results[run.name]["latency"] = measure_latency(run_dir, rows_for_latency)
        if args.baselines:
            encoder = str(Path(args.audio_encoder).expanduser()) if args.audio_encoder else None
            for key, result in score_baselines(splits, args.baselines, seed, feature_cache,
                                               args.baseline_context_sizes, encoder).items():
                results[key] = {"metrics": _scalars(result["metrics"]),
                                "confusion_matrix": result["metrics"].get("confusion_matrix"),
                                "fit_rows": result["fit_rows"]}
                if result.get("test_by_text_column"):
                    results[key]["test_by_text_column"] = {
                        column: _scalars(metrics) for column, metrics in result["test_by_text_column"].items()}
                fit_rows[seed] = result["fit_rows"]
        per_seed[seed] = results

    # 4. Summaries over seeds: rows, paired differences, caching gain
    row_specs = [{"name": r.name, "label": r.label, "kind": "model", "preset": r.preset, "alpha": r.alpha} for r in runs]
    row_specs += [{"name": baseline_key(n, k), "label": baseline_label(n, k), "kind": "baseline",
                   "description": BASELINES[n].description} for n in args.baselines for k in args.baseline_context_sizes]
    rows = aggregate(row_specs, per_seed)
    comparisons = []
    pairs = [(f"{p}_kd", f"{p}_ce", STUDENT_LABELS[p], "KD", "no KD") for p in args.students
             if args.no_kd_ablation and not args.baselines_only]
    if not args.baselines_only:
        pairs += [("teacher", baseline_key(n, k), f"Teacher vs {baseline_label(n, k).removeprefix('Baseline: ')}",
                   "teacher", "baseline") for n in args.baselines for k in args.baseline_context_sizes]
    for first, second, name, first_name, second_name in pairs:
        differences = {key: paired_difference({s: per_seed[s][first]["metrics"][key] for s in per_seed},
                                              {s: per_seed[s][second]["metrics"][key] for s in per_seed})
                       for key, _ in DIFF_METRICS}
        comparisons.append({"first": first, "second": second, "title": f"{name}: {first_name} − {second_name}",
                            "differences": differences,
                            "verdict": verdict(name, first_name, second_name, differences["macro_f1"])})
    transcripts = {**transcript_comparison(row_specs, per_seed, text_columns), "test_cer": test_cer} \
        if text_columns else None
    gain = None
    if gain_jobs:
        per = {seed: caching_gain(seed_dir(output_dir, seed)) for seed in args.seeds}
        gain = {"per_seed": per, **{key: describe([per[s][key] for s in per])
                                    for key in ("cached_epoch_seconds", "uncached_epoch_seconds", "speedup")}}

    # 5. The report
    origin["machine"]["load_average_end"] = list(os.getloadavg())
    report = {
        "provenance": origin,
        "duration_s": time.perf_counter() - started,
        "cpu_seconds": _cpu_seconds() - cpu_start,
        "settings": {"corpus": args.corpus, "split": args.split, "backbones": backbones_label(args), "seeds": args.seeds,
                     "students": args.students, "no_kd_ablation": args.no_kd_ablation, "alpha": args.alpha,
                     "temperature": args.temperature, "num_train_epochs": args.num_train_epochs,
                     "learning_rate": args.learning_rate, "batch_size": args.batch_size, "passed_through": extra,
                     "baselines": args.baselines, "baselines_fit_on": ["train", "validation"],
                     "baseline_context_sizes": args.baseline_context_sizes,
                     "latency_utterances": args.latency_utterances, "parallel": args.parallel},
        "baselines_only": args.baselines_only,
        "data_text": data_text(split_reports, fit_rows if args.baselines else None),
        "baseline_text": "Baselines: " + "; ".join(f"{BASELINES[n].label.removeprefix('Baseline: ')} = "
                                                   f"{BASELINES[n].description}" for n in args.baselines)
        + ". They are deterministic: they vary across seeds only where the rows they are fitted on do."
        if args.baselines else "",
        "rows": rows,
        "comparisons": comparisons,
        "transcripts": transcripts,
        "per_seed": {str(seed): results for seed, results in per_seed.items()},
        "splits": {str(seed): {k: v for k, v in r.items() if k != "test_ids"} | {"test_examples": len(r["test_ids"])}
                   for seed, r in split_reports.items()},
        "caching_gain": gain,
        "run_seconds": run_seconds,
    }
    table = render_report(report)
    (output_dir / "results.md").write_text(table, encoding="utf-8")
    from .training import write_json

    write_json(report, output_dir / "results.json")
    print(table)
    logger.info("Wrote %s and results.json", output_dir / "results.md")
    return report


if __name__ == "__main__":
    run_script(main)
