#!/usr/bin/env python
"""Distil a trained Multi-Still teacher (from ``train.py``) into a student.

Examples::

    # the paper's multimodal student (one fusion layer, the teacher's frozen encoders)
    python distill.py --teacher_model outputs/teacher --preset multimodal_student \\
        --output_dir outputs/multimodal_student --use_cpu

    # the light student: 2+2 encoder layers taken from the teacher, fbank front end, all trained
    accelerate launch distill.py --teacher_model outputs/teacher --preset light_student \\
        --output_dir outputs/light_student

    # no-distillation ablation of the same student
    python distill.py --teacher_model outputs/teacher --preset text_student --alpha 0 --output_dir outputs/text_ce

Step 1 (as in the paper) writes the teacher's logits into the training split as a column (cached on
disk); step 2 trains the student with ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(votes)``.
``--online_teacher`` runs the teacher in every training step instead. Data arguments must describe
the split the teacher was trained on (its ``run_info.json`` is checked).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from transformers import HfArgumentParser, set_seed

from multistill.arguments import (
    DataArguments,
    DistillationArguments,
    ModelArguments,
    MultiStillTrainingArguments,
)
from multistill.modeling_multistill import MultiStillForEmotionClassification
from multistill.processing_multistill import MultiStillProcessor
from multistill.training import (
    DistillationTrainer,
    MultiStillCollator,
    add_teacher_logits,
)
from multistill.workflow import (
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

logger = logging.getLogger("distill")

#: Fusion-head settings a paper student takes from its teacher (so tiny teachers get tiny students).
SHARED_WITH_TEACHER = ("hidden_size", "num_attention_heads", "fusion_intermediate_size", "classifier_hidden_size",
                       "max_audio_frames", "max_text_tokens", "id2label", "label2id", "audio_encoder_name",
                       "text_encoder_name", "layer_norm_eps", "sampling_rate", "audio_config", "text_config")


def parse_args(argv: list[str] | None = None):
    """Command line (or one JSON file) -> (model, data, distillation, training) arguments."""
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, DistillationArguments, MultiStillTrainingArguments), description=__doc__
    )
    parser.set_defaults(preset="multimodal_student", output_dir="outputs/student")
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        return parser.parse_json_file(argv[0])
    return parser.parse_args_into_dataclasses(argv)


def load_teacher(path: str) -> tuple[MultiStillForEmotionClassification, MultiStillProcessor]:
    """The trained teacher and its processor (a folder written by train.py, or a Hub id)."""
    teacher = MultiStillForEmotionClassification.from_pretrained(path)
    processor = MultiStillProcessor.from_pretrained(path)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher, processor


def build_student(preset: str, teacher: MultiStillForEmotionClassification,
                  distill_args: DistillationArguments) -> MultiStillForEmotionClassification:
    """A paper student around the teacher's (frozen) encoders, or the light student initialised from it."""
    if preset == "light_student":
        return MultiStillForEmotionClassification.light_student_from_teacher(
            teacher, audio_layers=distill_args.light_audio_layers, text_layers=distill_args.light_text_layers
        )
    if preset == "teacher":
        raise ValueError("--preset teacher: distill.py trains students; train the teacher with train.py.")
    shared = {key: getattr(teacher.config, key) for key in SHARED_WITH_TEACHER}
    return MultiStillForEmotionClassification.from_encoders(
        audio_encoder=teacher.multistill.audio_encoder, text_encoder=teacher.multistill.text_encoder,
        preset=preset, **shared,
    )


def check_teacher_run(teacher_path: str, data_args: DataArguments) -> dict:
    """The teacher's run_info; warns when the data arguments differ (its test split may be in our training split)."""
    info_file = Path(teacher_path) / "run_info.json"
    if not info_file.exists():
        return {}
    info = json.loads(info_file.read_text(encoding="utf-8"))
    for key in ("corpus", "split"):
        if info.get(key) not in (None, getattr(data_args, key)):
            logger.warning("The teacher was trained with %s=%r but this run uses %r: its logits may come from "
                           "examples it was tested on.", key, info[key], getattr(data_args, key))
    return info


def main(argv: list[str] | None = None) -> dict:
    # 1. Arguments, logging, seed
    model_args, data_args, distill_args, training_args = parse_args(argv)
    setup_logging(training_args)
    set_seed(training_args.seed)
    if not distill_args.teacher_model:
        raise ValueError("--teacher_model is required: the folder train.py wrote (or a Hub id).")
    checkpoint = resolve_checkpoint(training_args)
    teacher_info = check_teacher_run(distill_args.teacher_model, data_args)

    # 2. Data: the same split and balancing as the teacher's run
    splits, data_report = prepare_splits(data_args, training_args)

    # 3. Teacher and student
    teacher, teacher_processor = load_teacher(distill_args.teacher_model)
    student = build_student(model_args.preset, teacher, distill_args)
    processor = MultiStillProcessor.from_model_config(
        student.config, teacher_processor.feature_extractor, teacher_processor.tokenizer
    )
    student_modalities = list(student.config.modalities)
    teacher_modalities = list(teacher.config.modalities)
    both = [m for m in ("audio", "text") if m in student_modalities + teacher_modalities]
    parameters = count_parameters(student)
    logger.info("Student %s: %s parameters, %s trainable (teacher: %s)", model_args.preset,
                f"{parameters['total']:,}", f"{parameters['trainable']:,}", f"{count_parameters(teacher)['total']:,}")

    # 4. Cached encoder features. A paper student shares the teacher's frozen encoders, so the teacher's
    #    cached features are reused (same fingerprint). The light student trains its encoders on raw inputs.
    student_cached = bool(model_args.cache_encoder_features and student.config.freeze_encoders)
    matches_hidden = distill_args.hidden_weight > 0
    if matches_hidden and student.config.freeze_encoders:
        raise ValueError(f"--hidden_weight: the {model_args.preset} shares the teacher's frozen encoders, so there is "
                         "nothing to match; use it with --preset light_student.")
    online = distill_args.online_teacher and (distill_args.alpha > 0 or matches_hidden)
    if matches_hidden and not online and not model_args.cache_encoder_features:
        raise ValueError("--hidden_weight needs the teacher's hidden states: keep --cache_encoder_features (default) "
                         "or pass --online_teacher.")
    if student_cached:
        plan = {name: (both if name == "train" or online else student_modalities) for name in splits}
    elif not online and model_args.cache_encoder_features:
        plan = {"train": teacher_modalities}  # only for the teacher-logits step, dropped afterwards
    else:
        plan = {}
    splits, caching_seconds = cache_features(splits, teacher, teacher_processor, plan, model_args, training_args)

    # 5. Step 1 of the paper: the teacher's logits become a column of the training split
    if distill_args.alpha > 0 and not online:
        teacher_collator = MultiStillCollator.for_modalities(
            teacher_processor, teacher_modalities, cached=bool(plan.get("train"))
        )
        with training_args.main_process_first(desc="teacher logits"):
            teacher.to(training_args.device)
            splits["train"] = add_teacher_logits(
                splits["train"], teacher, teacher_collator, batch_size=training_args.per_device_eval_batch_size
            )
            teacher.to("cpu")

    # 6. Step 2: the student learns from the votes and the teacher
    collator = MultiStillCollator.for_modalities(
        processor, both if online else student_modalities, cached=student_cached
    )
    if matches_hidden and not online:  # the teacher's cached features of the training split, under teacher_* keys
        collator.teacher_feature_modalities = tuple(m for m in student_modalities if m in plan.get("train", []))
    splits = keep_columns(splits, collator)
    trainer = DistillationTrainer(
        model=student,
        **trainer_inputs(training_args, splits, collator, processor, student_modalities),
        alpha=distill_args.alpha,
        temperature=distill_args.temperature,
        teacher=teacher if online else None,
        hidden_weight=distill_args.hidden_weight,
    )
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    logger.warning("Process rank %d finished training at global step %d", training_args.process_index,
                   trainer.state.global_step)

    # 7. Test, save model + processor + metrics + plots
    run_info = {
        "script": "distill.py", "preset": model_args.preset, **data_info(data_args),
        "backbones": teacher_info.get("backbones"), "audio_encoder": student.config.audio_encoder_name,
        "text_encoder": student.config.text_encoder_name, "teacher_model": distill_args.teacher_model,
        "alpha": distill_args.alpha, "temperature": distill_args.temperature, "online_teacher": online,
        "hidden_weight": distill_args.hidden_weight,
        "seed": training_args.seed, "cached_encoder_features": student_cached,
        "feature_caching_seconds": round(caching_seconds, 2),
    }
    if model_args.preset == "light_student":
        run_info.update(light_audio_layers=distill_args.light_audio_layers,
                        light_text_layers=distill_args.light_text_layers)
    return finish_run(trainer, splits, processor, run_info, data_report, train_result)


if __name__ == "__main__":
    main()
