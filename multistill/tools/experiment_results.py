"""What the runs of an experiment (:mod:`.experiment`) produced, read back and measured, one seed at a time.

A finished ``train.py`` / ``distill.py`` run leaves ``run_info.json``, ``data_splits.json`` and its metrics in
its folder; from them this module reloads the corpus and the exact split the run used, reads each model's test
metrics, fits and scores the simple baselines (:mod:`.baselines`) on the same rows, times every model's
end-to-end latency, reads the caching-gain runs and measures the test transcripts' character error rate.
Kept apart from the runner so that :mod:`.experiment` reads as planning, running and reporting.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .baselines import BASELINES

if TYPE_CHECKING:
    from .experiment import Run

logger = logging.getLogger("multistill.tools.experiment")  # the runner's log


def baseline_key(name: str, context_size: int) -> str:
    """Row name of a baseline at a context size (``baseline_text_tfidf``, ``baseline_text_tfidf_context4``)."""
    return f"baseline_{name}" + (f"_context{context_size}" if context_size else "")


def baseline_label(name: str, context_size: int) -> str:
    return BASELINES[name].label + (f", {context_size} previous utterances" if context_size else "")


# --------------------------------------------------------------------------------------------
# Data of a run: the corpus as the run loaded it, and its split by id
# --------------------------------------------------------------------------------------------


def read_json(path: Path) -> Any:
    """A JSON file a run wrote; a missing one is a ``FileNotFoundError`` naming it."""
    if not path.exists():
        raise FileNotFoundError(f"{path} not found.")
    return json.loads(path.read_text(encoding="utf-8"))


def load_run_corpus(run_dir: Path):
    """The corpus a run trained on, loaded the way it loaded it (``run_info.json``: corpus, data_dir, ...,
    and the speech recognizer of its ``asr_text`` column, whose transcripts come from the cache)."""
    from ..training.arguments import DataArguments
    from ..training.workflow import load_corpus

    info = read_json(run_dir / "run_info.json")
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

    from ..training.workflow import select_text_columns

    path = run_dir / "data_splits.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: the run was made by a train.py/distill.py that does not write "
                                "data_splits.json; rerun it (without --reuse) with this checkout.")
    ids = read_json(path)
    for name in ("train", "validation", "test"):
        if name not in ids:
            raise ValueError(f"{path}: no {name!r} list of ids.")
    info = read_json(run_dir / "run_info.json")
    dataset = load_run_corpus(run_dir)
    rows = DatasetDict({name: select_ids(dataset, ids[name], f"{path} [{name}]")
                        for name in ("train", "validation", "test")})
    return select_text_columns(rows, info.get("text_column", "text"), info.get("test_text_columns"))


def splits_like_train(command: Sequence[str], launcher_length: int, output_dir: Path):
    """``--baselines_only``: the split ``train.py`` would make for this command line, by train.py's own code."""
    from transformers import HfArgumentParser

    from ..training.arguments import DataArguments, ModelArguments, MultiStillTrainingArguments
    from ..training.splits import split_ids
    from ..training.trainer import write_json
    from ..training.workflow import DATA_SPLITS_FILE, data_info, prepare_splits

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

    from ..training.workflow import extra_test_splits
    from .baselines import BASELINES, fit_baseline, score_baseline

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
    from ..modeling_multistill import MultiStillForEmotionClassification
    from ..processing_multistill import MultiStillProcessor

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
        return read_json(seed_folder / name / "train_results.json")

    cached, uncached = result("caching_cached"), result("caching_uncached")
    if cached["epoch"] != uncached["epoch"]:
        raise ValueError(f"{seed_folder}: caching-gain runs trained {cached['epoch']} vs {uncached['epoch']} epochs.")
    per_epoch = {k: r["train_runtime"] / r["epoch"] for k, r in (("cached", cached), ("uncached", uncached))}
    info = read_json(seed_folder / "teacher" / "run_info.json")
    return {"epochs": cached["epoch"], "cached_epoch_seconds": per_epoch["cached"],
            "uncached_epoch_seconds": per_epoch["uncached"], "speedup": per_epoch["uncached"] / per_epoch["cached"],
            "teacher_caching_seconds": info.get("feature_caching_seconds")}


def test_transcript_cer(splits, text_columns: dict[str, Any]) -> dict[str, float]:
    """Character error rate of each other transcript column of the test rows against the corpus's (``text``)."""
    from ..asr import character_error_rate
    from ..training.workflow import extra_test_splits

    tested = {text_columns["train"]: splits["test"],
              **{column: splits[name] for column, name in extra_test_splits(splits).items()}}
    if "text" not in tested:
        return {}
    return {column: character_error_rate(tested["text"]["text"], split["text"])["cer"]
            for column, split in tested.items() if column != "text"}


# --------------------------------------------------------------------------------------------
# Rows of the report: a model's test results, the baselines'
# --------------------------------------------------------------------------------------------


def _scalars(metrics: dict[str, Any]) -> dict[str, Any]:
    """The metrics without the lists (confusion matrix, per-class scores)."""
    return {k: v for k, v in metrics.items() if not isinstance(v, list)}


def _model_result(run: Run, run_dir: Path) -> dict[str, Any]:
    info = read_json(run_dir / "run_info.json")
    metrics = read_json(run_dir / "metrics.json")
    test_results = read_json(run_dir / "test_results.json")
    full = metrics["test"]
    by_column = {column: _scalars(values) for column, values in metrics.get("test_by_text_column", {}).items()
                 if column != info.get("text_column", "text")}
    return {"metrics": _scalars(full), **({"test_by_text_column": by_column} if by_column else {}),
            "confusion_matrix": full.get("confusion_matrix"), "test_runtime": test_results.get("test_runtime"),
            "parameters": info["parameters"], "alpha": run.alpha, "preset": run.preset}


def model_results(runs: list[Run], folder: Path, test_ids: list[str],
                  rows_for_latency: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each run's test metrics (checked to be of the seed's test rows) and, with rows to time, its latency."""
    results: dict[str, dict[str, Any]] = {}
    for run in runs:
        run_dir = folder / run.name
        run_ids = read_json(run_dir / "data_splits.json")["test"] if (run_dir / "data_splits.json").exists() \
            else [p["id"] for p in read_json(run_dir / "test_predictions.json")]
        if run_ids != test_ids:
            raise RuntimeError(f"{run_dir} was tested on other utterances than {folder / 'teacher'}: every row "
                               "of a seed must share one test set (same split arguments).")
        results[run.name] = _model_result(run, run_dir)
        if rows_for_latency:
            results[run.name]["latency"] = measure_latency(run_dir, rows_for_latency)
    return results


def baseline_results(splits, names: Sequence[str], seed: int, feature_cache: dict[Any, np.ndarray],
                     context_sizes: Sequence[int], audio_encoder: str | None) -> dict[str, dict[str, Any]]:
    """Every baseline scored on the seed's split (:func:`score_baselines`), as rows of the report."""
    results: dict[str, dict[str, Any]] = {}
    for key, result in score_baselines(splits, names, seed, feature_cache, context_sizes, audio_encoder).items():
        results[key] = {"metrics": _scalars(result["metrics"]),
                        "confusion_matrix": result["metrics"].get("confusion_matrix"), "fit_rows": result["fit_rows"]}
        if result.get("test_by_text_column"):
            results[key]["test_by_text_column"] = {
                column: _scalars(metrics) for column, metrics in result["test_by_text_column"].items()}
    return results
