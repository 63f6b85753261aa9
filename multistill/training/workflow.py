"""The steps ``train.py`` and ``distill.py`` share: logging and threads, data and splits, the model,
features and trainer, and the reports of a finished run.

Each function is one numbered step of the scripts' ``main()``; the two scripts differ only in what
they train (a model from encoders, or a student of a teacher) and in the distillation settings.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import logging
import math
import os
import platform
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import Trainer, TrainingArguments

from ..annotations import EMOTIONS
from ..asr import ASR_TEXT_COLUMN
from .arguments import NGRAM, TINY, DataArguments, ModelArguments, UsageError
from .data import DEFAULT_CACHE, load_kemdy
from .features import FeaturePlan, PreparedData
from .splits import balance, check_training_labels, class_distribution, make_splits, split_groups, split_ids
from .trainer import (
    DistillationSettings,
    MultiStillTrainer,
    balanced_class_weights,
    build_compute_metrics,
    evaluate_predictions,
    save_confusion_matrix,
    save_training_curves,
    write_json,
)

logger = logging.getLogger(__name__)

DATA_SPLITS_FILE = "data_splits.json"
RUN_INFO_FILE = "run_info.json"


def setup_logging(training_args: TrainingArguments) -> None:
    """INFO on the main process, WARNING elsewhere unless ``--log_level_replica info`` (HF example-script
    convention); ``--threads``."""
    # Our own messages: INFO on the main process (and on replicas asked for it); transformers/datasets:
    # --log_level / --log_level_replica (default warning).
    verbose = training_args.should_log or training_args.get_process_log_level() <= logging.INFO
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
        level=logging.INFO if verbose else logging.WARNING, force=True,
    )
    import datasets
    import transformers

    library_level = training_args.get_process_log_level()
    if training_args.log_level == "passive":
        library_level = logging.WARNING
    datasets.utils.logging.set_verbosity(library_level)
    transformers.utils.logging.set_verbosity(library_level)
    threads = getattr(training_args, "threads", None)
    if threads:
        torch.set_num_threads(threads)
    logger.warning(
        "Process rank: %s, world size: %s, device: %s, distributed: %s, torch threads: %d",
        training_args.process_index, training_args.world_size, training_args.device,
        training_args.parallel_mode.value, torch.get_num_threads(),
    )


def cache_root(data_args: DataArguments) -> Path:
    """Where Arrow caches, encoder features, the synthetic corpus and tiny backbones live."""
    return Path(data_args.data_cache_dir or os.environ.get("MULTISTILL_CACHE", DEFAULT_CACHE))


def latest_complete_checkpoint(output_dir: str | Path) -> str | None:
    """The newest ``checkpoint-N`` whose ``trainer_state.json`` (written last by the Trainer) is readable.

    A run killed while saving leaves a partial folder; it is skipped with a warning instead of failing
    the resumed run deep inside ``torch.load``.
    """
    folders = sorted(
        (p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name.split("-")[-1].isdigit()),
        key=lambda p: int(p.name.split("-")[-1]), reverse=True,
    )
    for folder in folders:
        try:
            json.loads((folder / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            logger.warning("Skipping incomplete checkpoint %s (no readable trainer_state.json: the run was "
                           "probably killed while saving it).", folder)
            continue
        return str(folder)
    return None


#: Held by the main process of a run in its ``--output_dir`` (see :func:`lock_output_dir`).
LOCK_FILE = ".multistill.lock"
_held_locks: dict[str, Any] = {}


def lock_output_dir(training_args: TrainingArguments) -> None:
    """Refuse a second run into the same ``--output_dir`` while one is running (their checkpoints would mix):
    the main process holds an exclusive ``flock`` on ``OUTPUT_DIR/.multistill.lock`` until it exits (the
    system releases it even when the run is killed). Later runs in the same process reuse the lock."""
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks here
        return
    folder = Path(training_args.output_dir).absolute()
    if training_args.process_index != 0 or str(folder) in _held_locks:
        return
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+", encoding="utf-8")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "another process"
        handle.close()
        raise UsageError(f"--output_dir {training_args.output_dir}: another run is writing there ({owner}); wait "
                         "for it to finish, or choose another --output_dir.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"pid {os.getpid()} on {platform.node()}\n")
    handle.flush()
    _held_locks[str(folder)] = handle


def resolve_checkpoint(training_args: TrainingArguments) -> str | None:
    """``--resume_from_checkpoint`` as a folder, or ``latest`` for the newest complete one in ``output_dir``."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("latest", "last", "true"):
        found = latest_complete_checkpoint(training_args.output_dir)
        if found is None:
            raise UsageError(
                f"--resume_from_checkpoint {value}: no complete checkpoint-* folder in {training_args.output_dir}."
            )
        logger.info("Resuming from %s", found)
        return found
    if not os.path.isfile(os.path.join(value, "trainer_state.json")):
        raise UsageError(f"--resume_from_checkpoint: {value} is not a checkpoint folder (no trainer_state.json).")
    return str(value)


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


#: prefix of the extra test splits of ``--test_text_columns`` (``test_on_asr_text``)
TEST_ON_PREFIX = "test_on_"


def load_corpus(data_args: DataArguments) -> Dataset:
    """The corpus of ``data_args``, with an ``asr_text`` column when ``--asr_model`` is given.

    The recognizer's transcripts are cached beside the corpus's Arrow files (keyed by the corpus and the
    recognizer), so only the first run with a given recognizer transcribes.
    """
    dataset = load_kemdy(
        data_args.corpus, data_args.data_dir, data_args.sessions, cache_dir=cache_root(data_args),
        synthetic_size=(data_args.synthetic_sessions, data_args.synthetic_utterances),
    )
    if data_args.asr_model:
        from ..asr import add_asr_transcripts, load_asr
        from ..tools.whisper_base import resolve_asr_model

        try:
            asr = load_asr(resolve_asr_model(data_args.asr_model), engine=data_args.asr_engine)
        except (OSError, ValueError) as error:
            raise UsageError(f"--asr_model {data_args.asr_model}: cannot load the speech recognizer: {error}") \
                from error
        logger.info("Adding ASR transcripts (%s) to %d utterances (cached after the first run)", asr, len(dataset))
        dataset = add_asr_transcripts(dataset, asr, column=ASR_TEXT_COLUMN)
    return dataset


def with_text_column(split: Dataset, column: str) -> Dataset:
    """``split`` whose ``text`` column holds ``column``'s transcripts (the models always read ``text``)."""
    if column == "text":
        return split
    return split.remove_columns("text").rename_column(column, "text")


def select_text_columns(splits: DatasetDict, text_column: str, test_text_columns: list[str] | None) -> DatasetDict:
    """``splits`` with ``text_column``'s transcripts in ``text``, plus a ``test_on_<column>`` split (the test rows
    with that column in ``text``) per ``test_text_columns`` entry."""
    chosen = {name: with_text_column(split, text_column) for name, split in splits.items()}
    for column in test_text_columns or []:
        chosen[TEST_ON_PREFIX + column] = with_text_column(splits["test"], column)
    return DatasetDict(chosen)


def extra_test_splits(splits: DatasetDict) -> dict[str, str]:
    """``{column: split name}`` of the extra test splits ``--test_text_columns`` added to ``splits``."""
    return {name.removeprefix(TEST_ON_PREFIX): name for name in splits if name.startswith(TEST_ON_PREFIX)}


def prepare_splits(data_args: DataArguments, training_args: TrainingArguments) -> tuple[DatasetDict, dict[str, Any]]:
    """Load the corpus (adding ASR transcripts with ``--asr_model``), split it, balance the training split,
    and put the chosen transcript column (``--text_column``) in ``text``.

    Returns the splits and a report (sizes, sessions, dialogues, class distributions) for ``metrics.json``.
    ``--test_text_columns`` add one more split per column, ``test_on_<column>``: the test rows with that
    transcript in ``text``. A split choice the data cannot satisfy (too few sessions, a one-emotion training
    split...) raises :class:`UsageError`.
    """
    with training_args.main_process_first(desc="building the KEMDy Arrow cache"):
        dataset = load_corpus(data_args)
    wanted = [("--text_column", data_args.text_column)]
    wanted += [("--test_text_columns", column) for column in data_args.test_text_columns or []]
    for flag, column in wanted:
        if column not in dataset.column_names:
            raise UsageError(f"{flag} {column}: the dataset has no such column (it has {dataset.column_names}).")
    try:
        splits = make_splits(
            dataset, data_args.split, test_sessions=data_args.test_sessions,
            validation_sessions=data_args.validation_sessions, test_fraction=data_args.test_fraction,
            validation_fraction=data_args.validation_fraction, validation_from=data_args.validation_from,
            seed=data_args.split_seed,
        )
        check_training_labels(splits["train"])
    except ValueError as error:
        raise UsageError(str(error)) from error
    report: dict[str, Any] = {"corpus": data_args.corpus, "split": data_args.split}
    if data_args.balance_max_fraction:
        splits["train"], report["balancing"] = balance(
            splits["train"], max_fraction=data_args.balance_max_fraction, seed=training_args.seed
        )
    if data_args.max_train_samples is not None:
        splits["train"] = splits["train"].select(range(min(data_args.max_train_samples, len(splits["train"]))))
    try:
        check_training_labels(splits["train"], where="The training split (after balancing and --max_train_samples)")
    except ValueError as error:
        raise UsageError(str(error)) from error
    groups = split_groups(splits)
    for name, split in splits.items():
        report[name] = {"examples": len(split), **groups[name], "emotions": class_distribution(split)}
        logger.info("%s: %d utterances from sessions %s, %d dialogues", name, len(split), groups[name]["sessions"],
                    len(groups[name]["dialogues"]))
    if data_args.text_column != "text" or data_args.test_text_columns:
        report["text_columns"] = {"train": data_args.text_column, "test": [data_args.text_column,
                                                                          *(data_args.test_text_columns or [])]}
    return select_text_columns(splits, data_args.text_column, data_args.test_text_columns), report


def data_info(data_args: DataArguments, splits: DatasetDict) -> dict[str, Any]:
    """What run_info.json records about the data: enough to rebuild the corpus, every split parameter,
    and the sessions and dialogues each held-out split got (``held_out``)."""
    groups = split_groups(splits)
    return {
        "corpus": data_args.corpus, "data_dir": data_args.data_dir, "sessions": data_args.sessions,
        "data_cache_dir": str(cache_root(data_args)),
        "synthetic_size": [data_args.synthetic_sessions, data_args.synthetic_utterances],
        "text_column": data_args.text_column, "test_text_columns": data_args.test_text_columns,
        "asr_model": data_args.asr_model, "asr_engine": data_args.asr_engine, "split": data_args.split, "split_seed": data_args.split_seed,
        "test_sessions": data_args.test_sessions, "validation_sessions": data_args.validation_sessions,
        "validation_from": data_args.validation_from or ("sessions" if data_args.split == "session" else None),
        "test_fraction": data_args.resolved_fractions()[0], "validation_fraction": data_args.resolved_fractions()[1],
        "balance_max_fraction": data_args.balance_max_fraction,
        "held_out": {name: groups[name] for name in ("test", "validation")},
    }


def _split_differences(teacher: dict[str, Any], ours: dict[str, Any], teacher_ids: dict[str, list[str]],
                       our_ids: dict[str, list[str]]) -> list[str]:
    differences = []
    for key in ("corpus", "sessions", "split", "split_seed", "validation_from", "test_fraction", "validation_fraction",
                "synthetic_size"):
        if teacher.get(key) != ours.get(key):
            differences.append(f"--{key}: the teacher's run used {teacher.get(key)!r}, this run {ours.get(key)!r}")
    for name in ("test", "validation"):
        for unit in ("sessions", "dialogues"):
            theirs = (teacher.get("held_out") or {}).get(name, {}).get(unit)
            mine = ours["held_out"][name][unit]
            if theirs is not None and theirs != mine:
                differences.append(f"{name} {unit}: the teacher's run held out {theirs}, this run {mine}")
        only_teacher = set(teacher_ids.get(name, [])) - set(our_ids[name])
        only_ours = set(our_ids[name]) - set(teacher_ids.get(name, []))
        if only_teacher or only_ours:
            differences.append(f"{name} utterances: {len(only_teacher)} only in the teacher's {name} split, "
                               f"{len(only_ours)} only in this run's (e.g. {sorted(only_teacher | only_ours)[:3]})")
    leaked = set(teacher_ids.get("train", [])) & (set(our_ids["test"]) | set(our_ids["validation"]))
    if leaked:
        differences.append(f"the teacher trained on {len(leaked)} utterances this run validates or tests on")
    return differences


def read_json_object(path: Path, argument: str) -> dict[str, Any]:
    """The JSON object in ``path``, or a :class:`UsageError` naming ``argument`` and the file (damaged, not JSON,
    or not an object)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"{argument}: {path} is not a readable JSON file ({error}).") from None
    if not isinstance(data, dict):
        raise UsageError(f"{argument}: {path} must hold a JSON object, got {type(data).__name__}.")
    return data


def check_teacher_split(teacher_model: str, data_args: DataArguments, splits: DatasetDict,
                        allow_mismatch: bool = False) -> dict[str, Any]:
    """Refuse a teacher whose run split the data otherwise (its logits may come from our test data).

    Compares the teacher's ``run_info.json`` (split parameters, held-out sessions and dialogues) and
    ``data_splits.json`` (utterance ids) with this run's. Returns the teacher's run info. With
    ``allow_mismatch`` a difference (or a teacher without these files) is a warning instead of a
    :class:`UsageError`.
    """
    folder = Path(teacher_model)
    files = [folder / RUN_INFO_FILE, folder / DATA_SPLITS_FILE]
    missing = [f.name for f in files if not f.is_file()]
    if missing:
        problems = [f"its split cannot be checked: {teacher_model} has no {' or '.join(missing)} (a Hub id, or a "
                    "model not trained by train.py)"]
        info: dict[str, Any] = read_json_object(files[0], "--teacher_model") if files[0].is_file() else {}
    else:
        info = read_json_object(files[0], "--teacher_model")
        teacher_ids = read_json_object(files[1], "--teacher_model")
        problems = _split_differences(info, data_info(data_args, splits), teacher_ids, split_ids(splits))
    if problems:
        message = "The teacher does not match this run's split: " + "; ".join(problems) + "."
        if not allow_mismatch:
            raise UsageError(message + " Use the teacher's split arguments, or pass --allow_split_mismatch to "
                             "distil from it anyway.")
        logger.warning("%s Continuing (--allow_split_mismatch).", message)
    return info


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def tiny_encoder_folders(train_texts: list[str], data_args: DataArguments, training_args: TrainingArguments,
                         seed: int = 0) -> dict[str, str]:
    """Tiny random encoders + a WordPiece tokenizer trained on the training transcripts (cached by content)."""
    from ..offline import build_tiny_encoders

    key = hashlib.sha256(json.dumps([sorted(train_texts), seed]).encode()).hexdigest()[:12]
    root = cache_root(data_args) / "tiny_backbones" / key
    with training_args.main_process_first(desc="building tiny backbones"):
        if not (root / ".complete").exists():
            logger.info("Building tiny offline encoders in %s (tokenizer trained on %d transcripts)",
                        root, len(train_texts))
            build_tiny_encoders(root, texts=train_texts, seed=seed)
            (root / ".complete").touch()
    return {"audio": str(root / "audio"), "text": str(root / "text")}


def ngram_encoder_folder(train_texts: list[str], data_args: DataArguments, training_args: TrainingArguments,
                         seed: int = 0) -> str:
    """The character n-gram text encoder + tokenizer of the training transcripts (cached by content)."""
    from ..offline import build_ngram_text_encoder

    key = hashlib.sha256(json.dumps([sorted(train_texts), seed, "ngram-v1"]).encode()).hexdigest()[:12]
    root = cache_root(data_args) / "ngram_encoders" / key
    with training_args.main_process_first(desc="building the n-gram text encoder"):
        if not (root / ".complete").exists():
            logger.info("Building the character n-gram text encoder in %s (IDF of %d transcripts)", root,
                        len(train_texts))
            build_ngram_text_encoder(root, train_texts, seed=seed)
            (root / ".complete").touch()
    return str(root)


def build_model(model_args: ModelArguments, train_texts: list[str], data_args: DataArguments,
                training_args: TrainingArguments) -> tuple[torch.nn.Module, Any, dict[str, str]]:
    """``(model, processor, encoders)`` of ``--preset`` around the chosen encoders.

    ``encoders`` maps each modality to what was loaded: a tiny folder built from ``train_texts`` (tokenizer
    vocabulary), a folder or a Hub id. The fusion head is initialised with ``--seed``.
    """
    from ..modeling_multistill import MultiStillForEmotionClassification
    from ..offline import FUSION_SIZES
    from ..processing_multistill import MultiStillProcessor

    encoders = model_args.encoders()
    if TINY in encoders.values():
        folders = tiny_encoder_folders(train_texts, data_args, training_args)
        encoders = {m: folders[m] if value == TINY else value for m, value in encoders.items()}
    if encoders["text"] == NGRAM:
        encoders["text"] = ngram_encoder_folder(train_texts, data_args, training_args)
    local = all(Path(value).is_dir() for value in encoders.values())
    overrides: dict[str, Any] = {**FUSION_SIZES[model_args.resolved_fusion_size()], **model_args.config_overrides()}
    if encoders["text"] != model_args.encoders()["text"] and model_args.encoders()["text"] == NGRAM:
        overrides["freeze_text_encoder"] = False  # its embeddings are what training learns
    torch.manual_seed(training_args.seed)
    model = MultiStillForEmotionClassification.from_encoders(
        encoders["audio"], encoders["text"], preset=model_args.preset, local_files_only=local, **overrides
    )
    processor = MultiStillProcessor.from_encoders(encoders["audio"], encoders["text"], config=model.config,
                                                  **({"local_files_only": True} if local else {}))
    return model, processor, encoders


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total and trainable parameters (the paper's table counts trainable ones)."""
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


# --------------------------------------------------------------------------------------------
# Features and trainer
# --------------------------------------------------------------------------------------------


def prepare_features(plan: FeaturePlan, splits: DatasetDict, model: torch.nn.Module, processor: Any,
                     model_args: ModelArguments, data_args: DataArguments, training_args: TrainingArguments,
                     teacher: torch.nn.Module | None = None, teacher_processor: Any | None = None) -> PreparedData:
    """Log the plan, then :meth:`FeaturePlan.prepare` with the run's cache folder, batch sizes and device."""
    for line in plan.describe():
        logger.info("Batches of %s", line)
    data = plan.prepare(
        splits, model, processor, teacher, teacher_processor, cache_dir=cache_root(data_args) / "encoder_features",
        feature_dtype=model_args.feature_dtype, encoding_batch_size=model_args.encoding_batch_size,
        teacher_batch_size=training_args.per_device_eval_batch_size, device=training_args.device,
        main_process_first=training_args.main_process_first,
        logits_for=("train", "validation") if getattr(training_args, "refit_on_validation", False) else ("train",),
    )
    logger.info("Features ready in %.1f s (utterances encoded: %s)", data.seconds,
                {k: v for k, v in data.encoded.items() if v} or "none")
    return data


#: What a write to a full disk raises: ``OSError`` ENOSPC, or torch's zip writer (``torch.save``).
_DISK_FULL_MESSAGES = ("No space left on device", "unexpected pos", "file write failed")


def _disk_full(error: BaseException) -> bool:
    while error is not None:
        if getattr(error, "errno", None) == errno.ENOSPC or any(m in str(error) for m in _DISK_FULL_MESSAGES):
            return True
        error = error.__cause__ or error.__context__
    return False


def train_model(trainer: Trainer, checkpoint: str | None) -> Any:
    """``trainer.train``; a full disk is a :class:`UsageError` "No space left on device: OUTPUT_DIR" (torch says
    ``unexpected pos 210752 vs 210644``), and the half-written checkpoints (no ``trainer_state.json``, which the
    Trainer writes last) are removed, so ``--resume_from_checkpoint latest`` continues from a complete one."""
    try:
        return trainer.train(resume_from_checkpoint=checkpoint)
    except (OSError, RuntimeError) as error:
        if not _disk_full(error):
            raise
        output_dir = Path(trainer.args.output_dir)
        removed = [folder.name for folder in output_dir.glob("checkpoint-*")
                   if folder.is_dir() and not (folder / "trainer_state.json").is_file()]
        for name in removed:
            shutil.rmtree(output_dir / name, ignore_errors=True)
        free = shutil.disk_usage(output_dir).free / 2**20 if output_dir.is_dir() else 0.0
        raise UsageError(f"No space left on device: {output_dir} ({free:.0f} MiB free; removed the half-written "
                         f"{', '.join(removed) or 'nothing'}). Free some space, then rerun with "
                         "--resume_from_checkpoint latest.") from None


def make_trainer(model: torch.nn.Module, processor: Any, data: PreparedData, training_args: TrainingArguments,
                 distillation: DistillationSettings | None = None,
                 teacher: torch.nn.Module | None = None) -> MultiStillTrainer:
    """The trainer of both scripts: trains on ``train``, picks the best checkpoint on ``validation``; with
    ``--class_weighting balanced`` the training loss weighs each emotion by its rarity in ``train``."""
    class_weights = None
    if getattr(training_args, "class_weighting", "none") == "balanced":
        class_weights = balanced_class_weights(list(data.splits["train"]["emotion"]), model.config.num_labels)
        logger.info("Class weights of the training loss: %s", [round(float(w), 3) for w in class_weights])
    return MultiStillTrainer(
        model=model, args=training_args, train_dataset=data.splits["train"], eval_dataset=data.splits["validation"],
        data_collator=data.collator, processing_class=processor, compute_metrics=build_compute_metrics(),
        distillation=distillation, teacher=teacher, class_weights=class_weights,
    )


def best_epoch(log_history: list[dict[str, Any]], metric: str) -> int:
    """The epoch (1-based, whole) of the best evaluation by ``metric`` (the first of equals)."""
    scores = [(entry[f"eval_{metric}"], entry["epoch"]) for entry in log_history if f"eval_{metric}" in entry]
    if not scores:
        raise ValueError(f"No evaluation logged eval_{metric}: cannot choose the epoch to refit with.")
    best = max(score for score, _ in scores)
    return max(1, round(next(epoch for score, epoch in scores if score == best)))


def fit_model(model: torch.nn.Module, rebuild: Callable[[], torch.nn.Module], processor: Any, data: PreparedData,
              training_args: TrainingArguments, checkpoint: str | None,
              **trainer_kwargs: Any) -> tuple[MultiStillTrainer, Any, int | None]:
    """Step "train" of both scripts: ``(trainer holding the final model, train result, refit epochs or None)``.

    ``--refit_epochs all`` trains ``model`` once on training + validation rows; ``--refit_on_validation`` trains
    ``model`` on the training rows, then a fresh one from ``rebuild`` on training + validation rows for the best
    epoch count; otherwise ``model`` trains on the training rows (best checkpoint on validation)."""
    if training_args.refit_on_validation and training_args.refit_epochs == "all":
        trainer, result, epochs = refit_on_validation(None, lambda: model, processor, data, training_args,
                                                      **trainer_kwargs)
    else:
        trainer = make_trainer(model, processor, data, training_args, **trainer_kwargs)
        result, epochs = train_model(trainer, checkpoint), None  # a full disk: one error line
        if training_args.refit_on_validation:
            trainer, result, epochs = refit_on_validation(trainer, rebuild, processor, data, training_args,
                                                          **trainer_kwargs)
    logger.info("Process rank %d finished training at global step %d", training_args.process_index,
                trainer.state.global_step)
    return trainer, result, epochs


def refit_on_validation(trainer: MultiStillTrainer | None, build: Callable[[], torch.nn.Module], processor: Any,
                        data: PreparedData, training_args: TrainingArguments,
                        **trainer_kwargs: Any) -> tuple[MultiStillTrainer, Any, int]:
    """A fresh model from ``build`` (same seed) trained on training + validation rows for the best epoch count
    of ``trainer``'s run (by validation ``metric_for_best_model``), or with ``--refit_epochs all`` (``trainer``
    None: no validation run) for ``--num_train_epochs``; returns ``(trainer, train result, epochs)``."""
    from datasets import concatenate_datasets
    from transformers import set_seed

    if trainer is None:
        epochs = max(1, math.ceil(training_args.num_train_epochs))
        logger.info("Refit: a model on training + validation rows for all %d epochs (--refit_epochs all)", epochs)
    else:
        epochs = best_epoch(trainer.state.log_history, training_args.metric_for_best_model or "macro_f1")
        logger.info("Refit: a fresh model on training + validation rows for %d epochs (the best on validation)",
                    epochs)
    args = dataclasses.replace(training_args, eval_strategy="no", save_strategy="no", load_best_model_at_end=False,
                               num_train_epochs=float(epochs))
    args.publish_to_hub = training_args.publish_to_hub
    splits = DatasetDict({**data.splits, "train": concatenate_datasets([data.splits["train"],
                                                                       data.splits["validation"]])})
    set_seed(training_args.seed)
    model = build()
    refit = make_trainer(model, processor, dataclasses.replace(data, splits=splits), args, **trainer_kwargs)
    return refit, refit.train(), epochs


# --------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------


def _logits(prediction: Any) -> np.ndarray:
    return prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions


def _prediction_rows(ids: list[str], references: np.ndarray, logits: np.ndarray) -> list[dict[str, Any]]:
    """``test_predictions.json``: per utterance the reference, the prediction and the emotion probabilities."""
    return [
        {"id": i, "emotion": EMOTIONS[int(r)], "predicted": EMOTIONS[int(p)],
         "scores": [round(float(x), 5) for x in torch.softmax(torch.as_tensor(row, dtype=torch.float32), -1)]}
        for i, r, p, row in zip(ids, references, logits.argmax(-1), logits, strict=True)
    ]


def finish_run(trainer: Trainer, splits: DatasetDict, processor, run_info: dict[str, Any],
               data_report: dict[str, Any], train_result: Any | None) -> dict[str, Any]:
    """Evaluate the best model on the test split; save model, processor, metrics JSON, plots,
    ``run_info.json`` and ``data_splits.json`` (``{"train": [ids], "validation": [ids], "test": [ids]}``)."""
    args = trainer.args
    output_dir = Path(args.output_dir)
    metrics: dict[str, Any] = {}
    if train_result is not None:
        metrics.update(train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
    # Step: test-set evaluation (every rank takes part; only the main process writes), then the same
    # rows with each --test_text_columns transcript.
    prediction = trainer.predict(splits["test"], metric_key_prefix="test")
    trainer.save_metrics("test", prediction.metrics)
    metrics.update(prediction.metrics)
    extra_predictions = {column: trainer.predict(splits[name], metric_key_prefix=name)
                         for column, name in extra_test_splits(splits).items()}
    # The custom pipeline goes into config.json and its code beside the model, so
    # pipeline("multimodal-emotion-recognition", model=output_dir, trust_remote_code=True) works anywhere.
    from ..pipeline_multistill import add_pipeline_to_config, save_pipeline_code

    add_pipeline_to_config(trainer.model.config)
    trainer.save_model(str(output_dir))  # model weights + config + processor (processing_class)
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return metrics
    save_pipeline_code(output_dir)
    references = np.asarray(splits["test"]["emotion"])
    logits = _logits(prediction)
    full = evaluate_predictions(logits, references)
    by_text_column = {}
    for column, extra in extra_predictions.items():
        by_text_column[column] = evaluate_predictions(_logits(extra), references)
        write_json(_prediction_rows(splits["test"]["id"], references, _logits(extra)),
                   output_dir / f"{TEST_ON_PREFIX}{column}_predictions.json")
        logger.info("Test with the %s transcripts: accuracy %.4f, UA %.4f, macro-F1 %.4f", column,
                    by_text_column[column]["accuracy"], by_text_column[column]["unweighted_accuracy"],
                    by_text_column[column]["macro_f1"])
    save_confusion_matrix(full["confusion_matrix"], output_dir / "confusion_matrix.png",
                          title=f"{run_info.get('preset')} on {run_info.get('corpus')} ({run_info.get('split')} split, test)")
    save_training_curves(trainer.state.log_history, output_dir / "training_curves.png",
                         title=f"{run_info.get('preset')} ({run_info.get('corpus')}, {run_info.get('split')} split)")
    write_json(_prediction_rows(splits["test"]["id"], references, logits), output_dir / "test_predictions.json")
    # The exact rows of each split, for baselines and for distill.py's check of a teacher's split.
    write_json(split_ids(splits), output_dir / DATA_SPLITS_FILE)
    info = dict(run_info)
    info.update(
        parameters=count_parameters(trainer.model),
        environment={"torch": torch.__version__, "python": platform.python_version(), "device": str(args.device),
                     "world_size": args.world_size},
    )
    write_json(info, output_dir / RUN_INFO_FILE)
    record = {"test": full, "data": data_report, "train": metrics, "run": info}
    if by_text_column:
        record["test_by_text_column"] = {info.get("text_column", "text"): full, **by_text_column}
    write_json(record, output_dir / "metrics.json")
    logger.info(
        "Test (%d utterances): accuracy %.4f, UA %.4f, macro-F1 %.4f, weighted F1 %.4f -> %s",
        len(references), full["accuracy"], full["unweighted_accuracy"], full["macro_f1"], full["weighted_f1"],
        output_dir,
    )
    if getattr(args, "publish_to_hub", False):  # --push_to_hub: the folder push_to_hub.py would upload
        from ..tools.hub import publish_run

        publish_run(output_dir, args)
    return metrics


__all__ = [
    "DATA_SPLITS_FILE",
    "LOCK_FILE",
    "RUN_INFO_FILE",
    "build_model",
    "cache_root",
    "check_teacher_split",
    "count_parameters",
    "data_info",
    "extra_test_splits",
    "finish_run",
    "latest_complete_checkpoint",
    "load_corpus",
    "lock_output_dir",
    "make_trainer",
    "prepare_features",
    "prepare_splits",
    "read_json_object",
    "resolve_checkpoint",
    "select_text_columns",
    "setup_logging",
    "refit_on_validation",
    "tiny_encoder_folders",
    "train_model",
    "with_text_column",
]
