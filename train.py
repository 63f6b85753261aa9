#!/usr/bin/env python
"""Train a Multi-Still teacher (or a baseline / a student without distillation) on KEMDy.

Examples::

    # the embedded synthetic corpus with tiny offline encoders (no download), on CPU
    python train.py --output_dir outputs/teacher --use_cpu

    # the real corpora with the paper's encoders, session-independent split, one or more GPUs
    accelerate launch train.py --corpus all --data_dir /data/KEMDy --backbones pretrained \\
        --output_dir outputs/teacher --bf16 --gradient_accumulation_steps 8

    # the shared sample (one session per corpus): whole dialogues held out; Whisper audio, tiny text encoder
    python train.py --corpus all --data_dir ../shared/kemdy_sample --split dialogue \\
        --audio_encoder ~/.cache/multistill/whisper-base-hf --text_encoder tiny --output_dir outputs/teacher

The frozen encoders run once (their hidden states are cached on disk per encoder and modality), the loss
is the soft-label cross-entropy against the evaluators' vote distribution, the best epoch by validation
macro-F1 is kept, and ``output_dir`` ends with the model and processor (``from_pretrained``-ready),
``metrics.json``, ``test_results.json``, ``run_info.json``, ``data_splits.json``, ``confusion_matrix.png``
and ``training_curves.png``.
"""

from __future__ import annotations

import logging
import sys

from transformers import HfArgumentParser, set_seed

from multistill.training.arguments import (
    DataArguments,
    ModelArguments,
    MultiStillTrainingArguments,
    check_pooled_audio,
    parse_command_line,
    run_script,
)
from multistill.training.features import FeaturePlan
from multistill.training.workflow import (
    build_model,
    count_parameters,
    data_info,
    finish_run,
    fit_model,
    lock_output_dir,
    prepare_features,
    prepare_splits,
    resolve_checkpoint,
    setup_logging,
)

logger = logging.getLogger("train")


def parse_args(argv: list[str] | None = None):
    """Command line (or one JSON file) -> (model, data, training) arguments, each checked."""
    parser = HfArgumentParser((ModelArguments, DataArguments, MultiStillTrainingArguments), description=__doc__)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, *rest = parser.parse_json_file(argv[0])
    else:
        model_args, *rest = parse_command_line(parser, argv)
    check_pooled_audio(model_args.audio_weight, model_args.audio_layer_mix, model_args.fusion_type or "cross_attention",
                       model_args.preset)
    return (model_args, *rest)


def main(argv: list[str] | None = None) -> dict:
    # 1. Arguments (each checked before anything loads), logging, threads, seed
    model_args, data_args, training_args = parse_args(argv)
    setup_logging(training_args)
    set_seed(training_args.seed)
    lock_output_dir(training_args)  # a second run into the same --output_dir is refused
    checkpoint = resolve_checkpoint(training_args)

    # 2. Data: corpus -> session, dialogue or random split -> balanced training split
    splits, data_report = prepare_splits(data_args, training_args)

    # 3. Model and processor around the chosen encoders (tiny ones are built from the training transcripts)
    model, processor, encoders = build_model(model_args, list(splits["train"]["text"]), data_args, training_args)
    parameters = count_parameters(model)
    logger.info("%s: %s parameters, %s trainable (encoders: %s)", model_args.preset, f"{parameters['total']:,}",
                f"{parameters['trainable']:,}", encoders)

    # 4. Features: frozen encoders run once (cached on disk, per modality); the collator batches the rest
    plan = FeaturePlan.decide(model.config, cache_features=model_args.cache_encoder_features)
    data = prepare_features(plan, splits, model, processor, model_args, data_args, training_args)

    # 5. Train: the model's own loss (soft-label cross-entropy against the votes); --refit_on_validation
    #    retrains on training + validation rows
    trainer, train_result, refit_epochs = fit_model(
        model, lambda: build_model(model_args, list(splits["train"]["text"]), data_args, training_args)[0],
        processor, data, training_args, checkpoint)

    # 6. Test, save model + processor + metrics + plots + run_info.json + data_splits.json
    run_info = {
        "script": "train.py", "preset": model_args.preset, **data_info(data_args, splits),
        "backbones": model_args.backbones_label(), "audio_encoder": model_args.encoders()["audio"],
        "text_encoder": model_args.encoders()["text"], "fusion_size": model_args.resolved_fusion_size(),
        "teacher_model": None, "alpha": 0.0, "temperature": None, "seed": training_args.seed,
        "threads": training_args.threads, "cached_encoder_features": bool(plan.cached),
        "cached_modalities": list(plan.cached), "feature_caching_seconds": round(data.seconds, 2),
        "utterances_encoded": sum(data.encoded.values()), "refit_epochs": refit_epochs,
    }
    return finish_run(trainer, data.splits, processor, run_info, data_report, train_result)


if __name__ == "__main__":
    run_script(main)
