"""The steps ``train.py`` and ``distill.py`` share: data, backbones, caching, reports.

Each function is one numbered step of the scripts' ``main()``; keeping them here means the two
scripts differ only in what they train and how (plain loss vs distillation).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import DatasetDict
from transformers import Trainer, TrainingArguments

from .annotations import EMOTIONS
from .arguments import DataArguments, ModelArguments
from .data import DEFAULT_CACHE, load_kemdy
from .splits import balance, class_distribution, make_splits
from .training import (
    MultiStillCollator,
    add_encoder_features,
    evaluate_predictions,
    save_confusion_matrix,
    save_training_curves,
    write_json,
)

logger = logging.getLogger(__name__)


def setup_logging(training_args: TrainingArguments) -> None:
    """INFO on the main process, WARNING elsewhere (HF example-script convention)."""
    # Our own messages: INFO on the main process; transformers/datasets: --log_level (default warning).
    logging.basicConfig(
        format="%(asctime)s - %(levelname)s - %(name)s - %(message)s", datefmt="%H:%M:%S",
        level=logging.INFO if training_args.should_log else logging.WARNING, force=True,
    )
    import datasets
    import transformers

    library_level = training_args.get_process_log_level()
    if training_args.log_level == "passive":
        library_level = logging.WARNING
    datasets.utils.logging.set_verbosity(library_level)
    transformers.utils.logging.set_verbosity(library_level)
    logger.warning(
        "Process rank: %s, world size: %s, device: %s, distributed: %s",
        training_args.process_index, training_args.world_size, training_args.device,
        training_args.parallel_mode.value,
    )


def cache_root(data_args: DataArguments) -> Path:
    """Where Arrow caches, the synthetic corpus and tiny backbones live."""
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


def resolve_checkpoint(training_args: TrainingArguments) -> str | None:
    """``--resume_from_checkpoint`` as a folder, or ``latest`` for the newest complete one in ``output_dir``."""
    value = training_args.resume_from_checkpoint
    if value is None or str(value).lower() in ("", "false", "none"):
        return None
    if str(value).lower() in ("latest", "last", "true"):
        found = latest_complete_checkpoint(training_args.output_dir)
        if found is None:
            raise ValueError(
                f"--resume_from_checkpoint {value}: no complete checkpoint-* folder in {training_args.output_dir}."
            )
        logger.info("Resuming from %s", found)
        return found
    if not os.path.isfile(os.path.join(value, "trainer_state.json")):
        raise ValueError(f"--resume_from_checkpoint: {value} is not a checkpoint folder (no trainer_state.json).")
    return str(value)


def prepare_splits(data_args: DataArguments, training_args: TrainingArguments) -> tuple[DatasetDict, dict[str, Any]]:
    """Load the corpus, split it (session or random), balance the training split.

    Returns the splits and a report (sizes, sessions, class distributions) for ``metrics.json``.
    """
    with training_args.main_process_first(desc="building the KEMDy Arrow cache"):
        dataset = load_kemdy(
            data_args.corpus, data_args.data_dir, data_args.sessions, cache_dir=cache_root(data_args),
            synthetic_size=(data_args.synthetic_sessions, data_args.synthetic_utterances),
        )
    split_kwargs: dict[str, Any] = {}
    if data_args.split == "session":
        split_kwargs = {"test_sessions": data_args.test_sessions, "validation_sessions": data_args.validation_sessions}
    elif data_args.test_sessions or data_args.validation_sessions:
        raise ValueError("--test_sessions/--validation_sessions only apply to --split session.")
    splits = make_splits(dataset, data_args.split, **split_kwargs)
    report: dict[str, Any] = {"corpus": data_args.corpus, "split": data_args.split}
    if data_args.balance_max_fraction:
        splits["train"], report["balancing"] = balance(
            splits["train"], max_fraction=data_args.balance_max_fraction, seed=training_args.seed
        )
    if data_args.max_train_samples is not None:
        splits["train"] = splits["train"].select(range(min(data_args.max_train_samples, len(splits["train"]))))
    for name, split in splits.items():
        report[name] = {
            "examples": len(split),
            "sessions": sorted({f"{c}:{s:02d}" for c, s in zip(split["corpus"], split["session"], strict=True)}),
            "emotions": class_distribution(split),
        }
        logger.info("%s: %d utterances from sessions %s", name, len(split), report[name]["sessions"])
    return splits, report


def tiny_encoder_folders(train_texts: list[str], data_args: DataArguments, training_args: TrainingArguments,
                         seed: int = 0) -> dict[str, str]:
    """Tiny random encoders + a WordPiece tokenizer trained on the training transcripts (cached by content)."""
    from .offline import build_tiny_encoders

    key = hashlib.sha256(json.dumps([sorted(train_texts), seed]).encode()).hexdigest()[:12]
    root = cache_root(data_args) / "tiny_backbones" / key
    with training_args.main_process_first(desc="building tiny backbones"):
        if not (root / ".complete").exists():
            logger.info("Building tiny offline encoders in %s (tokenizer trained on %d transcripts)",
                        root, len(train_texts))
            build_tiny_encoders(root, texts=train_texts, seed=seed)
            (root / ".complete").touch()
    return {"audio": str(root / "audio"), "text": str(root / "text")}


def build_model(model_args: ModelArguments, splits: DatasetDict, data_args: DataArguments,
                training_args: TrainingArguments):
    """``(model, processor)`` of ``--preset`` around pretrained or tiny encoders."""
    from .modeling_multistill import MultiStillForEmotionClassification
    from .offline import tiny_backbones
    from .processing_multistill import MultiStillProcessor

    if model_args.backbones == "tiny":
        folders = tiny_encoder_folders(list(splits["train"]["text"]), data_args, training_args)
        model, processor = tiny_backbones(encoders=folders, preset=model_args.preset, seed=training_args.seed)
        model.train()
        return model, processor
    if model_args.backbones != "pretrained":
        raise ValueError(f"--backbones must be 'tiny' or 'pretrained', got {model_args.backbones!r}.")
    model = MultiStillForEmotionClassification.from_encoders(
        model_args.audio_encoder, model_args.text_encoder, preset=model_args.preset
    )
    processor = MultiStillProcessor.from_encoders(model_args.audio_encoder, model_args.text_encoder, config=model.config)
    return model, processor


def cache_features(splits: DatasetDict, encoder_model, processor, modalities_per_split: dict[str, list[str]],
                   model_args: ModelArguments, training_args: TrainingArguments) -> tuple[DatasetDict, float]:
    """Run the frozen encoders once per split (cached on disk); returns the splits and the seconds spent."""
    start = time.perf_counter()
    with training_args.main_process_first(desc="caching encoder features"):
        for name, modalities in modalities_per_split.items():
            if modalities:
                splits[name] = add_encoder_features(
                    splits[name], encoder_model, processor, modalities=modalities,
                    batch_size=model_args.encoding_batch_size, feature_dtype=model_args.feature_dtype,
                    desc=f"Encoding {name} ({'+'.join(modalities)})",
                )
    return splits, time.perf_counter() - start


def keep_columns(splits: DatasetDict, collator: MultiStillCollator) -> DatasetDict:
    """Drop the columns the collator does not read (raw audio is not decoded for nothing), and read
    cached features, votes and teacher logits as NumPy arrays (20x faster than nested Python lists)."""
    from .training import AUDIO_FEATURES, TEACHER_LOGITS, TEXT_FEATURES

    numeric = (AUDIO_FEATURES, TEXT_FEATURES, TEACHER_LOGITS, "emotion_votes")
    kept = {}
    for name, split in splits.items():
        split = split.select_columns(collator.columns(split))
        columns = [c for c in numeric if c in split.column_names]
        kept[name] = split.with_format("numpy", columns=columns, output_all_columns=True)
    return DatasetDict(kept)


def data_info(data_args: DataArguments) -> dict[str, Any]:
    """What run_info.json records about the data, so a run's test split can be rebuilt later."""
    return {"corpus": data_args.corpus, "split": data_args.split, "data_dir": data_args.data_dir,
            "sessions": data_args.sessions, "test_sessions": data_args.test_sessions,
            "validation_sessions": data_args.validation_sessions, "data_cache_dir": str(cache_root(data_args)),
            "synthetic_size": [data_args.synthetic_sessions, data_args.synthetic_utterances]}


def trainer_inputs(training_args: TrainingArguments, splits: DatasetDict, collator: MultiStillCollator, processor,
                   modalities: list[str]) -> dict[str, Any]:
    """The Trainer arguments train.py and distill.py share (train on ``train``, select on ``validation``)."""
    from .training import build_compute_metrics

    if training_args.ddp_find_unused_parameters is None:  # only the unused modality's projection (paper layout)
        training_args.ddp_find_unused_parameters = len(modalities) == 1
    return {"args": training_args, "train_dataset": splits["train"], "eval_dataset": splits["validation"],
            "data_collator": collator, "processing_class": processor, "compute_metrics": build_compute_metrics()}


def count_parameters(model: torch.nn.Module) -> dict[str, int]:
    """Total and trainable parameters (the paper's table counts trainable ones)."""
    return {
        "total": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }


def finish_run(trainer: Trainer, splits: DatasetDict, processor, run_info: dict[str, Any],
               data_report: dict[str, Any], train_result: Any | None) -> dict[str, Any]:
    """Evaluate the best model on the test split; save model, processor, metrics JSON and plots."""
    args = trainer.args
    output_dir = Path(args.output_dir)
    metrics: dict[str, Any] = {}
    if train_result is not None:
        metrics.update(train_result.metrics)
        trainer.save_metrics("train", train_result.metrics)
    # Step: test-set evaluation (every rank takes part; only the main process writes).
    prediction = trainer.predict(splits["test"], metric_key_prefix="test")
    trainer.save_metrics("test", prediction.metrics)
    metrics.update(prediction.metrics)
    # The custom pipeline goes into config.json and its code beside the model, so
    # pipeline("multimodal-emotion-recognition", model=output_dir, trust_remote_code=True) works anywhere.
    from .pipeline_multistill import add_pipeline_to_config, save_pipeline_code

    add_pipeline_to_config(trainer.model.config)
    trainer.save_model(str(output_dir))  # model weights + config + processor (processing_class)
    trainer.save_state()
    if not trainer.is_world_process_zero():
        return metrics
    save_pipeline_code(output_dir)
    logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
    references = np.asarray(splits["test"]["emotion"])
    full = evaluate_predictions(logits, references)
    save_confusion_matrix(full["confusion_matrix"], output_dir / "confusion_matrix.png",
                          title=f"{run_info.get('preset')} on {run_info.get('corpus')} ({run_info.get('split')} split, test)")
    save_training_curves(trainer.state.log_history, output_dir / "training_curves.png",
                         title=f"{run_info.get('preset')} ({run_info.get('corpus')}, {run_info.get('split')} split)")
    predictions = [
        {"id": i, "emotion": EMOTIONS[int(r)], "predicted": EMOTIONS[int(p)],
         "scores": [round(float(x), 5) for x in torch.softmax(torch.as_tensor(row, dtype=torch.float32), -1)]}
        for i, r, p, row in zip(splits["test"]["id"], references, logits.argmax(-1), logits, strict=True)
    ]
    write_json(predictions, output_dir / "test_predictions.json")
    # The ids of every split (training rows after balancing), so the experiment's baselines use the same rows.
    write_json({name: list(split["id"]) for name, split in splits.items()}, output_dir / "data_splits.json")
    info = dict(run_info)
    info.update(
        parameters=count_parameters(trainer.model),
        environment={"torch": torch.__version__, "python": platform.python_version(), "device": str(args.device),
                     "world_size": args.world_size},
    )
    write_json(info, output_dir / "run_info.json")
    write_json({"test": full, "data": data_report, "train": metrics, "run": info}, output_dir / "metrics.json")
    logger.info(
        "Test (%d utterances): accuracy %.4f, UA %.4f, macro-F1 %.4f, weighted F1 %.4f -> %s",
        len(references), full["accuracy"], full["unweighted_accuracy"], full["macro_f1"], full["weighted_f1"],
        output_dir,
    )
    return metrics


__all__ = [
    "build_model",
    "cache_features",
    "cache_root",
    "count_parameters",
    "data_info",
    "finish_run",
    "keep_columns",
    "latest_complete_checkpoint",
    "prepare_splits",
    "resolve_checkpoint",
    "setup_logging",
    "tiny_encoder_folders",
    "trainer_inputs",
]
