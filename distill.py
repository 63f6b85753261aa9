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

Data arguments must describe the split the teacher was trained on: its ``run_info.json`` and
``data_splits.json`` are compared with this run's split, and a difference is refused (naming it) unless
``--allow_split_mismatch``. Step 1 (as in the paper) writes the teacher's logits into the training split as a
column (cached on disk); step 2 trains the student with
``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(votes)``. ``--online_teacher`` runs the teacher
in every training step instead. Features the teacher's run cached are reused, not encoded again.
"""

from __future__ import annotations

import logging
import sys

from transformers import HfArgumentParser, set_seed

from multistill.arguments import (
    DataArguments,
    DistillationArguments,
    ModelArguments,
    MultiStillTrainingArguments,
    UsageError,
    run_script,
)
from multistill.modeling_multistill import MultiStillForEmotionClassification
from multistill.processing_multistill import MultiStillProcessor
from multistill.training import DistillationSettings, FeaturePlan
from multistill.workflow import (
    check_teacher_split,
    count_parameters,
    data_info,
    finish_run,
    make_trainer,
    prepare_features,
    prepare_splits,
    resolve_checkpoint,
    setup_logging,
)

logger = logging.getLogger("distill")

#: Fusion-head settings a paper student takes from its teacher (so tiny teachers get tiny students).
SHARED_WITH_TEACHER = ("hidden_size", "num_attention_heads", "fusion_intermediate_size", "classifier_hidden_size",
                       "max_audio_frames", "max_text_tokens", "id2label", "label2id", "audio_encoder_name",
                       "text_encoder_name", "layer_norm_eps", "sampling_rate", "audio_config", "text_config")


def parse_args(argv: list[str] | None = None):
    """Command line (or one JSON file) -> (model, data, distillation, training) arguments, each checked."""
    parser = HfArgumentParser(
        (ModelArguments, DataArguments, DistillationArguments, MultiStillTrainingArguments), description=__doc__
    )
    parser.set_defaults(preset="multimodal_student", output_dir="outputs/student")
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 1 and argv[0].endswith(".json"):
        model_args, *rest = parser.parse_json_file(argv[0])
    else:
        model_args, *rest = parser.parse_args_into_dataclasses(argv)
    if model_args.preset == "teacher":
        raise UsageError("--preset teacher: distill.py trains students; train the teacher with train.py.")
    given = [f"--{name}" for name in ("backbones", "audio_encoder", "text_encoder") if getattr(model_args, name)]
    if given:
        raise UsageError(f"{', '.join(given)}: distill.py takes the student's encoders from the teacher.")
    return (model_args, *rest)


def load_teacher(path: str) -> tuple[MultiStillForEmotionClassification, MultiStillProcessor]:
    """The trained teacher and its processor (a folder written by train.py, or a Hub id), frozen."""
    teacher = MultiStillForEmotionClassification.from_pretrained(path)
    processor = MultiStillProcessor.from_pretrained(path)
    teacher.eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher, processor


def build_student(model_args: ModelArguments, teacher: MultiStillForEmotionClassification,
                  distill_args: DistillationArguments) -> MultiStillForEmotionClassification:
    """A paper student around copies of the teacher's (frozen) encoders, or the light student initialised
    from it (its encoders train), with ``--freeze_*_encoder`` applied."""
    overrides = model_args.freeze_overrides()
    if model_args.preset == "light_student":
        return MultiStillForEmotionClassification.light_student_from_teacher(
            teacher, audio_layers=distill_args.light_audio_layers, text_layers=distill_args.light_text_layers,
            **overrides,
        )
    shared = {key: getattr(teacher.config, key) for key in SHARED_WITH_TEACHER}
    return MultiStillForEmotionClassification.from_encoders(
        audio_encoder=teacher.multistill.audio_encoder, text_encoder=teacher.multistill.text_encoder,
        preset=model_args.preset, **shared, **overrides,
    )


def main(argv: list[str] | None = None) -> dict:
    # 1. Arguments (each checked before anything loads, the teacher folder included), logging, threads, seed
    model_args, data_args, distill_args, training_args = parse_args(argv)
    setup_logging(training_args)
    set_seed(training_args.seed)
    checkpoint = resolve_checkpoint(training_args)

    # 2. Data: the same split as the teacher's run (refused otherwise), balanced training split
    splits, data_report = prepare_splits(data_args, training_args)
    teacher_info = check_teacher_split(distill_args.teacher_model, data_args, splits,
                                       allow_mismatch=distill_args.allow_split_mismatch)

    # 3. Teacher and student; the student's processor is the teacher's, with the student's modalities
    teacher, teacher_processor = load_teacher(distill_args.teacher_model)
    student = build_student(model_args, teacher, distill_args)
    processor = MultiStillProcessor.from_model_config(
        student.config, teacher_processor.feature_extractor, teacher_processor.tokenizer
    )
    parameters = count_parameters(student)
    logger.info("Student %s: %s parameters, %s trainable (teacher: %s)", model_args.preset,
                f"{parameters['total']:,}", f"{parameters['trainable']:,}", f"{count_parameters(teacher)['total']:,}")

    # 4. Features: what each split carries (cached encoder outputs shared with the teacher's run, the teacher's
    #    logits as a column of the training split, the teacher's hidden states), then the collator
    settings = DistillationSettings(distill_args.alpha, distill_args.temperature, distill_args.hidden_weight)
    try:
        plan = FeaturePlan.decide(student.config, teacher.config, cache_features=model_args.cache_encoder_features,
                                  alpha=settings.alpha, hidden_weight=settings.hidden_weight,
                                  online_teacher=distill_args.online_teacher)
    except ValueError as error:
        raise UsageError(f"--preset {model_args.preset}: {error}") from error
    data = prepare_features(plan, splits, student, processor, model_args, data_args, training_args,
                            teacher=teacher, teacher_processor=teacher_processor)

    # 5. Train: the student learns from the votes and the teacher
    trainer = make_trainer(student, processor, data, training_args, distillation=settings,
                           teacher=teacher if plan.online_teacher else None)
    train_result = trainer.train(resume_from_checkpoint=checkpoint)
    logger.info("Process rank %d finished training at global step %d", training_args.process_index,
                   trainer.state.global_step)

    # 6. Test, save model + processor + metrics + plots + run_info.json + data_splits.json
    run_info = {
        "script": "distill.py", "preset": model_args.preset, **data_info(data_args, splits),
        "backbones": teacher_info.get("backbones"), "audio_encoder": student.config.audio_encoder_name,
        "text_encoder": student.config.text_encoder_name, "teacher_model": distill_args.teacher_model,
        "allow_split_mismatch": distill_args.allow_split_mismatch, "alpha": settings.alpha,
        "temperature": settings.temperature, "online_teacher": plan.online_teacher,
        "hidden_weight": settings.hidden_weight, "seed": training_args.seed, "threads": training_args.threads,
        "cached_encoder_features": bool(plan.cached), "cached_modalities": list(plan.cached),
        "feature_caching_seconds": round(data.seconds, 2), "utterances_encoded": sum(data.encoded.values()),
    }
    if model_args.preset == "light_student":
        run_info.update(light_audio_layers=distill_args.light_audio_layers,
                        light_text_layers=distill_args.light_text_layers)
    return finish_run(trainer, data.splits, processor, run_info, data_report, train_result)


if __name__ == "__main__":
    run_script(main)
