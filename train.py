#!/usr/bin/env python
"""Train a Multi-Still teacher (or a baseline / a student without distillation) on KEMDy.

Examples::

    # the embedded synthetic corpus with tiny offline encoders (no download), on CPU
    python train.py --output_dir outputs/teacher --use_cpu

    # the real corpora with the paper's encoders, session-independent split, one or more GPUs
    accelerate launch train.py --corpus all --data_dir /data/KEMDy --backbones pretrained \\
        --output_dir outputs/teacher --bf16 --gradient_accumulation_steps 8

The frozen encoders run once (their hidden states are cached with ``datasets.map``), the loss is the
soft-label cross-entropy against the evaluators' vote distribution, the best epoch by validation
macro-F1 is kept, and ``output_dir`` ends with the model and processor (``from_pretrained``-ready),
``metrics.json``, ``test_results.json``, ``confusion_matrix.png`` and ``training_curves.png``.
"""

from __future__ import annotations

import logging
import sys

from transformers import HfArgumentParser, Trainer, set_seed

from multistill.arguments import DataArguments, ModelArguments, MultiStillTrainingArguments
from multistill.training import MultiStillCollator
from multistill.workflow import (
    build_model,
    cache_features,
    count_parameters,
    data_info,
    finish_run,
    keep_columns,
    prepare_splits,
    resolve_checkpoint,
    setup_logging,
    trainer_inputs,
)

logger = logging.getLogger("train")


def parse_args(argv: list[str] | None = None):
    """Command line (or one JSON file) -> (model, data, training) arguments."""
    parser = HfArgumentParser((ModelArguments, DataArguments, MultiStillTrainingArguments), description=__doc__)
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(argv)


def main(argv: list[str] | None = None) -> dict:
    # 1. Arguments, logging, seed
    model_args, data_args, training_args = parse_args(argv)
    setup_logging(training_args)
    set_seed(training_args.seed)
    checkpoint = resolve_checkpoint(training_args)

    # 2. Data: corpus -> session or random split -> balanced training split
    splits, data_report = prepare_splits(data_args, training_args)

    # 3. Model and processor (pretrained encoders, or tiny ones built offline from the training transcripts)
    model, processor = build_model(model_args, splits, data_args, training_args)
    modalities = list(model.config.modalities)
    parameters = count_parameters(model)
    logger.info("%s: %s parameters, %s trainable", model_args.preset, f"{parameters['total']:,}",
                f"{parameters['trainable']:,}")

    # 4. Frozen encoders run once: their hidden states become dataset columns (cached on disk)
    cached = bool(model_args.cache_encoder_features and model.config.freeze_encoders)
    plan = {name: modalities for name in splits} if cached else {}
    splits, caching_seconds = cache_features(splits, model, processor, plan, model_args, training_args)
    collator = MultiStillCollator.for_modalities(processor, modalities, cached=cached)
    splits = keep_columns(splits, collator)

    # 5. Trainer: soft-label cross-entropy computed by the model's forward(labels=votes)
    trainer = Trainer(model=model, **trainer_inputs(training_args, splits, collator, processor, modalities))

    # 6. Train (resuming when asked)
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    logger.warning("Process rank %d finished training at global step %d", training_args.process_index,
                   trainer.state.global_step)

    # 7. Test, save model + processor + metrics + plots
    run_info = {
        "script": "train.py", "preset": model_args.preset, **data_info(data_args),
        "backbones": model_args.backbones, "audio_encoder": model_args.audio_encoder,
        "text_encoder": model_args.text_encoder, "teacher_model": None, "alpha": 0.0, "temperature": None,
        "seed": training_args.seed, "cached_encoder_features": cached,
        "feature_caching_seconds": round(caching_seconds, 2),
    }
    return finish_run(trainer, splits, processor, run_info, data_report, train_result)


if __name__ == "__main__":
    main()
